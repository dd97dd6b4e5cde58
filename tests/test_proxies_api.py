"""The scoring API: registry, fusion, model preservation, robustness, devices, determinism."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from cbred import proxies
from cbred.bench.datasets import get_batch
from cbred.bench.nb201_proxies import nb201_model, score_nb201
from cbred.proxies.passes import plan
from torch import nn

torch.set_num_threads(1)
ARCH = (
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|"
    "+|avg_pool_3x3~0|nor_conv_3x3~1|nor_conv_1x1~2|"
)
DEAD = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|none~1|none~2|"


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    return get_batch("cifar10", batch_size=8, seed=0)


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def test_fused_results_equal_separate_results_exactly(batch) -> None:
    net = nb201_model(ARCH, seed=1, channels=4, cells_per_stage=1)
    names = proxies.available_proxies()
    fused = proxies.score(net, batch, names, seed=5)
    assert fused.passes == ("main", "synflow", "ntk", "zico", "meco", "zen", "aznas", "vkdnw")
    for name in names:
        alone = proxies.score(net, batch, [name], seed=5)
        assert _same(fused[name], alone[name]), name
    assert set(fused) == set(names) and len(fused) == len(names)


def test_scoring_the_model_itself_gives_the_copys_values(batch) -> None:
    """``copy_model=False`` (what score_space uses for the networks it builds) computes the
    statistics on the model itself, with the values of the default deep copy."""
    names = proxies.available_proxies()
    net = nb201_model(ARCH, seed=2, channels=4, cells_per_stage=1).eval()
    copied = proxies.score(net, batch, names, seed=5)
    assert not net.training  # the copy was scored
    itself = proxies.score(net, batch, names, seed=5, copy_model=False)
    assert net.training  # the model itself was scored
    assert all(_same(copied[n], itself[n]) for n in names)


def test_passes_are_planned_from_declared_needs() -> None:
    assert plan(frozenset()) == []
    assert plan(frozenset({"loss_grad", "relu_codes", "hvp"})) == ["main"]
    assert plan(frozenset({"synflow", "zico", "costs"})) == ["main", "synflow", "zico"]


def _snapshot(model: nn.Module):
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
        [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        [len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()],
    )


def test_the_model_is_left_as_it_was_given(batch) -> None:
    net = nb201_model(ARCH, seed=1, channels=4, cells_per_stage=1).eval()
    net.cells[0].layers[0].op[1].weight.requires_grad_(False)
    net.classifier.weight.grad = torch.ones_like(net.classifier.weight)
    seen = []
    net.classifier.register_forward_hook(lambda *_: seen.append(1))
    before = _snapshot(net)
    proxies.score(net, batch, proxies.available_proxies(), seed=0)
    after = _snapshot(net)
    assert all(torch.equal(before[0][k], after[0][k]) for k in before[0])
    assert before[1] == after[1] and before[2] == after[2] and before[4] == after[4]
    assert all(
        (a is None and b is None) or torch.equal(a, b)
        for a, b in zip(before[3], after[3], strict=True)
    )


def test_deterministic_for_a_seed_and_seed_reaches_dropout() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
    x, y = torch.randn(10, 6), torch.randint(0, 3, (10,))
    names = ["grad_norm", "snip", "naswot", "jacob_cov", "zico"]
    first = proxies.score(net, (x, y), names, seed=3)
    again = proxies.score(net, (x, y), names, seed=3)
    other = proxies.score(net, (x, y), names, seed=4)
    assert first.values == again.values
    assert first["grad_norm"] != other["grad_norm"]


def test_score_nb201_is_deterministic_and_timed() -> None:
    a = score_nb201(ARCH, ["snip", "naswot"], batch_size=8, channels=4, cells_per_stage=1)
    b = score_nb201(ARCH, ["snip", "naswot"], batch_size=8, channels=4, cells_per_stage=1)
    assert a.values == b.values
    assert a.seconds["total"] > 0 and "pass:main" in a.seconds


def test_dead_nb201_cell_gives_defined_values_or_reasons() -> None:
    result = score_nb201(DEAD, None, batch_size=8, channels=4, cells_per_stage=1)
    for name, value in result.items():
        assert math.isfinite(value) or name in result.errors, name
    assert result["grad_norm"] == 0.0 and result["synflow"] == 0.0
    assert math.isnan(result["jacob_cov"]) and "constant" in result.errors["jacob_cov"]


@pytest.mark.parametrize(
    "model,shape",
    [
        (
            lambda: nn.Sequential(nn.Flatten(), nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 3)),
            (3, 2, 2),
        ),
        (
            lambda: nn.Sequential(
                nn.Conv1d(3, 4, 3), nn.BatchNorm1d(4), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3)
            ),
            (3, 4),
        ),
    ],
)
def test_other_model_types_get_every_statistic(model, shape) -> None:
    torch.manual_seed(0)
    x, y = torch.randn(8, *shape), torch.randint(0, 3, (8,))
    result = proxies.score(model(), (x, y))
    for name, value in result.items():
        assert math.isfinite(value) or name in result.errors, name
    assert math.isfinite(result["naswot"]) and math.isfinite(result["synflow"])


def test_a_model_without_activations_says_so() -> None:
    net = nn.Sequential(nn.Linear(5, 8), nn.Linear(8, 3))
    x, y = torch.randn(8, 5), torch.randint(0, 3, (8,))
    result = proxies.score(net, (x, y), ["naswot", "linear_regions", "snip"])
    assert math.isnan(result["naswot"]) and "calls no activation" in result.errors["naswot"]
    assert math.isnan(result["linear_regions"]) and math.isfinite(result["snip"])


class _Functional(nn.Module):
    """The same layers as ``_modules(act)``, its activation called as a function."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.a, self.b, self.fn = nn.Linear(5, 64), nn.Linear(64, 3), fn

    def forward(self, x):
        return self.b(self.fn(self.a(x)))


def _modules(act: nn.Module) -> nn.Sequential:
    return nn.Sequential(nn.Linear(5, 64), act, nn.Linear(64, 3))


@pytest.mark.parametrize(
    "module, function",
    [
        (nn.ReLU(), F.relu),
        (nn.ReLU(), torch.relu),
        (nn.ReLU6(), F.relu6),
        (nn.LeakyReLU(0.1), lambda x: F.leaky_relu(x, 0.1)),
        (nn.GELU(), F.gelu),
        (nn.SiLU(), F.silu),
        (nn.Hardswish(), F.hardswish),
    ],
)
def test_every_activation_module_or_function_gives_the_same_codes(module, function) -> None:
    """NASWOT reads the sign pattern of the activation's input, module or functional, once."""
    torch.manual_seed(0)
    as_module = _modules(module)
    as_function = _Functional(function)
    weights = {
        k.replace("0.", "a.").replace("2.", "b."): v for k, v in as_module.state_dict().items()
    }
    as_function.load_state_dict(weights)
    relu = _Functional(F.relu)
    relu.load_state_dict(as_function.state_dict())
    x, y = torch.randn(8, 5), torch.randint(0, 3, (8,))
    names = ["naswot", "naswot_layerwise", "linear_regions"]
    a = proxies.score(as_module, (x, y), names)
    b = proxies.score(as_function, (x, y), names)
    c = proxies.score(relu, (x, y), names)  # the same pre-activation: the same codes
    for name in names:
        assert math.isfinite(a[name]) and a[name] == b[name] == c[name], name


def test_register_a_user_statistic() -> None:
    @proxies.register_proxy(
        "test_logit_grad", direction="lower", source="test", needs={"loss_grad"}
    )
    def logit_grad(r) -> float:
        """Norm of the classifier's gradient."""
        return float(r.grads[-1].norm())

    try:
        spec = proxies.get_proxy("test_logit_grad")
        assert spec.direction == "lower" and spec.formula.startswith("Norm")
        x, y = torch.randn(6, 4), torch.randint(0, 2, (6,))
        net = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
        fused = proxies.score(net, (x, y), ["test_logit_grad", "grad_norm"], seed=1)
        assert fused.passes == ("main",)
        assert 0 < fused["test_logit_grad"] <= fused["grad_norm"]
        with pytest.raises(ValueError, match="already registered"):
            proxies.register_proxy("test_logit_grad", direction="lower", source="", needs=())(
                logit_grad
            )
    finally:
        proxies.unregister_proxy("test_logit_grad")
    with pytest.raises(ValueError, match="unknown pass features"):
        proxies.register_proxy("x", direction="higher", source="", needs={"magic"})
    with pytest.raises(ValueError, match="direction"):
        proxies.register_proxy("x", direction="up", source="", needs=())


def test_bad_arguments_raise_clear_errors(batch) -> None:
    net = nn.Linear(3, 2)
    with pytest.raises(KeyError, match="unknown statistic 'nope'"):
        proxies.score(net, batch, ["nope"])
    with pytest.raises(ValueError, match="distinct"):
        proxies.score(net, batch, ["snip", "snip"])
    with pytest.raises(ValueError, match="string"):
        proxies.score(net, batch, "snip")
    with pytest.raises(ValueError, match="pair"):
        proxies.score(net, batch[0], ["snip"])
    with pytest.raises(ValueError, match="int64"):
        proxies.score(net, (batch[0], batch[1].float()), ["snip"])
    with pytest.raises(ValueError, match="nn.Module"):
        proxies.score(lambda x: x, batch, ["snip"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_asking_for_cuda_without_it_is_an_error(batch) -> None:
    with pytest.raises(ValueError, match="CUDA is not available"):
        proxies.score(nn.Linear(3, 2), batch, ["params"], device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_closely(batch) -> None:
    net = nb201_model(ARCH, seed=1, channels=4, cells_per_stage=1)
    names = ["grad_norm", "snip", "synflow", "naswot", "params", "flops"]
    cpu = proxies.score(net, batch, names, seed=0, device="cpu")
    gpu = proxies.score(net, batch, names, seed=0, device="cuda")
    for n in names:
        assert gpu[n] == pytest.approx(cpu[n], rel=1e-3), n


def test_full_fp32_turns_tf32_off_on_cuda_only_and_restores() -> None:
    """Rows scored on CUDA must equal CPU rows up to rounding: no TF32 inside, flags back after."""
    from cbred.proxies.api import full_fp32

    backends = torch.backends
    before = backends.cudnn.allow_tf32, backends.cuda.matmul.allow_tf32
    backends.cudnn.allow_tf32 = backends.cuda.matmul.allow_tf32 = True
    try:
        with full_fp32(torch.device("cpu")):
            assert backends.cudnn.allow_tf32 and backends.cuda.matmul.allow_tf32
        with full_fp32(torch.device("cuda")):
            assert not backends.cudnn.allow_tf32 and not backends.cuda.matmul.allow_tf32
        assert backends.cudnn.allow_tf32 and backends.cuda.matmul.allow_tf32
    finally:
        backends.cudnn.allow_tf32, backends.cuda.matmul.allow_tf32 = before


def test_input_keeps_its_layout_on_cpu() -> None:
    """The CPU scores the channels-last batch as given (faster here, values unchanged); only
    CUDA gets the standard layout (see input_on)."""
    from cbred.proxies.api import input_on

    x = torch.randn(4, 3, 8, 8).to(memory_format=torch.channels_last)
    kept = input_on(x, torch.device("cpu"))
    assert kept.is_contiguous(memory_format=torch.channels_last) and torch.equal(kept, x)
