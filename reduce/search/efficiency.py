"""Efficiency-aware searches: a hard cost budget and a soft cost-penalised reward.

* Hard budget — maximise Acc(a) subject to cost(a) <= τ.  Rather than rewarding
  ``Acc · 1{cost <= τ}`` (which wastes evaluations on infeasible architectures), the
  search space itself is restricted to the feasible members (:func:`within_budget`),
  so every search above runs unchanged and can never return an infeasible answer.
* Soft penalty — the MnasNet-style reward ``value · (cost/τ)^γ`` (:class:`PenalisedObjective`),
  with γ < 0 penalising architectures above the target and mildly favouring those below.

Costs are FLOPs or parameters (:func:`space_costs`, from a space's ``costs()``) or any
per-architecture array a user supplies (e.g. measured latency).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from cbred.reduce.search.objective import Objective
from cbred.reduce.subspace import Subspace

COST_KINDS = ("flops", "params")


def space_costs(space: object, kind: str = "flops") -> np.ndarray:
    """(N,) analytic FLOPs or parameter counts of every architecture, from ``space.costs()``."""
    if kind not in COST_KINDS:
        raise ValueError(f"unknown cost {kind!r}; expected one of {', '.join(COST_KINDS)}")
    costs = getattr(space, "costs", None)
    if not callable(costs):
        raise ValueError(
            f"space {getattr(space, 'name', type(space).__name__)!r} has no costs(); pass a "
            "per-architecture cost array instead"
        )
    return np.asarray(costs()[kind], dtype=np.float64)


def within_budget(space: Subspace, costs: np.ndarray, limit: float) -> Subspace:
    """The members of ``space`` whose cost is at most ``limit`` (hard constraint)."""
    costs = np.asarray(costs, dtype=np.float64)
    if costs.shape != (space.universe_size,):
        raise ValueError(f"costs have shape {costs.shape}, expected ({space.universe_size},)")
    if not math.isfinite(limit):
        raise ValueError(f"cost limit must be finite, got {limit}")
    feasible = costs <= limit
    if not feasible[space.members].any():
        cheapest = float(costs[space.members].min())
        raise ValueError(f"no member of {space.name!r} costs <= {limit} (cheapest {cheapest})")
    return space.restrict(feasible, name=f"{space.name}[cost<={limit:g}]")


def soft_reward(value: float, cost: float, target: float, gamma: float) -> float:
    """``value · (cost/target)^gamma`` (γ < 0 penalises cost above the target)."""
    return value * (cost / target) ** gamma


@dataclass(frozen=True, eq=False)
class PenalisedObjective:
    """``base`` (higher is better, non-negative, e.g. accuracy) times ``(cost/target)^γ``."""

    base: Objective
    costs: np.ndarray
    target: float
    gamma: float = -0.07

    def __post_init__(self) -> None:
        if self.base.direction != "higher":
            raise ValueError(
                f"the soft penalty multiplies a higher-is-better value; {self.base.name!r} "
                "is lower-is-better"
            )
        if not (self.target > 0 and math.isfinite(self.target)):
            raise ValueError(f"target cost must be a positive number, got {self.target}")
        costs = np.asarray(self.costs, dtype=np.float64)
        if np.any(costs <= 0):
            raise ValueError("costs must be positive for the (cost/target)^gamma penalty")
        object.__setattr__(self, "costs", costs)

    @property
    def name(self) -> str:
        return f"{self.base.name}*(cost/{self.target:g})^{self.gamma:g}"

    @property
    def direction(self) -> str:
        return "higher"

    def value(self, index: int) -> float:
        raw = self.base.value(index)
        if raw < 0:
            raise ValueError(
                f"{self.base.name} of {index} is {raw} < 0; the soft penalty needs values >= 0"
            )
        return soft_reward(raw, float(self.costs[int(index)]), self.target, self.gamma)

    def seconds(self, index: int) -> float:
        return self.base.seconds(index)
