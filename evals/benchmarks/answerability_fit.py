"""Fit the answerability model (:class:`graph.answerability.Model`) and print held-out figures.

Input: the signals of every labelled turn (``escalation.py --features FILE``) and, from the same
run, each turn's outcome (``escalation.py --items FILE``), which says which turns were handed
off before any draft (an always-human intent, a keyword): those keep their outcome whatever the
model says, exactly as ``escalation.py --sweep`` treats them. Only ANSWERABLE and UNANSWERABLE
turns are used (MTRAG dev and the demo question set).

The model is a logistic regression over the standardised signals of
:data:`graph.answerability.FEATURES` (L2, ``C``), with sample weights that give each of the four
groups (answerable / unanswerable, MTRAG / demo) the same total weight: the benchmark's objective
is the mean of the four rates, so the output is a probability under an even prior and 0.5 is
where answering and declining are equally likely to be right.

Protocol (every figure printed as chosen-on and held-out):

* ``leave_one_collection_out``: for each MTRAG collection, the model is fitted and the decline
  threshold chosen (the grid value that maximises the mean of the four rates, as in
  ``escalation.choose_threshold``) on the other three collections plus the demo set; the rates
  are reported on the held-out collection, at the chosen threshold and at the shipped 0.50.
  ``pooled`` adds the four held-out collections up.
* ``demo_heldout``: fitted and chosen on all of MTRAG, reported on the demo set.
* ``baseline``: the same two protocols with the old confidence (the best sentence's score, the
  ``best`` signal) and only its threshold chosen.
* ``selected``: the signals chosen by forward selection inside each fold's training part
  (:func:`select`), then fitted; ``fixed``: the signals of ``--signals`` (default: those
  selection picks on everything), only the coefficients fitted per fold.
* ``all``: fitted on everything (written to ``--write PATH`` as JSON); its figures on the data
  it was fitted on are chosen-on only. The draft node does not load it: the decision record
  (docs/decisions/answerability-model.md) says why.

Usage: ``python evals/benchmarks/answerability_fit.py --features F --items I [--signals a,b]
[--write PATH]``
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from evals.benchmarks.escalation import (  # noqa: E402
    SHOULD_ANSWER,
    Outcome,
    choose_threshold,
    summarise,
)
from graph.answerability import FEATURES, Model  # noqa: E402

C = 1.0
MAX_FEATURES = 6
MIN_GAIN = 0.005
SHIPPED_THRESHOLD = 0.5
Row = dict[str, Any]


def load(features: Path, items: Path) -> list[tuple[Row, Outcome]]:
    """Each labelled turn's signals with its outcome from the same benchmark run."""
    by_key = {}
    for line in items.open(encoding="utf-8"):
        d = json.loads(line)
        d.pop("kind", None)
        o = Outcome(**d)
        by_key[(o.dataset, o.id)] = o
    out = []
    for line in features.open(encoding="utf-8"):
        row = json.loads(line)
        if row["label"] in SHOULD_ANSWER:
            out.append((row, by_key[(row["dataset"], row["id"])]))
    return out


def _matrix(rows: Sequence[Row]) -> np.ndarray:
    return np.array([[r["signals"][f] for f in FEATURES] for r in rows], dtype=float)


def fit(rows: Sequence[Row], features: Sequence[str] = FEATURES) -> Model:
    """A logistic regression on ``rows``, the four groups weighted equally."""
    x = _matrix(rows)
    y = np.array([SHOULD_ANSWER[r["label"]] for r in rows], dtype=int)
    groups = [(r["dataset"], r["label"]) for r in rows]
    counts = {g: groups.count(g) for g in set(groups)}
    weight = np.array([len(rows) / (len(counts) * counts[g]) for g in groups])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    keep = np.array([f in features for f in FEATURES], dtype=float)
    lr = LogisticRegression(C=C, max_iter=2000)
    lr.fit((x - mean) / scale * keep, y, sample_weight=weight)
    return Model(mean, scale, lr.coef_[0] * keep, float(lr.intercept_[0]))


def with_confidence(
    pairs: Sequence[tuple[Row, Outcome]], confidence: Callable[[Row], float]
) -> list[Outcome]:
    """The outcomes with the drafter's confidence replaced (hand-offs before drafting keep)."""
    return [
        replace(o, confidence=confidence(r) if o.confidence is not None else None) for r, o in pairs
    ]


def rates(outcomes: Sequence[Outcome], threshold: float) -> dict[str, Any]:
    """Answerable answered / unanswerable not answered per dataset, at ``threshold``."""
    out: dict[str, Any] = {}
    for dataset in sorted({o.dataset for o in outcomes}):
        s = summarise([o for o in outcomes if o.dataset == dataset], lambda o: o.kind_at(threshold))
        out[dataset] = {
            "answerable_answered": s["answerable_answered"],
            "unanswerable_not_answered": s["unanswerable_not_answered"],
            "n": s["n"],
        }
    return out


def brier(outcomes: Sequence[Outcome]) -> float | None:
    """Mean squared error of the confidence as P(answerable), over drafted turns."""
    errs = [
        (o.confidence - float(SHOULD_ANSWER[o.label])) ** 2
        for o in outcomes
        if o.confidence is not None
    ]
    return round(sum(errs) / len(errs), 4) if errs else None


def protocol(
    pairs: Sequence[tuple[Row, Outcome]], scorer: Callable[[Sequence[Row]], Callable[[Row], float]]
) -> dict[str, Any]:
    """Leave-one-collection-out on MTRAG and the demo set held out (module docstring)."""
    mtrag = [p for p in pairs if p[0]["dataset"] == "mtrag"]
    demo = [p for p in pairs if p[0]["dataset"] == "demo"]
    folds: dict[str, Any] = {}
    pooled_shipped: list[Outcome] = []
    for held in sorted({r["collection"] for r, _ in mtrag}):
        train = [p for p in pairs if p[0]["collection"] != held]
        test = [p for p in mtrag if p[0]["collection"] == held]
        score = scorer([r for r, _ in train])
        train_out, test_out = with_confidence(train, score), with_confidence(test, score)
        t = choose_threshold(train_out)
        folds[held] = {
            "threshold_chosen": t,
            "chosen_on": rates(train_out, t),
            "heldout": rates(test_out, t)["mtrag"],
            "heldout_at_0.50": rates(test_out, SHIPPED_THRESHOLD)["mtrag"],
        }
        pooled_shipped += test_out
    # pooled: each held-out collection at its own fold's threshold
    pooled_rates = _pooled(folds, mtrag, scorer, pairs)
    score = scorer([r for r, _ in mtrag])
    mtrag_out, demo_out = with_confidence(mtrag, score), with_confidence(demo, score)
    t = choose_threshold(mtrag_out)
    return {
        "leave_one_collection_out": folds,
        "pooled_heldout": pooled_rates,
        "pooled_heldout_at_0.50": rates(pooled_shipped, SHIPPED_THRESHOLD)["mtrag"],
        "pooled_heldout_brier": brier(pooled_shipped),
        "demo_heldout": {
            "threshold_chosen": t,
            "chosen_on": rates(mtrag_out, t),
            "heldout": rates(demo_out, t)["demo"],
            "heldout_at_0.50": rates(demo_out, SHIPPED_THRESHOLD)["demo"],
            "heldout_brier": brier(demo_out),
        },
    }


def _pooled(
    folds: dict[str, Any],
    mtrag: Sequence[tuple[Row, Outcome]],
    scorer: Callable[[Sequence[Row]], Callable[[Row], float]],
    pairs: Sequence[tuple[Row, Outcome]],
) -> dict[str, Any]:
    """The held-out collections added up, each at the threshold its own fold chose."""
    hits = {True: [0, 0], False: [0, 0]}
    for held, fold in folds.items():
        train = [p for p in pairs if p[0]["collection"] != held]
        score = scorer([r for r, _ in train])
        for o in with_confidence([p for p in mtrag if p[0]["collection"] == held], score):
            should = SHOULD_ANSWER[o.label]
            hits[should][0] += (o.kind_at(fold["threshold_chosen"]) == "answered") == should
            hits[should][1] += 1
    return {
        "answerable_answered": round(hits[True][0] / hits[True][1], 4),
        "unanswerable_not_answered": round(hits[False][0] / hits[False][1], 4),
    }


def _log_loss(model: Model, rows: Sequence[Row]) -> float:
    """Mean log loss on ``rows``, the four groups weighted equally (as in :func:`fit`)."""
    groups = [(r["dataset"], r["label"]) for r in rows]
    counts = {g: groups.count(g) for g in set(groups)}
    total = 0.0
    for r, g in zip(rows, groups, strict=True):
        p = min(max(model.probability(r["signals"]), 1e-6), 1 - 1e-6)
        y = SHOULD_ANSWER[r["label"]]
        total += -np.log(p if y else 1 - p) / counts[g]
    return total / len(counts)


def select(rows: Sequence[Row]) -> tuple[str, ...]:
    """Forward selection of signals on ``rows`` alone: starting from ``best``, add the signal
    that most lowers the log loss of leave-one-collection-out inside ``rows`` (the demo set
    counts as a collection), while it lowers it by at least ``MIN_GAIN``, up to ``MAX_FEATURES``.
    """
    collections = sorted({r["collection"] for r in rows})

    def inner(features: tuple[str, ...]) -> float:
        losses = []
        for held in collections:
            train = [r for r in rows if r["collection"] != held]
            test = [r for r in rows if r["collection"] == held]
            if {r["label"] for r in test} == set(SHOULD_ANSWER):
                losses.append(_log_loss(fit(train, features), test))
        return float(np.mean(losses))

    chosen: tuple[str, ...] = ("best",)
    loss = inner(chosen)
    while len(chosen) < MAX_FEATURES:
        trials = {f: inner((*chosen, f)) for f in FEATURES if f not in chosen}
        f, trial = min(trials.items(), key=lambda kv: kv[1])
        if trial > loss - MIN_GAIN:
            break
        chosen, loss = (*chosen, f), trial
    return chosen


def model_scorer(rows: Sequence[Row]) -> Callable[[Row], float]:
    """Choose the signals and fit the model on ``rows``; score a row by its probability."""
    m = fit(rows, select(rows))
    return lambda r: m.probability(r["signals"])


def fixed_scorer(features: Sequence[str]) -> Callable[[Sequence[Row]], Callable[[Row], float]]:
    """The model on a fixed set of signals (only its coefficients fitted per fold)."""

    def scorer(rows: Sequence[Row]) -> Callable[[Row], float]:
        m = fit(rows, features)
        return lambda r: m.probability(r["signals"])

    return scorer


def baseline_scorer(rows: Sequence[Row]) -> Callable[[Row], float]:
    """The old confidence: the best sentence's score, clipped (nothing fitted)."""
    return lambda r: float(np.clip(r["signals"]["best"], 0.0, 1.0))


def main(argv: Sequence[str] | None = None) -> None:
    """Print the figures as JSON; ``--write`` stores the model fitted on everything."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--features", type=Path, required=True, help="escalation.py --features")
    p.add_argument("--items", type=Path, required=True, help="escalation.py --items, same run")
    p.add_argument(
        "--signals", help="comma-separated signals of the shipped model (default: selected)"
    )
    p.add_argument("--write", type=Path, help="write the model fitted on everything here")
    args = p.parse_args(argv)
    pairs = load(args.features, args.items)
    rows = [r for r, _ in pairs]
    features = tuple(args.signals.split(",")) if args.signals else select(rows)
    shipped = fit(rows, features)  # on everything
    everything = with_confidence(pairs, lambda r: shipped.probability(r["signals"]))
    doc = {
        "n": {d: sum(1 for r, _ in pairs if r["dataset"] == d) for d in ("mtrag", "demo")},
        "C": C,
        "selected": protocol(pairs, model_scorer),
        "fixed": protocol(pairs, fixed_scorer(features)),
        "baseline": protocol(pairs, baseline_scorer),
        "all": {
            "features": list(features),
            "coefficients": dict(
                zip(FEATURES, [round(float(c), 3) for c in shipped.coef], strict=True)
            ),
            "chosen_on_threshold": choose_threshold(everything),
            "chosen_on_at_0.50": rates(everything, SHIPPED_THRESHOLD),
        },
    }
    if args.write:
        args.write.write_text(json.dumps(shipped.to_json(), indent=1) + "\n", encoding="utf-8")
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
