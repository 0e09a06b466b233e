"""The run record every eval suite produces, and where it is written.

A run is one suite over one dataset. Its record holds what a prompt engineer needs to trust and
compare it later: the suite, a run id, timestamps, the git commit (and whether the tree was
dirty), the configuration (dataset paths, k, tenant...), the model tier, the aggregate metrics,
one row per example and any extra tables (per-intent scores, a confusion matrix...).

:mod:`evals.store` writes records and reads them back; :mod:`evals.report` renders them.

Example rows share one shape (``Example``) so that reports and comparisons work the same for
every suite:

* ``id``: stable across runs (the dataset row id); comparisons match examples on it.
* ``input`` / ``expected`` / ``output``: what went in, what was wanted, what came out.
* ``score``: the example's main score in [0, 1] (worst examples are the lowest; a per-example
  comparison looks at it), ``ok``: whether the example passed.
* ``metrics``: per-example metric values; ``contexts``: the retrieved passages, when any;
  ``meta``: anything else worth seeing (intent, latency, hand-off reason).

Metrics are higher-is-better unless the record's ``directions`` says ``"lower"`` (block rates of
benign messages, latencies). Missing values (a metric that does not apply) are ``None``, never
NaN, so the JSON stays standard.
"""

from __future__ import annotations

import math
import re
import secrets
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

Direction = Literal["higher", "lower"]
SCHEMA_VERSION = 1
_LOWER_SUFFIXES = ("_ms", "_s", "_seconds")


@dataclass
class Example:
    """One evaluated example (see the module docstring for the meaning of each field)."""

    id: str
    input: Any
    expected: Any = None
    output: Any = None
    score: float | None = None
    ok: bool | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)
    contexts: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The example as JSON-ready data (NaN becomes None)."""
        return clean_json(asdict(self))


@dataclass
class RunRecord:
    """Everything one eval run produced."""

    suite: str
    run_id: str
    started_at: str
    finished_at: str
    duration_s: float
    git_commit: str | None
    git_dirty: bool | None
    model_tier: str
    config: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float | None] = field(default_factory=dict)
    directions: dict[str, Direction] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)
    tables: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION

    def direction(self, metric: str) -> Direction:
        """Whether a higher or a lower value of ``metric`` is better."""
        if metric in self.directions:
            return self.directions[metric]
        return "lower" if metric.endswith(_LOWER_SUFFIXES) else "higher"

    def as_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data."""
        return clean_json(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        """Rebuild a record from its JSON form.

        Raises:
            ValueError: the data is not a run record (the message says what is missing).
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        required = ("suite", "run_id", "metrics", "examples")
        missing = [k for k in required if k not in data]
        if missing:
            raise ValueError(f"not an eval run record: missing {', '.join(missing)}")
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in known}
        values.setdefault("started_at", "")
        values.setdefault("finished_at", "")
        values.setdefault("duration_s", 0.0)
        values.setdefault("git_commit", None)
        values.setdefault("git_dirty", None)
        values.setdefault("model_tier", "unknown")
        return cls(**values)


@dataclass
class SuiteResult:
    """What a suite function returns, before it becomes a :class:`RunRecord`."""

    metrics: dict[str, float | None]
    examples: list[Example]
    tables: dict[str, Any] = field(default_factory=dict)
    directions: dict[str, Direction] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class RunClock:
    """Times a run and turns a :class:`SuiteResult` into a :class:`RunRecord`.

    Usage::

        clock = RunClock("retrieval")
        result = await run_retrieval(...)
        record = clock.finish(result, config=..., dataset=..., model_tier="offline")
    """

    def __init__(self, suite: str, *, run_id: str | None = None) -> None:
        self.suite = suite
        self.run_id = run_id or new_run_id(suite)
        self.started = datetime.now(UTC)
        self._t0 = time.perf_counter()

    def finish(
        self,
        result: SuiteResult,
        *,
        config: Mapping[str, Any] | None = None,
        dataset: Mapping[str, Any] | None = None,
        model_tier: str = "offline",
    ) -> RunRecord:
        """The record of the finished run."""
        commit, dirty = git_state()
        return RunRecord(
            suite=self.suite,
            run_id=self.run_id,
            started_at=self.started.isoformat(timespec="seconds"),
            finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
            duration_s=round(time.perf_counter() - self._t0, 3),
            git_commit=commit,
            git_dirty=dirty,
            model_tier=model_tier,
            config=clean_json(dict(config or {})),
            dataset=clean_json(dict(dataset or {})),
            metrics={k: finite(v) for k, v in result.metrics.items()},
            directions=dict(result.directions),
            examples=[e.as_dict() for e in result.examples],
            tables=clean_json(result.tables),
            notes=list(result.notes),
        )


def new_run_id(suite: str, label: str | None = None, now: datetime | None = None) -> str:
    """A sortable, unique run id: ``<suite>[-<label>]-<UTC time>-<4 hex>``."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    parts = [suite, slug(label)] if label else [suite]
    return "-".join([*parts, stamp, secrets.token_hex(2)])


def slug(text: str) -> str:
    """Lower-case letters, digits and dashes (for run ids and file names)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "x"


def git_state(cwd: Path | None = None) -> tuple[str | None, bool | None]:
    """The current commit and whether the working tree has changes (None outside git)."""
    where = cwd or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None, None
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return commit.stdout.strip() or None, dirty


def finite(value: Any) -> float | None:
    """``value`` as a float, or None when it is missing or not finite."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are present and finite; None when there are none."""
    present = [v for v in (finite(x) for x in values) if v is not None]
    return sum(present) / len(present) if present else None


def percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100, linear interpolation); None for no values."""
    data = sorted(v for v in (finite(x) for x in values) if v is not None)
    if not data:
        return None
    pos = (len(data) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def clean_json(value: Any) -> Any:
    """Deep copy of ``value`` with NaN / infinity turned into None (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [clean_json(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return clean_json(value.item())
    return value
