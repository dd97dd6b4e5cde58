"""The bipartite computational graph of a network, and its views.

A :class:`CompGraph` has memory nodes (arrays: parameters, buffers, constants,
inputs, activations, outputs) and kernel nodes (executed operations), with read
edges memory → kernel and write edges kernel → memory.  It is stored column by
column (one list or array per attribute) so that graphs of whole search spaces
can be built and compared quickly.

Invariants, checked by :meth:`CompGraph.validate`:

- kernels are numbered in execution order, and every array is written by at
  most one kernel (an in-place operation writes a new version of its array), so
  a kernel only reads arrays written by earlier kernels: the graph is acyclic;
- parameters, buffers, constants and inputs are never written; activations and
  outputs are written exactly once;
- a module called twice gives two kernels reading the same parameter nodes.

Read edges are listed kernel by kernel in argument order, each array at most
once per kernel; write edges kernel by kernel in result order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from cbred.cgraph.vocab import VOCAB, histogram

MEMORY_KINDS: tuple[str, ...] = (
    "parameter",
    "buffer",
    "constant",
    "input",
    "activation",
    "output",
)
"""Memory node kinds; ``constant`` is a tensor attribute that is neither parameter nor buffer."""

PARAMETER, BUFFER, CONSTANT, INPUT, ACTIVATION, OUTPUT = range(len(MEMORY_KINDS))


@dataclass(frozen=True)
class GraphSummary:
    """Summary counts of a graph.

    ``params`` and ``buffers`` count elements; ``flops`` are multiply-accumulates
    (see :mod:`cgraph.kernels`); ``arrays`` and ``kernels`` count nodes; ``depth``
    is the number of kernels on the longest read/write path.
    """

    params: int
    buffers: int
    flops: int
    arrays: int
    kernels: int
    depth: int
    inputs: int
    outputs: int

    def format(self) -> str:
        """Aligned ``name  value`` lines, for the command line."""
        return "\n".join(f"{name:<10}{value:>14,}" for name, value in vars(self).items())


@dataclass(eq=False)
class CompGraph:
    """A bipartite, acyclic graph of arrays (memory nodes) and kernels.

    Memory node ``i`` has ``mem_name[i]``, kind code ``mem_kind[i]`` (index into
    :data:`MEMORY_KINDS`), ``mem_shape[i]`` and ``mem_dtype[i]`` (``"float32"``).
    Kernel ``k`` has ``kernel_name[k]`` (module path, or ``scope/function``),
    ``kernel_op[k]`` (index into :data:`~cgraph.vocab.VOCAB`), ``kernel_target[k]``
    (the called module class or normalised function name), ``kernel_attrs[k]`` and
    ``kernel_flops[k]``.  ``reads`` is an (R, 2) array of (memory, kernel) pairs,
    ``writes`` an (W, 2) array of (kernel, memory) pairs.  Attribute dicts are
    shared between graphs built from the same template: treat them as read-only.
    """

    mem_name: list[str]
    mem_kind: np.ndarray
    mem_shape: list[tuple[int, ...]]
    mem_dtype: list[str]
    kernel_name: list[str]
    kernel_op: np.ndarray
    kernel_target: list[str]
    kernel_attrs: list[dict[str, Any]]
    kernel_flops: np.ndarray
    reads: np.ndarray
    writes: np.ndarray

    @property
    def num_memory(self) -> int:
        return len(self.mem_name)

    @property
    def num_kernels(self) -> int:
        return len(self.kernel_name)

    @cached_property
    def mem_numel(self) -> np.ndarray:
        """Number of elements of each array."""
        return np.fromiter((math.prod(s) for s in self.mem_shape), np.int64, self.num_memory)

    @property
    def kernel_ops(self) -> list[str]:
        """The vocabulary type name of each kernel."""
        return [VOCAB[i] for i in self.kernel_op]

    @cached_property
    def writer(self) -> np.ndarray:
        """For each array, the kernel that writes it (-1 for parameters, inputs, ...)."""
        writer = np.full(self.num_memory, -1, dtype=np.int64)
        writer[self.writes[:, 1]] = self.writes[:, 0]
        return writer

    def validate(self) -> None:
        """Check the invariants in the module docstring; raise ``ValueError`` naming a breach."""
        m, k = self.num_memory, self.num_kernels
        for name in ("mem_kind", "mem_shape", "mem_dtype"):
            if len(getattr(self, name)) != m:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries, expected {m}")
        for name in ("kernel_op", "kernel_target", "kernel_attrs", "kernel_flops"):
            if len(getattr(self, name)) != k:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries, expected {k}")
        for name, edges, (a, b) in (("reads", self.reads, (m, k)), ("writes", self.writes, (k, m))):
            if edges.ndim != 2 or edges.shape[1] != 2:
                raise ValueError(f"{name} must be an (E, 2) array, got shape {edges.shape}")
            if len(edges) and (edges.min() < 0 or edges[:, 0].max() >= a or edges[:, 1].max() >= b):
                raise ValueError(f"{name} has an endpoint outside the node ranges ({a}, {b})")
        written = np.bincount(self.writes[:, 1], minlength=m)
        if (written > 1).any():
            raise ValueError(f"array {self.mem_name[int(np.argmax(written > 1))]!r} written twice")
        produced = np.isin(self.mem_kind, (ACTIVATION, OUTPUT))
        bad = np.flatnonzero(produced != (written == 1))
        if len(bad):
            raise ValueError(
                f"array {self.mem_name[bad[0]]!r} of kind {MEMORY_KINDS[self.mem_kind[bad[0]]]} "
                f"is written {written[bad[0]]} times"
            )
        source = self.writer[self.reads[:, 0]]
        late = np.flatnonzero(source >= self.reads[:, 1])
        if len(late):
            mem, kernel = self.reads[late[0]]
            raise ValueError(
                f"kernel {self.kernel_name[kernel]!r} reads {self.mem_name[mem]!r} before it is "
                "written: kernels are not in execution order or the graph has a cycle"
            )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompGraph):
            return NotImplemented
        return all(_same(getattr(self, f), getattr(other, f)) for f in _FIELDS)

    __hash__ = None  # type: ignore[assignment]

    # ----------------------------------------------------------------- views
    def op_histogram(self) -> np.ndarray:
        """Kernel counts per :data:`~cgraph.vocab.VOCAB` type (int64, length ``len(VOCAB)``)."""
        return histogram(self.kernel_op)

    def op_distribution(self) -> np.ndarray:
        """The op-usage distribution: the histogram normalised to sum to one."""
        counts = self.op_histogram()
        if counts.sum() == 0:
            raise ValueError("the graph has no kernels, so it has no op-usage distribution")
        return counts / counts.sum()

    def kernel_projection(self) -> sp.csr_array:
        """K×K 0/1 matrix: entry (k1, k2) is 1 when k2 reads an array that k1 writes."""
        source = self.writer[self.reads[:, 0]]
        keep = source >= 0
        return _binary(source[keep], self.reads[keep, 1], (self.num_kernels,) * 2)

    def memory_projection(self) -> sp.csr_array:
        """M×M 0/1 matrix: entry (m1, m2) is 1 when some kernel reads m1 and writes m2."""
        rows, cols = self._read_write_pairs()
        return _binary(rows, cols, (self.num_memory,) * 2)

    def adjacency_tensor(self) -> torch.Tensor:
        """Sparse COO tensor A (M×M×|VOCAB|): A[i, j, p] = 1 when a kernel of type p reads i
        and writes j."""
        rows, cols, kernels = self._read_write_pairs(with_kernel=True)
        index = np.unique(np.stack([rows, cols, self.kernel_op[kernels].astype(np.int64)]), axis=1)
        size = (self.num_memory, self.num_memory, len(VOCAB))
        values = torch.ones(index.shape[1], dtype=torch.float32)
        return torch.sparse_coo_tensor(
            torch.from_numpy(index), values, size, is_coalesced=True, check_invariants=True
        )

    def depth(self) -> int:
        """Number of kernels on the longest path through the graph."""
        projection = self.kernel_projection().tocsc()
        longest = np.zeros(self.num_kernels, dtype=np.int64)
        for k in range(self.num_kernels):
            parents = projection.indices[projection.indptr[k] : projection.indptr[k + 1]]
            longest[k] = 1 + (longest[parents].max() if len(parents) else 0)
        return int(longest.max()) if self.num_kernels else 0

    def summary(self) -> GraphSummary:
        """Parameter, buffer and FLOP totals, node counts and depth."""
        numel = self.mem_numel
        return GraphSummary(
            params=int(numel[self.mem_kind == PARAMETER].sum()),
            buffers=int(numel[self.mem_kind == BUFFER].sum()),
            flops=int(self.kernel_flops.sum()),
            arrays=self.num_memory,
            kernels=self.num_kernels,
            depth=self.depth(),
            inputs=int((self.mem_kind == INPUT).sum()),
            outputs=int((self.mem_kind == OUTPUT).sum()),
        )

    def _read_write_pairs(self, with_kernel: bool = False) -> tuple[np.ndarray, ...]:
        """All (read array, written array[, kernel]) triples joined on the kernel."""
        order = np.argsort(self.writes[:, 0], kind="stable")
        by_kernel = self.writes[order]
        start = np.searchsorted(by_kernel[:, 0], self.reads[:, 1], side="left")
        stop = np.searchsorted(by_kernel[:, 0], self.reads[:, 1], side="right")
        count = stop - start
        rows = np.repeat(self.reads[:, 0], count)
        offsets = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
        cols = by_kernel[np.repeat(start, count) + offsets, 1]
        if with_kernel:
            return rows, cols, np.repeat(self.reads[:, 1], count)
        return rows, cols


_FIELDS = tuple(CompGraph.__dataclass_fields__)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b


def _binary(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_array:
    matrix = sp.csr_array((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=shape)
    matrix.sum_duplicates()
    matrix.data[:] = 1
    return matrix


@dataclass(frozen=True)
class Fragment:
    """A graph piece with unresolved names, for stamping into bigger graphs.

    Its first ``num_inputs`` memory nodes are placeholders that :meth:`GraphBuilder.append`
    replaces by arrays of the host graph.  Names start with the one-character
    ``root`` (the attribute that held the traced module); appending swaps it for
    the module path in the host.  Activation names are ``None``: they come from
    the writing kernel when the graph is built.  Edges are (R, 2) / (W, 2) arrays
    as in :class:`CompGraph`.
    """

    root: str
    num_inputs: int
    outputs: tuple[int, ...]
    mem_name: list[str | None]
    mem_kind: list[int]
    mem_shape: list[tuple[int, ...]]
    mem_dtype: list[str]
    kernel_name: list[str]
    kernel_op: list[int]
    kernel_target: list[str]
    kernel_attrs: list[dict[str, Any]]
    kernel_flops: list[int]
    reads: np.ndarray
    writes: np.ndarray

    def op_histogram(self) -> np.ndarray:
        """Kernel counts per vocabulary type."""
        return histogram(np.asarray(self.kernel_op, dtype=np.int64))

    @cached_property
    def _stamp(self) -> _Stamp:
        """The per-append work done once: names without root, inner kinds, edge columns."""
        n_in = self.num_inputs
        return _Stamp(
            mem_suffix=[None if n is None else n[1:] for n in self.mem_name[n_in:]],
            kernel_suffix=[n[1:] for n in self.kernel_name],
            inner_kind=[min(k, ACTIVATION) for k in self.mem_kind[n_in:]],
            outer_kind=self.mem_kind[n_in:],
            mem_shape=self.mem_shape[n_in:],
            mem_dtype=self.mem_dtype[n_in:],
            new_memory=np.arange(len(self.mem_kind) - n_in, dtype=np.int64),
            read_mem=self.reads[:, 0].copy(),
            read_kernel=self.reads[:, 1].copy(),
            write_kernel=self.writes[:, 0].copy(),
            write_mem=self.writes[:, 1].copy(),
        )


@dataclass(frozen=True)
class _Stamp:
    mem_suffix: list[str | None]
    kernel_suffix: list[str]
    inner_kind: list[int]
    outer_kind: list[int]
    mem_shape: list[tuple[int, ...]]
    mem_dtype: list[str]
    new_memory: np.ndarray
    read_mem: np.ndarray
    read_kernel: np.ndarray
    write_kernel: np.ndarray
    write_mem: np.ndarray


class GraphBuilder:
    """Accumulates nodes and edges, then :meth:`build` a :class:`CompGraph`.

    Kernel names given here are base names; :meth:`build` numbers repeats
    (``block``, ``block#1`` for a module called twice) and names each activation
    after its writer (``name:i`` when a kernel writes several arrays).
    """

    def __init__(self) -> None:
        self.mem_name: list[str | None] = []
        self.mem_kind: list[int] = []
        self.mem_shape: list[tuple[int, ...]] = []
        self.mem_dtype: list[str] = []
        self.kernel_name: list[str] = []
        self.kernel_op: list[int] = []
        self.kernel_target: list[str] = []
        self.kernel_attrs: list[dict[str, Any]] = []
        self.kernel_flops: list[int] = []
        self._edges: dict[str, list[np.ndarray]] = {
            "read_mem": [],
            "read_kernel": [],
            "write_kernel": [],
            "write_mem": [],
        }

    @property
    def num_memory(self) -> int:
        return len(self.mem_kind)

    def add_memory(self, name: str | None, kind: int, shape: Sequence[int], dtype: str) -> int:
        """Add an array (``name`` None for an activation) and return its index."""
        self.mem_name.append(name)
        self.mem_kind.append(kind)
        self.mem_shape.append(tuple(int(s) for s in shape))
        self.mem_dtype.append(dtype)
        return len(self.mem_kind) - 1

    def add_kernel(
        self,
        name: str,
        op: int,
        target: str,
        attrs: dict[str, Any],
        flops: int,
        reads: Sequence[int],
        writes: Sequence[int],
    ) -> int:
        """Add a kernel reading (each array once) and writing the given arrays; return it."""
        k = len(self.kernel_name)
        self.kernel_name.append(name)
        self.kernel_op.append(op)
        self.kernel_target.append(target)
        self.kernel_attrs.append(attrs)
        self.kernel_flops.append(int(flops))
        unique_reads = list(dict.fromkeys(reads))
        self._edges["read_mem"].append(np.asarray(unique_reads, dtype=np.int64))
        self._edges["read_kernel"].append(np.full(len(unique_reads), k, dtype=np.int64))
        self._edges["write_kernel"].append(np.full(len(writes), k, dtype=np.int64))
        self._edges["write_mem"].append(np.asarray(writes, dtype=np.int64))
        return k

    def set_kind(self, mem: int, kind: int) -> None:
        self.mem_kind[mem] = kind

    def append(
        self, fragment: Fragment, inputs: Sequence[int], prefix: str, outputs: bool = False
    ) -> list[int]:
        """Stamp ``fragment`` in, its placeholders bound to ``inputs`` and its root renamed
        ``prefix`` (the host's root module if empty); return the host indices of its
        outputs.  Its output arrays become activations unless ``outputs`` is true."""
        if len(inputs) != fragment.num_inputs:
            raise ValueError(f"fragment takes {fragment.num_inputs} inputs, got {len(inputs)}")
        stamp = fragment._stamp
        kbase = len(self.kernel_name)
        index = np.concatenate(
            [np.asarray(inputs, dtype=np.int64), stamp.new_memory + self.num_memory]
        )
        if prefix:
            self.mem_name.extend([None if s is None else prefix + s for s in stamp.mem_suffix])
            self.kernel_name.extend([prefix + s for s in stamp.kernel_suffix])
        else:
            self.mem_name.extend([None if s is None else s[1:] for s in stamp.mem_suffix])
            self.kernel_name.extend([s[1:] for s in stamp.kernel_suffix])
        self.mem_kind.extend(stamp.outer_kind if outputs else stamp.inner_kind)
        self.mem_shape.extend(stamp.mem_shape)
        self.mem_dtype.extend(stamp.mem_dtype)
        self.kernel_op.extend(fragment.kernel_op)
        self.kernel_target.extend(fragment.kernel_target)
        self.kernel_attrs.extend(fragment.kernel_attrs)
        self.kernel_flops.extend(fragment.kernel_flops)
        edges = self._edges
        edges["read_mem"].append(index[stamp.read_mem])
        edges["read_kernel"].append(stamp.read_kernel + kbase)
        edges["write_kernel"].append(stamp.write_kernel + kbase)
        edges["write_mem"].append(index[stamp.write_mem])
        return [int(index[o]) for o in fragment.outputs]

    def _edge_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        columns = {
            name: np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)
            for name, chunks in self._edges.items()
        }
        reads = np.stack([columns["read_mem"], columns["read_kernel"]], axis=1)
        writes = np.stack([columns["write_kernel"], columns["write_mem"]], axis=1)
        return reads, writes

    def fragment(self, root: str, num_inputs: int, outputs: Sequence[int]) -> Fragment:
        """Freeze the nodes so far as a :class:`Fragment` (names not yet resolved)."""
        reads, writes = self._edge_arrays()
        return Fragment(
            root=root,
            num_inputs=num_inputs,
            outputs=tuple(outputs),
            mem_name=list(self.mem_name),
            mem_kind=list(self.mem_kind),
            mem_shape=list(self.mem_shape),
            mem_dtype=list(self.mem_dtype),
            kernel_name=list(self.kernel_name),
            kernel_op=list(self.kernel_op),
            kernel_target=list(self.kernel_target),
            kernel_attrs=list(self.kernel_attrs),
            kernel_flops=list(self.kernel_flops),
            reads=reads,
            writes=writes,
        )

    def build(self) -> CompGraph:
        """The finished graph, with repeated kernel names numbered and activations named."""
        kernel_name = _number_repeats(self.kernel_name)
        reads, writes = self._edge_arrays()
        mem_name = list(self.mem_name)
        per_kernel = np.bincount(writes[:, 0], minlength=len(kernel_name))
        slot: dict[int, int] = {}
        for k, m in writes.tolist():
            if per_kernel[k] > 1:
                slot[k] = slot.get(k, -1) + 1
                if mem_name[m] is None:
                    mem_name[m] = f"{kernel_name[k]}:{slot[k]}"
            elif mem_name[m] is None:
                mem_name[m] = kernel_name[k]
        return CompGraph(
            mem_name=mem_name,
            mem_kind=np.asarray(self.mem_kind, dtype=np.int8),
            mem_shape=list(self.mem_shape),
            mem_dtype=list(self.mem_dtype),
            kernel_name=kernel_name,
            kernel_op=np.asarray(self.kernel_op, dtype=np.int16),
            kernel_target=list(self.kernel_target),
            kernel_attrs=list(self.kernel_attrs),
            kernel_flops=np.asarray(self.kernel_flops, dtype=np.int64),
            reads=reads,
            writes=writes,
        )


def _number_repeats(names: list[str]) -> list[str]:
    """``a, a, b, a`` → ``a, a#1, b, a#2``."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        out.append(f"{name}#{count}" if count else name)
    return out
