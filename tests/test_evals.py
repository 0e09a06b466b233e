"""The eval workbench: run records, reports, comparison, loaders, ragas metrics, suites.

Unit tests need nothing running; the suite tests at the end run on the real Postgres of the
test session (demo tenant loaded) with offline models.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from evals.compare import compare_runs
from evals.core import Example, RunClock, RunRecord, SuiteResult, load_run, write_run
from evals.loaders import (
    DEMO_QUESTIONS,
    check_gold_ids,
    load_kb,
    load_questions,
)
from evals.report import confusion_heatmap

# ------------------------------------------------------------------ helpers


_VOID = {"meta", "br", "hr", "img", "input", "link", "rect", "col"}


class _TagChecker(HTMLParser):
    """Checks that every opened element is closed in order (well-formed enough to render)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check_html(page: str) -> _TagChecker:
    parser = _TagChecker()
    parser.feed(page)
    parser.close()
    assert not parser.errors, parser.errors[:5]
    assert not parser.stack, f"unclosed: {parser.stack}"
    return parser


def record(
    metrics: dict[str, float | None],
    examples: list[Example],
    *,
    suite: str = "retrieval",
    tables: dict[str, Any] | None = None,
    directions: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
) -> RunRecord:
    clock = RunClock(suite)
    return clock.finish(
        SuiteResult(
            metrics=metrics,
            examples=examples,
            tables=tables or {},
            directions=directions or {},
        ),
        config=config or {"k": 4},
        dataset={"name": "demo", "path": "evals/datasets/demo_questions.jsonl"},
    )


# ------------------------------------------------------------------ records and reports


def test_report_is_self_contained_html_with_every_section(tmp_path: Path) -> None:
    hostile = "<script>alert('x')</script> & <b>bold</b>"
    rec = record(
        {"recall@4": 0.75, "mrr@10": 0.5, "latency_p50_ms": 80.0, "missing": float("nan")},
        [
            Example(
                id="q1",
                input=hostile,
                expected=["opening-hours"],
                output=["contact-us"],
                score=0.0,
                ok=False,
                metrics={"recall@4": 0.0},
                contexts=[
                    {"source_id": "contact-us", "title": "Contact", "text": hostile, "gold": False}
                ],
            ),
            Example(id="q2", input="fine", expected=["a"], output=["a"], score=1.0, ok=True),
        ],
        tables={
            "confusion": {"labels": ["billing", "booking"], "matrix": [[3, 1], [0, 4]]},
            "per_intent": {"billing": {"precision": 1.0, "recall": 0.75}},
            "misses": {"title": "Misses", "columns": ["article", "n"], "rows": [["x", 2]]},
        },
    )
    files = write_run(rec, tmp_path)
    page = files.html.read_text(encoding="utf-8")
    parsed = check_html(page)

    assert page.startswith("<!DOCTYPE html>")
    for section in ("Metrics", "Tables", "Worst examples", "All examples"):
        assert f"<h2>{section}" in page
    assert "<svg" in page and "recall@4" in page  # per-metric bars
    assert 'class="heat"' in page  # confusion matrix heat map
    assert "retrieved contexts (1)" in page  # the worst example shows its contexts
    # Dataset text is escaped, never markup; nothing is loaded from elsewhere.
    assert "<script" not in page
    assert "&lt;script&gt;" in page
    assert all(t != "script" for t, _ in parsed.tags)
    assert not [a for _, attrs in parsed.tags for a in attrs if a in ("src", "href")]
    # The worst example comes first.
    assert page.index("<strong>q1</strong>") < page.index("<strong>q2</strong>")


def test_run_json_is_strict_and_loads_by_id_or_prefix(tmp_path: Path) -> None:
    rec = record({"recall@4": float("nan"), "mrr@10": 0.5}, [Example(id="q1", input="x")])
    files = write_run(rec, tmp_path)
    data = json.loads(files.json.read_text(encoding="utf-8"))  # strict JSON: no NaN literal
    assert data["metrics"] == {"recall@4": None, "mrr@10": 0.5}
    assert data["suite"] == "retrieval" and data["run_id"] == rec.run_id
    assert data["duration_s"] >= 0 and data["started_at"]

    assert load_run(rec.run_id, tmp_path).metrics["mrr@10"] == 0.5
    assert load_run(rec.run_id[:-3], tmp_path).run_id == rec.run_id
    assert load_run(files.json).run_id == rec.run_id
    with pytest.raises(FileNotFoundError):
        load_run("nope", tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text('{"suite": "x"}', encoding="utf-8")
    with pytest.raises(ValueError, match="missing"):
        load_run(bad)


def test_confusion_heatmap_limits_large_label_sets() -> None:
    n = 40
    labels = [f"l{i}" for i in range(n)]
    matrix = [[5 if i == j else 0 for j in range(n)] for i in range(n)]
    matrix[3][7] = 2  # the only confusions: l3 and l7 must be among the labels shown
    page = confusion_heatmap(labels, matrix)
    assert "showing the 30" in page
    assert ">l3<" in page and ">l7<" in page
    assert page.count("<tr>") == 31  # header + 30 rows


# ------------------------------------------------------------------ compare


def test_compare_finds_improved_and_regressed_metrics_and_examples() -> None:
    a = record(
        {"recall@4": 0.70, "mrr@10": 0.60, "latency_p50_ms": 100.0, "benign_block_rate": 0.1},
        [
            Example(id="q1", input="a", score=0.0, ok=False, output=["x"]),
            Example(id="q2", input="b", score=1.0, ok=True, output=["y"]),
            Example(id="q3", input="c", score=0.5, ok=True),
            Example(id="gone", input="d", score=1.0, ok=True),
        ],
        directions={"benign_block_rate": "lower"},
    )
    b = record(
        {"recall@4": 0.80, "mrr@10": 0.55, "latency_p50_ms": 90.0, "benign_block_rate": 0.2},
        [
            Example(id="q1", input="a", score=1.0, ok=True, output=["y"]),
            Example(id="q2", input="b", score=0.0, ok=False, output=["x"]),
            Example(id="q3", input="c", score=0.5, ok=True),
            Example(id="new", input="e", score=1.0, ok=True),
        ],
        directions={"benign_block_rate": "lower"},
    )
    comp = compare_runs(a, b)
    assert comp.metric_names("improved") == ["recall@4", "latency_p50_ms"]
    assert comp.metric_names("regressed") == ["mrr@10", "benign_block_rate"]
    assert comp.example_ids("improved") == ["q1"]
    assert comp.example_ids("regressed") == ["q2"]
    assert comp.example_ids("unchanged") == ["q3"]
    assert comp.example_ids("removed") == ["gone"] and comp.example_ids("added") == ["new"]
    assert comp.regressed
    assert not compare_runs(a, a).regressed
    summary = comp.summary()
    assert summary["regressed_examples"] == ["q2"]
    json.dumps(summary)  # JSON-ready


def test_compare_refuses_other_suites_and_flags_other_configs() -> None:
    a = record({"x": 1.0}, [], suite="retrieval")
    with pytest.raises(ValueError, match="cannot compare"):
        compare_runs(a, record({"x": 1.0}, [], suite="intents"))
    comp = compare_runs(a, record({"x": 1.0}, [], config={"k": 8}))
    assert any("configuration: k" in w for w in comp.warnings)


def test_comparison_page_is_valid_html() -> None:
    from evals.report import render_comparison

    a = record({"m": 0.5}, [Example(id="q1", input="<i>x</i>", score=1.0, ok=True)])
    b = record({"m": 0.4}, [Example(id="q1", input="<i>x</i>", score=0.0, ok=False)])
    page = render_comparison(compare_runs(a, b))
    check_html(page)
    assert "Regressed examples" in page and "&lt;i&gt;" in page


# ------------------------------------------------------------------ loaders


def test_demo_question_set_loads() -> None:
    questions = load_questions(DEMO_QUESTIONS)
    assert len(questions) >= 80
    unanswerable = [q for q in questions if not q.answerable]
    assert unanswerable and all(not q.gold_ids for q in unanswerable)
    assert all(q.gold_ids and q.answer for q in questions if q.answerable)


def test_question_formats_jsonl_csv_and_galaxy(tmp_path: Path) -> None:
    jsonl = tmp_path / "q.jsonl"
    jsonl.write_text(
        '{"id": "a", "question": "Open on Sunday?", "gold_ids": ["hours"], "answer": "No."}\n'
        "\n"
        '{"id": "b", "question": "Radiant floors?", "answerable": false}\n'
        '{"id": "s10-1", "question": "GPS?", "answer": "From Settings...",'
        ' "section_path": "Settings>Location", "gold_section_ids": ["section_406"]}\n',
        encoding="utf-8",
    )
    a, b, s = load_questions(jsonl)
    assert a.gold_ids == ("hours",) and a.answerable and a.answer == "No."
    assert not b.answerable and b.gold_ids == ()
    assert s.gold_ids == ("section_406",) and s.meta == {"section_path": "Settings>Location"}

    csv_path = tmp_path / "q.csv"
    csv_path.write_text(
        "id,question,gold_ids,answer,answerable\n"
        'c1,"Pay in person?",contact-us;payment-methods,"Yes, at the counter.",\n'
        "c2,Do you do roofs?,,,false\n",
        encoding="utf-8",
    )
    c1, c2 = load_questions(csv_path)
    assert c1.gold_ids == ("contact-us", "payment-methods") and c1.answerable
    assert not c2.answerable


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": "a"}\n', r"q\.jsonl:1: 'question'"),
        ('{"id": "a", "question": "x"}\n{"id": "a", "question": "y"}\n', "duplicate"),
        ('{"id": "a", "question": "x", "gold_ids": 5}\n', "gold ids"),
        ('{"id": "a", "question": "x", "answerable": "maybe"}\n', "answerable"),
        ("not json\n", r"q\.jsonl:1: not JSON"),
        ("", "no questions"),
    ],
)
def test_bad_question_rows_name_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_questions(path)


def test_kb_formats_jsonl_and_markdown_folder(tmp_path: Path) -> None:
    sections = tmp_path / "sections.jsonl"
    sections.write_text(
        '{"id": "section_0", "title": "Features", "text": "Features\\nWireless PowerShare",'
        ' "url": "https://example.invalid"}\n'
        '{"id": "doc_1", "title": "Internal: Opening", "content": "## Steps\\n1. Verify.",'
        ' "visibility": "internal"}\n',
        encoding="utf-8",
    )
    s0, d1 = load_kb(sections)
    assert (s0.source_id, s0.title, s0.visibility) == ("section_0", "Features", "external")
    assert d1.body.startswith("## Steps") and d1.visibility == "internal"

    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "hours.md").write_text("# Opening hours\n\nMon-Fri 8-6.\n", encoding="utf-8")
    (article,) = load_kb(folder)
    assert article.source_id == "hours" and article.title == "Opening hours"

    q = tmp_path / "q.jsonl"
    q.write_text('{"id": "1", "question": "x", "gold_ids": ["hours", "nope"]}\n')
    assert check_gold_ids(load_questions(q), [article]) == ["nope"]

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "title": "t"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: expected the article text"):
        load_kb(bad)


# ------------------------------------------------------------------ ragas, offline


async def test_ragas_offline_metrics_compute_without_a_model_or_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from evals.ragas_metrics import OfflineScorers

    scorers = OfflineScorers()
    import ragas._analytics as analytics

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("ragas tried to send telemetry")

    monkeypatch.setattr(analytics.requests, "post", no_network)
    assert analytics.do_not_track()

    got = await scorers.retrieval(
        ["hours", "contact", "pricing"],
        ["hours", "refunds"],
        ["Open 8 to 6 on weekdays.", "Call 555-0142."],
        ["Open 8 to 6 on weekdays."],
    )
    assert got["id_context_recall"] == pytest.approx(0.5)  # one of two gold articles
    assert got["id_context_precision"] == pytest.approx(1 / 3)  # one of three retrieved
    assert got["non_llm_context_recall"] == pytest.approx(1.0)  # the gold passage is there
    missed = await scorers.retrieval(["contact"], ["hours"], ["Call us."], ["Open 8 to 6."])
    assert missed == {
        "id_context_recall": 0.0,
        "id_context_precision": 0.0,
        "non_llm_context_recall": 0.0,
    }

    same = await scorers.answer("The office opens at 8 am.", "The office opens at 8 am.")
    assert same == {"string_similarity": 1.0, "rouge_l": 1.0}
    near = await scorers.answer("The office opens at 9 am.", "The office opens at 8 am.")
    assert 0.5 < near["rouge_l"] < 1.0 and 0.5 < near["string_similarity"] < 1.0
    assert await scorers.answer("anything", "") == {"string_similarity": None, "rouge_l": None}
    analytics._analytics_batcher.flush()  # would post here if telemetry were on


@pytest.mark.parametrize(("verdict", "expected"), [(1, 1.0), (0, 0.0)])
async def test_ragas_llm_metric_uses_the_configured_judge(verdict: int, expected: float) -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from evals.ragas_metrics import LlmScorers
    from graph.models import local_embeddings

    claim = "The office opens at 8 am on Saturdays."
    judge = FakeListChatModel(
        responses=[
            json.dumps({"statements": [claim]}),
            json.dumps({"statements": [{"statement": claim, "reason": "r", "verdict": verdict}]}),
        ]
    )
    scorers = LlmScorers.build(judge, local_embeddings())
    from evals.ragas_metrics import _sample, _score

    sample = _sample(
        user_input="open saturday?",
        response=claim,
        retrieved_contexts=["On Saturdays the office is open from 8:00 am to 2:00 pm."],
    )
    assert await _score(scorers.faithfulness, sample) == expected
