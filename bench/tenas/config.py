"""TE-NAS settings, importable without torch (the CLI builds its flags from the defaults)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TenasConfig:
    """Sizes of the two measured supernets (CPU-friendly defaults; see ``bench.perf_tenas``).

    NTK: a :class:`SuperNet` of ``ntk_channels`` × ``ntk_cells`` per stage on a batch of
    ``ntk_batch`` CIFAR-10 images average-pooled to ``ntk_resolution`` pixels.  Linear
    regions: a :class:`ThinSuperNet` of ``lr_channels`` × ``lr_cells`` on ``lr_samples``
    random ``lr_patch``×``lr_patch`` patches of ``lr_channels`` colour channels of the
    CIFAR-10 images.  ``repeats`` measurements are averaged per quantity.
    """

    ntk_channels: int = 8
    ntk_cells: int = 1
    ntk_batch: int = 16
    ntk_resolution: int = 16
    lr_channels: int = 1
    lr_cells: int = 1
    lr_samples: int = 500
    lr_patch: int = 3
    repeats: int = 3
    drop_none: bool = True

    def __post_init__(self) -> None:
        positive = {
            "ntk_channels": self.ntk_channels,
            "ntk_cells": self.ntk_cells,
            "ntk_resolution": self.ntk_resolution,
            "lr_cells": self.lr_cells,
            "lr_patch": self.lr_patch,
            "repeats": self.repeats,
        }
        for name, value in positive.items():
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.ntk_batch < 2 or self.lr_samples < 2:
            raise ValueError(
                f"ntk_batch and lr_samples must be >= 2, got {self.ntk_batch}, {self.lr_samples}"
            )
        if not 1 <= self.lr_channels <= 3:
            raise ValueError(f"lr_channels must be 1..3 (colour channels), got {self.lr_channels}")
        if self.ntk_resolution > 32 or self.lr_patch > 32:
            raise ValueError(
                f"ntk_resolution and lr_patch must be <= 32 (CIFAR images), got "
                f"{self.ntk_resolution}, {self.lr_patch}"
            )
