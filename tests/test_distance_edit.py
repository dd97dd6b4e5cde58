"""Graph-edit distance: exact wrapper vs plain networkx, bounds, metric properties, costs."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from cbred.cgraph.distance import (
    CostModel,
    approx_edit_distance,
    edit_distance,
    edit_lower_bound,
    edit_matrix,
    edit_path_cost,
    family_of,
)
from cbred.cgraph.distance.edit import random_labelled_dag
from hypothesis import given, settings
from hypothesis import strategies as st

OPS = ("conv3x3", "conv1x1", "avg_pool3x3", "max_pool3x3", "relu", "add")


def _plain_costs(same: float, cross: float, ins: float, dele: float, edge: float) -> dict:
    """Cost callables written directly from the cost model's definition (no CostModel)."""
    family = {"conv3x3": "c", "conv1x1": "c", "avg_pool3x3": "p", "max_pool3x3": "p"}

    def subst(a: dict, b: dict) -> float:
        if a["op"] == b["op"]:
            return 0.0
        fa, fb = family.get(a["op"], a["op"]), family.get(b["op"], b["op"])
        return same if fa == fb else cross

    return {
        "node_subst_cost": subst,
        "node_del_cost": lambda a: dele,
        "node_ins_cost": lambda a: ins,
        "edge_subst_cost": lambda a, b: 0.0,
        "edge_del_cost": lambda a: edge,
        "edge_ins_cost": lambda a: edge,
    }


def _pair(seed: int, max_nodes: int = 5) -> tuple[nx.DiGraph, nx.DiGraph]:
    rng = np.random.default_rng(seed)
    n1, n2 = rng.integers(1, max_nodes + 1, size=2)
    prob = float(rng.uniform(0.2, 0.8))
    return (
        random_labelled_dag(int(n1), OPS, edge_prob=prob, seed=2 * seed),
        random_labelled_dag(int(n2), OPS, edge_prob=prob, seed=2 * seed + 1),
    )


def test_exact_equals_plain_networkx_on_200_random_pairs() -> None:
    settings_ = [(0.5, 1.0, 1.0, 1.0, 1.0), (0.3, 2.0, 1.5, 1.5, 0.7)]
    for seed in range(200):
        same, cross, ins, dele, edge = settings_[seed % 2]
        cost = CostModel(
            same_family=same,
            cross_family=cross,
            insert=ins,
            delete=dele,
            edge_insert=edge,
            edge_delete=edge,
        )
        g1, g2 = _pair(seed)
        expected = nx.graph_edit_distance(g1, g2, **_plain_costs(same, cross, ins, dele, edge))
        assert edit_distance(g1, g2, cost) == pytest.approx(expected), seed


def test_approximation_bounds_and_error_on_small_graphs() -> None:
    cost = CostModel()
    errors = []
    for seed in range(1000, 1080):
        g1, g2 = _pair(seed, max_nodes=6)
        exact = edit_distance(g1, g2, cost)
        upper = approx_edit_distance(g1, g2, cost)
        lower = edit_lower_bound(g1, g2, cost)
        assert lower <= exact + 1e-9 <= upper + 2e-9, seed
        assert upper == approx_edit_distance(g2, g1, cost)
        errors.append(upper - exact)
    # a usable approximation: mostly exact, small mean excess
    assert np.mean(np.array(errors) == 0) > 0.6
    assert np.mean(errors) < 0.5


graph_seeds = st.integers(0, 10**6)


@settings(max_examples=30, deadline=None)
@given(seed=graph_seeds, labelled=st.booleans())
def test_upper_bound_never_undercuts_exact(seed: int, labelled: bool) -> None:
    g1, g2 = _pair(seed, max_nodes=5)
    if labelled:  # edge labels exercise the edge-relabel costs
        for g in (g1, g2):
            for i, (u, v) in enumerate(g.edges):
                g.edges[u, v]["op"] = "a" if (u + v + i) % 2 else "b"
    cost = CostModel(edge_substitute=0.5)
    exact = edit_distance(g1, g2, cost)
    assert edit_lower_bound(g1, g2, cost) <= exact + 1e-9
    assert approx_edit_distance(g1, g2, cost) >= exact - 1e-9


@settings(max_examples=15, deadline=None)
@given(seeds=st.lists(graph_seeds, min_size=3, max_size=3))
def test_exact_edit_distance_is_a_metric_with_metric_costs(seeds: list[int]) -> None:
    cost = CostModel()
    assert cost.is_metric(OPS)
    graphs = [random_labelled_dag(1 + s % 4, OPS, edge_prob=0.5, seed=s) for s in seeds]
    d = edit_matrix(graphs, cost, method="exact", dtype=np.float64)
    assert np.all(np.diag(d) == 0) and np.all(d >= 0)
    np.testing.assert_array_equal(d, d.T)
    assert np.all(d[:, None, :] <= d[:, :, None] + d[None, :, :] + 1e-9)
    relabelled = nx.relabel_nodes(graphs[0], {n: f"v{n}" for n in graphs[0]})
    assert edit_distance(graphs[0], relabelled, cost) == 0.0  # isomorphic: zero


def test_identity_mapping_path_cost_and_edit_path() -> None:
    g1 = random_labelled_dag(6, OPS, edge_prob=0.5, seed=1)
    assert edit_path_cost(g1, g1, {n: n for n in g1}) == 0.0
    g2 = g1.copy()
    g2.nodes[0]["op"] = "relu" if g1.nodes[0]["op"] != "relu" else "add"
    g2.add_edge(0, 5) if not g1.has_edge(0, 5) else g2.remove_edge(0, 5)
    cost = CostModel()
    expected = cost.substitute(g1.nodes[0]["op"], g2.nodes[0]["op"]) + 1.0
    assert edit_path_cost(g1, g2, {n: n for n in g1}, cost) == expected
    assert approx_edit_distance(g1, g2, cost) <= expected
    deleting = {n: None for n in g1}
    total = len(g1) + len(g2) + g1.number_of_edges() + g2.number_of_edges()
    assert edit_path_cost(g1, g2, deleting, cost) == total


def test_large_graph_bounds_bracket_a_known_edit() -> None:
    g1 = random_labelled_dag(120, OPS, edge_prob=0.03, seed=5)
    g2 = g1.copy()
    for node in (3, 50, 99):
        g2.nodes[node]["op"] = "add" if g1.nodes[node]["op"] != "add" else "relu"
    g2.remove_node(7)
    known = edit_path_cost(g1, g2, {n: (None if n == 7 else n) for n in g1})
    lower, upper = edit_lower_bound(g1, g2), approx_edit_distance(g1, g2)
    assert lower <= upper <= known


def test_cost_model_heuristic_and_metric_conditions() -> None:
    cost = CostModel()
    assert cost.substitute("conv3x3", "conv1x1") < cost.substitute("conv3x3", "avg_pool3x3")
    assert cost.substitute("nor_conv_3x3", "nor_conv_1x1") == cost.same_family
    assert family_of("avg_pool3x3") == family_of("max_pool2x2") == "pool"
    assert family_of("mystery") == "mystery"
    assert CostModel(families={"mystery": "conv"}).substitute("mystery", "conv1x1") == 0.5
    over = CostModel(overrides={("relu", "gelu"): 0.1})
    assert over.substitute("gelu", "relu") == 0.1
    assert cost.metric_violations(OPS) == []
    assert CostModel(insert=1.0, delete=2.0).metric_violations(OPS)
    assert CostModel(cross_family=3.0).metric_violations(OPS)  # cheaper to delete+insert
    assert CostModel(overrides={("relu", "add"): 0.0}).metric_violations(OPS)
    broken = CostModel(overrides={("conv3x3", "relu"): 0.2, ("relu", "conv1x1"): 0.2})
    assert any("triangle" in p for p in broken.metric_violations(OPS))


def test_bad_inputs_are_named() -> None:
    g = random_labelled_dag(3, OPS, edge_prob=0.5, seed=0)
    unlabelled = nx.DiGraph([(0, 1)])
    with pytest.raises(ValueError, match="no 'op' attribute"):
        edit_distance(g, unlabelled)
    with pytest.raises(ValueError, match="directed with an undirected"):
        approx_edit_distance(g, g.to_undirected())
    with pytest.raises(TypeError, match="networkx graph"):
        edit_lower_bound(g, [1, 2])
    with pytest.raises(ValueError, match="method must be"):
        edit_matrix([g, g], method="fast")
    with pytest.raises(ValueError, match="injectively"):
        edit_path_cost(g, g, {0: 1, 1: 1, 2: 2})
    with pytest.raises(ValueError, match="cost same_family"):
        CostModel(same_family=-1)


def test_undirected_graphs_are_supported() -> None:
    g1 = random_labelled_dag(5, OPS, edge_prob=0.6, seed=8).to_undirected()
    g2 = random_labelled_dag(5, OPS, edge_prob=0.6, seed=9).to_undirected()
    exact = edit_distance(g1, g2)
    assert edit_lower_bound(g1, g2) <= exact <= approx_edit_distance(g1, g2)
