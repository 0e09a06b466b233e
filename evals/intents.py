"""The ``intents`` suite: how well the offline classifier names the customer's intent.

Data: ``text,intent`` rows, as CSV with a header (Bitext ``text,intent,category``, BANKING77
``text,intent``; a CSV with only ``text`` is a list of out-of-scope examples, like
``prompts/out_of_scope.csv``) or JSON Lines ``{"text", "intent"}`` (CLINC150). Out-of-scope
rows are labelled ``out_of_scope`` or ``oos`` (any case); :func:`load_intent_rows` turns both
into ``out_of_scope``, the label the classifier predicts.

Metrics (``run_intents_suite``):

* ``accuracy``: share of test rows whose predicted label is the expected one (an out-of-scope row
  is right when predicted out of scope).
* ``macro_f1``: F1 averaged over every label that is expected or predicted (as scikit-learn's
  ``f1_score(average="macro")``), so a label the classifier invents counts against it.
* Only when the test rows include out-of-scope ones (CLINC150's definitions):
  ``in_scope_accuracy`` (share of in-scope rows given exactly their intent; declining one counts
  as wrong), ``oos_recall`` (share of out-of-scope rows declined) and ``oos_precision`` (share of
  the declined rows that were out of scope; None when nothing was declined).

Plus ``per_intent`` precision / recall / F1 / support, a confusion matrix (rows: expected,
columns: predicted) and one example per test row. ``timing`` (not a quality metric) gives the
training time and the prediction time per message, embeddings included.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from langchain_core.embeddings import Embeddings

from nlp.classifier import (
    OUT_OF_SCOPE,
    ClassifierConfig,
    IntentClassifier,
    IntentPrediction,
    normalise_intent,
    read_examples,
)


class IntentRow(NamedTuple):
    """One labelled message (a ``(text, intent)`` tuple with names)."""

    text: str
    intent: str


def load_intent_rows(path: Path | str) -> list[IntentRow]:
    """Read ``(text, intent)`` rows from CSV or JSON Lines (see the module docstring).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a bad header or row (the message names the file and line).
    """
    texts, labels = read_examples(Path(path))
    return [IntentRow(t, label) for t, label in zip(texts, labels, strict=True)]


def run_intents_suite(
    train_rows: Sequence[tuple[str, str]],
    test_rows: Sequence[tuple[str, str]],
    *,
    oos_label: str | None = OUT_OF_SCOPE,
    embeddings: Embeddings | None = None,
    config: ClassifierConfig | None = None,
) -> dict[str, Any]:
    """Train the offline classifier on ``train_rows`` and score it on ``test_rows``.

    Args:
        train_rows: ``(text, intent)`` pairs to learn from.
        test_rows: ``(text, intent)`` pairs to score (ids are their positions, from 0).
        oos_label: the label that means out of scope in these rows; it is reported as
            ``out_of_scope``. The aliases ``oos`` / ``out_of_scope`` always count. None: these
            rows have no out-of-scope label of their own (aliases still count).
        embeddings: sentence embeddings for the classifier; the offline MiniLM by default.
        config: classifier settings (defaults otherwise).

    Returns:
        ``{"metrics", "per_intent", "confusion", "examples", "timing"}`` as described in the
        module docstring.

    Raises:
        ValueError: no test rows, or the training rows have fewer than two intents.
    """
    if not test_rows:
        raise ValueError("no test rows to score")
    custom_oos = normalise_intent(oos_label) if oos_label else OUT_OF_SCOPE

    def label_of(raw: str) -> str:
        label = normalise_intent(raw)
        return OUT_OF_SCOPE if label == custom_oos else label

    if embeddings is None:
        from nlp.models import local_embeddings

        embeddings = local_embeddings()
    classifier = IntentClassifier(embeddings, config=config)
    started = time.perf_counter()
    classifier.fit([t for t, _ in train_rows], [label_of(i) for _, i in train_rows])
    train_s = time.perf_counter() - started
    started = time.perf_counter()
    predictions = classifier.predict_many([t for t, _ in test_rows])
    predict_s = time.perf_counter() - started

    out = score_intents([t for t, _ in test_rows], [label_of(i) for _, i in test_rows], predictions)
    out["timing"] = {
        "train_rows": len(train_rows),
        "train_s": round(train_s, 3),
        "predict_ms_per_message": round(1000 * predict_s / len(test_rows), 3),
    }
    return out


def score_intents(
    inputs: Sequence[str], expected: Sequence[str], predictions: Sequence[IntentPrediction]
) -> dict[str, Any]:
    """Score predictions against expected labels (already normalised, out of scope as
    ``out_of_scope``): ``{"metrics", "per_intent", "confusion", "examples"}``."""
    predicted = [p.intent for p in predictions]
    examples = [
        {
            "id": str(n),
            "input": text,
            "expected": want,
            "output": pred.intent,
            "confidence": round(pred.confidence, 4),
            "ok": pred.intent == want,
        }
        for n, (text, want, pred) in enumerate(zip(inputs, expected, predictions, strict=True))
    ]
    pairs = list(zip(expected, predicted, strict=True))
    per_intent = _per_intent(expected, predicted)
    metrics: dict[str, float | None] = {
        "accuracy": _ratio(sum(e == p for e, p in pairs), len(pairs)),
        "macro_f1": sum(s["f1"] for s in per_intent.values()) / len(per_intent),
    }
    if OUT_OF_SCOPE in expected:
        in_scope = [(e, p) for e, p in pairs if e != OUT_OF_SCOPE]
        declined = [e for e, p in pairs if p == OUT_OF_SCOPE]
        metrics["in_scope_accuracy"] = _ratio(sum(e == p for e, p in in_scope), len(in_scope))
        metrics["oos_recall"] = per_intent[OUT_OF_SCOPE]["recall"]
        metrics["oos_precision"] = (
            _ratio(declined.count(OUT_OF_SCOPE), len(declined)) if declined else None
        )
    labels = sorted(per_intent, key=lambda label: (label == OUT_OF_SCOPE, label))
    return {
        "metrics": metrics,
        "per_intent": {
            label: {k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()}
            for label in labels
            for scores in [per_intent[label]]
        },
        "confusion": {"labels": labels, "matrix": _confusion(expected, predicted, labels)},
        "examples": examples,
    }


def _ratio(hits: int, total: int) -> float | None:
    return hits / total if total else None


def _per_intent(expected: Sequence[str], predicted: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Precision, recall, F1 and support of every label expected or predicted."""
    support = Counter(expected)
    guessed = Counter(predicted)
    right = Counter(e for e, p in zip(expected, predicted, strict=True) if e == p)
    out: dict[str, dict[str, Any]] = {}
    for label in set(support) | set(guessed):
        precision = right[label] / guessed[label] if guessed[label] else 0.0
        recall = right[label] / support[label] if support[label] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support[label]}
    return out


def _confusion(
    expected: Sequence[str], predicted: Sequence[str], labels: list[str]
) -> list[list[int]]:
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for e, p in zip(expected, predicted, strict=True):
        matrix[index[e]][index[p]] += 1
    return matrix
