"""Gradient-saliency statistics (Abdelfattah et al. 2021; Tanaka et al. 2020; ZiCo; SSNR).

L is the cross-entropy of the network at initialisation on the batch, in training mode;
θ ranges over the weights of the convolution and linear layers (the reference code's
"prunable" layers).
"""

from __future__ import annotations

import math

import torch
from cbred.proxies.passes import PassResults
from cbred.proxies.registry import ProxyUndefined, register_proxy

ABDELFATTAH = "Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021"


def _total(parts: list[torch.Tensor]) -> float:
    """Sum of a list of per-layer tensors, accumulated in float64 on their device."""
    if not parts:
        raise ProxyUndefined("the model has no convolution or linear layer")
    return float(torch.stack([p.to(torch.float64).sum() for p in parts]).sum())


@register_proxy(
    "grad_norm",
    direction="higher",
    source=ABDELFATTAH,
    needs={"loss_grad"},
    formula="Σ_l ‖∂L/∂θ_l‖₂",
)
def grad_norm(r: PassResults) -> float:
    """Sum over layers of the Euclidean norm of the loss gradient."""
    return _total([g.norm() for g in r.grads])


def snip_saliency(r: PassResults) -> list[torch.Tensor]:
    """SNIP's per-weight saliency |θ ⊙ ∂L/∂θ|, one tensor per weight layer."""
    return [(w.detach() * g).abs() for w, g in zip(r.weights, r.grads, strict=True)]


@register_proxy(
    "snip",
    direction="higher",
    source="Lee et al., SNIP, ICLR 2019; as in " + ABDELFATTAH,
    needs={"loss_grad"},
    formula="Σ |θ ⊙ ∂L/∂θ|",
)
def snip(r: PassResults) -> float:
    """Connection sensitivity summed over all weights."""
    return _total(snip_saliency(r))


@register_proxy(
    "grasp",
    direction="higher",
    source="Wang et al., GraSP, ICLR 2020; as in " + ABDELFATTAH,
    needs={"loss_grad", "hvp"},
    formula="−Σ θ ⊙ (H ∂L/∂θ)",
)
def grasp(r: PassResults) -> float:
    """Gradient-signal preservation: minus θ times the Hessian-gradient product."""
    return _total([-(w.detach() * hg) for w, hg in zip(r.weights, r.hessian_grads, strict=True)])


@register_proxy(
    "fisher",
    direction="higher",
    source="Turner et al., BlockSwap, ICLR 2020; as in " + ABDELFATTAH,
    needs={"act_grad"},
    formula="Σ_layers fan_in · Σ_channels mean_batch (Σ_spatial a ⊙ ∂L/∂a)² / 2",
)
def fisher(r: PassResults) -> float:
    """Fisher information of the weight layers' output channels.

    a is a convolution or linear layer's output.  As in the reference code, each
    channel's value is credited to every weight of that channel (hence the fan-in factor).
    """
    return _total(r.fisher)


@register_proxy(
    "synflow",
    direction="higher",
    source="Tanaka et al., SynFlow, NeurIPS 2020; as in " + ABDELFATTAH,
    needs={"synflow"},
    formula="Σ θ ⊙ ∂R/∂θ, R = 1ᵀ f(1; |θ|) in float64 without batch norm",
)
def synflow(r: PassResults) -> float:
    """Synaptic flow of the all-ones input through the absolute-valued network."""
    value = _total(r.synflow)
    if not math.isfinite(value):
        raise ProxyUndefined(f"synflow score overflowed in float64 ({value})")
    return value


def layer_snr(saliency: torch.Tensor) -> float | None:
    """S_l / σ_l of one layer's saliencies (σ the population standard deviation); None if σ=0."""
    s = saliency.reshape(-1).to(torch.float64)
    sigma = float(s.std(correction=0)) if s.numel() > 1 else 0.0
    return float(s.sum()) / sigma if sigma > 0 else None


@register_proxy(
    "ssnr",
    direction="higher",
    source="Xiang et al., compressibility and topology of zero-cost NAS metrics (poster)",
    needs={"loss_grad"},
    formula="Σ_l S_l/σ_l, S = |θ ⊙ ∂L/∂θ| (SNIP), layers with σ_l = 0 skipped",
)
def ssnr(r: PassResults) -> float:
    """Saliency signal-to-noise ratio summed over layers."""
    snrs = [v for v in map(layer_snr, snip_saliency(r)) if v is not None]
    if not snrs:
        raise ProxyUndefined("every layer has constant saliency (σ_l = 0)")
    return math.fsum(snrs)


@register_proxy(
    "zico",
    direction="higher",
    source="Li et al., ZiCo, ICLR 2023",
    needs={"zico"},
    formula="Σ_l log Σ_{ω∈θ_l, σ_ω>0} E_b|∂L_b/∂ω| / σ_b(∂L_b/∂ω) over 2 halves b of the batch",
)
def zico(r: PassResults) -> float:
    """Gradient mean over standard deviation across mini-batches, log-summed per layer.

    Layers whose sum is 0 (no weight's gradient varies) add nothing, so a network whose
    gradients are all zero (an NB201 cell with no path) scores the empty sum, 0, as in the
    authors' code, not NaN: NaN would rank such a network below every other one.
    """
    total = 0.0
    for g in r.zico_grads:
        g = g.to(torch.float64)
        std = g.std(0, correction=0)
        keep = std > 0
        ratio = float((g.abs().mean(0)[keep] / std[keep]).sum())
        if ratio > 0:
            total += math.log(ratio)
    return total
