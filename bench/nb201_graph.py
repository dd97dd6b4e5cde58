"""Fast computational graphs and op counts for the NAS-Bench-201 space.

Tracing one NB201 network with ``torch.fx`` costs tens of milliseconds, which
is minutes for the whole space.  But every network is the same skeleton (stem,
two reduction blocks, head) around ``3 · cells_per_stage`` copies of one cell,
and a cell is six edge operations joined by additions.  So the pieces are
traced once, as :class:`~cgraph.graph.Fragment` templates (each edge operation
at each stage width, the addition, the stem, the reductions and the head), and
a network's graph is stamped from them in the order its ``forward`` runs.  The
result is equal, node for node and name for name, to
``cgraph.trace(build_network(arch, ...), x)``; the tests check this on a
sample of architectures.

Op-usage counts for the whole space need no graphs at all: a network's
histogram is the skeleton's plus, for every cell, the sum of its six edge
templates' histograms and the additions' (:func:`space_op_counts`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from cbred.bench.nb201 import EDGES, NUM_NODES, OPS, Arch, NB201Space, parse_arch
from cbred.bench.nb201_network import NB201Network, make_op, stage_channels
from cbred.cgraph.graph import INPUT, CompGraph, Fragment, GraphBuilder
from cbred.cgraph.trace import trace_fragment
from torch import nn

_ROOT = "m"
_STAGES = 3


class _Wrap(nn.Module):
    """Holds a piece at attribute ``m`` so that fragment names start at the root ``m``."""

    def __init__(self, piece: nn.Module) -> None:
        super().__init__()
        self.m = piece

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.m(x)


class _Sum(nn.Module):
    """The addition that joins two edges into a cell node."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class _WrapSum(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.m = _Sum()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.m(a, b)


class _Head(nn.Module):
    """The network's tail after the last cell, as in :meth:`NB201Network.forward`."""

    def __init__(self, network: NB201Network) -> None:
        super().__init__()
        self.lastact = network.lastact
        self.global_pooling = network.global_pooling
        self.classifier = network.classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.global_pooling(self.lastact(x)).flatten(1))


@dataclass(frozen=True)
class Templates:
    """Traced pieces of NB201 networks of one width, class count, batch and resolution.

    ``ops[s][o]`` is edge operation ``OPS[o]`` at stage ``s``; ``sums[s]`` the
    addition at stage ``s``; ``reductions[s - 1]`` the block before stage ``s``.
    """

    stem: Fragment
    ops: tuple[tuple[Fragment, ...], ...]
    sums: tuple[Fragment, ...]
    reductions: tuple[Fragment, ...]
    head: Fragment


@lru_cache(maxsize=8)
def templates(
    channels: int = 16, num_classes: int = 10, batch_size: int = 1, resolution: int = 32
) -> Templates:
    """Trace the pieces once (cached per argument tuple)."""
    if batch_size < 1 or resolution < 1:
        raise ValueError(
            f"need batch_size >= 1 and resolution >= 1, got {batch_size}, {resolution}"
        )
    network = NB201Network(Arch(("none",) * len(EDGES)), channels, 1, num_classes)
    x = torch.zeros(batch_size, 3, resolution, resolution)
    stem = trace_fragment(_Wrap(network.stem), x, _ROOT)
    shape = stem.mem_shape[stem.outputs[0]]
    ops, sums, reductions = [], [], []
    for i, (width, reduction) in enumerate(stage_channels(channels, 1)):
        x = torch.zeros(shape)
        if reduction:
            piece = trace_fragment(_Wrap(network.cells[i]), x, _ROOT)
            reductions.append(piece)
            shape = piece.mem_shape[piece.outputs[0]]
            continue
        ops.append(tuple(trace_fragment(_Wrap(make_op(op, width)), x, _ROOT) for op in OPS))
        sums.append(trace_fragment(_WrapSum(), (x, x), _ROOT))
    head = trace_fragment(_Wrap(_Head(network)), torch.zeros(shape), _ROOT)
    return Templates(stem, tuple(ops), tuple(sums), tuple(reductions), head)


def cell_fragment(arch: Arch, stage: int, parts: Templates) -> Fragment:
    """One cell's graph at ``stage``, stamped in the order of ``Cell.forward``."""
    builder = GraphBuilder()
    edge = parts.ops[stage][0]
    x = builder.add_memory("x", INPUT, edge.mem_shape[0], edge.mem_dtype[0])
    nodes = [x]
    for target in range(1, NUM_NODES):
        total = None
        for e, (source, tgt) in enumerate(EDGES):
            if tgt != target:
                continue
            op = parts.ops[stage][OPS.index(arch.ops[e])]
            out = builder.append(op, [nodes[source]], f"{_ROOT}.layers.{e}")[0]
            total = (
                out if total is None else builder.append(parts.sums[stage], [total, out], _ROOT)[0]
            )
        nodes.append(total)
    return builder.fragment(_ROOT, 1, [nodes[-1]])


def nb201_graph(
    arch: Arch | str | int,
    channels: int = 16,
    cells_per_stage: int = 5,
    num_classes: int = 10,
    batch_size: int = 1,
    resolution: int = 32,
) -> CompGraph:
    """The graph of ``build_network(arch, channels, cells_per_stage, num_classes)`` on a
    ``(batch_size, 3, resolution, resolution)`` input, built from templates."""
    arch = parse_arch(arch)
    parts = templates(channels, num_classes, batch_size, resolution)
    cells = [cell_fragment(arch, s, parts) for s in range(_STAGES)]
    return _assemble(cells, cells_per_stage, parts)


def _assemble(cells: list[Fragment], cells_per_stage: int, parts: Templates) -> CompGraph:
    """Stem, cells and reductions, head, as in ``NB201Network.forward``."""
    if cells_per_stage < 0:
        raise ValueError(f"cells_per_stage must be >= 0, got {cells_per_stage}")
    builder = GraphBuilder()
    x = builder.add_memory("x", INPUT, parts.stem.mem_shape[0], parts.stem.mem_dtype[0])
    feature = builder.append(parts.stem, [x], "stem")[0]
    stage = 0
    for i, (_, reduction) in enumerate(stage_channels(1, cells_per_stage)):
        stage += reduction
        piece = parts.reductions[stage - 1] if reduction else cells[stage]
        feature = builder.append(piece, [feature], f"cells.{i}")[0]
    builder.append(parts.head, [feature], "", outputs=True)
    return builder.build()


def iter_space_graphs(
    space: NB201Space | None = None,
    indices: Iterable[int] | None = None,
    channels: int = 16,
    cells_per_stage: int = 5,
    num_classes: int = 10,
    batch_size: int = 1,
    resolution: int = 32,
) -> Iterator[CompGraph]:
    """The graphs of ``space``'s architectures at ``indices`` (default: all, in index order),
    one at a time."""
    space = space or NB201Space()
    parts = templates(channels, num_classes, batch_size, resolution)
    for index in range(len(space)) if indices is None else indices:
        arch = space.arch(int(index))
        cells = [cell_fragment(arch, s, parts) for s in range(_STAGES)]
        yield _assemble(cells, cells_per_stage, parts)


def space_op_counts(
    space: NB201Space | None = None,
    channels: int = 16,
    cells_per_stage: int = 5,
    num_classes: int = 10,
) -> np.ndarray:
    """Op-usage histograms of all architectures: an int64 array (len(space), len(VOCAB)).

    Row ``i`` equals ``nb201_graph(space.arch(i), ...).op_histogram()``: the
    skeleton's counts plus, per cell, its edges' and additions' counts.
    """
    if cells_per_stage < 0:
        raise ValueError(f"cells_per_stage must be >= 0, got {cells_per_stage}")
    space = space or NB201Space()
    parts = templates(channels, num_classes)
    skeleton = parts.stem.op_histogram() + parts.head.op_histogram()
    skeleton = skeleton + sum(r.op_histogram() for r in parts.reductions)
    sums_per_cell = sum(max(sum(t == j for _, t in EDGES) - 1, 0) for j in range(NUM_NODES))
    codes = np.asarray(space.op_matrix, dtype=np.int64)
    counts = np.tile(skeleton, (len(codes), 1))
    for stage in range(_STAGES):
        per_op = np.stack([f.op_histogram() for f in parts.ops[stage]])
        cell = per_op[codes].sum(axis=1) + sums_per_cell * parts.sums[stage].op_histogram()
        counts += cells_per_stage * cell
    return counts
