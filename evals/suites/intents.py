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

:func:`intents_run` is the suite end to end (which rows, which split, the run's record).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from langchain_core.embeddings import Embeddings

from evals.core import Example, RunClock, RunRecord, SuiteResult, finite, mean
from evals.suites.common import limit_rows, model_info
from graph.services import Services
from helpdesk.config import get_settings
from nlp.classifier import (
    OUT_OF_SCOPE,
    ClassifierConfig,
    IntentClassifier,
    IntentPrediction,
    normalise_intent,
    read_examples,
)
from nlp.text import EmbeddingCache


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


def _intent_of(row: Any) -> str:
    """The label of a row from :func:`load_intent_rows`."""
    if isinstance(row, Mapping):
        return str(row["intent"])
    return str(row.intent)


def stratified_folds(rows: Sequence[Any], k: int) -> list[list[Any]]:
    """Split rows into ``k`` folds, each label spread evenly (deterministic, in file order)."""
    if k < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {k}")
    folds: list[list[Any]] = [[] for _ in range(k)]
    seen: dict[str, int] = {}
    for row in rows:
        label = _intent_of(row)
        folds[seen.get(label, 0) % k].append(row)
        seen[label] = seen.get(label, 0) + 1
    return folds


def intents_result(out: Mapping[str, Any]) -> SuiteResult:
    """A :func:`run_intents_suite` result as a suite result for the run record."""
    examples = [
        Example(
            id=str(e["id"]),
            input=e["input"],
            expected=e["expected"],
            output=e["output"],
            score=1.0 if e["ok"] else 0.0,
            ok=bool(e["ok"]),
            metrics={"confidence": finite(e.get("confidence"))},
        )
        for e in out["examples"]
    ]
    tables: dict[str, Any] = {}
    if out.get("per_intent"):
        tables["per_intent"] = out["per_intent"]
    if out.get("confusion"):
        tables["confusion"] = {"title": "Confusion matrix", **out["confusion"]}
    return SuiteResult(metrics=dict(out["metrics"]), examples=examples, tables=tables)


def merge_folds(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Pool cross-validation folds: metrics and per-intent scores averaged over the folds,
    confusion matrices summed over the union of labels, examples concatenated (fold-tagged)."""
    names = list(dict.fromkeys(n for p in parts for n in p["metrics"]))
    metrics = {n: mean(p["metrics"].get(n) for p in parts) for n in names}
    per_intent: dict[str, dict[str, float | None]] = {}
    intents = list(dict.fromkeys(i for p in parts for i in (p.get("per_intent") or {})))
    for intent in intents:
        rows = [p["per_intent"][intent] for p in parts if intent in (p.get("per_intent") or {})]
        cols = list(dict.fromkeys(c for r in rows for c in r))
        per_intent[intent] = {c: mean(r.get(c) for r in rows) for c in cols}
    labels = sorted({str(x) for p in parts for x in (p.get("confusion") or {}).get("labels", [])})
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for p in parts:
        conf = p.get("confusion") or {"labels": [], "matrix": []}
        for i, row in enumerate(conf["matrix"]):
            for j, count in enumerate(row):
                matrix[index[str(conf["labels"][i])]][index[str(conf["labels"][j])]] += count
    examples = [
        {**e, "id": f"f{n}-{e['id']}"} for n, p in enumerate(parts, 1) for e in p["examples"]
    ]
    return {
        "metrics": metrics,
        "per_intent": per_intent,
        "confusion": {"labels": labels, "matrix": matrix},
        "examples": examples,
    }


def intents_cross_validation(
    rows: Sequence[Any], *, folds: int, oos_label: str, embeddings: Embeddings
) -> dict[str, Any]:
    """Stratified k-fold cross-validation of the intent classifier on ``rows``.

    Metrics and per-intent scores are the mean over the folds; the confusion matrix and the
    examples pool every fold.
    """
    # cross-validation trains on the same rows k - 1 times: embed each once
    cached = EmbeddingCache(embeddings, max_items=None)
    parts = []
    split_rows = stratified_folds(rows, folds)
    for i, held_out in enumerate(split_rows):
        rest = [r for n, fold in enumerate(split_rows) if n != i for r in fold]
        parts.append(run_intents_suite(rest, held_out, oos_label=oos_label, embeddings=cached))
    return merge_folds(parts)


def demo_intent_rows(prompts_dir: Path) -> list[Any]:
    """The classifier's own examples: ``intents.csv`` plus ``out_of_scope.csv`` if present."""
    rows: list[Any] = list(load_intent_rows(prompts_dir / "intents.csv"))
    oos_path = prompts_dir / "out_of_scope.csv"
    if oos_path.is_file():
        rows += list(load_intent_rows(oos_path))
    return rows


async def intents_run(
    services: Services,
    *,
    train: Path | None = None,
    test: Path | None = None,
    split: int | None = None,
    oos_label: str | None = None,
    folds: int = 5,
    limit: int | None = None,
) -> RunRecord:
    """The ``intents`` suite.

    * No paths: the demo examples (``prompts/intents.csv`` + ``prompts/out_of_scope.csv``) by
      stratified ``folds``-fold cross-validation: metrics and per-intent scores are the mean
      over the folds, the confusion matrix and the examples pool every fold.
    * ``train`` and ``test``: train on one file, score the other (Bitext, CLINC150).
    * ``train`` and ``split=K``: hold out one of ``K`` stratified folds of ``train`` as the
      test set (BANKING77 publishes only a training file).

    The classifier is the product's (``nlp.classifier``) on the services' embeddings.
    """
    clock = RunClock("intents")
    label = oos_label or OUT_OF_SCOPE
    embeddings = services.models.embeddings

    async def score(train_rows: Sequence[Any], test_rows: Sequence[Any]) -> dict[str, Any]:
        return await asyncio.to_thread(
            run_intents_suite,
            train_rows,
            test_rows,
            oos_label=label,
            embeddings=embeddings,
        )

    config: dict[str, Any] = {"oos_label": label, "limit": limit}
    if train is None and test is None:
        prompts = get_settings().prompts_dir
        rows = await asyncio.to_thread(demo_intent_rows, prompts)
        out = await asyncio.to_thread(
            intents_cross_validation, rows, folds=folds, oos_label=label, embeddings=embeddings
        )
        dataset: dict[str, Any] = {"name": "demo", "path": str(prompts), "rows": len(rows)}
        config["folds"] = folds
    elif train is not None and test is not None and split is None:
        train_rows = list(load_intent_rows(train))
        test_rows = limit_rows(list(load_intent_rows(test)), limit)
        out = await score(train_rows, test_rows)
        name = train.parent.name or train.stem
        dataset = {"name": name, "train": str(train), "test": str(test), "rows": len(test_rows)}
    elif train is not None and test is None and split is not None:
        all_rows = list(load_intent_rows(train))
        held_out, *rest_folds = stratified_folds(all_rows, split)
        test_rows = limit_rows(held_out, limit)
        out = await score([r for fold in rest_folds for r in fold], test_rows)
        name = train.parent.name or train.stem
        dataset = {"name": name, "train": str(train), "rows": len(test_rows)}
        config["split"] = f"fold 1 of {split} held out"
    else:
        raise ValueError(
            "intents takes --train with --test, or --train with --split K, or neither (demo)"
        )
    result = intents_result(out)
    timing = out.get("timing") or {}
    if timing:
        result.notes.append("timing: " + ", ".join(f"{k} {v}" for k, v in timing.items()))
    return clock.finish(
        result,
        config={**config, "models": model_info(services)},
        dataset=dataset,
        model_tier=services.models.tier,
    )
