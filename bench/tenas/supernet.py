"""The NB201 supernet of TE-NAS: every cell edge holds a set of candidate operations.

Each edge outputs the *sum* of its alive operations (no architecture weights: TE-NAS
scores the supernet at initialisation, so a removed operation simply stops contributing).
Which operations are alive is a :data:`Alive` value — for each of the six edges, in
:data:`bench.nb201.EDGES` order, the tuple of alive op names in :data:`bench.nb201.OPS`
order — shared by every cell, as in the NB201 search space.  When one operation is left on
every edge the supernet *is* the ordinary NB201 network of :meth:`SuperNet.single_path`.

Two shapes are provided, both built from the benchmark's own modules
(:func:`bench.nb201_network.make_op`, :class:`~bench.nb201_network.ResidualReduction`):

* :class:`SuperNet` — the full NB201 macro skeleton (stem, three stages joined by residual
  reductions, classifier) for the NTK condition number;
* :class:`ThinSuperNet` — a stem-less stack of cells on ``channels``-channel inputs, whose
  ReLU patterns give the linear-region count (TE-NAS uses such a thin network).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from cbred.bench.nb201 import EDGES, NUM_EDGES, NUM_NODES, OPS, Arch
from cbred.bench.nb201_network import MacroNetwork, make_op
from torch import nn

Alive = tuple[tuple[str, ...], ...]
"""For each edge (``EDGES`` order), the alive op names (``OPS`` order)."""

FULL: Alive = tuple(OPS for _ in range(NUM_EDGES))
"""Every operation alive on every edge: the unpruned supernet."""


def check_alive(alive: Sequence[Sequence[str]]) -> Alive:
    """Validate and normalise an alive-set: six non-empty sets of known ops, in ``OPS`` order."""
    if len(alive) != NUM_EDGES:
        raise ValueError(f"need one op set per edge ({NUM_EDGES}), got {len(alive)}")
    out = []
    for e, ops in enumerate(alive):
        unknown = set(ops) - set(OPS)
        if unknown:
            raise ValueError(f"edge {e}: unknown operations {sorted(unknown)}; expected {OPS}")
        if not ops:
            raise ValueError(f"edge {e} has no operation left (each edge needs at least one)")
        out.append(tuple(op for op in OPS if op in ops))
    return tuple(out)


def remove_op(alive: Alive, edge: int, op: str) -> Alive:
    """``alive`` without ``op`` on ``edge``; removing the last op of an edge is an error."""
    if not 0 <= edge < NUM_EDGES:
        raise ValueError(f"edge index {edge} out of range 0..{NUM_EDGES - 1}")
    if op not in alive[edge]:
        raise ValueError(f"operation {op!r} is not alive on edge {edge} (alive: {alive[edge]})")
    if len(alive[edge]) == 1:
        raise ValueError(f"cannot remove {op!r}: it is the last operation on edge {edge}")
    return tuple(tuple(o for o in ops if (e, o) != (edge, op)) for e, ops in enumerate(alive))


def single_path(alive: Alive) -> Arch:
    """The NB201 architecture of an alive-set with exactly one op per edge."""
    alive = check_alive(alive)
    wide = [e for e, ops in enumerate(alive) if len(ops) != 1]
    if wide:
        raise ValueError(f"not a single path: edges {wide} still hold several operations")
    return Arch(tuple(ops[0] for ops in alive))


class SuperCell(nn.Module):
    """An NB201 cell whose edges hold all five operations; node j sums its alive inputs."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(
            nn.ModuleDict({op: make_op(op, channels) for op in OPS}) for _ in EDGES
        )
        self.alive: Alive = FULL

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for target in range(1, NUM_NODES):
            total: torch.Tensor | None = None
            for e, (source, tgt) in enumerate(EDGES):
                if tgt != target:
                    continue
                for op in self.alive[e]:
                    out = self.edges[e][op](nodes[source])
                    total = out if total is None else total + out
            nodes.append(total if total is not None else torch.zeros_like(x))
        return nodes[-1]


class _Prunable(nn.Module):
    """Shared alive-set handling of the two supernet shapes."""

    def super_cells(self) -> list[SuperCell]:
        return [m for m in self.modules() if isinstance(m, SuperCell)]

    @property
    def alive(self) -> Alive:
        return self.super_cells()[0].alive

    def set_alive(self, alive: Sequence[Sequence[str]]) -> None:
        """Make exactly the ops of ``alive`` contribute, in every cell."""
        alive = check_alive(alive)
        for cell in self.super_cells():
            cell.alive = alive

    def single_path(self) -> Arch:
        """The NB201 architecture this supernet has been pruned to (one op per edge)."""
        return single_path(self.alive)


class SuperNet(MacroNetwork, _Prunable):
    """NB201 macro skeleton (the benchmark's) with :class:`SuperCell` cells; returns logits."""

    def __init__(self, channels: int = 8, cells_per_stage: int = 1, num_classes: int = 10) -> None:
        if cells_per_stage < 1:
            raise ValueError(f"a supernet needs cells_per_stage >= 1, got {cells_per_stage}")
        super().__init__(SuperCell, channels, cells_per_stage, num_classes)


class ThinSuperNet(_Prunable):
    """``cells`` super cells on ``channels``-channel inputs, no stem or head; returns features."""

    def __init__(self, channels: int = 1, cells: int = 1) -> None:
        super().__init__()
        if channels < 1 or cells < 1:
            raise ValueError(f"need channels >= 1 and cells >= 1; got {channels}, {cells}")
        self.channels = channels
        self.cells = nn.Sequential(*(SuperCell(channels) for _ in range(cells)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"expected input (N, {self.channels}, H, W), got {tuple(x.shape)}")
        return self.cells(x).flatten(1)


def kaiming_init(net: nn.Module, seed: int, mode: str) -> None:
    """Re-initialise ``net`` in place from ``seed``: Kaiming-normal conv/linear weights
    (``mode`` ``"fan_in"`` or ``"fan_out"``), zero biases, unit/zero batch-norm affine.

    TE-NAS re-initialises this way before every measurement (fan-out for the NTK, which
    is about gradients; fan-in for the linear regions, which are about the forward pass).
    """
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity="relu", generator=gen)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
                m.weight.fill_(1.0)
                m.bias.zero_()
