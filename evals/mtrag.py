"""MTRAG (IBM mt-rag-benchmark, MTRAG-UN generation tasks): tasks and per-collection KBs.

Each task is one turn of a multi-turn conversation over one document collection (``clapnq``
Wikipedia, ``govt`` government sites, ``ibmcloud`` IBM Cloud docs, ``fiqa`` finance answers),
labelled ``ANSWERABLE`` / ``UNANSWERABLE`` / ``PARTIAL`` / ``UNDERSPECIFIED``. The last turn is
the user's question; the turns before it are the conversation so far.

The setup that matches the product: one tenant per collection, whose knowledge base is every
passage of that collection that appears in the file (the gold passages of all its tasks),
ingested through the normal pipeline as :class:`~kb_pipeline.loaders.Article` records. A passage's
first line is its title; where that line is blank (FiQA and some IBM Cloud passages have no
title) the title is the passage's first words and the whole text is the body. UNANSWERABLE tasks
have no passages of their own, so their questions meet a knowledge base on the same topics that
does not hold the answer, which is exactly the case a support desk must decline.

The data is read at run time from the shared datasets folder (never copied into the repo).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals.loaders import read_jsonl
from kb_pipeline.loaders import Article

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "shared/datasets/rag/mtrag/dev.jsonl"
"""``../shared/datasets/rag/mtrag/dev.jsonl`` next to the repository checkout."""
LABELS = ("ANSWERABLE", "UNANSWERABLE", "PARTIAL", "UNDERSPECIFIED")
TENANT_PREFIX = "mtrag-"
_TITLE_WORDS = 12


@dataclass(frozen=True)
class MtragTask:
    """One MTRAG task: a conversation whose last user turn is to be answered."""

    task_id: str
    conversation_id: str
    collection: str
    answerability: str
    turns: tuple[dict[str, str], ...]
    """Every turn, ``{"speaker": "user" | "agent", "text"}``; the last is the question."""
    contexts: tuple[dict[str, str], ...]
    """The gold passages ``{"document_id", "text"}`` (none for UNANSWERABLE)."""
    reference: str

    @property
    def question(self) -> str:
        """The user turn to answer."""
        return self.turns[-1]["text"]

    @property
    def item(self) -> dict[str, Any]:
        """The task as an answering input (``{"turns": [...]}``, see ``evals.answering``)."""
        return {"turns": [dict(t) for t in self.turns]}

    @property
    def tenant(self) -> str:
        """Slug of the tenant holding this task's collection."""
        return tenant_slug(self.collection)


def tenant_slug(collection: str) -> str:
    """The tenant slug for a collection (``mtrag-clapnq``...)."""
    return TENANT_PREFIX + collection.lower()


def _task(row: dict[str, Any], where: str) -> MtragTask:
    missing = [
        k for k in ("task_id", "collection", "answerability", "turns", "contexts") if k not in row
    ]
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}")
    if row["answerability"] not in LABELS:
        raise ValueError(
            f"{where}: answerability must be one of {', '.join(LABELS)},"
            f" got {row['answerability']!r}"
        )
    turns = row["turns"]
    if not isinstance(turns, list) or not turns:
        raise ValueError(f"{where}: turns must be a non-empty list")
    for i, t in enumerate(turns):
        if not isinstance(t, dict) or t.get("speaker") not in ("user", "agent"):
            raise ValueError(f"{where}: turn {i} must be {{'speaker': 'user'|'agent', 'text'}}")
        if not isinstance(t.get("text"), str):
            raise ValueError(f"{where}: turn {i} has no text")
    if turns[-1]["speaker"] != "user":
        raise ValueError(f"{where}: the last turn must be the user's question")
    contexts = row["contexts"] or []
    for i, c in enumerate(contexts):
        if (
            not isinstance(c, dict)
            or not c.get("document_id")
            or not isinstance(c.get("text"), str)
        ):
            raise ValueError(f"{where}: context {i} must be {{'document_id', 'text'}}")
    return MtragTask(
        task_id=str(row["task_id"]),
        conversation_id=str(row.get("conversation_id", "")),
        collection=str(row["collection"]),
        answerability=str(row["answerability"]),
        turns=tuple({"speaker": t["speaker"], "text": t["text"]} for t in turns),
        contexts=tuple({"document_id": str(c["document_id"]), "text": c["text"]} for c in contexts),
        reference=str(row.get("reference", "")),
    )


def load_tasks(path: Path = DEFAULT_PATH) -> list[MtragTask]:
    """Read MTRAG tasks from a JSONL file.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: a line is not a valid task (the message names the line).
    """
    if not path.is_file():
        raise FileNotFoundError(f"MTRAG file {path} not found (pass its path)")
    return [_task(row, f"{path.name}:{n}") for n, row in read_jsonl(path)]


def passage_article(document_id: str, text: str) -> Article:
    """One MTRAG passage as a knowledge-base article (first line = title)."""
    first, _, rest = text.partition("\n")
    if first.strip() and rest.strip():
        title, body = first.strip(), rest.strip()
    else:
        # no title line: name the article by its first words, keep every word in the body
        words = text.split()
        title = " ".join(words[:_TITLE_WORDS]) + ("…" if len(words) > _TITLE_WORDS else "")
        body = text.strip()
    return Article(source_id=document_id, title=title, body=body)


def collection_articles(tasks: Iterable[MtragTask]) -> dict[str, list[Article]]:
    """Every passage of every task, deduplicated by document id, grouped by collection."""
    seen: dict[str, dict[str, Article]] = {}
    for task in tasks:
        by_id = seen.setdefault(task.collection, {})
        for c in task.contexts:
            by_id.setdefault(c["document_id"], passage_article(c["document_id"], c["text"]))
    return {coll: list(by_id.values()) for coll, by_id in sorted(seen.items())}


def collections(tasks: Sequence[MtragTask]) -> list[str]:
    """The collections the tasks cover, sorted."""
    return sorted({t.collection for t in tasks})
