"""Best-of-N random search (NASWOT, Algorithm 1): sample N, score each, keep the best.

With one objective the winner is the best value (ties: the earliest sampled), exactly
the sequential "if score > best" of the algorithm.  With several objectives (a rank
ensemble) each statistic ranks the *evaluated* candidates only — no architecture
outside the sample is ever scored — and the winner has the best mean rank.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from cbred.reduce.search.base import Budget, BudgetExhausted, Evaluator, SearchResult
from cbred.reduce.search.objective import Objective, fitness
from cbred.reduce.search.space import as_subspace
from cbred.reduce.subspace import Subspace


def ensemble_scores(
    objectives: Sequence[Objective], values: np.ndarray, aggregate: str = "mean_rank"
) -> np.ndarray:
    """Each candidate's ensemble score among the ``values`` rows (higher is better): the
    objectives' ranks (n = best) combined by ``aggregate`` (``mean_rank`` or ``log_rank``,
    :func:`proxies.ensemble.combine_ranks`).

    ``values`` is (candidates, objectives); NaN ranks lowest.
    """
    from cbred.proxies.ensemble import combine_ranks, ranks  # imports torch: only when asked

    rows = [ranks(values[:, k], o.direction) for k, o in enumerate(objectives)]
    return combine_ranks(rows, aggregate)


def best_of_n(
    space: Subspace,
    objectives: Objective | Sequence[Objective],
    n: int,
    seed: int,
    budget: Budget | None = None,
    aggregate: str = "mean_rank",
) -> SearchResult:
    """Score ``n`` distinct uniformly drawn members (fewer if the space or budget is
    smaller) and return the best.  One evaluation = one architecture scored by all
    ``objectives``; several objectives combine by ``aggregate`` (:func:`ensemble_scores`)."""
    space = as_subspace(space)
    objectives = [objectives] if isinstance(objectives, Objective) else list(objectives)
    if n < 1:
        raise ValueError(f"N must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    candidates = space.sample(min(n, len(space)), rng)
    evaluator = Evaluator(space, objectives, budget or Budget(), phase="sample")
    stop = f"sampled {len(candidates)}"
    for index in candidates:
        try:
            evaluator.evaluate(int(index))
        except BudgetExhausted as exc:
            stop = str(exc)
            break
    history = evaluator.history_frame()
    if history.empty:
        raise ValueError(f"the budget {budget} allows no evaluation at all")
    values = history[evaluator.names].to_numpy(dtype=np.float64)
    if len(objectives) == 1:
        score = np.array([fitness(objectives[0], v) for v in values[:, 0]])
    else:
        score = ensemble_scores(objectives, values, aggregate)
    winner = int(np.argmax(score))  # first maximum: the earliest sampled wins ties
    return SearchResult(
        method="best_of_n" if len(objectives) == 1 else "best_of_n_ensemble",
        best=int(history["index"].iat[winner]),
        best_value=float(score[winner]) if len(objectives) > 1 else float(values[winner, 0]),
        history=history,
        evaluations=evaluator.evaluations,
        seconds=evaluator.seconds,
        settings={
            "n": n,
            "seed": seed,
            "objectives": evaluator.names,
            "space": space.name,
            **({"aggregate": aggregate} if len(objectives) > 1 else {}),
        },
        stop_reason=stop,
    )
