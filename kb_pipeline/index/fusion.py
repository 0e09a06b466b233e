"""Fusion of a hybrid search's two sides: a convex combination of min-max normalised scores.

Hybrid search takes the best ``FUSION_DEPTH`` chunks of each side, min-max normalises each
list and adds them with weight ``HYBRID_ALPHA`` on the dense side. On Galaxy S10 and the demo
set this beat reciprocal-rank fusion at every k tried (RRF throws away how far apart scores
are). ``PGVectorStore``'s ``HybridSearchConfig`` uses the same fusion (:func:`convex_fusion`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

HYBRID_ALPHA = 0.5
"""Weight of the dense (vector) side in the convex fusion; the sparse side gets 1 - alpha."""
FUSION_DEPTH = 40
"""How many chunks each side contributes to the fusion."""


def _minmax(scores: dict[str, float]) -> dict[str, float]:
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    if hi - lo < 1e-12:
        return {key: 1.0 for key in scores}
    return {key: (v - lo) / (hi - lo) for key, v in scores.items()}


def fuse(
    dense: dict[str, float], sparse: dict[str, float], *, alpha: float = HYBRID_ALPHA
) -> dict[str, float]:
    """Convex combination of min-max normalised dense and sparse scores (missing = 0)."""
    nd, ns = _minmax(dense), _minmax(sparse)
    return {key: alpha * nd.get(key, 0.0) + (1 - alpha) * ns.get(key, 0.0) for key in nd | ns}


def convex_fusion(
    primary_search_results: Sequence[Any],
    secondary_search_results: Sequence[Any],
    alpha: float = HYBRID_ALPHA,
    fetch_top_k: int = 4,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """:func:`fuse` with the signature ``HybridSearchConfig.fusion_function`` expects.

    ``PGVectorStore`` hands over rows whose first value is the id and whose ``distance`` is a
    cosine distance (dense) or a ``ts_rank_cd`` (sparse).
    """
    rows: dict[str, dict[str, Any]] = {}
    dense: dict[str, float] = {}
    sparse: dict[str, float] = {}
    for row in primary_search_results:
        key = str(next(iter(row.values())))
        rows.setdefault(key, dict(row))
        dense[key] = 1.0 - float(row["distance"])
    for row in secondary_search_results:
        key = str(next(iter(row.values())))
        rows.setdefault(key, dict(row))
        sparse[key] = float(row["distance"])
    fused = fuse(dense, sparse, alpha=alpha)
    out = []
    for key in sorted(fused, key=lambda k: -fused[k])[:fetch_top_k]:
        row = rows[key]
        row["distance"] = fused[key]
        out.append(row)
    return out
