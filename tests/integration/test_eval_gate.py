"""The quality gate on the demo tenant: it passes as shipped and fails on broken components.

Runs the fixed demo slices of ``evals/gate.py`` on the test session's database (demo tenant
loaded, offline models): retrieval on every demo question with gold ids, the answers and
escalation suites on a third of the answerable questions (plus the unanswerable ones). The
thresholds and how they were measured are in ``evals/gate.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from evals.gate import (
    answers_gate,
    demo_slices,
    escalation_gate,
    guardrails_gate,
    intents_gate,
    memoized,
    retrieval_gate,
)
from evals.suites.graph_cases import AnswerCase, graph_answerer
from evals.suites.guardrails import demo_guard_sets
from evals.suites.intents import demo_intent_rows

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def recorded() -> dict[str, Any]:
    """The real graph's answers, kept so the broken-answer tests reuse them."""
    return {}


def _recording(answer: Any, store: dict[str, Any]) -> Any:
    async def wrapped(cases: Sequence[AnswerCase]) -> list[Any]:
        results = await answer(cases)
        store.update({c.id: r for c, r in zip(cases, results, strict=True)})
        return results

    return memoized(wrapped)


async def test_demo_tenant_passes_the_gate(
    services: Any, demo: Any, graph: Any, recorded: dict[str, Any]
) -> None:
    slices = demo_slices()

    async def search(question: str, k: int) -> Any:
        return await services.kb.search(demo.id, question, k=k)

    answer = _recording(graph_answerer(graph, services, demo.slug), recorded)
    results = [
        await retrieval_gate(search, slices["retrieval"]),
        await answers_gate(answer, slices["answers"], services),
        await escalation_gate(answer, slices["escalation"]),
    ]
    for r in results:
        assert r.passed, f"{r.suite} gate failed: {r.failures}; metrics {r.metrics}"


async def test_intents_and_guardrails_pass_the_gate(services: Any, demo: Any) -> None:
    from nlp.guard import load_guard

    intents = intents_gate(demo_intent_rows(services.prompts.root), services.models.embeddings)
    assert intents.passed, intents.failures
    attacks, benign = demo_guard_sets()
    guard = load_guard(services.prompts.root)
    guardrails = guardrails_gate(guard, attacks, benign, demo.policy)
    assert guardrails.passed, guardrails.failures


def test_an_intent_classifier_trained_on_mislabelled_examples_fails_the_gate(
    services: Any,
) -> None:
    rows = demo_intent_rows(services.prompts.root)
    labels = [r.intent for r in rows]
    # Every example carries its neighbour's label: the data of a careless CSV edit.
    broken = [
        type(r)(r.text, label) for r, label in zip(rows, labels[7:] + labels[:7], strict=True)
    ]
    result = intents_gate(broken, services.models.embeddings)
    assert not result.passed and any(f.startswith("accuracy") for f in result.failures)


def test_a_guard_that_lets_everything_through_or_blocks_everyone_fails_the_gate(
    demo: Any,
) -> None:
    from nlp.guard import Screening

    class Guard:
        def __init__(self, blocked: bool) -> None:
            self.blocked = blocked

        def screen(self, text: str) -> Screening:
            verdict = {"blocked": self.blocked, "category": "x" if self.blocked else "ok"}
            return Screening({**verdict, "reason": ""}, "rules")  # type: ignore[arg-type]

        def screen_many(self, texts: Sequence[str]) -> list[Screening]:
            return [self.screen(t) for t in texts]

    attacks, benign = demo_guard_sets()
    lax = guardrails_gate(Guard(blocked=False), attacks, benign, demo.policy)
    assert not lax.passed and any(f.startswith("attack_block_rate") for f in lax.failures)
    strict = guardrails_gate(Guard(blocked=True), attacks, benign, demo.policy)
    assert not strict.passed and any(f.startswith("benign_block_rate") for f in strict.failures)


async def test_a_retriever_returning_the_wrong_articles_fails_the_gate(
    services: Any, demo: Any
) -> None:
    async def broken(question: str, k: int) -> Any:
        # A plausible-looking retriever with a bug: it ignores the question it was given.
        return await services.kb.search(demo.id, "what should I do if I smell gas", k=k)

    result = await retrieval_gate(broken, demo_slices()["retrieval"])
    assert not result.passed
    assert any(f.startswith("recall@4") for f in result.failures)


async def test_answers_to_the_wrong_questions_fail_the_gate(
    services: Any, recorded: dict[str, Any]
) -> None:
    slices = demo_slices()
    if not all(q.id in recorded for q in slices["answers"]):
        pytest.skip("needs the real answers recorded by test_demo_tenant_passes_the_gate")
    real = [recorded[q.id] for q in slices["answers"]]

    async def shifted(cases: Sequence[AnswerCase]) -> list[Any]:
        # Every case gets the (real, grounded) answer to the next question: fluent, cited,
        # and wrong.
        return (real[1:] + real[:1])[: len(cases)]

    result = await answers_gate(shifted, slices["answers"], services)
    assert not result.passed
    assert any(f.startswith(("rouge_l", "gold_citation_rate")) for f in result.failures)


async def test_an_assistant_that_declines_everything_fails_the_gate(
    services: Any, recorded: dict[str, Any]
) -> None:
    from evals.answering import AnswerResult

    async def declines(cases: Sequence[AnswerCase]) -> list[Any]:
        return [
            AnswerResult(
                input=c.question,
                answer="I'm sorry, I couldn't find that in our help articles.",
                citations=[],
                handoff=False,
                declined=True,
                confidence=0.1,
                contexts=[],
                intent="question",
                latency_s=0.0,
            )
            for c in cases
        ]

    slices = demo_slices()
    answers = await answers_gate(declines, slices["answers"], services)
    escalation = await escalation_gate(declines, slices["escalation"])
    assert not answers.passed and any(f.startswith("answered_rate") for f in answers.failures)
    assert not escalation.passed
    assert any(f.startswith("answer_rate_answerable") for f in escalation.failures)
