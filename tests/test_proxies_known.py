"""Known-answer tests of the training-free statistics on tiny hand-made networks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from cbred import proxies
from cbred.bench.nb201_network import count_params_flops
from cbred.bench.nb201_proxies import nb201_model
from cbred.proxies.ensemble import mean_rank, ranks, vote
from torch import nn

torch.set_num_threads(1)


def _batch(n: int, *shape: int, classes: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *shape, generator=g), torch.randint(0, classes, (n,), generator=g)


@pytest.mark.parametrize("arch", [0, 1234, 15624])
def test_params_and_flops_match_the_analytic_nb201_counts(arch: int) -> None:
    net = nb201_model(arch, channels=4, cells_per_stage=1)
    result = proxies.score(net, _batch(2, 3, 32, 32), ["params", "flops"])
    params, flops = count_params_flops(arch, channels=4, cells_per_stage=1)
    assert result["params"] == params and result["flops"] == flops


def test_flops_of_grouped_conv_with_bias_and_linear() -> None:
    net = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1, groups=2), nn.Flatten(), nn.Linear(6 * 25, 3))
    result = proxies.score(net, _batch(3, 4, 5, 5), ["params", "flops"])
    conv = 6 * 25 * (2 * 9 + 1)
    linear = 3 * (150 + 1)
    assert result["flops"] == conv + linear
    assert result["params"] == 6 * 2 * 9 + 6 + 150 * 3 + 3


def test_synflow_of_a_linear_chain_is_depth_times_the_path_sum() -> None:
    torch.manual_seed(1)
    layers = [nn.Linear(5, 7, bias=False), nn.Linear(7, 4, bias=False), nn.Linear(4, 3, bias=False)]
    net = nn.Sequential(layers[0], nn.ReLU(), layers[1], nn.BatchNorm1d(4), layers[2])
    prod = torch.ones(5, dtype=torch.float64)
    for layer in layers:
        prod = layer.weight.detach().double().abs() @ prod
    result = proxies.score(net, _batch(4, 5), ["synflow"])
    # R is linear in each layer's |θ|, so Σ θ ∂R/∂θ = R per layer; batch norm is dropped.
    assert result["synflow"] == pytest.approx(3 * float(prod.sum()), rel=1e-12)


def test_synflow_overflow_is_nan_with_a_reason() -> None:
    net = nn.Sequential(*[nn.Linear(4, 4, bias=False) for _ in range(10)])
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(1e36)  # (4·10³⁶)¹⁰ exceeds float64
    result = proxies.score(net, _batch(4, 4), ["synflow", "grad_norm"])
    assert math.isnan(result["synflow"]) and "overflow" in result.errors["synflow"]
    assert "grad_norm" in result.values


CODES = torch.tensor([[1, 0, 1, 1], [1, 1, 0, 1], [0, 0, 1, 0], [1, 0, 0, 1], [0, 1, 1, 1]])


def _hamming_kernel(codes: np.ndarray) -> np.ndarray:
    n_units = codes.shape[1]
    return np.array([[n_units - np.sum(a != b) for b in codes] for a in codes], dtype=float)


def test_naswot_kernel_on_hand_made_relu_codes() -> None:
    x = CODES.float() * 2 - 1  # the ReLU sees +1 where the code is 1
    second = torch.tensor([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0]])

    class TwoReLUs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.ReLU(), nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([self.a(x), self.b(second.float() * 2 - 1)], 1)

    result = proxies.score(
        TwoReLUs(), (x, torch.zeros(5, dtype=torch.int64)), ["naswot", "naswot_layerwise"]
    )
    k1, k2 = _hamming_kernel(CODES.numpy()), _hamming_kernel(second.numpy())
    assert result["naswot"] == pytest.approx(np.linalg.slogdet(k1 + k2)[1], rel=1e-12)
    # k2 (five 2-bit codes) has rank ≤ 3: singular, so that layer is skipped.
    assert np.linalg.matrix_rank(k2) < 5 and np.linalg.matrix_rank(k1) == 5
    assert result["naswot_layerwise"] == pytest.approx(np.linalg.slogdet(k1)[1], rel=1e-12)


def test_naswot_of_a_single_relu_equals_numpy_slogdet() -> None:
    result = proxies.score(
        nn.ReLU(), (CODES.float() - 0.5, torch.zeros(5, dtype=torch.int64)), ["naswot"]
    )
    assert result["naswot"] == pytest.approx(np.linalg.slogdet(_hamming_kernel(CODES.numpy()))[1])


def test_ntk_of_a_linear_model() -> None:
    torch.manual_seed(0)
    x, y = _batch(6, 8)
    net = nn.Linear(8, 3, bias=False)
    # J_i = 1_C ⊗ x_i, so Θ = C·X Xᵀ and κ is the condition number of X Xᵀ.
    eig = np.linalg.eigvalsh((x @ x.T).double().numpy())
    result = proxies.score(net, (x, y), ["ntk_cond"])
    assert result["ntk_cond"] == pytest.approx(eig[-1] / eig[0], rel=1e-6)


def test_jacob_cov_of_a_linear_model_has_a_closed_form() -> None:
    x, y = _batch(5, 6)
    net = nn.Linear(6, 3)
    # Every input Jacobian is Σ_k W_k: the correlation matrix is all ones, eigenvalues (n, 0…).
    k, n = 1e-5, 5
    expected = -(math.log(n + k) + 1 / (n + k)) - (n - 1) * (math.log(k) + 1 / k)
    assert proxies.score(net, (x, y), ["jacob_cov"])["jacob_cov"] == pytest.approx(
        expected, rel=1e-6
    )


def test_linear_regions_of_a_1d_relu_net_on_a_grid() -> None:
    net = nn.Sequential(nn.Linear(1, 4), nn.ReLU(), nn.Linear(4, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0], [-1.0], [2.0], [1.0]]))
        net[0].bias.copy_(torch.tensor([0.0, 0.5, -1.0, 2.0]))
    # Breakpoints −b/w = 0, 0.5, 0.5, −2: two inside (−1, 1), hence three regions (the
    # grids avoid the breakpoints themselves, where a unit is exactly zero).
    grid = torch.linspace(-1, 1, 200).unsqueeze(1)
    result = proxies.score(net, (grid, torch.zeros(200, dtype=torch.int64)), ["linear_regions"])
    assert result["linear_regions"] == 3
    wide = torch.linspace(-3, 3, 600).unsqueeze(1)
    result = proxies.score(net, (wide, torch.zeros(600, dtype=torch.int64)), ["linear_regions"])
    assert result["linear_regions"] == 4


def _conv_net() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 5, 3, stride=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(5 * 9, 3),
    )


def test_gradient_saliencies_match_a_direct_computation() -> None:
    x, y = _batch(6, 3, 8, 8)
    net = _conv_net()
    result = proxies.score(net, (x, y), ["grad_norm", "snip", "grasp", "fisher", "ssnr"])
    ref = _conv_net().train()
    weights = [m.weight for m in ref if isinstance(m, nn.Conv2d | nn.Linear)]
    acts = []
    h = x
    for m in ref:
        h = m(h)
        if isinstance(m, nn.Conv2d | nn.Linear):
            acts.append(h)
    both = torch.autograd.grad(F.cross_entropy(h, y), weights + acts, create_graph=True)
    g, act_grads = both[: len(weights)], both[len(weights) :]
    assert result["grad_norm"] == pytest.approx(sum(float(t.detach().norm()) for t in g), rel=1e-5)
    sal = [(w * t).abs().detach() for w, t in zip(weights, g, strict=True)]
    assert result["snip"] == pytest.approx(sum(float(s.sum()) for s in sal), rel=1e-5)
    ssnr = sum(float(s.sum() / s.std(correction=0)) for s in sal)
    assert result["ssnr"] == pytest.approx(ssnr, rel=1e-5)
    fisher = 0.0
    for a, ag, w in zip(acts, act_grads, weights, strict=True):
        prod = a.detach() * ag.detach()
        per_channel = prod.sum((2, 3)) if prod.dim() == 4 else prod
        fisher += float(per_channel.pow(2).mean(0).sum()) * 0.5 * w[0].numel()
    assert result["fisher"] == pytest.approx(fisher, rel=1e-5)
    hg = torch.autograd.grad(sum((t.detach() * t).sum() for t in g), weights)
    grasp = -sum(float((w.detach() * t).sum()) for w, t in zip(weights, hg, strict=True))
    assert result["grasp"] == pytest.approx(grasp, rel=1e-4)


def test_zico_matches_its_definition_on_two_half_batches() -> None:
    x, y = _batch(8, 3, 8, 8)
    result = proxies.score(_conv_net(), (x, y), ["zico"])
    ref = _conv_net().train()
    weights = [m.weight for m in ref if isinstance(m, nn.Conv2d | nn.Linear)]
    grads = []
    for xs, ys in ((x[:4], y[:4]), (x[4:], y[4:])):
        grads.append(torch.autograd.grad(F.cross_entropy(ref(xs), ys), weights))
    total = 0.0
    for layer in zip(*grads, strict=True):
        g = torch.stack([t.flatten() for t in layer]).double()
        std = g.std(0, correction=0)
        keep = std > 0
        total += math.log(float((g.abs().mean(0)[keep] / std[keep]).sum()))
    assert result["zico"] == pytest.approx(total, rel=1e-6)


def test_ensembles_rank_by_direction_and_majority() -> None:
    assert list(ranks([3.0, 1.0, float("nan"), 2.0])) == [4, 2, 1, 3]
    assert list(ranks([3.0, 1.0, 2.0], "lower")) == [1, 3, 2]
    table = {"synflow": [3, 2, 1], "jacob_cov": [1, 3, 2], "snip": [3, 1, 2]}
    # pairwise majorities: 0 beats 1 (2 of 3) and 2 (2 of 3); 1 beats 2 (2 of 3)
    assert list(vote(table)) == [1.0, 0.5, 0.0]
    assert list(mean_rank(table, ["synflow", "snip"])) == [3.0, 1.5, 1.5]
    assert list(mean_rank({"ntk_cond": [1.0, 5.0], "snip": [1.0, 5.0]}, ["ntk_cond", "snip"])) == [
        1.5,
        1.5,
    ]
    with pytest.raises(KeyError, match="missing"):
        vote({"snip": [1, 2]})


class _ShiftInPlace(nn.Module):
    """x + 1 written into x (an in-place op that, unlike ReLU, changes a·∂L/∂a)."""

    def __init__(self, in_place: bool) -> None:
        super().__init__()
        self.in_place = in_place

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.add_(1.0) if self.in_place else x + 1.0


def test_fisher_is_unchanged_by_in_place_ops_on_a_layer_output() -> None:
    """An in-place op right after a conv overwrites the conv's output during the forward;
    the pass notices and reruns with protected outputs, so every value equals the
    out-of-place network's."""
    x, y = _batch(6, 3, 8, 8)
    nets = []
    for in_place in (False, True):
        net = _conv_net()
        net.insert(4, _ShiftInPlace(in_place))  # directly on the second conv's output
        nets.append(net)
    stats = ["fisher", "grad_norm", "snip", "naswot"]
    expected, got = (proxies.score(net, (x, y), stats) for net in nets)
    for name in stats:
        assert got[name] == pytest.approx(expected[name], rel=1e-6), name


def test_agreement_kernel_is_the_same_whichever_gram_product_runs(monkeypatch) -> None:
    import cbred.proxies.layers as layers

    assert isinstance(layers.int8_gram_is_faster.__wrapped__(), bool)  # the measurement runs
    code = torch.rand(16, 3000, generator=torch.Generator().manual_seed(0)) > 0.5
    expected = code.shape[1] - torch.cdist(code.double(), code.double(), p=0)
    results = {}
    for faster in (True, False):
        monkeypatch.setattr(layers, "int8_gram_is_faster", lambda faster=faster: faster)
        results[faster] = layers.agreement_kernel(code)
    assert torch.equal(results[True], results[False])
    assert torch.equal(results[False], expected)


def test_zico_of_a_network_without_gradients_is_the_empty_sum() -> None:
    """As the authors' code: layers with no varying gradient add nothing; all of them: 0."""
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()  # every weight gradient is 0 except the last bias, constant over batches
    x, y = torch.randn(8, 3, 8, 8), torch.zeros(8, dtype=torch.int64)
    result = proxies.score(net, (x, y), ["zico"])
    assert result["zico"] == 0.0 and "zico" not in result.errors
