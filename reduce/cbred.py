"""C-BRED (Algorithm 1 of the C-BRED poster): cluster a space, score clusters, keep the best.

1. choose K (and η) by an unsupervised criterion (:func:`reduce.select.select_best_parameter`),
   unless given;
2. cluster the space's distinct points and map the labels back to architectures;
3. score each cluster with f over the training-free statistic of m sampled members
   (or all members when the statistic comes from a table);
4. keep the best cluster, or the best clusters that fit a size budget.

Benchmark accuracies play no part here; they only evaluate a reduction afterwards
(:mod:`reduce.report`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from cbred.reduce.cluster import Points
from cbred.reduce.names import ALLOCATIONS
from cbred.reduce.scoring import ClusterSamples, ScoringFunction, parse_scoring
from cbred.reduce.select import ParameterSelection, select_best_parameter
from cbred.reduce.subspace import Subspace
from sklearn.base import BaseEstimator, clone

ScoreSource = pd.Series | np.ndarray | Callable[[np.ndarray], np.ndarray]
"""Per-architecture statistic values, larger is better: a Series indexed by
architecture index, an array over the whole space, or a function of an index array."""


def lookup_scores(scores: ScoreSource, indices: np.ndarray, n_items: int) -> np.ndarray:
    """Statistic values of the architectures ``indices`` from any :data:`ScoreSource`."""
    if isinstance(scores, pd.Series):
        missing = np.setdiff1d(indices, scores.index.to_numpy())
        if missing.size:
            raise KeyError(f"score table has no value for architectures {missing[:5].tolist()}")
        values = scores.loc[indices].to_numpy(dtype=np.float64)
    elif isinstance(scores, np.ndarray):
        if scores.shape != (n_items,):
            raise ValueError(f"score array has shape {scores.shape}, expected ({n_items},)")
        values = scores[indices].astype(np.float64)
    elif callable(scores):
        values = np.asarray(scores(indices), dtype=np.float64).reshape(-1)
        if values.shape != indices.shape:
            raise ValueError(f"score function returned {values.size} values for {indices.size}")
    else:
        raise TypeError(
            f"scores must be a pandas Series, a numpy array or a callable, got {type(scores)}"
        )
    if np.any(np.isposinf(values)):
        raise ValueError("scores contain +inf; expected finite values or NaN")
    return values


def canonical_labels(labels: np.ndarray) -> np.ndarray:
    """Relabel clusters 0..K-1 in order of their first item, so numbering is reproducible."""
    _, first, codes = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[codes.reshape(-1)]


def budget_size(budget: float | int | None, n_items: int) -> int | None:
    """A budget as a number of architectures: a share in (0, 1) or a count >= 1."""
    if budget is None:
        return None
    if isinstance(budget, (int, np.integer)) and not isinstance(budget, bool):
        if not 1 <= budget <= n_items:
            raise ValueError(f"budget count must be in 1..{n_items}, got {budget}")
        return int(budget)
    value = float(budget)
    if not 0.0 < value < 1.0:
        raise ValueError(f"budget share must be in (0, 1), got {budget!r}")
    return max(1, int(np.floor(value * n_items)))


def choose_clusters(f_values: np.ndarray, sizes: np.ndarray, limit: int | None) -> list[int]:
    """The best cluster, or the best clusters whose total size fits ``limit``.

    Clusters are taken in decreasing f (ties: smaller first, then lower id); with a limit,
    filling stops at the first cluster that does not fit in what is left: a cluster is never
    chosen over a better-scored one that was turned away, so a small, badly scored cluster
    cannot slip into the subspace just because it fits. Clusters larger than the whole limit
    are passed over until the first one that fits, where filling starts.  A cluster whose f
    is undefined (NaN or -inf) is never chosen; when no cluster has a defined f this raises.
    """
    f_values = np.asarray(f_values, dtype=np.float64)
    if not np.isfinite(f_values).any():
        raise ValueError(
            f"no cluster has a defined score: f is undefined (NaN/-inf) for all {len(sizes)} "
            "clusters, so every sampled statistic value failed; see the statistic's errors"
        )
    order = np.lexsort((np.arange(len(sizes)), sizes, -np.nan_to_num(f_values, nan=-np.inf)))
    order = order[np.isfinite(f_values[order])]  # an undefined cluster is never chosen
    if limit is None:
        return [int(order[0])]
    chosen, total = [], 0
    for c in order:
        if total + sizes[c] > limit:
            if chosen:
                break
            continue  # nothing chosen yet: look for the best cluster that fits at all
        chosen.append(int(c))
        total += int(sizes[c])
    if not chosen:
        raise ValueError(
            f"no cluster fits the budget of {limit} architectures (smallest has {sizes.min()})"
        )
    return chosen


def allocate(sizes: np.ndarray, evaluations: int) -> np.ndarray:
    """Members to score per cluster: ``evaluations`` spread evenly, none above a cluster's size.

    Every cluster gets ``evaluations // K`` (at least one, so every cluster has a score);
    what small clusters cannot use and the remainder go one by one to the largest clusters
    that still have unscored members.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    if evaluations < len(sizes):
        raise ValueError(
            f"evaluations={evaluations} cannot score one member of each of {len(sizes)} clusters"
        )
    counts = np.minimum(sizes, max(1, evaluations // len(sizes)))
    left = min(int(evaluations - counts.sum()), int((sizes - counts).sum()))
    order = np.lexsort((np.arange(len(sizes)), -sizes))
    while left > 0:
        for c in order:
            if left == 0:
                break
            if counts[c] < sizes[c]:
                counts[c] += 1
                left -= 1
    return counts


def sample_members(
    members: np.ndarray, m: int, rng: np.random.Generator, prefer: np.ndarray | None = None
) -> np.ndarray:
    """``m`` distinct members drawn with ``rng``, from ``prefer`` first, sorted."""
    if prefer is None:
        return np.sort(rng.choice(members, size=m, replace=False))
    free = np.isin(members, prefer)
    take = rng.choice(members[free], size=min(m, int(free.sum())), replace=False)
    rest = rng.choice(members[~free], size=m - take.size, replace=False)
    return np.sort(np.concatenate([take, rest]))


def member_order(
    members: np.ndarray, rng: np.random.Generator, prefer: np.ndarray | None = None
) -> np.ndarray:
    """All ``members`` in a random order drawn with ``rng``, free ones (``prefer``) first:
    scoring a prefix of it is a uniform sample that costs as little as possible."""
    if prefer is None:
        return rng.permutation(members)
    free = np.isin(members, prefer)
    return np.concatenate([rng.permutation(members[free]), rng.permutation(members[~free])])


def halving_rounds(n_clusters: int) -> int:
    """Rounds of successive halving that bring ``n_clusters`` down to one: ⌈log2 K⌉ + 1."""
    return int(np.ceil(np.log2(max(n_clusters, 1)))) + 1


@dataclass
class Reduction:
    """The outcome of :func:`cbred_reduce`: the subspace and everything that led to it."""

    subspace: Subspace
    labels: np.ndarray  # cluster of every architecture
    sizes: np.ndarray  # architectures per cluster
    f_values: np.ndarray  # score of every cluster
    selected: list[int]  # chosen clusters, best first
    sampled: list[np.ndarray]  # scored member indices per cluster
    sample_values: list[np.ndarray]  # their statistic values
    selection: ParameterSelection | None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def n_clusters(self) -> int:
        return len(self.sizes)


class CBRED(BaseEstimator):
    """C-BRED as a scikit-learn style estimator: cluster, score clusters, keep the best.

    Parameters (all plain values, so ``get_params``/``set_params``/``clone`` work):
    ``clusterer`` (a configured estimator with ``n_clusters``), ``f`` (cluster scoring
    function), ``evaluations`` (the most architectures scored, or None), ``allocation``
    (``uniform``: the evaluations spread evenly, :func:`allocate`; ``halving``: successive
    halving over clusters, spending each round's share on the clusters still in the top half
    by f, so that the budget goes where the best cluster is still uncertain), ``m`` (members
    per cluster when ``evaluations`` is None; None = all), ``k_values`` / ``eta_values`` /
    ``criterion`` (K and η chosen without labels; None keeps the clusterer's), ``budget``
    (subspace size as a share or count; None = the best cluster) and ``random_state``.

    :meth:`fit` sets ``labels_`` (cluster of every architecture), ``sizes_``,
    ``cluster_scores_`` (f of every cluster), ``selected_``, ``sampled_`` / ``sample_values_``
    (scored members and values per cluster), ``evaluations_`` (architectures scored),
    ``selection_``, ``subspace_`` and ``timings_``.
    """

    def __init__(
        self,
        clusterer: BaseEstimator | None = None,
        f: str | ScoringFunction = "median",
        evaluations: int | None = None,
        allocation: str = "uniform",
        m: int | None = 32,
        k_values: Sequence[int] | None = None,
        eta_values: Sequence[float] | None = None,
        criterion: str = "silhouette",
        budget: float | int | None = None,
        random_state: int = 0,
    ) -> None:
        self.clusterer = clusterer
        self.f = f
        self.evaluations = evaluations
        self.allocation = allocation
        self.m = m
        self.k_values = k_values
        self.eta_values = eta_values
        self.criterion = criterion
        self.budget = budget
        self.random_state = random_state

    def _check(self, points: Points, space: Any) -> None:
        if self.clusterer is None:
            raise ValueError("CBRED needs a clusterer, e.g. KMeansClusterer(8)")
        if space is None:
            raise ValueError("CBRED.fit needs the space the points describe (space=...)")
        if points.n_items != len(space):
            raise ValueError(
                f"points describe {points.n_items} items, but the space has {len(space)}"
            )
        if self.evaluations is not None and self.evaluations < 1:
            raise ValueError(f"evaluations must be >= 1, got {self.evaluations}")
        if self.m is not None and self.m < 1:
            raise ValueError(f"m (members scored per cluster) must be >= 1 or None, got {self.m}")
        if self.allocation not in ALLOCATIONS:
            raise ValueError(
                f"unknown allocation {self.allocation!r}; expected one of {', '.join(ALLOCATIONS)}"
            )
        if self.allocation == "halving" and self.evaluations is None:
            raise ValueError("allocation 'halving' needs an evaluation budget (evaluations=B)")

    def fit(
        self,
        points: Points,
        scorer: ScoreSource,
        space: Any = None,
        prefer: np.ndarray | None = None,
        provenance: dict[str, Any] | None = None,
    ) -> CBRED:
        """Cluster ``points`` (one item per architecture of ``space``) and score the clusters
        from ``scorer`` (a :data:`ScoreSource`, larger is better). ``prefer`` lists
        architectures whose scores are free (a partial table): samples draw from them first."""
        self._check(points, space)
        scoring = parse_scoring(self.f)
        limit = budget_size(self.budget, points.n_items)
        timings: dict[str, float] = {}

        start = time.perf_counter()
        selection = None
        model = clone(self.clusterer)
        if self.k_values is not None:
            selection = select_best_parameter(
                model, points, self.k_values, self.eta_values, self.criterion
            )
            params: dict[str, Any] = {"n_clusters": selection.n_clusters}
            if selection.eta is not None and "eta" in model.get_params():
                params["eta"] = selection.eta
            model.set_params(**params)
        timings["select"] = time.perf_counter() - start

        start = time.perf_counter()
        model.fit(points.data_for(model), sample_weight=points.weights)
        labels = canonical_labels(points.item_labels(model.labels_))
        sizes = np.bincount(labels)
        timings["cluster"] = time.perf_counter() - start

        start = time.perf_counter()
        rng = np.random.default_rng(self.random_state)
        if self.allocation == "halving":
            sampled, sample_values, f_values = self._halving(
                labels, sizes, scorer, scoring, rng, prefer, points.n_items
            )
        else:
            sampled = self._uniform_samples(labels, sizes, rng, prefer)
            values = lookup_scores(scorer, np.concatenate(sampled), points.n_items)
            bounds = np.cumsum([0] + [x.size for x in sampled])
            sample_values = [values[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
            f_values = scoring(ClusterSamples.build(sample_values, sizes))
        timings["score"] = time.perf_counter() - start

        start = time.perf_counter()
        selected = choose_clusters(f_values, sizes, limit)
        members = np.flatnonzero(np.isin(labels, selected))
        record = {
            **(provenance or {}),
            "clusterer": type(model).__name__,
            "params": {k: v for k, v in model.get_params().items()},
            "n_clusters": int(len(sizes)),
            "eta": getattr(model, "eta_", model.get_params().get("eta")),
            "selection": None if selection is None else selection.as_dict(),
            "f": scoring.name,
            "m": self.m,
            "evaluations": self.evaluations,
            "allocation": self.allocation,
            "scored": int(sum(len(x) for x in sampled)),
            "seed": self.random_state,
            "budget": self.budget,
            "clusters": selected,
            "f_values": [float(f_values[c]) for c in selected],
        }
        self.labels_, self.sizes_, self.cluster_scores_ = labels, sizes, f_values
        self.selected_, self.sampled_, self.sample_values_ = selected, sampled, sample_values
        self.evaluations_ = record["scored"]
        self.selection_ = selection
        self.subspace_ = Subspace.from_indices(members, space, record)
        timings["subspace"] = time.perf_counter() - start
        self.timings_ = timings
        return self

    def _uniform_samples(
        self,
        labels: np.ndarray,
        sizes: np.ndarray,
        rng: np.random.Generator,
        prefer: np.ndarray | None,
    ) -> list[np.ndarray]:
        quota = allocate(sizes, self.evaluations) if self.evaluations is not None else None
        sampled = []
        for c in range(len(sizes)):
            members = np.flatnonzero(labels == c)
            take = int(quota[c]) if quota is not None else self.m
            if take is not None and take < members.size:
                members = sample_members(members, take, rng, prefer)
            sampled.append(members)
        return sampled

    def _halving(
        self,
        labels: np.ndarray,
        sizes: np.ndarray,
        scorer: ScoreSource,
        scoring: ScoringFunction,
        rng: np.random.Generator,
        prefer: np.ndarray | None,
        n_items: int,
    ) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
        """Successive halving: round 0 scores every cluster evenly; each later round spends
        an equal share of what is left on the top half (by f so far) of the clusters still
        alive, until the budget is spent or one cluster remains."""
        n_clusters = len(sizes)
        budget = int(self.evaluations)  # type: ignore[arg-type]
        if budget < n_clusters:
            raise ValueError(
                f"evaluations={budget} cannot score one member of each of {n_clusters} clusters"
            )
        orders = [member_order(np.flatnonzero(labels == c), rng, prefer) for c in range(n_clusters)]
        taken = np.zeros(n_clusters, dtype=np.int64)
        values: list[np.ndarray] = [np.empty(0) for _ in range(n_clusters)]
        rounds = halving_rounds(n_clusters)
        alive = np.arange(n_clusters)
        spent = 0
        f_values = np.full(n_clusters, -np.inf)
        for r in range(rounds):
            share = (budget - spent) // (rounds - r)
            per = max(1, share // len(alive))
            for c in alive:
                extra = min(per, int(sizes[c] - taken[c]), budget - spent)
                if extra <= 0:
                    continue
                new = orders[c][taken[c] : taken[c] + extra]
                values[c] = np.concatenate([values[c], lookup_scores(scorer, new, n_items)])
                taken[c] += extra
                spent += extra
            samples = ClusterSamples.build(values, sizes)
            f_values = scoring(samples)
            if len(alive) == 1 or spent >= budget:
                break
            ranked = alive[np.lexsort((alive, -f_values[alive]))]
            alive = ranked[: max(1, int(np.ceil(len(alive) / 2)))]
        sampled = [np.sort(orders[c][: taken[c]]) for c in range(n_clusters)]
        order_values = []
        for c in range(n_clusters):  # values in the sorted order of sampled members
            position = np.argsort(orders[c][: taken[c]], kind="stable")
            order_values.append(values[c][position])
        return sampled, order_values, f_values


def cbred_reduce(
    points: Points,
    clusterer: BaseEstimator,
    scores: ScoreSource,
    f: str | ScoringFunction = "median",
    m: int | None = 32,
    seed: int = 0,
    budget: float | int | None = None,
    space: Any = None,
    k_values: Sequence[int] | None = None,
    eta_values: Sequence[float] | None = None,
    criterion: str = "silhouette",
    provenance: dict[str, Any] | None = None,
    prefer: np.ndarray | None = None,
    evaluations: int | None = None,
    allocation: str = "uniform",
) -> Reduction:
    """Run C-BRED over ``points`` (one item per architecture of ``space``, a space object of
    :mod:`reduce.space`; its ``arch_str`` names the subspace's members): :class:`CBRED`
    fitted once, its attributes gathered into a :class:`Reduction`.

    ``clusterer`` is used as configured when ``k_values`` is None; otherwise K (and
    η over ``eta_values``) is chosen by ``criterion``.  ``m`` members per cluster
    (all when None) are drawn with ``seed`` and scored from ``scores``; ``f``
    scores the clusters; ``budget`` (share or count) allows several clusters.
    ``prefer`` lists architectures whose scores are free (a partial score table): each
    cluster's sample is drawn from them first, which keeps it uniform within the
    cluster when the table covers a uniform random part of the space. ``evaluations`` caps
    the members scored in all, spread by ``allocation`` (it overrides ``m``).
    """
    estimator = CBRED(
        clusterer, f, evaluations, allocation, m, k_values, eta_values, criterion, budget, seed
    ).fit(points, scores, space, prefer, provenance)
    return Reduction(
        estimator.subspace_,
        estimator.labels_,
        estimator.sizes_,
        estimator.cluster_scores_,
        estimator.selected_,
        estimator.sampled_,
        estimator.sample_values_,
        estimator.selection_,
        estimator.timings_,
    )
