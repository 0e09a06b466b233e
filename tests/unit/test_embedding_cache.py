"""The one embedding cache: each distinct text embedded once, as an array or as Embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from nlp.text import EmbeddingCache


class Counting(Embeddings):
    """Deterministic vectors; counts what it was asked to embed."""

    def __init__(self) -> None:
        self.documents: list[str] = []
        self.queries: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.documents += texts
        return [[float(len(t)), 1.0, 0.0] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        self.queries.append(text)
        return [float(len(text)), 1.0, 0.0]


async def test_each_text_is_embedded_once_whichever_interface_asks() -> None:
    inner = Counting()
    cache = EmbeddingCache(inner)
    rows = await cache.embed(["ab", "abc", "ab"])
    assert inner.documents == ["ab", "abc"]
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0)
    vectors = cache.embed_documents(["abc", "abcd"])
    assert vectors[0] == list(rows[1])
    assert inner.documents == ["ab", "abc", "abcd"]
    assert cache.embed_query("ab") == list(rows[0]) and inner.queries == []


def test_queries_can_be_left_to_the_model() -> None:
    inner = Counting()
    cache = EmbeddingCache(inner, cache_queries=False)
    cache.embed_query("ab")
    cache.embed_query("ab")
    assert inner.queries == ["ab", "ab"] and inner.documents == []


async def test_the_oldest_text_goes_first_past_the_bound() -> None:
    inner = Counting()
    cache = EmbeddingCache(inner, max_items=2)
    await cache.embed(["a", "b"])
    await cache.embed(["a"])  # "a" is now the most recent
    await cache.embed(["c"])  # "b" goes
    await cache.embed(["a", "b"])
    assert inner.documents == ["a", "b", "c", "b"]


def test_a_folder_keeps_the_vectors_between_runs(tmp_path: Path) -> None:
    first = Counting()
    EmbeddingCache(first, max_items=None, folder=tmp_path).embed_documents(["x", "yy"])
    again = Counting()
    vectors = EmbeddingCache(again, max_items=None, folder=tmp_path).embed_documents(["yy", "x"])
    assert again.documents == [] and len(vectors) == 2
