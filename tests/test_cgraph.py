"""The graph model, vocabulary, views and exports of :mod:`cgraph`."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from cbred.cgraph import MEMORY_KINDS, VOCAB, VOCAB_INDEX, CompGraph, trace, zoo
from cbred.cgraph.export import (
    KERNEL_FEATURES,
    MEMORY_FEATURES,
    from_json,
    load,
    save,
    to_json,
    to_networkx,
    to_pyg,
)
from cbred.cgraph.vocab import normalise_name, refine
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn


class Lambda(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


class ReluAdd(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(x)
        return y + x


# ------------------------------------------------------------------ vocabulary
def test_vocab_is_ordered_unique_and_indexed():
    assert len(set(VOCAB)) == len(VOCAB)
    assert all(VOCAB[i] == op for op, i in VOCAB_INDEX.items())
    for op in ("conv1x1", "conv3x3", "avg_pool3x3", "zero", "identity", "add", "other"):
        assert op in VOCAB


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("__add__", "add"),
        ("__iadd__", "add"),
        ("relu_", "relu"),
        ("__truediv__", "div"),
        ("add", "add"),
        ("_private", "_private"),
        ("__radd__", "add"),
    ],
)
def test_normalise_name(name, expected):
    assert normalise_name(name) == expected


@pytest.mark.parametrize(
    ("family", "attrs", "op"),
    [
        ("conv", {"kernel_size": (3, 3), "groups": 1, "in_channels": 8}, "conv3x3"),
        ("conv", {"kernel_size": (1, 1), "groups": 1, "in_channels": 8}, "conv1x1"),
        ("conv", {"kernel_size": (3, 1), "groups": 1, "in_channels": 8}, "conv"),
        ("conv", {"kernel_size": (3,), "groups": 1, "in_channels": 8}, "conv"),
        ("conv", {"kernel_size": (3, 3), "groups": 8, "in_channels": 8}, "dwconv3x3"),
        ("conv", {"kernel_size": (3, 3), "groups": 2, "in_channels": 8}, "conv3x3"),
        ("avg_pool", {"kernel_size": (3, 3)}, "avg_pool3x3"),
        ("max_pool", {"kernel_size": (2, 2)}, "max_pool2x2"),
        ("max_pool", {"kernel_size": (4, 4)}, "max_pool"),
        ("mul", {"scalar": 0.0}, "zero"),
        ("mul", {"scalar": 2}, "mul"),
        ("mul", {}, "mul"),
    ],
)
def test_refine(family, attrs, op):
    assert refine(family, attrs) == op


class FunctionalConv(nn.Module):
    """Owns a conv layer's parameters and applies them with a functional form."""

    def __init__(self, conv: nn.Conv2d, form) -> None:
        super().__init__()
        self.weight, self.bias, self.form = conv.weight, conv.bias, form

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.form(x, self.weight, self.bias)


def test_conv_aliases_give_one_kernel_type():
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
    models = [
        conv,
        FunctionalConv(conv, lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1)),
        FunctionalConv(conv, lambda x, w, b: torch.conv2d(x, w, b, (2, 2), (1, 1))),
    ]
    x = torch.randn(1, 3, 8, 8)
    graphs = [trace(nn.Sequential(m), x, fallback="error") for m in models]
    kernels = {(g.kernel_ops[0], repr(g.kernel_attrs[0]), int(g.kernel_flops[0])) for g in graphs}
    assert len(kernels) == 1
    op, _, flops = kernels.pop()
    assert op == "conv3x3"
    assert flops == 4 * 4 * 4 * (3 * 9) + 4 * 4 * 4  # out elements × (C_in k²) + bias


def test_add_aliases_give_one_kernel_type():
    def inplace(x):
        y = x * 2
        y += x
        return y

    forms = [
        lambda x: x + x.exp(),
        lambda x: torch.add(x, x.exp()),
        lambda x: x.add(x.exp()),
        inplace,
        lambda x: x.exp().add_(x),
    ]
    for form in forms:
        graph = trace(Lambda(form), torch.randn(2, 3))
        assert graph.kernel_ops[-1] == "add", graph.kernel_ops
        graph.validate()


# ------------------------------------------------------------------ graph model and views
@pytest.fixture(scope="module")
def relu_add() -> CompGraph:
    return trace(ReluAdd(), torch.randn(2, 3))


def test_small_graph_structure(relu_add):
    g = relu_add
    assert g.mem_name == ["x", "relu", "add"]
    assert [MEMORY_KINDS[k] for k in g.mem_kind] == ["input", "activation", "output"]
    assert g.kernel_ops == ["relu", "add"]
    assert g.reads.tolist() == [[0, 0], [1, 1], [0, 1]]
    assert g.writes.tolist() == [[0, 1], [1, 2]]
    assert g.mem_shape == [(2, 3)] * 3 and g.mem_dtype == ["float32"] * 3


def test_projections_and_adjacency_tensor(relu_add):
    g = relu_add
    np.testing.assert_array_equal(g.kernel_projection().toarray(), [[0, 1], [0, 0]])
    np.testing.assert_array_equal(
        g.memory_projection().toarray(), [[0, 1, 1], [0, 0, 1], [0, 0, 0]]
    )
    tensor = g.adjacency_tensor()
    assert tensor.shape == (3, 3, len(VOCAB)) and tensor.is_sparse
    entries = {tuple(i) for i in tensor.indices().T.tolist()}
    relu, add = VOCAB_INDEX["relu"], VOCAB_INDEX["add"]
    assert entries == {(0, 1, relu), (1, 2, add), (0, 2, add)}
    assert g.depth() == 2


def test_summary_histogram_distribution(relu_add):
    s = relu_add.summary()
    assert (s.params, s.flops, s.arrays, s.kernels, s.depth, s.inputs, s.outputs) == (
        0,
        0,
        3,
        2,
        2,
        1,
        1,
    )
    hist = relu_add.op_histogram()
    assert hist.shape == (len(VOCAB),) and hist.sum() == 2
    assert hist[VOCAB_INDEX["relu"]] == hist[VOCAB_INDEX["add"]] == 1
    np.testing.assert_allclose(relu_add.op_distribution().sum(), 1.0)
    assert "kernels" in s.format()


def _mutated(graph: CompGraph, **changes) -> CompGraph:
    fields = {f: getattr(graph, f) for f in CompGraph.__dataclass_fields__}
    fields.update(changes)
    return CompGraph(**fields)


def test_validate_rejects_cycles_and_double_writes(relu_add):
    relu_add.validate()
    # the relu kernel reads the array the add kernel writes: a cycle
    cyclic = _mutated(relu_add, reads=np.array([[2, 0], [1, 1], [0, 1]]))
    with pytest.raises(ValueError, match="before it is written"):
        cyclic.validate()
    double = _mutated(relu_add, writes=np.array([[0, 1], [1, 1]]))
    with pytest.raises(ValueError, match="written twice"):
        double.validate()
    input_written = _mutated(relu_add, writes=np.array([[0, 0], [1, 2]]))
    with pytest.raises(ValueError, match="kind input"):
        input_written.validate()


def test_empty_graph_has_no_distribution():
    graph = trace(Lambda(lambda x: x), torch.randn(2))
    assert graph.num_kernels == 0
    with pytest.raises(ValueError, match="no kernels"):
        graph.op_distribution()


# ------------------------------------------------------------------ exports
@pytest.mark.parametrize("name", [n for n, e in zoo.ZOO.items() if e.fx_traceable])
def test_json_round_trip_is_lossless(name, tmp_path):
    model, x = zoo.build(name)
    graph = trace(model, x)
    assert from_json(json.loads(json.dumps(to_json(graph)))) == graph
    assert load(save(graph, tmp_path / "g.json")) == graph


def test_networkx_export_is_bipartite_dag():
    model, x = zoo.build("resnet")
    graph = trace(model, x)
    g = to_networkx(graph)
    assert g.number_of_nodes() == graph.num_memory + graph.num_kernels
    assert g.number_of_edges() == len(graph.reads) + len(graph.writes)
    assert nx.is_directed_acyclic_graph(g)
    memory = {n for n, d in g.nodes(data=True) if d["bipartite"] == 0}
    assert nx.bipartite.is_bipartite_node_set(g.to_undirected(), memory)
    assert all((u in memory) != (v in memory) for u, v in g.edges)
    assert sum(d["kind"] == "parameter" for _, d in g.nodes(data=True) if "kind" in d) > 0


def test_pyg_export_features_and_edges():
    model, x = zoo.build("densenet_block")
    graph = trace(model, x)
    data = to_pyg(graph)
    assert data["memory"].x.shape == (graph.num_memory, len(MEMORY_FEATURES))
    assert data["kernel"].x.shape == (graph.num_kernels, len(KERNEL_FEATURES))
    assert data["memory"].x[:, : len(MEMORY_KINDS)].sum(1).eq(1).all()
    np.testing.assert_array_equal(data["kernel"].x[:, : len(VOCAB)].argmax(1), graph.kernel_op)
    np.testing.assert_array_equal(data["memory", "read", "kernel"].edge_index.T, graph.reads)
    np.testing.assert_array_equal(data["kernel", "write", "memory"].edge_index.T, graph.writes)
    log_numel = data["memory"].x[:, len(MEMORY_KINDS)]
    np.testing.assert_allclose(log_numel, np.log1p(graph.mem_numel), rtol=1e-6)


def test_graphml_and_file_errors(tmp_path):
    graph = trace(ReluAdd(), torch.randn(2, 3))
    path = save(graph, tmp_path / "g.graphml")
    read = nx.read_graphml(path)
    assert read.nodes["m0"]["shape"] == "2x3" and read.nodes["k0"]["op"] == "relu"
    with pytest.raises(ValueError, match="cannot tell the format"):
        save(graph, tmp_path / "g.txt")
    with pytest.raises(ValueError, match="only the lossless .json"):
        load(path)
    with pytest.raises(ValueError, match="not a cbred.compgraph"):
        from_json({"format": "other"})


# ------------------------------------------------------------------ properties on random nets
@st.composite
def conv_stacks(draw):
    """Random conv layers (kernel, stride, depthwise or not, bias) and a linear head."""
    channels = draw(st.integers(1, 6))
    layers, specs = [], []
    for _ in range(draw(st.integers(1, 4))):
        kernel = draw(st.sampled_from([1, 3, 5]))
        stride = draw(st.sampled_from([1, 2]))
        depthwise = draw(st.booleans()) and channels > 1
        out = channels if depthwise else draw(st.integers(1, 6))
        bias = draw(st.booleans())
        groups = channels if depthwise else 1
        layers += [
            nn.Conv2d(channels, out, kernel, stride, kernel // 2, groups=groups, bias=bias),
            nn.ReLU(),
        ]
        specs.append((channels, out, kernel, stride, groups, bias))
        channels = out
    layers += [nn.Flatten(), nn.LazyLinear(3)]
    return channels, specs, layers


@settings(max_examples=15, deadline=None)
@given(stack=conv_stacks(), size=st.integers(4, 12))
def test_random_conv_nets_match_analytic_counts(stack, size):
    channels_in, specs, layers = stack
    first = specs[0][0]
    x = torch.randn(2, first, size, size)
    model = nn.Sequential(*layers)
    model(x)  # materialise the lazy linear
    graph = trace(model, x)
    graph.validate()
    assert graph.summary().params == sum(p.numel() for p in model.parameters())
    assert graph.num_kernels == len(layers)
    flops, side, conv_ops = 0, size, []
    for c_in, c_out, kernel, stride, groups, bias in specs:
        side = (side + 2 * (kernel // 2) - kernel) // stride + 1
        outputs = 2 * c_out * side * side
        flops += outputs * (c_in // groups) * kernel * kernel + (outputs if bias else 0)
        if groups == 1:
            conv_ops.append(f"conv{kernel}x{kernel}")
        else:
            conv_ops.append(f"dwconv{kernel}x{kernel}" if kernel > 1 else "dwconv")
    assert graph.kernel_ops[: 2 * len(specs) : 2] == conv_ops
    features = channels_in * side * side
    flops += 2 * 3 * features + 2 * 3
    assert graph.summary().flops == flops
    assert from_json(to_json(graph)) == graph
