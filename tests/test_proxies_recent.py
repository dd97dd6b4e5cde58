"""MeCo, Zen-score, SWAP and AZ-NAS: known answers on tiny networks, fusion, determinism, NaN.

Values against the authors' own code are checked by ``bench/reference_recent.py`` (it needs
their repositories); these tests pin the definitions on cases computable by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from cbred import proxies
from cbred.bench.datasets import get_batch
from cbred.bench.nb201_proxies import nb201_model
from cbred.proxies.ensemble import AZ_MEMBERS, az_nas, log_rank
from cbred.proxies.recent import RECENT, swap_regularised
from cbred.proxies.recent_passes import (
    az_terms,
    block_sequence,
    count_distinct_columns,
    random_signs,
    zen_terms,
)
from scipy.stats import rankdata
from torch import nn

torch.set_num_threads(1)
ARCH = (
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|"
    "+|avg_pool_3x3~0|nor_conv_3x3~1|nor_conv_1x1~2|"
)
DEAD = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|none~1|none~2|"
IDENTITY = "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"  # the cell is x ↦ x


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    return get_batch("cifar10", batch_size=8, seed=0)


def _labels(n: int) -> torch.Tensor:
    return torch.zeros(n, dtype=torch.int64)


def _with_first_sample(first: torch.Tensor, n: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch whose first sample is ``first`` (C, H, W); MeCo reads only that one."""
    x = torch.randn(n, *first.shape)
    x[0] = first
    return x, _labels(n)


def _hadamard(n: int) -> torch.Tensor:
    h = torch.ones(1, 1)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


# ------------------------------------------------------------------------------------ MeCo


def test_meco_of_orthogonal_channels_is_one_per_module() -> None:
    """Zero-mean orthogonal channels have correlation I, so λ_min = 1 at each of the two
    modules (the Sequential and its Identity) that return them."""
    rows = _hadamard(4)[1:]  # three zero-mean, mutually orthogonal ±1 patterns
    net = nn.Sequential(nn.Identity())
    result = proxies.score(net, _with_first_sample(rows.reshape(3, 2, 2)), ["meco", "meco_opt"])
    assert result["meco"] == pytest.approx(2.0, abs=1e-12)
    assert result["meco_opt"] == pytest.approx(2.0, abs=1e-12)  # C ≤ 8: every channel, ×1


def test_meco_of_identical_channels_is_zero_and_of_two_correlated_is_one_minus_rho() -> None:
    a = torch.tensor([1.0, -1.0, 1.0, -1.0])
    b = a + torch.tensor([1.0, 1.0, -1.0, -1.0])  # corr(a, b) = 1/√2
    same = proxies.score(
        nn.Sequential(nn.Identity()), _with_first_sample(a.repeat(3, 1).view(3, 2, 2)), ["meco"]
    )
    assert same["meco"] == pytest.approx(0.0, abs=1e-12)  # corr = 1 1ᵀ: eigenvalues 3, 0, 0
    two = proxies.score(
        nn.Identity(), _with_first_sample(torch.stack([a, b]).view(2, 2, 2)), ["meco"]
    )
    assert two["meco"] == pytest.approx(1 - 1 / math.sqrt(2), abs=1e-12)


def test_meco_counts_a_constant_channel_as_zero_and_ignores_one_position() -> None:
    rows = _hadamard(4)[1:].clone()
    rows[2] = 0.0  # a dead channel: its correlations are undefined, set to 0 as the authors do
    result = proxies.score(nn.Identity(), _with_first_sample(rows.view(3, 2, 2)), ["meco"])
    assert result["meco"] == pytest.approx(0.0, abs=1e-12)
    one_position = proxies.score(nn.Identity(), _with_first_sample(torch.randn(3, 1, 1)), ["meco"])
    assert one_position["meco"] == 0.0


def test_meco_opt_samples_eight_channels_and_rescales() -> None:
    """16 orthogonal channels: any 8 of them have correlation I, so each module adds 16/8."""
    rows = _hadamard(32)[1:17]
    result = proxies.score(
        nn.Sequential(nn.Identity()), _with_first_sample(rows.view(16, 4, 8)), ["meco", "meco_opt"]
    )
    assert result["meco"] == pytest.approx(2.0, abs=1e-10)
    assert result["meco_opt"] == pytest.approx(4.0, abs=1e-10)


def test_meco_reads_only_the_first_sample(batch) -> None:
    net = nb201_model(ARCH, seed=1, channels=4, cells_per_stage=1)
    x, y = batch
    other = x.clone()
    other[1:] = torch.randn_like(other[1:])
    a = proxies.score(net, (x, y), ["meco"], seed=0)
    b = proxies.score(net, (other, y), ["meco"], seed=0)
    assert a["meco"] == b["meco"]


def test_meco_of_a_one_sample_batch_norm_1d_is_nan_with_the_reason() -> None:
    net = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2))
    result = proxies.score(net, (torch.randn(5, 4), _labels(5)), ["meco", "swap"])
    assert math.isnan(result["meco"]) and "pass 'meco' failed" in result.errors["meco"]
    assert math.isfinite(result["swap"])


# ------------------------------------------------------------------------------------- Zen


def test_zen_of_a_linear_network_is_the_log_gap_of_its_redrawn_weights() -> None:
    """No batch norm, f(x) = W x before pooling: f(x) − f(x + γε) = −γ W ε, W ~ N(0, 1)
    redrawn from the seed in module order, then x and ε drawn."""
    net = nn.Sequential(
        nn.Conv2d(3, 4, 1, bias=False), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)
    )
    x = torch.randn(5, 3, 4, 4)
    result = proxies.score(net, (x, _labels(5)), ["zen"], seed=7)
    torch.manual_seed(7)
    w = torch.randn(4, 3)
    torch.randn(2, 4)  # the classifier's redraw
    torch.randn(x.shape)  # x itself: it cancels
    eps = torch.randn(x.shape)
    gap = (0.01 * torch.einsum("oc,nchw->nohw", w, eps)).abs().flatten(1).sum(1).mean()
    assert result["zen"] == pytest.approx(math.log(float(gap)), rel=1e-5)


def test_zen_adds_the_batch_norm_log_scales_and_leaves_the_weights() -> None:
    """The batch-norm term reads the running variance after the two forwards (momentum
    0.1, unbiased batch variances), recomputed here from the same draws."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
    before = {k: v.clone() for k, v in net.state_dict().items()}
    like = torch.randn(6, 3, 5, 5)
    torch.manual_seed(11)
    log_gap, log_bn = zen_terms(net, like)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    torch.manual_seed(11)
    w = torch.randn(4, 3, 3, 3)  # the conv's redraw (its bias is zeroed, batch norm (1, 0))
    x, eps = torch.randn(like.shape), torch.randn(like.shape)
    running = torch.ones(4)
    for inp in (x, x + 0.01 * eps):
        out = torch.nn.functional.conv2d(inp, w, padding=1)
        running = 0.9 * running + 0.1 * out.transpose(0, 1).reshape(4, -1).var(1)
    assert log_bn == pytest.approx(0.5 * math.log(float(running.mean())), rel=1e-5)
    assert math.isfinite(log_gap)


def test_zen_of_a_network_without_a_path_is_nan_with_the_reason(batch) -> None:
    result = proxies.score(nb201_model(DEAD, seed=1, channels=4, cells_per_stage=1), batch, ["zen"])
    assert math.isnan(result["zen"]) and "do not change with the input" in result.errors["zen"]


def test_zen_needs_running_variances() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4, track_running_stats=False))
    result = proxies.score(net, (torch.randn(4, 3, 2, 2), _labels(4)), ["zen"])
    assert math.isnan(result["zen"]) and "track_running_stats" in result.errors["zen"]


# ------------------------------------------------------------------------------------ SWAP


def test_swap_counts_distinct_unit_patterns_of_a_hand_made_relu_layer() -> None:
    """Unit k of ReLU(w_k x + b_k) on x = (−2, −1, 1, 2) is active where w_k x > −b_k."""
    layer = nn.Linear(1, 8)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0], [1], [1], [1], [1], [1], [-1], [-1]]))
        # active iff x > t (w = 1, b = −t) or x < t (w = −1, b = t)
        layer.bias.copy_(torch.tensor([3.0, 1.5, 1.5, 0.0, -1.5, -3.0, 0.0, -3.0]))
    net = nn.Sequential(layer, nn.ReLU())
    x = torch.tensor([[-2.0], [-1.0], [1.0], [2.0]])
    result = proxies.score(net, (x, _labels(4)), ["swap", "swap_reg", "linear_regions"])
    # 1111, 0111, 0111, 0011, 0001, 0000 and 1100, 0000: six distinct patterns
    assert result["swap"] == 6.0
    assert result["swap_reg"] == pytest.approx(swap_regularised(6.0, 16.0, 1000.0, 1.0e6))
    assert swap_regularised(6.0, 1.0e6, 1000.0, 1.0e6) == 6.0  # at the target size: no discount
    assert result["linear_regions"] == 4.0  # each sample has its own pattern over the units


def test_distinct_columns_beyond_one_word_and_with_padding() -> None:
    torch.manual_seed(0)
    for samples in (3, 64, 70, 130):
        codes = [torch.rand(samples, 40) > 0.5, torch.rand(samples, 25) > 0.5]
        codes[1][:, :5] = codes[0][:, :5]  # five duplicated units
        expected = torch.unique(torch.cat(codes, 1).T.float(), dim=0).shape[0]
        assert count_distinct_columns(codes) == expected
    assert count_distinct_columns([]) is None


def test_swap_without_activations_is_nan_with_the_reason() -> None:
    net = nn.Sequential(nn.Linear(5, 8), nn.Linear(8, 3))
    result = proxies.score(net, (torch.randn(6, 5), _labels(6)), ["swap", "swap_reg"])
    for name in ("swap", "swap_reg"):
        assert math.isnan(result[name]) and "no activation" in result.errors[name]


# ---------------------------------------------------------------------------------- AZ-NAS


class _Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


def test_az_trainability_of_a_one_channel_scaling_block_is_exact() -> None:
    """g_in = a·g_out and g_out ∈ {±1}: E[g_in g_out] = a exactly, so the term is
    −a − 1/(a + 10⁻⁶) + 2."""
    net = nn.Sequential(_Scale(2.0))
    result = proxies.score(net, (torch.randn(4, 1, 3, 3), _labels(4)), ["az_trainability"])
    assert result["az_trainability"] == pytest.approx(-2.0 - 1 / (2.0 + 1e-6) + 2.0, abs=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(64, 16, 32, 32), (3, 5, 7), (1,)])
def test_random_signs_are_the_authors_bernoulli_draws_bit_for_bit(shape, dtype) -> None:
    torch.manual_seed(11)
    authors = (torch.bernoulli(torch.full(shape, 0.5, dtype=dtype)) - 0.5) * 2
    torch.manual_seed(11)
    ours = random_signs(torch.Size(shape), dtype)
    assert ours.dtype == dtype and torch.equal(ours, authors)
    torch.manual_seed(11)
    random_signs(torch.Size(shape), dtype)
    after_ours = torch.rand(4)
    torch.manual_seed(11)
    torch.bernoulli(torch.full(shape, 0.5, dtype=dtype))
    assert torch.equal(after_ours, torch.rand(4))  # the next draws are the authors' too


def test_az_expressivity_is_the_spectral_entropy_of_each_block_feature() -> None:
    """Parameter-free blocks: every feature is the Gaussian input, drawn from the seed first."""
    net = nn.Sequential(_Scale(1.5), _Scale(-1.0))
    x = torch.randn(6, 5, 3, 3)
    names = ["az_expressivity", "az_progressivity", "az_trainability"]
    result = proxies.score(net, (x, _labels(6)), names, seed=3)
    torch.manual_seed(3)
    z = torch.randn(x.shape).transpose(0, 1).reshape(5, -1).double()
    z = z - z.mean(1, keepdim=True)
    lam = torch.linalg.eigvalsh(z @ z.T / z.shape[1])
    p = lam / lam.sum()
    entropy = float(-(p * torch.log(p + 1e-8)).sum())  # scale-free: the same for every feature
    assert result["az_expressivity"] == pytest.approx(3 * entropy, rel=1e-9)
    assert result["az_progressivity"] == pytest.approx(0.0, abs=1e-9)
    assert math.isfinite(result["az_trainability"])


def test_az_trainability_of_an_identity_block_is_nan_with_the_reason(batch) -> None:
    net = nb201_model(IDENTITY, seed=1, channels=4, cells_per_stage=1)
    result = proxies.score(net, batch, ["az_trainability", "az_expressivity"])
    assert math.isnan(result["az_trainability"])
    assert "identity" in result.errors["az_trainability"]
    assert math.isfinite(result["az_expressivity"])


def test_az_blocks_are_the_longest_sequence_and_features_need_one() -> None:
    net = nb201_model(ARCH, channels=4, cells_per_stage=1)
    assert block_sequence(net) is net.cells
    flat = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3))
    assert block_sequence(flat) is flat

    class NoBlocks(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x).mean((2, 3))

    names = ["az_expressivity", "az_progressivity", "az_trainability"]
    result = proxies.score(NoBlocks(), (torch.randn(4, 3, 2, 2), _labels(4)), names)
    for name in names:
        assert math.isnan(result[name]) and "sequence of blocks" in result.errors[name]


def test_az_terms_leave_the_model_as_it_was() -> None:
    net = nb201_model(ARCH, seed=2, channels=4, cells_per_stage=1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    terms = az_terms(net, torch.randn(4, 3, 32, 32))
    assert len(terms.entropies) == 6 and len(terms.trainability) == 5  # stem + 5 blocks
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_az_nas_aggregate_is_the_sum_of_log_relative_ranks() -> None:
    table = {
        "az_expressivity": [3.0, 1.0, 2.0, 2.0],
        "az_progressivity": [0.1, 0.3, 0.2, float("nan")],
        "az_trainability": [-1.0, -2.0, -0.5, -3.0],
        "flops": [10.0, 30.0, 20.0, 40.0],
    }
    expected = sum(
        np.log(rankdata(np.nan_to_num(np.asarray(table[k]), nan=-np.inf)) / 4) for k in AZ_MEMBERS
    )
    assert np.allclose(az_nas(table), expected)
    assert np.allclose(log_rank(table, ["flops"]), np.log([1 / 4, 3 / 4, 2 / 4, 1.0]))
    assert int(np.argmax(az_nas(table))) == 2


# ------------------------------------------------------------------- fusion, seeds, passes


def test_fused_equals_alone_for_the_new_statistics(batch) -> None:
    net = nb201_model(ARCH, seed=1, channels=4, cells_per_stage=1)
    names = [*RECENT, "naswot", "linear_regions", "snip", "synflow"]
    fused = proxies.score(net, batch, names, seed=5)
    assert fused.passes == ("main", "synflow", "meco", "zen", "aznas")
    for name in names:
        alone = proxies.score(net, batch, [name], seed=5)
        assert fused[name] == alone[name], name


def test_deterministic_for_a_seed_and_the_seed_matters(batch) -> None:
    net = nb201_model(ARCH, seed=1, channels=4, cells_per_stage=1)
    first = proxies.score(net, batch, list(RECENT), seed=3)
    again = proxies.score(net, batch, list(RECENT), seed=3)
    other = proxies.score(net, batch, list(RECENT), seed=4)
    assert first.values == again.values
    for name in ("zen", "az_expressivity", "az_trainability"):  # their own draws
        assert first[name] != other[name], name
    for name in ("meco", "swap"):  # the given weights and batch only
        assert first[name] == other[name], name


def test_every_new_statistic_is_registered_with_a_formula_and_source() -> None:
    for name in RECENT:
        spec = proxies.get_proxy(name)
        assert spec.direction == "higher" and spec.formula and spec.source, name


def test_reference_table_ranks_non_finite_last_and_needs_the_checkouts(tmp_path) -> None:
    from cbred.bench import reference_recent

    ours, theirs = [1.0, 2.0, 3.0, math.nan], [1.0, 2.2, 3.0, -math.inf]
    rho, rho_both, rel, mismatched = reference_recent.compare(ours, theirs)
    assert rho == pytest.approx(1.0) and rho_both == pytest.approx(1.0)
    assert rel == pytest.approx(0.2 / 2.2) and mismatched == 0
    assert reference_recent.compare([1.0, 2.0, 3.0], [1.0, 2.0, math.nan])[3] == 1
    with pytest.raises(SystemExit, match="clone the authors' repository"):
        reference_recent.Reference(tmp_path)
