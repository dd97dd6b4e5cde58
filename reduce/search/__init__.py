"""Searches over a full space or a C-BRED Subspace, with budgets and full histories.

* :func:`best_of_n` — NASWOT Algorithm 1 (one statistic or a rank ensemble);
* :func:`regularized_evolution` — REA with a statistic or benchmark accuracy as fitness;
* :func:`area` — AREA: screen with a statistic, seed REA with the top architectures;
* :func:`within_budget` / :class:`PenalisedObjective` — hard cost budget, soft penalty.

Every search takes a seed (same seed, same history), a :class:`Budget` in evaluations
and simulated seconds, and returns a :class:`SearchResult` with the whole history.
"""

from cbred.reduce.search.area import area
from cbred.reduce.search.base import Budget, BudgetExhausted, Evaluator, SearchResult
from cbred.reduce.search.efficiency import (
    PenalisedObjective,
    soft_reward,
    space_costs,
    within_budget,
)
from cbred.reduce.search.objective import (
    PROXY_SECONDS,
    TRAIN_SECONDS,
    AccuracyObjective,
    LiveProxyObjective,
    Objective,
    TableObjective,
    fitness,
    live_objectives,
)
from cbred.reduce.search.random_search import best_of_n
from cbred.reduce.search.rea import regularized_evolution
from cbred.reduce.search.space import (
    GridSpace,
    as_subspace,
    grid_space,
)

__all__ = [
    "PROXY_SECONDS",
    "TRAIN_SECONDS",
    "AccuracyObjective",
    "Budget",
    "BudgetExhausted",
    "Evaluator",
    "LiveProxyObjective",
    "Objective",
    "PenalisedObjective",
    "SearchResult",
    "TableObjective",
    "area",
    "as_subspace",
    "best_of_n",
    "fitness",
    "GridSpace",
    "grid_space",
    "live_objectives",
    "regularized_evolution",
    "soft_reward",
    "space_costs",
    "within_budget",
]
