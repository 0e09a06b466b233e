"""all-MiniLM-L6-v2 run by ONNX Runtime: the same vectors as sentence-transformers, 2-3x sooner.

The first process that needs the model exports the bundled checkpoint once into the model cache
(``Settings.model_cache_dir``), checks it against sentence-transformers, and only then publishes
it (temporary name, then rename); the file name carries a hash of the weights, tokenizer and
export format. Vectors match the PyTorch path's to about 1e-7, so the knowledge base keeps its
embedding key. Any failure falls back to PyTorch with a warning
(:func:`nlp.models.local_embeddings`); ``DESKGRAPH_EMBEDDING_RUNTIME=torch`` chooses PyTorch.

Why, the latency figures and what was dropped (int8, two threads):
docs/decisions/onnx-embeddings.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

log = logging.getLogger(__name__)

EXPORT_FORMAT = "2"
"""Bump when the exported graph changes (its inputs, pooling, opset): old files are not reused."""

_PROBES = (
    "hi",
    "How do I reset my password?",
    "Is there a Small Claims Court near me, and can I file a claim against a company online?",
    "The screen of my phone cracked after a fall; does the warranty cover repairs like this "
    "or do I have to pay for them myself, and how long does a repair usually take?",
)
"""Sentences of different lengths: checked in one padded batch and one by one after export."""
_MAX_DIFF = 1e-4


class OnnxSentenceEmbeddings(Embeddings):
    """A sentence-transformers mean-pooled, normalised model run by ONNX Runtime.

    Args:
        model_dir: the sentence-transformers folder (``tokenizer.json``, ``config.json``...).
        onnx_path: the exported graph (:func:`export_onnx`).
        threads: intra-op threads (``Settings.torch_threads``); the pool never spins, so a
            busy machine does not turn one embedding into a wait for a scheduled thread.
        batch_size: texts per model call in :meth:`embed_documents`. Small batches of texts
            sorted by length waste the least on padding: on Galaxy S10 sections, one thread,
            8 per call embedded 50 texts/s, 64 per call 38 (PyTorch, 64 per call: 36).
    """

    def __init__(
        self, model_dir: Path, onnx_path: Path, *, threads: int = 1, batch_size: int = 8
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            str(onnx_path), opts, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.max_seq_length = max_seq_length(model_dir)
        """Word pieces read per text; the rest is cut (chunking keeps chunks below it)."""
        self._tokenizer.enable_truncation(max_length=self.max_seq_length)
        self._tokenizer.no_padding()
        self.batch_size = batch_size
        self.onnx_path = onnx_path

    def _run(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(list(texts))
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, enc in enumerate(encodings):
            n = len(enc.ids)
            ids[row, :n] = enc.ids
            mask[row, :n] = 1
            types[row, :n] = enc.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return np.asarray(self._session.run(None, feeds)[0], np.float32)

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts as one float32 array, batching texts of similar length together."""
        if not texts:
            return np.zeros((0, 0), np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: np.ndarray | None = None
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            vecs = self._run([texts[i] for i in rows])
            if out is None:
                out = np.empty((len(texts), vecs.shape[1]), np.float32)
            out[rows] = vecs
        assert out is not None
        return out

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed texts (normalised vectors)."""
        return self.embed_array(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        """Embed one text (normalised vector)."""
        return self._run([text])[0].tolist()


def max_seq_length(model_dir: Path) -> int:
    """The word pieces the model reads (``sentence_bert_config.json``; 256 for MiniLM)."""
    cfg = model_dir / "sentence_bert_config.json"
    if cfg.is_file():
        value = json.loads(cfg.read_text(encoding="utf-8")).get("max_seq_length")
        if isinstance(value, int) and value > 0:
            return value
    return 256


def _check_mean_pooling(model_dir: Path) -> None:
    pooling = model_dir / "1_Pooling" / "config.json"
    cfg = json.loads(pooling.read_text(encoding="utf-8")) if pooling.is_file() else {}
    modes = {k for k, v in cfg.items() if k.startswith("pooling_mode") and v}
    if modes != {"pooling_mode_mean_tokens"}:
        raise ValueError(f"only mean pooling is exported, {model_dir} uses {sorted(modes)}")


def cache_key(model_dir: Path) -> str:
    """Hash of the weights, tokenizer and export format: part of the exported file's name."""
    import onnxruntime

    digest = hashlib.sha256()
    for name in ("model.safetensors", "config.json", "tokenizer.json", "modules.json"):
        path = model_dir / name
        if path.is_file():
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
    digest.update(f"{EXPORT_FORMAT}|{onnxruntime.__version__}".encode())
    return digest.hexdigest()[:16]


def cached_onnx_path(model_dir: Path, cache_dir: Path, name: str) -> Path:
    """Where the export of ``model_dir`` lives in ``cache_dir`` (it may not exist yet)."""
    return cache_dir / f"{name}-{cache_key(model_dir)}.onnx"


def export_onnx(model_dir: Path, dest: Path) -> Path:
    """Export ``model_dir`` (transformer + mean pooling + normalisation) to ``dest``, verified.

    The graph is written next to ``dest`` under a temporary name, compared with
    sentence-transformers (batched with padding, and one by one) and renamed into place only if
    every vector agrees within 1e-4.

    Raises:
        ValueError: the model does not use mean pooling, or the export disagrees with PyTorch.
    """
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    _check_mean_pooling(model_dir)
    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))

    class _Pooled(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    sample = tokenizer(list(_PROBES[:2]), padding=True, return_tensors="pt")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.stem}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    axes = {0: "batch", 1: "tokens"}
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            # The tracer warns about Python branches on shapes in transformers' masking code;
            # the verification below is what decides whether the graph is right.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Pooled(model),
                (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]),
                str(tmp),
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["embedding"],
                dynamic_axes={
                    "input_ids": axes,
                    "attention_mask": axes,
                    "token_type_ids": axes,
                    "embedding": {0: "batch"},
                },
                opset_version=17,
                dynamo=False,
            )
        _fuse(tmp, model.config)
        reference = SentenceTransformer(str(model_dir), device="cpu").encode(
            list(_PROBES), normalize_embeddings=True, convert_to_numpy=True
        )
        candidate = OnnxSentenceEmbeddings(model_dir, tmp)
        batched = candidate.embed_array(list(_PROBES))
        single = np.vstack([np.asarray(candidate.embed_query(t)) for t in _PROBES])
        worst = float(max(np.abs(batched - reference).max(), np.abs(single - reference).max()))
        if worst > _MAX_DIFF:
            raise ValueError(f"ONNX export disagrees with PyTorch by {worst:.2e}")
        tmp.chmod(0o644)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("exported %s to %s (max difference %.1e)", model_dir.name, dest, worst)
    return dest


def _fuse(path: Path, config: Any) -> None:
    """Fuse attention, GELU and layer norms in place (ONNX Runtime's transformer optimiser).

    Measured on this box, one thread: a short query 6.4 -> 4.2 ms, long chunks 46 -> 50 texts/s.
    """
    from onnxruntime.transformers import optimizer

    fused = optimizer.optimize_model(
        str(path),
        model_type="bert",
        num_heads=int(config.num_attention_heads),
        hidden_size=int(config.hidden_size),
        opt_level=1,
    )
    fused.save_model_to_file(str(path))


def fallback_cache_dir() -> Path:
    """Where exports go when the configured cache cannot be written (a read-only home)."""
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"deskgraph-models-{uid}"


def load_onnx_embeddings(
    model_dir: Path, cache_dir: Path, *, name: str, threads: int
) -> OnnxSentenceEmbeddings:
    """The ONNX model for ``model_dir``, exported into ``cache_dir`` first if needed.

    A cache folder that cannot be written moves the export to :func:`fallback_cache_dir`; a
    cached file that does not load (truncated, damaged) is exported again over it.

    Raises:
        OSError: neither folder can hold the export.
        ValueError: the export disagrees with PyTorch (:func:`export_onnx`).
    """
    error: OSError | None = None
    for folder in dict.fromkeys((cache_dir, fallback_cache_dir())):
        path = cached_onnx_path(model_dir, folder, name)
        try:
            if path.is_file():
                try:
                    return OnnxSentenceEmbeddings(model_dir, path, threads=threads)
                except Exception as exc:  # onnxruntime raises its own error types
                    log.warning(
                        "cached ONNX model %s does not load (%s); exporting it again", path, exc
                    )
            log.info("preparing the local embedding model (first start only, ~15 s)…")
            export_onnx(model_dir, path)
            return OnnxSentenceEmbeddings(model_dir, path, threads=threads)
        except OSError as exc:
            log.warning("model cache %s cannot be used (%s)", folder, exc)
            error = exc
    assert error is not None
    raise error
