"""VKDNW: hand-computed values on a linear network, the Jacobian against plain autograd,
determinism and invariances, NaN with a reason on degenerate networks.

Values against the authors' code are checked by ``bench/reference_vkdnw.py`` (it needs
their repository); these tests pin the definition on cases computable by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from cbred import proxies
from cbred.bench.datasets import get_batch
from cbred.bench.nb201_proxies import nb201_model
from cbred.proxies.ensemble import ENSEMBLES, VKDNW_AGG_MEMBERS, log_rank, vkdnw_agg
from cbred.proxies.per_sample import hooked_logit_jacobian
from cbred.proxies.vkdnw import STATISTICS
from cbred.proxies.vkdnw_passes import (
    VKDNW_SMOOTHING,
    covariance_factor,
    fisher_matrix,
    logit_jacobian,
    sampled_entries,
    vkdnw_terms,
)
from scipy.stats import rankdata
from torch import nn

torch.set_num_threads(1)
ARCH = (
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|"
    "+|avg_pool_3x3~0|nor_conv_3x3~1|nor_conv_1x1~2|"
)
NO_PATH = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"  # every cell outputs zeros


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    return get_batch("cifar10", batch_size=8, seed=0)


def _tiny(arch: str = ARCH, seed: int = 1) -> nn.Module:
    return nb201_model(arch, seed=seed, channels=4, cells_per_stage=1)


def _conv_net(classes: int = 5) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, classes),
    )


def _value(net: nn.Module, batch, name: str, seed: int = 0) -> float:
    return proxies.score(net, batch, [name], seed=seed)[name]


# ------------------------------------------------------------------------------ registry


def test_registered_with_direction_source_and_pass() -> None:
    names = proxies.available_proxies()
    for name in STATISTICS:
        assert name in names
        spec = proxies.get_proxy(name)
        assert spec.direction == "higher" and spec.needs == frozenset({"vkdnw"})
        assert "Týbl" in spec.source and spec.formula


# ------------------------------------------------------------------------- the formula


def test_covariance_factor_is_lower_triangular_square_root_of_the_covariance() -> None:
    gen = torch.Generator().manual_seed(0)
    p = torch.softmax(torch.randn(6, 7, generator=gen, dtype=torch.float64), dim=1)
    factor = covariance_factor(p)
    covariance = torch.diag_embed(p) - p.unsqueeze(2) * p.unsqueeze(1)
    assert torch.equal(factor, torch.tril(factor))
    assert torch.allclose(factor @ factor.transpose(1, 2), covariance, atol=1e-14)
    assert torch.all(factor[:, :, -1] == 0)  # rank C − 1
    assert torch.all(torch.diagonal(factor, dim1=1, dim2=2)[:, :-1] > 0)


def _hand_entropy(lambdas: np.ndarray) -> float:
    """Entropy of the normalised k/10 quantiles (k = 1..9, linear interpolation) of a
    sorted spectrum, written out for the test."""
    lam = np.sort(lambdas)
    deciles = []
    for k in range(1, 10):
        pos = k / 10 * (len(lam) - 1)
        lo = int(math.floor(pos))
        hi = min(lo + 1, len(lam) - 1)
        deciles.append(lam[lo] + (pos - lo) * (lam[hi] - lam[lo]))
    t = np.array(deciles) / sum(deciles)
    return float(-sum(v * math.log(v) for v in t if v > 0))


def test_hand_computed_value_on_a_linear_network() -> None:
    """z = W x + b: the sampled weights are W[0, 0] and b[0], so J_i has one non-zero row,
    (x_i0, 1), and F = mean_i s_i [[x_i0², x_i0], [x_i0, 1]] with s_i = Σ_r L_i[r, 0]² =
    p_0(1 − p_0) + p_0 Σ_{r>0} p_r² / (1 − p_0): the authors' (L J)ᵀ(L J); the Fisher
    information Jᵀ L Lᵀ J would give s_i = p_0(1 − p_0).  The draws are VKDNW's: Kaiming
    normal (fan-in, ReLU gain) for W, bias 0, then a Gaussian input."""
    d, classes, n, seed = 5, 4, 7, 11
    net = nn.Linear(d, classes)
    x_like = torch.zeros(n, d)
    batch = (x_like, torch.zeros(n, dtype=torch.int64))
    result = proxies.score(net, batch, list(STATISTICS), seed=seed)

    torch.manual_seed(seed)
    weight = torch.empty(classes, d)
    nn.init.kaiming_normal_(weight, mode="fan_in", nonlinearity="relu")
    x = torch.randn(n, d).double()
    z = x @ weight.double().T  # bias 0
    alpha = VKDNW_SMOOTHING
    p = (1 - alpha) * torch.softmax(z, dim=1) + alpha / classes
    p0 = p[:, 0]
    s = p0 * (1 - p0) + p0 * (p[:, 1:] ** 2).sum(1) / (1 - p0)
    x0 = x[:, 0]
    fisher = torch.stack(
        [
            torch.stack([(s * x0 * x0).mean(), (s * x0).mean()]),
            torch.stack([(s * x0).mean(), s.mean()]),
        ]
    )
    entropy = _hand_entropy(torch.linalg.eigvalsh(fisher).numpy())
    assert result["vkdnw_entropy"] == pytest.approx(entropy, rel=1e-6)
    assert result["vkdnw"] == pytest.approx(2 + entropy / math.log(10), rel=1e-9)


def test_fisher_matrix_is_the_mean_of_per_sample_products() -> None:
    gen = torch.Generator().manual_seed(2)
    jac = torch.randn(3, 4, 5, generator=gen)
    logits = torch.randn(3, 4, generator=gen)
    p = (1 - VKDNW_SMOOTHING) * torch.softmax(logits.double(), 1) + VKDNW_SMOOTHING / 4
    expected = sum(
        (covariance_factor(p)[i] @ jac[i].double()).T @ (covariance_factor(p)[i] @ jac[i].double())
        for i in range(3)
    )
    assert torch.allclose(fisher_matrix(jac, logits), expected / 3, atol=1e-12)
    # L's last column is zero: the last logit's row is never read, and may be left out
    assert torch.allclose(fisher_matrix(jac[:, :3], logits), expected / 3, atol=1e-12)
    with pytest.raises(ValueError, match="the Jacobian has 2 logit rows; expected 4 or 3"):
        fisher_matrix(jac[:, :2], logits)


def _autograd_jacobian(net: nn.Module, x: torch.Tensor, chosen: dict) -> torch.Tensor:
    """The same Jacobian one sample and one class at a time, with plain autograd."""
    params = dict(net.named_parameters())
    rows = []
    for sample in x:
        out = net(sample.unsqueeze(0)).squeeze(0)
        per_class = []
        for c in range(out.shape[0]):
            grads = torch.autograd.grad(out[c], [params[n] for n in chosen], retain_graph=True)
            per_class.append(torch.cat([g.reshape(-1)[chosen[n]] for g, n in zip(grads, chosen)]))
        rows.append(torch.stack(per_class))
    return torch.stack(rows)


@pytest.mark.parametrize("method", ["hooks", "vmap"])
@pytest.mark.parametrize("classes, tensors", [(5, 128), (9, 3)])  # vmap: reverse, forward mode
def test_jacobian_equals_per_sample_autograd(classes: int, tensors: int, method: str) -> None:
    torch.manual_seed(0)
    net = _conv_net(classes).eval()
    x = torch.randn(4, 3, 6, 6)
    chosen = sampled_entries(net, tensors=tensors, per_tensor=2)
    width = sum(len(v) for v in chosen.values())
    assert (classes <= width) == (tensors == 128)  # both branches are exercised
    jac = logit_jacobian(net, x, chosen, classes, method)
    assert jac.shape == (4, classes, width)
    assert torch.allclose(jac, _autograd_jacobian(net, x, chosen), atol=1e-5)
    first = logit_jacobian(net, x, chosen, classes - 1, method)  # the first C - 1 logits
    assert torch.allclose(first, jac[:, :-1], atol=1e-6)


class _Varied(nn.Module):
    """Every convolution setting the hooks read (stride, dilation, groups, 'same' and
    reflect padding, biases), batch norm with moved running statistics, in-place ReLUs
    on hooked outputs, a module called twice, and a linear layer on a 3-D input."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, stride=2, padding=2, dilation=2)
        self.bn = nn.BatchNorm2d(4)
        self.b = nn.Conv2d(4, 6, 3, padding="same", groups=2, padding_mode="reflect")
        self.c = nn.Conv2d(6, 6, 1)  # called twice
        self.mix = nn.Linear(6, 6)  # over (N, positions, channels)
        self.head = nn.Linear(6, 7)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-1, 1)
            self.bn.running_var.uniform_(0.5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu_(self.bn(self.a(x)))
        h = torch.relu_(self.b(h))
        h = self.c(torch.relu(self.c(h)))
        h = self.mix(h.flatten(2).transpose(1, 2)).mean(1)
        return self.head(h)


class _Tied(nn.Module):
    """The first layer's weight is read a second time outside its module's call."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(4, 4)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.first(x) + x @ self.first.weight.T)


class _Mixing(nn.Module):
    """Each sample's features are centred on the batch mean: samples see each other."""

    def __init__(self) -> None:
        super().__init__()
        self.first, self.head = nn.Linear(4, 4), nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.first(x)
        return self.head(h - h.mean(0))


def test_hooked_jacobian_reads_every_setting_or_declines() -> None:
    """The hooks' closed forms against per-sample autograd on every setting they read, at
    several entries per tensor; where they cannot vouch for the result (a weight used
    outside its module, samples that see each other, a module they do not know, a frozen
    weight) they return None and ``logit_jacobian`` gives the vmap result instead."""
    torch.manual_seed(0)
    net = _Varied().eval()
    x = torch.randn(3, 3, 9, 9)
    chosen = sampled_entries(net, per_tensor=3)
    hooked = hooked_logit_jacobian(net, x, chosen, 7)
    assert hooked is not None
    assert torch.allclose(hooked, _autograd_jacobian(net, x, chosen), atol=1e-5)
    assert torch.allclose(hooked, logit_jacobian(net, x, chosen, 7, "vmap"), atol=1e-5)

    batch_stats = _conv_net().eval()
    batch_stats[1].track_running_stats, batch_stats[1].running_mean = False, None
    batch_stats[1].running_var = None  # batch norm normalises by the batch in eval mode too
    layer_norm = nn.Sequential(nn.Flatten(), nn.Linear(12, 4), nn.LayerNorm(4), nn.Linear(4, 3))
    frozen = _conv_net().eval()
    frozen[0].weight.requires_grad_(False)
    for model, inputs in (
        (_Tied(), torch.randn(5, 4)),
        (_Mixing(), torch.randn(5, 4)),
        (batch_stats, torch.randn(4, 3, 6, 6)),
        (layer_norm.eval(), torch.randn(4, 3, 2, 2)),
        (frozen, torch.randn(4, 3, 6, 6)),
    ):
        entries = sampled_entries(model, per_tensor=2)
        classes = model(inputs).shape[1]
        assert hooked_logit_jacobian(model, inputs, entries, classes) is None
        fallback = logit_jacobian(model, inputs, entries, classes, "hooks")
        assert torch.allclose(fallback, logit_jacobian(model, inputs, entries, classes, "vmap"))
    with pytest.raises(ValueError, match="unknown Jacobian method 'nope'"):
        logit_jacobian(net, x, chosen, 7, "nope")


def test_sampled_entries_are_evenly_spaced_in_the_first_tensors() -> None:
    net = _conv_net()
    names = [n for n, _ in net.named_parameters()]
    one = sampled_entries(net, tensors=3)
    assert list(one) == names[:3] and all(v.tolist() == [0] for v in one.values())
    three = sampled_entries(net, tensors=1, per_tensor=3)  # conv weight: 4·3·3·3 = 108 entries
    assert three[names[0]].tolist() == [0, 53, 107]


# ------------------------------------------------------------- determinism, invariances


def test_deterministic_for_a_seed_and_the_same_fused(batch) -> None:
    net = _tiny()
    first = proxies.score(net, batch, list(STATISTICS), seed=3)
    again = proxies.score(net, batch, list(STATISTICS), seed=3)
    other = proxies.score(net, batch, list(STATISTICS), seed=4)
    # the main pass runs first and moves batch-norm running statistics: VKDNW resets them
    fused = proxies.score(net, batch, [*STATISTICS, "naswot", "snip", "zen"], seed=3)
    for name in STATISTICS:
        assert math.isfinite(first[name]), first.errors
        assert first[name] == again[name] == fused[name]
        assert first[name] != other[name]


def test_depends_on_the_architecture_and_input_shape_only(batch) -> None:
    """Every weight is redrawn and the input is Gaussian: the given weights, batch-norm
    statistics and pixels do not matter, the number of parameter tensors does."""
    x, y = batch
    net = _tiny()
    base = _value(net, batch, "vkdnw")
    scaled = _tiny()
    with torch.no_grad():
        for p in scaled.parameters():
            p.mul_(3.0)
    scaled(x)  # training-mode forward: running statistics move
    assert _value(scaled, batch, "vkdnw") == base
    assert _value(net, (torch.rand_like(x), y), "vkdnw") == base
    assert math.floor(base) == len(list(net.named_parameters()))


def test_model_modes_and_state_are_restored() -> None:
    net = _conv_net().train()
    net[1].eval()
    modes = [m.training for m in net.modules()]
    state = {k: v.clone() for k, v in net.state_dict().items()}
    count, eigenvalues = vkdnw_terms(net, torch.zeros(4, 3, 6, 6))
    assert count == 6 and eigenvalues.shape == (6,) and np.all(eigenvalues >= 0)
    assert [m.training for m in net.modules()] == modes
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())


# ---------------------------------------------------------------------------- degenerate


def test_degenerate_networks_give_nan_with_a_reason(batch) -> None:
    x, y = batch
    # no path from the input: only the classifier's bias moves the logits (rank-one F)
    dead = proxies.score(_tiny(NO_PATH), batch, list(STATISTICS), seed=0)
    for name in STATISTICS:
        assert math.isnan(dead[name]) and "deciles are all 0" in dead.errors[name]
    free = proxies.score(nn.Flatten(), batch, ["vkdnw"], seed=0)
    assert math.isnan(free["vkdnw"]) and "no parameters" in free.errors["vkdnw"]

    class Pair(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = _conv_net()

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self.net(x), self.net(x)

    pair = proxies.score(Pair(), batch, ["vkdnw"], seed=0)
    assert math.isnan(pair["vkdnw"]) and "(N, C) tensor" in pair.errors["vkdnw"]
    tokens = proxies.score(
        nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(12, 3)),
        (torch.randint(0, 10, (4, 3)), torch.zeros(4, dtype=torch.int64)),
        ["vkdnw"],
        seed=0,
    )
    assert math.isnan(tokens["vkdnw"]) and "floating input" in tokens.errors["vkdnw"]


def test_vkdnw_agg_is_the_authors_sum_of_log_ranks() -> None:
    """``vkdnw_agg`` against the authors' recipe written out here (their ``vkdnw_comb_rank``):
    log of the dense rank of the (ℵ, entropy) pairs plus the log average ranks of the other
    four members, ascending; equal up to their missing 1/n (5 log n) without ties."""
    rng = np.random.default_rng(0)
    n = 40
    count = rng.integers(90, 95, n)
    entropy = rng.uniform(0.0, math.log(9), n)
    table = {
        "vkdnw": count + entropy / math.log(10),
        "jacob_cov": rng.normal(size=n),
        "az_expressivity": rng.normal(size=n),
        "az_trainability": rng.normal(size=n),
        "flops": rng.uniform(1, 100, n),
    }
    pairs = sorted(set(zip(count, entropy)))
    dense = np.array([pairs.index(p) + 1 for p in zip(count, entropy)], dtype=np.float64)
    others = ("jacob_cov", "az_expressivity", "az_trainability", "flops")
    theirs = np.log(dense) + sum(np.log(rankdata(table[m])) for m in others)
    assert ENSEMBLES["vkdnw_agg"].members == VKDNW_AGG_MEMBERS
    assert np.allclose(vkdnw_agg(table), theirs - 5 * np.log(n))
    table["jacob_cov"][3] = np.nan  # cbred ranks a NaN below every value
    rest = log_rank(table, [m for m in VKDNW_AGG_MEMBERS if m != "jacob_cov"])
    assert np.isclose(vkdnw_agg(table)[3] - rest[3], np.log(1 / n))
