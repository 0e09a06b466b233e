"""The chunk index's score fusion on its own: a convex combination of normalised BM25 and
vector scores."""

from __future__ import annotations

import pytest

from kb_pipeline.index.fusion import convex_fusion, fuse


def test_fusion_is_a_convex_combination_of_normalised_scores() -> None:
    fused = fuse({"a": 0.9, "b": 0.5}, {"b": 12.0, "c": 4.0}, alpha=0.5)
    assert fused == pytest.approx({"a": 0.5, "b": 0.5, "c": 0.0})
    assert fuse({"a": 0.9, "b": 0.5}, {}, alpha=0.5)["a"] == pytest.approx(0.5)
    # the HybridSearchConfig form: cosine distances on the dense side
    rows = convex_fusion(
        [{"id": "a", "distance": 0.1}, {"id": "b", "distance": 0.5}],
        [{"id": "b", "distance": 3.0}],
        alpha=0.4,
        fetch_top_k=2,
    )
    assert [r["id"] for r in rows] == ["b", "a"]
