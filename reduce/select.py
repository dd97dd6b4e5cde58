"""Choosing the number of clusters K and the affinity scale η without labels.

* ``silhouette`` — cluster with every (K, η) on the grid and keep the pair with the
  highest silhouette on the distance matrix (weighted by multiplicities, so it
  equals scikit-learn's silhouette of the duplicated items).
* ``eigengap`` — for spectral clustering: for each η, the normalised affinity's
  spectrum; K is where the gap λ_K − λ_{K+1} is largest, and η the scale whose
  largest gap is widest.

The result carries the criterion's whole curve, so a report can show why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from cbred.reduce.cluster import (
    Points,
    SpectralClusterer,
    affinity_matrix,
    check_weights,
    default_eta,
    spectral_embedding,
)
from cbred.reduce.names import CRITERIA
from scipy.spatial.distance import cdist
from sklearn.base import BaseEstimator, clone


def weighted_silhouette(
    distances: np.ndarray, labels: np.ndarray, sample_weight: np.ndarray | None = None
) -> float:
    """Mean silhouette of items given as weighted distinct points.

    A point of weight w stands for w items at distance 0 from each other; the
    result equals ``sklearn.metrics.silhouette_score(metric="precomputed")`` on the
    expanded items (an item alone in its cluster scores 0).
    """
    labels = np.asarray(labels)
    n = len(labels)
    w = check_weights(sample_weight, n)
    if distances.shape != (n, n):
        raise ValueError(f"distance matrix shape {distances.shape} does not match {n} labels")
    names, codes = np.unique(labels, return_inverse=True)
    if not 2 <= len(names) <= w.sum() - 1:
        raise ValueError(
            f"silhouette needs 2..{int(w.sum()) - 1} clusters, got {len(names)} distinct labels"
        )
    onehot = np.zeros((n, len(names)))
    onehot[np.arange(n), codes] = w
    return silhouette_from_sums(distances @ onehot, codes, w)


def silhouette_from_sums(sums: np.ndarray, codes: np.ndarray, weights: np.ndarray) -> float:
    """Mean weighted silhouette from ``sums[i, k]``, the weighted distance of point i to
    cluster k, and the cluster ``codes`` (0..K-1) of the points."""
    n = len(codes)
    sizes = np.bincount(codes, weights=weights, minlength=sums.shape[1])
    own = sizes[codes]
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(own > 1, sums[np.arange(n), codes] / (own - 1), 0.0)
        others = sums / sizes
        others[np.arange(n), codes] = np.inf
        b = others.min(axis=1)
        s = np.where(own > 1, (b - a) / np.maximum(a, b), 0.0)
    s = np.nan_to_num(s)
    return float(weights @ s / weights.sum())


SILHOUETTE_SAMPLE = 3000
"""Above this many distinct points given by an embedding (and no matrix), the silhouette is
the weighted silhouette of a fixed seeded sample of this many points (the standard estimate,
as ``sklearn.metrics.silhouette_score(sample_size=...)``): the full matrix of a space with
tens of thousands of distinct feature vectors would take gigabytes."""


def points_silhouette(points: Points, labels: np.ndarray) -> float:
    """Silhouette of a labelling of ``points`` (-1 when it has a single cluster); by cluster
    sums of the additive codes when the points have no distance matrix; on a seeded sample
    of :data:`SILHOUETTE_SAMPLE` points for large embeddings."""
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        return -1.0  # degenerate: everything in one cluster
    large = points.distances is None and points.embedding is not None
    if large and len(points) > SILHOUETTE_SAMPLE:
        keep = np.sort(
            np.random.default_rng(0).choice(len(points), SILHOUETTE_SAMPLE, replace=False)
        )
        if len(np.unique(labels[keep])) < 2:
            return -1.0
        x = points.embedding[keep]
        distances = cdist(x, x) * points.distance_scale
        return weighted_silhouette(distances, labels[keep], points.weights[keep])
    if points.codes is None or points.distances is not None:
        return weighted_silhouette(points.distance_matrix(), labels, points.weights)
    names, codes = np.unique(labels, return_inverse=True)
    sums = points.codes.cluster_sums(codes, len(names), points.weights)
    return silhouette_from_sums(sums, codes, points.weights)


@dataclass(frozen=True)
class ParameterSelection:
    """The chosen K and η, the criterion, and its value for every candidate."""

    n_clusters: int
    eta: float | None
    criterion: str
    curve: pd.DataFrame  # columns: n_clusters, eta, value

    def as_dict(self) -> dict[str, object]:
        return {"n_clusters": self.n_clusters, "eta": self.eta, "criterion": self.criterion}


def select_best_parameter(
    clusterer: BaseEstimator,
    points: Points,
    k_values: Sequence[int],
    eta_values: Sequence[float] | None = None,
    criterion: str = "silhouette",
) -> ParameterSelection:
    """Pick K (and η for clusterers that have one) by an unsupervised criterion.

    ``k_values`` are the candidate cluster counts; ``eta_values`` the candidate
    affinity scales (only for clusterers with an ``eta`` parameter; None keeps the
    clusterer's own).  Ties go to the smaller K, then the smaller η.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; expected one of {', '.join(CRITERIA)}")
    ks = sorted({int(k) for k in k_values})
    if not ks or ks[0] < 2:
        raise ValueError(f"k_values must be integers >= 2, got {list(k_values)}")
    if ks[-1] > len(points) - (criterion == "eigengap"):
        raise ValueError(
            f"largest K={ks[-1]} exceeds what {len(points)} distinct points allow for {criterion}"
        )
    has_eta = "eta" in clusterer.get_params()
    if eta_values is not None and not has_eta:
        raise ValueError(f"{type(clusterer).__name__} has no eta parameter; pass eta_values=None")
    etas: list[float | None] = (
        sorted(float(e) for e in eta_values) if eta_values is not None else [None]
    )
    if criterion == "eigengap" and not isinstance(clusterer, SpectralClusterer):
        raise ValueError("the eigengap criterion applies to spectral clustering only")
    if isinstance(clusterer, SpectralClusterer):
        rows = _spectral_rows(clusterer, points, ks, etas, criterion)
    else:
        rows = _silhouette_rows(clusterer, points, ks)
    curve = pd.DataFrame(rows, columns=["n_clusters", "eta", "value"])
    best = curve.sort_values(["value", "n_clusters", "eta"], ascending=[False, True, True]).iloc[0]
    eta = None if pd.isna(best["eta"]) else float(best["eta"])
    return ParameterSelection(int(best["n_clusters"]), eta, criterion, curve)


def _silhouette_rows(
    clusterer: BaseEstimator, points: Points, ks: list[int]
) -> list[tuple[int, float | None, float]]:
    data = points.data_for(clusterer)
    rows = []
    for k in ks:
        model = clone(clusterer).set_params(n_clusters=k)
        labels = model.fit(data, sample_weight=points.weights).labels_
        rows.append((k, None, points_silhouette(points, labels)))
    return rows


def _spectral_rows(
    clusterer: SpectralClusterer,
    points: Points,
    ks: list[int],
    etas: list[float | None],
    criterion: str,
) -> list[tuple[int, float | None, float]]:
    """One spectral embedding per η, for the largest K; smaller K use its leading columns."""
    distances = points.distance_matrix()
    params = clusterer.get_params()
    rows = []
    for eta in etas:
        scale = eta if eta is not None else params["eta"]
        scale = default_eta(distances) if scale is None else float(scale)
        affinity = affinity_matrix(distances, scale, params["n_neighbors"])
        n_vectors = ks[-1] + 1 if criterion == "eigengap" else ks[-1]
        values, embedding = spectral_embedding(affinity, n_vectors, points.weights)
        for k in ks:
            if criterion == "eigengap":
                # Descending eigenvalues of the normalised affinity: the gap after the
                # K-th is values[K-1] - values[K] (= λ_{K+1} − λ_K of the Laplacian).
                value = float(values[k - 1] - values[k])
            else:
                model = clone(clusterer).set_params(n_clusters=k, eta=scale)
                labels = model.fit_embedding(values, embedding, points.weights).labels_
                value = points_silhouette(points, labels)
            rows.append((k, scale, value))
    return rows
