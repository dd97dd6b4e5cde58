"""Assisted regularised evolution (AREA, Mellor et al., Algorithm 2).

Screen ``screen_size`` uniformly drawn architectures with a training-free statistic,
keep the top ``population_size`` as the initial population, then run REA with a
benchmark look-up (:class:`~reduce.search.objective.AccuracyObjective`) standing in
for training, until the accuracy budget is spent.  The screening budget is exactly
``screen_size`` statistic evaluations; the two phases are charged separately and both
appear in the history (``phase`` = ``screen`` / ``evolve``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from cbred.reduce.search.base import Budget, BudgetExhausted, Evaluator, SearchResult
from cbred.reduce.search.objective import Objective, fitness
from cbred.reduce.search.rea import regularized_evolution
from cbred.reduce.search.space import as_subspace
from cbred.reduce.subspace import Subspace


def area(
    space: Subspace,
    statistic: Objective,
    accuracy: Objective,
    budget: Budget,
    seed: int,
    screen_size: int = 1000,
    population_size: int = 10,
    tournament_size: int | None = None,
    charge_repeats: bool = False,
    screen_space: Subspace | None = None,
) -> SearchResult:
    """AREA on ``space``: ``budget`` caps the evolution (accuracy) phase.

    ``screen_space`` (default ``space``) is where screening draws from, e.g. the members
    of ``space`` that a score table covers; the evolution may then reach all of ``space``.
    """
    space = as_subspace(space)
    screen_from = space if screen_space is None else as_subspace(screen_space)
    if not 1 <= population_size <= screen_size:
        raise ValueError(f"need 1 <= population ({population_size}) <= screen size ({screen_size})")
    rng = np.random.default_rng(seed)
    screened = screen_from.sample(min(screen_size, len(screen_from)), rng)
    budget_screen = Budget(evaluations=screen_size)
    screener = Evaluator(screen_from, [statistic], budget_screen, phase="screen")
    try:
        for index in screened:
            screener.evaluate(int(index))
    except BudgetExhausted as exc:  # cannot happen: the sample is no larger than the cap
        raise RuntimeError(f"screening overran its own budget: {exc}") from exc
    screen = screener.history_frame()
    score = np.array([fitness(statistic, v) for v in screen[statistic.name]])
    top = screen["index"].to_numpy()[np.argsort(-score, kind="stable")[:population_size]]
    evolved = regularized_evolution(
        space,
        accuracy,
        budget,
        seed=int(rng.integers(2**63)),
        tournament_size=tournament_size,
        initial=top,
        charge_repeats=charge_repeats,
    )
    history = pd.concat([screen, evolved.history], ignore_index=True)
    history["step"] = np.arange(len(history))
    return SearchResult(
        method="area",
        best=evolved.best,
        best_value=evolved.best_value,
        history=history,
        evaluations=screener.evaluations + evolved.evaluations,
        seconds=screener.seconds + evolved.seconds,
        settings={
            "seed": seed,
            "screen_size": screen_size,
            "population_size": population_size,
            "tournament_size": tournament_size,
            "statistic": statistic.name,
            "objective": accuracy.name,
            "space": space.name,
        },
        # the evolution's budget is accuracy queries, not statistic evaluations
        stop_reason=evolved.stop_reason.replace("evaluation budget", "accuracy-query budget"),
    )
