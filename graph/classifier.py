"""The offline intent classifier: logistic regression over sentence embeddings.

Trained on labelled examples (``prompts/intents.csv``: ``text,intent``) and, optionally,
out-of-scope examples (``prompts/out_of_scope.csv``), which become the ``out_of_scope`` class.
A message is also out of scope when it is far from every in-scope example (cosine below
``min_similarity``), which catches topics no example covers.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings
from sklearn.linear_model import LogisticRegression

OUT_OF_SCOPE = "out_of_scope"


@dataclass(frozen=True)
class IntentPrediction:
    """One classification."""

    intent: str
    confidence: float
    out_of_scope: bool


def read_examples(path: Path) -> tuple[list[str], list[str]]:
    """Read ``text,intent`` rows (an ``intent``-less file gives ``out_of_scope`` labels)."""
    texts, labels = [], []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "text" not in reader.fieldnames:
            raise ValueError(f"{path}: expected a CSV header with a 'text' column")
        for row in reader:
            text = (row.get("text") or "").strip()
            if text:
                texts.append(text)
                labels.append((row.get("intent") or OUT_OF_SCOPE).strip())
    return texts, labels


class IntentClassifier:
    """Embedding classifier with a confidence and an out-of-scope decision."""

    def __init__(self, embeddings: Embeddings, *, min_similarity: float = 0.3) -> None:
        self._embeddings = embeddings
        self._min_similarity = min_similarity
        self._model: LogisticRegression | None = None
        self._in_scope: np.ndarray | None = None
        self.labels: list[str] = []

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> IntentClassifier:
        """Train on examples; ``out_of_scope`` labels form their own class."""
        if len(texts) != len(labels) or not texts:
            raise ValueError(f"need as many labels as texts, got {len(texts)} and {len(labels)}")
        x = np.asarray(self._embeddings.embed_documents(list(texts)), dtype=np.float32)
        y = np.asarray(labels)
        if len(set(labels)) < 2:
            raise ValueError("need examples of at least two intents")
        self._model = LogisticRegression(C=20.0, max_iter=2000)
        self._model.fit(x, y)
        self._in_scope = x[y != OUT_OF_SCOPE]
        self.labels = sorted(set(labels) - {OUT_OF_SCOPE})
        return self

    async def apredict(self, text: str) -> IntentPrediction:
        """Classify one message."""
        vec = np.asarray(await self._embeddings.aembed_query(text), dtype=np.float32)
        return self._decide(vec)

    def predict_many(self, texts: Sequence[str]) -> list[IntentPrediction]:
        """Classify several messages in one embedding batch."""
        vecs = np.asarray(self._embeddings.embed_documents(list(texts)), dtype=np.float32)
        return [self._decide(v) for v in vecs]

    def _decide(self, vec: np.ndarray) -> IntentPrediction:
        if self._model is None or self._in_scope is None:
            raise RuntimeError("IntentClassifier.fit must be called before predicting")
        probs = self._model.predict_proba(vec[None, :])[0]
        best = int(np.argmax(probs))
        intent, confidence = str(self._model.classes_[best]), float(probs[best])
        unit = vec / (float(np.linalg.norm(vec)) or 1.0)
        nearest = float(np.max(self._in_scope @ unit)) if len(self._in_scope) else 0.0
        if intent == OUT_OF_SCOPE or nearest < self._min_similarity:
            return IntentPrediction(OUT_OF_SCOPE, confidence, True)
        return IntentPrediction(intent, confidence, False)
