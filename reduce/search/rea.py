"""Regularised evolution (REA, Real et al. 2019) with any objective as fitness.

A population of ``population_size`` architectures is drawn uniformly and evaluated.
Each cycle draws ``tournament_size`` distinct members of the population, mutates the
fittest (one edge changed, staying inside the search space) into a child, evaluates the
child, appends it and removes the *oldest* member.  A child evaluated before is answered
from memory (free unless ``charge_repeats``) and still joins the population.  The search
stops when the budget refuses a query; the answer is the fittest architecture of the
whole history (ties: the earliest).  With a statistic as fitness this is training-free;
with :class:`~reduce.search.objective.AccuracyObjective` it is the classic trained
baseline.

With several objectives (a rank ensemble, such as :data:`proxies.ensemble.RECOMMENDED`)
the fitness of a member is its ensemble score among every architecture evaluated so far
(:func:`~reduce.search.random_search.ensemble_scores`), recomputed at each tournament: no
architecture outside the history is ever scored, and a member's standing can change as
the history grows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np
import pandas as pd
from cbred.reduce.search.base import Budget, BudgetExhausted, Evaluator, SearchResult
from cbred.reduce.search.objective import Objective, fitness
from cbred.reduce.search.random_search import ensemble_scores
from cbred.reduce.search.space import as_subspace
from cbred.reduce.subspace import Subspace

DEFAULT_TOURNAMENT = 5
"""Tournament size when none is given (the whole population when it is smaller)."""


def regularized_evolution(
    space: Subspace,
    objective: Objective | Sequence[Objective],
    budget: Budget,
    seed: int,
    population_size: int = 20,
    tournament_size: int | None = None,
    *,
    initial: Sequence[int] | None = None,
    charge_repeats: bool = False,
    phase: str = "evolve",
    aggregate: str = "mean_rank",
) -> SearchResult:
    """Run REA on ``space`` until ``budget`` is spent.

    ``initial`` replaces the random initial population (AREA seeds it with screened
    architectures); its length then sets the population size.  ``tournament_size``
    distinct members are drawn per cycle: by default :data:`DEFAULT_TOURNAMENT`, or the
    whole population when it is smaller; a larger one given explicitly is an error.  A
    sequence of objectives is a rank ensemble combined by ``aggregate``; one evaluation
    scores all of them.
    """
    objectives = [objective] if isinstance(objective, Objective) else list(objective)
    if not objectives:
        raise ValueError("REA needs at least one objective")
    space = as_subspace(space)
    if population_size < 1 or (tournament_size is not None and tournament_size < 1):
        raise ValueError(
            f"population and tournament sizes must be >= 1, got {population_size}, "
            f"{tournament_size}"
        )
    if budget.unlimited and charge_repeats:
        raise ValueError("REA with charged repeats needs an evaluation or seconds budget")
    rng = np.random.default_rng(seed)
    if initial is None:
        starts = space.sample(min(population_size, len(space)), rng)
    else:
        starts = np.asarray(initial, dtype=np.int64)
        if starts.size == 0:
            raise ValueError("the initial population is empty")
        population_size = int(starts.size)
    if tournament_size is None:
        tournament_size = min(DEFAULT_TOURNAMENT, population_size)
    elif tournament_size > population_size:
        raise ValueError(
            f"a tournament of {tournament_size} is larger than the population of "
            f"{population_size} whose distinct members it draws; lower the tournament size"
        )
    evaluator = Evaluator(space, objectives, budget, charge_repeats, phase)
    standing = _Standing(objectives, aggregate)
    population: deque[int] = deque()
    try:
        for index in starts:
            standing.add(int(index), evaluator.evaluate(int(index)))
            population.append(int(index))
        while True:
            picks = rng.choice(len(population), min(tournament_size, len(population)), False)
            scores = standing.fitness([population[p] for p in picks])
            parent = picks[int(np.argmax(scores))]  # first maximum: the earliest pick wins ties
            child = space.mutate(population[parent], rng)
            standing.add(child, evaluator.evaluate(child))
            population.append(child)
            if len(population) > population_size:
                population.popleft()
    except BudgetExhausted as exc:
        stop = str(exc)
    history = evaluator.history_frame()
    if history.empty:
        raise ValueError(f"the budget {budget} allows no evaluation at all")
    settings = {
        "seed": seed,
        "population_size": population_size,
        "tournament_size": tournament_size,
        "objective": "+".join(o.name for o in objectives),
        "space": space.name,
        **({"aggregate": aggregate} if len(objectives) > 1 else {}),
    }
    return _result("rea", history, objectives, evaluator, stop, settings, aggregate)


class _Standing:
    """Fitness of evaluated architectures: the oriented value of one objective, or the
    ensemble score among all distinct architectures evaluated so far."""

    def __init__(self, objectives: list[Objective], aggregate: str) -> None:
        self.objectives, self.aggregate = objectives, aggregate
        self.values: dict[int, tuple[float, ...]] = {}

    def add(self, index: int, values: tuple[float, ...]) -> None:
        self.values[index] = tuple(values)

    def fitness(self, indices: Sequence[int]) -> np.ndarray:
        if len(self.objectives) == 1:
            return np.array([fitness(self.objectives[0], self.values[i][0]) for i in indices])
        keys = list(self.values)
        scores = ensemble_scores(self.objectives, np.array([self.values[k] for k in keys]),
                                 self.aggregate)  # fmt: skip
        position = {k: j for j, k in enumerate(keys)}
        return np.array([scores[position[i]] for i in indices])


def _result(
    method: str,
    history: pd.DataFrame,
    objectives: Sequence[Objective],
    evaluator: Evaluator,
    stop: str,
    settings: dict,
    aggregate: str = "mean_rank",
) -> SearchResult:
    """The fittest architecture of ``history`` (first on ties) as a :class:`SearchResult`;
    for an ensemble, by its score among the whole history."""
    values = history[[o.name for o in objectives]].to_numpy(dtype=np.float64)
    if len(objectives) == 1:
        scores = np.array([fitness(objectives[0], v) for v in values[:, 0]])
    else:
        scores = ensemble_scores(objectives, values, aggregate)
    winner = int(np.argmax(scores))
    return SearchResult(
        method=method,
        best=int(history["index"].iat[winner]),
        best_value=float(values[winner, 0] if len(objectives) == 1 else scores[winner]),
        history=history,
        evaluations=evaluator.evaluations,
        seconds=evaluator.seconds,
        settings=settings,
        stop_reason=stop,
    )
