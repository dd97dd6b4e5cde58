"""Label-free statistics of 2021–2024: MeCo, Zen-score, SWAP and AZ-NAS's components.

None reads the labels.  Each follows its authors' published code, checked on NB201 by
``python -m cbred.bench.reference_recent`` (same network, weights and inputs as their
scoring functions):

* MeCo, github.com/HamsterMimi/MeCo: ``meco`` and ``meco_opt`` on the batch's first sample
  with the model's own weights (:func:`proxies.recent_passes.meco_eigenvalues`).
* Zen-score, github.com/idstcv/ZenNAS (and AZ-NAS's NB201 port): at its own N(0, 1)
  initialisation, Gaussian inputs, one repeat per seed (the authors average 32 in their
  search, 1 in AZ-NAS's NB201 experiments).
* SWAP, github.com/pym1024/SWAP: distinct sample-wise activation patterns on the batch, from
  the main forward's activation codes (shared with NASWOT and linear_regions).
* AZ-NAS, github.com/cvlab-yonsei/AZ-NAS: expressivity, progressivity and trainability at
  its Kaiming initialisation on Gaussian inputs; its fourth component, complexity, is the
  ``flops`` statistic, and the non-linear rank aggregate over a population is
  :func:`proxies.ensemble.az_nas`.

VKDNW (Týbl & Neumann, CVPR 2025) has a module of its own, :mod:`proxies.vkdnw` (its
driver's weight sample is recovered from the authors' repository history there).  Not
added: NASI (Shu et al., ICLR 2022) is a search that optimises a relaxed supernet; its
per-architecture quantity, the NTK trace estimated by ‖∂L/∂θ‖², reads the labels.
"""

from __future__ import annotations

import math

from cbred.proxies.passes import PassResults
from cbred.proxies.registry import ProxyUndefined, register_proxy

MECO = (
    "Jiang et al., MeCo: Zero-Shot NAS via the Minimum Eigenvalue of Pearson Correlation, "
    "NeurIPS 2023"
)
ZEN = "Lin et al., Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition, ICCV 2021"
SWAP = "Peng et al., SWAP-NAS: Sample-Wise Activation Patterns for Ultra-fast NAS, ICLR 2024"
RECENT = (
    "meco",
    "meco_opt",
    "zen",
    "swap",
    "swap_reg",
    "az_expressivity",
    "az_progressivity",
    "az_trainability",
)
"""The statistics this module registers, in the order tables print them."""
AZNAS = "Lee & Ham, AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture Search, CVPR 2024"


def _meco_total(terms: list[float]) -> float:
    if not terms:
        raise ProxyUndefined("no module returned a feature map (N, C, ...) to correlate")
    return math.fsum(terms)


@register_proxy(
    "meco",
    direction="higher",
    source=MECO,
    needs={"meco"},
    formula="Σ_module calls λ_min(corr of the C channels of the output, first sample only)",
)
def meco(r: PassResults) -> float:
    """Minimum eigenvalue of the channel correlation of every module's output, summed.

    One forward of the batch's first sample in training mode, as the authors' NB201 script
    (batch size 1); every module is read, containers and the model included, as their hooks
    on ``named_modules()`` do.  A channel that is constant (a ``none`` edge) makes its
    module's term 0.
    """
    return _meco_total(r.meco[0])


@register_proxy(
    "meco_opt",
    direction="higher",
    source=MECO + " (MeCo_opt)",
    needs={"meco"},
    formula="Σ_module calls (C/8)·λ_min(corr of 8 random channels of the output), first sample",
)
def meco_opt(r: PassResults) -> float:
    """MeCo on 8 channels drawn per module call (all when C ≤ 8), rescaled by C/8.

    The draws come from a generator seeded with the score's seed, so the value is
    deterministic for a seed (the authors draw with Python's ``random``).
    """
    return _meco_total(r.meco[1])


@register_proxy(
    "zen",
    direction="higher",
    source=ZEN,
    needs={"zen"},
    formula="log E_x‖f(x) − f(x + 0.01ε)‖₁ + Σ_BN log √mean(σ²_run), θ ~ N(0,1), x, ε ~ N(0,1)",
)
def zen(r: PassResults) -> float:
    """Zen-score: expected change of the pre-pooling features under a small Gaussian
    perturbation of a Gaussian input, with every weight redrawn from N(0, 1), plus the
    log-scales that batch norm divided out (from its running variances after the two
    forwards, as the authors read them)."""
    log_gap, log_bn = r.zen
    if not math.isfinite(log_gap):
        raise ProxyUndefined(
            "the features before global pooling do not change with the input (no path "
            "from the input to them?)"
        )
    return log_gap + log_bn


def _swap_count(r: PassResults) -> int:
    if r.neuron_patterns is None:
        raise ProxyUndefined(
            "the model calls no activation (ReLU, GELU, ... as a module or a function); "
            "SWAP counts activation patterns"
        )
    return r.neuron_patterns


@register_proxy(
    "swap",
    direction="higher",
    source=SWAP,
    needs={"neuron_patterns"},
    formula="number of distinct unit-wise sign patterns (over the batch) of all activation inputs",
)
def swap(r: PassResults) -> float:
    """SWAP-Score: each unit of each activation has a binary pattern over the batch's
    samples (active or not); the score is the number of distinct patterns.

    The authors read nn.ReLU outputs on 4-D inputs; cbred reads the same codes as NASWOT
    (every activation, module or functional, the sign of its input), which on ReLU networks
    is the same pattern.  The authors use 16 samples; the count is capped by 2^batch.
    """
    return float(_swap_count(r))


def swap_regularised(count: float, params: float, mu: float, sigma: float) -> float:
    """SWAP × exp(−(Θ − μ)²/σ), Θ the number of parameters in thousands (the authors'
    ``count_parameters``), μ the targeted size and σ its tolerance, in the same unit."""
    return count * math.exp(-((params / 1e3 - mu) ** 2) / sigma)


@register_proxy(
    "swap_reg",
    direction="higher",
    source=SWAP + " (regularised; μ, σ chosen by cbred, see the docstring)",
    needs={"neuron_patterns"},
    formula="swap · exp(−(Θ − μ)²/σ), Θ = parameters/10³, μ = 1000, σ = 10⁶",
)
def swap_reg(r: PassResults) -> float:
    """SWAP regularised towards a model size (:func:`swap_regularised`).

    The paper sets μ and σ per search space and its repository ships none, so this
    registered form fixes μ = 1000 (10⁶ parameters) and σ = 10⁶ (a tolerance of about
    ±1000 thousand): on NB201 (C=16, N=5: 73 to 1531 thousand) it keeps 42–100 % of the
    count, discounting the smallest networks most.  Other targets: call
    :func:`swap_regularised` on ``swap`` and ``params``, or register a variant.
    """
    params = sum(p.numel() for n, p in r.model.named_parameters() if "auxiliary" not in n)
    return swap_regularised(float(_swap_count(r)), float(params), 1000.0, 1.0e6)


def _entropies(r: PassResults) -> list[float]:
    values = r.aznas.entropies
    if not all(math.isfinite(v) for v in values):
        raise ProxyUndefined(
            "a block's feature map is constant over the batch (no spectrum: a dead cell?)"
        )
    return values


@register_proxy(
    "az_expressivity",
    direction="higher",
    source=AZNAS,
    needs={"aznas"},
    formula="Σ_blocks H(λ/Σλ), λ eigenvalues of the channel covariance of the block output",
)
def az_expressivity(r: PassResults) -> float:
    """Sum over the block features of the entropy of the normalised covariance spectrum:
    how evenly each block spreads its features over its channels (isotropy)."""
    return math.fsum(_entropies(r))


@register_proxy(
    "az_progressivity",
    direction="higher",
    source=AZNAS,
    needs={"aznas"},
    formula="min_l (H_l − H_{l−1}) over consecutive block features",
)
def az_progressivity(r: PassResults) -> float:
    """Smallest increase of the spectral entropy from one block to the next: whether the
    expressivity grows through the network."""
    h = _entropies(r)
    if len(h) < 2:
        raise ProxyUndefined("progressivity needs at least two block features")
    return min(b - a for a, b in zip(h, h[1:]))


@register_proxy(
    "az_trainability",
    direction="higher",
    source=AZNAS,
    needs={"aznas"},
    formula="mean_blocks (2 − σ − 1/σ), σ = top singular value of E[∂f_in ⊗ ∂f_out], ±1 ∂f_out",
)
def az_trainability(r: PassResults) -> float:
    """How close each block's Jacobian is to an isometry: for a random ±1 gradient at the
    block output, σ is the spectral norm of the input-output gradient cross-covariance
    (1 is best); a block whose Jacobian is the identity scores −∞ in the authors' code,
    here NaN with the reason (both rank last)."""
    terms = r.aznas.trainability
    if not terms:
        raise ProxyUndefined("trainability needs at least two block features")
    if any(t == -math.inf for t in terms):
        raise ProxyUndefined(
            "a block passes the gradient unchanged (identity Jacobian): AZ-NAS scores it −∞"
        )
    value = math.fsum(terms) / len(terms)
    if not math.isfinite(value):
        raise ProxyUndefined(f"trainability is {value} (non-finite gradients)")
    return value
