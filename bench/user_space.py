"""Data for a user's space that has no ``batch(size, seed)``: a named data set stands in.

The space contract leaves ``batch`` optional; data-dependent statistics still need one, so
the CLI pairs such a space with a readable data set (:func:`bench.datasets.get_batch`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch
from cbred.bench.datasets import RESOLUTION, canonical_dataset, get_batch


@lru_cache(maxsize=8)
def _batch(dataset: str, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    return get_batch(dataset, batch_size=size, seed=seed)


class WithData:
    """``space`` with ``batch(size, seed)`` drawn from ``dataset``; every other attribute is
    the space's own. Pickles as its two parts, so workers rebuild it."""

    def __init__(self, space: Any, dataset: str) -> None:
        self.space = space
        self.dataset = canonical_dataset(dataset)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("space", "dataset"):
            raise AttributeError(name)
        return getattr(self.space, name)

    def __len__(self) -> int:
        return len(self.space)

    def batch(self, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = _batch(self.dataset, size, seed)
        shape = tuple(self.space.input_shape)[1:]
        if tuple(x.shape[1:]) != shape:
            raise ValueError(
                f"data set {self.dataset!r} gives inputs of shape {tuple(x.shape[1:])} "
                f"({RESOLUTION[self.dataset]} px) but the space expects {shape}; give the "
                "space a batch(size, seed) or choose another scoring data set (--score-data)"
            )
        return x, y


def with_data(space: Any, dataset: str) -> WithData:
    """``space`` paired with ``dataset`` for its scoring batches."""
    return WithData(space, dataset)
