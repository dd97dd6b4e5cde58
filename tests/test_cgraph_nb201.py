"""The NB201 fast path: template graphs equal traced ones; whole-space op counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cbred.bench.nb201 import OPS, SPACE_SIZE, Arch
from cbred.bench.nb201_graph import iter_space_graphs, nb201_graph, space_op_counts
from cbred.bench.nb201_network import build_network, count_params_flops
from cbred.cgraph import VOCAB, VOCAB_INDEX, trace
from hypothesis import given, settings
from hypothesis import strategies as st

CHANNELS, CELLS = 4, 1


@pytest.fixture(scope="module")
def counts(space) -> np.ndarray:
    return space_op_counts(space)


def traced(arch, channels=CHANNELS, cells=CELLS, batch=1, resolution=32):
    network = build_network(arch, channels=channels, cells_per_stage=cells)
    return trace(network, torch.zeros(batch, 3, resolution, resolution), fallback="error")


@pytest.mark.parametrize(
    "arch",
    [Arch((op,) * 6) for op in OPS]
    + ["|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|"],
)
def test_fast_graph_equals_traced_graph(arch):
    fast = nb201_graph(arch, channels=CHANNELS, cells_per_stage=CELLS)
    assert fast == traced(arch)
    fast.validate()


@settings(max_examples=6, deadline=None)
@given(index=st.integers(0, SPACE_SIZE - 1), cells=st.integers(0, 2))
def test_fast_graph_equals_traced_graph_random(index, cells):
    fast = nb201_graph(index, channels=CHANNELS, cells_per_stage=cells)
    slow = traced(index, cells=cells)
    assert fast == slow
    np.testing.assert_array_equal(fast.op_histogram(), slow.op_histogram())
    assert fast.summary() == slow.summary()


def test_fast_graph_other_batch_and_resolution():
    arch = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|none~2|"
    fast = nb201_graph(arch, CHANNELS, CELLS, num_classes=10, batch_size=2, resolution=16)
    assert fast == traced(arch, batch=2, resolution=16)
    assert fast.mem_shape[0] == (2, 3, 16, 16)


@pytest.mark.parametrize("index", [0, 1, 4, 1234, 7777, 15624])
def test_params_and_flops_match_benchmark_counts(index):
    summary = nb201_graph(index).summary()
    assert (summary.params, summary.flops) == count_params_flops(index)


def expected_kernels(arch: Arch, cells: int) -> int:
    """Executed operations of the NB201 network, from its definition."""
    per_op = {"none": 1, "skip_connect": 1, "nor_conv_1x1": 3, "nor_conv_3x3": 3, "avg_pool_3x3": 1}
    cell = sum(per_op[op] for op in arch.ops) + 3  # three additions join the six edges
    reduction = 3 + 3 + 2 + 1  # two ReLU-conv-BN, avg-pool + 1x1 conv shortcut, add
    return 2 + 3 * cells * cell + 2 * reduction + 5  # stem; head bn,relu,pool,flatten,linear


@pytest.mark.parametrize("index", [0, 99, 5000, 15624])
def test_kernel_count_equals_executed_operations(space, index):
    arch = space.arch(index)
    assert nb201_graph(arch, cells_per_stage=2).num_kernels == expected_kernels(arch, 2)


def test_space_op_counts_shape_and_rows(space, counts):
    assert counts.shape == (SPACE_SIZE, len(VOCAB)) and counts.dtype == np.int64
    for index in space.sample(5, seed=1):
        np.testing.assert_array_equal(counts[index], nb201_graph(int(index)).op_histogram())


def test_space_op_counts_by_hand(space, counts):
    """Counts of the types that distinguish cells, for 5 cells per stage (15 cells)."""
    for index in (0, 3001, 15624):
        ops = space.arch(index).ops
        row = dict(zip(VOCAB, counts[index].tolist(), strict=True))
        assert row["conv3x3"] == 1 + 4 + 15 * ops.count("nor_conv_3x3")
        assert row["conv1x1"] == 2 + 15 * ops.count("nor_conv_1x1")
        assert row["avg_pool3x3"] == 15 * ops.count("avg_pool_3x3")
        assert row["avg_pool2x2"] == 2
        assert row["zero"] == 15 * ops.count("none")
        assert row["identity"] == 15 * ops.count("skip_connect")
        assert row["add"] == 15 * 3 + 2
        convs = ops.count("nor_conv_3x3") + ops.count("nor_conv_1x1")
        assert row["relu"] == 15 * convs + 4 + 1
        assert row["batch_norm"] == 15 * convs + 1 + 4 + 1


def test_space_op_counts_other_sizes(space):
    small = space_op_counts(space, channels=CHANNELS, cells_per_stage=2)
    for index in (12, 9876):
        graph = nb201_graph(index, channels=CHANNELS, cells_per_stage=2)
        np.testing.assert_array_equal(small[index], graph.op_histogram())
    assert small[:, VOCAB_INDEX["add"]].min() == 3 * 2 * 3 + 2
    with pytest.raises(ValueError, match="cells_per_stage"):
        space_op_counts(space, cells_per_stage=-1)


def test_iter_space_graphs_follows_indices(space):
    indices = [7, 3, 15000]
    graphs = list(iter_space_graphs(space, indices, channels=CHANNELS, cells_per_stage=CELLS))
    assert graphs == [nb201_graph(i, CHANNELS, CELLS) for i in indices]


def test_bad_arguments():
    with pytest.raises(ValueError, match="cells_per_stage"):
        nb201_graph(0, cells_per_stage=-1)
    with pytest.raises(ValueError):
        nb201_graph("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|")
