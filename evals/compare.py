"""Compare two runs of a suite: what improved and what regressed, per metric and per example.

Metrics are compared in their own direction (``RunRecord.direction``: a lower benign block rate
or latency is an improvement). A change smaller than ``tolerance`` is ``unchanged``, so noise in
the last digits does not read as a regression.

Examples are matched on their id. An example whose pass/fail flips is improved or regressed
whatever its score did; otherwise its score decides, with ``example_tolerance``. Examples in
only one run are ``added`` / ``removed``.

Comparing runs of two different suites is refused; different datasets or configurations are
compared but flagged, since the numbers then measure different things.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from evals.core import RunRecord, finite

Status = Literal["improved", "regressed", "unchanged", "added", "removed", "n/a"]


@dataclass(frozen=True)
class MetricDelta:
    """One metric in both runs."""

    name: str
    a: float | None
    b: float | None
    delta: float | None
    direction: str
    status: Status


@dataclass(frozen=True)
class ExampleDelta:
    """One example in both runs (or in one of them)."""

    id: str
    score_a: float | None
    score_b: float | None
    delta: float | None
    ok_a: bool | None
    ok_b: bool | None
    status: Status
    input: Any = None
    output_a: Any = None
    output_b: Any = None


@dataclass
class Comparison:
    """The comparison of run ``a`` (before) with run ``b`` (after)."""

    a: RunRecord
    b: RunRecord
    metrics: list[MetricDelta]
    examples: list[ExampleDelta]
    warnings: list[str] = field(default_factory=list)

    def metric_names(self, status: Status) -> list[str]:
        """Names of the metrics with this status."""
        return [m.name for m in self.metrics if m.status == status]

    def example_ids(self, status: Status) -> list[str]:
        """Ids of the examples with this status."""
        return [e.id for e in self.examples if e.status == status]

    @property
    def regressed(self) -> bool:
        """True when any metric or example regressed."""
        return any(m.status == "regressed" for m in self.metrics) or any(
            e.status == "regressed" for e in self.examples
        )

    def summary(self) -> dict[str, Any]:
        """Counts and names, JSON-ready (what ``deskgraph eval compare --json`` prints)."""
        counts: dict[str, int] = {}
        for e in self.examples:
            counts[e.status] = counts.get(e.status, 0) + 1
        return {
            "suite": self.a.suite,
            "run_a": self.a.run_id,
            "run_b": self.b.run_id,
            "warnings": self.warnings,
            "metrics": [asdict(m) for m in self.metrics],
            "improved_metrics": self.metric_names("improved"),
            "regressed_metrics": self.metric_names("regressed"),
            "examples": counts,
            "improved_examples": self.example_ids("improved"),
            "regressed_examples": self.example_ids("regressed"),
        }


def _status(delta: float, direction: str, tolerance: float) -> Status:
    if abs(delta) <= tolerance:
        return "unchanged"
    better = delta > 0 if direction == "higher" else delta < 0
    return "improved" if better else "regressed"


def compare_metrics(a: RunRecord, b: RunRecord, tolerance: float) -> list[MetricDelta]:
    """Every metric of either run, in A's order then B's new ones."""
    names = list(dict.fromkeys([*a.metrics, *b.metrics]))
    out = []
    for name in names:
        va, vb = finite(a.metrics.get(name)), finite(b.metrics.get(name))
        direction = b.direction(name) if name in b.metrics else a.direction(name)
        status: Status
        if name not in a.metrics:
            status, delta = "added", None
        elif name not in b.metrics:
            status, delta = "removed", None
        elif va is None or vb is None:
            status, delta = ("unchanged" if va is vb else "n/a"), None
        else:
            delta = vb - va
            status = _status(delta, direction, tolerance)
        out.append(MetricDelta(name, va, vb, delta, direction, status))
    return out


def _by_id(examples: list[dict[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {str(e.get("id")): e for e in examples}


def compare_examples(a: RunRecord, b: RunRecord, tolerance: float) -> list[ExampleDelta]:
    """Every example of either run, regressions first, then improvements, then the rest."""
    ea, eb = _by_id(a.examples), _by_id(b.examples)
    out = []
    for eid in dict.fromkeys([*ea, *eb]):
        xa, xb = ea.get(eid), eb.get(eid)
        base = xb or xa or {}
        sa = finite(xa.get("score")) if xa else None
        sb = finite(xb.get("score")) if xb else None
        oka = xa.get("ok") if xa else None
        okb = xb.get("ok") if xb else None
        delta = sb - sa if sa is not None and sb is not None else None
        status: Status
        if xa is None:
            status = "added"
        elif xb is None:
            status = "removed"
        elif oka is not None and okb is not None and oka != okb:
            status = "improved" if okb else "regressed"
        elif delta is not None:
            status = _status(delta, "higher", tolerance)
        else:
            status = "unchanged"
        out.append(
            ExampleDelta(
                id=eid,
                score_a=sa,
                score_b=sb,
                delta=delta,
                ok_a=oka,
                ok_b=okb,
                status=status,
                input=base.get("input"),
                output_a=xa.get("output") if xa else None,
                output_b=xb.get("output") if xb else None,
            )
        )
    order = {"regressed": 0, "improved": 1, "removed": 2, "added": 3}
    out.sort(key=lambda e: (order.get(e.status, 4), -abs(e.delta or 0.0)))
    return out


def compare_runs(
    a: RunRecord, b: RunRecord, *, tolerance: float = 1e-6, example_tolerance: float = 1e-6
) -> Comparison:
    """Compare run ``a`` (before) with run ``b`` (after).

    Args:
        a: the earlier (baseline) run.
        b: the later run.
        tolerance: metric changes at most this large count as unchanged.
        example_tolerance: example score changes at most this large count as unchanged.

    Raises:
        ValueError: the runs are of different suites.
    """
    if a.suite != b.suite:
        raise ValueError(f"cannot compare a {a.suite!r} run with a {b.suite!r} run")
    warnings = []
    name_a, name_b = a.dataset.get("name"), b.dataset.get("name")
    if name_a != name_b:
        warnings.append(f"different datasets: {name_a!r} vs {name_b!r}")
    changed = sorted(k for k in set(a.config) | set(b.config) if a.config.get(k) != b.config.get(k))
    if changed:
        warnings.append(f"different configuration: {', '.join(changed)}")
    if a.model_tier != b.model_tier:
        warnings.append(f"different model tiers: {a.model_tier} vs {b.model_tier}")
    return Comparison(
        a=a,
        b=b,
        metrics=compare_metrics(a, b, tolerance),
        examples=compare_examples(a, b, example_tolerance),
        warnings=warnings,
    )
