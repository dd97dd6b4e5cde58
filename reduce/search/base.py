"""Budgets, the charging evaluator and the history every search keeps.

Budget rules (the same for every search):

* a :class:`Budget` caps the number of *charged* evaluations and the simulated seconds;
  an evaluation that would take either past its cap is refused (``BudgetExhausted``),
  so a cap is never exceeded and is met exactly when the search could afford it;
* a repeated query of an architecture already evaluated is answered from memory and is
  **free** by default (its row in the history says ``repeat``), as with the score
  store where a repeated run costs nothing; ``charge_repeats=True`` charges it again,
  as when a benchmark query stands for re-training;
* a query outside the search space raises ``ValueError``: a search inside a Subspace
  can never evaluate a non-member;
* with free repeats a search ends once every member has been evaluated, or after
  :data:`MAX_STALL` consecutive repeats, so it always terminates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from cbred.reduce.search.objective import Objective
from cbred.reduce.subspace import Subspace

MAX_STALL = 1_000
"""Consecutive free repeats after which a search is considered stalled and stops."""

HISTORY_COLUMNS = ("step", "phase", "index", "repeat", "evaluations", "seconds")


class BudgetExhausted(Exception):
    """Raised by :meth:`Evaluator.evaluate` when a query cannot be afforded; says why."""


@dataclass(frozen=True)
class Budget:
    """Caps on charged evaluations and on simulated seconds (``None``: no cap)."""

    evaluations: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.evaluations is not None and (
            not isinstance(self.evaluations, int) or self.evaluations < 0
        ):
            raise ValueError(f"evaluation budget must be an int >= 0, got {self.evaluations!r}")
        if self.seconds is not None and not (self.seconds >= 0 and math.isfinite(self.seconds)):
            raise ValueError(f"seconds budget must be a finite number >= 0, got {self.seconds!r}")

    @property
    def unlimited(self) -> bool:
        return self.evaluations is None and self.seconds is None


@dataclass(eq=False)
class Evaluator:
    """Evaluates architectures of ``space`` with ``objectives``, charging ``budget``.

    One query evaluates every objective on the architecture and counts as one
    evaluation costing the sum of their seconds.  Every query is appended to the
    history; :meth:`history_frame` returns it as a DataFrame with one column per
    objective.
    """

    space: Subspace
    objectives: Sequence[Objective]
    budget: Budget = field(default_factory=Budget)
    charge_repeats: bool = False
    phase: str = "search"
    evaluations: int = field(default=0, init=False)
    seconds: float = field(default=0.0, init=False)
    rows: list[dict[str, Any]] = field(default_factory=list, init=False)
    memo: dict[int, tuple[float, ...]] = field(default_factory=dict, init=False)
    _stall: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if not self.objectives:
            raise ValueError("an evaluator needs at least one objective")
        names = [o.name for o in self.objectives]
        if len(set(names)) != len(names):
            raise ValueError(f"objective names must be distinct, got {names}")

    @property
    def names(self) -> list[str]:
        return [o.name for o in self.objectives]

    def _charge(self, index: int) -> float:
        """Seconds this query would cost; raises when either cap forbids it."""
        cost = float(sum(o.seconds(index) for o in self.objectives))
        cap_e, cap_s = self.budget.evaluations, self.budget.seconds
        if cap_e is not None and self.evaluations + 1 > cap_e:
            raise BudgetExhausted(f"evaluation budget {cap_e} spent")
        if cap_s is not None and self.seconds + cost > cap_s:
            raise BudgetExhausted(
                f"seconds budget {cap_s} would be exceeded ({self.seconds:.3f} + {cost:.3f})"
            )
        return cost

    def evaluate(self, index: int) -> tuple[float, ...]:
        """The objectives' values at ``index`` (a member), charged per the budget rules."""
        index = int(index)
        if index not in self.space:
            raise ValueError(
                f"architecture {index} is not a member of search space {self.space.name!r}"
            )
        repeat = index in self.memo
        if repeat and not self.charge_repeats:
            if self._stall >= MAX_STALL:
                raise BudgetExhausted(f"stalled: {MAX_STALL} consecutive repeated queries")
            if len(self.memo) == len(self.space):
                raise BudgetExhausted("every member of the space has been evaluated")
            self._stall += 1
            values = self.memo[index]
        else:
            cost = self._charge(index)
            values = tuple(float(o.value(index)) for o in self.objectives)
            self.memo[index] = values
            self.evaluations += 1
            self.seconds += cost
            self._stall = 0
        self.rows.append(
            {
                "step": len(self.rows),
                "phase": self.phase,
                "index": index,
                "repeat": repeat,
                "evaluations": self.evaluations,
                "seconds": self.seconds,
                **dict(zip(self.names, values)),
            }
        )
        return values

    def history_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=[*HISTORY_COLUMNS, *self.names])


@dataclass
class SearchResult:
    """A finished search: the chosen architecture, its value, and the full history.

    ``history`` has one row per query (``step``, ``phase``, ``index``, ``repeat``, the
    cumulative charged ``evaluations`` and simulated ``seconds`` of that phase, and one
    column per objective).  ``evaluations``/``seconds`` total the charges of all phases.
    """

    method: str
    best: int
    best_value: float
    history: pd.DataFrame
    evaluations: int
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)
    stop_reason: str = ""
