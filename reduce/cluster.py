"""Clustering on embeddings or on a precomputed distance matrix, with multiplicities.

A search space often holds many items that are identical to a clusterer (NB201 has
15,625 architectures but only a few hundred distinct operation-usage distributions).
:class:`Points` keeps the distinct points once, with a weight per point (how many
items share it) and the map back to the items.  All clusterers here take
``sample_weight`` and are *exact* under that compression: clustering the weighted
distinct points gives the objective of clustering every item.

* :class:`KMeansClusterer` — k-means on an embedding (Euclidean).  On √p vectors of
  distributions it clusters by Hellinger distance, since H(p, q) = ‖√p − √q‖₂ / √2.
* :class:`SpectralClusterer` — normalised spectral clustering of the affinity
  ``exp(−d² / (2η²))`` built from a distance matrix, dense or k-nearest-neighbour sparse.
* :class:`KMedoidsClusterer` — alternating k-medoids on a distance matrix.

Each is a scikit-learn estimator (``fit``, ``labels_``, ``get_params``/``set_params``)
and takes a ``seed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from cbred.reduce.additive import AdditiveCodes
from cbred.reduce.names import CLUSTERER_NAMES
from scipy.linalg import eigh
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import eigsh
from scipy.spatial.distance import cdist
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

EMBEDDING = "embedding"
DISTANCES = "distances"


def check_distance_matrix(distances: np.ndarray) -> np.ndarray:
    """Return ``distances`` as a float64 array after checking it is a distance matrix.

    It must be square, finite, non-negative and symmetric (to 1e-8 relative).
    """
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"expected a square distance matrix, got shape {d.shape}")
    if not np.all(np.isfinite(d)):
        bad = np.argwhere(~np.isfinite(d))[0]
        raise ValueError(
            f"distance matrix has a non-finite entry {d[tuple(bad)]} at {tuple(bad)}; "
            "expected finite distances"
        )
    if d.size and d.min() < 0:
        bad = np.unravel_index(np.argmin(d), d.shape)
        raise ValueError(f"distance matrix has a negative entry {d[bad]} at {bad}")
    if not np.allclose(d, d.T, rtol=1e-8, atol=1e-12):
        raise ValueError("distance matrix is not symmetric")
    return d


def check_weights(sample_weight: np.ndarray | None, n: int) -> np.ndarray:
    """Weights as a float64 (n,) array of positive finite values (ones when None)."""
    if sample_weight is None:
        return np.ones(n)
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"sample_weight has shape {w.shape}, expected ({n},)")
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError("sample_weight must be positive and finite")
    return w


def _check_n_clusters(n_clusters: int, n_points: int) -> None:
    if not isinstance(n_clusters, (int, np.integer)) or n_clusters < 1:
        raise ValueError(f"n_clusters must be a positive integer, got {n_clusters!r}")
    if n_clusters > n_points:
        raise ValueError(
            f"n_clusters={n_clusters} exceeds the number of distinct points ({n_points})"
        )


@dataclass(frozen=True)
class Points:
    """The distinct points a clusterer sees, their multiplicities and the map to items.

    ``embedding`` (n, d) has Euclidean geometry; ``distances`` (n, n) is any distance;
    ``codes`` describes the points by categorical codes under an additive distance
    (:class:`reduce.additive.AdditiveCodes`, for spaces too large for a matrix, such as
    NB201 under the edit distance; k-medoids only).  At least one is present;
    :meth:`distance_matrix` derives distances from the embedding (scaled by
    ``distance_scale``, e.g. 1/√2 for Hellinger on √p) or the codes when needed.
    ``inverse[i]`` is the point of item ``i`` and ``weights[j]`` the number of items at
    point ``j``.
    """

    weights: np.ndarray
    inverse: np.ndarray
    embedding: np.ndarray | None = None
    distances: np.ndarray | None = None
    distance_scale: float = 1.0
    codes: AdditiveCodes | None = None

    def __post_init__(self) -> None:
        if self.embedding is None and self.distances is None and self.codes is None:
            raise ValueError("Points needs an embedding, a distance matrix or additive codes")
        if self.codes is not None and len(self.codes) != len(self.weights):
            raise ValueError(f"codes have {len(self.codes)} rows for {len(self.weights)} weights")
        n = len(self.weights)
        if self.embedding is not None and len(self.embedding) != n:
            raise ValueError(f"embedding has {len(self.embedding)} rows for {n} weights")
        if self.distances is not None and self.distances.shape != (n, n):
            raise ValueError(f"distance matrix has shape {self.distances.shape} for {n} weights")
        if self.inverse.size and (self.inverse.min() < 0 or self.inverse.max() >= n):
            raise ValueError("inverse maps items outside the distinct points")

    @classmethod
    def from_embedding(cls, embedding: np.ndarray, distance_scale: float = 1.0) -> Points:
        """Distinct rows of an (N, d) embedding; identical rows become one weighted point."""
        x = np.asarray(embedding, dtype=np.float64)
        if x.ndim != 2 or len(x) == 0:
            raise ValueError(f"expected a non-empty (N, d) embedding, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("embedding has non-finite values")
        unique, inverse, counts = np.unique(x, axis=0, return_inverse=True, return_counts=True)
        return cls(
            weights=counts.astype(np.float64),
            inverse=inverse.reshape(-1),
            embedding=unique,
            distance_scale=distance_scale,
        )

    @classmethod
    def from_distances(cls, distances: np.ndarray) -> Points:
        """Points from an (N, N) distance matrix; items at distance 0 are merged.

        Merging is exact for a (pseudo)metric or a divergence, where zero distance
        means identical rows of the matrix.
        """
        d = check_distance_matrix(distances)
        n_groups, inverse = connected_components(sp.csr_matrix(d == 0), directed=False)
        first = np.full(n_groups, -1)
        first[inverse[::-1]] = np.arange(len(d))[::-1]
        counts = np.bincount(inverse, minlength=n_groups).astype(np.float64)
        return cls(weights=counts, inverse=inverse, distances=d[np.ix_(first, first)])

    def __len__(self) -> int:
        return len(self.weights)

    @property
    def n_items(self) -> int:
        return len(self.inverse)

    def distance_matrix(self) -> np.ndarray:
        """(n, n) distances between the distinct points."""
        if self.distances is not None:
            return self.distances
        if self.embedding is None:
            return self.codes.matrix()
        return cdist(self.embedding, self.embedding) * self.distance_scale

    def data_for(self, clusterer: BaseEstimator) -> np.ndarray | AdditiveCodes:
        """What ``clusterer.fit`` takes: the embedding, the distance matrix or the codes."""
        if self.codes is not None and self.distances is None and self.embedding is None:
            if not isinstance(clusterer, KMedoidsClusterer):
                raise ValueError(
                    f"{type(clusterer).__name__} cannot cluster points given by additive codes "
                    "(no distance matrix is formed); use k-medoids"
                )
            return self.codes
        if getattr(clusterer, "input_kind", None) == EMBEDDING:
            if self.embedding is None:
                raise ValueError(
                    f"{type(clusterer).__name__} needs an embedding, but these points only "
                    "have a distance matrix; use spectral clustering or k-medoids"
                )
            return self.embedding
        return self.distance_matrix()

    def item_labels(self, point_labels: np.ndarray) -> np.ndarray:
        """Labels of the items from labels of the distinct points."""
        return np.asarray(point_labels)[self.inverse]


SMALL_PROBLEM = 20_000
"""Below this many points k-means runs single-threaded: thread start-up costs more than
it saves on a few hundred points, and much more on a busy machine."""


def weighted_kmeans(
    x: np.ndarray, n_clusters: int, weights: np.ndarray, n_init: int, seed: int
) -> KMeans:
    """scikit-learn k-means with sample weights, single-threaded for small inputs."""
    model = KMeans(n_clusters, n_init=n_init, random_state=seed)
    if len(x) < SMALL_PROBLEM:
        with threadpool_limits(1):
            return model.fit(x, sample_weight=weights)
    return model.fit(x, sample_weight=weights)


class KMeansClusterer(ClusterMixin, BaseEstimator):
    """Seeded k-means (scikit-learn) on an embedding, with sample weights."""

    input_kind = EMBEDDING

    def __init__(self, n_clusters: int = 8, n_init: int = 4, seed: int = 0) -> None:
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.seed = seed

    def fit(self, X: np.ndarray, y: None = None, sample_weight: np.ndarray | None = None):
        x = np.asarray(X, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"k-means takes an (n, d) embedding, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("embedding has non-finite values")
        _check_n_clusters(self.n_clusters, len(np.unique(x, axis=0)))
        w = check_weights(sample_weight, len(x))
        model = weighted_kmeans(x, self.n_clusters, w, self.n_init, self.seed)
        self.labels_ = model.labels_.astype(np.int64)
        self.cluster_centers_ = model.cluster_centers_
        self.inertia_ = float(model.inertia_)
        return self


def affinity_matrix(
    distances: np.ndarray, eta: float, n_neighbors: int | None = None
) -> np.ndarray | sp.csr_matrix:
    """Gaussian affinity ``exp(−d² / (2η²))``; sparse over k nearest neighbours if asked.

    The k-NN graph keeps, for each point, itself and its ``n_neighbors`` nearest
    points, and is made symmetric by keeping an edge found from either end.
    """
    d = check_distance_matrix(distances)
    if not (np.isfinite(eta) and eta > 0):
        raise ValueError(f"affinity scale eta must be positive and finite, got {eta!r}")
    if n_neighbors is None:
        return np.exp(-(d**2) / (2.0 * eta**2))
    n = len(d)
    if not 1 <= n_neighbors < n:
        raise ValueError(f"n_neighbors must be in 1..{n - 1} for {n} points, got {n_neighbors}")
    nearest = np.argpartition(d, n_neighbors, axis=1)[:, : n_neighbors + 1]
    rows = np.repeat(np.arange(n), n_neighbors + 1)
    cols = nearest.reshape(-1)
    values = np.exp(-(d[rows, cols] ** 2) / (2.0 * eta**2))
    graph = sp.csr_matrix((values, (rows, cols)), shape=(n, n))
    graph = graph.maximum(graph.T).tolil()
    graph.setdiag(1.0)
    return graph.tocsr()


def spectral_embedding(
    affinity: np.ndarray | sp.spmatrix, n_components: int, sample_weight: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Leading eigenpairs of the normalised affinity of the weighted (duplicated) graph.

    A point of weight w stands for w identical items with affinity 1 among them.
    With A the affinity of the distinct points (self-affinity included), item
    degrees are d = A w, and eigenvectors of the items' normalised affinity that
    are constant on duplicates are those of S = diag(√(w/d)) A diag(√(w/d)); the
    others have eigenvalue 0 and never lead.  Returns the eigenvalues of S
    (descending, in [−1, 1]) and each point's embedding row: the eigenvector
    divided by √w and by √d, as in normalised spectral clustering.
    """
    n = affinity.shape[0]
    if not 1 <= n_components <= n:
        raise ValueError(f"n_components must be in 1..{n}, got {n_components}")
    w = check_weights(sample_weight, n)
    degree = np.asarray(affinity @ w).reshape(-1)
    if np.any(degree <= 0):
        raise ValueError("affinity has an isolated point (zero degree); raise eta")
    scale = np.sqrt(w / degree)
    if sp.issparse(affinity):
        s = sp.diags(scale) @ affinity @ sp.diags(scale)
    else:
        s = affinity * np.outer(scale, scale)
    if sp.issparse(s) and n_components < n - 1:
        values, vectors = eigsh(s, k=n_components, which="LA", v0=np.sqrt(w / w.sum()))
    else:
        dense = s.toarray() if sp.issparse(s) else s
        values, vectors = eigh(dense, subset_by_index=[n - n_components, n - 1])
    order = np.argsort(-values)
    values, vectors = values[order], vectors[:, order]
    vectors = vectors / np.sqrt(w)[:, None] / np.sqrt(degree)[:, None]
    # Fix each eigenvector's sign so results do not depend on the solver.
    signs = np.sign(vectors[np.argmax(np.abs(vectors), axis=0), np.arange(vectors.shape[1])])
    return values, vectors * signs


class SpectralClusterer(ClusterMixin, BaseEstimator):
    """Normalised spectral clustering of a precomputed distance matrix.

    ``eta`` is the affinity scale (None: the median non-zero distance);
    ``n_neighbors`` makes the affinity a sparse k-NN graph for large inputs.
    The embedding rows are clustered by weighted k-means, so with sample weights
    the result is that of the duplicated items.
    """

    input_kind = DISTANCES

    def __init__(
        self,
        n_clusters: int = 8,
        eta: float | None = None,
        n_neighbors: int | None = None,
        n_init: int = 4,
        seed: int = 0,
    ) -> None:
        self.n_clusters = n_clusters
        self.eta = eta
        self.n_neighbors = n_neighbors
        self.n_init = n_init
        self.seed = seed

    def fit(self, X: np.ndarray, y: None = None, sample_weight: np.ndarray | None = None):
        d = check_distance_matrix(X)
        _check_n_clusters(self.n_clusters, len(d))
        self.eta_ = default_eta(d) if self.eta is None else float(self.eta)
        affinity = affinity_matrix(d, self.eta_, self.n_neighbors)
        values, embedding = spectral_embedding(affinity, self.n_clusters, sample_weight)
        return self.fit_embedding(values, embedding, sample_weight)

    def fit_embedding(
        self, eigenvalues: np.ndarray, embedding: np.ndarray, sample_weight: np.ndarray | None
    ):
        """Finish :meth:`fit` from a spectral embedding with at least ``n_clusters`` columns.

        Parameter selection computes one embedding per η for the largest K and
        reuses its leading columns for every smaller K.
        """
        if embedding.shape[1] < self.n_clusters:
            raise ValueError(
                f"embedding has {embedding.shape[1]} columns, need n_clusters={self.n_clusters}"
            )
        embedding = embedding[:, : self.n_clusters]
        weights = check_weights(sample_weight, len(embedding))
        model = weighted_kmeans(embedding, self.n_clusters, weights, self.n_init, self.seed)
        self.labels_ = model.labels_.astype(np.int64)
        self.eigenvalues_ = eigenvalues[: self.n_clusters]
        self.embedding_ = embedding
        return self


def default_eta(distances: np.ndarray) -> float:
    """The median of the non-zero off-diagonal distances (1.0 when all are zero)."""
    upper = distances[np.triu_indices(len(distances), k=1)]
    positive = upper[upper > 0]
    return float(np.median(positive)) if positive.size else 1.0


class KMedoidsClusterer(ClusterMixin, BaseEstimator):
    """Alternating k-medoids on a precomputed distance matrix (or additive codes, see
    :mod:`reduce.additive`), with sample weights.

    Medoids start from a weighted k-means++ draw; then items go to their nearest
    medoid and each cluster's medoid becomes the member with the least weighted
    sum of distances to the others, until nothing changes.  The best of
    ``n_init`` seeded starts (least weighted total distance) is kept.
    """

    input_kind = DISTANCES

    def __init__(
        self, n_clusters: int = 8, n_init: int = 10, max_iter: int = 300, seed: int = 0
    ) -> None:
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.max_iter = max_iter
        self.seed = seed

    def fit(
        self,
        X: np.ndarray | AdditiveCodes,
        y: None = None,
        sample_weight: np.ndarray | None = None,
    ):
        """``X`` is a distance matrix or :class:`~reduce.additive.AdditiveCodes`."""
        d = X if isinstance(X, AdditiveCodes) else check_distance_matrix(X)
        _check_n_clusters(self.n_clusters, len(d))
        w = check_weights(sample_weight, len(d))
        if self.n_init < 1:
            raise ValueError(f"n_init must be at least 1, got {self.n_init}")
        rng = np.random.default_rng(self.seed)
        best: tuple[float, np.ndarray] | None = None
        for _ in range(self.n_init):
            medoids = self._alternate(d, w, self._init(d, w, rng))
            cost = float(w @ _to_medoids(d, medoids).min(axis=1))
            if best is None or cost < best[0] - 1e-12:
                best = (cost, medoids)
        cost, medoids = best
        self.medoid_indices_ = np.sort(medoids)
        self.labels_ = np.argmin(_to_medoids(d, self.medoid_indices_), axis=1).astype(np.int64)
        self.inertia_ = cost
        return self

    def _init(self, d: np.ndarray | AdditiveCodes, w: np.ndarray, rng: np.random.Generator):
        medoids = [int(rng.choice(len(d), p=w / w.sum()))]
        nearest = _to_medoids(d, medoids)[:, 0]
        for _ in range(1, self.n_clusters):
            gap = nearest**2 * w
            if gap.sum() <= 0:  # fewer distinct positions than clusters so far
                candidates = np.setdiff1d(np.arange(len(d)), medoids)
                medoids.append(int(rng.choice(candidates)))
            else:
                medoids.append(int(rng.choice(len(d), p=gap / gap.sum())))
            nearest = np.minimum(nearest, _to_medoids(d, medoids[-1:])[:, 0])
        return np.array(medoids)

    def _alternate(
        self, d: np.ndarray | AdditiveCodes, w: np.ndarray, medoids: np.ndarray
    ) -> np.ndarray:
        for _ in range(self.max_iter):
            labels = np.argmin(_to_medoids(d, medoids), axis=1)
            sums = d.cluster_sums(labels, len(medoids), w) if isinstance(d, AdditiveCodes) else None
            updated = medoids.copy()
            for c in range(len(medoids)):
                members = np.flatnonzero(labels == c)
                if members.size:
                    within = (
                        sums[members, c]
                        if sums is not None
                        else d[np.ix_(members, members)] @ w[members]
                    )
                    updated[c] = members[np.argmin(within)]
            if np.array_equal(updated, medoids):
                break
            medoids = updated
        return medoids


def _to_medoids(d: np.ndarray | AdditiveCodes, medoids: Sequence[int] | np.ndarray) -> np.ndarray:
    """(n, len(medoids)) distances from every point to the medoids."""
    if isinstance(d, AdditiveCodes):
        return d.distances_to(np.asarray(medoids))
    return d[:, medoids]


CLUSTERERS: dict[str, type[BaseEstimator]] = dict(
    zip(CLUSTERER_NAMES, (KMeansClusterer, SpectralClusterer, KMedoidsClusterer), strict=True)
)


def make_clusterer(name: str, **params: object) -> BaseEstimator:
    """A clusterer by name (``kmeans``, ``spectral``, ``kmedoids``) with parameters."""
    if name not in CLUSTERERS:
        raise ValueError(f"unknown clusterer {name!r}; expected one of {', '.join(CLUSTERERS)}")
    return CLUSTERERS[name](**params)
