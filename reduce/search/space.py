"""What searches search: a :class:`~reduce.subspace.Subspace`, or any space taken whole.

Searches (best-of-N, REA, AREA, efficiency-constrained variants) run on one type, the
:class:`~reduce.subspace.Subspace`: members of a space of the contract in
:mod:`reduce.space`, uniform sampling, membership and mutation inside. A space object is
searched whole (:func:`as_subspace`), a C-BRED subspace as it is, a FLOPs-feasible or
table-covered part of either through :meth:`Subspace.restrict`.

Mutation inside a restricted space only proposes neighbours that are members; an
architecture with no member neighbour is replaced by a uniformly drawn member (the
"resample" rule), so a search can never leave its space.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from cbred.reduce.subspace import Subspace


def as_subspace(space: Subspace | Any) -> Subspace:
    """A Subspace itself, or every architecture of a space object."""
    if isinstance(space, Subspace):
        return space
    if hasattr(space, "arch_str") and hasattr(space, "__len__"):
        return Subspace.full(space)
    raise TypeError(f"expected a space or a Subspace, got {type(space).__name__}")


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


class GridSpace:
    """``values**positions`` codes, neighbours one digit apart: a synthetic space for tests
    of the searches (its networks are one linear layer; searches never build them)."""

    input_shape = (1, 1)

    def __init__(self, positions: int, values: int, name: str = "grid") -> None:
        self.table = grid_neighbour_table(positions, values)
        self.name = name

    def __len__(self) -> int:
        return int(self.table.shape[0])

    def arch_str(self, i: int) -> str:
        return f"{self.name}:{int(i)}"

    def build(self, i: int) -> Any:
        import torch

        return torch.nn.Linear(1, 1)

    def neighbour_table(self) -> np.ndarray:
        return self.table


def grid_space(positions: int, values: int, name: str = "grid") -> Subspace:
    """The whole grid of ``values**positions`` codes as a searchable Subspace."""
    return Subspace.full(GridSpace(positions, values, name))
