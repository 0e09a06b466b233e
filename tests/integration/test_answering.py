"""The answering runner and the ``deskgraph answer`` probe on the real graph: the demo tenant,
offline models, real Postgres. Parsing and the benchmark's arithmetic are in
``tests/unit/test_answering.py``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from evals.answering import answer_many, answer_one

# ------------------------------------------------------------------ the graph, for real


@pytest.mark.integration
async def test_answerable_question_gets_a_cited_answer(graph, services, demo):
    result = await answer_one(graph, services, demo, "How much is your call-out fee?")
    assert not result.handoff and not result.declined
    assert "pricing-overview" in result.citations
    assert "$89" in result.answer
    assert result.confidence is not None and result.confidence >= demo.policy.escalate_below
    assert {c["source_id"] for c in result.contexts} >= set(result.citations)
    assert result.input == "How much is your call-out fee?"
    assert result.latency_s > 0


@pytest.mark.integration
async def test_question_outside_the_knowledge_base_is_declined(graph, services, demo):
    result = await answer_one(graph, services, "demo", "Do you sell gift cards for birthdays?")
    assert result.declined and not result.handoff
    assert result.citations == []
    assert result.confidence is not None and result.confidence < demo.policy.escalate_below
    # the "not in our articles" reply, or the off-topic redirect when the intent is out of scope
    assert result.answer in {
        services.prompts.reply("decline", demo.business),
        services.prompts.reply("out_of_scope", demo.business),
    }


@pytest.mark.integration
async def test_asking_for_a_person_is_a_handoff(graph, services, demo):
    result = await answer_one(graph, services, demo, "I want to talk to a person")
    assert result.handoff and not result.declined
    assert result.handoff_reason == "explicit_request"
    assert result.intent == "human_request"
    # whether someone is online is tests/integration/test_business_profile.py's to pin
    assert result.answer in {
        services.prompts.reply("handoff", demo.business),
        services.prompts.reply("handoff_nobody_online", demo.business),
    }
    assert result.citations == [] and result.confidence is None


@pytest.mark.integration
async def test_turns_item_answers_the_follow_up_in_the_context_of_the_history(
    graph, services, demo
):
    follow_up = "how much does it cost?"
    alone = await answer_one(graph, services, demo, follow_up)
    assert alone.declined, "on its own the follow-up does not say what 'it' is"
    item = {
        "turns": [
            {"speaker": "user", "text": "Tell me about the Brightwater Care membership"},
            {"speaker": "agent", "text": "It is our maintenance plan."},
            {"speaker": "user", "text": follow_up},
        ]
    }
    in_context = await answer_one(graph, services, demo, item)
    assert in_context.input == follow_up
    assert not in_context.declined and not in_context.handoff
    assert in_context.citations
    assert "$19" in in_context.answer
    assert in_context.confidence is not None and alone.confidence is not None
    assert in_context.confidence > alone.confidence


@pytest.mark.integration
async def test_history_of_declines_does_not_trigger_a_low_confidence_handoff(graph, services, demo):
    # Two declines in a row hand off in a live conversation; seeded history is context only.
    decline = services.prompts.reply("decline", demo.business)
    item = {
        "turns": [
            {"speaker": "user", "text": "Do you pump septic tanks?"},
            {"speaker": "agent", "text": decline},
            {"speaker": "user", "text": "Do you sell gift cards for birthdays?"},
        ]
    }
    result = await answer_one(graph, services, demo, item)
    assert result.declined and not result.handoff


@pytest.mark.integration
async def test_answer_many_keeps_order_and_refuses_a_bad_batch_up_front(graph, services, demo):
    results = await answer_many(
        graph,
        services,
        demo,
        ["I want to talk to a person", "How much is your call-out fee?"],
        concurrency=2,
    )
    assert [r.handoff for r in results] == [True, False]
    with pytest.raises(ValueError, match="item 1"):
        await answer_many(graph, services, demo, ["fine", {"turns": []}])
    with pytest.raises(ValueError, match="concurrency"):
        await answer_many(graph, services, demo, ["fine"], concurrency=0)


@pytest.mark.integration
def test_answer_command_gives_one_output_line_per_input_line(cli_database: str, demo: Any) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    lines = [
        "How much is your call-out fee?",
        "[1, 2]",
        json.dumps({"turns": [{"speaker": "user", "text": "I want to talk to a person"}]}),
    ]
    run = CliRunner().invoke(
        app, ["answer", "--tenant", "demo", "--jsonl"], input="\n".join(lines) + "\n"
    )
    assert run.exit_code == 2, run.output  # one invalid line
    out = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert len(out) == 3
    assert set(out[0]) == {"answer", "citations", "handoff", "declined", "confidence"}
    assert "pricing-overview" in out[0]["citations"] and out[0]["declined"] is False
    assert out[1]["error"]["code"] == "invalid_item"
    assert out[2]["handoff"] is True and out[2]["citations"] == []


@pytest.mark.integration
def test_answer_command_names_an_unknown_tenant(cli_database: str, demo: Any) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    run = CliRunner().invoke(app, ["answer", "--tenant", "nope-nope", "--jsonl"], input="hi\n")
    assert run.exit_code == 2
    assert "nope-nope" in run.output


def _follow_up(previous: str, question: str) -> dict[str, Any]:
    return {
        "turns": [
            {"speaker": "user", "text": previous},
            {"speaker": "agent", "text": "Happy to help with that."},
            {"speaker": "user", "text": question},
        ]
    }


@pytest.mark.integration
@pytest.mark.parametrize(
    ("previous", "question", "carried_over"),
    [
        (
            "How long does a water heater replacement take?",
            "My AC is not cooling, what should I do?",
            "Water heater replacement",
        ),
        (
            "I smelled gas yesterday, can you repair the gas line?",
            "What does your warranty cover?",
            "town permit",
        ),
    ],
)
async def test_a_follow_up_is_answered_not_the_previous_question(
    graph, services, demo, previous, question, carried_over
):
    """Issue 19 item 7: the previous message helps retrieval, but no sentence is chosen for
    being about it."""
    result = await answer_one(graph, services, demo, _follow_up(previous, question))
    assert not result.declined and not result.handoff and result.citations
    assert carried_over not in result.answer, result.answer


@pytest.mark.integration
async def test_yes_no_question_gets_the_no_or_the_yes_first(graph, services, demo):
    """Issue 19 item 11: Oakdale is not in the service-area list; Pine Ridge is."""
    oakdale = await answer_one(graph, services, demo, "Do you serve Oakdale?")
    assert oakdale.answer.startswith("No. "), oakdale.answer
    assert "service-area" in oakdale.citations
    body = [s.strip() for s in oakdale.answer.split(". ") if s.strip()]
    assert len(body) == len(set(body)), "no sentence twice"
    pine = await answer_one(graph, services, demo, "Do you serve Pine Ridge?")
    # (Pine Ridge is answered from the business profile's town list, graph/facts.py)
    assert pine.answer.startswith(("Yes. ", "Yes, ")) and "Pine Ridge" in pine.answer, pine.answer
    # the office is closed on Labor Day: a list of closures is never read as a yes
    labor = await answer_one(graph, services, demo, "Are you open on Labor Day?")
    assert not labor.answer.startswith(("Yes", "No")), labor.answer
