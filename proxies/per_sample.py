"""Per-sample logit Jacobians of a few chosen weights, from module hooks.

VKDNW needs J_i = ∂z_i/∂θ_S for every sample i and a handful of scalar weights θ_S (one
entry of each of the first 128 parameter tensors).  Differentiating a one-sample call per
sample (``torch.func``: vmap of jacrev) makes autograd form the gradient of every *whole*
weight tensor for every (sample, class) pair, only for all but one entry to be dropped.
Here the batch runs forward once with hooks on the modules owning the chosen weights,
then one backward per class gives each hooked module's output gradient δ for all samples
at once (in evaluation mode the samples are independent), and each chosen entry's
per-sample derivative is read off its module's input and δ in closed form:

* convolution weight (o, i, k…): Σ_pos δ[n, o, pos] · x_pad[n, g·C_in/g + i, pos·s + k·d];
  bias o: Σ_pos δ[n, o, pos];
* linear weight (o, i): Σ δ[n, …, o] · x[n, …, i]; bias o: Σ δ[n, …, o];
* batch norm in evaluation mode (running statistics): weight c:
  Σ δ[n, c, …] · (x[n, c, …] − μ_c)/√(σ²_c + ε); bias c: Σ δ[n, c, …].

That is C backward passes of the batch instead of C·N one-sample ones over whole weight
gradients: the VKDNW pass 3.5× faster on NB201 networks on one CPU thread (4.88 against
17.13 s, ``python -m cbred.bench.perf_proxies --archs 3 --score vkdnw``, which times both).
:func:`hooked_logit_jacobian` returns None, and the caller falls back to ``torch.func``,
whenever it cannot vouch for the result: a chosen weight in another kind of module, a
weight also used outside its module's call (the derivatives, summed over the batch, must
equal plain autograd's gradient), or samples that are not independent (the first sample
alone must give the batch's first logits).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_CHECK_RTOL = 1e-4
"""Relative tolerance of the two checks (batch-summed derivatives against autograd; the
first sample alone against the batch), against the largest magnitude compared."""


def _owner(model: nn.Module, name: str) -> tuple[str, nn.Module, str]:
    """(module name, module, attribute) of parameter ``name``."""
    module_name, _, attr = name.rpartition(".")
    return module_name, model.get_submodule(module_name), attr


def _supported(module: nn.Module, attr: str) -> bool:
    """Whether :func:`_input_factor` and :func:`_output_gradient` know ``module``'s
    parameter ``attr``."""
    if attr not in ("weight", "bias"):
        return False
    if isinstance(module, nn.modules.conv._ConvNd):
        return not module.transposed
    if isinstance(module, nn.Linear):
        return True
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return not module.training and module.running_mean is not None
    return False


def _conv_windows(
    m: nn.modules.conv._ConvNd, x: torch.Tensor, flats: torch.Tensor, out_shape: torch.Size
) -> torch.Tensor:
    """(N, F, M): for each weight entry of ``flats``, the (padded) input value it multiplies
    at each of the M output positions."""
    mode = "constant" if m.padding_mode == "zeros" else m.padding_mode
    windows = []
    for flat in flats.tolist():
        o, i, *offsets = (int(k) for k in np.unravel_index(flat, tuple(m.weight.shape)))
        channel = (o // (m.out_channels // m.groups)) * m.weight.shape[1] + i
        # only the input channel the entry reads is padded (padding is per channel)
        padded = F.pad(x[:, channel : channel + 1], m._reversed_padding_repeated_twice, mode=mode)
        window: list[slice | int] = [slice(None), 0]
        for d, offset in enumerate(offsets):
            start = offset * m.dilation[d]
            window.append(slice(start, start + m.stride[d] * (out_shape[d] - 1) + 1, m.stride[d]))
        windows.append(padded[tuple(window)].flatten(1))
    return torch.stack(windows, dim=1)


def _input_factor(
    m: nn.Module, attr: str, x: torch.Tensor, flats: torch.Tensor, out_shape: torch.Size
) -> torch.Tensor | None:
    """(N, F, M): what the output gradient at each of M positions is multiplied by in the
    derivative w.r.t. each entry of ``flats`` of ``m``'s ``attr``, for one call with input
    ``x`` and output spatial shape ``out_shape``; None for a bias (a factor of 1)."""
    if attr == "bias":
        return None
    n = x.shape[0]
    if isinstance(m, nn.Linear):
        return x[..., flats % m.in_features].reshape(n, -1, len(flats)).transpose(1, 2)
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        shape = (1, -1, 1)
        return (x[:, flats].flatten(2) - m.running_mean[flats].view(shape)) / torch.sqrt(
            m.running_var[flats].view(shape) + m.eps
        )
    return _conv_windows(m, x, flats, out_shape)


def _output_gradient(m: nn.Module, attr: str, g: torch.Tensor, flats: torch.Tensor) -> torch.Tensor:
    """(N, F, M): the output gradient ``g`` of one call at the M positions of the output
    unit that each entry of ``flats`` of ``m``'s ``attr`` feeds (its channel or feature)."""
    n = g.shape[0]
    if isinstance(m, nn.Linear):
        units = flats if attr == "bias" else flats // m.in_features
        return g[..., units].reshape(n, -1, len(flats)).transpose(1, 2)
    conv_weight = attr == "weight" and isinstance(m, nn.modules.conv._ConvNd)
    units = flats // m.weight[0].numel() if conv_weight else flats
    return g[:, units].flatten(2)


def hooked_logit_jacobian(
    model: nn.Module, x: torch.Tensor, chosen: dict[str, torch.Tensor], outputs: int
) -> torch.Tensor | None:
    """(N, K, P) per-sample Jacobians of the first K = ``outputs`` logits w.r.t. the
    ``chosen`` weights (parameter name → flat indices; columns in its order), or None when
    this method cannot vouch for them (see the module docstring).  ``model`` must be in
    evaluation mode."""
    owners = {name: _owner(model, name) for name in chosen}
    if not all(_supported(m, attr) for _, m, attr in owners.values()):
        return None
    named = dict(model.named_parameters())
    params = [named[name] for name in chosen]
    if not all(p.requires_grad for p in params):
        return None  # the batch-summed check needs autograd's own gradient
    calls: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {
        n: [] for n, _, _ in owners.values()
    }

    def hook(name: str):  # noqa: ANN202 - a forward hook
        def keep(_m: nn.Module, inputs: tuple, out: torch.Tensor) -> torch.Tensor:
            calls[name].append((inputs[0].detach(), out))
            return out.clone()  # the rest runs on a copy: an in-place op cannot move `out`

        return keep

    handles = [model.get_submodule(n).register_forward_hook(hook(n)) for n in calls]
    try:
        with torch.enable_grad():
            logits = model(x.detach().requires_grad_(True))
    finally:
        for handle in handles:
            handle.remove()
    with torch.no_grad():
        alone = model(x[:1])
    scale = float(logits.detach().abs().max()) or 1.0
    if not torch.allclose(alone, logits[:1].detach(), rtol=0, atol=_CHECK_RTOL * scale):
        return None  # the samples are not independent
    flat_calls = [(n, inp, out) for n, records in calls.items() for inp, out in records]
    entries = [  # (call, parameter name, module, attribute) for every chosen tensor a call reads
        (k, name, m, attr)
        for k, (module_name, _, _) in enumerate(flat_calls)
        for name, (owner, m, attr) in owners.items()
        if owner == module_name
    ]
    deltas: list[list[torch.Tensor | None]] = [[] for _ in entries]
    param_grads: tuple[torch.Tensor | None, ...] = ()
    for c in range(outputs):
        wanted = [out for _, _, out in flat_calls] + (params if c == 0 else [])
        grads = torch.autograd.grad(
            logits[:, c].sum(), wanted, retain_graph=c < outputs - 1, allow_unused=True
        )
        if c == 0:
            param_grads = grads[len(flat_calls) :]
        for kept, (k, name, m, attr) in zip(deltas, entries):
            g = grads[k]
            kept.append(None if g is None else _output_gradient(m, attr, g, chosen[name]))
    columns, start = {}, 0
    for name, flats in chosen.items():
        columns[name], start = slice(start, start + len(flats)), start + len(flats)
    jac = x.new_zeros(x.shape[0], outputs, start)
    for kept, (k, name, m, attr) in zip(deltas, entries):
        if kept[0] is None:  # no logit depends on this call's output (the same for every c)
            continue
        delta = torch.stack(kept, dim=1)  # (N, K, F, M)
        _, inp, out = flat_calls[k]
        factor = _input_factor(m, attr, inp, chosen[name], out.shape[2:])
        derivative = delta.sum(3) if factor is None else (delta * factor.unsqueeze(1)).sum(3)
        jac[:, :, columns[name]] += derivative
    if not _agrees(jac[:, 0].sum(0), param_grads, chosen):
        return None  # a chosen weight is also used outside its module's call
    return jac


def _agrees(
    summed: torch.Tensor, grads: tuple[torch.Tensor | None, ...], chosen: dict[str, torch.Tensor]
) -> bool:
    """Whether the batch-summed derivatives equal the chosen entries of autograd's gradients
    of the parameters (None: the output does not depend on it)."""
    parts = [
        g.reshape(-1)[flats] if g is not None else torch.zeros(len(flats), dtype=summed.dtype)
        for g, flats in zip(grads, chosen.values())
    ]
    reference = torch.cat(parts).to(summed)
    scale = float(reference.abs().max()) or 1.0
    return bool(torch.allclose(summed, reference, rtol=0, atol=_CHECK_RTOL * scale))
