"""PyTorch networks for NB201 architectures, with their parameter and FLOP counts.

The macro structure is the benchmark's: a 3×3 conv stem with batch norm, three
stages of ``N`` cells at ``C``, ``2C`` and ``4C`` channels joined by residual
reduction blocks, then batch norm, ReLU, global average pooling and a linear
classifier.  Module names follow the official implementation, so a state dict
saved from it loads here unchanged (and vice versa).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from cbred.bench.nb201 import EDGES, NUM_NODES, Arch, NB201Space, parse_arch
from torch import nn


class ReLUConvBN(nn.Module):
    """ReLU → Conv → BatchNorm: the benchmark's ``nor_conv`` operations.

    As in the official operations, the convolution has a bias exactly when the batch norm
    has no affine parameters (``affine=False``).
    """

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True
    ) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=not affine),
            nn.BatchNorm2d(c_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Zero(nn.Module):
    """The ``none`` operation: a zero tensor of the input's shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class AvgPool(nn.Module):
    """3×3 average pooling, stride 1, padding excluded from the mean."""

    def __init__(self) -> None:
        super().__init__()
        self.op = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


def make_op(name: str, channels: int, affine: bool = True) -> nn.Module:
    """The module for one cell edge (input and output both ``channels`` wide)."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0, affine)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1, affine)
    if name == "avg_pool_3x3":
        return AvgPool()
    raise ValueError(f"unknown NB201 operation {name!r}")


class Cell(nn.Module):
    """One NB201 cell: node j is the sum of its incoming edges' outputs."""

    def __init__(self, arch: Arch, channels: int, affine: bool = True) -> None:
        super().__init__()
        self.arch = arch
        self.layers = nn.ModuleList(make_op(op, channels, affine) for op in arch.ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for target in range(1, NUM_NODES):
            total = None
            for e, (source, tgt) in enumerate(EDGES):
                if tgt == target:
                    out = self.layers[e](nodes[source])
                    total = out if total is None else total + out
            nodes.append(total)
        return nodes[-1]


class ResidualReduction(nn.Module):
    """Stride-2 residual block between stages (ResNet basic block)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


def stage_channels(channels: int, cells_per_stage: int) -> list[tuple[int, bool]]:
    """(width, is_reduction) for each block after the stem, in order."""
    blocks: list[tuple[int, bool]] = []
    for stage in range(3):
        if stage:
            blocks.append((channels * 2**stage, True))
        blocks.extend([(channels * 2**stage, False)] * cells_per_stage)
    return blocks


class MacroNetwork(nn.Module):
    """The NB201 macro skeleton around cells made by ``make_cell(width)``; returns logits.

    Stem, stages of ``cells_per_stage`` cells joined by residual reductions, then batch
    norm, ReLU, global pooling and the classifier: shared by the benchmark's networks
    and by supernets whose cells hold several operations per edge.
    """

    def __init__(
        self,
        make_cell: Callable[[int], nn.Module],
        channels: int,
        cells_per_stage: int,
        num_classes: int,
    ) -> None:
        super().__init__()
        if channels < 1 or cells_per_stage < 0 or num_classes < 1:
            raise ValueError(
                f"need channels >= 1, cells_per_stage >= 0, num_classes >= 1; got "
                f"{channels}, {cells_per_stage}, {num_classes}"
            )
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        self.cells = nn.ModuleList()
        c_prev = channels
        for width, reduction in stage_channels(channels, cells_per_stage):
            self.cells.append(ResidualReduction(c_prev, width) if reduction else make_cell(width))
            c_prev = width
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feature = self.stem(x)
        for cell in self.cells:
            feature = cell(feature)
        out = self.global_pooling(self.lastact(feature))
        return self.classifier(out.flatten(1))


class NB201Network(MacroNetwork):
    """The NB201 network for one cell; ``forward`` returns the logits.

    ``cell_affine=False`` builds the cells as the zero-cost-proxy reference code does
    (Abdelfattah et al.'s NB201 model): batch norm without affine parameters, hence
    convolutions with a bias.  With the same weights, in training mode, the outputs, the
    weight gradients and the activation codes equal the official network's (batch norm
    removes the bias and, at initialisation, the affine map is the identity); only
    statistics that read the convolutions' raw outputs (Fisher) see the bias.
    """

    def __init__(
        self,
        arch: Arch | str,
        channels: int = 16,
        cells_per_stage: int = 5,
        num_classes: int = 10,
        cell_affine: bool = True,
    ) -> None:
        arch = parse_arch(arch)
        super().__init__(
            lambda width: Cell(arch, width, cell_affine), channels, cells_per_stage, num_classes
        )
        self.arch = arch


def build_network(
    arch: Arch | str | int,
    channels: int = 16,
    cells_per_stage: int = 5,
    num_classes: int = 10,
    cell_affine: bool = True,
) -> NB201Network:
    """Build the NB201 network for an architecture (string, :class:`Arch` or index);
    ``cell_affine=False``: the zero-cost-proxy reference convention (see :class:`NB201Network`)."""
    return NB201Network(parse_arch(arch), channels, cells_per_stage, num_classes, cell_affine)


def _conv_cost(c_in: int, c_out: int, kernel: int, size: int) -> tuple[int, int]:
    """(params, multiply-accumulates) of a bias-free square conv with output size×size."""
    params = c_in * c_out * kernel * kernel
    return params, params * size * size


def count_params_flops(
    arch: Arch | str | int,
    channels: int = 16,
    cells_per_stage: int = 5,
    num_classes: int = 10,
    resolution: int = 32,
) -> tuple[int, int]:
    """Analytic (parameters, FLOPs) of :func:`build_network` for one input image.

    FLOPs follow the benchmark's convention: multiply-accumulates of the
    convolutions and the linear layer (bias included); batch norm, pooling,
    activations and additions are not counted.  Batch-norm affine weights are
    parameters.
    """
    arch = parse_arch(arch)
    params, flops = _conv_cost(3, channels, 3, resolution)
    params += 2 * channels
    size, c_prev = resolution, channels
    for width, reduction in stage_channels(channels, cells_per_stage):
        if reduction:
            size = (size + 1) // 2
            for c_in, kernel in ((c_prev, 3), (width, 3)):
                p, f = _conv_cost(c_in, width, kernel, size)
                params, flops = params + p + 2 * width, flops + f
            p, f = _conv_cost(c_prev, width, 1, size)
            params, flops = params + p, flops + f
        else:
            for op in arch.ops:
                kernel = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}.get(op)
                if kernel:
                    p, f = _conv_cost(width, width, kernel, size)
                    params, flops = params + p + 2 * width, flops + f
        c_prev = width
    params += 2 * c_prev + c_prev * num_classes + num_classes
    flops += c_prev * num_classes + num_classes
    return params, flops


def space_costs(
    space: NB201Space, channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """(params, FLOPs) arrays over the whole space, in index order."""
    costs = np.array(
        [count_params_flops(a, channels, cells_per_stage, num_classes) for a in space],
        dtype=np.int64,
    )
    return costs[:, 0], costs[:, 1]
