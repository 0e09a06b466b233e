"""The quality gate's own rules (``evals/gate.py``): thresholds and missing metrics, fixed demo
slices, and an answerer that asks each case once. Running the gate is in
``tests/integration/test_eval_gate.py``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evals.core import SuiteResult
from evals.gate import (
    THRESHOLDS,
    Threshold,
    demo_slices,
    judge,
    memoized,
)
from evals.suites.graph_cases import AnswerCase


async def test_memoized_answerer_asks_each_case_once() -> None:
    asked: list[str] = []

    async def answer(cases: Sequence[AnswerCase]) -> list[Any]:
        asked.extend(c.id for c in cases)
        return [f"answer to {c.id}" for c in cases]

    memo = memoized(answer)
    a, b = (
        AnswerCase(id="a", item="A?", question="A?"),
        AnswerCase(id="b", item="B?", question="B?"),
    )
    assert await memo([a]) == ["answer to a"]
    assert await memo([b, a]) == ["answer to b", "answer to a"]
    assert asked == ["a", "b"]


def test_threshold_bounds_and_missing_metrics() -> None:
    low = Threshold("recall@4", minimum=0.8)
    assert low.check(0.8) is None and low.check(0.79) == "recall@4 = 0.790 < 0.800"
    assert Threshold("benign_block_rate", maximum=0.05).check(0.1) is not None
    assert low.check(None) == "recall@4 is missing"
    verdict = judge("retrieval", SuiteResult(metrics={"recall@4": 0.99}, examples=[]))
    assert not verdict.passed  # hit@4 and mrr@10 are missing, and missing is a failure
    assert {t.metric for t in THRESHOLDS["retrieval"]} <= {"recall@4", "hit@4", "mrr@10"}


def test_slices_are_fixed_and_cover_both_escalation_classes() -> None:
    slices = demo_slices()
    assert len(slices["retrieval"]) >= 60
    assert 15 <= len(slices["answers"]) <= 30
    labels = {q.answerable for q in slices["escalation"]}
    assert labels == {True, False}
    assert demo_slices() == slices
