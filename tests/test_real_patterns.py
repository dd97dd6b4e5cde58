"""Patterns of real models (issue #17), one tiny model each, with the behaviour asserted.

Every model is traced (fx, eval mode, as ``cbred trace`` does) and checked: the graph is
valid, its parameter count is the model's, its FLOPs are what
``torch.utils.flop_counter.FlopCounterMode`` counts (÷2: multiply-accumulates; the layers
have no bias, which the counter leaves out and the graph counts), its kernel types are
the expected ones and none is ``other``, and NASWOT is finite, with the activations it read
named.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from cbred import proxies
from cbred.bench.cli import main
from cbred.cgraph import drop_noops, trace
from cbred.cgraph.graph import INPUT
from cbred.cgraph.trace import _EagerRecorder, _run_preserving
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


class ReLU6SE(nn.Module):
    """MobileNetV3-style: depthwise-separable convs with ReLU6 and a hard-sigmoid SE gate."""

    def __init__(self) -> None:
        super().__init__()
        self.expand = nn.Sequential(nn.Conv2d(3, 16, 1, bias=False), nn.BatchNorm2d(16))
        self.dw = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False))
        self.act = nn.ReLU6()
        self.squeeze, self.excite = nn.Linear(16, 4, bias=False), nn.Linear(4, 16, bias=False)
        self.gate = nn.Hardsigmoid()
        self.head = nn.Linear(16, 10, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.dw(self.act(self.expand(x))))
        s = self.excite(F.relu6(self.squeeze(x.mean((2, 3)))))
        x = x * self.gate(s)[:, :, None, None]
        return self.head(x.mean((2, 3)))


class SmoothActs(nn.Module):
    """EfficientNet/ViT activations: SiLU after a conv, GELU in an MLP."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.act = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.SiLU()
        self.mlp = nn.Sequential(
            nn.Linear(8, 16, bias=False), nn.GELU(), nn.Linear(16, 10, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.act(self.conv(x)).mean((2, 3)))


class FunctionalReLU(nn.Module):
    """ReLU called as ``F.relu``: no activation module at all."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.fc = nn.Linear(8, 10, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class Bookkeeping(nn.Module):
    """timm-style placeholders: ``nn.Identity`` where a block is switched off, dropout
    before the head (inactive in eval mode)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.act = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.ReLU()
        self.se, self.drop_path = nn.Identity(), nn.Identity()
        self.drop, self.fc = nn.Dropout(0.2), nn.Linear(8, 10, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.conv(x))
        x = x + self.drop_path(self.se(x))
        return self.fc(self.drop(x.mean((2, 3))))


class EinsumAttention(nn.Module):
    """Modern token mixing: RMSNorm, einsum attention, a rolled (shifted) window, GELU MLP."""

    def __init__(self, dim: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.RMSNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim, bias=False), nn.Linear(dim, dim, bias=False)
        self.mlp = nn.Sequential(nn.Linear(dim, 32, bias=False), nn.GELU())
        self.head = nn.Linear(32, 10, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h = torch.roll(self.norm(x), shifts=1, dims=1)
        q, k, v = self.qkv(h).reshape(b, n, 3, self.heads, d // self.heads).unbind(2)
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(d // self.heads)
        mixed = torch.einsum("bhqk,bkhd->bqhd", scores.softmax(-1), v).reshape(b, n, d)
        x = x + self.proj(F.rms_norm(mixed, (d,)))
        return self.head(self.mlp(x).mean(1))


class WrappedAttention(nn.Module):
    """A transformer block around ``nn.MultiheadAttention`` (one ``attention`` kernel)."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, 2, bias=False, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 32, bias=False), nn.GELU())
        self.head = nn.Linear(32, 10, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x + self.attn(x, x, x)[0])
        return self.head(self.mlp(x).mean(1))


class TokenModel(nn.Module):
    """A tiny language model: token ids in, embedding, RMSNorm, ReLU MLP, logits out."""

    def __init__(self, vocab: int = 50, dim: int = 16) -> None:
        super().__init__()
        self.embed, self.norm = nn.Embedding(vocab, dim), nn.RMSNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 32, bias=False), nn.ReLU())
        self.out = nn.Linear(32, vocab, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.out(self.mlp(self.norm(self.embed(tokens))))


IMAGE = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
TOKENS_IN = torch.randn(4, 6, 16, generator=torch.Generator().manual_seed(0))
TOKEN_IDS = torch.randint(0, 50, (2, 6), generator=torch.Generator().manual_seed(0))

# model, example input, kernel types it must have, activation sites NASWOT must read
PATTERNS = {
    "relu6": (
        ReLU6SE,
        IMAGE,
        {"relu6", "hardsigmoid", "dwconv3x3", "conv1x1"},
        {"ReLU6": 2, "F.relu6": 1},
    ),
    "silu_gelu": (SmoothActs, IMAGE, {"silu", "gelu", "conv3x3"}, {"SiLU": 1, "GELU": 1}),
    "functional_relu": (FunctionalReLU, IMAGE, {"relu", "conv3x3"}, {"F.relu": 2}),
    "identity_dropout": (Bookkeeping, IMAGE, {"identity", "dropout"}, {"ReLU": 1}),
    "einsum_attention": (
        EinsumAttention,
        TOKENS_IN,
        {"einsum", "roll", "rms_norm", "softmax", "gelu"},
        {"GELU": 1},
    ),
    "wrapped_attention": (WrappedAttention, TOKENS_IN, {"attention", "gelu"}, {"GELU": 1}),
    "token_input": (TokenModel, TOKEN_IDS, {"embedding", "rms_norm", "relu"}, {"ReLU": 1}),
}


def _built(name: str) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    factory, x = PATTERNS[name][:2]
    return factory().eval(), x


def _counted_macs(model: nn.Module, x: torch.Tensor | tuple[torch.Tensor, ...]) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*x) if isinstance(x, tuple) else model(x)
    return counter.get_total_flops() // 2


@pytest.mark.parametrize("name", PATTERNS)
def test_traced_valid_with_the_models_params_and_flops(name: str) -> None:
    model, x = _built(name)
    graph = trace(model, x, fallback="error")
    graph.validate()
    assert graph.summary().params == sum(p.numel() for p in model.parameters())
    assert graph.summary().flops == _counted_macs(model, x)
    ops = set(graph.kernel_ops)
    assert PATTERNS[name][2] <= ops
    assert "other" not in ops, [t for t, op in zip(graph.kernel_target, graph.kernel_ops)]


@pytest.mark.parametrize("name", [n for n, entry in PATTERNS.items() if entry[3] is not None])
def test_naswot_is_finite_and_names_the_activations_it_read(name: str) -> None:
    model, x = _built(name)
    labels = torch.arange(len(x)) % 10
    result = proxies.score(model, (x, labels), ["naswot", "linear_regions"], seed=0)
    assert math.isfinite(result["naswot"]), result.errors
    assert result.code_sites["naswot"] == PATTERNS[name][3]
    assert result.code_sites["linear_regions"] == PATTERNS[name][3]


def test_identities_and_eval_dropout_are_dropped_on_request() -> None:
    model, x = _built("identity_dropout")
    graph = trace(model, x)
    dropped = trace(model, x, drop_noops=True)
    dropped.validate()
    assert graph.kernel_ops.count("identity") == 2 and graph.kernel_ops.count("dropout") == 1
    assert {"identity", "dropout"}.isdisjoint(dropped.kernel_ops)
    assert dropped.num_kernels == graph.num_kernels - 3
    assert dropped.summary().params == graph.summary().params
    assert dropped.summary().flops == graph.summary().flops
    # in training mode the dropout drops: it stays
    assert "dropout" in trace(model.train(), x, drop_noops=True).kernel_ops


def test_einsum_counts_what_bmm_counts() -> None:
    class Products(nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return torch.einsum("bij,bjk->bik", a, b), torch.bmm(a, b)

    a, b = torch.randn(3, 4, 5), torch.randn(3, 5, 6)
    graph = trace(Products(), (a, b))
    assert graph.kernel_ops == ["einsum", "matmul"]
    assert graph.kernel_flops[0] == graph.kernel_flops[1] == 3 * 4 * 5 * 6
    assert graph.kernel_attrs[0] == {"equation": "bij,bjk->bik"}
    assert graph.summary().flops == _counted_macs(Products(), (a, b))


def test_wrapped_attention_counts_projections_and_products() -> None:
    class Attend(nn.Module):  # with biases, which FlopCounterMode leaves out: by hand
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(16, 2, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.attn(x, x, x, need_weights=False)[0]

    x = TOKENS_IN
    graph = trace(Attend().eval(), x, fallback="error")
    batch, length, dim = x.shape
    per_sample = 4 * length * dim * dim + 2 * length * length * dim + 4 * length * dim
    ops = ["linear", "reshape", "permute", "split", "attention", "permute", "reshape", "linear"]
    assert graph.kernel_ops == ops
    assert graph.summary().flops == batch * per_sample


class TimmAttention(nn.Module):
    """timm's ``Attention`` written out: one packed qkv linear, heads split, F.sdpa, merged."""

    def __init__(self, dim: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.heads, self.qkv, self.proj = heads, nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class TorchvisionAttention(nn.Module):
    """torchvision's ViT block: the same attention through ``nn.MultiheadAttention``."""

    def __init__(self, dim: int = 16, heads: int = 2, batch_first: bool = True) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=batch_first)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, need_weights=False)[0]


def test_multihead_attention_is_the_graph_of_the_attention_it_computes() -> None:
    x = TOKENS_IN
    module, written = (trace(m().eval(), x) for m in (TorchvisionAttention, TimmAttention))
    assert module.kernel_ops == written.kernel_ops
    assert module.summary().flops == written.summary().flops
    assert [module.mem_shape[m] for m in module.writes[:, 1]] == [
        written.mem_shape[m] for m in written.writes[:, 1]
    ]
    sequence_first = trace(TorchvisionAttention(batch_first=False).eval(), x.transpose(0, 1))
    assert sequence_first.kernel_ops == module.kernel_ops
    sequence_first.validate()

    class Cross(TorchvisionAttention):
        def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
            return self.attn(x, memory, memory, need_weights=False)[0]

    cross = trace(Cross().eval(), (x[:2], x[2:]), fallback="error")
    assert cross.kernel_ops == ["attention"]  # other calls stay one kernel


def test_token_input_is_an_int64_array_read_by_the_embedding() -> None:
    model, x = _built("token_input")
    graph = trace(model, x)
    (inp,) = np.flatnonzero(graph.mem_kind == INPUT)
    assert graph.mem_dtype[inp] == "int64" and graph.mem_shape[inp] == (2, 6)
    first_reader = graph.reads[graph.reads[:, 0] == inp, 1]
    assert [graph.kernel_ops[k] for k in first_reader] == ["embedding"]


def test_token_ids_score_what_needs_no_float_input() -> None:
    model, x = _built("token_input")
    names = ["naswot", "jacob_cov", "synflow", "zen"]
    result = proxies.score(model, (x, torch.zeros(len(x), dtype=torch.long)), names)
    assert math.isfinite(result["naswot"]), result.errors
    for name in ("jacob_cov", "synflow", "zen"):
        assert math.isnan(result[name])
        assert result.errors[name].startswith(f"{name} needs a floating input")
        assert "torch.int64" in result.errors[name]


def test_no_activation_gives_nan_with_the_reason_and_no_sites() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
    result = proxies.score(model, (IMAGE, torch.arange(4)), ["naswot", "linear_regions", "tcet"])
    assert math.isnan(result["naswot"]) and "calls no activation" in result.errors["naswot"]
    assert result.code_sites["naswot"] == {} and result.code_sites["linear_regions"] == {}
    assert result.code_sites["tcet"] == {"Linear input": 1}  # tcet codes weight-layer inputs


def test_cli_prints_the_sites_and_drops_noops(capsys) -> None:
    argv = ["proxies", "score", "--arch", "0", "--score", "naswot,linear_regions,snip"]
    assert main([*argv, "--channels", "2", "--cells", "1", "--batch-size", "4"]) == 0
    assert "codes read by naswot, linear_regions: ReLU x" in capsys.readouterr().out
    spec = ["test_real_patterns:Bookkeeping", "--input-shape", "2,3,8,8"]
    assert main(["trace", "--model", *spec]) == 0
    assert "identity:2" in capsys.readouterr().out
    assert main(["trace", "--model", *spec, "--drop-noops"]) == 0
    assert "identity" not in capsys.readouterr().out
    models = ["test_real_patterns:Bookkeeping", "test_real_patterns:NoBookkeeping"]
    assert main(["distance", "--models", *models, "--input-shape", "2,3,8,8", "--drop-noops"]) == 0
    assert "zero pairs 1" in capsys.readouterr().out
    assert main(["distance", "--space", "nb201", "--drop-noops"]) == 2
    assert "--drop-noops applies to --models" in capsys.readouterr().err


class NoBookkeeping(Bookkeeping):
    """:class:`Bookkeeping` without its identities and dropout."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.conv(x))
        return self.fc((x + x).mean((2, 3)))


def test_the_pass_makes_the_two_writings_equal() -> None:
    with_noops, without = trace(Bookkeeping().eval(), IMAGE), trace(NoBookkeeping().eval(), IMAGE)
    assert not np.array_equal(with_noops.op_histogram(), without.op_histogram())
    np.testing.assert_array_equal(drop_noops(with_noops).op_histogram(), without.op_histogram())


def window_attention(x: torch.Tensor, qkv_weight: torch.Tensor, proj_weight: torch.Tensor,
                     shift: int, heads: int) -> torch.Tensor:  # fmt: skip
    """torchvision's ``shifted_window_attention`` in miniature: hidden from fx below."""
    b, n, d = x.shape
    x = torch.roll(x, shifts=-shift, dims=1)
    q, k, v = F.linear(x, qkv_weight).reshape(b, n, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
    attn = (q * (d // heads) ** -0.5).matmul(k.transpose(-2, -1)).softmax(-1)
    out = attn.matmul(v).transpose(1, 2).reshape(b, n, d)
    return torch.roll(F.linear(out, proj_weight), shifts=shift, dims=1)


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """torchvision's ``stochastic_depth`` in miniature: returns its input in eval mode."""
    if not training or p == 0:
        return x
    keep = torch.empty(x.shape[0], 1, 1, dtype=x.dtype).bernoulli_(1 - p)
    return x * keep / (1 - p)


torch.fx.wrap("window_attention")
torch.fx.wrap("drop_path")


class SwinLike(nn.Module):
    """A swin_t block as torchvision writes it: the attention inside an fx-wrapped function
    that takes the weights as arguments, and stochastic depth, also wrapped."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.qkv = nn.Parameter(torch.randn(3 * dim, dim) / dim**0.5)
        self.proj = nn.Parameter(torch.randn(dim, dim) / dim**0.5)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = window_attention(self.norm(x), self.qkv, self.proj, shift=1, heads=2)
        x = x + drop_path(y, 0.2, self.training)
        return self.head(x.mean(1))


def test_fx_looks_through_wrapped_functions_as_the_eager_recording_does() -> None:
    model = SwinLike().eval()
    x = TOKENS_IN
    graph = trace(model, x, fallback="error")
    eager = _run_preserving(model, lambda: _EagerRecorder(model).run((x,))).build()
    assert graph.kernel_ops == eager.kernel_ops
    assert graph.num_kernels == eager.num_kernels
    assert graph.summary().flops == eager.summary().flops
    assert graph.summary().params == sum(p.numel() for p in model.parameters())
    ops = graph.kernel_ops
    assert ops.count("roll") == 2 and ops.count("linear") == 3 and ops.count("matmul") == 2
    assert "other" not in ops and "dropout" not in ops  # drop_path in eval: nothing computed
    graph.validate()
    assert graph.summary().flops == _counted_macs(model, x)


def test_a_wrapped_function_in_training_mode_records_its_random_mask() -> None:
    model = SwinLike().train()
    graph = trace(model, TOKENS_IN, fallback="error")
    assert {"bernoulli", "div"} <= set(graph.kernel_target)


class SqueezeExcite(nn.Module):
    """An SE gate, pooled as torchvision writes it or as timm writes it."""

    def __init__(self, pool: str) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1) if pool == "module" else None
        self.reduce, self.expand = nn.Conv2d(8, 2, 1), nn.Conv2d(2, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.pool(x) if self.pool is not None else x.mean((2, -1), keepdim=True)
        return x * torch.sigmoid(self.expand(F.relu(self.reduce(s))))


def test_a_spatial_mean_is_the_global_average_pool_a_token_mean_is_not() -> None:
    x = torch.randn(2, 8, 5, 5)
    module, spatial = (trace(SqueezeExcite(p).eval(), x) for p in ("module", "mean"))
    assert module.kernel_ops == spatial.kernel_ops
    assert spatial.kernel_ops[0] == "adaptive_avg_pool"
    assert spatial.kernel_attrs[0] == {"output_size": (1, 1)}
    assert module.summary() == spatial.summary()

    class Means(nn.Module):  # (N, T, D) and (N, C, L) arrays are told apart by nothing
        def forward(self, t: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return t.mean(1), t.mean((1, 2)), t.mean(-1), x.mean((1, 2, 3)), x.mean(3)

    ops = trace(Means(), (torch.randn(2, 6, 4), x)).kernel_ops
    assert ops == ["reduce"] * 5


class TanhGELU(nn.Module):
    """GPT-2's MLP: GELU written out with ``torch.tanh`` (transformers' NewGELUActivation)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc, self.out = nn.Linear(16, 32, bias=False), nn.Linear(32, 10, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        h = 0.5 * h * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (h + 0.044715 * h**3)))
        return self.out(h).mean(1)


def test_tanh_gelu_is_read_with_the_code_of_gelu() -> None:
    x, labels = TOKENS_IN, torch.arange(len(TOKENS_IN)) % 10
    written_out = TanhGELU()
    as_module = nn.Sequential(written_out.fc, nn.GELU(approximate="tanh"), written_out.out)
    result = proxies.score(written_out, (x, labels), ["naswot"])
    assert result.code_sites["naswot"] == {"F.tanh": 1}
    reference = proxies.score(as_module, (x, labels), ["naswot"])
    assert reference.code_sites["naswot"] == {"GELU": 1}
    assert math.isclose(result["naswot"], reference["naswot"], rel_tol=1e-9)


class FoldedPatches(nn.Module):
    """MobileViT's transformer: patches folded into the batch, (B·P, N, D), before a SiLU
    MLP, and an attention bias cached on the module by an eval-mode forward (timm's LeViT)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.act = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.SiLU()
        self.mlp = nn.Sequential(nn.Linear(8, 16, bias=False), nn.SiLU())
        self.bias, self.head = nn.Parameter(torch.randn(16)), nn.Linear(1024, 10, bias=False)
        self.cache: dict[str, torch.Tensor] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            self.cache["bias"] = self.bias * 2  # kept between calls, with autograd history
        y = self.act(self.conv(x))  # (B, 8, 8, 8)
        b = y.shape[0]
        patches = y.reshape(b, 8, 4, 16).permute(0, 2, 3, 1).reshape(b * 4, 16, 8)
        return self.head(self.mlp(patches).reshape(b, -1))


def test_folded_batches_are_read_per_sample_and_cached_tensors_copied() -> None:
    model = FoldedPatches().eval()
    model(IMAGE)  # an eval forward with gradients on leaves a tensor with history behind
    labels = torch.arange(len(IMAGE)) % 10
    result = proxies.score(model, (IMAGE, labels), ["naswot", "swap", "tcet"])
    assert math.isfinite(result["naswot"]), result.errors
    assert result.code_sites["naswot"] == {"SiLU": 2}
    assert result.code_sites["tcet"] == {"Conv2d input": 1, "Linear input": 2}
    assert model.cache["bias"].grad_fn is not None  # the user's model is left as it was


def test_a_site_without_a_batch_axis_is_named_and_skipped() -> None:
    class SequenceFirst(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.relu(x.transpose(0, 1)).sum() + F.relu(x).sum()  # (L=3, B=4) then (B, L)

    result = proxies.score(SequenceFirst(), (torch.randn(4, 3, 5), torch.arange(4)), ["naswot"])
    assert result.code_sites["naswot"] == {"F.relu (skipped: no batch axis)": 1, "F.relu": 1}
    assert math.isfinite(result["naswot"])


def test_the_real_model_study_says_in_one_line_what_is_missing(monkeypatch, capsys) -> None:
    from cbred.bench import real_models

    monkeypatch.setattr(real_models, "LIBRARIES", ("torch", "cbred_no_such_library"))
    assert real_models.main([]) == 2
    out = capsys.readouterr().out.strip()
    assert len(out.splitlines()) == 1
    assert "cbred_no_such_library (ModuleNotFoundError" in out
