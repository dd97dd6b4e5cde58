"""Training-free statistics of NB201 networks: the NB201 setting around :func:`proxies.score`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from cbred.bench.nb201 import Arch, NB201Space, parse_arch
from cbred.proxies.api import ScoreResult, score_space
from cbred.proxies.passes import seeded
from torch import nn


def nb201_model(
    arch: Arch | str | int,
    seed: int = 0,
    channels: int = 16,
    cells_per_stage: int = 5,
    num_classes: int = 10,
    cell_affine: bool = True,
) -> nn.Module:
    """The NB201 network of ``arch`` with PyTorch's default initialisation drawn from ``seed``
    (``cell_affine=False``: the zero-cost-proxy reference cells, see
    :class:`bench.nb201_network.NB201Network`)."""
    from cbred.bench.nb201_network import build_network

    with seeded(seed, torch.device("cpu")):
        return build_network(arch, channels, cells_per_stage, num_classes, cell_affine)


def score_nb201(
    arch: Arch | str | int,
    proxies: Sequence[str] | None = None,
    dataset: str = "cifar10",
    batch_size: int = 64,
    seed: int = 0,
    channels: int = 16,
    cells_per_stage: int = 5,
    device: str | torch.device | None = None,
    cell_affine: bool = True,
) -> ScoreResult:
    """Score the NB201 network of ``arch`` (init and batch seeded by ``seed``) in the given
    setting: :func:`proxies.score_space` on :class:`bench.nb201.NB201Space`.  Architectures
    without a path from cell input to output get defined values (zero saliencies) or NaN with
    a reason, never an exception."""
    space = NB201Space(channels, cells_per_stage, dataset, cell_affine)
    index = arch if isinstance(arch, int) else space.index(parse_arch(arch))
    return score_space(space, index, proxies, batch_size, seed, device)
