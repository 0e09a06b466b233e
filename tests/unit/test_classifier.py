"""The offline intent classifier, the intents suite and the ``deskgraph classify`` probe's
errors, in this process.

The tests use a bag-of-words hashing embedding (deterministic, no model) so that they check the
classifier's own logic. The probe as a real process, with the offline MiniLM, is in
``tests/integration/test_classifier.py``.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings

from evals.suites.intents import IntentRow, load_intent_rows, run_intents_suite, score_intents
from nlp.classifier import (
    OUT_OF_SCOPE,
    ClassifierConfig,
    IntentClassifier,
    IntentPrediction,
    _fit_detector,
    _neighbour_similarity,
    _oos_signals,
    background_examples,
    read_examples,
)
from tests.support.intent_rows import synthetic_rows


class HashEmbeddings(Embeddings):
    """Unit bag-of-words vectors: texts sharing words are similar, others orthogonal-ish."""

    dim = 512

    def _one(self, text: str) -> list[float]:
        vec = np.zeros(self.dim)
        for word in re.findall(r"[a-z']+", text.lower()):
            h = int(hashlib.md5(word.encode()).hexdigest(), 16)
            vec[h % self.dim] += 1.0 if (h >> 20) % 2 else -1.0
        norm = np.linalg.norm(vec)
        return (vec / norm if norm else vec).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._one(text)


@pytest.fixture(scope="module")
def trained() -> IntentClassifier:
    # No background: bag-of-words vectors make "open on sunday" look like the background's
    # "is the museum open on mondays"; test_background_* covers it.
    rows = synthetic_rows()
    clf = IntentClassifier(HashEmbeddings(), config=ClassifierConfig(background=False))
    return clf.fit([t for t, _ in rows], [i for _, i in rows])


def test_classifier_learns_intents_from_examples(trained: IntentClassifier) -> None:
    assert trained.labels == ["billing", "booking", "hours"]  # out of scope is not an intent
    preds = trained.predict_many(
        ["refund on my card", "book a technician visit", "are you open on sunday"]
    )
    assert [p.intent for p in preds] == ["billing", "booking", "hours"]
    assert all(not p.out_of_scope and 0.5 < p.confidence <= 1.0 for p in preds)


async def test_single_message_prediction_matches_the_batch(trained: IntentClassifier) -> None:
    one = await trained.apredict("invoice payment question")
    (batch,) = trained.predict_many(["invoice payment question"])
    assert one.intent == batch.intent == "billing"
    assert math.isclose(one.confidence, batch.confidence, rel_tol=1e-5)


def test_classifier_flags_out_of_scope_messages(trained: IntentClassifier) -> None:
    # Close to the out-of-scope examples, and unlike anything seen at all.
    for text in ("tell me a joke about the weather", "zebra quantum saxophone"):
        (pred,) = trained.predict_many([text])
        assert pred.out_of_scope and pred.intent == OUT_OF_SCOPE, text
        assert 0.0 <= pred.confidence <= 1.0


def test_out_of_scope_decision_follows_the_detector(trained: IntentClassifier) -> None:
    """The fast path in predictions gives what scikit-learn's predict_proba would."""
    fitted = trained._fitted
    assert fitted is not None and fitted.detector is not None
    texts = ["bill for the visit", "open hours", "pasta recipe weather", "joke about a movie"]
    vectors = np.asarray(HashEmbeddings().embed_documents(texts), np.float32)
    preds = trained.predict_vectors(vectors, texts)
    dense, sparse = fitted.features.dense(vectors), fitted.features.sparse(texts)
    probs = np.exp(fitted.model.logits(dense, sparse) / fitted.temperature)
    probs /= probs.sum(axis=1, keepdims=True)
    oos_col = list(fitted.classes).index(OUT_OF_SCOPE)
    mean_k, nearest = _neighbour_similarity(vectors, fitted.in_scope, 5)
    oos_k = _neighbour_similarity(vectors, fitted.off_topic, 5)[0]
    p = fitted.detector.predict_proba(_oos_signals(probs, oos_col, mean_k, oos_k))[:, 1]
    for pred, prob, p_oos, near in zip(preds, probs, p, nearest, strict=True):
        best = int(np.argmax(prob))
        if best == oos_col:
            assert pred.out_of_scope
        elif p_oos >= fitted.threshold:
            assert pred.out_of_scope and pred.confidence == pytest.approx(p_oos, rel=1e-5)
        elif near < trained.config.min_similarity:
            assert pred.out_of_scope
        else:
            assert pred.intent == fitted.classes[best] and not pred.out_of_scope
    assert any(p.out_of_scope for p in preds) and not all(p.out_of_scope for p in preds)


def test_without_out_of_scope_examples_only_unseen_text_is_out_of_scope() -> None:
    rows = synthetic_rows(with_oos=False)
    config = ClassifierConfig(background=False)
    clf = IntentClassifier(HashEmbeddings(), config=config)
    clf.fit([t for t, _ in rows], [i for _, i in rows])
    assert clf.background_kept == 0
    near, far = clf.predict_many(["schedule my appointment", "zebra quantum saxophone"])
    assert near.intent == "booking" and not near.out_of_scope
    assert far.out_of_scope  # below min_similarity to every example


def test_background_off_topic_rows_train_the_out_of_scope_class() -> None:
    """Without any out-of-scope rows of its own, a classifier still learns off-topic subjects
    from the background file; background rows near an in-scope example are dropped."""
    background = background_examples()
    assert len(background) >= 500  # 551 and all(t and not t.startswith("#") for t in background)
    rows = synthetic_rows(with_oos=False)
    texts, labels = [t for t, _ in rows], [i for _, i in rows]
    clf = IntentClassifier(HashEmbeddings()).fit(texts, labels)
    assert clf.labels == ["billing", "booking", "hours"]
    assert 0 < clf.background_kept <= len(background)
    fitted = clf._fitted
    assert fitted is not None and OUT_OF_SCOPE in fitted.classes
    probe = ["how far away is the moon", "what's a good recipe for chicken curry"]
    assert all(p.out_of_scope for p in clf.predict_many(probe))
    (in_scope,) = clf.predict_many(["schedule my appointment"])
    assert in_scope.intent == "booking" and not in_scope.out_of_scope
    # A tenant whose intents are about the weather keeps its weather questions.
    weather = [(f"{t} please", "weather") for t in background if "rain" in t or "forecast" in t]
    assert weather
    clf = IntentClassifier(HashEmbeddings(), config=ClassifierConfig(background_cut=0.5))
    clf.fit(texts + [t for t, _ in weather], labels + [i for _, i in weather])
    assert clf.background_kept < len(background)
    assert clf.predict_many([weather[0][0]])[0].intent == "weather"


def test_training_is_deterministic() -> None:
    rows = synthetic_rows()
    texts, labels = [t for t, _ in rows], [i for _, i in rows]
    probe = ["bill for the visit", "open hours on holiday", "pasta weather"]
    a = IntentClassifier(HashEmbeddings()).fit(texts, labels).predict_many(probe)
    b = IntentClassifier(HashEmbeddings()).fit(texts, labels).predict_many(probe)
    assert a == b


def test_fit_rejects_bad_training_sets() -> None:
    clf = IntentClassifier(HashEmbeddings())
    with pytest.raises(RuntimeError, match="fit"):
        clf.predict_many(["hello"])
    with pytest.raises(ValueError, match="as many labels"):
        clf.fit(["a", "b"], ["x"])
    with pytest.raises(ValueError, match="two intents"):
        clf.fit(["a", "b"], ["x", "x"])


def test_detector_threshold_keeps_false_declines_within_budget() -> None:
    rng = np.random.default_rng(0)
    n_in, n_oos, k = 600, 60, 4
    y = np.concatenate([rng.integers(0, k, n_in), np.full(n_oos, k)])  # class k: out of scope
    logits = rng.normal(0, 1, (len(y), k + 1))
    logits[np.arange(len(y)), y] += np.where(y == k, 1.0, 3.0)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    mean_k = np.where(y == k, rng.normal(0.3, 0.1, len(y)), rng.normal(0.6, 0.1, len(y)))
    for budget in (0.005, 0.02, 0.1):
        cfg = ClassifierConfig(false_decline_budget=budget, min_detector_probability=0.0)
        detector, threshold = _fit_detector(probs, y, k, mean_k, cfg)
        p = detector.predict_proba(_oos_signals(probs, k, mean_k))[:, 1]
        answered = (y != k) & (probs.argmax(axis=1) == y)
        declined = int((answered & (p >= threshold)).sum())
        assert declined <= math.floor(budget * n_in)
        assert (p[y == k] >= threshold).mean() > 0.5  # and it still catches out of scope
    cfg = ClassifierConfig(false_decline_budget=0.5)
    assert _fit_detector(probs, y, k, mean_k, cfg)[1] >= 2 / 3  # never below 2:1 odds


# ------------------------------------------------------------------------------------ loaders


def test_read_examples_reads_csv_and_jsonl_with_oos_aliases(tmp_path: Path) -> None:
    csv_path = tmp_path / "bitext.csv"
    csv_path.write_text(
        '\ufefftext,intent,category\n"cancel, please",cancel_order,ORDER\n\nweather?,OOS,\n',
        encoding="utf-8",
    )
    assert read_examples(csv_path) == (
        ["cancel, please", "weather?"],
        ["cancel_order", OUT_OF_SCOPE],
    )
    oos_only = tmp_path / "out_of_scope.csv"
    oos_only.write_text("text\nwho won the game\n", encoding="utf-8")
    assert read_examples(oos_only) == (["who won the game"], [OUT_OF_SCOPE])
    jsonl = tmp_path / "clinc.jsonl"
    jsonl.write_text(
        '{"text": "how do i say hi in french", "intent": "translate"}\n\n'
        '{"text": "tell me a joke", "intent": "oos"}\n',
        encoding="utf-8",
    )
    rows = load_intent_rows(jsonl)
    assert rows == [
        IntentRow("how do i say hi in french", "translate"),
        IntentRow("tell me a joke", OUT_OF_SCOPE),
    ]
    assert rows[0].intent == "translate" and tuple(rows[1]) == ("tell me a joke", OUT_OF_SCOPE)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.csv", "words,label\nhi,x\n", "'text' column"),
        ("b.csv", "text,intent\nhi,greet\n,billing\n", r"b\.csv:3: empty text"),
        ("c.csv", "text,intent\nhi,\n", r"c\.csv:2: empty intent"),
        ("d.jsonl", '{"text": "hi", "intent": "x"}\nnot json\n', r"d\.jsonl:2: not JSON"),
        ("e.jsonl", '{"text": "hi"}\n', r"e\.jsonl:1: .*'intent'"),
        ("f.jsonl", '["hi", "x"]\n', r"f\.jsonl:1: .*'text'"),
    ],
)
def test_read_examples_names_the_bad_line(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_examples(path)


def test_read_examples_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_intent_rows(tmp_path / "nope.csv")


# -------------------------------------------------------------------------------------- suite


def test_intents_suite_reports_metrics_confusion_and_examples() -> None:
    rows = synthetic_rows()
    test_rows = [
        ("refund for my card", "billing"),
        ("schedule a technician", "booking"),
        ("open on the weekend", "hours"),
        ("bill for the weekend visit", "hours"),  # ambiguous on purpose: may be wrong
        ("tell me a joke about football", "oos"),
        ("zebra quantum saxophone", "oos"),
    ]
    out = run_intents_suite(rows, test_rows, oos_label="oos", embeddings=HashEmbeddings())
    assert set(out) >= {"metrics", "per_intent", "confusion", "examples"}
    examples = out["examples"]
    assert [e["id"] for e in examples] == [str(i) for i in range(len(test_rows))]
    assert [e["expected"] for e in examples][-2:] == [OUT_OF_SCOPE, OUT_OF_SCOPE]
    assert all(e["ok"] == (e["expected"] == e["output"]) for e in examples)
    m = out["metrics"]
    assert m["accuracy"] == sum(e["ok"] for e in examples) / len(examples)
    in_scope = [e for e in examples if e["expected"] != OUT_OF_SCOPE]
    assert m["in_scope_accuracy"] == sum(e["ok"] for e in in_scope) / len(in_scope)
    declined = [e for e in examples if e["output"] == OUT_OF_SCOPE]
    assert m["oos_recall"] == sum(e["expected"] == OUT_OF_SCOPE for e in declined) / 2
    assert m["oos_precision"] == sum(e["expected"] == OUT_OF_SCOPE for e in declined) / len(
        declined
    )
    labels, matrix = out["confusion"]["labels"], out["confusion"]["matrix"]
    assert labels[-1] == OUT_OF_SCOPE and set(labels) == set(out["per_intent"])
    assert sum(map(sum, matrix)) == len(test_rows)
    for i, label in enumerate(labels):
        assert sum(matrix[i]) == out["per_intent"][label]["support"]
    f1s = [s["f1"] for s in out["per_intent"].values()]
    assert m["macro_f1"] == pytest.approx(sum(f1s) / len(f1s), abs=1e-3)


def test_intent_scores_against_hand_counts() -> None:
    def pred(intent: str) -> IntentPrediction:
        return IntentPrediction(intent, 0.9, intent == OUT_OF_SCOPE)

    expected = ["billing", "billing", "booking", "booking", OUT_OF_SCOPE, OUT_OF_SCOPE]
    predicted = ["billing", "billing", "booking", "hours", OUT_OF_SCOPE, "billing"]
    out = score_intents([f"m{i}" for i in range(6)], expected, [pred(p) for p in predicted])
    m = out["metrics"]
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["in_scope_accuracy"] == 0.75
    assert m["oos_recall"] == 0.5 and m["oos_precision"] == 1.0
    assert out["per_intent"]["billing"] == {
        "precision": 0.6667,
        "recall": 1.0,
        "f1": 0.8,
        "support": 2,
    }
    # "hours" was never expected: it still counts, with F1 0, as scikit-learn's macro F1 does
    assert out["per_intent"]["hours"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    f1 = {"billing": 0.8, "booking": 2 / 3, "hours": 0.0, OUT_OF_SCOPE: 2 / 3}
    assert m["macro_f1"] == pytest.approx(sum(f1.values()) / 4)
    assert out["confusion"] == {
        "labels": ["billing", "booking", "hours", OUT_OF_SCOPE],
        "matrix": [[2, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0], [1, 0, 0, 1]],
    }
    no_oos = score_intents(["a"], ["billing"], [pred(OUT_OF_SCOPE)])
    assert "in_scope_accuracy" not in no_oos["metrics"]  # the test rows have no such label
    assert no_oos["metrics"]["accuracy"] == 0.0


def test_intents_suite_needs_test_rows() -> None:
    with pytest.raises(ValueError, match="no test rows"):
        run_intents_suite(synthetic_rows(), [], embeddings=HashEmbeddings())


# -------------------------------------------------------------------------------------- probe


def test_classify_probe_reports_a_bad_examples_file(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    bad = tmp_path / "bad.csv"
    bad.write_text("text,intent\nhello,\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["classify", "--examples", str(bad), "--jsonl"], input="hi\n")
    assert result.exit_code == 2
    assert "bad.csv:2: empty intent" in " ".join(result.output.split())  # rich wraps lines
