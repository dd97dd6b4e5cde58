"""Cluster scoring functions f: one number per cluster from its members' statistic values.

Each cluster is represented by the statistic values of (a sample of) its members.
Some functions compare a cluster with the whole space; the space's distribution
is the pooled samples, each sample weighted by its cluster's size over the sample
size, so a stratified sample of m members per cluster still estimates it without bias.

A statistic that could not be computed (NaN, e.g. a network with no path from
input to output) counts as lower than every value: such a network is useless.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClusterSamples:
    """Statistic values of the sampled members of each cluster, and the cluster sizes."""

    values: tuple[np.ndarray, ...]
    sizes: np.ndarray

    @classmethod
    def build(cls, values: Sequence[np.ndarray], sizes: Sequence[int]) -> ClusterSamples:
        arrays = tuple(_lowest_for_nan(np.asarray(v, dtype=np.float64).reshape(-1)) for v in values)
        sizes_arr = np.asarray(sizes, dtype=np.float64)
        if len(arrays) != len(sizes_arr):
            raise ValueError(f"{len(arrays)} value arrays for {len(sizes_arr)} cluster sizes")
        for c, (v, size) in enumerate(zip(arrays, sizes_arr)):
            if v.size == 0:
                raise ValueError(f"cluster {c} has no scored members")
            if v.size > size:
                raise ValueError(f"cluster {c} has {v.size} scored members but size {size:g}")
        return cls(arrays, sizes_arr)

    def pooled(self) -> tuple[np.ndarray, np.ndarray]:
        """All sampled values and their weights (cluster size / sample size)."""
        values = np.concatenate(self.values)
        weights = np.concatenate(
            [np.full(v.size, s / v.size) for v, s in zip(self.values, self.sizes)]
        )
        return values, weights


def _lowest_for_nan(values: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(values), -np.inf, values)


def _quantile(values: np.ndarray, q: float) -> float:
    """Linear-interpolated quantile where interpolating towards −∞ gives −∞."""
    with np.errstate(invalid="ignore"):
        result = float(np.quantile(values, q))
    return -np.inf if np.isnan(result) else result


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The smallest value whose weighted cumulative share reaches ``q``."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order]) / weights.sum()
    position = min(int(np.searchsorted(cumulative, q - 1e-12)), len(order) - 1)
    return float(values[order][position])


def weighted_percentile_ranks(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each value's mid-rank share in the weighted pool: P(X < v) + P(X = v) / 2."""
    total = weights.sum()
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    cumulative = np.concatenate([[0.0], np.cumsum(weights[order])])
    lower = cumulative[np.searchsorted(sorted_values, values, side="left")]
    upper = cumulative[np.searchsorted(sorted_values, values, side="right")]
    return (lower + upper) / 2.0 / total


@dataclass(frozen=True)
class ScoringFunction:
    """A cluster scoring function: ``kind`` with an optional parameter ``q``.

    * ``median`` — the median of the cluster's values.
    * ``quantile`` — the cluster's ``q``-quantile (an upper quantile such as 0.9).
    * ``mean_rank`` — the mean percentile rank of the cluster's values in the space.
    * ``share_above`` — the share of the cluster at or above the space's ``q``-quantile.
    """

    kind: str
    q: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in _NEEDS_Q:
            raise ValueError(
                f"unknown scoring function {self.kind!r}; expected one of {', '.join(_NEEDS_Q)}"
            )
        if _NEEDS_Q[self.kind]:
            if self.q is None or not 0.0 < float(self.q) < 1.0:
                raise ValueError(f"scoring {self.kind!r} needs q in (0, 1), got {self.q!r}")
        elif self.q is not None:
            raise ValueError(f"scoring {self.kind!r} takes no q, got {self.q!r}")

    @property
    def name(self) -> str:
        return self.kind if self.q is None else f"{self.kind}:{self.q:g}"

    def __call__(self, samples: ClusterSamples) -> np.ndarray:
        """f for each cluster, shape (K,); larger is better."""
        if self.kind == "median":
            return np.array([_quantile(v, 0.5) for v in samples.values])
        if self.kind == "quantile":
            return np.array([_quantile(v, float(self.q)) for v in samples.values])
        pooled, weights = samples.pooled()
        if self.kind == "mean_rank":
            ranks = weighted_percentile_ranks(pooled, weights)
            bounds = np.cumsum([0] + [v.size for v in samples.values])
            return np.array([ranks[a:b].mean() for a, b in zip(bounds[:-1], bounds[1:])])
        threshold = weighted_quantile(pooled, weights, float(self.q))
        return np.array([np.mean(v >= threshold) for v in samples.values])


_NEEDS_Q = {"median": False, "quantile": True, "mean_rank": False, "share_above": True}


def parse_scoring(text: str | ScoringFunction) -> ScoringFunction:
    """Parse ``median``, ``mean_rank``, ``quantile:0.9`` or ``share_above:0.9``."""
    if isinstance(text, ScoringFunction):
        return text
    kind, _, q = str(text).partition(":")
    if not q:
        return ScoringFunction(kind)
    try:
        value = float(q)
    except ValueError:
        raise ValueError(f"scoring {text!r}: parameter {q!r} is not a number") from None
    return ScoringFunction(kind, value)
