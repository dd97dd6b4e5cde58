"""C-BRED over any space: features, distances and statistic sources by name.

This is the wiring the ``cbred reduce`` command, the protocol and the API share. A space is
any object of the contract in :mod:`reduce.space`; what the space offers decides how fast
each stage is, never whether it works:

* features — what the clustering sees of every architecture (:func:`space_features`):
  the space's own fast ``features(name)`` or ``op_counts()`` when it has them, otherwise
  the graph of every ``build(i)`` traced once and summarised by a registered feature of
  :mod:`cgraph.features` (``op_usage``, the width/cost-aware ``flops_usage``,
  ``params_usage``, ``kernel_shapes``);
* distance — between feature distributions (:func:`cgraph.distance.pairwise`), computed
  once per *distinct* feature vector (NB201's 15,625 architectures have a few hundred), so
  clustering with multiplicities is exact and cheap; or ``edit``, the exact graph-edit
  distance where the space gives additive per-position codes (``edit_codes()``), clustered
  by k-medoids without forming the N² matrix (:mod:`reduce.additive`);
* statistic — per-architecture values oriented so that larger is better: a score table
  (``table=``), the space's analytic ``costs()`` for ``params``/``flops``, the space's own
  ``score_table()`` (NB201 ships one), or any registered proxy computed live on the members
  C-BRED samples (:class:`ProxyScorer`, every evaluation counted).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from cbred.reduce.additive import AdditiveCodes
from cbred.reduce.cbred import Reduction, ScoreSource, cbred_reduce
from cbred.reduce.cluster import Points, make_clusterer
from cbred.reduce.live import LiveScores
from cbred.reduce.names import DEFAULT_FEATURES, DISTANCES, LIVE_MEMBERS, PROBABILISTIC
from cbred.reduce.space import space_name
from sklearn.base import BaseEstimator

ANALYTIC_STATISTICS = ("params", "flops")
DEFAULT_ETA_QUANTILES = (0.05, 0.1, 0.25, 0.5)
MAX_DENSE_POINTS = 6000  # above: no N×N matrix (288 MiB at 6,000); Hellinger works on √p


def default_k(n_items: int) -> tuple[int, ...]:
    """K candidates 2..⌊√N⌋ for a space of N architectures (125 for NB201).

    √N is the classical label-free upper bound on the number of clusters. Over NB201's
    op-usage vectors the silhouette keeps rising with K, so the bound decides how fine the
    best cluster is (see bench/perf_reduce.py --seeds).
    """
    return tuple(range(2, max(2, math.isqrt(n_items)) + 1))


def trace_space(space: Any) -> list:
    """The CompGraph of every ``space.build(i)``, traced on zeros of ``space.input_shape`` in
    eval mode (what the network computes at inference)."""
    import torch
    from cbred.cgraph import trace

    example = torch.zeros(tuple(space.input_shape))
    graphs = []
    for i in range(len(space)):
        model = space.build(i).eval()
        with torch.no_grad():
            graphs.append(trace(model, example))
    return graphs


def trace_features(space: Any, features: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Every architecture's graph (:func:`trace_space`) summarised by the registered feature
    ``features``."""
    from cbred.cgraph.features import feature_matrix, get_feature

    get_feature(features)  # a clear error for an unknown name before any tracing
    return feature_matrix(trace_space(space), features)


def space_features(space: Any, features: str = DEFAULT_FEATURES) -> tuple[np.ndarray, tuple]:
    """(N, P) non-negative feature matrix of every architecture of ``space`` and its columns.

    The space's own ``features(name)`` comes first (it may be analytic, or know that a name
    such as NB201's ``cell`` exists only there; it returns None for names it leaves to
    tracing), then ``op_counts()`` for ``op_usage``, then tracing every network.
    """
    own = getattr(space, "features", None)
    if callable(own):
        found = own(features)
        if found is not None:
            matrix, columns = found
            return np.asarray(matrix, dtype=np.float64), tuple(columns)
    if features == "op_usage" and callable(getattr(space, "op_counts", None)):
        from cbred.cgraph.vocab import VOCAB

        return np.asarray(space.op_counts(), dtype=np.float64), tuple(VOCAB)
    return trace_features(space, features)


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
    dense = len(unique) <= MAX_DENSE_POINTS
    if not dense and embedding is None:
        gib = len(unique) ** 2 * 8 / 2**30
        raise ValueError(
            f"{len(unique)} distinct feature vectors need a {gib:.1f} GiB {distance} matrix; "
            f"use --distance hellinger (k-means on an embedding, no matrix) for spaces with "
            f"more than {MAX_DENSE_POINTS} distinct vectors"
        )
    return Points(
        weights=weights.astype(np.float64),
        inverse=inverse.reshape(-1),
        embedding=embedding,
        distances=pairwise(unique, metric=distance, dtype=np.float64) if dense else None,
        distance_scale=2**-0.5,
    )


def edit_points(space: Any, cost: Any = None) -> Points:
    """The space's architectures under their exact edit distance, as additive codes (k-medoids).

    Needs ``space.edit_codes(cost) -> (codes (N, E) ints, table (V, V))``: a space whose edit
    distance is a sum over positions of a per-position cost (NB201's six edges).
    """
    codes_of = getattr(space, "edit_codes", None)
    if not callable(codes_of):
        raise ValueError(
            f"distance 'edit' needs per-position edit codes, which space {space_name(space)!r} "
            "does not provide (edit_codes()); use a probabilistic distance "
            f"({', '.join(PROBABILISTIC)})"
        )
    codes, table = codes_of(cost)
    n = len(codes)
    return Points(weights=np.ones(n), inverse=np.arange(n), codes=AdditiveCodes(codes, table))


def space_points(space: Any, distance: str, features: str = DEFAULT_FEATURES) -> Points:
    """The points C-BRED clusters for ``distance``: distributions of ``features``, or the
    space's additive edit codes for ``edit``."""
    if distance == "edit":
        return edit_points(space)
    if distance not in DISTANCES:
        raise ValueError(f"unknown distance {distance!r}; expected one of {', '.join(DISTANCES)}")
    matrix, _ = space_features(space, features)
    if len(matrix) != len(space):
        raise ValueError(f"features have {len(matrix)} rows for a space of {len(space)}")
    if np.any(~np.isfinite(matrix)) or np.any(matrix < 0) or np.any(matrix.sum(axis=1) <= 0):
        raise ValueError(f"features {features!r} must be finite, non-negative and not all zero")
    return distribution_points(matrix, distance)


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
    from cbred.proxies.registry import get_proxy

    try:
        spec = get_proxy(name)
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None
    return 1.0 if spec.direction == "higher" else -1.0


def setting_mismatch(recorded: Mapping[str, Any], **wanted: Any) -> str | None:
    """Where a score table's recorded scoring setting differs from the one asked for.

    ``recorded`` is a table's ``attrs`` (``dataset``, ``batch_size``, ``seed``, as
    :func:`bench.score_table.pack_store` writes them); ``wanted`` the setting asked for, None
    meaning "any".  Returns e.g. ``"seed 1 (asked for 0)"``, or None when nothing recorded
    contradicts the request: values drawn under another batch or seed are another
    measurement, never a stand-in.
    """
    diffs = [
        f"{key} {recorded[key]} (asked for {value})"
        for key, value in wanted.items()
        if value is not None and key in recorded and recorded[key] != value
    ]
    return ", ".join(diffs) or None


STORE_SUFFIXES = (".db", ".sqlite")
"""File suffixes read as score stores (:class:`proxies.store.ScoreStore`)."""


def load_score_table(
    source: str | Path | pd.DataFrame,
    statistic: str,
    dataset: str | None = None,
    batch_size: int | None = None,
    seed: int | None = None,
    space: str | None = None,
) -> pd.Series:
    """Values of ``statistic`` per architecture index from a score store (``.db``), a
    Parquet/CSV file or a DataFrame.

    Accepts a score store or its long export (columns ``arch``, ``statistic``, ``value``
    and optionally ``space``, ``dataset``, ``batch_size``, ``seed``: rows are filtered to
    the setting asked for, and one setting must remain) or a wide table (one column per
    statistic; architecture indices in an ``index`` or integer ``arch`` column, or as the
    frame's index, as in :func:`bench.score_table.shipped_scores`), refused when its
    ``attrs`` record another setting (:func:`setting_mismatch`).  Values are as stored (not
    oriented).
    """
    setting = {"space": space, "dataset": dataset, "batch_size": batch_size, "seed": seed}
    if isinstance(source, pd.DataFrame):
        table, name = source, "score table"
    elif Path(source).suffix in STORE_SUFFIXES:
        table, name = _store_rows(Path(source), statistic, **setting), Path(source).name
    else:
        table, name = _read_table(Path(source)), Path(source).name
    if {"statistic", "value", "arch"} <= set(table.columns):
        rows = table[table["statistic"] == statistic]
        for key, value in setting.items():
            if value is not None and key in rows.columns:
                rows = rows[rows[key] == value]
        if rows.empty:
            asked = ", ".join(f"{k} {v}" for k, v in setting.items() if v is not None)
            suffix = f" ({asked})" if asked else ""
            raise KeyError(f"{name} has no rows for {statistic!r}{suffix}")
        if rows["arch"].duplicated().any():
            columns = [c for c in (*setting, "version") if c in rows.columns]
            settings = rows[columns].drop_duplicates().to_dict("records")
            raise ValueError(
                f"{name} has several {statistic!r} values per architecture, under the "
                f"settings {settings}; filter it to one data set, batch size and seed"
            )
        values = pd.Series(rows["value"].to_numpy(float), index=rows["arch"].to_numpy(int))
        return _finite_somewhere(values, name, statistic)
    mismatch = setting_mismatch(table.attrs, **setting)
    if mismatch:
        raise ValueError(
            f"{name} was scored under another setting: {mismatch}; use a table of the "
            "setting asked for, or ask for the table's"
        )
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
    try:
        values = pd.Series(table[statistic].to_numpy(float), index=np.asarray(keys, dtype=np.int64))
    except (ValueError, TypeError):
        raise ValueError(f"{name}: {statistic!r} or the indices are not all numbers") from None
    return _finite_somewhere(values, name, statistic)


def _read_table(path: Path) -> pd.DataFrame:
    """A Parquet or CSV score table; one ValueError naming the file for anything else."""
    if not path.exists():
        raise FileNotFoundError(f"score table {str(path)!r} does not exist")
    if path.is_dir():
        raise ValueError(f"score table {str(path)!r} is a directory; expected a .parquet or .csv")
    kind = "Parquet" if path.suffix == ".parquet" else "CSV"
    try:
        return pd.read_parquet(path) if kind == "Parquet" else pd.read_csv(path)
    except (ValueError, OSError) as exc:  # empty, binary, truncated, not that format
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = lines[0] if lines else type(exc).__name__
        raise ValueError(
            f"score table {str(path)!r} is not a readable {kind} file: {reason}"
        ) from None


def _store_rows(path: Path, statistic: str, **where: Any) -> pd.DataFrame:
    """The rows of ``statistic`` in the score store at ``path`` that match the non-None
    ``where`` columns, as the store's long export has them; a missing file is an error (a
    store is never created by reading)."""
    from cbred.proxies.store import ScoreStore

    if not path.is_file():
        raise FileNotFoundError(f"score store {str(path)!r} does not exist")
    with ScoreStore(path) as store:
        return store.frame(statistic=statistic, **{k: v for k, v in where.items() if v is not None})


def _finite_somewhere(values: pd.Series, name: str, statistic: str) -> pd.Series:
    """``values`` unless none is finite: such a table cannot rank anything."""
    if not np.isfinite(values.to_numpy()).any():
        raise ValueError(f"{name} has no finite {statistic!r} value (all NaN or infinite)")
    return values


@dataclass
class ProxyScorer:
    """Scores architectures of ``space`` on demand (:class:`reduce.live.LiveScores`, kept in
    the score store ``store`` when given, so a rerun or a search in the same setting reads
    them instead of computing), with a cache.

    Every statistic evaluation is counted in :attr:`evaluations` and its index kept in
    :attr:`scored`, so a reduction records exactly what it spent. The cache (index → value)
    lets several reductions share computed values; values given up front (a partial table)
    cost nothing and are not counted.  A value read from the store *is* counted: the store
    only saves time, so a reduction spends and chooses the same with or without it.
    """

    statistic: str
    space: Any
    batch_size: int = 64
    seed: int = 0
    device: str | None = None
    store: str | Path | None = None

    def __post_init__(self) -> None:
        self.direction = statistic_direction(self.statistic)
        self.live = LiveScores((self.statistic,), self.space, self.batch_size, self.seed,
                               self.device, self.store)  # fmt: skip
        self.cache: dict[int, float] = {}
        self.scored: list[int] = []
        self.seconds = 0.0

    @property
    def evaluations(self) -> int:
        return len(self.scored)

    @property
    def computed(self) -> int:
        """How many of the evaluations were computed here (the rest were read from the store)."""
        return len(self.live.scored)

    def cached_indices(self) -> np.ndarray:
        """Architectures whose value costs nothing (already computed or from a table)."""
        return np.fromiter(self.cache, dtype=np.int64, count=len(self.cache))

    def __call__(self, indices: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        for index in map(int, indices):
            if index not in self.cache:
                self.cache[index] = self.live.value(index, self.statistic)
                self.scored.append(index)
        self.seconds += time.perf_counter() - start
        return self.direction * np.array([self.cache[int(i)] for i in indices])


def space_score_table(space: Any, statistic: str, **setting: Any) -> pd.Series | None:
    """``statistic`` from the space's own score table (``score_table()``), or None, also when
    the table records a scoring setting other than ``setting`` (``dataset``, ``batch_size``,
    ``seed``; None for any)."""
    own = getattr(space, "score_table", None)
    if not callable(own):
        return None
    table = own()
    if table is None or statistic not in table.columns or setting_mismatch(table.attrs, **setting):
        return None
    values = load_score_table(table, statistic)
    values.attrs = dict(table.attrs)
    return values


def score_source(
    statistic: str,
    space: Any,
    table: str | Path | pd.DataFrame | None = None,
    dataset: str | None = None,
    use_space_table: bool = True,
    **proxy_options: Any,
) -> tuple[ScoreSource, str]:
    """The values of ``statistic`` (larger is better) over ``space`` and where they come from.

    Order: a score table when given, the space's analytic ``costs()`` for ``params`` /
    ``flops``, the space's own score table when it covers the statistic (a partial one
    becomes the free cache of a :class:`ProxyScorer`), else live scoring (``proxy_options``
    go to :class:`ProxyScorer`). ``use_space_table=False`` skips the space's table. Tables
    are read only in the ``batch_size`` and ``seed`` of ``proxy_options`` when given: a
    given table of another setting is refused, the space's own is passed over.
    """
    direction = statistic_direction(statistic)
    setting = {k: proxy_options.get(k) for k in ("batch_size", "seed")}
    if table is not None:
        name = "DataFrame" if isinstance(table, pd.DataFrame) else Path(table).name
        values = load_score_table(table, statistic, dataset, **setting)
        return direction * values, f"table {name}"
    costs = getattr(space, "costs", None)
    if statistic in ANALYTIC_STATISTICS and callable(costs):
        return direction * np.asarray(costs()[statistic], dtype=np.float64), "analytic"
    shipped = space_score_table(space, statistic, **setting) if use_space_table else None
    if shipped is not None and len(shipped) == len(space):
        return direction * shipped, "shipped score table"
    scorer = ProxyScorer(statistic, space, **proxy_options)
    if shipped is not None:
        # A partial table: the rest is scored live; C-BRED samples members from it first.
        scorer.cache.update(zip(shipped.index.tolist(), shipped.to_numpy(float).tolist()))
        share = len(shipped) / len(space)
        return scorer, f"shipped score table ({share:.0%} of the space), the rest live"
    return scorer, "live (proxies.score_space)"


def reduce_space(
    space: Any,
    distance: str = "hellinger",
    cluster: str | BaseEstimator = "kmeans",
    scores: ScoreSource | None = None,
    statistic: str = "naswot",
    f: str = "median",
    m: int | None = None,
    seed: int = 0,
    budget: float | int | None = None,
    features: str = DEFAULT_FEATURES,
    k_values: Sequence[int] | None | str = "default",
    eta_values: Sequence[float] | None = None,
    criterion: str = "silhouette",
    points: Points | None = None,
    evaluations: int | None = None,
    allocation: str = "uniform",
) -> Reduction:
    """C-BRED over ``space`` with named parts; see :func:`reduce.cbred.cbred_reduce`.

    ``m`` members per cluster are scored; None scores all of them when the values come
    from a table and :data:`LIVE_MEMBERS` when they are computed on demand. ``evaluations``
    caps the number of architectures scored (spread over the clusters by ``allocation``,
    ``uniform`` or ``halving``; K is kept ≤ it).

    ``scores`` defaults to :func:`score_source` of ``statistic``; ``k_values`` defaults to
    :func:`default_k`; ``eta_values`` defaults to :func:`eta_candidates` for spectral
    clustering; ``points`` may be passed to reuse the features and distances of an earlier call.
    """
    timings: dict[str, float] = {}
    start = time.perf_counter()
    if points is None:
        points = space_points(space, distance, features)
    timings["features+distance"] = time.perf_counter() - start
    if isinstance(k_values, str):
        k_values = default_k(points.n_items)
    if evaluations is not None and k_values is not None:
        k_values = [k for k in k_values if k <= evaluations]
        if not k_values:
            raise ValueError(f"evaluations={evaluations} is fewer than 2 clusters can share")
    clusterer = make_clusterer(cluster, seed=seed) if isinstance(cluster, str) else cluster
    has_eta = "eta" in clusterer.get_params()
    if has_eta and eta_values is None and k_values is not None:
        eta_values = eta_candidates(points)
    if scores is None:
        scores, _ = score_source(statistic, space)
    live = isinstance(scores, ProxyScorer)
    if m is None and live and evaluations is None:
        m = LIVE_MEMBERS  # values computed live: score a sample of each cluster, not all
    provenance = {
        "features": features if distance != "edit" else None,
        "distance": distance,
        "distinct_points": len(points),
        "statistic": statistic,
    }
    reduction = cbred_reduce(
        points,
        clusterer,
        scores,
        space=space,
        f=f,
        m=m,
        seed=seed,
        budget=budget,
        k_values=k_values,
        eta_values=eta_values if has_eta else None,
        criterion=criterion,
        provenance=provenance,
        prefer=scores.cached_indices() if live else None,
        evaluations=evaluations,
        allocation=allocation,
    )
    if live:
        reduction.subspace.provenance["scored_live"] = scores.evaluations
        reduction.subspace.provenance["computed_live"] = scores.computed
        reduction.subspace.provenance["scored_members"] = [space.arch_str(i) for i in scores.scored]
    reduction.timings = {**timings, **reduction.timings}
    return reduction
