"""Activation-pattern and kernel statistics (NASWOT v1/v2, layer-wise NASWOT, T-CET, TE-NAS).

Binary codes are the signs of the inputs of the network's activations (NASWOT's ReLU codes;
for other activations, module or functional, the same sign pattern of the pre-activation, see
:data:`proxies.layers.ACTIVATION_MODULES`), taken in the same training-mode forward as the
gradient statistics; the kernel of a set of codes is
K[i, j] = N_A − Hamming(c_i, c_j).  A singular kernel has log-determinant −inf.
"""

from __future__ import annotations

import math

import torch
from cbred.proxies.layers import logdet_psd
from cbred.proxies.passes import PassResults
from cbred.proxies.registry import ProxyUndefined, register_proxy
from cbred.proxies.saliency import layer_snr, snip_saliency

MELLOR = "Mellor et al., Neural Architecture Search without Training, ICML 2021"
TENAS = "Chen et al., TE-NAS, ICLR 2021"
JACOB_K = 1e-5


def _require_relus(r: PassResults) -> None:
    if r.relu_kernel is None:
        raise ProxyUndefined(
            "the model calls no activation (ReLU, ReLU6, LeakyReLU, Hardtanh, ELU, GELU, SiLU, "
            "Hardswish, Mish, Tanh, ... as a module or a function); NASWOT codes need one"
        )


@register_proxy(
    "jacob_cov",
    direction="higher",
    source=MELLOR + " (v1); as in Abdelfattah et al. 2021",
    needs={"input_grad"},
    formula="−Σ_i (log(λ_i + k) + 1/(λ_i + k)), λ eigenvalues of corr(∂Σf/∂x), k = 1e-5",
)
def jacob_cov(r: PassResults) -> float:
    """Eigenvalue spread of the correlation matrix of the input Jacobians."""
    jac = r.input_grad.flatten(1).to(torch.float64)
    if jac.shape[0] < 2:
        raise ProxyUndefined("jacob_cov needs a batch of at least 2 inputs")
    if bool((jac.std(1) == 0).any()):
        raise ProxyUndefined("an input Jacobian is constant (no path from input to output?)")
    lam = torch.linalg.eigvalsh(torch.corrcoef(jac))
    value = float(-(torch.log(lam + JACOB_K) + 1.0 / (lam + JACOB_K)).sum())
    if not math.isfinite(value):
        raise ProxyUndefined(f"Jacobian correlation matrix has eigenvalues ≤ −k ({lam.min():.3g})")
    return value


@register_proxy(
    "naswot",
    direction="higher",
    source=MELLOR + " (v2)",
    needs={"relu_codes"},
    formula="log|K|, K = Σ_ReLUs (N_A − Hamming(c_i, c_j)) over all ReLU codes",
)
def naswot(r: PassResults) -> float:
    """Log-determinant of the Hamming kernel of the concatenated ReLU codes."""
    _require_relus(r)
    return logdet_psd(r.relu_kernel)


@register_proxy(
    "naswot_layerwise",
    direction="higher",
    source="Xiang et al., compressibility and topology of zero-cost NAS metrics (poster)",
    needs={"relu_codes"},
    formula="Σ_l log|K_l| over the ReLU calls l whose kernel is non-singular",
)
def naswot_layerwise(r: PassResults) -> float:
    """Sum of the per-ReLU log-determinants.

    A ReLU whose codes cannot tell the inputs apart (singular K_l, e.g. one fed by a
    ``none`` edge's zeros) carries no information and is skipped rather than sending the
    sum to −inf.
    """
    _require_relus(r)
    finite = [v for v in r.relu_logdets if math.isfinite(v)]
    if not finite:
        raise ProxyUndefined("every ReLU kernel is singular")
    return math.fsum(finite)


@register_proxy(
    "tcet",
    direction="higher",
    source="Xiang et al., compressibility and topology of zero-cost NAS metrics (poster)",
    needs={"loss_grad", "layer_codes"},
    formula="Σ_l (S_l/σ_l)·log|K_l| over weight layers l, K_l from the sign code of l's input",
)
def tcet(r: PassResults) -> float:
    """SNIP signal-to-noise ratio times activation-kernel log-determinant, per weight layer.

    Layer l pairs its weights' saliencies with the binary code of its input (for a
    ReLU → conv layer, exactly the ReLU's code); layers with σ_l = 0, a singular K_l or
    never called are skipped, as in ``naswot_layerwise``.
    """
    terms = []
    for saliency, logdet in zip(snip_saliency(r), r.layer_logdets, strict=True):
        snr = layer_snr(saliency)
        if snr is not None and logdet is not None and math.isfinite(logdet):
            terms.append(snr * logdet)
    if not terms:
        raise ProxyUndefined("no weight layer has both varying saliency and an input code")
    return math.fsum(terms)


@register_proxy(
    "linear_regions",
    direction="higher",
    source=TENAS,
    needs={"relu_patterns"},
    formula="number of distinct joint ReLU activation patterns over the inputs of the batch",
)
def linear_regions(r: PassResults) -> float:
    """Number of linear regions of the network that the batch's inputs fall into: distinct
    rows of the bit-packed joint codes (no kernels, no determinants)."""
    if r.relu_patterns is None:
        _require_relus(r)  # raises the reason: the network calls no activation
    return float(r.relu_patterns)


@register_proxy(
    "ntk_cond",
    direction="lower",
    source=TENAS,
    needs={"ntk"},
    formula="κ = λ_max/λ_min of Θ = J Jᵀ, J the per-sample gradients of Σ_k f_k (inf if λ_min ≤ 0)",
)
def ntk_cond(r: PassResults) -> float:
    """Condition number of the empirical neural tangent kernel on the batch."""
    lam = torch.linalg.eigvalsh(r.ntk)
    top, bottom = float(lam[-1]), float(lam[0])
    if not math.isfinite(top) or top <= 0:
        raise ProxyUndefined("the NTK is zero or not finite (output independent of the weights?)")
    return top / bottom if bottom > 0 else math.inf
