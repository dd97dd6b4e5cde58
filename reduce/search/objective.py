"""What a search optimises: a value per architecture, its direction and its simulated cost.

An :class:`Objective` answers ``value(index)`` and ``seconds(index)`` (the simulated
cost of one evaluation, charged against a seconds budget).  Three sources exist:

* :class:`TableObjective` — a statistic looked up in a precomputed table (a score store,
  a Parquet/CSV export); the fast path for experiments.
* :class:`LiveProxyObjective` — a statistic of any space's architecture computed on demand
  (:class:`reduce.live.LiveScores`: fused with the search's other statistics, memoised, and
  kept in a score store when given one, so a search resumes and shares work).
* :class:`AccuracyObjective` — benchmark accuracy (an array, or the space's ``accuracy``),
  standing in for training.  The bundled table has no training times, so each query is
  charged a fixed, documented number of seconds (:data:`TRAIN_SECONDS`).

Simulated costs are fixed numbers rather than measured wall time, so that the same seed
gives the same history on any machine.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from cbred.reduce.live import LiveScores
from cbred.reduce.names import PROXY_SECONDS, TRAIN_SECONDS


@runtime_checkable
class Objective(Protocol):
    """A value per architecture id, whether higher or lower is better, and its cost."""

    name: str
    direction: str

    def value(self, index: int) -> float: ...

    def seconds(self, index: int) -> float: ...


def fitness(objective: Objective, value: float) -> float:
    """``value`` oriented so that larger is better; NaN (a failed statistic) is −inf."""
    if math.isnan(value):
        return -math.inf
    return value if objective.direction == "higher" else -value


def _check_direction(direction: str) -> None:
    if direction not in ("higher", "lower"):
        raise ValueError(f"direction must be 'higher' or 'lower', got {direction!r}")


def _check_seconds(seconds: float) -> None:
    if not (seconds >= 0 and math.isfinite(seconds)):
        raise ValueError(f"seconds per evaluation must be a finite number >= 0, got {seconds}")


def registered_direction(statistic: str) -> str:
    """The registered direction of a training-free statistic (``proxies.get_proxy``)."""
    from cbred.proxies import get_proxy

    return get_proxy(statistic).direction


@dataclass(frozen=True, eq=False)
class TableObjective:
    """A statistic looked up per architecture id in a table (NaN = failed, worst)."""

    name: str
    values: Mapping[int, float] | pd.Series
    direction: str = ""
    cost: float = PROXY_SECONDS
    _lookup: dict[int, float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        direction = self.direction or registered_direction(self.name)
        _check_direction(direction)
        _check_seconds(self.cost)
        items = self.values.items()
        object.__setattr__(self, "direction", direction)
        object.__setattr__(self, "_lookup", {int(k): float(v) for k, v in items})

    @property
    def covered(self) -> np.ndarray:
        """Sorted ids the table has a row for."""
        return np.array(sorted(self._lookup), dtype=np.int64)

    def value(self, index: int) -> float:
        try:
            return self._lookup[int(index)]
        except KeyError:
            raise KeyError(
                f"statistic {self.name!r} has no value for architecture {index}; restrict the "
                "search space to the table's coverage"
            ) from None

    def seconds(self, index: int) -> float:
        return self.cost


@dataclass(eq=False)
class LiveProxyObjective:
    """Statistic ``name`` of :class:`reduce.live.LiveScores` ``scores``: computed on first
    request together with the other statistics of ``scores`` (one fused pass), memoised,
    and read from / written to ``scores.store`` when it has one."""

    name: str
    scores: LiveScores
    cost: float = PROXY_SECONDS
    direction: str = field(init=False)

    def __post_init__(self) -> None:
        if self.name not in self.scores.statistics:
            raise ValueError(
                f"statistic {self.name!r} is not one of {list(self.scores.statistics)}"
            )
        self.direction = registered_direction(self.name)
        _check_seconds(self.cost)

    def value(self, index: int) -> float:
        return self.scores.value(index, self.name)

    def seconds(self, index: int) -> float:
        return self.cost


def live_objectives(
    statistics: Sequence[str],
    space: Any,
    batch_size: int = 64,
    seed: int = 0,
    device: str | None = None,
    store: str | os.PathLike[str] | None = None,
) -> list[LiveProxyObjective]:
    """One :class:`LiveProxyObjective` per statistic, sharing one fused, memoised
    :class:`reduce.live.LiveScores` (network and batch seeded by ``seed``)."""
    scores = LiveScores(tuple(statistics), space, batch_size, seed, device, store)
    return [LiveProxyObjective(name, scores) for name in statistics]


@dataclass(frozen=True, eq=False)
class AccuracyObjective:
    """Benchmark accuracy (%) on ``dataset``, charged ``cost`` seconds per query: from
    ``accuracies`` (an array over the space) or the space's ``accuracy(i, dataset)``."""

    dataset: str
    cost: float = TRAIN_SECONDS
    accuracies: np.ndarray | None = None
    space: Any = None
    direction: str = "higher"

    def __post_init__(self) -> None:
        _check_seconds(self.cost)
        if self.accuracies is None and not callable(getattr(self.space, "accuracy", None)):
            raise ValueError(
                "an accuracy objective needs accuracies or a space with accuracy(i, dataset)"
            )
        if self.accuracies is not None:
            values = np.asarray(self.accuracies, dtype=np.float64)
            object.__setattr__(self, "accuracies", values)

    @property
    def name(self) -> str:
        return f"accuracy[{self.dataset}]"

    def value(self, index: int) -> float:
        if self.accuracies is not None:
            return float(self.accuracies[int(index)])
        return float(self.space.accuracy(int(index), self.dataset))

    def seconds(self, index: int) -> float:
        return self.cost
