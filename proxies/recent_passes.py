"""The computations behind MeCo, Zen-score and AZ-NAS: one short pass each.

Each function takes the working copy of the model and the scoring batch and returns plain
numbers; :mod:`proxies.passes` wraps them as the ``meco``, ``zen`` and ``aznas`` passes,
seeded with the score's seed (so this module imports nothing from it), and
:mod:`proxies.recent` turns the numbers into statistics.  Each follows its authors' code
(the repositories named in :mod:`proxies.recent`); where that code is specific to one
network class, the general rule used here is stated and reduces to theirs on NB201.

* MeCo reads the model's own weights on *one* sample (the batch's first), as the authors'
  NB201 script does (batch size 1), in training mode.
* Zen-score and AZ-NAS score the network at a fresh initialisation of their own, as the
  authors' scoring functions do: every weight is redrawn (Zen: N(0, 1); AZ-NAS: Kaiming
  normal, fan-in; the working copy's weights are restored afterwards), on Gaussian inputs
  of the batch's shape.  Their values therefore depend on neither the given weights nor
  the batch's pixels, only on the architecture, the input shape and the seed.

Every random number here (channel samples, initialisations, Gaussian inputs, random output
gradients) is drawn from the CPU generator and then moved to the model's device, so one
seed gives the same draws, and values equal up to rounding, on CPU and on CUDA.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from cbred.proxies.layers import small_on_cpu
from torch import nn

MECO_OPT_CHANNELS = 8
"""MeCo_opt's channel sample: the minimum eigenvalue of 8 random channels' correlation,
scaled by (channels / 8)."""
ZEN_MIXUP = 1e-2
"""Zen-score's perturbation scale γ: the second input is x + γ·ε."""
AZ_ENTROPY_EPS = 1e-8
AZ_SVD_EPS = 1e-6

_CONV_LINEAR = (nn.modules.conv._ConvNd, nn.Linear)
_NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm)
_GLOBAL_POOLS = (
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
)


@contextmanager
def _scratch(model: nn.Module) -> Iterator[nn.Module]:
    """The model itself, its parameters and buffers restored on exit (a re-initialisation
    for one pass, leaving the working copy as the other passes expect it; far cheaper than
    a deep copy of a large module tree)."""
    saved = {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()}
    try:
        yield model
    finally:
        model.load_state_dict(saved)


@contextmanager
def _hooked(handles: list[torch.utils.hooks.RemovableHandle]) -> Iterator[None]:
    """Remove the hook handles on exit, whatever happens."""
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _first_tensor(out: object) -> torch.Tensor | None:
    """A module's output tensor (the first element of a tuple or list output), or None."""
    if isinstance(out, (tuple, list)) and out:
        out = out[0]
    return out if torch.is_tensor(out) and out.is_floating_point() else None


# ---------------------------------------------------------------------------------- MeCo


def _min_eig_of_correlation(feature: torch.Tensor) -> float:
    """λ_min of the correlation matrix of the rows of ``feature`` (channels × positions).

    As in the authors' code, entries that are NaN or infinite (a constant channel, or a
    single position) are set to 0, so a constant channel contributes a zero row and column
    and the minimum is 0.  Float64 and the symmetric solver (the authors use float32 and
    the general one; the eigenvalues are the same up to rounding).
    """
    channels = feature.shape[0]
    if feature.shape[1] < 2:  # one position: every correlation is undefined, hence 0
        return 0.0
    corr = torch.corrcoef(feature.double()).reshape(channels, channels)
    corr = torch.where(torch.isfinite(corr), corr, torch.zeros_like(corr))
    return float(torch.linalg.eigvalsh(small_on_cpu(corr))[0])


def meco_eigenvalues(
    model: nn.Module, x: torch.Tensor, seed: int
) -> tuple[list[float], list[float]]:
    """Per module call, MeCo's and MeCo_opt's terms on a forward of the first sample.

    Every module of the model (containers and the model itself included, as the authors
    hook ``named_modules()``) contributes, for each call, the minimum eigenvalue of the
    channel correlation matrix of its output for that sample (C channels × the positions);
    MeCo_opt takes 8 channels drawn without replacement (all when C ≤ 8) and scales that
    eigenvalue by C/8.  The channel draws use their own generator seeded with ``seed``, so
    they never shift the global random numbers the forward itself may draw (dropout).
    Several modules often return the same tensor (a block and its last layer); its full
    eigenvalue is computed once (keyed by identity and version, like the NASWOT kernels).
    """
    generator = torch.Generator(device="cpu").manual_seed(seed)
    full: list[float] = []
    sampled: list[float] = []
    cache: dict[int, tuple[weakref.ref, int, float]] = {}

    def hook(_m: nn.Module, _inp: tuple, out: object) -> None:
        tensor = _first_tensor(out)
        if tensor is None or tensor.dim() < 2:
            return
        feature = tensor.detach()[0]
        feature = feature.reshape(feature.shape[0], -1)
        entry = cache.get(id(tensor))
        if entry is not None and entry[0]() is tensor and entry[1] == tensor._version:
            value = entry[2]
        else:
            value = _min_eig_of_correlation(feature)
            cache[id(tensor)] = (weakref.ref(tensor), tensor._version, value)
        full.append(value)
        channels = feature.shape[0]
        take = min(MECO_OPT_CHANNELS, channels)
        rows = torch.randperm(channels, generator=generator)[:take].to(feature.device)
        sampled.append(_min_eig_of_correlation(feature[rows]) * channels / take)

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with _hooked(handles), torch.no_grad():
        model(x[:1])
    return full, sampled


# ------------------------------------------------------------------------ initialisations


def _drawn_on_cpu(tensor: torch.Tensor, init: Callable[[torch.Tensor], object]) -> None:
    """Apply the in-place initialiser ``init`` to ``tensor`` with the CPU generator's draws,
    whatever its device (CUDA's generator would give other numbers for the same seed)."""
    if tensor.device.type == "cpu":
        init(tensor)
        return
    draw = torch.empty_like(tensor, device="cpu")
    init(draw)
    tensor.copy_(draw)


def _init_gaussian(model: nn.Module) -> None:
    """Zen-NAS's initialisation: conv and linear weights N(0, 1), biases 0, norms (1, 0);
    batch-norm running statistics reset.  Module order, so the draws are the authors'."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, _CONV_LINEAR):
                _drawn_on_cpu(m.weight, nn.init.normal_)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, _NORMS) and m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
                m.reset_running_stats()


def _init_kaiming(model: nn.Module) -> None:
    """AZ-NAS's initialisation: Kaiming normal (fan-in, ReLU gain) conv and linear weights,
    biases 0, norms (1, 0).  Module order, so the draws are the authors'."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, _CONV_LINEAR):
                _drawn_on_cpu(m.weight, _kaiming_fan_in)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, _NORMS) and m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


def _kaiming_fan_in(tensor: torch.Tensor) -> None:
    nn.init.kaiming_normal_(tensor, mode="fan_in", nonlinearity="relu")


# ------------------------------------------------------------------------------------ Zen


def _gaussian_like(x: torch.Tensor) -> torch.Tensor:
    """N(0, 1) draws of ``x``'s shape, drawn as ``torch.randn(shape)`` (the authors' draw) on
    the CPU generator, on ``x``'s device and in its memory format."""
    draw = torch.randn(x.shape, dtype=x.dtype)
    return torch.empty_like(x).copy_(draw)


def _pre_pooling_output(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The input of the model's last global (adaptive) pooling call: Zen-NAS's
    ``forward_pre_GAP``.  A model that calls no such module gives its output instead."""
    seen: list[torch.Tensor] = []
    pools = [m for m in model.modules() if isinstance(m, _GLOBAL_POOLS)]
    handles = [m.register_forward_pre_hook(lambda _m, inp: seen.append(inp[0])) for m in pools]
    with _hooked(handles):
        out = model(x)
    feature = seen[-1] if seen else _first_tensor(out)
    if feature is None:
        raise ValueError("Zen-score: the model returned no floating tensor")
    return feature


def zen_terms(model: nn.Module, like: torch.Tensor) -> tuple[float, float]:
    """(log E‖f(x) − f(x + γε)‖₁, Σ_BN log √mean(running_var)) at a Gaussian initialisation.

    ``model`` (training mode; its weights and buffers restored afterwards) is initialised
    as Zen-NAS does (the caller seeds the draws), then x and ε ~ N(0, 1) shaped like the batch
    ``like`` are drawn, in the authors' order, and both inputs run forward without gradients.  f is
    the feature map before global pooling, ‖·‖₁ sums over everything but the batch, E is
    the batch mean.  The second term reads every batch norm's running variance after the
    two forwards (the authors' correction for the scale that batch norm removes).
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if any(m.running_var is None for m in norms):
        raise ValueError(
            "Zen-score needs batch-norm running variances; a batch norm has "
            "track_running_stats=False"
        )
    with _scratch(model) as net:
        _init_gaussian(net)
        x = _gaussian_like(like)
        eps = _gaussian_like(like)
        with torch.no_grad():
            f = _pre_pooling_output(net, x)
            g = _pre_pooling_output(net, x + ZEN_MIXUP * eps)
        gap = float((f - g).abs().flatten(1).sum(1).mean())
        scales = [float(m.running_var.double().mean()) for m in norms]
    log_bn = math.fsum(0.5 * math.log(v) for v in scales)
    return (math.log(gap) if gap > 0 else -math.inf), log_bn


# --------------------------------------------------------------------------------- AZ-NAS


@dataclass
class AZTerms:
    """AZ-NAS's per-block numbers: the spectral entropy of each feature map, in order, and
    the trainability term of each consecutive pair, last pair first (−inf for a block that
    passes gradients unchanged)."""

    entropies: list[float]
    trainability: list[float]


def block_sequence(model: nn.Module) -> nn.Module:
    """The container whose children are the network's blocks (AZ-NAS's "cells").

    The longest ``nn.Sequential`` or ``nn.ModuleList`` among the model itself and its
    direct children (the first on a tie): NB201's ``cells``, a MobileNet's block list, or a
    plain ``nn.Sequential`` model's layers.
    """
    candidates = [model, *model.children()]
    containers = [m for m in candidates if isinstance(m, (nn.Sequential, nn.ModuleList))]
    if not containers:
        raise ValueError(
            "AZ-NAS reads the outputs of a sequence of blocks: the model must be, or have "
            "as a direct child, an nn.Sequential or nn.ModuleList of blocks"
        )
    return max(containers, key=len)


def _block_features(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The input of the first block and the output of every block call, 4-D maps only.

    Each block receives a copy of what it is given (so a block that writes into its input
    in place cannot change a kept feature); gradients flow through the copies unchanged.
    """
    blocks = list(block_sequence(model).children())
    if not blocks:
        raise ValueError("AZ-NAS: the model's block sequence is empty")
    features: list[torch.Tensor] = []

    def keep(t: object) -> None:
        if torch.is_tensor(t) and t.dim() == 4 and t.shape[0] == x.shape[0]:
            features.append(t)

    def pre_hook(_m: nn.Module, inp: tuple) -> tuple | None:
        if not features and inp and torch.is_tensor(inp[0]):
            keep(inp[0])
            return (inp[0].clone(), *inp[1:])
        return None

    def hook(_m: nn.Module, _inp: tuple, out: object) -> torch.Tensor | None:
        if torch.is_tensor(out):
            keep(out)
            return out.clone()
        return None

    handles = [blocks[0].register_forward_pre_hook(pre_hook)]
    handles += [b.register_forward_hook(hook) for b in blocks]
    with _hooked(handles), torch.enable_grad():
        model(x)
    return features


def _spectral_entropy(feature: torch.Tensor) -> float:
    """Entropy of the normalised eigenvalues of the channel covariance over batch × space."""
    channels = feature.shape[1]
    cols = feature.detach().transpose(0, 1).reshape(channels, -1).double()
    cols = cols - cols.mean(1, keepdim=True)
    eig = torch.linalg.eigvalsh(small_on_cpu(cols @ cols.T / cols.shape[1]))
    p = eig / eig.sum()
    return float(-(p * torch.log(p + AZ_ENTROPY_EPS)).sum())


def random_signs(shape: torch.Size, dtype: torch.dtype) -> torch.Tensor:
    """±1 with probability ½ each, drawn on the CPU generator: the authors'
    ``(torch.bernoulli(0.5 everywhere) − 0.5)·2`` bit for bit (the CPU Bernoulli of a
    probability tensor compares one uniform draw per entry with p, as ``torch.rand`` draws
    them), in half the time of the Bernoulli kernel."""
    draws = torch.rand(shape, dtype=dtype)
    return torch.where(draws < 0.5, 1.0, -1.0).to(dtype)


def _trainability_term(f_in: torch.Tensor, f_out: torch.Tensor) -> float:
    """−σ − 1/(σ + 10⁻⁶) + 2, σ the top singular value of E[g_in g_outᵀ] for a random ±1
    gradient g_out at the block's output (−inf when the block passes it unchanged)."""
    g_out = random_signs(f_out.shape, f_out.dtype).to(f_out.device)
    if not f_out.requires_grad:
        g_in = torch.zeros_like(f_in)
    else:
        (g_in,) = torch.autograd.grad(f_out, f_in, g_out, retain_graph=True, allow_unused=True)
        g_in = torch.zeros_like(f_in) if g_in is None else g_in
    if g_in.shape == g_out.shape and torch.equal(g_in, g_out):
        return -math.inf
    bo, co, ho, wo = g_out.shape
    if g_in.shape[2:] != g_out.shape[2:]:
        stride = g_in.shape[2] // ho
        if stride < 1 or g_in.shape[2] != stride * ho or g_in.shape[3] != stride * wo:
            raise ValueError(
                f"AZ-NAS trainability: a block maps {tuple(g_in.shape[2:])} to "
                f"{tuple(g_out.shape[2:])}, not a whole down-sampling"
            )
        g_in = F.pixel_unshuffle(g_in, stride)
    rows_in = g_in.permute(0, 2, 3, 1).reshape(-1, g_in.shape[1]).double()
    rows_out = g_out.permute(0, 2, 3, 1).reshape(-1, co).double()
    top = float(torch.linalg.svdvals(small_on_cpu(rows_in.T @ rows_out / (bo * ho * wo)))[0])
    return -top - 1.0 / (top + AZ_SVD_EPS) + 2.0


def az_terms(model: nn.Module, like: torch.Tensor) -> AZTerms:
    """AZ-NAS's entropies and trainability terms at its own initialisation.

    ``model`` (training mode; its weights and buffers restored afterwards) is initialised
    as the authors do (the caller seeds the draws), a Gaussian input shaped like ``like`` is drawn
    and run forward with gradients, and the block features (:func:`block_sequence`) give
    the entropies; then, from the last pair of consecutive features to the first, a random
    ±1 gradient is drawn at each block's output and pulled back to its input (the
    authors' order of draws).
    """
    with _scratch(model) as net:
        _init_kaiming(net)
        # the input takes gradients too, so that parameter-free first blocks stay in the graph
        x = _gaussian_like(like).requires_grad_(True)
        features = _block_features(net, x)
        if not features:
            raise ValueError("AZ-NAS: no block produced a 4-D feature map (N, C, H, W)")
        entropies = [_spectral_entropy(f) for f in features]
        pairs = reversed(range(1, len(features)))
        trainability = [_trainability_term(features[i - 1], features[i]) for i in pairs]
    return AZTerms(entropies, trainability)


def count_distinct_columns(codes: list[torch.Tensor]) -> int | None:
    """Distinct columns of the joint (samples × units) activation codes: SWAP's number of
    distinct sample-wise patterns (None without activations).

    Each unit's code over the batch is packed into 64-bit words (eight shifted ORs per
    activation, without forming the joint matrix) and the words are sorted; a sort is far
    faster than a hash-based unique on the ~10⁶ units of an NB201 network.
    """
    if not codes:
        return None
    samples = codes[0].shape[0]
    words = -(-samples // 64)
    parts = []
    for code in codes:
        bits = code.detach().cpu().numpy().view(np.uint8)  # 0/1, no copy
        packed = np.zeros((words * 8, bits.shape[1]), dtype=np.uint8)
        for bit in range(8):
            rows = bits[bit::8]
            packed[: rows.shape[0]] |= rows << np.uint8(7 - bit)
        parts.append(packed)
    keys = np.ascontiguousarray(np.concatenate(parts, axis=1).T).view(np.uint64)
    if words > 1:
        return int(len(np.unique(keys, axis=0)))
    ordered = np.sort(keys[:, 0])
    return int(1 + np.count_nonzero(ordered[1:] != ordered[:-1]))
