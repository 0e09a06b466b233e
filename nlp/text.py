"""Text helpers shared by the offline nodes: sentences, content words, cached embeddings."""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

_SENT = re.compile(r"(?<=[.!?])[\"\u201d)\]]*\s+(?=[A-Z0-9\"'\u201c(\[])")
"""A sentence may end after . ! or ? (and a closing quote or bracket), before a capital."""
_ABBREVIATION = re.compile(
    r"\b(e\.g|i\.e|etc|vs|approx|mr|mrs|ms|dr|prof|st|mt|ext|fig|jr|sr|inc|ltd)\.$",
    re.IGNORECASE,
)
_EMPHASIS = re.compile(r"\*\*|__|`")
_BOLD_LINE = re.compile(r"^(?:\*\*|__)([^*_]+)(?:\*\*|__):?$")
_LIST_ITEM = re.compile(r"^([-*+]|\d+[.)])\s+")
_WORD = re.compile(r"[a-z0-9$%]+(?:['.][a-z0-9]+)*")
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "could",
        "do",
        "does",
        "did",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "i'm",
        "i'd",
        "i've",
        "it's",
        "do",
        "you",
        "please",
        "hi",
        "hello",
        "thanks",
        "thank",
        "am",
        "any",
        "about",
        "get",
        "got",
        "just",
        "also",
        "into",
        "out",
        "up",
    ]
)


@dataclass(frozen=True)
class Unit:
    """A sentence of a text, with the list it belongs to (if any)."""

    text: str
    group: int | None = None
    """Items of one list share a number (``None``: not a list item)."""
    lead: str = ""
    """What introduces the item's list: the line before it ending in ":" or a bold-only line
    ("**Saturday**"). "Monday to Friday: 7:30 am - 6:00 pm" means nothing without "Our office
    answers ... during these hours:"."""


def units(text: str) -> list[Unit]:
    """Split text into sentences; list items and lines are sentences of their own.

    A bold-only line ("**Monday to Friday**") is a heading, not a sentence: it becomes the lead
    of the list under it, as does a line ending in ":" (which stays a sentence too). Blank lines
    do not end a list; the next line of plain text does.
    """
    out: list[Unit] = []
    lead, group, groups = "", None, 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if bold := _BOLD_LINE.match(line):
            lead, group = bold.group(1).strip().rstrip(":") + ":", None
            continue
        item = _LIST_ITEM.match(line)
        line = _EMPHASIS.sub("", _LIST_ITEM.sub("", line))
        parts = [s.strip() for s in _split_line(line) if s.strip()]
        if item:
            if group is None:
                groups += 1
                group = groups
            out.extend(Unit(s, group, lead) for s in parts)
            continue
        out.extend(Unit(s) for s in parts)
        lead, group = (parts[-1] if parts and parts[-1].endswith(":") else ""), None
    return out


def sentences(text: str) -> list[str]:
    """Split text into sentences (:func:`units` without their lists)."""
    return [u.text for u in units(text)]


def _split_line(line: str) -> list[str]:
    # Not inside a quotation ('See "Smell gas? What to do" for details.' is one sentence: the
    # title's "?" ends nothing) and not after an abbreviation ("e.g. Tuesday", "ext. 240").
    parts: list[str] = []
    start = 0
    for m in _SENT.finditer(line):
        before = line[start : m.end()].rstrip()
        if _inside_quotes(line[: m.end()]) or _ABBREVIATION.search(before):
            continue
        parts.append(line[start : m.end()])
        start = m.end()
    parts.append(line[start:])
    return parts


def _inside_quotes(text: str) -> bool:
    """Whether ``text`` ends inside a double-quoted span (straight or curly quotes)."""
    return text.count('"') % 2 == 1 or text.count("\u201c") > text.count("\u201d")


def content_words(text: str) -> set[str]:
    """Lower-cased words minus stop words."""
    return {w for w in _WORD.findall(text.lower()) if w not in STOPWORDS}


def jaccard(a: str, b: str) -> float:
    """Jaccard overlap of the content words of two texts."""
    wa, wb = content_words(a), content_words(b)
    if not wa or not wb:
        return 0.0
    return len(wa & wb) / len(wa | wb)


class EmbeddingCache(Embeddings):
    """Embeds each distinct text once: the one embedding cache of the project.

    The graph keeps one per process for knowledge-base sentences, which recur across turns and
    conversations (:meth:`embed`: unit rows as an array, LRU-bounded by ``max_items``). It is
    also an ``Embeddings`` itself, for whatever embeds the same texts again and again:
    cross-validation trains on the same rows k - 1 times, a benchmark re-reads 15k rows on every
    run (``folder`` keeps them on disk between runs), the retrieval benchmark ingests the same
    chunks for 34 tenants (``cache_queries=False`` leaves queries to the model, whose time is
    what a search costs). Vectors are stored unit-length; every model here already returns
    unit vectors, and cosine similarity does not change.
    """

    def __init__(
        self,
        embeddings: Embeddings,
        max_items: int | None = 20_000,
        *,
        folder: Path | None = None,
        cache_queries: bool = True,
    ) -> None:
        self._embeddings = embeddings
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._max = max_items
        self._folder = folder
        self._cache_queries = cache_queries
        if folder is not None:
            self._load(folder)

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return unit-normalised embeddings, one row per text."""
        missing = self._missing(texts)
        if missing:
            self._store(missing, await self._embeddings.aembed_documents(missing))
        return self._rows(texts)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """``Embeddings``: the texts not seen before in one batch, then all from the cache."""
        missing = self._missing(texts)
        if missing:
            self._store(missing, self._embeddings.embed_documents(missing))
        return self._rows(texts).tolist() if texts else []

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """``Embeddings``, async."""
        return (await self.embed(texts)).tolist() if texts else []

    def embed_query(self, text: str) -> list[float]:
        """``Embeddings``: one text, cached like the documents unless ``cache_queries`` is off."""
        if not self._cache_queries:
            return self._embeddings.embed_query(text)
        return self.embed_documents([text])[0]

    async def aembed_query(self, text: str) -> list[float]:
        """``Embeddings``, async."""
        if not self._cache_queries:
            return await self._embeddings.aembed_query(text)
        return (await self.aembed_documents([text]))[0]

    def _missing(self, texts: Sequence[str]) -> list[str]:
        return list(dict.fromkeys(t for t in texts if t not in self._cache))

    def _store(self, texts: list[str], vectors: Sequence[Sequence[float]]) -> None:
        for text, vec in zip(texts, vectors, strict=True):
            arr = np.asarray(vec, dtype=np.float32)
            norm = float(np.linalg.norm(arr)) or 1.0
            self._cache[text] = arr / norm
        if self._folder is not None:
            self._save(self._folder)

    def _rows(self, texts: Sequence[str]) -> np.ndarray:
        for t in texts:
            self._cache.move_to_end(t)
        rows = np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 1))
        # Only now, so that a call never loses a text it asked for to its own new ones.
        while self._max is not None and len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return rows

    def _load(self, folder: Path) -> None:
        texts_file, vectors_file = folder / "texts.json", folder / "vectors.npy"
        if texts_file.is_file() and vectors_file.is_file():
            texts = json.loads(texts_file.read_text(encoding="utf-8"))
            self._cache.update(zip(texts, np.load(vectors_file), strict=True))

    def _save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "vectors.npy", np.stack(list(self._cache.values())))
        (folder / "texts.json").write_text(json.dumps(list(self._cache)), encoding="utf-8")
