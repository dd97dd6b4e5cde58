"""C-BRED on NAS-Bench-201: features, distances and statistic sources by name.

This is the wiring the ``cbred reduce`` command and the benchmark share:

* features — the op-usage counts of every architecture: ``graph`` from the traced
  computational graph (:func:`cgraph.nb201.space_op_counts`), or ``cell`` from the
  NB201 cell itself (how many of the six edges carry each operation);
* distance — between op-usage distributions (:func:`cgraph.distance.pairwise`),
  computed once per *distinct* count vector: NB201's 15,625 architectures have a
  few hundred, so clustering them with multiplicities is exact and cheap; or ``edit``,
  the exact graph-edit distance between the cells, a sum over the six edges of an
  operation cost table (:mod:`cgraph.distance.nb201_edit`), which k-medoids clusters
  through per-edge operation counts (:mod:`reduce.additive`) without forming the
  15,625² matrix;
* statistic — per-architecture values oriented so that larger is better: ``params``
  and ``flops`` analytically for the whole space, any statistic from a score table
  (``--scores``), or any registered proxy computed on sampled members through
  :func:`proxies.api.score_nb201`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from cbred.bench.nb201 import OPS, SPACE_SIZE
from cbred.cgraph.distance.costs import CostModel
from cbred.reduce.additive import AdditiveCodes
from cbred.reduce.cbred import Reduction, ScoreSource, cbred_reduce
from cbred.reduce.cluster import Points, make_clusterer
from cbred.reduce.subspace import space_by_name
from sklearn.base import BaseEstimator

FEATURES = ("graph", "cell")
PROBABILISTIC = ("hellinger", "js", "sqrt_js", "kl")
DISTANCES = (*PROBABILISTIC, "edit")
ANALYTIC_STATISTICS = ("params", "flops")
# K is chosen by the criterion among 2..⌊√N⌋ for a space of N architectures (125 for
# NB201): √N is the classical label-free upper bound on the number of clusters.  Over
# NB201's op-usage vectors the silhouette keeps rising with K, so the bound decides how
# fine the best cluster is; with a bound of 30 the selected subspace depended on the
# k-means seed (see bench/perf_reduce.py --seeds).
DEFAULT_K = tuple(range(2, math.isqrt(SPACE_SIZE) + 1))
DEFAULT_ETA_QUANTILES = (0.05, 0.1, 0.25, 0.5)
LIVE_MEMBERS = 8  # members per cluster scored when values are computed on demand


def nb201_op_counts(features: str = "graph") -> tuple[np.ndarray, tuple[str, ...]]:
    """(15625, P) op-usage counts of every NB201 architecture and the P op names."""
    if features == "cell":
        ops = space_by_name("nb201").op_matrix
        counts = np.stack([(ops == k).sum(axis=1) for k in range(len(OPS))], axis=1)
        return counts.astype(np.float64), OPS
    if features == "graph":
        from cbred.cgraph.nb201 import space_op_counts
        from cbred.cgraph.vocab import VOCAB

        counts = np.asarray(space_op_counts(), dtype=np.float64)
        return counts, tuple(VOCAB)
    raise ValueError(f"unknown features {features!r}; expected one of {', '.join(FEATURES)}")


def distribution_points(counts: np.ndarray, distance: str) -> Points:
    """Distinct count vectors with multiplicities and their distance matrix.

    For Hellinger the points also carry the embedding √p, on which Euclidean
    distance is √2 times Hellinger, so k-means clusters by Hellinger exactly.
    """
    from cbred.cgraph.distance import pairwise, to_distributions

    if distance not in PROBABILISTIC:
        raise ValueError(
            f"unknown distance {distance!r} between distributions; "
            f"expected one of {', '.join(PROBABILISTIC)}"
        )
    unique, inverse, weights = np.unique(
        np.asarray(counts, dtype=np.float64), axis=0, return_inverse=True, return_counts=True
    )
    embedding = np.sqrt(to_distributions(unique)) if distance == "hellinger" else None
    return Points(
        weights=weights.astype(np.float64),
        inverse=inverse.reshape(-1),
        embedding=embedding,
        distances=pairwise(unique, metric=distance, dtype=np.float64),
        distance_scale=2**-0.5,
    )


def edit_points(cost: CostModel | None = None) -> Points:
    """NB201's 15,625 cells under the exact edit distance, as additive codes (k-medoids)."""
    from cbred.cgraph.distance.nb201_edit import op_cost_table

    ops = space_by_name("nb201").op_matrix
    n = len(ops)
    return Points(
        weights=np.ones(n),
        inverse=np.arange(n),
        codes=AdditiveCodes(ops, op_cost_table(cost)),
    )


def nb201_points(distance: str, features: str = "graph") -> Points:
    """The points C-BRED clusters for ``distance``: op-usage distributions of ``features``,
    or the cells themselves for ``edit``."""
    if distance == "edit":
        return edit_points()
    if distance not in DISTANCES:
        raise ValueError(f"unknown distance {distance!r}; expected one of {', '.join(DISTANCES)}")
    return distribution_points(nb201_op_counts(features)[0], distance)


def eta_candidates(
    points: Points, quantiles: Sequence[float] = DEFAULT_ETA_QUANTILES
) -> list[float]:
    """Affinity scales at quantiles of the positive pairwise distances (data-driven, label-free)."""
    d = points.distance_matrix()
    positive = d[np.triu_indices(len(d), k=1)]
    positive = positive[positive > 0]
    if positive.size == 0:
        raise ValueError("all points coincide; spectral clustering has no scale to choose")
    return sorted({float(np.quantile(positive, q)) for q in quantiles})


def statistic_direction(name: str) -> float:
    """+1 when larger values of statistic ``name`` predict better accuracy, −1 when smaller."""
    from cbred.proxies.registry import available_proxies, get_proxy

    if name not in available_proxies():
        raise ValueError(
            f"unknown statistic {name!r}; expected one of {', '.join(available_proxies())}"
        )
    return 1.0 if get_proxy(name).direction == "higher" else -1.0


@lru_cache(maxsize=1)
def _analytic_costs() -> dict[str, np.ndarray]:
    from cbred.bench.nb201_network import space_costs

    params, flops = space_costs(space_by_name("nb201"))
    return {"params": params.astype(np.float64), "flops": flops.astype(np.float64)}


def load_score_table(
    source: str | Path | pd.DataFrame, statistic: str, dataset: str | None = None
) -> pd.Series:
    """Values of ``statistic`` per architecture index from a Parquet/CSV file or a DataFrame.

    Accepts the score store's long export (columns ``arch``, ``statistic``,
    ``value`` and optionally ``dataset``) or a wide table (one column per
    statistic; architecture indices in an ``index`` or integer ``arch`` column, or
    as the frame's index, as in :func:`bench.score_table.shipped_scores`).
    Values are as stored (not oriented).
    """
    if isinstance(source, pd.DataFrame):
        table, name = source, "score table"
    else:
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"score table {str(path)!r} does not exist")
        table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        name = path.name
    if {"statistic", "value", "arch"} <= set(table.columns):
        rows = table[table["statistic"] == statistic]
        if dataset is not None and "dataset" in rows.columns:
            rows = rows[rows["dataset"] == dataset]
        if rows.empty:
            raise KeyError(f"{name} has no rows for {statistic!r} ({dataset})")
        if rows["arch"].duplicated().any():
            raise ValueError(
                f"{name} has several {statistic!r} values per architecture; "
                "filter it to one data set, batch size and seed"
            )
        return pd.Series(rows["value"].to_numpy(float), index=rows["arch"].to_numpy(int))
    if statistic not in table.columns:
        raise KeyError(f"{name} has no {statistic!r} column; found {list(table.columns)}")
    if "index" in table.columns:
        keys = table["index"]
    elif "arch" in table.columns and table["arch"].dtype.kind == "i":
        keys = table["arch"]
    elif table.index.dtype.kind == "i":
        keys = table.index
    else:
        raise KeyError(f"{name} needs architecture indices in an 'index' column or its index")
    return pd.Series(table[statistic].to_numpy(float), index=np.asarray(keys, dtype=np.int64))


def shipped_statistic(statistic: str) -> pd.Series | None:
    """``statistic`` from the shipped NB201 score table (whole or partial), or None."""
    from cbred.bench.score_table import shipped_scores

    try:
        table = shipped_scores()
    except FileNotFoundError:
        return None
    if statistic not in table.columns:
        return None
    values = load_score_table(table, statistic)
    values.attrs = dict(table.attrs)
    return values


@dataclass
class ProxyScorer:
    """Scores architectures on demand through :func:`proxies.api.score_nb201`, with a cache.

    The default network is reduced (8 channels, 1 cell per stage, batch of 32) so
    that scoring a few hundred sampled members takes minutes on a CPU; pass the
    standard setting (64, 16, 5) to match a score table made with it.  The cache
    (index → value) lets several reductions share computed values.
    """

    statistic: str
    dataset: str = "cifar10"
    batch_size: int = 32
    seed: int = 0
    channels: int = 8
    cells_per_stage: int = 1

    def __post_init__(self) -> None:
        self.direction = statistic_direction(self.statistic)
        self.cache: dict[int, float] = {}
        self.seconds = 0.0

    def cached_indices(self) -> np.ndarray:
        """Architectures whose value costs nothing (already computed or from a table)."""
        return np.fromiter(self.cache, dtype=np.int64, count=len(self.cache))

    def __call__(self, indices: np.ndarray) -> np.ndarray:
        from cbred.proxies.api import score_nb201

        start = time.perf_counter()
        for index in map(int, indices):
            if index not in self.cache:
                result = score_nb201(
                    index,
                    [self.statistic],
                    dataset=self.dataset,
                    batch_size=self.batch_size,
                    seed=self.seed,
                    channels=self.channels,
                    cells_per_stage=self.cells_per_stage,
                )
                self.cache[index] = float(result[self.statistic])
        self.seconds += time.perf_counter() - start
        return self.direction * np.array([self.cache[int(i)] for i in indices])


def score_source(
    statistic: str,
    table: str | Path | None = None,
    dataset: str = "cifar10",
    **proxy_options: Any,
) -> tuple[ScoreSource, str]:
    """The values of ``statistic`` (larger is better) and where they come from.

    Order: a score table when given, the analytic ``params``/``flops``, the shipped
    NB201 score table (:func:`bench.score_table.shipped_scores`) when it has the
    statistic (a partial table becomes the cache of a :class:`ProxyScorer` in the
    table's setting), else the proxies API on demand (``proxy_options`` go to
    :class:`ProxyScorer`).
    """
    direction = statistic_direction(statistic)
    if table is not None:
        return direction * load_score_table(table, statistic, dataset), f"table {Path(table).name}"
    if statistic in ANALYTIC_STATISTICS:
        return direction * _analytic_costs()[statistic], "analytic"
    shipped = shipped_statistic(statistic)
    if shipped is not None and len(shipped) == len(space_by_name("nb201")):
        return direction * shipped, "shipped score table"
    if shipped is not None:
        # A partial table: score the rest live in the table's own setting, so that all
        # values are comparable; cbred_reduce samples members from the table first.
        setting = {k: shipped.attrs[k] for k in ("batch_size", "seed", "channels")}
        scorer = ProxyScorer(
            statistic,
            shipped.attrs["dataset"],
            **setting,
            cells_per_stage=shipped.attrs["cells_per_stage"],
        )
        scorer.cache.update(zip(shipped.index.tolist(), shipped.to_numpy(float).tolist()))
        share = len(shipped) / len(space_by_name("nb201"))
        return scorer, f"shipped score table ({share:.0%} of the space), the rest live"
    return ProxyScorer(statistic, dataset, **proxy_options), "cbred.proxies.api.score_nb201"


def reduce_nb201(
    distance: str = "hellinger",
    cluster: str | BaseEstimator = "kmeans",
    scores: ScoreSource | None = None,
    statistic: str = "naswot",
    f: str = "median",
    m: int | None = None,
    seed: int = 0,
    budget: float | int | None = None,
    features: str = "graph",
    k_values: Sequence[int] | None = DEFAULT_K,
    eta_values: Sequence[float] | None = None,
    criterion: str = "silhouette",
    points: Points | None = None,
) -> Reduction:
    """C-BRED over NB201 with named parts; see :func:`reduce.cbred.cbred_reduce`.

    ``m`` members per cluster are scored; None scores all of them when the values come
    from a table and :data:`LIVE_MEMBERS` when they are computed on demand.

    ``scores`` defaults to :func:`score_source` of ``statistic``; ``eta_values``
    defaults to :func:`eta_candidates` for spectral clustering; ``points`` may be
    passed to reuse the features and distances of an earlier call.
    """
    timings: dict[str, float] = {}
    start = time.perf_counter()
    if points is None:
        points = nb201_points(distance, features)
    timings["features+distance"] = time.perf_counter() - start
    clusterer = make_clusterer(cluster, seed=seed) if isinstance(cluster, str) else cluster
    has_eta = "eta" in clusterer.get_params()
    if has_eta and eta_values is None and k_values is not None:
        eta_values = eta_candidates(points)
    if scores is None:
        scores, _ = score_source(statistic)
    if m is None and isinstance(scores, ProxyScorer):
        m = LIVE_MEMBERS  # values computed live: score a sample of each cluster, not all
    provenance = {
        "features": features,
        "distance": distance,
        "distinct_points": len(points),
        "statistic": statistic,
    }
    reduction = cbred_reduce(
        points,
        clusterer,
        scores,
        f=f,
        m=m,
        seed=seed,
        budget=budget,
        k_values=k_values,
        eta_values=eta_values if has_eta else None,
        criterion=criterion,
        provenance=provenance,
        prefer=scores.cached_indices() if isinstance(scores, ProxyScorer) else None,
    )
    reduction.timings = {**timings, **reduction.timings}
    return reduction
