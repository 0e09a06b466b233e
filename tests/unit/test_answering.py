"""What the answering runner and the escalation benchmark compute without running the graph:
parsing an item and a probe line, the MTRAG loader, and the should-not-answer arithmetic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evals.answering import parse_item
from evals.benchmarks.escalation import Outcome, choose_threshold, summarise
from evals.mtrag import collection_articles, load_tasks, passage_article, tenant_slug

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
