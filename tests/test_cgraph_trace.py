"""Tracing the model zoo: parameter and FLOP counts, structure, kernel counts, fallback."""

from __future__ import annotations

import functools
import inspect
import math
import warnings

import networkx as nx
import pytest
import torch
from cbred.cgraph import MEMORY_KINDS, TraceError, TraceFallbackWarning, trace, zoo
from cbred.cgraph.export import to_networkx
from cbred.cgraph.graph import PARAMETER
from cbred.cgraph.trace import _EagerRecorder, _run_preserving
from torch import nn

TRACEABLE = [name for name, entry in zoo.ZOO.items() if entry.fx_traceable]

# Executed operations per zoo model, counted from the model definitions:
EXPECTED_KERNELS = {
    # stem conv-bn-relu 3; identity blocks conv,bn,relu,conv,bn,identity,add,relu = 8 (×3);
    # projection block conv,bn,relu,conv,bn,conv,bn,add,relu = 9; head pool,flatten,fc = 3
    "resnet": 3 + 3 * 8 + 9 + 3,
    # stem 3; skip blocks 8 + add (×2); strided block 8; last 3; pool,flatten,dropout,linear 4
    "mobilenetv2": 3 + 2 * 9 + 8 + 3 + 4,
    # per layer cat,bn,relu,conv (×3) + final cat
    "densenet_block": 3 * 4 + 1,
    # norm; (linear,view,transpose)×3; transpose k; matmul; div; softmax; matmul; transpose;
    # reshape; out linear; add; norm; linear,gelu,linear; add
    "transformer": 1 + 9 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 3 + 1,
    # attention as its 8 operations (linear, reshape, permute, split, attention, permute,
    # reshape, linear), add, norm, linear, gelu, linear, add, norm
    "transformer_mha": 15,
    # conv2d, relu, max_pool2d, mean, linear
    "functional": 5,
    # stem conv; block conv,bn,relu twice; mean; linear
    "shared_block": 1 + 2 * 3 + 2,
}


@pytest.fixture(scope="module")
def traced():
    graphs = {}
    for name in TRACEABLE:
        model, x = zoo.build(name)
        graphs[name] = (model, x, trace(model, x, fallback="error"))
    return graphs


def conv_linear_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Reference MACs of every nn.Conv2d / nn.Linear call, from hooks on the real modules."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        n = output.numel()
        if isinstance(module, nn.Conv2d):
            per = module.in_channels // module.groups * math.prod(module.kernel_size)
        else:
            per = module.in_features
        total += n * per + (n if module.bias is not None else 0)

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    with torch.no_grad():
        model(x)
    for handle in handles:
        handle.remove()
    return total


@pytest.mark.parametrize("name", TRACEABLE)
def test_parameter_count_matches_model(traced, name):
    model, _, graph = traced[name]
    assert graph.summary().params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", ["resnet", "mobilenetv2", "densenet_block", "shared_block"])
def test_conv_and_linear_flops_match_analytic(traced, name):
    model, x, graph = traced[name]
    ops = graph.kernel_ops
    conv_linear = sum(
        int(f) for op, f in zip(ops, graph.kernel_flops) if "conv" in op or op == "linear"
    )
    assert conv_linear == conv_linear_macs(model, x)
    assert graph.summary().flops == conv_linear  # nothing else counts in these models


def test_functional_model_flops_by_hand(traced):
    _, _, graph = traced["functional"]
    conv = 2 * 6 * 8 * 8 * (3 * 3 * 3) + 2 * 6 * 8 * 8  # stride 2 → 8×8 outputs, with bias
    linear = 2 * 10 * 6 + 2 * 10
    # x.mean(dim=(2, 3)) is the global average pool
    assert graph.kernel_ops == ["conv3x3", "relu", "max_pool2x2", "adaptive_avg_pool", "linear"]
    assert graph.summary().flops == conv + linear


SELF_ATTENTION_OPS = [
    "linear", "reshape", "permute", "split", "attention", "permute", "reshape", "linear"
]  # fmt: skip


def test_attention_flops_by_hand_and_equal_between_forms(traced):
    batch, length, dim, hidden, heads = 2, 10, 16, 32, 2
    linear = batch * length * (dim + 1) * dim
    products = 2 * batch * heads * length * length * (dim // heads)
    mlp = batch * length * ((dim + 1) * hidden + (hidden + 1) * dim)
    expected = 4 * linear + products + mlp
    explicit, mha = traced["transformer"][2], traced["transformer_mha"][2]
    assert explicit.summary().flops == expected
    assert mha.summary().flops == expected
    assert explicit.kernel_ops.count("matmul") == 2 and "softmax" in explicit.kernel_ops
    assert {"layer_norm", "gelu"} <= set(explicit.kernel_ops)
    assert mha.kernel_ops[:8] == SELF_ATTENTION_OPS
    assert mha.kernel_attrs[0] == {"in_features": dim, "out_features": 3 * dim, "bias": True}


@pytest.mark.parametrize("name", TRACEABLE)
def test_graph_is_bipartite_and_acyclic(traced, name):
    graph = traced[name][2]
    graph.validate()
    g = to_networkx(graph)
    assert nx.is_directed_acyclic_graph(g)
    memory = {n for n, d in g.nodes(data=True) if d["bipartite"] == 0}
    assert all((u in memory) != (v in memory) for u, v in g.edges)


@pytest.mark.parametrize("name", TRACEABLE)
def test_kernel_count_equals_executed_operations(traced, name):
    assert traced[name][2].num_kernels == EXPECTED_KERNELS[name]


@pytest.mark.parametrize("name", TRACEABLE)
def test_eager_recording_equals_fx(traced, name):
    model, x, graph = traced[name]
    eager = _run_preserving(model, lambda: _EagerRecorder(model).run((x,))).build()
    assert eager == graph


def test_model_specific_structure(traced):
    resnet = traced["resnet"][2].kernel_ops
    assert resnet.count("add") == 4 and resnet.count("conv1x1") == 1
    mobile = traced["mobilenetv2"][2].kernel_ops
    assert mobile.count("dwconv3x3") == 3 and mobile.count("relu6") == 8
    assert mobile.count("add") == 2
    dense = traced["densenet_block"][2]
    cats = [k for k, op in enumerate(dense.kernel_ops) if op == "cat"]
    reads_of_last_cat = (dense.reads[:, 1] == cats[-1]).sum()
    assert reads_of_last_cat == 4  # the input and three layer outputs


def test_shared_module_reads_the_same_parameters(traced):
    _, _, graph = traced["shared_block"]
    convs = [k for k, name in enumerate(graph.kernel_name) if name.startswith("block.0")]
    assert [graph.kernel_name[k] for k in convs] == ["block.0", "block.0#1"]
    weights = [
        {int(m) for m in graph.reads[graph.reads[:, 1] == k, 0] if graph.mem_kind[m] == PARAMETER}
        for k in convs
    ]
    assert weights[0] == weights[1] and len(weights[0]) == 1
    assert sum(graph.mem_kind == PARAMETER) == 2 + 1 + 2 + 2  # stem w,b; conv w; bn w,b; head


def test_tied_weights_are_one_node():
    model = nn.Sequential(nn.Linear(4, 4, bias=False), nn.ReLU(), nn.Linear(4, 4, bias=False))
    model[2].weight = model[0].weight
    graph = trace(model, torch.randn(3, 4))
    params = [graph.mem_name[m] for m in range(graph.num_memory) if graph.mem_kind[m] == PARAMETER]
    assert params == ["0.weight"]
    assert graph.summary().params == 16


class Branchy(nn.Module):
    def __init__(self, bias: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        nn.init.zeros_(self.conv.weight)
        nn.init.constant_(self.conv.bias, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if y.sum() > 0:
            return torch.relu(y)
        return torch.sigmoid(y)


def test_data_dependent_model_error_names_the_line():
    with pytest.raises(TraceError, match=r"if y\.sum\(\) > 0"):
        trace(Branchy(1.0), torch.randn(1, 3, 4, 4), fallback="error")


def _passes_through(forward):
    @functools.wraps(forward)
    def wrapper(*args, **kwargs):
        return forward(*args, **kwargs)

    return wrapper


class Decorated(nn.Module):
    """A forward behind a decorator, as many libraries write them: fx fails on the
    signature ("co_varnames is too small") with no frame of the model's in the traceback."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    @_passes_through
    def forward(self, x, mask=None, **kwargs):
        return self.fc(x).relu()


def test_a_failure_without_a_user_frame_names_the_forward():
    line = inspect.getsourcelines(inspect.unwrap(Decorated.forward))[1]
    with pytest.warns(
        TraceFallbackWarning, match=rf"Decorated\.forward at .*test_cgraph_trace\.py:{line}"
    ):
        graph = trace(Decorated(), torch.randn(2, 4))
    graph.validate()
    assert graph.kernel_ops == ["linear", "relu"]


@pytest.mark.parametrize(("bias", "branch"), [(1.0, "relu"), (-1.0, "sigmoid")])
def test_data_dependent_model_falls_back_to_the_taken_branch(bias, branch):
    with pytest.warns(TraceFallbackWarning, match="control flow"):
        graph = trace(Branchy(bias), torch.randn(1, 3, 4, 4))
    graph.validate()
    assert graph.kernel_ops == ["conv1x1", "reduce", "elementwise", branch]
    assert MEMORY_KINDS[graph.mem_kind[-1]] == "output"


def test_zoo_data_dependent_model_traces_with_fallback():
    model, x = zoo.build("data_dependent")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceFallbackWarning)
        graph = trace(model, x)
    assert graph.summary().params == sum(p.numel() for p in model.parameters())


def test_tracing_leaves_the_model_unchanged():
    model, x = zoo.build("resnet")
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trace(model, x)
    after = model.state_dict()
    assert model.training
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_inplace_and_multi_output_ops():
    class Model(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a, b = x.chunk(2, dim=1)
            a = a.relu_()
            b += a
            return torch.cat([a, b], 1).flatten(1)

    graph = trace(Model(), torch.randn(2, 4, 3))
    graph.validate()
    assert graph.kernel_ops == ["split", "relu", "add", "cat", "reshape"]
    split_writes = graph.writes[graph.writes[:, 0] == 0, 1]
    assert [graph.mem_name[m] for m in split_writes] == ["chunk:0", "chunk:1"]
    assert graph.mem_shape[split_writes[0]] == (2, 2, 3)


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        trace(lambda x: x, torch.randn(2))
    with pytest.raises(TypeError, match="example_inputs"):
        trace(nn.ReLU(), [1, 2])
    with pytest.raises(ValueError, match="fallback"):
        trace(nn.ReLU(), torch.randn(2), fallback="export")


class Optional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, scale: float = 2.0):
        y = self.linear(x)
        return y * scale if mask is None else y * mask


def test_arguments_left_out_keep_their_defaults():
    alone = trace(Optional(), torch.randn(2, 3), fallback="error")
    assert alone.kernel_ops == ["linear", "mul"] and alone.kernel_attrs[1] == {"scalar": 2.0}
    masked = trace(Optional(), (torch.randn(2, 3), torch.randn(2, 3)), fallback="error")
    assert masked.mem_name[:2] == ["x", "mask"] and masked.kernel_attrs[1] == {}
