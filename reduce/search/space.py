"""Search spaces as searchers see them: members, uniform sampling and one-edge mutation.

A :class:`SearchSpace` is a set of member ids inside a *universe* of ids whose one-edge
neighbourhoods are tabulated (row ``i`` of ``neighbour_table`` lists every architecture
that differs from ``i`` in exactly one position).  The full NAS-Bench-201 space, a
C-BRED :class:`~reduce.subspace.Subspace`, a FLOPs-feasible part of either, or a small
synthetic grid for tests all have this one shape, so every search runs unchanged on each.

Mutation inside a restricted space only proposes neighbours that are members; an
architecture with no member neighbour is replaced by a uniformly drawn member (the
"resample" rule), so a search can never leave its space.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from cbred.bench.nb201 import NB201Space, default_space
from cbred.reduce.subspace import Subspace


@dataclass(frozen=True, eq=False)
class SearchSpace:
    """Members (sorted distinct ids) of a universe with tabulated one-edge neighbours."""

    name: str
    neighbour_table: np.ndarray
    members: np.ndarray
    _mask: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        table = np.asarray(self.neighbour_table, dtype=np.int64)
        if table.ndim != 2 or table.shape[0] == 0:
            raise ValueError(f"neighbour table must be a non-empty (U, D) array, got {table.shape}")
        if table.size and (table.min() < 0 or table.max() >= table.shape[0]):
            raise ValueError(f"neighbour ids must lie in 0..{table.shape[0] - 1}")
        members = np.unique(np.asarray(self.members, dtype=np.int64).reshape(-1))
        if members.size == 0:
            raise ValueError(f"search space {self.name!r} has no members")
        if members[0] < 0 or members[-1] >= table.shape[0]:
            raise IndexError(
                f"member ids must lie in 0..{table.shape[0] - 1}, got {members[0]}..{members[-1]}"
            )
        mask = np.zeros(table.shape[0], dtype=bool)
        mask[members] = True
        object.__setattr__(self, "neighbour_table", table)
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
        row = self.neighbour_table[int(index)]
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
        return SearchSpace(name or f"{self.name}∩", self.neighbour_table, inside)


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


@lru_cache(maxsize=1)
def nb201_search_space() -> SearchSpace:
    """All 15,625 NB201 architectures, ids = NATS-Bench indices."""
    space = default_space()
    ops = space.op_matrix.astype(np.int64)
    n_ops = int(ops.max()) + 1
    codes = ops @ (n_ops ** np.arange(ops.shape[1], dtype=np.int64))
    index_of_code = np.empty_like(codes)
    index_of_code[codes] = np.arange(codes.size)
    by_code = grid_neighbour_table(ops.shape[1], n_ops)
    table = index_of_code[by_code[codes]]
    return SearchSpace(NB201Space.name, table, np.arange(len(space)))


def as_search_space(space: SearchSpace | Subspace | NB201Space) -> SearchSpace:
    """A :class:`SearchSpace` for the full NB201 space, a Subspace, or itself."""
    if isinstance(space, SearchSpace):
        return space
    if isinstance(space, NB201Space):
        return nb201_search_space()
    if isinstance(space, Subspace):
        if space.space != NB201Space.name:
            raise ValueError(f"unknown space {space.space!r} of subspace; expected 'nb201'")
        return nb201_search_space().restrict(space.indices, name=f"subspace[{len(space)}]")
    raise TypeError(f"expected a SearchSpace, Subspace or NB201Space, got {type(space).__name__}")
