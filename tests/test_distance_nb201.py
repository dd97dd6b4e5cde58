"""The fast exact NB201 edit path: equal to networkx GED, metric, vectorised layout."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from cbred.bench.nb201 import OPS, SPACE_SIZE, Arch, NB201Space
from cbred.bench.nb201_edit import (
    cell_edit_distance,
    cell_graph,
    cell_networkx_costs,
    default_node_penalty,
    nb201_edit_matrix,
    op_cost_table,
)
from cbred.cgraph.distance import CostModel
from hypothesis import given, settings
from hypothesis import strategies as st


def _random_archs(n: int, seed: int) -> list[Arch]:
    codes = np.random.default_rng(seed).integers(0, SPACE_SIZE, size=n)
    return [Arch.from_code(int(c)) for c in codes]


def test_op_cost_table() -> None:
    table = op_cost_table()
    none, skip, c1, c3, pool = (OPS.index(o) for o in OPS)
    assert table[c3, c1] == 0.5 and table[c3, pool] == 1.0 and table[skip, c3] == 1.0
    assert table[none, c3] == 1.0 and table[c3, none] == 1.0 and np.all(np.diag(table) == 0)
    assert default_node_penalty() == 3.0


@pytest.mark.parametrize(
    "cost", [CostModel(), CostModel(same_family=0.3, cross_family=0.8, insert=2.0, delete=0.7)]
)
def test_equals_networkx_graph_edit_distance(cost: CostModel) -> None:
    archs = _random_archs(24, seed=11)
    archs += [a.with_op(1, "none") for a in archs[:4]]  # include one-edge neighbours
    matrix = nb201_edit_matrix(archs, cost, dtype=np.float64)
    costs = cell_networkx_costs(cost)
    pairs = [(i, j) for i in range(len(archs)) for j in range(len(archs)) if i != j][::13]
    assert len(pairs) >= 50
    for i, j in pairs:
        expected = nx.graph_edit_distance(cell_graph(archs[i]), cell_graph(archs[j]), **costs)
        assert matrix[i, j] == pytest.approx(expected), (archs[i], archs[j])
        assert cell_edit_distance(archs[i], archs[j], cost) == pytest.approx(expected)


def test_decomposition_needs_the_node_condition() -> None:
    # node1 and node2 swapped: with free node relabelling GED undercuts the edge sum
    a = Arch.from_string(
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|none~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|"
    )
    b = Arch.from_string(
        "|nor_conv_1x1~0|+|avg_pool_3x3~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|"
    )
    assert cell_edit_distance(a, b) == 4.0
    free = cell_networkx_costs(node_penalty=0.0)
    assert nx.graph_edit_distance(cell_graph(a), cell_graph(b), **free) == 0.0
    exact = nx.graph_edit_distance(cell_graph(a), cell_graph(b), **cell_networkx_costs())
    assert exact == 4.0


@settings(max_examples=30, deadline=None)
@given(codes=st.lists(st.integers(0, SPACE_SIZE - 1), min_size=3, max_size=3, unique=True))
def test_metric_properties(codes: list[int]) -> None:
    archs = [Arch.from_code(c) for c in codes]
    d = nb201_edit_matrix(archs, dtype=np.float64)
    assert np.all(np.diag(d) == 0) and np.all(d[~np.eye(3, dtype=bool)] > 0)
    np.testing.assert_array_equal(d, d.T)
    assert np.all(d[:, None, :] <= d[:, :, None] + d[None, :, :])


def test_layout_chunks_memmap_and_space_order(space: NB201Space, tmp_path) -> None:
    index = space.sample(300, seed=4)
    codes = space.op_matrix[index]
    full = nb201_edit_matrix(codes, dtype=np.float64)
    reference = op_cost_table()[codes[:, None, :], codes[None, :, :]].sum(axis=2)
    np.testing.assert_array_equal(full, reference)
    path = tmp_path / "E.npy"
    mapped = nb201_edit_matrix(codes, chunk=7, out=path)
    mapped.flush()
    np.testing.assert_array_equal(np.load(path), full.astype(np.float32))
    strings = [space.string(int(i)) for i in index[:5]]
    np.testing.assert_array_equal(nb201_edit_matrix(strings), full[:5, :5])
    neighbours = space.neighbours(int(index[0]))
    d = nb201_edit_matrix(space.op_matrix[[int(index[0]), *neighbours]])
    assert np.all(d[0, 1:] <= 1.0) and np.all(d[0, 1:] > 0)


def test_bad_op_codes_are_named() -> None:
    with pytest.raises(ValueError, match="op codes must lie"):
        nb201_edit_matrix(np.array([[0, 1, 2, 3, 4, 5]]))
    with pytest.raises(ValueError, match=r"\(N, 6\)"):
        nb201_edit_matrix(np.zeros((2, 5), dtype=np.int8))
