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
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

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


class NB201Space:
    """All 15,625 NB201 cells in the official NATS-Bench index order."""

    name = "nb201"

    def __init__(self) -> None:
        from cbred.bench.ground_truth import bundled_table

        strings = bundled_table()["arch"].tolist()
        self._archs = [Arch.from_string(s) for s in strings]
        codes = np.array([a.code for a in self._archs], dtype=np.int64)
        if len(self._archs) != SPACE_SIZE or len(np.unique(codes)) != SPACE_SIZE:
            raise RuntimeError("the bundled NB201 table does not list each architecture once")
        self._index_of_code = np.empty(SPACE_SIZE, dtype=np.int64)
        self._index_of_code[codes] = np.arange(SPACE_SIZE)

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
        if not isinstance(index, (int, np.integer)) or not 0 <= index < SPACE_SIZE:
            raise IndexError(f"NB201 index {index!r} out of range 0..{SPACE_SIZE - 1}")
        return self._archs[int(index)]

    def index(self, arch: Arch | str) -> int:
        """The NATS-Bench index of an architecture or cell string."""
        return int(self._index_of_code[parse_arch(arch).code])

    def string(self, index: int) -> str:
        return str(self.arch(index))

    def neighbours(self, index: int) -> list[int]:
        """Indices of the 24 one-edge neighbours of the architecture at ``index``."""
        return [self.index(n) for n in self.arch(index).neighbours()]

    def sample(self, n: int, seed: int) -> np.ndarray:
        """``n`` distinct indices drawn uniformly with ``seed``."""
        if not 0 <= n <= SPACE_SIZE:
            raise ValueError(f"sample size {n} out of range 0..{SPACE_SIZE}")
        return np.random.default_rng(seed).choice(SPACE_SIZE, size=n, replace=False)

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
def default_space() -> NB201Space:
    """One shared :class:`NB201Space` per process (building one parses 15,625 strings)."""
    return NB201Space()
