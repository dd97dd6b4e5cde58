"""The computation behind VKDNW: per-sample logit Jacobians and their Fisher matrix.

:mod:`proxies.passes` runs :func:`vkdnw_terms` as the ``vkdnw`` pass, seeded with the
score's seed (so this module imports nothing from it, nor from the registry), and
:mod:`proxies.vkdnw` defines the statistics and documents every choice against the
authors' code.  Failures are ordinary exceptions (ValueError, FloatingPointError), which
:func:`proxies.api.score` turns into NaN with the reason.

Cost: one batched forward and, on the CPU, one backward of the batch per class but the
last, whose Jacobian row F never reads (:mod:`proxies.per_sample`); elsewhere, or where
that method cannot vouch for its result, C − 1 vector-Jacobian products per sample
(``torch.func``: reverse mode vmapped over the batch), or P Jacobian-vector products when
that is fewer (forward mode).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from cbred.proxies.layers import small_on_cpu
from cbred.proxies.per_sample import hooked_logit_jacobian
from cbred.proxies.recent_passes import _gaussian_like, _init_kaiming, _scratch
from torch import nn
from torch.func import functional_call, jacfwd, jacrev, vmap

VKDNW_TENSORS = 128
"""The sampled weights come from the first 128 parameter tensors (the authors' NB201
``params_grad_len``)."""
VKDNW_PER_TENSOR = 1
"""Weights sampled per tensor, at evenly spaced flat indices (1: index 0; the authors' ``p``)."""
JACOBIAN_METHODS = ("auto", "hooks", "vmap")
"""How :func:`logit_jacobian` differentiates (``hooks`` falls back to ``vmap`` when it cannot
vouch for its result)."""
VKDNW_SMOOTHING = 0.05
"""α of the smoothed probabilities (1 − α)·softmax + α/C."""


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
    model: nn.Module,
    x: torch.Tensor,
    chosen: dict[str, torch.Tensor],
    outputs: int,
    method: str = "auto",
) -> torch.Tensor:
    """(N, K, P) per-sample Jacobians of the first K = ``outputs`` logits (all C of them, or
    fewer) with respect to the chosen weights (columns in ``chosen``'s order), ``model`` in
    evaluation mode.

    ``method``: ``hooks`` (:func:`proxies.per_sample.hooked_logit_jacobian`: one backward
    of the batch per class, when it can vouch for the result), ``vmap``, or ``auto`` (hooks
    on the CPU, falling back to vmap; vmap on other devices, where the batched call was
    measured).  With ``vmap`` each sample goes through the model on its own (``vmap`` of a
    one-sample call), so the Jacobian is per sample whatever the model's batch dependence;
    the chosen weights enter as zero shifts added at their flat indices, and the derivative
    is taken at zero: reverse mode (K products per sample) unless K exceeds the number of
    chosen weights, then forward mode (P products).
    """
    if method not in JACOBIAN_METHODS:
        raise ValueError(f"unknown Jacobian method {method!r}; expected one of {JACOBIAN_METHODS}")
    if method == "hooks" or (method == "auto" and x.device.type == "cpu"):
        hooked = hooked_logit_jacobian(model, x, chosen, outputs)
        if hooked is not None:
            return hooked
    base = {name: p.detach() for name, p in model.named_parameters()}
    buffers = {name: b.detach() for name, b in model.named_buffers()}
    names = list(chosen)

    def logits(shifts: tuple[torch.Tensor, ...], sample: torch.Tensor) -> torch.Tensor:
        params = dict(base)
        for name, shift in zip(names, shifts):
            weight = base[name]
            flat = weight.reshape(-1).index_add(0, chosen[name], shift)
            params[name] = flat.reshape(weight.shape)
        out = functional_call(model, (params, buffers), (sample.unsqueeze(0),))
        return out.squeeze(0)[:outputs]

    zeros = tuple(torch.zeros(len(chosen[n]), dtype=base[n].dtype, device=x.device) for n in names)
    width = sum(len(z) for z in zeros)
    differentiate = jacrev if outputs <= width else jacfwd
    parts = vmap(differentiate(logits), in_dims=(None, 0))(zeros, x)
    return torch.cat([part.reshape(x.shape[0], outputs, -1) for part in parts], dim=2)


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
    and the (N, C) logits (L_i: :func:`covariance_factor` of the smoothed probabilities).

    L_i's last column is zero, so the last logit's Jacobian row never enters F: an
    (N, C − 1, P) Jacobian of the first C − 1 logits gives the same F.
    """
    z = logits.detach().double()
    classes = z.shape[1]
    rows = jacobian.shape[1]
    if rows not in (classes, classes - 1):
        raise ValueError(
            f"the Jacobian has {rows} logit rows; expected {classes} or {classes - 1} "
            f"for {classes} classes"
        )
    p = (1 - VKDNW_SMOOTHING) * torch.softmax(z, dim=1) + VKDNW_SMOOTHING / classes
    scaled = covariance_factor(p)[:, :, :rows] @ jacobian.double()
    rows = scaled.reshape(-1, scaled.shape[2])
    return rows.T @ rows / z.shape[0]


def fisher_at_init(
    model: nn.Module,
    like: torch.Tensor,
    tensors: int = VKDNW_TENSORS,
    per_tensor: int = VKDNW_PER_TENSOR,
    method: str = "auto",
) -> tuple[int, torch.Tensor]:
    """(ℵ, F): the number of parameter tensors and the (P, P) float64 Fisher matrix of the
    sampled weights at VKDNW's initialisation, on a Gaussian input shaped like ``like``
    (``method``: how :func:`logit_jacobian` differentiates).

    The caller seeds the draws (the initialisation in module order, then the input);
    ``model``'s parameters, buffers and modes are restored afterwards.
    """
    count = len(list(model.named_parameters()))
    if count == 0:
        raise ValueError("the model has no parameters: no weights to sample")
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
        if not chosen:
            raise ValueError("every sampled parameter tensor is empty")
        # the last logit's row meets a zero column of L (fisher_matrix): one backward fewer
        jacobian = logit_jacobian(net, x, chosen, max(logits.shape[1] - 1, 1), method)
    if not (torch.isfinite(jacobian).all() and torch.isfinite(logits).all()):
        raise FloatingPointError("the logits or their Jacobian overflowed (non-finite values)")
    return count, fisher_matrix(jacobian, logits)


def vkdnw_terms(
    model: nn.Module,
    like: torch.Tensor,
    tensors: int = VKDNW_TENSORS,
    per_tensor: int = VKDNW_PER_TENSOR,
    method: str = "auto",
) -> tuple[int, np.ndarray]:
    """(ℵ, eigenvalues of F ascending, negatives from rounding set to 0): what the
    statistics read (:func:`fisher_at_init`; the caller seeds the draws)."""
    count, fisher = fisher_at_init(model, like, tensors, per_tensor, method)
    return count, torch.linalg.eigvalsh(small_on_cpu(fisher)).clamp_min(0.0).cpu().numpy()
