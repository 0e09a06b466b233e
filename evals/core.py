"""The run record every eval suite produces, and where it is written.

A run is one suite over one dataset. Its record holds what a prompt engineer needs to trust and
compare it later: the suite, a run id, timestamps, the git commit (and whether the tree was
dirty), the configuration (dataset paths, k, tenant...), the model tier, the aggregate metrics,
one row per example and any extra tables (per-intent scores, a confusion matrix...).

``write_run`` stores it as ``<out>/<run id>.json`` plus a self-contained ``<run id>.html``
report (:mod:`evals.report`); ``load_run`` reads one back by path or run id, for
:mod:`evals.compare`.

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

import json
import math
import os
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
DEFAULT_REPORTS_DIR = Path("evals/reports")
_RUN_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,120}$")
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


@dataclass(frozen=True)
class RunFiles:
    """Where a run was written."""

    json: Path
    html: Path


def write_run(record: RunRecord, out_dir: Path = DEFAULT_REPORTS_DIR) -> RunFiles:
    """Write ``<run id>.json`` and ``<run id>.html`` under ``out_dir`` (created if needed)."""
    from evals.report import render_run

    if not _RUN_ID.match(record.run_id):
        raise ValueError(
            f"run id must be lower-case letters, digits, '.', '_', '-': {record.run_id}"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    files = RunFiles(json=out_dir / f"{record.run_id}.json", html=out_dir / f"{record.run_id}.html")
    payload = json.dumps(record.as_dict(), indent=1, ensure_ascii=False, allow_nan=False)
    # Written to a temporary name first: an interrupted run never leaves half a JSON behind.
    tmp = files.json.with_suffix(".json.tmp")
    tmp.write_text(payload + "\n", encoding="utf-8")
    os.replace(tmp, files.json)
    files.html.write_text(render_run(record), encoding="utf-8")
    return files


def resolve_run(ref: str, reports_dir: Path = DEFAULT_REPORTS_DIR) -> Path:
    """Find a run's JSON from a path, a run id, or a unique prefix of a run id.

    Raises:
        FileNotFoundError: nothing matches (the message says where it looked).
        ValueError: a prefix matches several runs.
    """
    path = Path(ref)
    if path.is_file():
        return path
    if path.is_dir() and (path / "run.json").is_file():
        return path / "run.json"
    exact = reports_dir / f"{ref}.json"
    if exact.is_file():
        return exact
    matches = sorted(p for p in reports_dir.glob(f"{ref}*.json") if p.is_file())
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        names = ", ".join(p.stem for p in matches[:5])
        raise ValueError(f"{ref!r} matches {len(matches)} runs in {reports_dir} ({names}...)")
    raise FileNotFoundError(f"no run {ref!r}: not a file, and no {reports_dir}/{ref}*.json")


def load_run(ref: str | Path, reports_dir: Path = DEFAULT_REPORTS_DIR) -> RunRecord:
    """Load a run record by path or run id (see :func:`resolve_run`).

    Raises:
        FileNotFoundError: no such run.
        ValueError: the file is not JSON or not a run record.
    """
    path = resolve_run(str(ref), reports_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from exc
    try:
        return RunRecord.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
