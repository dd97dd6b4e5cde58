"""Graph passes: ``drop_noops`` removes what computes nothing and keeps everything else."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from cbred.cgraph import VOCAB, drop_noops, trace
from cbred.cgraph.distance import pairwise
from cbred.cgraph.graph import INPUT, OUTPUT, CompGraph
from cbred.cgraph.passes import noop_kernels
from cbred.cgraph.trace import _EagerRecorder, _run_preserving
from torch import nn

OLD_VOCAB_SIZE = 51  # the vocabulary before einsum, hardsigmoid, roll and rms_norm


def stochastic_depth(input: torch.Tensor, p: float, mode: str, training: bool = True):
    """torchvision.ops.stochastic_depth, same name and signature (torchvision is not a
    dependency): drops whole residual branches in training, the identity in eval."""
    if not training or p == 0.0:
        return input
    shape = [input.shape[0]] + [1] * (input.ndim - 1) if mode == "row" else [1] * input.ndim
    noise = torch.empty(shape, dtype=input.dtype).bernoulli_(1.0 - p)
    return input * noise / (1.0 - p)


torch.fx.wrap("stochastic_depth")  # as torchvision does; the trace records what it calls


class Plain(nn.Module):
    """conv-BN-ReLU stem, a residual block, pooling and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8))
        self.body = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8))
        self.head = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        x = F.relu(x + self.body(x))
        return self.head(F.adaptive_avg_pool2d(x, 1).flatten(1))


class Bookkept(Plain):
    """:class:`Plain` written as timm/torchvision write it: identity shortcuts and
    placeholders, stochastic depth on the branch, dropouts before the head."""

    def __init__(self) -> None:
        super().__init__()
        self.shortcut, self.se = nn.Identity(), nn.Identity()
        self.drop2d, self.drop = nn.Dropout2d(0.1), nn.Dropout(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.se(F.relu(self.stem(x)))
        branch = stochastic_depth(self.drop2d(self.body(x)), 0.1, "row", self.training)
        x = F.relu(self.shortcut(x) + branch)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.head(self.drop(F.dropout(x, 0.1, training=self.training).contiguous()))


X = torch.randn(2, 3, 8, 8)


def _eager(model: nn.Module, x: torch.Tensor) -> CompGraph:
    return _run_preserving(model, lambda: _EagerRecorder(model).run((x,))).build()


def _hellinger(a: CompGraph, b: CompGraph) -> float:
    return float(pairwise([a, b], "hellinger", dtype=np.float64)[0, 1])


def test_bookkeeping_is_removed_and_nothing_else() -> None:
    plain, kept = trace(Plain().eval(), X), trace(Bookkept().eval(), X)
    # two identities, contiguous, three dropouts; stochastic_depth in eval calls nothing
    assert kept.num_kernels == plain.num_kernels + 6
    assert _hellinger(plain, kept) > 0.1
    dropped = drop_noops(kept)
    dropped.validate()
    assert _hellinger(plain, dropped) == 0.0
    assert dropped.kernel_ops == plain.kernel_ops
    np.testing.assert_array_equal(dropped.kernel_flops, plain.kernel_flops)
    assert dropped.summary() == plain.summary()  # params, FLOPs, arrays, depth, outputs
    assert kept.summary().params == dropped.summary().params
    assert kept.summary().flops == dropped.summary().flops
    assert drop_noops(plain) == plain  # nothing to remove: an equal graph


def test_the_pass_is_pure_and_the_trace_option_applies_it() -> None:
    model = Bookkept().eval()
    graph = trace(model, X)
    before = trace(model, X)
    drop_noops(graph)
    assert graph == before
    assert trace(model, X, drop_noops=True) == drop_noops(graph)
    assert trace(model, X) == graph  # off by default


def test_eager_recording_gives_the_same_graph() -> None:
    # stochastic_depth in eval mode returns its input without a torch call, on both paths
    model = Bookkept().eval()
    eager = _eager(model, X)
    assert eager == trace(model, X)
    assert drop_noops(eager).kernel_ops == trace(Plain().eval(), X).kernel_ops


def test_dropout_that_drops_stays() -> None:
    class Mixed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.drop, self.off = nn.Dropout(0.3), nn.Dropout(0.0)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            # F.dropout's training defaults to True, so it drops even in an eval model
            return F.dropout(self.off(self.drop(x)), 0.5) + F.alpha_dropout(x, 0.5)

    ops = {
        mode: drop_noops(trace(Mixed().train(mode), torch.randn(4, 5))).kernel_ops
        for mode in (True, False)
    }
    # p = 0 drops nothing, and F.alpha_dropout's training defaults to False
    assert ops[True] == ["dropout", "dropout", "add"]
    assert ops[False] == ["dropout", "add"]  # F.dropout only
    graph = trace(Mixed().eval(), torch.randn(4, 5))
    attrs = [a for a, op in zip(graph.kernel_attrs, graph.kernel_ops) if op == "dropout"]
    assert attrs == [
        {"p": 0.3, "training": False},
        {"p": 0.0, "training": False},
        {"p": 0.5, "training": True},
        {"p": 0.5, "training": False},
    ]


def test_casts_stay_copies_go() -> None:
    class Casts(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.float().clone().detach().half().float() * 2

    graph = trace(Casts(), torch.randn(3))
    assert list(noop_kernels(graph)) == [True, True, True, False, False, False]
    assert drop_noops(graph).kernel_ops == ["identity", "identity", "mul"]


def test_chains_outputs_and_repeated_reads() -> None:
    class Ends(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin, self.id, self.drop = nn.Linear(4, 4), nn.Identity(), nn.Dropout(0.5)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            y = self.lin(x)
            return self.drop(self.id(self.id(y)) + y), self.id(x)

    graph = drop_noops(trace(Ends().eval(), torch.randn(2, 4)))
    graph.validate()
    # x + id(id(y)) reads y once; dropout's output was an output: the add's is now
    assert graph.kernel_ops == ["linear", "add", "identity"]
    add = graph.kernel_name.index("add")
    assert len(graph.reads[graph.reads[:, 1] == add]) == 1
    assert graph.mem_kind[graph.writes[graph.writes[:, 0] == add, 1][0]] == OUTPUT
    # the identity that returns the model input as an output stays: the output needs a writer
    assert graph.mem_kind[graph.reads[graph.reads[:, 1] == 2, 0][0]] == INPUT


def test_nb201_identities_stay_by_default(space) -> None:
    from cbred.bench.nb201_graph import nb201_graph

    arch = space.arch(
        space.index("|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|")
    )
    graph = nb201_graph(arch, 4, 1)
    identities = graph.op_histogram()[VOCAB.index("identity")]
    assert identities > 0  # skip_connect is an operation of the space
    dropped = drop_noops(graph)
    dropped.validate()
    assert dropped.op_histogram()[VOCAB.index("identity")] == 0
    assert dropped.summary().flops == graph.summary().flops


def test_new_types_are_appended_and_change_no_nb201_distance(space) -> None:
    assert VOCAB[OLD_VOCAB_SIZE - 1] == "other"
    assert VOCAB[OLD_VOCAB_SIZE:] == ("einsum", "hardsigmoid", "roll", "rms_norm")
    counts = np.unique(space.op_counts(), axis=0).astype(np.float64)
    assert not counts[:, OLD_VOCAB_SIZE:].any()
    for metric, options in [
        ("hellinger", {}),
        ("js", {}),
        ("sqrt_js", {}),
        ("kl", {}),  # smoothed with α = 0.5 by default
        ("kl", {"smoothing": 2.0}),
        ("hellinger", {"smoothing": 1.0}),
    ]:
        new = pairwise(counts, metric, dtype=np.float64, **options)
        old = pairwise(counts[:, :OLD_VOCAB_SIZE], metric, dtype=np.float64, **options)
        np.testing.assert_array_equal(new, old, err_msg=f"{metric} {options}")


@pytest.mark.parametrize("metric", ["kl", "js", "hellinger"])
def test_smoothing_covers_the_columns_the_rows_use(metric: str) -> None:
    counts = np.array([[3.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    wider = np.concatenate([counts, np.zeros((3, 5))], axis=1)
    for smoothing in (0.5, 1.0):
        np.testing.assert_array_equal(
            pairwise(wider, metric, dtype=np.float64, smoothing=smoothing),
            pairwise(counts[:, [0, 2]], metric, dtype=np.float64, smoothing=smoothing),
        )
