"""The shared passes over a network from which every statistic is computed.

A statistic declares the *features* it needs; :func:`run_passes` groups them into the
fewest passes:

* ``main`` – one seeded forward of the batch in training mode, with hooks that collect
  what was asked for (``costs``: multiply-accumulates; ``relu_patterns``: the number of
  distinct joint activation patterns, from the codes alone; ``relu_codes``: the agreement
  kernels of the binary codes at every activation's input, module or functional; both
  also record which activations they read, :attr:`PassResults.activation_sites`;
  ``layer_codes``: the same kernels at the input of every weight layer), then at most
  one cross-entropy backward (``loss_grad``: ∂L/∂θ of the weight layers; ``act_grad``:
  Fisher terms of the weight layers' outputs; ``hvp``: the Hessian-gradient product Hg
  of GraSP, by double backward through the same graph, with batch norm's second
  derivative in closed form: :mod:`proxies.batchnorm`) and one backward of Σ outputs to
  the input (``input_grad``).
* ``synflow`` – |θ|, double precision, batch norm removed, an all-ones input.
* ``ntk`` – per-sample gradients of the summed logits (the empirical NTK of TE-NAS).
* ``zico`` – cross-entropy gradients of the weight layers on each of ``ZICO_SPLITS``
  disjoint parts of the batch.
* ``meco``, ``zen``, ``aznas`` – MeCo's one-sample forward, Zen-score's two Gaussian
  forwards and AZ-NAS's block features with their random gradients, the last two at
  those methods' own initialisations, the weights restored after
  (:mod:`proxies.recent_passes`); the main pass's ``neuron_patterns`` counts SWAP's
  distinct sample-wise patterns from its codes.
* ``vkdnw`` – per-sample logit Jacobians of sampled weights at VKDNW's initialisation on a
  Gaussian input, and the spectrum of their Fisher matrix (:mod:`proxies.vkdnw_passes`).

Every pass runs on the caller's working copy of the model under ``torch.random.fork_rng``
reseeded with the score's seed, so a statistic computed alone or fused with others sees
the same random numbers and produces the same value.
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from cbred.proxies.batchnorm import fast_second_order_batch_norm
from cbred.proxies.layers import (
    ACTIVATION_FUNCTIONS,
    KernelCache,
    activation_modules,
    logdets_psd,
    macs_of_call,
    weight_layers,
)
from cbred.proxies.recent_passes import (
    AZTerms,
    az_terms,
    count_distinct_columns,
    meco_eigenvalues,
    zen_terms,
)
from cbred.proxies.vkdnw_passes import vkdnw_terms
from torch import nn
from torch.overrides import TorchFunctionMode

MAIN_FEATURES = (
    "costs",
    "relu_codes",
    "relu_patterns",
    "layer_codes",
    "loss_grad",
    "act_grad",
    "hvp",
    "input_grad",
    "neuron_patterns",
)
FEATURES = (*MAIN_FEATURES, "synflow", "ntk", "zico", "meco", "zen", "aznas", "vkdnw")
# The version of the values the passes produce; part of every stored statistic's version
# (proxies.engine.statistic_version).  Bump it when a change alters any value, so that
# score stores recompute; tests/test_proxies_golden.py fails on such a change.
PASSES_VERSION = "1"
# Versions of single features whose values changed since, so that only the statistics
# reading them recompute.  hvp 2: batch norm's second derivative in closed form (the
# same Hg up to float rounding).
FEATURE_VERSIONS = {"hvp": "2"}
ZICO_SPLITS = 2


@dataclass
class PassResults:
    """Everything the passes produced; each statistic reads the fields it declared."""

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    layer_names: list[str] = field(default_factory=list)
    weights: list[torch.Tensor] = field(default_factory=list)
    macs: int | None = None
    grads: list[torch.Tensor] | None = None
    hessian_grads: list[torch.Tensor] | None = None
    fisher: list[torch.Tensor] | None = None
    relu_kernel: torch.Tensor | None = None
    relu_logdets: list[float] | None = None
    relu_patterns: int | None = None  # distinct joint activation patterns over the batch
    layer_logdets: list[float | None] | None = None
    # where the binary codes were read, site → calls: activation types for relu_codes,
    # relu_patterns and neuron_patterns ("ReLU6", functional forms as "F.silu"), weight
    # layers for layer_codes
    activation_sites: dict[str, int] | None = None
    layer_sites: dict[str, int] | None = None
    input_grad: torch.Tensor | None = None
    synflow: list[torch.Tensor] | None = None
    ntk: torch.Tensor | None = None
    zico_grads: list[torch.Tensor] | None = None
    neuron_patterns: int | None = None  # distinct units' codes over the batch (SWAP)
    meco: tuple[list[float], list[float]] | None = None  # MeCo, MeCo_opt terms per call
    zen: tuple[float, float] | None = None  # log perturbation gap, batch-norm log-scales
    aznas: AZTerms | None = None
    vkdnw: tuple[int, np.ndarray] | None = None  # parameter tensors, Fisher eigenvalues


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Fork the global RNG (CPU and, on CUDA, that device) and seed it."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@contextmanager
def hooks(handles: list[torch.utils.hooks.RemovableHandle]) -> Iterator[None]:
    """Remove the given hook handles on exit, whatever happens."""
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _zeros_for_none(
    grads: Sequence[torch.Tensor | None], like: list[torch.Tensor]
) -> list[torch.Tensor]:
    """Replace the ``None`` gradients of unused tensors by zeros of their shape."""
    return [torch.zeros_like(w) if g is None else g for g, w in zip(grads, like, strict=True)]


def run_main(
    results: PassResults, features: frozenset[str], seed: int, protect_acts: bool = False
) -> None:
    """The fused forward (+ backward) pass; fills the fields of the requested features.

    The Fisher terms need each weight layer's output as it was produced.  Outputs are
    kept without copying; if an in-place operation later changed one (a conv followed by
    ``ReLU(inplace=True)``), the pass runs again with ``protect_acts``, handing a copy to
    the rest of the network so that the kept output stays intact.
    """
    model, x, y = results.model, results.x, results.y
    layers = weight_layers(model)
    results.layer_names = [n for n, _ in layers]
    results.weights = [m.weight for _, m in layers]
    handles: list[torch.utils.hooks.RemovableHandle] = []
    macs = [0]
    relu_kernels: list[torch.Tensor] = []
    layer_kernels: list[tuple[int, torch.Tensor]] = []
    acts: list[tuple[int, torch.Tensor]] = []
    versions: list[int] = []
    kernel_of = KernelCache()

    inside = [0]  # depth of activation-module calls: their own functional call is not re-read

    codes: list[torch.Tensor] = []
    activation_sites: Counter[str] = Counter()
    layer_sites: Counter[str] = Counter()

    batch = len(x)

    def read_code(t: torch.Tensor, site: str) -> None:
        if not per_sample(t, batch):
            activation_sites[f"{site} (skipped: no batch axis)"] += 1
            return
        activation_sites[site] += 1
        if "relu_codes" in features:
            relu_kernels.append(kernel_of(t, batch))
        if features & {"relu_patterns", "neuron_patterns"}:  # the codes alone, no kernel
            codes.append((t.detach() > 0).reshape(batch, -1))

    def enter(m: nn.Module, inp: tuple[torch.Tensor, ...]) -> None:
        inside[0] += 1
        read_code(inp[0], type(m).__name__)

    def leave(_m: nn.Module, _inp: tuple, _out: torch.Tensor) -> None:
        inside[0] -= 1

    functional = nullcontext()
    if features & {"relu_codes", "relu_patterns", "neuron_patterns"}:
        for m in activation_modules(model):
            handles += [m.register_forward_pre_hook(enter), m.register_forward_hook(leave)]
        functional = _FunctionalActivations(read_code, inside)
    for i, (_, m) in enumerate(layers):
        if "layer_codes" in features:

            def pre_hook(m: nn.Module, inp: tuple[torch.Tensor, ...], i: int = i) -> None:
                if not per_sample(inp[0], batch):
                    layer_sites[f"{type(m).__name__} input (skipped: no batch axis)"] += 1
                    return
                layer_sites[f"{type(m).__name__} input"] += 1
                layer_kernels.append((i, kernel_of(inp[0], batch)))

            handles.append(m.register_forward_pre_hook(pre_hook))
        if features & {"costs", "act_grad"}:

            def out_hook(mod: nn.Module, _inp: tuple, out: torch.Tensor, i: int = i):
                if "costs" in features:
                    macs[0] += macs_of_call(mod, out)
                if "act_grad" in features:
                    acts.append((i, out))
                    versions.append(out._version)
                    if protect_acts:
                        return out.clone()
                return None

            handles.append(m.register_forward_hook(out_hook))

    with hooks(handles), seeded(seed, x.device):
        if "input_grad" in features:
            x = x.detach().clone().requires_grad_(True)
        want_grad = bool(features & {"loss_grad", "act_grad", "hvp", "input_grad"})
        closed_form_bn = fast_second_order_batch_norm() if "hvp" in features else nullcontext()
        with torch.set_grad_enabled(want_grad), closed_form_bn, functional:
            out = model(x)
    if any(a._version != v for (_, a), v in zip(acts, versions, strict=True)):
        run_main(results, features, seed, protect_acts=True)
        return
    if "costs" in features:
        results.macs = macs[0] // x.shape[0]
    if features & {"relu_codes", "relu_patterns", "neuron_patterns"}:
        results.activation_sites = dict(activation_sites)
    if "relu_codes" in features:
        _collect_relu(results, relu_kernels)
    if "relu_patterns" in features:
        results.relu_patterns = _count_patterns(codes)
    if "neuron_patterns" in features:
        results.neuron_patterns = count_distinct_columns(codes)
    if "layer_codes" in features:
        results.layer_sites = dict(layer_sites)
        _collect_layer_codes(results, layer_kernels, len(layers))
    if features & {"loss_grad", "act_grad", "hvp"}:
        _loss_backward(results, out, y, features, acts)
    if "input_grad" in features:
        results.input_grad = torch.autograd.grad(out.sum(), x)[0].detach()


def per_sample(t: torch.Tensor, batch: int) -> bool:
    """Whether ``t`` can be split into one code per input sample: its leading axis is the
    batch or a multiple of it with the batch outermost, as when a transformer folds patches
    or heads into the batch (timm's MobileViT: (B·P, N, D)).  A tensor without such an axis
    (a sequence-first (L, B, D) layout whose L is no multiple of B) is not read."""
    return t.dim() > 0 and t.shape[0] % batch == 0


class _FunctionalActivations(TorchFunctionMode):
    """Reads the code of every functional activation called outside an activation module;
    the site is named ``F.<name>`` (``torch.relu`` and ``F.relu_`` are ``F.relu``)."""

    def __init__(self, read: Callable[[torch.Tensor, str], None], inside: list[int]) -> None:
        super().__init__()
        self.read, self.inside = read, inside

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        if func in ACTIVATION_FUNCTIONS and not self.inside[0] and args:
            self.read(args[0], "F." + func.__name__.removesuffix("_"))
        return func(*args, **(kwargs or {}))


def _count_patterns(codes: list[torch.Tensor]) -> int | None:
    """Distinct rows of the inputs' joint codes (bit-packed), or None without activations."""
    if not codes:
        return None
    joint = torch.cat(codes, dim=1).cpu().numpy()
    return int(len(np.unique(np.packbits(joint, axis=1), axis=0)))


def _collect_relu(results: PassResults, kernels: list[torch.Tensor]) -> None:
    """Summed kernel and per-call log-determinants of the activation codes."""
    if not kernels:
        results.relu_kernel, results.relu_logdets = None, []
        return
    stack = torch.stack(kernels)
    results.relu_kernel = stack.sum(0)
    results.relu_logdets = logdets_psd(stack)


def _collect_layer_codes(
    results: PassResults, kernels: list[tuple[int, torch.Tensor]], n_layers: int
) -> None:
    """Per weight layer, the summed log|K| of its calls' input codes (None if never called)."""
    logdets: list[float | None] = [None] * n_layers
    if kernels:
        values = logdets_psd(torch.stack([k for _, k in kernels]))
        for (i, _), v in zip(kernels, values, strict=True):
            logdets[i] = v if logdets[i] is None else logdets[i] + v
    results.layer_logdets = logdets


def _loss_backward(
    results: PassResults,
    out: torch.Tensor,
    y: torch.Tensor,
    features: frozenset[str],
    acts: list[tuple[int, torch.Tensor]],
) -> None:
    weights = results.weights
    hvp = "hvp" in features
    loss = F.cross_entropy(out, y)
    act_tensors = [a for _, a in acts]
    grads = torch.autograd.grad(
        loss,
        weights + act_tensors,
        create_graph=hvp,
        retain_graph=hvp or "input_grad" in features,
        allow_unused=True,
    )
    weight_grads = _zeros_for_none(grads[: len(weights)], weights)
    results.grads = [g.detach() for g in weight_grads]
    if "act_grad" in features:
        fisher = [torch.zeros((), dtype=out.dtype, device=out.device) for _ in weights]
        for (i, act), grad in zip(acts, grads[len(weights) :], strict=True):
            if grad is None:
                continue
            prod = act.detach() * grad.detach()
            per_channel = prod.sum(tuple(range(2, prod.dim()))) if prod.dim() > 2 else prod
            # the reference spreads each channel's value over the channel's weights
            fan_in = weights[i][0].numel()
            fisher[i] = fisher[i] + per_channel.pow(2).mean(0).sum() * (0.5 * fan_in)
        results.fisher = fisher
    if hvp:
        z = sum(
            (g.detach() * g).sum()
            for g, raw in zip(weight_grads, grads[: len(weights)], strict=True)
            if raw is not None
        )
        if not torch.is_tensor(z) or not z.requires_grad:
            results.hessian_grads = [torch.zeros_like(w) for w in weights]
        else:
            hg = torch.autograd.grad(
                z, weights, retain_graph="input_grad" in features, allow_unused=True
            )
            results.hessian_grads = [g.detach() for g in _zeros_for_none(hg, weights)]


def _without_batch_norm(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` whose batch-norm layers are identities."""
    net = copy.deepcopy(model)
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(parent, name, nn.Identity())
    return net


def run_synflow(results: PassResults, seed: int) -> None:
    """Per-layer |θ ⊙ ∂R/∂θ| with R = Σ f(1; |θ|) in float64 and no batch norm."""
    net = _without_batch_norm(results.model).double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    weights = [m.weight for _, m in weight_layers(net)]
    ones = torch.ones((1, *results.x.shape[1:]), dtype=torch.float64, device=results.x.device)
    with seeded(seed, results.x.device):
        r = net(ones).sum()
    value = r.detach()
    if not torch.isfinite(value):
        raise FloatingPointError(f"synflow objective overflowed in float64 (R = {value.item()})")
    grads = _zeros_for_none(torch.autograd.grad(r, weights, allow_unused=True), weights)
    results.synflow = [(w.detach() * g).abs() for w, g in zip(weights, grads, strict=True)]


def run_ntk(results: PassResults, seed: int) -> None:
    """Empirical NTK Θ = J Jᵀ, J[i] = ∂(Σ_k f_k(x_i))/∂θ over parameters named ``*weight``."""
    model, x = results.model, results.x
    params = [p for n, p in model.named_parameters() if n.endswith("weight")]
    with seeded(seed, x.device):
        out = model(x)
    rows = []
    for i in range(x.shape[0]):
        g = torch.autograd.grad(
            out[i].sum(), params, retain_graph=i < x.shape[0] - 1, allow_unused=True
        )
        rows.append(torch.cat([t.reshape(-1) for t in _zeros_for_none(g, params)]))
    jac = torch.stack(rows).to(torch.float64)
    results.ntk = jac @ jac.T


def run_zico(results: PassResults, seed: int) -> None:
    """Weight-layer gradients on each of ``ZICO_SPLITS`` parts of the batch (rows of a matrix)."""
    model, x, y = results.model, results.x, results.y
    if x.shape[0] < ZICO_SPLITS:
        raise ValueError(f"ZiCo needs a batch of at least {ZICO_SPLITS} samples, got {x.shape[0]}")
    weights = [m.weight for _, m in weight_layers(model)]
    per_split = []
    with seeded(seed, x.device):
        for xs, ys in zip(x.tensor_split(ZICO_SPLITS), y.tensor_split(ZICO_SPLITS), strict=True):
            loss = F.cross_entropy(model(xs), ys)
            g = _zeros_for_none(torch.autograd.grad(loss, weights, allow_unused=True), weights)
            per_split.append([t.detach().reshape(-1) for t in g])
    results.zico_grads = [torch.stack(layer) for layer in zip(*per_split, strict=True)]


def run_meco(results: PassResults, seed: int) -> None:
    """MeCo's and MeCo_opt's per-module terms on the batch's first sample."""
    with seeded(seed, results.x.device):
        results.meco = meco_eigenvalues(results.model, results.x, seed)


def run_zen(results: PassResults, seed: int) -> None:
    """Zen-score's two terms at its Gaussian initialisation, on a copy of the model."""
    with seeded(seed, results.x.device):
        results.zen = zen_terms(results.model, results.x)


def run_aznas(results: PassResults, seed: int) -> None:
    """AZ-NAS's block entropies and trainability terms at its initialisation, on a copy."""
    with seeded(seed, results.x.device):
        results.aznas = az_terms(results.model, results.x)


def run_vkdnw(results: PassResults, seed: int) -> None:
    """VKDNW's parameter-tensor count and Fisher spectrum at its initialisation, on a copy."""
    with seeded(seed, results.x.device):
        results.vkdnw = vkdnw_terms(results.model, results.x)


PASSES = {
    "synflow": run_synflow,
    "ntk": run_ntk,
    "zico": run_zico,
    "meco": run_meco,
    "zen": run_zen,
    "aznas": run_aznas,
    "vkdnw": run_vkdnw,
}


def plan(features: frozenset[str]) -> list[str]:
    """The passes needed for ``features``, in execution order."""
    names = ["main"] if features & set(MAIN_FEATURES) else []
    return names + [p for p in PASSES if p in features]


def run_pass(name: str, results: PassResults, features: frozenset[str], seed: int) -> float:
    """Run one planned pass; returns its wall time in seconds."""
    start = time.perf_counter()
    if name == "main":
        run_main(results, features & set(MAIN_FEATURES), seed)
    else:
        PASSES[name](results, seed)
    return time.perf_counter() - start
