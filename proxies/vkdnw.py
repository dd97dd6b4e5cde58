"""VKDNW (Týbl & Neumann, CVPR 2025): how evenly the Fisher information spreads over weights.

The statistic asks how hard the network's weights would be to estimate from its own
predictions: the Fisher information matrix of a sample of the weights, taken at a fresh
initialisation, is diagonalised and the entropy of its normalised spectrum, summarised by
the nine deciles of the eigenvalues, is the score (an even spectrum, high entropy, is
better).  Definitions, as in the authors' NB201 code (github.com/ondratybl/VKDNW,
``NB201/ZeroShotProxy/compute_vkdnw_score.py``), checked against it by
``python -m cbred.bench.reference_vkdnw``:

* **Initialisation and input.**  Every convolution and linear weight is redrawn Kaiming
  normal (fan-in, ReLU gain), biases 0, batch-norm affine (1, 0), in module order (AZ-NAS's
  initialisation, :func:`proxies.recent_passes._init_kaiming`); batch-norm running
  statistics are reset (a fresh network's); then a Gaussian input shaped like the batch is
  drawn.  The value depends on the architecture, the input shape and the seed only.  The
  working copy's weights, buffers and modes are restored afterwards.
* **Sampled weights.**  The first weight (flat index 0) of each of the first 128 parameter
  tensors in ``named_parameters()`` order: θ_S, P ≤ 128 scalars.  The authors' scoring
  function takes the count per tensor as ``p`` (evenly spaced indices) with a default of 0,
  which samples nothing, and the NB201 driver that set it is not in the released tree (it
  is in the repository's history, with the same default).  Their NB201 results were scored
  before ``p`` existed, with index 0 of each tensor, which ``p = 1`` reproduces: their
  ablation of ``p`` at ``p = 1`` and their earlier index-0 run with the same settings give
  the same Kendall τ (0.621262, ImageNet16-120).  ``VKDNW_PER_TENSOR`` is their ``p``.
* **Fisher matrix.**  In evaluation mode (batch norm reads its running statistics, so each
  sample is scored on its own), J_i = ∂z_i/∂θ_S is the (C × P) Jacobian of sample i's
  logits.  The class probabilities are smoothed, p_i = (1 − α) softmax(z_i) + α/C with
  α = 0.05, and L_i is the lower-triangular factor of their covariance,
  L_i L_iᵀ = diag(p_i) − p_i p_iᵀ, in Tanabe & Sagae's closed form (1992), in float64.
  The matrix is F = mean_i (L_i J_i)ᵀ (L_i J_i), as the authors compute it: they multiply
  the Jacobian by L_i, not by L_iᵀ, so F is not the Fisher information of the categorical
  model, mean_i J_iᵀ (L_i L_iᵀ) J_i; cbred follows the code, which produced the published
  numbers.  (The authors' α is a float16 tensor, so their 1 − α and α/C are rounded to
  float16 and their p_i sums to 1 + 1.7·10⁻⁴ for C = 10; their L_i, built from
  q_j = 1 − Σ_{k≤j} p_k with q_C set to 0, and their F differ from the exact ones by a few
  tenths of a per cent.)
* **Score.**  λ the eigenvalues of F (float64, symmetric solver), d_k the k/10 quantile of λ
  (linear interpolation) for k = 1..9, t = d / Σd and ``vkdnw_entropy`` = −Σ t log t (the
  authors add 10⁻¹⁰ to Σd and inside the log: a difference of order 10⁻¹⁰ / Σd).  The
  authors take the singular values of F in float32, which cannot resolve eigenvalues below
  about 6·10⁻⁸ λ_max: on NB201 half of the spectrum lies below that, and their lower
  deciles are rounding noise at that level instead of the (near-)zero eigenvalues, which
  moves their entropy by a few per cent (``python -m cbred.bench.reference_vkdnw`` shows
  both: cbred's float64 F with their float32 solver agrees with them).
  ``vkdnw`` is the paper's single-proxy ranking: networks ordered by ℵ, their number of
  parameter tensors ("trainable layers"), then by the entropy; as one number, ℵ + H/ln 10
  (H ≤ ln 9 < ln 10, so ℵ decides first and H only breaks its ties).

The paper's aggregate, VKDNW_agg, sums the log ranks of ``vkdnw`` and other statistics
(jacob_cov, AZ-NAS's expressivity and trainability, FLOPs) over a population:
:func:`proxies.ensemble.log_rank` on those columns.

Cost: one batched forward and C vector-Jacobian products per sample (``torch.func``:
reverse mode vmapped over the batch), or P Jacobian-vector products when the network has
more classes than sampled weights (forward mode).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from cbred.proxies.passes import PassResults
from cbred.proxies.recent_passes import _gaussian_like, _init_kaiming, _scratch
from cbred.proxies.registry import ProxyUndefined, register_proxy
from torch import nn
from torch.func import functional_call, jacfwd, jacrev, vmap

VKDNW = (
    "Týbl & Neumann, Training-free Neural Architecture Search through Variance of Knowledge "
    "of Deep Network Weights, CVPR 2025"
)
VKDNW_TENSORS = 128
"""The sampled weights come from the first 128 parameter tensors (the authors' NB201
``params_grad_len``)."""
VKDNW_PER_TENSOR = 1
"""Weights sampled per tensor, at evenly spaced flat indices (1: index 0; the authors' ``p``)."""
VKDNW_SMOOTHING = 0.05
"""α of the smoothed probabilities (1 − α)·softmax + α/C."""
DECILES = tuple(k / 10 for k in range(1, 10))
STATISTICS = ("vkdnw", "vkdnw_entropy")
"""The statistics this module registers."""


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """The model in evaluation mode, every module's own mode restored on exit."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


def reset_batch_norm(model: nn.Module) -> None:
    """Reset every batch norm's running statistics to a fresh network's (mean 0, var 1)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            m.reset_running_stats()


def sampled_entries(
    model: nn.Module, tensors: int = VKDNW_TENSORS, per_tensor: int = VKDNW_PER_TENSOR
) -> dict[str, torch.Tensor]:
    """Parameter name → flat indices of its sampled weights: ``per_tensor`` evenly spaced
    indices (the first when 1) in each of the first ``tensors`` parameter tensors, in
    ``named_parameters()`` order; an index that repeats (more per tensor than entries) is
    taken once."""
    if tensors < 1 or per_tensor < 1:
        raise ValueError(f"need tensors >= 1 and per_tensor >= 1, got {tensors}, {per_tensor}")
    chosen: dict[str, torch.Tensor] = {}
    for name, p in list(model.named_parameters())[:tensors]:
        if p.numel() == 0:
            continue
        idx = torch.linspace(0, p.numel() - 1, steps=per_tensor).long().unique()
        chosen[name] = idx.to(p.device)
    return chosen


def logit_jacobian(
    model: nn.Module, x: torch.Tensor, chosen: dict[str, torch.Tensor], classes: int
) -> torch.Tensor:
    """(N, C, P) per-sample Jacobians of the logits with respect to the chosen weights.

    Each sample goes through the model on its own (``vmap`` of a one-sample call), so the
    Jacobian is per sample whatever the model's batch dependence; the chosen weights enter
    as zero shifts added at their flat indices, and the derivative is taken at zero.
    Reverse mode (C products per sample) unless the model has more classes than chosen
    weights, then forward mode (P products).  Columns follow ``chosen``'s order.
    """
    base = {name: p.detach() for name, p in model.named_parameters()}
    buffers = {name: b.detach() for name, b in model.named_buffers()}
    names = list(chosen)

    def logits(shifts: tuple[torch.Tensor, ...], sample: torch.Tensor) -> torch.Tensor:
        params = dict(base)
        for name, shift in zip(names, shifts):
            weight = base[name]
            flat = weight.reshape(-1).index_add(0, chosen[name], shift)
            params[name] = flat.reshape(weight.shape)
        return functional_call(model, (params, buffers), (sample.unsqueeze(0),)).squeeze(0)

    zeros = tuple(torch.zeros(len(chosen[n]), dtype=base[n].dtype, device=x.device) for n in names)
    width = sum(len(z) for z in zeros)
    differentiate = jacrev if classes <= width else jacfwd
    parts = vmap(differentiate(logits), in_dims=(None, 0))(zeros, x)
    return torch.cat([part.reshape(x.shape[0], classes, -1) for part in parts], dim=2)


def covariance_factor(p: torch.Tensor) -> torch.Tensor:
    """(N, C, C) lower-triangular L with L Lᵀ = diag(p) − p pᵀ for each row of probabilities
    ``p`` (N, C): Tanabe & Sagae's closed form, L_jj = √(p_j q_j / q_{j−1}) and
    L_ij = −p_i L_jj / q_j below the diagonal, q_j = Σ_{k>j} p_k (tail sums, no cancellation).
    The last column is zero (the covariance has rank C − 1)."""
    tail = p.flip(-1).cumsum(-1).flip(-1)  # q_{j−1} = Σ_{k≥j} p_k
    after = torch.cat([tail[:, 1:], torch.zeros_like(tail[:, :1])], dim=1)  # q_j
    diag = torch.sqrt(p * after / tail)
    scale = torch.where(after > 0, diag / torch.where(after > 0, after, 1.0), 0.0)
    lower = torch.tril(-p.unsqueeze(2) * scale.unsqueeze(1), diagonal=-1)
    return lower + torch.diag_embed(diag)


def fisher_matrix(jacobian: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """(P, P) F = mean_i (L_i J_i)ᵀ (L_i J_i), float64, from the (N, C, P) logit Jacobians
    and the (N, C) logits (L_i: :func:`covariance_factor` of the smoothed probabilities)."""
    z = logits.detach().double()
    classes = z.shape[1]
    p = (1 - VKDNW_SMOOTHING) * torch.softmax(z, dim=1) + VKDNW_SMOOTHING / classes
    scaled = covariance_factor(p) @ jacobian.double()
    rows = scaled.reshape(-1, scaled.shape[2])
    return rows.T @ rows / z.shape[0]


def fisher_at_init(
    model: nn.Module,
    like: torch.Tensor,
    tensors: int = VKDNW_TENSORS,
    per_tensor: int = VKDNW_PER_TENSOR,
) -> tuple[int, torch.Tensor]:
    """(ℵ, F): the number of parameter tensors and the (P, P) float64 Fisher matrix of the
    sampled weights at VKDNW's initialisation, on a Gaussian input shaped like ``like``.

    The caller seeds the draws (the initialisation in module order, then the input);
    ``model``'s parameters, buffers and modes are restored afterwards.
    """
    count = len(list(model.named_parameters()))
    if count == 0:
        raise ProxyUndefined("the model has no parameters: no weights to sample")
    with _scratch(model) as net, _eval_mode(net):
        _init_kaiming(net)
        reset_batch_norm(net)
        x = _gaussian_like(like)
        with torch.no_grad():
            logits = net(x)
        if not (torch.is_tensor(logits) and logits.dim() == 2 and logits.shape[0] == len(x)):
            raise ValueError(
                "VKDNW reads the logits: the model must return one (N, C) tensor, got "
                f"{tuple(logits.shape) if torch.is_tensor(logits) else type(logits).__name__}"
            )
        chosen = sampled_entries(net, tensors, per_tensor)
        jacobian = logit_jacobian(net, x, chosen, logits.shape[1])
    if not (torch.isfinite(jacobian).all() and torch.isfinite(logits).all()):
        raise ProxyUndefined("the logits or their Jacobian overflowed (non-finite values)")
    return count, fisher_matrix(jacobian, logits)


def vkdnw_terms(
    model: nn.Module,
    like: torch.Tensor,
    tensors: int = VKDNW_TENSORS,
    per_tensor: int = VKDNW_PER_TENSOR,
) -> tuple[int, np.ndarray]:
    """(ℵ, eigenvalues of F ascending, negatives from rounding set to 0): what the
    statistics read (:func:`fisher_at_init`; the caller seeds the draws)."""
    count, fisher = fisher_at_init(model, like, tensors, per_tensor)
    return count, torch.linalg.eigvalsh(fisher).clamp_min(0.0).cpu().numpy()


def decile_entropy(eigenvalues: np.ndarray) -> float:
    """−Σ t log t over t = d / Σd, d the nine deciles (k/10 quantiles, linear) of the
    eigenvalues; 0 log 0 = 0."""
    deciles = np.quantile(np.asarray(eigenvalues, dtype=np.float64), DECILES)
    total = float(deciles.sum())
    if not total > 0:
        raise ProxyUndefined(
            "the Fisher spectrum's deciles are all 0: the logits do not depend on the "
            "sampled weights (a dead network?)"
        )
    t = deciles[deciles > 0] / total
    return float(-(t * np.log(t)).sum())


@register_proxy(
    "vkdnw_entropy",
    direction="higher",
    source=VKDNW,
    needs={"vkdnw"},
    formula="H(d/Σd), d = deciles of eig mean_i (L_i J_i)ᵀ(L_i J_i), J_i = ∂z_i/∂θ_S, LLᵀ = Cov(p)",
)
def vkdnw_entropy(r: PassResults) -> float:
    """Entropy of the normalised deciles of the Fisher spectrum of the sampled weights
    (the paper's VKDNW value): higher when the information is spread evenly."""
    return decile_entropy(r.vkdnw[1])


@register_proxy(
    "vkdnw",
    direction="higher",
    source=VKDNW + " (VKDNW_single: ranked by ℵ, then the entropy)",
    needs={"vkdnw"},
    formula="ℵ + vkdnw_entropy/ln 10, ℵ = number of parameter tensors",
)
def vkdnw(r: PassResults) -> float:
    """The paper's single-proxy ranking as one number: the number of parameter tensors ℵ
    first, the spectral entropy (< ln 10) breaking ties."""
    count, eigenvalues = r.vkdnw
    return count + decile_entropy(eigenvalues) / math.log(10)
