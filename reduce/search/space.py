"""Search spaces as searchers see them: members, uniform sampling and one-edge mutation.

A :class:`SearchSpace` is a set of member ids inside a *universe* of ids (the indices of a
space) with their neighbourhoods: tabulated (row ``i`` of ``neighbour_table`` lists every
architecture one mutation away from ``i``; NB201 provides its table), or asked of the
space's ``neighbours(i)``, or none (then a mutation draws a random member).  Any space of
the contract in :mod:`reduce.space`, a C-BRED :class:`~reduce.subspace.Subspace`, a
FLOPs-feasible part of either, or a small synthetic grid for tests all have this one shape,
so every search runs unchanged on each (:func:`as_search_space`).

Mutation inside a restricted space only proposes neighbours that are members; an
architecture with no member neighbour is replaced by a uniformly drawn member (the
"resample" rule), so a search can never leave its space.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from cbred.reduce.space import space_name
from cbred.reduce.subspace import Subspace


@dataclass(frozen=True, eq=False)
class SearchSpace:
    """Members (sorted distinct ids) of a universe of ``size`` ids, with neighbours from a
    ``neighbour_table`` (U, D) or a ``neighbour_fn(i)``, or none."""

    name: str
    neighbour_table: np.ndarray | None
    members: np.ndarray
    neighbour_fn: Callable[[int], Sequence[int]] | None = None
    size: int | None = None
    _mask: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.neighbour_table is not None:
            table = np.asarray(self.neighbour_table, dtype=np.int64)
            if table.ndim != 2 or table.shape[0] == 0:
                raise ValueError(
                    f"neighbour table must be a non-empty (U, D) array, got {table.shape}"
                )
            if table.size and (table.min() < 0 or table.max() >= table.shape[0]):
                raise ValueError(f"neighbour ids must lie in 0..{table.shape[0] - 1}")
            universe = table.shape[0]
        elif self.size is not None and self.size >= 1:
            table, universe = None, int(self.size)
        else:
            raise ValueError("a search space needs a neighbour table or a universe size >= 1")
        members = np.unique(np.asarray(self.members, dtype=np.int64).reshape(-1))
        if members.size == 0:
            raise ValueError(f"search space {self.name!r} has no members")
        if members[0] < 0 or members[-1] >= universe:
            raise IndexError(
                f"member ids must lie in 0..{universe - 1}, got {members[0]}..{members[-1]}"
            )
        mask = np.zeros(universe, dtype=bool)
        mask[members] = True
        object.__setattr__(self, "neighbour_table", table)
        object.__setattr__(self, "size", universe)
        object.__setattr__(self, "members", members)
        object.__setattr__(self, "_mask", mask)

    def __len__(self) -> int:
        return int(self.members.size)

    def __iter__(self) -> Iterator[int]:
        return (int(i) for i in self.members)

    def __contains__(self, index: object) -> bool:
        if not isinstance(index, (int, np.integer)):
            return False
        return 0 <= int(index) < self._mask.size and bool(self._mask[int(index)])

    @property
    def universe_size(self) -> int:
        return int(self._mask.size)

    def random(self, rng: np.random.Generator) -> int:
        """One member drawn uniformly."""
        return int(self.members[rng.integers(self.members.size)])

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` distinct members drawn uniformly (in draw order)."""
        if not 0 <= n <= len(self):
            raise ValueError(f"cannot draw {n} distinct members from {self.name!r} of {len(self)}")
        return rng.choice(self.members, size=n, replace=False)

    def neighbours(self, index: int) -> np.ndarray:
        """One-edge neighbours of ``index`` (any universe id) that are members."""
        if not 0 <= int(index) < self.universe_size:
            raise IndexError(f"id {index} out of range 0..{self.universe_size - 1}")
        if self.neighbour_table is not None:
            row = self.neighbour_table[int(index)]
        elif self.neighbour_fn is not None:
            row = np.asarray(list(self.neighbour_fn(int(index))), dtype=np.int64).reshape(-1)
            row = row[(row >= 0) & (row < self.universe_size)]
        else:
            return np.empty(0, dtype=np.int64)
        return row[self._mask[row]]

    def mutate(self, index: int, rng: np.random.Generator) -> int:
        """A uniformly chosen member neighbour of ``index``; a random member when it has none.

        On the full NB201 space this is "change one edge to a different operation", each of
        the 24 neighbours equally likely.
        """
        inside = self.neighbours(index)
        if inside.size == 0:
            return self.random(rng)
        return int(inside[rng.integers(inside.size)])

    def restrict(self, keep: np.ndarray, name: str | None = None) -> SearchSpace:
        """The members also in ``keep`` (ids, or a boolean mask over the universe)."""
        keep = np.asarray(keep)
        if keep.dtype == bool:
            if keep.shape != self._mask.shape:
                raise ValueError(f"mask has shape {keep.shape}, expected {self._mask.shape}")
            inside = self.members[keep[self.members]]
        else:
            inside = np.intersect1d(self.members, keep.astype(np.int64))
        if inside.size == 0:
            raise ValueError(f"restricting {self.name!r} leaves no members")
        return SearchSpace(
            name or f"{self.name}∩", self.neighbour_table, inside, self.neighbour_fn, self.size
        )


def grid_neighbour_table(positions: int, values: int) -> np.ndarray:
    """Neighbour table of all ``values**positions`` base-``values`` codes (digit p = position p)."""
    if positions < 1 or values < 2:
        raise ValueError(f"a grid needs positions >= 1 and values >= 2, got {positions}, {values}")
    codes = np.arange(values**positions, dtype=np.int64)
    columns = []
    for p in range(positions):
        weight = values**p
        digit = (codes // weight) % values
        for shift in range(1, values):
            columns.append(codes + (((digit + shift) % values) - digit) * weight)
    return np.stack(columns, axis=1)


def grid_space(positions: int, values: int, name: str = "grid") -> SearchSpace:
    """The full grid of ``values**positions`` codes; a small synthetic space for tests."""
    table = grid_neighbour_table(positions, values)
    return SearchSpace(name, table, np.arange(table.shape[0]))


def from_space(space: Any, members: np.ndarray | None = None) -> SearchSpace:
    """The search view of a space object: its ``neighbour_table()`` when it has one (fast),
    else its ``neighbours(i)``, else no neighbours."""
    table_of = getattr(space, "neighbour_table", None)
    table = table_of() if callable(table_of) else None
    fn = getattr(space, "neighbours", None)
    ids = np.arange(len(space)) if members is None else members
    return SearchSpace(space_name(space), table, ids, fn if callable(fn) else None, len(space))


def as_search_space(space: SearchSpace | Subspace | Any) -> SearchSpace:
    """A :class:`SearchSpace` for a space object, a Subspace, or itself."""
    if isinstance(space, SearchSpace):
        return space
    if isinstance(space, Subspace):
        full = from_space(space.full_space())
        return full.restrict(space.indices, name=f"subspace[{len(space)}]")
    if hasattr(space, "arch_str") and hasattr(space, "__len__"):
        return from_space(space)
    raise TypeError(f"expected a space, a Subspace or a SearchSpace, got {type(space).__name__}")
