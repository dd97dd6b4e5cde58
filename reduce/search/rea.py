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
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np
import pandas as pd
from cbred.reduce.search.base import Budget, BudgetExhausted, Evaluator, SearchResult
from cbred.reduce.search.objective import Objective, fitness
from cbred.reduce.search.space import as_subspace
from cbred.reduce.subspace import Subspace


def regularized_evolution(
    space: Subspace,
    objective: Objective,
    budget: Budget,
    seed: int,
    population_size: int = 20,
    tournament_size: int = 5,
    *,
    initial: Sequence[int] | None = None,
    charge_repeats: bool = False,
    phase: str = "evolve",
) -> SearchResult:
    """Run REA on ``space`` until ``budget`` is spent.

    ``initial`` replaces the random initial population (AREA seeds it with screened
    architectures); its length then sets the population size.
    """
    space = as_subspace(space)
    if population_size < 1 or tournament_size < 1:
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
    evaluator = Evaluator(space, [objective], budget, charge_repeats, phase)
    population: deque[tuple[int, float]] = deque()
    try:
        for index in starts:
            (value,) = evaluator.evaluate(int(index))
            population.append((int(index), fitness(objective, value)))
        while True:
            picks = rng.choice(len(population), min(tournament_size, len(population)), False)
            parent = max(picks, key=lambda p: population[p][1])
            child = space.mutate(population[parent][0], rng)
            (value,) = evaluator.evaluate(child)
            population.append((child, fitness(objective, value)))
            if len(population) > population_size:
                population.popleft()
    except BudgetExhausted as exc:
        stop = str(exc)
    history = evaluator.history_frame()
    if history.empty:
        raise ValueError(f"the budget {budget} allows no evaluation at all")
    return _result(
        "rea",
        history,
        objective,
        evaluator,
        stop,
        {
            "seed": seed,
            "population_size": population_size,
            "tournament_size": tournament_size,
            "objective": objective.name,
            "space": space.name,
        },
    )


def _result(
    method: str,
    history: pd.DataFrame,
    objective: Objective,
    evaluator: Evaluator,
    stop: str,
    settings: dict,
) -> SearchResult:
    """The fittest architecture of ``history`` (first on ties) as a :class:`SearchResult`."""
    values = history[objective.name].to_numpy(dtype=np.float64)
    winner = int(np.argmax([fitness(objective, v) for v in values]))
    return SearchResult(
        method=method,
        best=int(history["index"].iat[winner]),
        best_value=float(values[winner]),
        history=history,
        evaluations=evaluator.evaluations,
        seconds=evaluator.seconds,
        settings=settings,
        stop_reason=stop,
    )
