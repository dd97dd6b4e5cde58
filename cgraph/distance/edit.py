"""Graph-edit (transformation) distance between labelled networkx graphs.

A graph's nodes carry an op type under the attribute ``label`` (default
``"op"``); edges may carry a label under the same key (absent means unlabelled).
Costs come from a :class:`~cgraph.distance.costs.CostModel`.

* :func:`edit_distance`: exact, by ``networkx.graph_edit_distance`` with the cost
  model as its six cost callables.  Exponential in the graph size: small graphs only.
* :func:`approx_edit_distance`: the bipartite (Riesen-Bunke) approximation.  A
  square assignment problem over substitutions, deletions and insertions, whose
  substitution costs add an estimate of the cost of matching the two nodes'
  incident edges, is solved by ``scipy.optimize.linear_sum_assignment``; the node
  mapping is then improved by a few linearisation steps (each re-solves the
  assignment with the other nodes held where they are).  A mapping induces a
  complete edit path, whose exact cost is returned: any edit path costs at least
  the edit distance, so the result is an upper bound.  It is computed in both
  directions and the smaller kept, which makes it symmetric.
* :func:`edit_lower_bound`: the larger of two lower bounds (the BRANCH assignment
  bound, and node and edge parts minimised separately); it bounds the
  approximation's error where the exact value is out of reach.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import networkx as nx
import numpy as np
import scipy.sparse as sp
from cbred.cgraph.distance._blocks import OutSpec, prepare_output, resolve_dtype
from cbred.cgraph.distance.costs import CostModel
from scipy.optimize import linear_sum_assignment

NodeMapping = dict[Hashable, Hashable | None]


def _labels(graph: nx.Graph, label: str) -> list[str]:
    missing = [n for n, data in graph.nodes(data=True) if label not in data]
    if missing:
        raise ValueError(f"nodes {missing[:5]} have no {label!r} attribute; every node needs one")
    return [data[label] for _, data in graph.nodes(data=True)]


def _check_graph(graph: object) -> nx.Graph:
    if not isinstance(graph, nx.Graph):
        raise TypeError(f"expected a networkx graph, got {type(graph).__name__}")
    if graph.is_multigraph():
        raise ValueError("multigraphs are not supported; merge parallel edges first")
    return graph


def _check_pair(g1: object, g2: object) -> None:
    if _check_graph(g1).is_directed() != _check_graph(g2).is_directed():
        raise ValueError("cannot compare a directed with an undirected graph")


def networkx_costs(cost: CostModel, label: str = "op") -> dict[str, Callable[..., float]]:
    """The cost model as the keyword cost callables of ``networkx.graph_edit_distance``."""
    return {
        "node_subst_cost": lambda a, b: cost.substitute(a[label], b[label]),
        "node_del_cost": lambda a: cost.delete,
        "node_ins_cost": lambda a: cost.insert,
        "edge_subst_cost": lambda a, b: cost.edge_relabel(a.get(label), b.get(label)),
        "edge_del_cost": lambda a: cost.edge_delete,
        "edge_ins_cost": lambda a: cost.edge_insert,
    }


def edit_distance(
    g1: nx.Graph, g2: nx.Graph, cost: CostModel | None = None, *, label: str = "op"
) -> float:
    """Exact graph-edit distance under ``cost`` (default :class:`CostModel`)."""
    _check_pair(g1, g2)
    for graph in (g1, g2):
        _labels(graph, label)
    return float(nx.graph_edit_distance(g1, g2, **networkx_costs(cost or CostModel(), label)))


def edit_path_cost(
    g1: nx.Graph,
    g2: nx.Graph,
    mapping: NodeMapping,
    cost: CostModel | None = None,
    *,
    label: str = "op",
) -> float:
    """Exact cost of the edit path induced by a node mapping g1 → g2 (None: deleted).

    Nodes of g2 that no g1 node maps to are inserted; an edge survives (with a
    possible relabelling) when both its ends are mapped onto the ends of an edge
    of g2, and is deleted otherwise; the edges of g2 not reached are inserted.
    """
    cost = cost or CostModel()
    targets = [v for v in mapping.values() if v is not None]
    if len(set(targets)) != len(targets) or not set(targets) <= set(g2.nodes):
        raise ValueError("mapping must send g1 nodes injectively to g2 nodes or None")
    if set(mapping) != set(g1.nodes):
        raise ValueError("mapping must name every node of g1")
    total = 0.0
    for u, v in mapping.items():
        if v is None:
            total += cost.delete
        else:
            total += cost.substitute(g1.nodes[u][label], g2.nodes[v][label])
    total += cost.insert * (g2.number_of_nodes() - len(targets))
    kept = 0
    for u, w, data in g1.edges(data=True):
        a, b = mapping[u], mapping[w]
        if a is not None and b is not None and g2.has_edge(a, b):
            total += cost.edge_relabel(data.get(label), g2.edges[a, b].get(label))
            kept += 1
        else:
            total += cost.edge_delete
    return total + cost.edge_insert * (g2.number_of_edges() - kept)


def _edge_key(graph: nx.Graph, data: dict, other: Hashable, label: str, neighbours: bool) -> object:
    """An incident edge's key: its label, with the op of its other end if ``neighbours``."""
    return (data.get(label), graph.nodes[other][label]) if neighbours else data.get(label)


def _incident_keys(g1: nx.Graph, g2: nx.Graph, label: str, neighbours: bool) -> dict[object, int]:
    keys = {
        _edge_key(g, d, end, label, neighbours)
        for g in (g1, g2)
        for u, w, d in g.edges(data=True)
        for end in (u, w)
    }
    return {key: i for i, key in enumerate(sorted(keys, key=repr))}


def _incident_histograms(
    graph: nx.Graph, index: dict[object, int], label: str, direction: str, neighbours: bool
) -> np.ndarray:
    """(n, L) counts of each edge key on each node's out-, in- or (undirected) edges."""
    position = {node: i for i, node in enumerate(graph.nodes)}
    hist = np.zeros((graph.number_of_nodes(), max(1, len(index))), dtype=np.float64)
    for u, w, data in graph.edges(data=True):
        if direction in ("out", "both"):
            hist[position[u], index[_edge_key(graph, data, w, label, neighbours)]] += 1
        if direction in ("in", "both"):
            hist[position[w], index[_edge_key(graph, data, u, label, neighbours)]] += 1
    return hist


def _multiset_cost(h1: np.ndarray, h2: np.ndarray, cost: CostModel) -> np.ndarray:
    """Least cost to turn each edge-label multiset in h1 (n1, L) into each in h2 (n2, L)."""
    shared = np.minimum(h1[:, None, :], h2[None, :, :]).sum(axis=2)
    left = h1.sum(axis=1)[:, None] - shared
    right = h2.sum(axis=1)[None, :] - shared
    paired = np.minimum(left, right)
    relabel = min(cost.edge_substitute, cost.edge_insert + cost.edge_delete)
    return (
        paired * relabel + (left - paired) * cost.edge_delete + (right - paired) * cost.edge_insert
    )


def _assignment_matrix(
    node_costs: np.ndarray, delete: np.ndarray, insert: np.ndarray
) -> np.ndarray:
    """Square (n1+n2) assignment matrix: substitutions, deletions (diagonal), insertions."""
    n1, n2 = node_costs.shape
    big = np.full((n1 + n2, n1 + n2), np.inf)
    big[:n1, :n2] = node_costs
    big[:n1, n2:][np.diag_indices(n1)] = delete
    big[n1:, :n2][np.diag_indices(n2)] = insert
    big[n1:, n2:] = 0.0
    return big


def _substitution_costs(g1: nx.Graph, g2: nx.Graph, cost: CostModel, label: str) -> np.ndarray:
    ops = sorted(set(_labels(g1, label)) | set(_labels(g2, label)))
    table = cost.substitution_matrix(ops)
    code = {op: i for i, op in enumerate(ops)}
    c1 = np.array([code[x] for x in _labels(g1, label)], dtype=np.int64)
    c2 = np.array([code[x] for x in _labels(g2, label)], dtype=np.int64)
    return table[c1[:, None], c2[None, :]]


def _solve(
    node_costs: np.ndarray, delete: np.ndarray, insert: np.ndarray
) -> tuple[np.ndarray, float]:
    """Optimal assignment: for each g1 node the index of its g2 node or -1 (deleted),
    and the assignment's total cost."""
    n1, n2 = node_costs.shape
    square = _assignment_matrix(node_costs, delete, insert)
    rows, cols = linear_sum_assignment(square)
    image = np.full(n1, -1, dtype=np.int64)
    keep = (rows < n1) & (cols < n2)
    image[rows[keep]] = cols[keep]
    return image, float(square[rows, cols].sum())


def _as_mapping(g1: nx.Graph, g2: nx.Graph, image: np.ndarray) -> NodeMapping:
    nodes2 = list(g2.nodes)
    return {u: (nodes2[j] if j >= 0 else None) for u, j in zip(g1.nodes, image.tolist())}


def _branch_problem(
    g1: nx.Graph,
    g2: nx.Graph,
    cost: CostModel,
    label: str,
    substitution: np.ndarray,
    neighbours: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Riesen-Bunke assignment costs: (substitution, deletion, insertion) of each node
    plus half the least cost of matching, deleting or inserting its incident edges.

    Every edit path induces such an assignment and pays, for each node, at least
    half of that edge cost at each of an edge's two ends, so the optimal
    assignment's cost is a lower bound on the edit distance (the BRANCH bound).
    With ``neighbours`` an incident edge also carries its other end's op, which
    tells apart nodes with the same op and degrees (better mappings, but the
    assignment cost is then no longer a lower bound).
    """
    n1, n2 = substitution.shape
    index = _incident_keys(g1, g2, label, neighbours)
    directions = ("out", "in") if g1.is_directed() else ("both",)
    local = np.zeros((n1, n2))
    deg1, deg2 = np.zeros(n1), np.zeros(n2)
    for direction in directions:
        h1 = _incident_histograms(g1, index, label, direction, neighbours)
        h2 = _incident_histograms(g2, index, label, direction, neighbours)
        local += _multiset_cost(h1, h2, cost)
        deg1 += h1.sum(axis=1)
        deg2 += h2.sum(axis=1)
    return (
        substitution + 0.5 * local,
        cost.delete + 0.5 * cost.edge_delete * deg1,
        cost.insert + 0.5 * cost.edge_insert * deg2,
    )


def _refined_image(
    a1: sp.csr_array,
    a2: np.ndarray,
    cost: CostModel,
    substitution: np.ndarray,
    image: np.ndarray,
    directed: bool,
) -> np.ndarray:
    """One linearisation step: re-assign each node with all other nodes held at ``image``.

    Mapping u to v keeps the edges of u whose other end's image is the matching
    neighbour of v, ``(A1 X A2ᵀ + A1ᵀ X A2)[u, v]`` for the 0/1 assignment matrix X
    (``(A1 X A2)[u, v]`` for undirected graphs); the rest of u's edges are deleted
    and of v's inserted (halved, as each edge has two ends).  This is the linear
    part of the quadratic edit cost around ``image``.  ``X M`` is a row gather of M,
    and A1 is sparse, so no dense matrix product is needed.
    """
    n1, n2 = substitution.shape
    mapped = np.flatnonzero(image >= 0)

    def assigned(matrix: np.ndarray) -> np.ndarray:  # X @ matrix
        rows = np.zeros((n1, n2))
        rows[mapped] = matrix[image[mapped]]
        return rows

    if directed:
        kept = a1 @ assigned(a2.T) + a1.T @ assigned(a2)
        deg1 = (a1.sum(axis=0) + a1.sum(axis=1))[:, None]
        deg2 = (a2.sum(axis=0) + a2.sum(axis=1))[None, :]
    else:
        kept = a1 @ assigned(a2)
        deg1, deg2 = a1.sum(axis=1)[:, None], a2.sum(axis=1)[None, :]
    node_costs = substitution + 0.5 * (
        cost.edge_delete * (deg1 - kept) + cost.edge_insert * (deg2 - kept)
    )
    image, _ = _solve(
        node_costs,
        cost.delete + 0.5 * cost.edge_delete * deg1[:, 0],
        cost.insert + 0.5 * cost.edge_insert * deg2[0, :],
    )
    return image


def _approx_one_way(
    g1: nx.Graph, g2: nx.Graph, cost: CostModel, label: str, refinements: int
) -> float:
    """Best edit path found from two starting assignments (edge labels alone, and with
    neighbour ops), each improved by up to ``refinements`` linearisation steps;
    stops early when a path costs no more than the BRANCH lower bound."""
    substitution = _substitution_costs(g1, g2, cost, label)
    a1 = nx.to_scipy_sparse_array(g1, weight=None, format="csr", dtype=np.float64)
    a2 = nx.to_numpy_array(g2, weight=None)
    image, lower = _solve(*_branch_problem(g1, g2, cost, label, substitution))
    best = np.inf
    for neighbours in (False, True):
        if neighbours:
            image, _ = _solve(*_branch_problem(g1, g2, cost, label, substitution, neighbours))
        value = edit_path_cost(g1, g2, _as_mapping(g1, g2, image), cost, label=label)
        for _ in range(refinements):
            if value <= lower:  # the path meets the lower bound: it is optimal
                break
            image = _refined_image(a1, a2, cost, substitution, image, g1.is_directed())
            refined = edit_path_cost(g1, g2, _as_mapping(g1, g2, image), cost, label=label)
            if refined >= value:
                break
            value = refined
        best = min(best, value)
        if best <= lower:
            break
    return float(best)


def approx_edit_distance(
    g1: nx.Graph,
    g2: nx.Graph,
    cost: CostModel | None = None,
    *,
    label: str = "op",
    refinements: int = 10,
) -> float:
    """Bipartite upper bound on the edit distance (symmetric; exact cost of a real edit path).

    Two Riesen-Bunke assignments (incident edge labels alone, and with the ops at
    their other ends) each start up to ``refinements`` linearisation steps that
    re-solve the assignment around the current mapping while that lowers the
    path's cost; the cheapest path wins (``refinements=0``: plain bipartite bounds).
    """
    _check_pair(g1, g2)
    if refinements < 0:
        raise ValueError(f"refinements must be >= 0, got {refinements}")
    cost = cost or CostModel()
    return min(
        _approx_one_way(g1, g2, cost, label, refinements),
        _approx_one_way(g2, g1, cost, label, refinements),
    )


def edit_lower_bound(
    g1: nx.Graph, g2: nx.Graph, cost: CostModel | None = None, *, label: str = "op"
) -> float:
    """A lower bound on the edit distance, the larger of two valid bounds.

    * BRANCH: the optimal Riesen-Bunke assignment with edge costs halved between
      the two ends of each edge (see :func:`_branch_problem`).
    * Separate parts: the optimal node-label assignment ignoring edges plus the
      least cost of turning g1's multiset of edge labels into g2's; every edit path
      pays at least each part.
    """
    _check_pair(g1, g2)
    cost = cost or CostModel()
    n1, n2 = g1.number_of_nodes(), g2.number_of_nodes()
    substitution = _substitution_costs(g1, g2, cost, label)
    _, branch = _solve(*_branch_problem(g1, g2, cost, label, substitution))
    _, nodes = _solve(substitution, np.full(n1, cost.delete), np.full(n2, cost.insert))
    index = _incident_keys(g1, g2, label, neighbours=False)
    h1 = np.zeros((1, max(1, len(index))))
    h2 = np.zeros_like(h1)
    for hist, graph in ((h1, g1), (h2, g2)):
        for _, _, data in graph.edges(data=True):
            hist[0, index[data.get(label)]] += 1
    return max(branch, nodes + float(_multiset_cost(h1, h2, cost)[0, 0]))


def edit_matrix(
    graphs: Sequence[nx.Graph],
    cost: CostModel | None = None,
    *,
    method: str = "approx",
    label: str = "op",
    dtype: object = np.float32,
    out: OutSpec = None,
) -> np.ndarray:
    """N×N edit distances between ``graphs``: ``method`` "exact" or "approx" (upper bound)."""
    functions: dict[str, Callable[..., float]] = {
        "exact": edit_distance,
        "approx": approx_edit_distance,
    }
    if method not in functions:
        raise ValueError(f"method must be one of {sorted(functions)}, got {method!r}")
    pair_distance = functions[method]
    graphs = [_check_graph(g) for g in graphs]
    result = prepare_output(len(graphs), resolve_dtype(dtype), out)
    for i, g in enumerate(graphs):
        result[i, i] = 0.0
        for j in range(i + 1, len(graphs)):
            result[i, j] = result[j, i] = pair_distance(g, graphs[j], cost, label=label)
    return result


def random_labelled_dag(
    n_nodes: int, ops: Sequence[str], *, edge_prob: float, seed: int
) -> nx.DiGraph:
    """A random DAG on nodes 0..n-1 (edges i→j, i<j, kept with ``edge_prob``), ops drawn
    uniformly from ``ops``; for tests and benchmarks of the edit distances."""
    if n_nodes < 0 or not 0 <= edge_prob <= 1 or not ops:
        raise ValueError(
            f"need n_nodes >= 0, 0 <= edge_prob <= 1 and some ops; got {n_nodes}, {edge_prob}, "
            f"{list(ops)}"
        )
    rng = np.random.default_rng(seed)
    graph = nx.DiGraph()
    for node in range(n_nodes):
        graph.add_node(node, op=str(ops[rng.integers(len(ops))]))
    rows, cols = np.triu_indices(n_nodes, k=1)
    keep = rng.random(len(rows)) < edge_prob
    graph.add_edges_from(zip(rows[keep].tolist(), cols[keep].tolist()))
    return graph
