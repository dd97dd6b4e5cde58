"""Pluggable graph features (:mod:`cgraph.features`): built-ins, registry and matrices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cbred.cgraph import (
    VOCAB,
    VOCAB_INDEX,
    CompGraph,
    available_features,
    feature_matrix,
    get_feature,
    register_feature,
    trace,
    zoo,
)
from cbred.cgraph.distance import pairwise
from cbred.cgraph.features import unregister_feature
from torch import nn

BUILTIN = ("op_usage", "flops_usage", "params_usage", "kernel_shapes")
WIDTH_AWARE = ("flops_usage", "params_usage", "kernel_shapes")


def _tiny() -> nn.Module:
    """Conv2d(3→4, 3×3, bias) + BN + ReLU + Flatten + Linear(64→5) on a 1×3×4×4 input."""
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 5),
    )


@pytest.fixture(scope="module")
def tiny() -> CompGraph:
    return trace(_tiny(), torch.randn(1, 3, 4, 4), fallback="error")


@pytest.fixture(scope="module")
def mobilenets() -> list[CompGraph]:
    """Two MobileNetV2s that differ only in expansion ratio (channel widths)."""
    x = torch.randn(1, 3, 16, 16)
    return [trace(zoo.MobileNetV2(expand=e), x, fallback="error") for e in (2, 4)]


@pytest.fixture(scope="module")
def zoo_graphs() -> dict[str, tuple[nn.Module, CompGraph]]:
    out = {}
    for name in ("resnet", "transformer", "transformer_mha", "functional", "shared_block"):
        model, x = zoo.build(name)
        out[name] = (model, trace(model, x, fallback="error"))
    return out


# ------------------------------------------------------------------ built-in features
def test_builtins_are_registered_with_descriptions():
    assert set(BUILTIN) <= set(available_features())
    assert available_features() == sorted(available_features())
    for name in BUILTIN:
        feature = get_feature(name)
        assert feature.name == name and feature.description
    for name in ("op_usage", "flops_usage", "params_usage"):
        assert get_feature(name).columns == VOCAB


def test_op_usage_equals_op_histogram(tiny, zoo_graphs):
    graphs = [tiny] + [g for _, g in zoo_graphs.values()]
    matrix, columns = feature_matrix(graphs, "op_usage")
    assert columns == VOCAB
    np.testing.assert_array_equal(matrix, np.stack([g.op_histogram() for g in graphs]))
    assert matrix.dtype == np.float64
    # the default feature is op_usage
    np.testing.assert_array_equal(feature_matrix(graphs)[0], matrix)


def test_flops_and_params_by_hand_on_tiny_model(tiny):
    conv_flops = 4 * 4 * 4 * (3 * 3 * 3) + 4 * 4 * 4  # out elements × C_in k² + bias
    linear_flops = 5 * 64 + 5
    flops = get_feature("flops_usage")(tiny)
    assert set(flops) == set(VOCAB)
    assert {op: v for op, v in flops.items() if v} == {
        "conv3x3": conv_flops,
        "linear": linear_flops,
    }
    assert sum(flops.values()) == tiny.summary().flops == conv_flops + linear_flops

    params = get_feature("params_usage")(tiny)
    # batch norm: weight and bias only; running statistics are buffers
    assert {op: v for op, v in params.items() if v} == {
        "conv3x3": 4 * 3 * 9 + 4,
        "batch_norm": 4 + 4,
        "linear": 5 * 64 + 5,
    }

    assert get_feature("kernel_shapes")(tiny) == {
        "conv3x3[4x3x3x3]": 1,
        "batch_norm[4]": 1,
        "relu": 1,
        "reshape": 1,
        "linear[5x64]": 1,
    }


@pytest.mark.parametrize("name", ["resnet", "transformer", "transformer_mha", "functional"])
def test_flops_and_params_totals_on_zoo_models(zoo_graphs, name):
    model, graph = zoo_graphs[name]
    flops = get_feature("flops_usage")(graph)
    assert sum(flops.values()) == graph.summary().flops > 0
    expected = np.zeros(len(VOCAB))
    np.add.at(expected, graph.kernel_op.astype(np.int64), graph.kernel_flops)
    np.testing.assert_array_equal([flops[op] for op in VOCAB], expected)
    params = get_feature("params_usage")(graph)
    assert sum(params.values()) == sum(p.numel() for p in model.parameters())


def test_shared_parameters_count_once_per_reading_kernel(zoo_graphs):
    model, graph = zoo_graphs["shared_block"]
    params = get_feature("params_usage")(graph)
    block = sum(p.numel() for p in model.block.parameters())
    assert sum(params.values()) == sum(p.numel() for p in model.parameters()) + block
    conv = model.block[0].weight.numel()
    assert params["conv3x3"] == model.stem.weight.numel() + model.stem.bias.numel() + 2 * conv
    shapes = get_feature("kernel_shapes")(graph)
    assert shapes["conv3x3[8x8x3x3]"] == 2 and shapes["conv3x3[8x3x3x3]"] == 1


def test_kernel_shapes_of_depthwise_transposed_and_functional_convs():
    model = nn.Sequential(
        nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False),
        nn.ConvTranspose2d(4, 6, 2, stride=2, groups=2),
    )
    graph = trace(model, torch.randn(1, 4, 5, 5), fallback="error")
    assert get_feature("kernel_shapes")(graph) == {
        "dwconv3x3[4x1x3x3]": 1,
        "conv_transpose[4x3x2x2]": 1,
    }
    assert [model[0].weight.shape, model[1].weight.shape] == [(4, 1, 3, 3), (4, 3, 2, 2)]


def test_kernel_shapes_of_functional_calls_match_modules(zoo_graphs):
    shapes = get_feature("kernel_shapes")(zoo_graphs["functional"][1])
    assert shapes == {
        "conv3x3[6x3x3x3]": 1,
        "relu": 1,
        "max_pool2x2": 1,
        "adaptive_avg_pool": 1,
        "linear[10x6]": 1,
    }


def test_width_only_differences_are_seen_by_width_aware_features(mobilenets):
    assert np.array_equal(*(g.op_histogram() for g in mobilenets))
    op_matrix, _ = feature_matrix(mobilenets, "op_usage")
    assert pairwise(op_matrix, metric="hellinger", dtype=np.float64)[0, 1] == 0
    for name in WIDTH_AWARE:
        matrix, columns = feature_matrix(mobilenets, name)
        assert not np.array_equal(matrix[0], matrix[1]), name
        distance = pairwise(matrix, metric="hellinger", dtype=np.float64)
        assert distance[0, 1] > 1e-3 and distance[0, 1] == distance[1, 0], name
        np.testing.assert_allclose(np.diag(distance), 0, atol=1e-7)
    # kernel_shapes puts the two widths in disjoint conv/dwconv columns
    matrix, columns = feature_matrix(mobilenets, "kernel_shapes")
    dw = [j for j, c in enumerate(columns) if c.startswith("dwconv3x3[")]
    assert len(dw) == 4 and all((matrix[:, j] > 0).sum() == 1 for j in dw)


# ------------------------------------------------------------------ feature_matrix
def test_feature_matrix_aligns_union_of_columns(tiny, zoo_graphs):
    graphs = [tiny, zoo_graphs["transformer"][1], tiny]
    rows = [get_feature("kernel_shapes")(g) for g in graphs]
    matrix, columns = feature_matrix(graphs, "kernel_shapes")
    assert list(columns) == sorted(set(rows[0]) | set(rows[1]))
    assert matrix.shape == (3, len(columns)) and matrix.dtype == np.float64
    for row, values in zip(matrix, rows):
        assert {c: v for c, v in zip(columns, row) if v} == values
    assert matrix[0, columns.index("relu")] == 1 and matrix[1, columns.index("relu")] == 0
    assert matrix[1, columns.index("softmax")] == 1 and matrix[0, columns.index("softmax")] == 0
    np.testing.assert_array_equal(matrix[0], matrix[2])
    # per-op-type features always have the full vocabulary, in order
    flops, flop_columns = feature_matrix(graphs[:1], "flops_usage")
    assert flop_columns == VOCAB and flops[0, VOCAB_INDEX["linear"]] == 5 * 64 + 5


def test_feature_matrix_of_no_graphs():
    matrix, columns = feature_matrix([], "params_usage")
    assert matrix.shape == (0, len(VOCAB)) and columns == VOCAB
    matrix, columns = feature_matrix([], "kernel_shapes")
    assert matrix.shape == (0, 0) and columns == ()


# ------------------------------------------------------------------ registry
def test_unknown_feature_names_the_value_and_the_choices():
    with pytest.raises(ValueError, match=r"unknown feature 'widths'.*flops_usage.*op_usage"):
        get_feature("widths")
    with pytest.raises(ValueError, match="'widths'"):
        feature_matrix([], "widths")


def test_register_use_and_unregister_custom_feature(tiny, zoo_graphs):
    def memory_kinds(graph: CompGraph) -> dict[str, float]:
        return {"arrays": graph.num_memory, "kernels": graph.num_kernels}

    feature = register_feature("sizes", memory_kinds, "array and kernel counts", columns=["zz"])
    try:
        assert "sizes" in available_features() and get_feature("sizes") is feature
        graphs = [tiny, zoo_graphs["resnet"][1]]
        matrix, columns = feature_matrix(graphs, "sizes")
        assert columns == ("zz", "arrays", "kernels")  # declared first, then sorted
        np.testing.assert_array_equal(matrix, [[0, g.num_memory, g.num_kernels] for g in graphs])
        with pytest.raises(ValueError, match="already registered"):
            register_feature("sizes", memory_kinds, "again")
        register_feature("sizes", lambda g: {"k": g.num_kernels}, "kernels", overwrite=True)
        assert feature_matrix([tiny], "sizes")[1] == ("k",)
    finally:
        unregister_feature("sizes")
    assert "sizes" not in available_features()
    with pytest.raises(ValueError, match="unknown feature 'sizes'"):
        get_feature("sizes")
    with pytest.raises(ValueError, match="unknown feature 'sizes'"):
        unregister_feature("sizes")


def test_registry_rejects_bad_features_and_values(tiny):
    with pytest.raises(ValueError, match="non-empty string"):
        register_feature("", lambda g: {}, "empty name")
    with pytest.raises(TypeError, match="callable"):
        register_feature("bad", "not a function", "not callable")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not unique"):
        register_feature("bad", lambda g: {}, "dup", columns=("a", "a"))
    with pytest.raises(ValueError, match="built in"):
        unregister_feature("op_usage")
    assert "bad" not in available_features()
    register_feature("bad", lambda g: {"a": -1.0}, "negative")
    try:
        with pytest.raises(ValueError, match="'bad'.*column 'a'.*non-negative"):
            feature_matrix([tiny], "bad")
        register_feature("bad", lambda g: [1.0], "not a mapping", overwrite=True)
        with pytest.raises(TypeError, match="mapping"):
            feature_matrix([tiny], "bad")
    finally:
        unregister_feature("bad")
