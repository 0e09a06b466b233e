"""The eval workbench in this process: run records, reports, comparison, loaders, ragas metrics,
the LangSmith upload, suites on fake answers and the ``deskgraph eval`` commands' checks.

The suites that run on the real Postgres (demo tenant loaded, offline models) are in
``tests/integration/test_evals.py``.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from evals.compare import compare_runs
from evals.core import Example, RunClock, RunRecord, SuiteResult
from evals.loaders import (
    DEMO_QUESTIONS,
    check_gold_ids,
    load_kb,
    load_questions,
)
from evals.report import confusion_heatmap
from evals.store import load_run, write_run

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
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: bad_record"):
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
    rouge, similarity = near["rouge_l"], near["string_similarity"]
    assert rouge is not None and similarity is not None
    assert 0.5 < rouge < 1.0 and 0.5 < similarity < 1.0
    assert await scorers.answer("anything", "") == {"string_similarity": None, "rouge_l": None}
    analytics._analytics_batcher.flush()  # would post here if telemetry were on


@pytest.mark.parametrize(("verdict", "expected"), [(1, 1.0), (0, 0.0)])
async def test_ragas_llm_metric_uses_the_configured_judge(verdict: int, expected: float) -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from evals.ragas_metrics import LlmScorers
    from nlp.models import local_embeddings

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


# ------------------------------------------------------------------ LangSmith


class _FakeLangSmith:
    """Records what the upload asks of a LangSmith client (nothing leaves the process)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.examples: list[Any] = []

    def has_dataset(self, *, dataset_name: str) -> bool:
        self.calls.append(("has_dataset", dataset_name))
        return bool(self.examples)

    def create_dataset(self, name: str, **kwargs: Any) -> Any:
        self.calls.append(("create_dataset", name))
        return type("Dataset", (), {"id": "ds-1"})()

    def read_dataset(self, *, dataset_name: str) -> Any:
        return type("Dataset", (), {"id": "ds-1"})()

    def list_examples(self, *, dataset_id: str) -> list[Any]:
        return list(self.examples)

    def create_examples(self, *, dataset_id: str, examples: list[dict[str, Any]]) -> None:
        self.calls.append(("create_examples", len(examples)))
        for e in examples:
            self.examples.append(type("Ex", (), {"id": e["id"], "metadata": e["metadata"]})())

    def create_project(self, name: str, **kwargs: Any) -> Any:
        self.calls.append(("create_project", (name, kwargs["reference_dataset_id"])))
        return type("Project", (), {"id": "p-1"})()

    def create_run(self, **kwargs: Any) -> None:
        self.calls.append(("create_run", kwargs["reference_example_id"]))

    def flush(self) -> None:
        self.calls.append(("flush", None))

    def create_feedback(self, run_id: Any, *, key: str, score: float) -> None:
        self.calls.append(("create_feedback", (key, score)))

    def update_project(self, project_id: str, **kwargs: Any) -> None:
        self.calls.append(("update_project", project_id))


def test_langsmith_upload_sends_nothing_without_a_key() -> None:
    from evals.langsmith_upload import upload_run

    rec = record({"recall@4": 1.0}, [Example(id="q1", input="x", score=1.0, ok=True)])

    def factory(key: str) -> Any:
        raise AssertionError("a LangSmith client was constructed without a key")

    assert upload_run(rec, client_factory=factory, environ={}) == "skipped"
    assert upload_run(rec, client_factory=factory, environ={"LANGSMITH_API_KEY": " "}) == (
        "skipped"
    )


def test_langsmith_upload_makes_a_dataset_and_an_experiment() -> None:
    from evals.langsmith_upload import upload_run

    fake = _FakeLangSmith()
    keys: list[str] = []

    def factory(key: str) -> Any:
        keys.append(key)
        return fake

    rec = record(
        {"recall@4": 0.5},
        [
            Example(id="q1", input="x", score=1.0, ok=True, metrics={"rr": 1.0}),
            Example(id="q2", input="y", score=0.0, ok=False, metrics={"rr": None}),
        ],
    )
    env = {"LANGSMITH_API_KEY": "lsv2-test"}
    assert upload_run(rec, client_factory=factory, environ=env) == rec.run_id
    assert keys == ["lsv2-test"]
    names = [c for c, _ in fake.calls]
    assert names.count("create_dataset") == 1 and ("create_examples", 2) in fake.calls
    assert ("create_project", (rec.run_id, "ds-1")) in fake.calls
    assert names.count("create_run") == 2
    feedback = [v for c, v in fake.calls if c == "create_feedback"]
    assert ("rr", 1.0) in feedback and ("ok", 0.0) in feedback
    assert all(k != "rr" or s is not None for k, s in feedback)  # None metrics are not sent
    assert names.index("flush") < names.index("create_feedback")

    # A second run of the same suite and dataset reuses the dataset's examples.
    fake.calls.clear()
    upload_run(
        record({"recall@4": 0.6}, [Example(id="q1", input="x")]),
        client_factory=factory,
        environ=env,
    )
    assert not [c for c, _ in fake.calls if c in ("create_dataset", "create_examples")]


# ------------------------------------------------------------------ suites and commands


def _answer(text: str, **kw: Any) -> Any:
    from evals.answering import AnswerResult

    base: dict[str, Any] = {
        "input": "q",
        "answer": text,
        "citations": [],
        "handoff": False,
        "declined": False,
        "confidence": 0.6,
        "contexts": [],
        "intent": "question",
        "latency_s": 0.1,
    }
    return AnswerResult(**{**base, **kw})


async def test_escalation_suite_counts_should_not_answer_precision_and_recall() -> None:
    from evals.loaders import Question
    from evals.suites.escalation import cases_from_questions, run_escalation

    questions = [
        Question(id="a1", question="hours?", gold_ids=("hours",), answer="8-6"),
        Question(id="a2", question="price?", gold_ids=("prices",), answer="$89"),
        Question(id="u1", question="roofs?", answerable=False),
        Question(id="u2", question="solar?", answerable=False),
    ]
    outcomes = {
        "hours?": _answer("Open 8-6 [hours]"),  # answerable, answered: right
        "price?": _answer("sorry", declined=True),  # answerable, declined: wrong
        "roofs?": _answer("A person will help", handoff=True),  # unanswerable, handed off: right
        "solar?": _answer("Sure, solar is $5"),  # unanswerable, answered: wrong
    }

    async def answer(cases: Any) -> list[Any]:
        return [outcomes[c.question] for c in cases]

    result = await run_escalation(answer, cases_from_questions(questions))
    m = result.metrics
    assert m["answer_rate_answerable"] == 0.5
    assert m["should_not_answer_recall"] == 0.5  # u1 of u1, u2
    assert m["should_not_answer_precision"] == 0.5  # u1 of u1, a2
    assert m["accuracy"] == 0.5
    assert result.tables["confusion"]["matrix"] == [[1, 1], [1, 1]]
    assert {e.id for e in result.examples if not e.ok} == {"a2", "u2"}


def test_every_suite_in_the_registry_has_its_command() -> None:
    import inspect

    from cli import evaluate as cli_eval
    from evals.registry import SUITES

    commands = {c.name for c in cli_eval.eval_app.registered_commands}
    assert commands - {"compare", "export-feedback", "all"} == set(SUITES)
    for name, suite in SUITES.items():
        options = getattr(cli_eval, name)()  # the command's defaults, as its run gets them
        assert set(options) <= set(inspect.signature(suite.run).parameters) - {"services"}, name


async def test_eval_all_runs_each_suite_on_the_demo_then_on_the_shared_datasets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from evals.registry import SUITES, plan_all

    calls: list[tuple[str, dict[str, Any]]] = []
    for name, suite in SUITES.items():

        async def run(services: Any, *, _name: str = name, **options: Any) -> Any:
            calls.append((_name, options))

        monkeypatch.setitem(SUITES, name, dataclasses.replace(suite, run=run))
    for job in plan_all(None):
        await job(None)  # type: ignore[arg-type]
    assert calls == [
        ("retrieval", {}),
        ("answers", {"judge": False}),
        ("escalation", {}),
        ("intents", {}),
        ("guardrails", {}),
    ]
    with pytest.raises(FileNotFoundError, match="is it the shared datasets folder"):
        plan_all(tmp_path)
    d = tmp_path
    files = [
        d / "kb/galaxy_s10/sections.jsonl",
        d / "kb/galaxy_s10/questions.jsonl",
        d / "rag/mtrag/dev.jsonl",
        d / "guard/attacks_dev.jsonl",
        d / "intents/bitext/train.csv",
        d / "intents/bitext/dev.csv",
        d / "intents/banking77/train.csv",
        d / "intents/clinc150/train.jsonl",
        d / "intents/clinc150/val.jsonl",
    ]
    for f in files:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.touch()
    calls.clear()
    for job in plan_all(d)[5:]:
        await job(None)  # type: ignore[arg-type]
    kb, questions, mtrag, attacks, bitext, bitext_dev, banking, clinc, clinc_val = files
    assert calls == [
        ("retrieval", {"kb": kb, "questions": questions}),
        ("answers", {"kb": kb, "questions": questions, "judge": False}),
        ("answers", {"mtrag_path": mtrag, "judge": False}),
        ("escalation", {"mtrag_path": mtrag}),
        ("intents", {"train": bitext, "test": bitext_dev}),
        ("intents", {"train": banking, "split": 5}),
        ("intents", {"train": clinc, "test": clinc_val, "oos_label": "oos"}),
        ("guardrails", {"attacks": [attacks], "benign": [bitext_dev, clinc_val]}),
    ]


def test_cli_compare_reports_regressions_and_bad_refs(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    a = record({"recall@4": 0.9}, [Example(id="q1", input="x", score=1.0, ok=True)])
    b = record({"recall@4": 0.7}, [Example(id="q1", input="x", score=0.0, ok=False)])
    write_run(a, tmp_path)
    write_run(b, tmp_path)
    runner = CliRunner()
    args = ["eval", "compare", a.run_id, b.run_id, "--reports", str(tmp_path)]
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["regressed_metrics"] == ["recall@4"]
    assert summary["regressed_examples"] == ["q1"]
    page = tmp_path / "cmp.html"
    res = runner.invoke(app, [*args, "--fail-on-regression", "--html", str(page)])
    assert res.exit_code == 1 and page.is_file()
    assert "recall@4" in res.output and "regressed" in res.output
    res = runner.invoke(app, ["eval", "compare", "nope", b.run_id, "--reports", str(tmp_path)])
    assert res.exit_code == 2 and "no run 'nope'" in res.output


def test_judge_metrics_need_a_judge_model() -> None:
    from types import SimpleNamespace

    from evals.suites.answers import judge_scorers

    offline = SimpleNamespace(models=SimpleNamespace(judge=None, embeddings=None))
    assert judge_scorers(offline, None) is None  # type: ignore[arg-type]
    assert judge_scorers(offline, False) is None  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs a judge model"):
        judge_scorers(offline, True)  # type: ignore[arg-type]


def test_cli_refuses_bad_input_with_status_2(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    runner = CliRunner()
    res = runner.invoke(app, ["eval", "retrieval", "--kb", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "'--kb'" in res.output  # rich wraps the rest of the message
    res = runner.invoke(
        app, ["eval", "export-feedback", "--tenant", "demo", "--out", "x", "--only", "bad"]
    )
    assert res.exit_code == 2 and "--only must be edited or rejected" in res.output


# ------------------------------------------------------------------ intents and guardrails plumbing


def test_stratified_folds_spread_each_label_and_keep_every_row() -> None:
    from evals.suites.intents import IntentRow, stratified_folds

    rows = [IntentRow(f"{label} {i}", label) for label in ("a", "b", "c") for i in range(7)]
    folds = stratified_folds(rows, 3)
    assert sorted(r for f in folds for r in f) == sorted(rows)
    for fold in folds:
        counts = {label: sum(r.intent == label for r in fold) for label in "abc"}
        assert set(counts.values()) <= {2, 3}  # 7 per label over 3 folds
    assert stratified_folds(rows, 3) == folds
    with pytest.raises(ValueError, match="at least 2 folds"):
        stratified_folds(rows, 1)


def test_cross_validation_folds_merge_into_one_result() -> None:
    from evals.suites.intents import intents_result, merge_folds

    fold1 = {
        "metrics": {"accuracy": 1.0, "macro_f1": 1.0},
        "per_intent": {"a": {"precision": 1.0, "recall": 1.0, "support": 2}},
        "confusion": {"labels": ["a"], "matrix": [[2]]},
        "examples": [{"id": "0", "input": "x", "expected": "a", "output": "a", "ok": True}],
    }
    fold2 = {
        "metrics": {"accuracy": 0.5, "macro_f1": 0.25},
        "per_intent": {
            "a": {"precision": 0.5, "recall": 1.0, "support": 1},
            "b": {"precision": 0.0, "recall": 0.0, "support": 1},
        },
        "confusion": {"labels": ["a", "b"], "matrix": [[1, 0], [1, 0]]},
        "examples": [
            {"id": "0", "input": "y", "expected": "a", "output": "a", "ok": True},
            {"id": "1", "input": "z", "expected": "b", "output": "a", "ok": False},
        ],
    }
    merged = merge_folds([fold1, fold2])
    assert merged["metrics"] == {"accuracy": 0.75, "macro_f1": 0.625}
    assert merged["per_intent"]["a"]["precision"] == 0.75
    assert merged["confusion"] == {"labels": ["a", "b"], "matrix": [[3, 0], [1, 0]]}
    assert [e["id"] for e in merged["examples"]] == ["f1-0", "f2-0", "f2-1"]
    result = intents_result(merged)
    assert [e.score for e in result.examples] == [1.0, 1.0, 0.0]
    assert result.tables["confusion"]["matrix"] == [[3, 0], [1, 0]]


def test_guardrail_results_flatten_into_comparable_metrics() -> None:
    from evals.suites.guardrails import guardrails_result

    out = {
        "metrics": {
            "attack_block_rate": 0.9,
            "attack_block_rate_by_kind": {"jailbreak": 1.0, "harmful_request": 0.8},
            "attack_blocked_by_layer": {"rules": 3, "detector": 6},
            "benign_block_rate": 0.01,
            "benign_block_rate_by_source": {"bitext": 0.0},
            "attack_count": 10,
            "target_kinds": ["harmful_request", "jailbreak"],
            "latency_p50_ms": 12.5,
        },
        "examples": [
            {
                "id": "jb1",
                "input": "ignore all rules",
                "expected": "block_or_handoff",
                "output": {"action": "refuse", "layer": "rules", "reason": "jb", "score": 0.9},
                "category": "jailbreak",
                "ok": True,
            }
        ],
    }
    result = guardrails_result(out)
    assert result.metrics["attack_block_rate_by_kind.harmful_request"] == 0.8
    assert result.metrics["benign_block_rate_by_source.bitext"] == 0.0
    assert "attack_count" not in result.metrics and "attack_count: 10" in result.notes
    assert result.directions["benign_block_rate"] == "lower"
    assert result.directions["benign_block_rate_by_source.bitext"] == "lower"
    assert result.tables["blocked_by_layer"]["rows"] == [["rules", 3], ["detector", 6]]
    (example,) = result.examples
    assert example.output == "refuse (rules): jb" and example.ok
