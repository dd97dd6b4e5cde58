"""Exact edit distance between NB201 cells, for the whole space at once.

An NB201 cell is a DAG on the four nodes ``input, node1, node2, output`` of one
shared skeleton; each of the six skeleton edges carries an operation, and an
edge whose operation is ``none`` is absent.  :func:`cell_graph` builds this graph
(node labels are the node roles, edge labels the operations).

Cost model: changing the op on an edge from a to b costs
``cost.substitute(a, b)``; creating an op where there was ``none`` costs
``cost.insert`` and removing one costs ``cost.delete``.  This is the 5×5 table
:func:`op_cost_table`, ``C``.  Nodes are labelled by their role, and
relabelling, deleting or inserting a node costs ``node_penalty``.

Decomposition theorem.  If ``node_penalty >= 3·max(C)`` the edit distance
between two cells a and b is ``Σ_e C[a_e, b_e]``, a sum over the six edges.
Proof: the identity node mapping induces exactly that edit path, which costs at
most ``6·max(C)``.  Both graphs have four nodes, so any other mapping either
relabels at least two nodes (a permutation that is not the identity moves at
least two) or deletes at least one node and inserts one, and so costs at least
``2·node_penalty >= 6·max(C)`` before counting any edge.  Hence the identity
mapping is optimal.  The tests check the sum against ``networkx.graph_edit_distance``
on sampled pairs.  Without the condition (for example unlabelled nodes) GED may
map node1 onto node2 and come out smaller than the edge sum.

With a metric :class:`CostModel` (see :mod:`cgraph.distance.costs`), ``C`` is a
metric on the five ops and the sum over edges is a metric on the space.

The whole 15,625 × 15,625 matrix is then table look-ups: the six edges are split
into two groups of three, each of the 125 op combinations of a group gets a
125 × 125 table of summed costs, and a block of rows is two gathers and one add.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import networkx as nx
import numpy as np
from cbred.bench.nb201 import EDGES, NUM_EDGES, OPS, Arch, NB201Space, parse_arch
from cbred.cgraph.distance._blocks import (
    OutSpec,
    prepare_output,
    resolve_dtype,
    row_blocks,
    row_chunk,
)
from cbred.cgraph.distance.costs import CostModel

NODE_ROLES: tuple[str, ...] = ("input", "node1", "node2", "output")
_GROUP = 3  # edges per look-up group
_COMBOS = len(OPS) ** _GROUP


def op_cost_table(cost: CostModel | None = None) -> np.ndarray:
    """(5, 5) float64 ``C[a, b]``: cost of turning edge op ``OPS[a]`` into ``OPS[b]``."""
    cost = cost or CostModel()
    table = cost.substitution_matrix(OPS)
    none = OPS.index("none")
    table[none, :] = cost.insert
    table[:, none] = cost.delete
    table[none, none] = 0.0
    return table


def default_node_penalty(cost: CostModel | None = None) -> float:
    """The smallest node penalty meeting the decomposition condition, ``3·max(C)``."""
    return 3.0 * float(op_cost_table(cost).max())


def cell_graph(arch: Arch | str | int, *, label: str = "op") -> nx.DiGraph:
    """The cell as a DiGraph: nodes 0..3 labelled by role, edges labelled by op, no ``none``."""
    arch = parse_arch(arch)
    graph = nx.DiGraph()
    for node, role in enumerate(NODE_ROLES):
        graph.add_node(node, **{label: role})
    for (source, target), op in zip(EDGES, arch.ops):
        if op != "none":
            graph.add_edge(source, target, **{label: op})
    return graph


def cell_networkx_costs(
    cost: CostModel | None = None, node_penalty: float | None = None, *, label: str = "op"
) -> dict[str, Callable[..., float]]:
    """``networkx.graph_edit_distance`` cost callables for :func:`cell_graph` graphs."""
    cost = cost or CostModel()
    penalty = default_node_penalty(cost) if node_penalty is None else float(node_penalty)
    return {
        "node_subst_cost": lambda a, b: 0.0 if a[label] == b[label] else penalty,
        "node_del_cost": lambda a: penalty,
        "node_ins_cost": lambda a: penalty,
        "edge_subst_cost": lambda a, b: cost.substitute(a[label], b[label]),
        "edge_del_cost": lambda a: cost.delete,
        "edge_ins_cost": lambda a: cost.insert,
    }


def _op_codes(archs: NB201Space | np.ndarray | Sequence[Arch | str | int]) -> np.ndarray:
    if isinstance(archs, NB201Space):
        return archs.op_matrix.astype(np.int64)
    if isinstance(archs, np.ndarray):
        if archs.dtype.kind not in "iu":
            raise ValueError(f"expected integer NB201 op codes, got an array of {archs.dtype}")
        codes = archs.astype(np.int64)
        if codes.ndim != 2 or codes.shape[1] != NUM_EDGES:
            raise ValueError(f"expected an (N, {NUM_EDGES}) array of op codes, got {codes.shape}")
        if codes.size and (codes.min() < 0 or codes.max() >= len(OPS)):
            raise ValueError(f"op codes must lie in 0..{len(OPS) - 1}")
        return codes
    archs = list(archs)
    space = NB201Space() if any(isinstance(a, (int, np.integer)) for a in archs) else None
    codes = [parse_arch(a, space).op_indices for a in archs]
    return np.array(codes, dtype=np.int64).reshape(-1, NUM_EDGES)


def _group_table(table: np.ndarray) -> np.ndarray:
    """(125, 125) summed cost of three edges over all pairs of their op combinations."""
    digits = np.array(np.unravel_index(np.arange(_COMBOS), (len(OPS),) * _GROUP)).T
    return sum(table[digits[:, k][:, None], digits[:, k][None, :]] for k in range(_GROUP))


def nb201_edit_matrix(
    archs: NB201Space | np.ndarray | Sequence[Arch | str | int] | None = None,
    cost: CostModel | None = None,
    *,
    dtype: object = np.float32,
    chunk: int | None = None,
    out: OutSpec = None,
) -> np.ndarray:
    """N×N exact edit distances between NB201 cells (default: the whole space, in
    NATS-Bench order); ``archs`` may be a space, an (N, 6) op-code array, or archs."""
    codes = _op_codes(NB201Space() if archs is None else archs)
    dtype = resolve_dtype(dtype)
    weights = len(OPS) ** np.arange(_GROUP - 1, -1, -1)
    first = codes[:, :_GROUP] @ weights
    second = codes[:, _GROUP:] @ weights
    group = _group_table(op_cost_table(cost)).astype(dtype)  # both groups share C
    n = len(codes)
    result = prepare_output(n, dtype, out)
    step = row_chunk(n, chunk, temporaries=2)
    scratch = np.empty((step, n), dtype)
    for block in row_blocks(n, step):
        rows = result[block]
        np.take(group[first[block]], first, axis=1, out=rows)
        extra = scratch[: len(rows)]
        np.take(group[second[block]], second, axis=1, out=extra)
        rows += extra
    return result


def cell_edit_distance(
    a: Arch | str | int, b: Arch | str | int, cost: CostModel | None = None
) -> float:
    """Exact edit distance between two cells, ``Σ_e C[a_e, b_e]``."""
    table = op_cost_table(cost)
    return float(
        sum(table[x, y] for x, y in zip(parse_arch(a).op_indices, parse_arch(b).op_indices))
    )
