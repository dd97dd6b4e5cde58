"""Items described by categorical codes under an additive distance, clustered without a matrix.

NB201 cells under the graph-edit distance are the motivating case: a cell is six edge
operations and (by the decomposition theorem of :mod:`cgraph.distance.nb201_edit`) the
edit distance between two cells is ``Σ_e C[a_e, b_e]`` for a 5×5 cost table ``C``.  Every
quantity k-medoids and the silhouette need is then a sum over edges of per-operation
counts: the summed distance from item ``i`` to the members of cluster ``k`` is
``Σ_e Σ_v C[codes_ie, v] · count_k(e, v)``, O(n·K·E·V) instead of the O(n²·K) of a
15,625 × 15,625 matrix (which, at one gigabyte, is never formed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AdditiveCodes:
    """``codes`` (n, E) integers in 0..V-1 and a (V, V) ``cost``; d(a, b) = Σ_e cost[a_e, b_e]."""

    codes: np.ndarray
    cost: np.ndarray

    def __post_init__(self) -> None:
        codes, cost = np.asarray(self.codes), np.asarray(self.cost, dtype=np.float64)
        if codes.ndim != 2 or codes.dtype.kind not in "iu" or len(codes) == 0:
            raise ValueError(f"codes must be a non-empty (n, E) integer array, got {codes.shape}")
        if cost.ndim != 2 or cost.shape[0] != cost.shape[1]:
            raise ValueError(f"cost must be a square (V, V) table, got shape {cost.shape}")
        if codes.min() < 0 or codes.max() >= len(cost):
            raise ValueError(f"codes must lie in 0..{len(cost) - 1}")
        if not np.all(np.isfinite(cost)) or cost.min() < 0 or np.any(np.diag(cost) != 0):
            raise ValueError("cost must be finite, non-negative and zero on the diagonal")
        object.__setattr__(self, "codes", codes.astype(np.int64))
        object.__setattr__(self, "cost", cost)
        # (n, E·V): the cost from each item's op on each edge to every op, reused by every
        # call of cluster_sums (once per k-medoids iteration)
        object.__setattr__(self, "_per_item", cost[self.codes].reshape(len(codes), -1))

    def __len__(self) -> int:
        return len(self.codes)

    def distances_to(self, rows: np.ndarray) -> np.ndarray:
        """(n, len(rows)) distances from every item to the items ``rows``."""
        rows = np.asarray(rows, dtype=np.int64)
        total = np.zeros((len(self.codes), len(rows)))
        for e in range(self.codes.shape[1]):
            total += self.cost[self.codes[:, e][:, None], self.codes[rows, e][None, :]]
        return total

    def matrix(self) -> np.ndarray:
        """The full (n, n) distance matrix (for small n: it is n² floats)."""
        return self.distances_to(np.arange(len(self.codes)))

    def cluster_sums(
        self, labels: np.ndarray, n_clusters: int, weights: np.ndarray | None = None
    ) -> np.ndarray:
        """(n, K): weighted sum of distances from each item to the members of each cluster."""
        n, edges = self.codes.shape
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
        counts = np.zeros((n_clusters, edges, len(self.cost)))
        at = (np.asarray(labels)[:, None], np.arange(edges)[None, :], self.codes)
        np.add.at(counts, at, w[:, None])
        return self._per_item @ counts.reshape(n_clusters, -1).T
