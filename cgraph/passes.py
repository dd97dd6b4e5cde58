"""Graph passes: pure functions from a :class:`~cgraph.graph.CompGraph` to a new one.

Like a ``torch.fx`` pass or a networkx algorithm, a pass never changes its input graph;
it returns a new graph that again satisfies :meth:`CompGraph.validate`.

:func:`drop_noops` removes the bookkeeping kernels that compute nothing in the mode the
model was traced in.  Two implementations of one network differ in such kernels (timm's
EfficientNet-B0 adds 90 ``nn.Identity`` calls to torchvision's), and every one of them
counts in the op-usage distribution as much as a convolution does, so they move the
network in every distance although the function is the same.
"""

from __future__ import annotations

import numpy as np
from cbred.cgraph.graph import ACTIVATION, OUTPUT, CompGraph
from cbred.cgraph.vocab import VOCAB_INDEX

_IDENTITY = VOCAB_INDEX["identity"]
_DROPOUT = VOCAB_INDEX["dropout"]


def noop_kernels(graph: CompGraph) -> np.ndarray:
    """Boolean mask of the kernels that return their input unchanged, as traced.

    * ``identity`` kernels (``nn.Identity``, ``clone``, ``contiguous``, ``detach``, ``to``,
      ...) whose output has the shape and dtype of their input: a cast to another dtype
      (``x.half()`` of a float32 ``x``) computes something and stays;
    * ``dropout`` kernels of every kind (``nn.Dropout*``, ``F.dropout*``, alpha dropout)
      traced with ``training`` False or ``p`` 0.

    Only kernels that read an input (the first array read, the one passed through), write
    one array and count 0 FLOPs qualify.  Dropout kernels of graphs saved before dropout
    had the ``p``/``training`` attributes stay.
    """
    mask = np.zeros(graph.num_kernels, dtype=bool)
    first_read = _first_reads(graph)
    written = np.bincount(graph.writes[:, 0], minlength=graph.num_kernels)
    for k in np.flatnonzero(np.isin(graph.kernel_op, (_IDENTITY, _DROPOUT))):
        source = first_read[k]
        if source < 0 or written[k] != 1 or graph.kernel_flops[k] != 0:
            continue
        if graph.kernel_op[k] == _IDENTITY:
            out = graph.writes[graph.writes[:, 0] == k, 1][0]
            mask[k] = (
                graph.mem_shape[out] == graph.mem_shape[source]
                and graph.mem_dtype[out] == graph.mem_dtype[source]
            )
        else:
            attrs = graph.kernel_attrs[k]
            mask[k] = attrs.get("training") is False or attrs.get("p") == 0
    return mask


def drop_noops(graph: CompGraph) -> CompGraph:
    """A new graph without the kernels of :func:`noop_kernels`.

    Each removed kernel's output array goes too, and the kernels that read it read the
    removed kernel's input instead (a chain of no-ops collapses onto its first input), so
    the graph stays bipartite and acyclic and :meth:`CompGraph.validate` passes.  A kernel
    reading an array twice after the rewiring (``x + identity(x)``) reads it once, as
    ``x + x`` does.  Parameters, buffers and FLOPs are unchanged: no-ops read no
    parameters and count 0 FLOPs.  When a no-op's output is a model output, its input
    becomes that output; a no-op that writes an output straight from a model input or a
    parameter stays (the output would otherwise vanish).

    Reshapes (``view``, ``flatten``, ``squeeze``, ...) are *not* removed, although they move
    no data: they change the shape the next kernel reads, which the graph records on the
    array between them (a ``linear`` reading the flattened ``(N, C·H·W)`` array).  Removing
    them would leave kernels reading arrays of another shape than the one they computed on;
    and they are part of how a network is written, not bookkeeping added around the same
    computation as identities and inactive dropouts are.

    NB201's ``skip_connect`` is an ``identity`` kernel and a searchable operation, so
    :func:`cgraph.trace` keeps no-ops unless asked (``drop_noops=True``).
    """
    drop = noop_kernels(graph)
    alias = np.arange(graph.num_memory)
    kind = graph.mem_kind.copy()
    first_read = _first_reads(graph)
    writes_of = {int(k): int(m) for k, m in graph.writes}
    for k in np.flatnonzero(drop):
        source, out = alias[first_read[k]], writes_of[int(k)]
        if kind[out] == OUTPUT:
            if kind[source] not in (ACTIVATION, OUTPUT):
                drop[k] = False
                continue
            kind[source] = OUTPUT
        alias[out] = source
    keep_kernel = ~drop
    removed = np.zeros(graph.num_memory, dtype=bool)
    removed[graph.writes[np.isin(graph.writes[:, 0], np.flatnonzero(drop)), 1]] = True
    keep_mem = ~removed
    new_mem = np.cumsum(keep_mem) - 1
    new_kernel = np.cumsum(keep_kernel) - 1

    reads = graph.reads[keep_kernel[graph.reads[:, 1]]]
    reads = np.stack([new_mem[alias[reads[:, 0]]], new_kernel[reads[:, 1]]], axis=1)
    _, first = np.unique(reads, axis=0, return_index=True)
    reads = reads[np.sort(first)]  # one read per (array, kernel), in the original order
    writes = graph.writes[keep_kernel[graph.writes[:, 0]]]
    writes = np.stack([new_kernel[writes[:, 0]], new_mem[writes[:, 1]]], axis=1)

    kernels = np.flatnonzero(keep_kernel)
    arrays = np.flatnonzero(keep_mem)
    return CompGraph(
        mem_name=[graph.mem_name[i] for i in arrays],
        mem_kind=kind[keep_mem],
        mem_shape=[graph.mem_shape[i] for i in arrays],
        mem_dtype=[graph.mem_dtype[i] for i in arrays],
        kernel_name=[graph.kernel_name[k] for k in kernels],
        kernel_op=graph.kernel_op[keep_kernel],
        kernel_target=[graph.kernel_target[k] for k in kernels],
        kernel_attrs=[graph.kernel_attrs[k] for k in kernels],
        kernel_flops=graph.kernel_flops[keep_kernel],
        reads=reads,
        writes=writes,
    )


def _first_reads(graph: CompGraph) -> np.ndarray:
    """Per kernel, the first array it reads (its input, reads being in argument order); -1
    for a kernel that reads nothing."""
    first = np.full(graph.num_kernels, -1, dtype=np.int64)
    kernels, index = np.unique(graph.reads[:, 1], return_index=True)
    first[kernels] = graph.reads[index, 0]
    return first
