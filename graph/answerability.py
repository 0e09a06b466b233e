"""Answerability signals: what beyond the best sentence's score says the knowledge base answers.

The drafter's confidence is the best retrieved sentence's score (cosine plus word overlap,
:func:`graph.nodes.draft.score_sentences`). A reader checks more: does the text mention the
question's own entities and numbers, does it offer the kind of answer asked for (a time for
"when", an amount for "how much"), does one article stand out from the rest, do the meaning side
and the word side of retrieval agree, is the article *about* the thing asked (its title and
section), and how far into a conversation the question comes. :func:`signals` measures these
for one turn and :class:`Model` is a logistic regression over them, fitted and measured
leave-one-collection-out by ``evals/benchmarks/answerability_fit.py`` on labelled turns (MTRAG
dev and the demo question set).

On those held-out collections no combination beat the best sentence's score alone, so the draft
node does not use a model yet (``assess`` below computes the signals for the
benchmark only). Method, figures and what was tried: docs/decisions/answerability-model.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from graph.nodes.draft import OVERLAP_BONUS, _Sentence, chunk_units, confidence_of, score_sentences
from graph.nodes.retrieve import query_vector
from graph.services import Services
from kb_pipeline.index import Retrieved
from nlp.text import content_words

FEATURES = (
    "best",
    "best_headed",
    "best_subheaded",
    "article_margin",
    "best_alone",
    "coverage_best",
    "coverage_all",
    "entity_coverage",
    "has_entities",
    "type_missing",
    "heading_match",
    "heading_coverage",
    "rank_of_best",
    "fused_margin",
    "sides_agree",
    "turns_before",
    "has_previous",
    "question_words",
)
"""The signals, in the order the model's coefficients are stored."""

_NUMBER = re.compile(r"\d[\d,.:]*")
_CAPITAL = re.compile(r"(?<![.?!]\s)(?<!^)\b[A-Z][a-zA-Z0-9]+")
_TIME = re.compile(
    r"\b\d{1,2}(:\d{2})?\s?(am|pm|a\.m\.|p\.m\.)|\b(monday|tuesday|wednesday|thursday|friday|"
    r"saturday|sunday|weekday|weekend|january|february|march|april|may|june|july|august|"
    r"september|october|november|december|hours?|days?|weeks?|months?|years?|\d{4})\b",
    re.IGNORECASE,
)
_AMOUNT = re.compile(r"\$\s?\d|\d\s?%|\b\d[\d,.]*\b")
_PLACE = re.compile(
    r"\b(street|st\.|avenue|road|city|county|state|country|located|address|area|in [A-Z])",
    re.IGNORECASE,
)
_EXPECTS = (
    (re.compile(r"^\s*(when|what time|how long|how soon|what hours|which days?)\b", re.I), _TIME),
    (re.compile(r"^\s*(how much|how many|what (does|do|is) .* cost|what percent)", re.I), _AMOUNT),
    (re.compile(r"^\s*where\b", re.I), _PLACE),
)
"""A question form and the kind of text that can answer it."""


class Scored(Protocol):
    """What the signals read of a scored sentence (``draft._Sentence``)."""

    @property
    def text(self) -> str: ...
    @property
    def chunk(self) -> int: ...
    @property
    def score(self) -> float: ...
    @property
    def relevance(self) -> float: ...


def stems(text: str) -> set[str]:
    """Content words cut to a crude stem, so "open" meets "opening" and "hours" meets "hour"."""
    out = set()
    for w in content_words(text):
        for suffix in ("ing", "ed", "es", "s"):
            if len(w) > len(suffix) + 2 and w.endswith(suffix):
                w = w[: -len(suffix)]
                break
        out.add(w)
    return out


def _share(wanted: set[str], present: set[str]) -> float:
    return len(wanted & present) / len(wanted) if wanted else 1.0


def _entities(question: str) -> set[str]:
    """Numbers and capitalised words not at a sentence start: what the text must mention."""
    found = {m.group(0).rstrip(".,:").lower() for m in _NUMBER.finditer(question)}
    found |= {m.group(0).lower() for m in _CAPITAL.finditer(question)}
    return {e for e in found if e and e not in {"i", "im", "ive"}}


def _heading(chunk: Mapping[str, object]) -> str:
    return f"{chunk.get('title', '')} {chunk.get('section', '')}"


def signals(
    question: str,
    previous: str,
    chunks: Sequence[Retrieved],
    scored: Sequence[Scored],
    heading_similarity: Sequence[float],
    headed: float,
    subheaded: float,
    turns_before: int,
) -> dict[str, float]:
    """The answerability signals of one turn (see the module docstring).

    Args:
        question: this turn's question.
        previous: the customer's previous message ("" for none).
        chunks: the retrieved chunks, in search order.
        scored: their sentences scored against the question, best first.
        heading_similarity: per chunk, cosine of the question to its title and section.
        headed: the best sentence score with sentences read under their section path.
        subheaded: the same under the headings below the article's title only.
        turns_before: how many customer messages came before this one.
    """
    q = stems(question)
    if not chunks or not scored:
        return {name: 0.0 for name in FEATURES} | {
            "has_previous": float(bool(previous)),
            "turns_before": math.log1p(turns_before),
            "question_words": math.log1p(len(q)),
            "type_missing": 1.0,
        }
    best = scored[0]
    best_article = chunks[best.chunk]["article_id"]
    other = [s.score for s in scored if chunks[s.chunk]["article_id"] != best_article]
    chunk_words = [stems(f"{c['text']} {_heading(c)}") for c in chunks]
    all_words = set().union(*chunk_words)
    overlap = [_share(q, w) for w in chunk_words]
    sparse_best = max(range(len(chunks)), key=lambda i: overlap[i])
    texts = " ".join(c["text"] for c in chunks)
    entities = _entities(question)
    type_missing = 0.0
    for form, answer in _EXPECTS:
        if form.search(question) and not answer.search(texts):
            type_missing = 1.0
    fused = [float(c.get("score", 0.0)) for c in chunks]
    heading = list(heading_similarity) or [0.0] * len(chunks)
    return {
        "best": float(best.score),
        "best_headed": float(headed),
        "best_subheaded": float(subheaded),
        "article_margin": float(best.score - (max(other) if other else 0.0)),
        "best_alone": float(max(s.relevance for s in scored)),
        "coverage_best": overlap[best.chunk],
        "coverage_all": _share(q, all_words),
        "entity_coverage": _share(entities, {w.lower() for w in re.findall(r"\S+", texts)})
        if entities
        else 1.0,
        "has_entities": float(bool(entities)),
        "type_missing": type_missing,
        "heading_match": float(max(heading)),
        "heading_coverage": max(_share(q, stems(_heading(c))) if q else 0.0 for c in chunks),
        "rank_of_best": float(best.chunk),
        "fused_margin": fused[0] - fused[1] if len(fused) > 1 else fused[0],
        "sides_agree": float(chunks[sparse_best]["article_id"] == best_article),
        "turns_before": math.log1p(turns_before),
        "has_previous": float(bool(previous)),
        "question_words": math.log1p(len(q)),
    }


@dataclass(frozen=True)
class Model:
    """A fitted logistic regression over standardised :data:`FEATURES`."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def probability(self, features: Mapping[str, float]) -> float:
        """P(the retrieved text answers the question)."""
        x = np.array([features.get(name, 0.0) for name in FEATURES], dtype=float)
        z = float(((x - self.mean) / self.scale) @ self.coef) + self.intercept
        return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))

    def to_json(self) -> dict[str, object]:
        """The stored form (what ``answerability_fit.py --write`` writes)."""
        return {
            "features": list(FEATURES),
            "mean": [round(float(v), 6) for v in self.mean],
            "scale": [round(float(v), 6) for v in self.scale],
            "coef": [round(float(v), 6) for v in self.coef],
            "intercept": round(self.intercept, 6),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, object]) -> Model:
        """Read the stored form; its feature list must be :data:`FEATURES`."""
        if list(doc["features"]) != list(FEATURES):  # type: ignore[call-overload]
            raise ValueError("answerability model was fitted on other features; refit it")
        return cls(
            mean=np.array(doc["mean"], dtype=float),
            scale=np.array(doc["scale"], dtype=float),
            coef=np.array(doc["coef"], dtype=float),
            intercept=float(doc["intercept"]),  # type: ignore[arg-type]
        )


async def heading_similarity(svc: Services, question: str, chunks: list[Retrieved]) -> list[float]:
    """Per chunk, cosine of the question (alone) to its article title and section path."""
    if not chunks or not question.strip():
        return [0.0] * len(chunks)
    vectors = await svc.sentence_cache.embed([f"{c['title']}. {c['section']}" for c in chunks])
    return [float(v) for v in vectors @ await query_vector(svc, question, "")]


async def best_headed(
    svc: Services, question: str, chunks: list[Retrieved], previous: str, title: bool = True
) -> float:
    """The best sentence score with each sentence read under its chunk's section path
    ("Opening hours and holidays > Office hours: ..."), word overlap included; with ``title``
    False under the headings below the title only (a sentence under no heading as itself)."""

    def path(c: Retrieved) -> str:
        return c["section"] if title else c["section"].partition(" > ")[2]

    items = [(path(c), u.text) for c in chunks for u in chunk_units(c)]
    if not items or not question.strip():
        return 0.0
    texts = [f"{section}: {text}" if section else text for section, text in items]
    cosines = await svc.sentence_cache.embed(texts) @ await query_vector(svc, question, previous)
    q_words = content_words(question)
    overlap = [len(q_words & content_words(t)) / len(q_words) if q_words else 0.0 for t in texts]
    return float(max(c + OVERLAP_BONUS * o for c, o in zip(cosines, overlap, strict=True)))


async def assess(
    svc: Services, question: str, chunks: list[Retrieved], previous: str, turns_before: int
) -> tuple[list[_Sentence], dict[str, float], float]:
    """A turn's scored sentences, answerability signals and confidence, for measuring.

    The draft node's confidence is still :func:`graph.nodes.draft.confidence_of` alone: no
    combination of these signals beat it on held-out collections
    (docs/decisions/answerability-model.md), so the node does not pay for computing them;
    ``escalation.py --features`` calls this to measure the signals on exactly what the node
    sees.
    """
    scored = await score_sentences(svc, question, chunks, previous)
    features = signals(
        question,
        previous,
        chunks,
        scored,
        await heading_similarity(svc, question, chunks),
        await best_headed(svc, question, chunks, previous),
        await best_headed(svc, question, chunks, previous, title=False),
        turns_before,
    )
    return scored, features, confidence_of(scored)
