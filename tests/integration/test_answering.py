"""The answering runner, the ``deskgraph answer`` probe, the MTRAG loader and the escalation
benchmark's arithmetic. The graph runs for real on the demo tenant (offline models, real
Postgres)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evals.answering import answer_many, answer_one, parse_item
from evals.benchmarks.escalation import Outcome, choose_threshold, summarise
from evals.mtrag import collection_articles, load_tasks, passage_article, tenant_slug

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
        services.prompts.reply("decline"),
        services.prompts.reply("out_of_scope"),
    }


@pytest.mark.integration
async def test_asking_for_a_person_is_a_handoff(graph, services, demo):
    result = await answer_one(graph, services, demo, "I want to talk to a person")
    assert result.handoff and not result.declined
    assert result.handoff_reason == "explicit_request"
    assert result.intent == "human_request"
    assert result.answer == services.prompts.reply("handoff")
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
    decline = services.prompts.reply("decline")
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


# ------------------------------------------------------------------ inputs


def test_parse_item_takes_the_last_user_turn_and_the_turns_before_it() -> None:
    question, history = parse_item(
        {
            "turns": [
                {"speaker": "user", "text": "a"},
                {"speaker": "agent", "text": "b"},
                {"speaker": "user", "text": "c"},
                {"speaker": "agent", "text": "trailing agent turn"},
            ]
        }
    )
    assert question == "c"
    assert history == [{"speaker": "user", "text": "a"}, {"speaker": "agent", "text": "b"}]
    assert parse_item("plain") == ("plain", [])
    assert parse_item({"question": "q"}) == ("q", [])


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("   ", "empty"),
        (42, "expected a question"),
        ({"text": "x"}, "'turns'"),
        ({"turns": []}, "non-empty"),
        ({"turns": [{"speaker": "bot", "text": "x"}]}, "turn 0"),
        ({"turns": [{"speaker": "user", "text": 3}]}, "turn 0"),
        ({"turns": [{"speaker": "agent", "text": "only the agent"}]}, "no user turn"),
    ],
)
def test_parse_item_names_what_is_wrong(item: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_item(item)


def test_probe_line_parsing() -> None:
    from cli.probes import parse_line

    assert parse_line("  how much?  \n") == "how much?"
    assert parse_line('{"turns": []}') == {"turns": []}
    assert parse_line('"quoted"') == "quoted"
    assert parse_line("[not json") == "[not json"
    with pytest.raises(ValueError, match="list"):
        parse_line("[1]")


# ------------------------------------------------------------------ MTRAG loader


def _task(**kw: Any) -> dict[str, Any]:
    row = {
        "task_id": "c1<::>2",
        "conversation_id": "c1",
        "collection": "govt",
        "answerability": "ANSWERABLE",
        "turns": [
            {"speaker": "user", "text": "What is X?"},
            {"speaker": "agent", "text": "X is a thing."},
            {"speaker": "user", "text": "How does it work?"},
        ],
        "contexts": [{"document_id": "d1", "text": "Title of d1\nBody of d1."}],
        "reference": "It works.",
    }
    return row | kw


def test_mtrag_tasks_and_per_collection_articles(tmp_path: Path) -> None:
    path = tmp_path / "dev.jsonl"
    rows = [
        _task(),
        _task(task_id="c2<::>1", contexts=[{"document_id": "d1", "text": "Title of d1\nBody."}]),
        _task(task_id="c3<::>1", collection="fiqa", answerability="UNANSWERABLE", contexts=[]),
        _task(
            task_id="c4<::>1",
            collection="fiqa",
            contexts=[{"document_id": "f1", "text": "\nNo title line here, just a passage."}],
        ),
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    tasks = load_tasks(path)
    assert [t.task_id for t in tasks] == ["c1<::>2", "c2<::>1", "c3<::>1", "c4<::>1"]
    assert tasks[0].question == "How does it work?"
    assert tasks[0].item == {"turns": rows[0]["turns"]}
    assert tasks[0].tenant == tenant_slug("govt") == "mtrag-govt"
    articles = collection_articles(tasks)
    assert sorted(articles) == ["fiqa", "govt"]
    assert [a.source_id for a in articles["govt"]] == ["d1"], "a passage is ingested once"
    assert (articles["govt"][0].title, articles["govt"][0].body) == ("Title of d1", "Body of d1.")
    untitled = articles["fiqa"][0]
    assert untitled.body == "No title line here, just a passage."
    assert untitled.title.startswith("No title line here")


def test_passage_without_a_title_line_keeps_every_word() -> None:
    one_line = passage_article("p", "Just one line of text that is the whole passage.")
    assert one_line.body == "Just one line of text that is the whole passage."


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("[1]", "JSON object"),
        ("{not json", "not JSON"),
        (json.dumps(_task(answerability="MAYBE")), "answerability"),
        (json.dumps(_task(turns=[])), "turns"),
        (json.dumps(_task(turns=[{"speaker": "agent", "text": "x"}])), "last turn"),
        (json.dumps(_task(contexts=[{"text": "x"}])), "context 0"),
        (json.dumps({"task_id": "x"}), "missing"),
    ],
)
def test_mtrag_loader_names_the_bad_line(tmp_path: Path, row: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(_task()) + "\n" + row + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"bad\.jsonl:2: .*{message}"):
        load_tasks(path)


def test_mtrag_loader_says_where_the_file_was_expected(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.jsonl"):
        load_tasks(tmp_path / "missing.jsonl")


# ------------------------------------------------------------------ benchmark arithmetic


def _o(label: str, kind: str, confidence: float | None = 0.6, dataset: str = "mtrag") -> Outcome:
    return Outcome(
        dataset=dataset,
        id=f"{label}-{kind}-{confidence}",
        conversation="c",
        collection="govt",
        label=label,
        handoff=kind == "handoff",
        declined=kind == "declined",
        confidence=confidence,
        handoff_reason="intent:legal" if kind == "handoff" else None,
        question="q",
    )


def test_should_not_answer_precision_and_recall() -> None:
    outcomes = [
        _o("ANSWERABLE", "answered"),
        _o("ANSWERABLE", "answered"),
        _o("ANSWERABLE", "declined", 0.3),
        _o("UNANSWERABLE", "declined", 0.3),
        _o("UNANSWERABLE", "handoff", None),
        _o("UNANSWERABLE", "answered"),
        _o("UNDERSPECIFIED", "declined", 0.2),
    ]
    s = summarise(outcomes)
    # not answered: 1 answerable (false positive), 2 unanswerable (true positives), 1 missed
    assert s["should_not_answer"] == {"precision": 0.6667, "recall": 0.6667, "f1": 0.6667}
    assert s["answerable_answered"] == 0.6667
    assert s["unanswerable_not_answered"] == 0.6667
    assert s["by_label"]["UNANSWERABLE"]["handoff"] == 1
    assert s["by_label"]["UNDERSPECIFIED"]["declined_rate"] == 1.0
    assert s["n"] == 7


def test_threshold_sweep_moves_drafted_outcomes_only() -> None:
    drafted = _o("ANSWERABLE", "declined", 0.45)
    handed_off = _o("UNANSWERABLE", "handoff", None)
    assert drafted.kind_at(0.40) == "answered" and drafted.kind_at(0.50) == "declined"
    assert handed_off.kind_at(0.0) == "handoff"
    outcomes = [
        _o("ANSWERABLE", "answered", 0.70),
        _o("ANSWERABLE", "answered", 0.55),
        _o("UNANSWERABLE", "answered", 0.52),
        _o("UNANSWERABLE", "declined", 0.30),
    ]
    # 0.53..0.55 answers both answerable and declines both unanswerable; the lowest is chosen
    assert choose_threshold(outcomes) == 0.53


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
    assert pine.answer.startswith("Yes. ") and "Pine Ridge" in pine.answer, pine.answer
    # the office is closed on Labor Day: a list of closures is never read as a yes
    labor = await answer_one(graph, services, demo, "Are you open on Labor Day?")
    assert not labor.answer.startswith(("Yes", "No")), labor.answer
