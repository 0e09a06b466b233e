"""Group customer questions that ask the same thing, and name each group by its most central
question (issue 17, top questions).

HDBSCAN (scikit-learn's) on the questions' unit embeddings, reduced by PCA: it needs no number
of clusters, leaves questions that resemble nothing else as noise rather than forcing them
into a group, and finds groups of very different sizes, which is what a week of support
questions looks like (many "what are your hours?", a few of everything else). PCA to 32
dimensions first keeps it fast on 20,000 questions and costs little: MiniLM's 384 dimensions
are far from all used by short questions. The name of a cluster is the member closest to the
cluster's mean direction: a real question a person asked, never a made-up summary (an LLM
summary may replace it when configured).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import HDBSCAN
from sklearn.decomposition import PCA

MIN_CLUSTER_SIZE = 3
"""Fewer than three people asking the same thing is not yet a top question."""
MIN_CLUSTER_SHARE = 0.001
"""Nor is a group under a thousandth of the period's questions (20 of 20,000): a month of a
busy desk would otherwise list a thousand three-question "top" questions."""
PCA_DIMENSIONS = 32
MEMBER_FLOOR = 0.5
"""A member's cosine to its cluster's mean direction (full embedding) must reach this. HDBSCAN
on a small or sparse week pulls a lone question into the nearest group by reachability ("do
you sell garden gnomes?" into the payment-plan questions, cosine 0.22 to their centre); set
a priori at the midpoint, not tuned: ``bench/metrics.py`` reports cluster purity with it on
BANKING77 and CLINC150, which it was not chosen on."""


@dataclass(frozen=True)
class Cluster:
    members: list[int]
    """Indexes of the questions in the cluster, the most central first."""
    central: int
    """The index of the question that names the cluster."""


def cluster_questions(
    vectors: Sequence[Sequence[float]],
    *,
    min_cluster_size: int | None = None,
    floor: float = MEMBER_FLOOR,
) -> list[Cluster]:
    """Clusters of the questions (largest first); questions in none are left out. The smallest
    cluster is :data:`MIN_CLUSTER_SIZE` or :data:`MIN_CLUSTER_SHARE` of the questions."""
    n = len(vectors)
    if min_cluster_size is None:
        min_cluster_size = max(MIN_CLUSTER_SIZE, round(MIN_CLUSTER_SHARE * n))
    if n < min_cluster_size:
        return []
    full = np.asarray(vectors, dtype=np.float32)
    full /= np.linalg.norm(full, axis=1, keepdims=True) + 1e-12
    x = full
    if x.shape[1] > PCA_DIMENSIONS and n > PCA_DIMENSIONS:
        x = PCA(n_components=PCA_DIMENSIONS, random_state=0).fit_transform(x)
        x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-12
    # on unit vectors euclidean distance orders pairs as cosine does
    labels = HDBSCAN(min_cluster_size=min_cluster_size, min_samples=2, copy=False).fit_predict(x)
    out = []
    for label in set(labels.tolist()) - {-1}:
        idx = np.flatnonzero(labels == label)
        centre = full[idx].mean(axis=0)
        centre /= np.linalg.norm(centre) + 1e-12
        closeness = full[idx] @ centre
        keep = closeness >= floor
        if keep.sum() < min_cluster_size:
            continue
        idx, closeness = idx[keep], closeness[keep]
        order = idx[np.argsort(-closeness)]
        out.append(Cluster(members=order.tolist(), central=int(order[0])))
    out.sort(key=lambda c: (-len(c.members), c.central))
    return out
