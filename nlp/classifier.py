"""The offline intent classifier: sentence embeddings + word n-grams, with out-of-scope detection.

MiniLM embeddings (meaning) and TF-IDF word uni- and bi-grams (the exact words that separate
near-synonym intents) feed one softmax layer trained by mini-batch Adam in numpy
(:class:`_Linear`); its confidence is temperature-scaled on out-of-fold predictions. Out of scope
combines the ``out_of_scope`` class, the top probability and the similarity of the nearest
in-scope and out-of-scope examples, with a threshold that declines at most
``false_decline_budget`` of the in-scope messages answered correctly; a message unlike every
example (``min_similarity``) is out of scope whatever the training data. The ``out_of_scope``
class also learns from a background of varied off-topic messages written for this project
(``nlp/data/off_topic.txt``), less those within ``background_cut`` cosine of any in-scope
example, so off-topic subjects no tenant listed are still recognised. Deterministic for a given
training set.

Why this method, the figures and what was tried and dropped (fine-tuning MiniLM, SVMs,
character n-grams): docs/decisions/intent-classifier.md.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

OUT_OF_SCOPE = "out_of_scope"
BACKGROUND_FILE = Path(__file__).with_name("data") / "off_topic.txt"
"""Off-topic messages written for this project, one a line (``#`` comments): the background."""
OOS_ALIASES = frozenset({"out_of_scope", "oos", "out-of-scope", "outofscope"})
"""Labels read as out of scope (case-insensitive): our own name and CLINC150's ``oos``."""


def normalise_intent(label: str) -> str:
    """A label as the classifier uses it: trimmed, out-of-scope aliases as ``OUT_OF_SCOPE``."""
    label = label.strip()
    return OUT_OF_SCOPE if label.lower() in OOS_ALIASES else label


@dataclass(frozen=True)
class IntentPrediction:
    """One classification."""

    intent: str
    """The intent, or ``OUT_OF_SCOPE``."""
    confidence: float
    """Calibrated probability (0-1) that ``intent`` is right."""
    out_of_scope: bool
    """True when ``intent`` is ``OUT_OF_SCOPE``."""


def read_examples(path: Path) -> tuple[list[str], list[str]]:
    """Read labelled examples from CSV or JSON Lines.

    CSV needs a header with a ``text`` column and usually ``intent`` (other columns, such as
    Bitext's ``category``, are ignored); a file without an ``intent`` column is a list of
    out-of-scope examples (``prompts/out_of_scope.csv``). JSON Lines (``.jsonl``) holds one
    ``{"text", "intent"}`` object per line. Out-of-scope aliases (``oos``) become
    ``OUT_OF_SCOPE``. Blank lines are skipped.

    Args:
        path: a ``.csv`` or ``.jsonl`` file.

    Returns:
        The texts and their labels, in file order.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the header lacks ``text``, or a row has an empty text or intent, or a JSON
            line is not an object with string fields (the message names the line).
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return _read_jsonl(path)
    texts, labels = [], []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "text" not in reader.fieldnames:
            raise ValueError(f"{path}: expected a CSV header with a 'text' column")
        has_intent = "intent" in reader.fieldnames
        for row in reader:
            line = reader.line_num
            text = (row.get("text") or "").strip()
            label = (row.get("intent") or "").strip() if has_intent else OUT_OF_SCOPE
            if not text and not label:
                continue
            if not text or not label:
                missing = "text" if not text else "intent"
                raise ValueError(f"{path}:{line}: empty {missing}")
            texts.append(text)
            labels.append(normalise_intent(label))
    return texts, labels


def _read_jsonl(path: Path) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    with path.open(encoding="utf-8-sig") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{line_no}: not JSON ({exc.msg})") from exc
            text = obj.get("text") if isinstance(obj, dict) else None
            label = obj.get("intent") if isinstance(obj, dict) else None
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"{path}:{line_no}: expected a non-empty string 'text'")
            if not isinstance(label, str) or not label.strip():
                raise ValueError(f"{path}:{line_no}: expected a non-empty string 'intent'")
            texts.append(text.strip())
            labels.append(normalise_intent(label))
    return texts, labels


@dataclass(frozen=True)
class ClassifierConfig:
    """Training settings.

    The learning settings (rates, epochs, batch) were chosen by cross-validation on training
    rows; ``false_decline_budget`` and ``min_detector_probability`` are product decisions (see
    the module docstring).
    """

    epochs: int = 10
    """Passes over the training rows (at least ``min_steps`` optimiser steps in all)."""
    batch_size: int = 128
    min_steps: int = 300
    """Small example sets (a tenant's few hundred rows) still get enough steps to converge."""
    lr_dense: float = 0.005
    lr_sparse: float = 0.05
    weight_decay: float = 0.01
    folds: int = 3
    """Cross-validation folds for calibration and the out-of-scope threshold."""
    false_decline_budget: float = 0.005
    """Share of in-scope messages the out-of-scope rule may decline (estimated out of fold)."""
    neighbours: int = 5
    min_similarity: float = 0.3
    """A message whose nearest in-scope example is less similar than this is out of scope."""
    min_detector_probability: float = 2 / 3
    """The out-of-scope detector's threshold never goes below this (2:1 odds)."""
    min_oos_examples: int = 6
    """Fewer out-of-scope rows than this train no detector (too few to set a threshold)."""
    background: bool = True
    """Add the background off-topic messages (``BACKGROUND_FILE``) as out-of-scope rows."""
    background_cut: float = 0.6
    """A background message at least this similar (cosine) to an in-scope example is dropped:
    a business whose intents include the weather keeps them. Chosen a priori, not tuned."""
    background_share: float = 0.5
    """At most this many background rows per in-scope row (evenly spaced through the file):
    a tenant with a few hundred examples is not outnumbered by off-topic ones, whose class
    prior would then decline its real requests."""
    seed: int = 0


class IntentClassifier:
    """Intent classifier with a calibrated confidence and an out-of-scope decision.

    Args:
        embeddings: the sentence embeddings (the offline MiniLM, or an OpenAI-compatible model).
        min_similarity: shortcut for ``config.min_similarity``.
        config: training settings; defaults suit a few hundred to tens of thousands of rows.
    """

    def __init__(
        self,
        embeddings: Embeddings,
        *,
        min_similarity: float | None = None,
        config: ClassifierConfig | None = None,
    ) -> None:
        cfg = config or ClassifierConfig()
        if min_similarity is not None:
            cfg = replace(cfg, min_similarity=min_similarity)
        self.config = cfg
        self._embeddings = embeddings
        self._fitted: _Fitted | None = None
        self._background: np.ndarray | None = None
        self.labels: list[str] = []
        """The in-scope intents, sorted."""
        self.background_kept = 0
        """How many background messages the last ``fit`` trained on (after the cut)."""

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> IntentClassifier:
        """Train on examples; out-of-scope labels (``out_of_scope``, ``oos``) form their own class.

        Raises:
            ValueError: texts and labels differ in length, or fewer than two intents.
        """
        if len(texts) != len(labels) or not texts:
            raise ValueError(f"need as many labels as texts, got {len(texts)} and {len(labels)}")
        vectors = np.asarray(self._embeddings.embed_documents(list(texts)), dtype=np.float32)
        return self.fit_vectors(vectors, texts, labels)

    def fit_vectors(
        self, vectors: np.ndarray, texts: Sequence[str], labels: Sequence[str]
    ) -> IntentClassifier:
        """Train on examples whose embeddings are already computed (rows match ``texts``).

        Raises:
            ValueError: the lengths differ, or fewer than two intents.
        """
        y = np.asarray([normalise_intent(label) for label in labels])
        if not (len(vectors) == len(texts) == len(y)) or not len(y):
            raise ValueError(
                f"need one vector and one label per text, got {len(vectors)} vectors,"
                f" {len(texts)} texts and {len(y)} labels"
            )
        if len(set(y.tolist())) < 2:
            raise ValueError("need examples of at least two intents")
        units, texts = _unit(np.asarray(vectors, np.float32)), list(texts)
        if self.config.background:
            units, texts, y = self._with_background(units, texts, y)
        self._fitted = _train(units, texts, y, self.config)
        self.labels = sorted(set(y.tolist()) - {OUT_OF_SCOPE})
        return self

    def _with_background(
        self, vectors: np.ndarray, texts: list[str], y: np.ndarray
    ) -> tuple[np.ndarray, list[str], np.ndarray]:
        """The training rows plus the background messages not near any in-scope example."""
        bg_texts = list(background_examples())
        if self._background is None:
            self._background = _background_vectors(self._embeddings, bg_texts)
        in_scope = vectors[y != OUT_OF_SCOPE]
        nearest = _neighbour_similarity(self._background, in_scope, 1)[1]
        seen = set(texts)
        keep = [
            i
            for i, t in enumerate(bg_texts)
            if nearest[i] < self.config.background_cut and t not in seen
        ]
        most = int(self.config.background_share * len(in_scope))
        if len(keep) > most:
            keep = [keep[int(j)] for j in np.linspace(0, len(keep) - 1, most).round()]
        self.background_kept = len(keep)
        if not keep:
            return vectors, texts, y
        return (
            np.concatenate([vectors, self._background[keep]]),
            texts + [bg_texts[i] for i in keep],
            np.asarray(y.tolist() + [OUT_OF_SCOPE] * len(keep)),
        )

    async def apredict(self, text: str, vector: np.ndarray | None = None) -> IntentPrediction:
        """Classify one message (``vector``: its embedding, when the caller has it already)."""
        if vector is None:
            vector = np.asarray(await self._embeddings.aembed_query(text), dtype=np.float32)
        return self.predict_vectors(np.asarray(vector, dtype=np.float32)[None, :], [text])[0]

    def predict_many(self, texts: Sequence[str]) -> list[IntentPrediction]:
        """Classify several messages in one embedding batch."""
        if not texts:
            return []
        vecs = np.asarray(self._embeddings.embed_documents(list(texts)), dtype=np.float32)
        return self.predict_vectors(vecs, texts)

    def predict_vectors(self, vectors: np.ndarray, texts: Sequence[str]) -> list[IntentPrediction]:
        """Classify messages whose embeddings are already computed (rows match ``texts``)."""
        if self._fitted is None:
            raise RuntimeError("IntentClassifier.fit must be called before predicting")
        return self._fitted.decide(_unit(np.asarray(vectors, np.float32)), list(texts))


@lru_cache(maxsize=1)
def background_examples() -> tuple[str, ...]:
    """The background off-topic messages (``BACKGROUND_FILE``), in file order."""
    lines = BACKGROUND_FILE.read_text(encoding="utf-8").splitlines()
    return tuple(dict.fromkeys(t for line in lines if (t := line.strip()) and t[0] != "#"))


_BACKGROUND_VECTORS: list[tuple[Embeddings, np.ndarray]] = []


def _background_vectors(embeddings: Embeddings, texts: list[str]) -> np.ndarray:
    """The background's unit embeddings, embedded once per embeddings object (the process
    trains one classifier per tenant with the same model; the last 4 models are kept)."""
    for model, vectors in _BACKGROUND_VECTORS:
        if model is embeddings and len(vectors) == len(texts):
            return vectors
    vectors = _unit(np.asarray(embeddings.embed_documents(texts), np.float32))
    _BACKGROUND_VECTORS.append((embeddings, vectors))
    del _BACKGROUND_VECTORS[:-4]
    return vectors


# --- training -------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _blas_controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _one_blas_thread() -> Any:
    """Context: numpy's BLAS on one thread.

    The products here are small (a batch, or one message against the examples); on a busy
    2-core server two BLAS threads spin against each other and the request handlers, which made
    one prediction take 7-12 ms instead of 1-2 ms (the same finding as ``Settings.torch_threads``).
    """
    return _blas_controller().limit(limits=1, user_api="blas")


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


class _Features:
    """Standardised embedding (dense) + word 1-2-gram TF-IDF (sparse)."""

    def __init__(self, vectors: np.ndarray, texts: list[str]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.mean = vectors.mean(0)
        self.scale = vectors.std(0) + 1e-6
        self.tfidf = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, dtype=np.float32)
        self.tfidf.fit(texts)

    def dense(self, vectors: np.ndarray) -> np.ndarray:
        return ((vectors - self.mean) / self.scale).astype(np.float32)

    def sparse(self, texts: list[str]) -> Any:
        return self.tfidf.transform(texts).tocsr()


class _Linear:
    """Softmax regression over dense + sparse features, trained with mini-batch Adam.

    Written out in numpy rather than torch: the gradient of a softmax is one line, and updating
    only the TF-IDF rows a batch touches ("lazy" Adam) makes a step cost what the batch holds,
    not the whole vocabulary. Twice as fast as torch's ``SparseAdam`` on the same problem.
    """

    def __init__(self, n_dense: int, n_sparse: int, n_classes: int) -> None:
        # Zero start: the problem is convex, so no random initialisation is needed.
        self.w_dense = np.zeros((n_dense, n_classes), np.float32)
        self.bias = np.zeros(n_classes, np.float32)
        self.w_sparse = np.zeros((n_sparse, n_classes), np.float32)

    def fit(self, dense: np.ndarray, sparse: Any, y: np.ndarray, cfg: ClassifierConfig) -> None:
        with _one_blas_thread():
            self._fit(dense, sparse, y, cfg)

    def _fit(self, dense: np.ndarray, sparse: Any, y: np.ndarray, cfg: ClassifierConfig) -> None:
        n = len(y)
        batch = min(cfg.batch_size, n)
        per_epoch = math.ceil(n / batch)
        epochs = max(cfg.epochs, math.ceil(cfg.min_steps / per_epoch))
        total = epochs * per_epoch
        b1, b2, eps = 0.9, 0.999, 1e-8
        params = (self.w_dense, self.bias, self.w_sparse)
        m1 = [np.zeros_like(w) for w in params]
        m2 = [np.zeros_like(w) for w in params]
        rng = np.random.default_rng(cfg.seed)
        step = 0
        for _ in range(epochs):
            order = rng.permutation(n)
            for start in range(0, n, batch):
                idx = order[start : start + batch]
                rows = sparse[idx]
                cols = np.unique(rows.indices)  # the n-grams this batch uses
                rows = rows[:, cols]
                x = dense[idx]
                w_cols = self.w_sparse[cols]
                z = x @ self.w_dense + self.bias + rows @ w_cols
                z -= z.max(axis=1, keepdims=True)
                p = np.exp(z)
                p /= p.sum(axis=1, keepdims=True)
                p[np.arange(len(idx)), y[idx]] -= 1.0  # d(cross-entropy)/d(logits)
                p /= len(idx)
                grads = (x.T @ p, p.sum(axis=0), np.asarray(rows.T @ p))
                step += 1
                c1, c2 = 1.0 - b1**step, 1.0 - b2**step
                lr = _one_cycle(step - 1, total)
                lr_dense, lr_sparse = lr * cfg.lr_dense, lr * cfg.lr_sparse
                self.w_dense *= 1.0 - lr_dense * cfg.weight_decay  # AdamW's decoupled decay
                for k in (0, 1):
                    m1[k] *= b1
                    m1[k] += (1 - b1) * grads[k]
                    m2[k] *= b2
                    m2[k] += (1 - b2) * grads[k] ** 2
                    params[k][...] -= lr_dense * (m1[k] / c1) / (np.sqrt(m2[k] / c2) + eps)
                g = grads[2]
                first = m1[2][cols] * b1 + (1 - b1) * g
                second = m2[2][cols] * b2 + (1 - b2) * g**2
                m1[2][cols] = first
                m2[2][cols] = second
                self.w_sparse[cols] = w_cols - lr_sparse * (first / c1) / (
                    np.sqrt(second / c2) + eps
                )

    def logits(self, dense: np.ndarray, sparse: Any) -> np.ndarray:
        out = dense @ self.w_dense + self.bias + sparse @ self.w_sparse
        return np.asarray(out, dtype=np.float64)


def _one_cycle(step: int, total: int, warmup: float = 0.1) -> float:
    """Learning-rate factor: cosine warm-up from 1/25 to 1, then cosine decay to ~0.

    A short warm-up then annealing converges in few epochs (torch's ``OneCycleLR`` shape).
    """
    up = max(1, int(warmup * total))
    low, end = 1 / 25, 1 / 25 / 1e4
    if step < up:
        return low + (1 - low) * (1 - math.cos(math.pi * step / up)) / 2
    frac = (step - up) / max(1, total - up)
    return end + (1 - end) * (1 + math.cos(math.pi * frac)) / 2


def _softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return np.asarray(p / p.sum(axis=1, keepdims=True))


def _fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature minimising the negative log-likelihood of held-out predictions."""
    from scipy.optimize import minimize_scalar

    rows = np.arange(len(y))

    def nll(log_t: float) -> float:
        return -float(np.mean(np.log(_softmax(logits, math.exp(log_t))[rows, y] + 1e-12)))

    found = minimize_scalar(nll, bounds=(math.log(0.05), math.log(20.0)), method="bounded")
    return float(math.exp(found.x))


def _neighbour_similarity(
    queries: np.ndarray, reference: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean cosine of the ``k`` nearest reference rows, and the nearest one (unit vectors)."""
    if not len(reference):
        zeros = np.zeros(len(queries), np.float32)
        return zeros, zeros
    k = min(k, len(reference))
    mean_k = np.empty(len(queries), np.float32)
    top = np.empty(len(queries), np.float32)
    for start in range(0, len(queries), 1024):  # blocks bound memory to 1024 x len(reference)
        sims = queries[start : start + 1024] @ reference.T
        nearest = np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:]
        mean_k[start : start + 1024] = nearest.mean(axis=1)
        top[start : start + 1024] = nearest.max(axis=1)
    return mean_k, top


def _oos_signals(
    probs: np.ndarray, oos_col: int | None, mean_k: np.ndarray, oos_k: np.ndarray | None = None
) -> np.ndarray:
    """The out-of-scope detector's inputs: log-odds of the top in-scope probability, p(oos),
    the mean cosine of the nearest in-scope examples, and of the nearest out-of-scope ones
    (background included; zeros when not given)."""
    in_scope = probs if oos_col is None else np.delete(probs, oos_col, axis=1)
    top = np.clip(in_scope.max(axis=1), 1e-9, 1 - 1e-9)
    p_oos = probs[:, oos_col] if oos_col is not None else np.zeros(len(probs))
    near_oos = np.zeros(len(probs)) if oos_k is None else oos_k
    return np.stack([np.log(top / (1 - top)), p_oos, mean_k, near_oos], axis=1)


@dataclass
class _Fitted:
    features: _Features
    model: _Linear
    classes: np.ndarray
    temperature: float
    in_scope: np.ndarray
    """Unit embeddings of the in-scope training rows (nearest-neighbour similarity)."""
    off_topic: np.ndarray
    """Unit embeddings of the out-of-scope training rows, background included."""
    detector: Any
    """Logistic regression on ``_oos_signals``, or None without enough out-of-scope rows."""
    threshold: float
    cfg: ClassifierConfig

    def decide(self, vectors: np.ndarray, texts: list[str]) -> list[IntentPrediction]:
        with _one_blas_thread():
            logits = self.model.logits(self.features.dense(vectors), self.features.sparse(texts))
            mean_k, nearest = _neighbour_similarity(vectors, self.in_scope, self.cfg.neighbours)
            oos_k = _neighbour_similarity(vectors, self.off_topic, self.cfg.neighbours)[0]
        probs = _softmax(logits, self.temperature)
        oos_col = _oos_column(self.classes)
        p_detect = None
        if self.detector is not None:
            # predict_proba of a binary logistic regression, without scikit-learn's per-call
            # input validation (about a millisecond, as much as the rest of a prediction)
            score = _oos_signals(probs, oos_col, mean_k, oos_k) @ self.detector.coef_[0]
            p_detect = 1.0 / (1.0 + np.exp(-(score + self.detector.intercept_[0])))
        out = []
        for i in range(len(texts)):
            best = int(np.argmax(probs[i]))
            intent, confidence = str(self.classes[best]), float(probs[i, best])
            if intent == OUT_OF_SCOPE:
                out.append(IntentPrediction(OUT_OF_SCOPE, confidence, True))
            elif p_detect is not None and p_detect[i] >= self.threshold:
                out.append(IntentPrediction(OUT_OF_SCOPE, float(p_detect[i]), True))
            elif nearest[i] < self.cfg.min_similarity:
                out.append(IntentPrediction(OUT_OF_SCOPE, 1.0 - max(float(nearest[i]), 0.0), True))
            else:
                out.append(IntentPrediction(intent, confidence, False))
        return out


def _oos_column(classes: np.ndarray) -> int | None:
    hits = np.flatnonzero(classes == OUT_OF_SCOPE)
    return int(hits[0]) if len(hits) else None


def _fit_linear(
    vectors: np.ndarray, texts: list[str], y: np.ndarray, n_classes: int, cfg: ClassifierConfig
) -> tuple[_Features, _Linear]:
    features = _Features(vectors, texts)
    dense, sparse = features.dense(vectors), features.sparse(texts)
    model = _Linear(dense.shape[1], sparse.shape[1], n_classes)
    model.fit(dense, sparse, y, cfg)
    return features, model


def _out_of_fold(
    vectors: np.ndarray,
    texts: list[str],
    y: np.ndarray,
    n_classes: int,
    oos: int | None,
    cfg: ClassifierConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Held-out logits and neighbour similarities (in scope, out of scope) of every row (k-fold),
    or None if too few rows."""
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(y, minlength=n_classes)
    if cfg.folds < 2 or len(y) < 10 * cfg.folds or counts.max() < cfg.folds:
        return None
    logits = np.zeros((len(y), n_classes))
    mean_k = np.zeros(len(y), np.float32)
    oos_k = np.zeros(len(y), np.float32)
    folds = StratifiedKFold(cfg.folds, shuffle=True, random_state=cfg.seed)
    with warnings.catch_warnings():
        # An intent with fewer rows than folds is fine: it is missing from some training folds.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        splits = list(folds.split(np.zeros(len(y)), y))
    for train_idx, held_idx in splits:
        features, model = _fit_linear(
            vectors[train_idx], [texts[i] for i in train_idx], y[train_idx], n_classes, cfg
        )
        held_vectors = vectors[held_idx]
        logits[held_idx] = model.logits(
            features.dense(held_vectors), features.sparse([texts[i] for i in held_idx])
        )
        reference = vectors[train_idx][y[train_idx] != (-1 if oos is None else oos)]
        mean_k[held_idx] = _neighbour_similarity(held_vectors, reference, cfg.neighbours)[0]
        off_topic = vectors[train_idx][y[train_idx] == (-1 if oos is None else oos)]
        oos_k[held_idx] = _neighbour_similarity(held_vectors, off_topic, cfg.neighbours)[0]
    return logits, mean_k, oos_k


def _fit_detector(
    probs: np.ndarray,
    y: np.ndarray,
    oos: int,
    mean_k: np.ndarray,
    cfg: ClassifierConfig,
    oos_k: np.ndarray | None = None,
) -> tuple[Any, float]:
    """The out-of-scope detector and its threshold, from held-out predictions."""
    from sklearn.linear_model import LogisticRegression

    signals = _oos_signals(probs, oos, mean_k, oos_k)
    is_oos = y == oos
    # Balanced weights: out-of-scope rows are typically a few percent of the training set.
    detector = LogisticRegression(class_weight="balanced", max_iter=1000).fit(signals, is_oos)
    p = detector.predict_proba(signals)[:, 1]
    answered = np.sort(p[~is_oos & (probs.argmax(axis=1) == y)])[::-1]
    allowed = math.floor(cfg.false_decline_budget * int((~is_oos).sum()))
    # Decline at p >= threshold: just above the (allowed+1)-th highest score of a right answer.
    threshold = float(np.nextafter(answered[allowed], 2.0)) if allowed < len(answered) else 0.0
    # Never below 2:1 odds for out of scope (at balanced priors): with a few hundred rows the
    # budget cannot be estimated finely, and declining a real request as off-topic (never
    # escalated) is the costlier mistake.
    return detector, min(max(threshold, cfg.min_detector_probability), 1.0)


def _train(
    vectors: np.ndarray, texts: list[str], labels: np.ndarray, cfg: ClassifierConfig
) -> _Fitted:
    classes, y = np.unique(labels, return_inverse=True)
    oos = _oos_column(classes)
    features, model = _fit_linear(vectors, texts, y, len(classes), cfg)
    temperature, detector, threshold = 1.0, None, 1.0
    held = _out_of_fold(vectors, texts, y, len(classes), oos, cfg)
    if held is not None:
        logits, mean_k, oos_k = held
        temperature = _fit_temperature(logits, y)
        if oos is not None and int((y == oos).sum()) >= cfg.min_oos_examples:
            probs = _softmax(logits, temperature)
            detector, threshold = _fit_detector(probs, y, oos, mean_k, cfg, oos_k)
    return _Fitted(
        features=features,
        model=model,
        classes=classes,
        temperature=temperature,
        in_scope=vectors[labels != OUT_OF_SCOPE],
        off_topic=vectors[labels == OUT_OF_SCOPE],
        detector=detector,
        threshold=threshold,
        cfg=cfg,
    )
