"""The NATS-Bench size search space (SSS): 32,768 channel configurations of one fixed cell.

Every architecture uses the same NB201 cell, :data:`GENOTYPE` (the best topology on
CIFAR-100 validation), in a five-layer skeleton: cell, stride-2 residual block, cell,
stride-2 residual block, cell, each layer with its own width from :data:`CANDIDATES`.
An architecture is written as the official string of the five widths, ``"8:16:24:32:64"``
(stem and first cell, first reduction, second cell, second reduction, third cell).

**Index order.**  Indices follow the official benchmark file, whose ``meta_archs`` list
was made by ``traverse_net(candidates, 5)`` in NATS-Bench's ``exps/NATS-Bench/main-sss.py``
and ``sss-collect.py`` (AutoDL-Projects): the row-major product of the candidates over the
five positions, i.e. ``itertools.product(CANDIDATES, repeat=5)``.  The *last* position
varies fastest: index 0 is ``8:8:8:8:8``, index 1 ``8:8:8:8:16``, index 8 ``8:8:8:16:8``,
and index ``sum(d[k] * 8 ** (4 - k))`` has width ``CANDIDATES[d[k]]`` at position ``k``.
Neither ``nats_bench`` nor ``xautodl`` exports the mapping (the file stores the list), so
the tests check it against that generator and through ``nats_bench`` on a tiny file.

Networks mirror xautodl's ``infer.shape.tiny`` (``DynamicShapeTinyNet``) module for
module, so its state dicts load unchanged.  Where a cell widens or narrows its input (the
second and third cells when their width differs from the preceding reduction's), the
edges leaving node 0 map ``c_in → c_out``: convolutions directly and ``skip_connect`` by
xautodl's stride-1 ``FactorizedReduce`` (1×1 convolution and batch norm, no ReLU).

Ground truth comes from the official SSS file through ``nats_bench`` (argument
``nats_path=`` or the ``CBRED_NATS_SSS_PATH`` environment variable); the benchmark
trained every network for 1, 12 and 90 epochs (``hp`` ``"01"``, ``"12"``, ``"90"``),
and 90 is the full schedule that the paper reports.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from cbred.bench.datasets import canonical_dataset
from cbred.bench.nb201 import EDGES, Arch
from cbred.bench.nb201_network import Cell, MacroNetwork, ReLUConvBN, ResidualReduction, make_op
from torch import nn

CANDIDATES: tuple[int, ...] = (8, 16, 24, 32, 40, 48, 56, 64)
"""Candidate widths of every layer, in the order that defines the index digits."""

NUM_LAYERS = 5
SPACE_SIZE = len(CANDIDATES) ** NUM_LAYERS  # 32,768
REDUCTIONS: tuple[bool, ...] = (False, True, False, True, False)
"""Whether each of the five layers is a stride-2 residual block (else a cell)."""

GENOTYPE = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)
"""The cell shared by every SSS network (NATS-Bench topology index 9930)."""

SSS_ENV = "CBRED_NATS_SSS_PATH"
EPOCHS: tuple[int, ...] = (1, 12, 90)
"""Training schedules in the benchmark file (``hp`` ``"01"``, ``"12"``, ``"90"``)."""

NUM_CLASSES = 10
"""Classes of the networks that :meth:`NATSSizeSpace.build` and the features assume (CIFAR-10)."""

FEATURES: tuple[str, ...] = ("op_usage", "flops_usage")
"""Whole-space graph features that :meth:`NATSSizeSpace.features` computes quickly."""

_NATS_NAMES = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16_120": "ImageNet16-120"}
_WIDTH_INDEX = {c: i for i, c in enumerate(CANDIDATES)}
_FORMAT = (
    f"expected {NUM_LAYERS} widths from {{{', '.join(map(str, CANDIDATES))}}} joined by ':', "
    "e.g. '8:16:24:32:64'"
)


class InvalidSizeArchitectureError(ValueError):
    """Raised for a string that is not an SSS architecture."""


class SizeIndexError(IndexError, ValueError):
    """An index outside 0..32767 (an IndexError that ``except ValueError`` also catches)."""


# --------------------------------------------------------------------------- networks


class ChannelChange(nn.Module):
    """xautodl's ``FactorizedReduce`` at stride 1: ``skip_connect`` between unequal widths.

    A bias-free 1×1 convolution and batch norm.  The official module also holds a ReLU
    that its stride-1 forward never calls; it has no state, so it is left out here.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 1, stride=1, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


def make_edge(name: str, c_in: int, c_out: int) -> nn.Module:
    """The module for one cell edge from ``c_in`` to ``c_out`` channels (stride 1)."""
    if c_in == c_out:
        return make_op(name, c_out)
    if name in ("nor_conv_1x1", "nor_conv_3x3"):
        kernel = int(name[-1])
        return ReLUConvBN(c_in, c_out, kernel, 1, kernel // 2)
    if name == "skip_connect":
        return ChannelChange(c_in, c_out)
    raise ValueError(
        f"operation {name!r} between unequal widths ({c_in} → {c_out}) is not needed by "
        "the size space's cell and is not implemented"
    )


class SizeCell(Cell):
    """An NB201 cell whose edges out of node 0 map ``c_in`` to ``c_out`` channels.

    Shares :class:`~cbred.bench.nb201_network.Cell`'s forward (node j sums its incoming
    edges); layers are numbered as in xautodl's ``InferCell``.
    """

    def __init__(self, arch: Arch, c_in: int, c_out: int) -> None:
        nn.Module.__init__(self)
        self.arch = arch
        self.layers = nn.ModuleList(
            make_edge(op, c_in if source == 0 else c_out, c_out)
            for op, (source, _) in zip(arch.ops, EDGES)
        )


def layer_reductions(num_layers: int) -> list[bool]:
    """Reduction flags of xautodl's shape-tiny net: N cells, block, N cells, block, N cells."""
    if num_layers % 3 != 2 or num_layers < 2:
        raise ValueError(f"a shape-tiny network has 3N + 2 layers, got {num_layers}")
    n = num_layers // 3
    return [False] * n + [True] + [False] * n + [True] + [False] * n


class NATSSizeNetwork(MacroNetwork):
    """The SSS network for one list of layer widths; ``forward`` returns the logits.

    Same module names as xautodl's ``DynamicShapeTinyNet`` (``stem``, ``cells``,
    ``lastact``, ``global_pooling``, ``classifier``); the forward pass is
    :class:`~cbred.bench.nb201_network.MacroNetwork`'s (the official one also returns the
    pooled features, as the first element of a pair).
    """

    def __init__(
        self, channels: Sequence[int], num_classes: int = 10, genotype: str = GENOTYPE
    ) -> None:
        nn.Module.__init__(self)  # MacroNetwork's layout, but with free per-layer widths
        channels = tuple(int(c) for c in channels)
        reductions = layer_reductions(len(channels))
        if min(channels) < 1 or num_classes < 1:
            raise ValueError(f"need positive widths and num_classes, got {channels}, {num_classes}")
        self.channels = channels
        self.arch = Arch.from_string(genotype)
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels[0], kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(channels[0]),
        )
        self.cells = nn.ModuleList()
        c_prev = channels[0]
        for width, reduction in zip(channels, reductions):
            if reduction:
                self.cells.append(ResidualReduction(c_prev, width))
            else:
                self.cells.append(SizeCell(self.arch, c_prev, width))
            c_prev = width
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)


# --------------------------------------------------------------------------- analytic costs


@dataclass(frozen=True)
class _Conv:
    """One convolution of every SSS network, with widths named by layer position."""

    op: str  # its cbred vocabulary type
    c_in: int  # position (0..4) whose width it reads; -1 for the RGB input
    c_out: int  # position whose width it writes
    kernel: int
    size: int  # output side length
    norm: bool  # followed by batch norm (2 * c_out parameters)
    only_if_resized: bool  # exists only when the two widths differ (ChannelChange)


def _convolutions(resolution: int, genotype: str = GENOTYPE) -> list[_Conv]:
    """Every convolution of the SSS skeleton, in network order."""
    arch = Arch.from_string(genotype)
    convs = [_Conv("conv3x3", -1, 0, 3, resolution, True, False)]
    size, prev = resolution, 0
    for pos, reduction in enumerate(REDUCTIONS):
        if reduction:
            size = (size + 1) // 2
            convs += [
                _Conv("conv3x3", prev, pos, 3, size, True, False),
                _Conv("conv3x3", pos, pos, 3, size, True, False),
                _Conv("conv1x1", prev, pos, 1, size, False, False),
            ]
        else:
            for op, (source, _) in zip(arch.ops, EDGES):
                c_in = prev if source == 0 else pos
                if op in ("nor_conv_1x1", "nor_conv_3x3"):
                    k = int(op[-1])
                    convs.append(_Conv(f"conv{k}x{k}", c_in, pos, k, size, True, False))
                elif op == "skip_connect":
                    if c_in != pos:
                        convs.append(_Conv("conv1x1", c_in, pos, 1, size, True, True))
                else:
                    raise NotImplementedError(f"no analytic cost for {op!r} in the size space")
        prev = pos
    return convs


def _width(channels: np.ndarray, position: int) -> np.ndarray:
    return np.full(len(channels), 3, dtype=np.int64) if position < 0 else channels[:, position]


def _conv_terms(
    channels: np.ndarray, resolution: int
) -> list[tuple[_Conv, np.ndarray, np.ndarray]]:
    """(conv, params, MACs) per convolution, each an array over the rows of ``channels``."""
    terms = []
    for conv in _convolutions(resolution):
        w_in, w_out = _width(channels, conv.c_in), _width(channels, conv.c_out)
        params = w_in * w_out * conv.kernel**2
        macs = params * conv.size**2
        params = params + (2 * w_out if conv.norm else 0)
        if conv.only_if_resized:
            present = w_in != w_out
            params, macs = params * present, macs * present
        terms.append((conv, params, macs))
    return terms


# --------------------------------------------------------------------------- the space


class NATSSizeSpace:
    """All 32,768 NATS-Bench SSS architectures, in the official index order.

    ``nats_path`` (else ``$CBRED_NATS_SSS_PATH``) names the official SSS file, its
    fast-mode directory, or an API object made by ``nats_bench.create``; it is read on
    the first :meth:`accuracy` call, and only that method needs it.
    """

    name = "nats_sss"
    input_shape: tuple[int, ...] = (1, 3, 32, 32)

    def __init__(self, nats_path: str | os.PathLike[str] | Any | None = None) -> None:
        self.nats_path = nats_path
        self._api: Any = None

    def __len__(self) -> int:
        return SPACE_SIZE

    # ----- indices and strings

    def _check_index(self, index: int) -> int:
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"an SSS index is an int, got {type(index).__name__}: {index!r}")
        if not 0 <= index < SPACE_SIZE:
            raise SizeIndexError(f"SSS index {index!r} out of range 0..{SPACE_SIZE - 1}")
        return int(index)

    def _as_index(self, arch: int | str) -> int:
        return self.index(arch) if isinstance(arch, str) else self._check_index(arch)

    def channels(self, index: int | str) -> tuple[int, ...]:
        """The five layer widths of an architecture (index or string)."""
        return tuple(int(c) for c in self.channel_matrix[self._as_index(index)])

    def arch_str(self, index: int) -> str:
        """The official string of the architecture at ``index``, e.g. ``'8:16:24:32:64'``."""
        return ":".join(map(str, self.channels(self._check_index(index))))

    def index(self, arch_str: str) -> int:
        """The index of an official SSS string; raises for anything else."""
        if not isinstance(arch_str, str):
            raise InvalidSizeArchitectureError(
                f"{arch_str!r} is not an SSS architecture string: {_FORMAT}"
            )
        parts = arch_str.split(":")
        digits = [
            _WIDTH_INDEX.get(int(p)) if p.isdigit() and p == str(int(p)) else None for p in parts
        ]
        if len(parts) != NUM_LAYERS or None in digits:
            raise InvalidSizeArchitectureError(
                f"{arch_str!r} is not an SSS architecture string: {_FORMAT}"
            )
        index = 0
        for digit in digits:
            index = index * len(CANDIDATES) + digit  # position 0 most significant
        return index

    @cached_property
    def channel_matrix(self) -> np.ndarray:
        """(32768, 5) int64: the width of each layer for each index (last varies fastest)."""
        base = len(CANDIDATES)
        index = np.arange(SPACE_SIZE, dtype=np.int64)
        digits = np.stack(
            [(index // base ** (NUM_LAYERS - 1 - k)) % base for k in range(NUM_LAYERS)], axis=1
        )
        matrix = np.asarray(CANDIDATES, dtype=np.int64)[digits]
        matrix.setflags(write=False)
        return matrix

    def neighbours(self, index: int | str) -> list[int]:
        """Indices of the 35 architectures that differ from ``index`` at one position."""
        i = self._as_index(index)
        base = len(CANDIDATES)
        out = []
        for k in range(NUM_LAYERS):
            weight = base ** (NUM_LAYERS - 1 - k)
            digit = (i // weight) % base
            out += [i + (d - digit) * weight for d in range(base) if d != digit]
        return out

    def sample(self, n: int, seed: int) -> np.ndarray:
        """``n`` distinct indices drawn uniformly with ``seed``."""
        if not 0 <= n <= SPACE_SIZE:
            raise ValueError(f"sample size {n} out of range 0..{SPACE_SIZE}")
        return np.random.default_rng(seed).choice(SPACE_SIZE, size=n, replace=False)

    # ----- networks and data

    def build(self, index: int | str, num_classes: int = NUM_CLASSES) -> NATSSizeNetwork:
        """A freshly initialised network (PyTorch default init from the global RNG)."""
        return NATSSizeNetwork(self.channels(index), num_classes)

    def batch(self, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A seeded CIFAR-10 mini-batch ``(x, y)``."""
        from cbred.bench.datasets import get_batch

        return get_batch("cifar10", batch_size=size, seed=seed)

    # ----- costs and features

    def costs(self, num_classes: int = NUM_CLASSES, resolution: int = 32) -> dict[str, np.ndarray]:
        """Analytic ``params`` and ``flops`` (int64, index order) of every network.

        Parameters are the built networks' (batch-norm affine weights included); FLOPs
        are xautodl's ``get_model_infos`` convention for one image: multiply-accumulates
        of convolutions and of the classifier (its bias included), nothing else.
        """
        channels = self.channel_matrix
        params = np.zeros(SPACE_SIZE, dtype=np.int64)
        flops = np.zeros(SPACE_SIZE, dtype=np.int64)
        for _, p, f in _conv_terms(channels, resolution):
            params += p
            flops += f
        last = channels[:, -1]
        params += 2 * last + last * num_classes + num_classes
        flops += last * num_classes + num_classes
        return {"params": params, "flops": flops}

    def features(self, name: str) -> tuple[np.ndarray, tuple[str, ...]]:
        """A whole-space graph feature matrix (32768, len(VOCAB)) and its column names.

        * ``op_usage``: kernels of each cbred vocabulary type in the traced graph.  Only
          two things vary: whether the second and the third cell change width (then its
          ``skip_connect`` is a 1×1 convolution and batch norm, else an identity), so the
          four traced templates give every row.
        * ``flops_usage``: the summed FLOPs of the kernels of each type, i.e. per type
          the sum of ``trace(net, zeros(input_shape)).kernel_flops`` grouped by
          ``kernel_op``; analytic, and checked against the four traced templates.
        """
        from cbred.cgraph.vocab import VOCAB, VOCAB_INDEX

        if name not in FEATURES:
            raise ValueError(f"unknown feature {name!r}; expected one of {', '.join(FEATURES)}")
        templates = self._templates
        variant = self._variants()
        if name == "op_usage":
            counts = np.stack([t[0] for t in templates])
            return counts[variant], VOCAB
        out = np.zeros((SPACE_SIZE, len(VOCAB)), dtype=np.int64)
        for conv, _, macs in _conv_terms(self.channel_matrix, self.input_shape[-1]):
            out[:, VOCAB_INDEX[conv.op]] += macs
        last = self.channel_matrix[:, -1]
        out[:, VOCAB_INDEX["linear"]] += last * NUM_CLASSES + NUM_CLASSES
        for v, (_, flops, index) in enumerate(templates):
            if not np.array_equal(out[index], flops):
                raise RuntimeError(
                    f"analytic flops_usage of {self.arch_str(index)} disagrees with its trace "
                    f"(template {v}); the tracer's FLOP convention must have changed"
                )
        return out, VOCAB

    def _variants(self) -> np.ndarray:
        """0..3 per index: bit 0 if the second cell changes width, bit 1 for the third."""
        c = self.channel_matrix
        return (c[:, 1] != c[:, 2]).astype(np.int64) + 2 * (c[:, 3] != c[:, 4])

    @cached_property
    def _templates(self) -> list[tuple[np.ndarray, np.ndarray, int]]:
        """(op histogram, per-type FLOPs, index) of a traced representative of each variant."""
        from cbred.cgraph import trace
        from cbred.cgraph.vocab import VOCAB

        representatives = ("8:16:16:32:32", "8:16:24:32:32", "8:16:16:32:40", "8:16:24:32:40")
        out = []
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # tiny networks: threads only contend (10x slower on 2 cores)
        try:
            for arch in representatives:
                index = self.index(arch)
                with torch.random.fork_rng():  # leave the caller's RNG stream alone
                    net = self.build(index)
                graph = trace(net, torch.zeros(self.input_shape))
                flops = np.zeros(len(VOCAB), dtype=np.int64)
                np.add.at(flops, np.asarray(graph.kernel_op, dtype=np.int64), graph.kernel_flops)
                out.append((graph.op_histogram(), flops, index))
        finally:
            torch.set_num_threads(threads)
        if not np.array_equal(self._variants()[[t[2] for t in out]], np.arange(4)):
            raise AssertionError("representatives are not in variant order")
        return out

    # ----- ground truth

    def _nats_api(self) -> Any:
        if self._api is not None:
            return self._api
        source = self.nats_path if self.nats_path is not None else os.environ.get(SSS_ENV) or None
        if source is None:
            raise FileNotFoundError(
                f"nats_sss accuracies need the official NATS-Bench SSS file "
                f"(NATS-sss-v1_0-50262.pickle.pbz2 or its -simple directory): pass "
                f"NATSSizeSpace(nats_path=...) or set {SSS_ENV}"
            )
        if isinstance(source, (str, os.PathLike)):
            path = Path(source).expanduser()
            if not path.exists():
                raise FileNotFoundError(
                    f"NATS-Bench SSS file {str(path)!r} does not exist (from nats_path= or "
                    f"{SSS_ENV}); expected NATS-sss-v1_0-50262.pickle.pbz2 or its directory"
                )
            import nats_bench

            self._api = nats_bench.create(str(path), "sss", fast_mode=path.is_dir(), verbose=False)
        else:
            self._api = source
        return self._api

    def accuracy(
        self, index: int | str, dataset: str, metric: str = "test", epochs: int = 90
    ) -> float:
        """Benchmark accuracy (%) averaged over seeds: ``metric`` ``test`` or ``valid``,
        after ``epochs`` 1, 12 or 90 (the full schedule) on cifar10/cifar100/imagenet16_120.
        """
        dataset = canonical_dataset(dataset)
        if metric not in ("test", "valid"):
            raise ValueError(f"unknown metric {metric!r}; expected 'test' or 'valid'")
        if epochs not in EPOCHS:
            raise ValueError(f"SSS has no {epochs}-epoch results; expected one of {EPOCHS}")
        i = self._as_index(index)
        api = self._nats_api()
        if dataset == "cifar10" and metric == "valid":
            nats_dataset = "cifar10-valid"
        else:
            nats_dataset = _NATS_NAMES[dataset]
        info = api.get_more_info(i, nats_dataset, hp=f"{epochs:02d}", is_random=False)
        key = "valid-accuracy" if metric == "valid" else "test-accuracy"
        if key not in info:
            raise KeyError(f"NATS-Bench SSS has no {key} for {dataset} at {epochs} epochs")
        return float(info[key])
