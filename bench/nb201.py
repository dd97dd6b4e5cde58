"""The NAS-Bench-201 (NATS-Bench topology) search space.

A cell has four nodes 0..3 and one edge i→j for every i < j, six edges in all.
Each edge carries one of five operations.  A cell is written as the standard
string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``: the k-th group lists the edges
into node k (k = 1, 2, 3), each as ``operation~source``.

Architectures are numbered in the official NATS-Bench order, which is the row
order of the bundled ground-truth table (:mod:`bench.ground_truth`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
"""Candidate operations, in a fixed order that defines the integer op codes."""

EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
"""The six edges as (source, target), in the order they appear in a cell string."""

NUM_NODES = 4
NUM_EDGES = len(EDGES)
SPACE_SIZE = len(OPS) ** NUM_EDGES  # 15,625
NUM_ISOMORPHISM_CLASSES = 6466

_OP_INDEX = {op: i for i, op in enumerate(OPS)}
_EDGE_TOKEN = re.compile(r"^([A-Za-z0-9_]+)~(\d+)$")


class InvalidArchitectureError(ValueError):
    """Raised for a cell string or op list that is not an NB201 architecture."""


@dataclass(frozen=True, order=True)
class Arch:
    """One NB201 cell: the operation on each of the six edges, in :data:`EDGES` order."""

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.ops) != NUM_EDGES:
            raise InvalidArchitectureError(
                f"an NB201 cell has {NUM_EDGES} edges, got {len(self.ops)} operations: {self.ops!r}"
            )
        for op in self.ops:
            if op not in _OP_INDEX:
                raise InvalidArchitectureError(
                    f"unknown operation {op!r}; expected one of {', '.join(OPS)}"
                )

    @classmethod
    def from_string(cls, text: str) -> Arch:
        """Parse a standard cell string, checking operations, node count and sources."""
        if not isinstance(text, str):
            raise InvalidArchitectureError(f"expected a cell string, got {type(text).__name__}")
        groups = text.strip().split("+")
        if len(groups) != NUM_NODES - 1:
            raise InvalidArchitectureError(
                f"{text!r}: expected {NUM_NODES - 1} node groups joined by '+', found {len(groups)}"
            )
        ops: list[str] = []
        for target, group in enumerate(groups, start=1):
            if len(group) < 2 or not (group.startswith("|") and group.endswith("|")):
                raise InvalidArchitectureError(
                    f"{text!r}: node group {group!r} must start and end with '|'"
                )
            tokens = group[1:-1].split("|")
            if len(tokens) != target:
                raise InvalidArchitectureError(
                    f"{text!r}: node {target} needs {target} incoming edges, found {len(tokens)}"
                )
            for source, token in enumerate(tokens):
                match = _EDGE_TOKEN.match(token)
                if match is None:
                    raise InvalidArchitectureError(
                        f"{text!r}: malformed edge {token!r}, expected 'operation~source'"
                    )
                op, src = match.group(1), int(match.group(2))
                if src != source:
                    raise InvalidArchitectureError(
                        f"{text!r}: edge {token!r} into node {target} must come from node "
                        f"{source}, not {src}"
                    )
                ops.append(op)
        try:
            return cls(tuple(ops))
        except InvalidArchitectureError as exc:
            raise InvalidArchitectureError(f"{text!r}: {exc}") from None

    @classmethod
    def from_code(cls, code: int) -> Arch:
        """Decode the base-5 integer code (edge e is digit e) made by :attr:`code`."""
        if not 0 <= int(code) < SPACE_SIZE:
            raise InvalidArchitectureError(f"code {code} out of range 0..{SPACE_SIZE - 1}")
        digits = [(int(code) // len(OPS) ** e) % len(OPS) for e in range(NUM_EDGES)]
        return cls(tuple(OPS[d] for d in digits))

    @property
    def code(self) -> int:
        """Base-5 integer with the op index of edge e as digit e (a dense id, not the index)."""
        return sum(_OP_INDEX[op] * len(OPS) ** e for e, op in enumerate(self.ops))

    @property
    def op_indices(self) -> tuple[int, ...]:
        """The op code (position in :data:`OPS`) of each edge."""
        return tuple(_OP_INDEX[op] for op in self.ops)

    def __str__(self) -> str:
        parts, e = [], 0
        for target in range(1, NUM_NODES):
            tokens = [f"{self.ops[e + s]}~{s}" for s in range(target)]
            parts.append("|" + "|".join(tokens) + "|")
            e += target
        return "+".join(parts)

    def edge_op(self, source: int, target: int) -> str:
        """The operation on edge source→target."""
        return self.ops[EDGES.index((source, target))]

    def with_op(self, edge: int, op: str) -> Arch:
        """A copy with edge ``edge`` (position in :data:`EDGES`) set to ``op``."""
        ops = list(self.ops)
        ops[edge] = op
        return Arch(tuple(ops))

    def neighbours(self) -> list[Arch]:
        """The 24 architectures that differ from this one on exactly one edge."""
        return [self.with_op(e, op) for e in range(NUM_EDGES) for op in OPS if op != self.ops[e]]

    def isomorphism_key(self) -> str:
        """A key shared exactly by computationally isomorphic cells.

        Each node is described by the sorted '+'-join of its incoming terms: an
        operation applied to the source's description, the source's description
        itself for ``skip_connect`` (identity), and a zero marker ``#`` for
        ``none`` or for a source that is itself just zero.  Node 0 is the input.
        The key is node 3's description, so operations that cannot reach the
        output disappear, and sums are order-free.  This is the convention that
        NAS-Bench-201 uses to count its 6,466 distinct cells; it keeps the
        nesting of sums (``a+(b+c)`` and ``(a+b)+c`` differ), as the benchmark does.
        """
        nodes = ["0"]
        e = 0
        for target in range(1, NUM_NODES):
            terms = []
            for source in range(target):
                op, src = self.ops[e + source], nodes[source]
                if op == "none" or src == "#":
                    terms.append("#")
                elif op == "skip_connect":
                    terms.append(src)
                else:
                    terms.append(f"({src})@{op}")
            nodes.append("+".join(sorted(terms)))
            e += target
        return nodes[-1]

    def has_path(self) -> bool:
        """Whether any non-zero path joins input node 0 to output node 3."""
        reach = [True, False, False, False]
        for (source, target), op in zip(EDGES, self.ops):
            if op != "none" and reach[source]:
                reach[target] = True
        return reach[3]


def parse_arch(arch: Arch | str | int, space: NB201Space | None = None) -> Arch:
    """Turn a cell string, an :class:`Arch` or an index (with ``space``) into an Arch."""
    if isinstance(arch, Arch):
        return arch
    if isinstance(arch, str):
        return Arch.from_string(arch)
    if isinstance(arch, (int, np.integer)):
        return (space or default_space()).arch(int(arch))
    raise InvalidArchitectureError(
        f"expected a cell string, Arch or index, got {type(arch).__name__}: {arch!r}"
    )


@lru_cache(maxsize=1)
def _index_tables() -> tuple[tuple[Arch, ...], np.ndarray]:
    """The 15,625 architectures in NATS-Bench order and the index of every cell code."""
    from cbred.bench.nb201_table import bundled_table

    archs = tuple(Arch.from_string(s) for s in bundled_table()["arch"].tolist())
    codes = np.array([a.code for a in archs], dtype=np.int64)
    if len(archs) != SPACE_SIZE or len(np.unique(codes)) != SPACE_SIZE:
        raise RuntimeError("the bundled NB201 table does not list each architecture once")
    index_of_code = np.empty(SPACE_SIZE, dtype=np.int64)
    index_of_code[codes] = np.arange(SPACE_SIZE)
    return archs, index_of_code


class NB201Space:
    """All 15,625 NB201 cells in the official NATS-Bench index order, as a cbred space.

    Besides the space contract (``len``, ``arch_str``, ``build``, ``input_shape``,
    ``neighbours``, ``batch``, ``accuracy``; see :mod:`reduce.space`) it carries the network
    setting that ``build`` uses: ``channels`` (C), ``cells_per_stage`` (N), the ``dataset``
    whose classes the head predicts and whose images ``batch`` draws, and ``cell_affine``
    (False: the zero-cost-proxy reference cells, see
    :class:`bench.nb201_network.NB201Network`). And NB201's own capabilities: per-edge op
    codes (:attr:`op_matrix`), fast graph op counts and exact edit distances, analytic costs.
    """

    name = "nb201"

    def __init__(
        self,
        channels: int = 16,
        cells_per_stage: int = 5,
        dataset: str = "cifar10",
        cell_affine: bool = True,
    ) -> None:
        from cbred.bench.nb201_table import canonical_dataset

        if channels < 1 or cells_per_stage < 1:
            raise ValueError(
                f"channels and cells per stage must be >= 1, got {channels}, {cells_per_stage}"
            )
        self.channels = int(channels)
        self.cells_per_stage = int(cells_per_stage)
        self.dataset = canonical_dataset(dataset)
        self.cell_affine = bool(cell_affine)
        self._archs, self._index_of_code = _index_tables()

    def __reduce__(self) -> tuple:
        # Pickles as its setting: workers rebuild the index tables from the package data.
        setting = (self.channels, self.cells_per_stage, self.dataset, self.cell_affine)
        return (type(self), setting)

    def with_setting(self, **changes: object) -> NB201Space:
        """A copy with other network settings (``channels``, ``cells_per_stage``, ...)."""
        setting = {
            "channels": self.channels,
            "cells_per_stage": self.cells_per_stage,
            "dataset": self.dataset,
            "cell_affine": self.cell_affine,
        }
        unknown = set(changes) - set(setting)
        if unknown:
            raise ValueError(
                f"unknown NB201 settings {sorted(unknown)}; expected {sorted(setting)}"
            )
        return type(self)(**{**setting, **changes})  # type: ignore[arg-type]

    @property
    def setting_key(self) -> str:
        """The network setting as stored with every score (the shipped table's is C=16|N=5)."""
        key = f"C={self.channels}|N={self.cells_per_stage}"
        return key if self.cell_affine else key + "|cell_affine=False"

    def __len__(self) -> int:
        return SPACE_SIZE

    def __iter__(self) -> Iterator[Arch]:
        return iter(self._archs)

    def __contains__(self, arch: object) -> bool:
        try:
            parse_arch(arch)  # type: ignore[arg-type]
        except (InvalidArchitectureError, TypeError):
            return False
        return True

    def arch(self, index: int) -> Arch:
        """The architecture at NATS-Bench index ``index``."""
        if (
            isinstance(index, bool)
            or not isinstance(index, (int, np.integer))
            or not 0 <= index < SPACE_SIZE
        ):
            raise IndexError(f"NB201 index {index!r} out of range 0..{SPACE_SIZE - 1}")
        return self._archs[int(index)]

    def index(self, arch: Arch | str) -> int:
        """The NATS-Bench index of an architecture or cell string."""
        return int(self._index_of_code[parse_arch(arch).code])

    def arch_str(self, index: int) -> str:
        """The cell string of ``index`` (the contract's stable name)."""
        return str(self.arch(index))

    string = arch_str

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        from cbred.bench.datasets import RESOLUTION

        side = RESOLUTION[self.dataset]
        return (1, 3, side, side)

    def build(self, index: int | Arch | str) -> torch.nn.Module:
        """A freshly initialised network of ``index`` in this space's setting (global RNG)."""
        from cbred.bench.datasets import NUM_CLASSES
        from cbred.bench.nb201_network import build_network

        arch = self.arch(index) if isinstance(index, (int, np.integer)) else parse_arch(index)
        classes = NUM_CLASSES[self.dataset]
        return build_network(arch, self.channels, self.cells_per_stage, classes, self.cell_affine)

    def batch(self, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A seeded batch of ``size`` images of this space's data set (bundled or on disk)."""
        return _cached_batch(self.dataset, size, seed)

    def accuracy(self, index: int | Arch | str, dataset: str) -> float:
        """The benchmark's 200-epoch test accuracy (%), from the bundled or official table."""
        from cbred.bench.ground_truth import load_ground_truth

        return load_ground_truth().accuracy(index, dataset)

    def accuracies(self, dataset: str) -> np.ndarray:
        """(15625,) test accuracies in index order."""
        from cbred.bench.ground_truth import load_ground_truth

        return load_ground_truth().accuracies(dataset)

    def neighbours(self, index: int) -> list[int]:
        """Indices of the 24 one-edge neighbours of the architecture at ``index``."""
        return [self.index(n) for n in self.arch(index).neighbours()]

    def sample(self, n: int, seed: int | np.random.Generator) -> np.ndarray:
        """``n`` distinct indices drawn uniformly (``seed``: a seed or a Generator)."""
        from cbred.reduce.space import as_rng

        if not 0 <= n <= SPACE_SIZE:
            raise ValueError(f"sample size {n} out of range 0..{SPACE_SIZE}")
        return as_rng(seed).choice(SPACE_SIZE, size=n, replace=False)

    def op_counts(self) -> np.ndarray:
        """(15625, P) graph op-usage counts of every network, without tracing each."""
        from cbred.bench.nb201_graph import space_op_counts

        return np.asarray(
            space_op_counts(self, self.channels, self.cells_per_stage), dtype=np.float64
        )

    def edit_matrix(self, cost: object = None, **options: object) -> np.ndarray:
        """The exact 15,625² cell edit-distance matrix (per-edge sums, see bench.nb201_edit)."""
        from cbred.bench.nb201_edit import nb201_edit_matrix

        return nb201_edit_matrix(self, cost, **options)  # type: ignore[arg-type]

    def costs(self) -> dict[str, np.ndarray]:
        """Analytic ``params`` and ``flops`` of every network in this setting."""
        from cbred.bench.datasets import NUM_CLASSES
        from cbred.bench.nb201_network import space_costs

        params, flops = _space_costs(
            self.channels, self.cells_per_stage, NUM_CLASSES[self.dataset], space_costs
        )
        return {"params": params, "flops": flops}

    def neighbour_table(self) -> np.ndarray:
        """(15625, 24) indices of every architecture's one-edge neighbours (searches' fast path)."""
        return _neighbour_table()

    def features(self, name: str) -> tuple[np.ndarray, tuple[str, ...]] | None:
        """Whole-space features without tracing each network: ``op_usage`` (alias ``graph``)
        from the graph templates, ``cell`` (how many of the six edges carry each operation),
        and any registered :mod:`cgraph.features` feature from the stamped graphs."""
        if name in ("op_usage", "graph"):
            from cbred.cgraph.vocab import VOCAB

            return self.op_counts(), tuple(VOCAB)
        if name == "cell":
            ops = self.op_matrix
            counts = np.stack([(ops == k).sum(axis=1) for k in range(len(OPS))], axis=1)
            return counts.astype(np.float64), OPS
        from cbred.bench.nb201_graph import iter_space_graphs
        from cbred.cgraph.features import feature_matrix, get_feature

        get_feature(name)  # a clear error for an unknown name
        graphs = iter_space_graphs(self, None, self.channels, self.cells_per_stage)
        return feature_matrix(list(graphs), name)

    def edit_codes(self, cost: object = None) -> tuple[np.ndarray, np.ndarray]:
        """Per-edge op codes and the op cost table: the exact cell edit distance is their
        per-edge sum (bench.nb201_edit), which C-BRED's k-medoids uses without a matrix."""
        from cbred.bench.nb201_edit import op_cost_table

        return self.op_matrix, op_cost_table(cost)  # type: ignore[arg-type]

    def score_table(self) -> object:
        """The shipped score table when this is its setting (C=16, N=5, CIFAR-10 batch)."""
        from cbred.bench.score_table import shipped_scores

        try:
            table = shipped_scores()
        except FileNotFoundError:
            return None
        attrs = table.attrs
        same = (
            attrs.get("channels") == self.channels
            and attrs.get("cells_per_stage") == self.cells_per_stage
            and attrs.get("dataset") == self.dataset
            and self.cell_affine
        )
        return table if same else None

    @cached_property
    def op_matrix(self) -> np.ndarray:
        """(15625, 6) int8 array: op code of each edge for each index."""
        return np.array([a.op_indices for a in self._archs], dtype=np.int8)

    @cached_property
    def isomorphism_classes(self) -> np.ndarray:
        """(15625,) class id per index; ids number the keys in order of first appearance."""
        ids: dict[str, int] = {}
        return np.array(
            [ids.setdefault(a.isomorphism_key(), len(ids)) for a in self._archs], dtype=np.int64
        )


@lru_cache(maxsize=1)
def _neighbour_table() -> np.ndarray:
    from cbred.reduce.search.space import grid_neighbour_table

    ops = default_space().op_matrix.astype(np.int64)
    codes = ops @ (len(OPS) ** np.arange(NUM_EDGES, dtype=np.int64))
    index_of_code = np.empty_like(codes)
    index_of_code[codes] = np.arange(codes.size)
    return index_of_code[grid_neighbour_table(NUM_EDGES, len(OPS))[codes]]


@lru_cache(maxsize=8)
def _cached_batch(dataset: str, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    from cbred.bench.datasets import get_batch

    return get_batch(dataset, batch_size=size, seed=seed)


@lru_cache(maxsize=4)
def _space_costs(
    channels: int, cells: int, classes: int, compute: Callable
) -> tuple[np.ndarray, np.ndarray]:
    params, flops = compute(default_space(), channels, cells, classes)
    return params.astype(np.float64), flops.astype(np.float64)


@lru_cache(maxsize=1)
def default_space() -> NB201Space:
    """One shared :class:`NB201Space` per process (building one parses 15,625 strings)."""
    return NB201Space()
