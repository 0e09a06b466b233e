"""Eval suites on the real Postgres of the test session (demo tenant loaded, offline models):
retrieval on a knowledge base passed by path, the feedback export, and ``deskgraph eval`` runs
writing their reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evals.loaders import load_questions
from evals.store import load_run


@pytest.mark.integration
async def test_retrieval_run_on_a_kb_passed_by_path(services: Any, tmp_path: Path) -> None:
    from evals.suites.retrieval import retrieval_run

    kb = tmp_path / "tinykb" / "sections.jsonl"
    kb.parent.mkdir()
    kb.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {
                    "id": "s1",
                    "title": "Battery",
                    "text": "Charge the battery with the USB-C cable.",
                },
                {
                    "id": "s2",
                    "title": "Wi-Fi",
                    "text": "Turn on Wi-Fi from Settings > Connections.",
                },
                {
                    "id": "s3",
                    "title": "Camera",
                    "text": "Open Camera and tap the shutter to shoot.",
                },
            ]
        ),
        encoding="utf-8",
    )
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        '{"id": "1", "question": "how do I charge the battery", "gold_section_ids": ["s1"]}\n'
        '{"id": "2", "question": "connect to wifi", "gold_section_ids": ["s2"]}\n',
        encoding="utf-8",
    )
    rec = await retrieval_run(services, kb=kb, questions=questions, k=1, depth=3)
    assert rec.config["tenant"] == "eval-tinykb"
    assert rec.dataset["name"] == "tinykb" and rec.dataset["rows"] == 2
    assert rec.metrics["recall@1"] == 1.0 and rec.metrics["mrr@3"] == 1.0
    assert rec.metrics["non_llm_context_recall"] == 1.0  # JSONL records are gold passages
    assert [e["output"] for e in rec.examples] == [["s1"], ["s2"]]

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "question": "x", "gold_ids": ["nope"]}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="not articles of"):
        await retrieval_run(services, kb=kb, questions=bad)


@pytest.mark.integration
async def test_edited_and_rejected_drafts_export_as_a_dataset(
    services: Any, demo: Any, graph: Any, tmp_path: Path
) -> None:
    from evals.feedback import export_feedback
    from helpdesk.errors import NotFound
    from tests.support.turns import new_conversation, resume, turn

    # Email answers are held for review by the demo tenant's default policy.
    question = "What time do you open on Saturdays?"
    edited_cid = await new_conversation(services, demo, channel="email")
    events = await turn(graph, services, demo, edited_cid, question, channel="email")
    assert "approval.pending" in events
    edit = "We're open 8:00 am to 2:00 pm on Saturdays."
    await resume(graph, edited_cid, {"action": "edit", "text": edit, "reviewer": "sam"})
    rejected_cid = await new_conversation(services, demo, channel="email")
    events = await turn(
        graph, services, demo, rejected_cid, "How much is your call-out fee?", channel="email"
    )
    assert "approval.pending" in events
    await resume(
        graph,
        rejected_cid,
        {"action": "reject", "reason": "cites the wrong page", "then": "handoff"},
    )

    out = tmp_path / "feedback.jsonl"
    stats = await export_feedback(services.pool, "demo", out)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    mine = {r["conversation_id"]: r for r in rows}
    e, r = mine[str(edited_cid)], mine[str(rejected_cid)]
    assert (e["label"], e["question"], e["answer"], e["reviewer"]) == (
        "edited",
        question,
        edit,
        "sam",
    )
    assert e["draft"] and e["draft"] != edit
    assert (r["label"], r["answer"], r["reason"], r["then"]) == (
        "rejected",
        "",
        "cites the wrong page",
        "handoff",
    )
    assert stats.rows == len(rows) and stats.edited >= 1 and stats.rejected >= 1
    # The export is a question set the answers suite can run: edits are its references.
    loaded = {q.id: q for q in load_questions(out)}
    assert loaded[e["id"]].answer == edit and loaded[e["id"]].answerable
    only = await export_feedback(services.pool, "demo", out, labels=("rejected",))
    assert only.edited == 0
    with pytest.raises(NotFound):
        await export_feedback(services.pool, "no-such-tenant", out)


@pytest.mark.integration
def test_cli_runs_a_suite_and_writes_its_reports(
    demo: Any, database_url: str, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    args = ["eval", "retrieval", "--limit", "5", "--out", str(tmp_path)]
    res = CliRunner().invoke(app, [*args, "--database-url", database_url, "--json"])
    assert res.exit_code == 0, res.output
    line = json.loads(res.output.strip().splitlines()[-1])
    assert line["suite"] == "retrieval" and line["dataset"] == "demo" and line["rows"] == 5
    assert line["langsmith"] == "skipped"
    rec = load_run(line["run_id"], tmp_path)
    assert rec.config["tenant"] == "demo" and len(rec.examples) == 5
    assert (tmp_path / f"{rec.run_id}.html").is_file()


@pytest.mark.integration
def test_cli_intents_on_a_train_and_test_file(demo: Any, database_url: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    train = tmp_path / "train.csv"
    train.write_text(
        "text,intent\n"
        + "".join(
            f"{t},{label}\n"
            for label, texts in {
                "billing": ["my bill is wrong", "refund my invoice", "charged twice", "pay bill"],
                "hours": ["when are you open", "opening hours", "open on sunday", "close time"],
                "booking": ["book a visit", "schedule a plumber", "make an appointment", "book"],
            }.items()
            for t in texts
        ),
        encoding="utf-8",
    )
    test = tmp_path / "test.jsonl"
    test.write_text(
        '{"text": "I was charged two times", "intent": "billing"}\n'
        '{"text": "are you open on saturday", "intent": "hours"}\n',
        encoding="utf-8",
    )
    args = ["eval", "intents", "--train", str(train), "--test", str(test), "--out", str(tmp_path)]
    res = CliRunner().invoke(app, [*args, "--database-url", database_url, "--json"])
    assert res.exit_code == 0, res.output
    line = json.loads(res.output.strip().splitlines()[-1])
    assert line["suite"] == "intents" and line["rows"] == 2
    rec = load_run(line["run_id"], tmp_path)
    assert rec.metrics["accuracy"] == 1.0
    assert rec.tables["confusion"]["labels"] and rec.tables["per_intent"]
    bad = CliRunner().invoke(
        app,
        [
            "eval",
            "intents",
            "--test",
            str(test),
            "--out",
            str(tmp_path),
            "--database-url",
            database_url,
        ],
    )
    assert bad.exit_code == 2 and "--train with --test" in bad.output
