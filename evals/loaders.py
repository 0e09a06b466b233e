"""Loaders for the retrieval / answers / escalation datasets (formats in evals/datasets/README.md).

* Knowledge base: anything ``deskgraph ingest`` reads (``kb_pipeline.loaders.load_path``): a
  folder of Markdown / HTML / PDF / text articles, or JSONL with one article per line
  ``{"id", "title", "text"}`` (``content`` instead of ``text`` works; optional
  ``visibility``, ``tags``, ``url``). Galaxy S10 ``sections.jsonl`` and rho-bank
  ``documents.jsonl`` are read as they are.
* Questions: JSONL or CSV rows ``{"id", "question", "gold_ids", "answer", "answerable"}``.
  ``gold_ids`` may also be called ``gold_article_ids`` (the demo set) or ``gold_section_ids``
  (Galaxy S10); in CSV it is one cell with ids separated by ``;``. ``answer`` (or
  ``reference``) is the reference answer. ``answerable`` defaults to true when the row has gold
  ids or a reference answer. Rows exported by ``deskgraph eval export-feedback`` load as
  questions too.

Every loader names the file and line of a bad row instead of skipping it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kb_pipeline.loaders import Article, load_path

DEMO_QUESTIONS = Path(__file__).resolve().parent / "datasets" / "demo_questions.jsonl"
"""The demo tenant's question set (gold article ids, reference answers, answerability)."""

_GOLD_KEYS = ("gold_ids", "gold_article_ids", "gold_section_ids")
_TRUE = {"true", "1", "yes", "y"}
_FALSE = {"false", "0", "no", "n", ""}


@dataclass(frozen=True)
class Question:
    """One question of a retrieval / answers / escalation set."""

    id: str
    question: str
    gold_ids: tuple[str, ...] = ()
    answer: str = ""
    answerable: bool = True
    meta: dict[str, Any] = field(default_factory=dict, compare=False)


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for each non-blank line.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a line is not a JSON object (the message names the line).
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path.name}:{n}: not JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise ValueError(
                    f"{path.name}:{n}: expected a JSON object, got {type(row).__name__}"
                )
            yield n, row


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a ``.jsonl`` or ``.csv`` file (CSV with a header), with their line numbers."""
    if path.suffix.lower() == ".csv":
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found")
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            for n, row in enumerate(reader, 2):
                yield n, dict(row)
        return
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        yield from read_jsonl(path)
        return
    raise ValueError(f"{path.name}: expected a .jsonl or .csv file")


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{where}: 'answerable' must be true or false, got {value!r}")


def _ids(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(";") if v.strip())
    if isinstance(value, list) and all(isinstance(v, str | int) for v in value):
        return tuple(str(v) for v in value)
    raise ValueError(f"{where}: gold ids must be a list of ids (or ';'-separated), got {value!r}")


def question_from_row(row: Mapping[str, Any], where: str) -> Question:
    """Parse one question row (see the module docstring).

    Raises:
        ValueError: the row has no question, or a field has the wrong type.
    """
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"{where}: 'question' must be a non-empty string")
    gold: tuple[str, ...] = ()
    for key in _GOLD_KEYS:
        if key in row:
            gold = _ids(row[key], where)
            break
    answer = row.get("answer", row.get("reference")) or ""
    if not isinstance(answer, str):
        raise ValueError(f"{where}: 'answer' must be a string")
    raw = row.get("answerable")
    answerable = bool(gold or answer) if raw in (None, "") else _bool(raw, where)
    rid = row.get("id")
    known = {"id", "question", "answer", "reference", "answerable", *_GOLD_KEYS}
    return Question(
        id=str(rid) if rid not in (None, "") else where,
        question=question.strip(),
        gold_ids=gold,
        answer=answer.strip(),
        answerable=answerable,
        meta={k: v for k, v in row.items() if k not in known},
    )


def load_questions(path: Path) -> list[Question]:
    """Load a question set (JSONL or CSV).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a bad row (named by file and line), duplicate ids, or no rows at all.
    """
    out: list[Question] = []
    seen: set[str] = set()
    for n, row in read_rows(path):
        q = question_from_row(row, f"{path.name}:{n}")
        if q.id in seen:
            raise ValueError(f"{path.name}:{n}: duplicate question id {q.id!r}")
        seen.add(q.id)
        out.append(q)
    if not out:
        raise ValueError(f"{path.name}: no questions")
    return out


def load_kb(path: Path) -> list[Article]:
    """Load a knowledge base with the ingestion pipeline's loader (``kb_pipeline.loaders``).

    Any file the pipeline cannot read fails the load: an eval must not silently measure a
    smaller knowledge base than the one asked for.

    Raises:
        FileNotFoundError: no such file or folder.
        ValueError: a file or record could not be loaded, or there are no articles.
    """
    result = load_path(path)
    if result.errors:
        first = "; ".join(str(e) for e in result.errors[:3])
        raise ValueError(f"{path}: {len(result.errors)} problem(s) loading the KB: {first}")
    if not result.articles:
        raise ValueError(f"{path}: no articles")
    return list(result.articles)


def check_gold_ids(questions: list[Question], articles: list[Article]) -> list[str]:
    """Gold ids that name no article of the knowledge base (a dataset / KB mismatch)."""
    known = {a.source_id for a in articles}
    return sorted({g for q in questions for g in q.gold_ids if g not in known})
