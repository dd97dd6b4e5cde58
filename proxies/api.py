"""``score``: compute any set of registered statistics of a model on a batch, fused.

The caller's model is never touched: scoring works on a deep copy placed on the target
device, in training mode, with every parameter requiring gradients.  Failures inside a
pass or a statistic (a dead network, a singular matrix, an overflow) become NaN with a
reason in :attr:`ScoreResult.errors`; only bad arguments raise.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from cbred.proxies.passes import MAIN_FEATURES, PassResults, plan, run_pass, seeded
from cbred.proxies.registry import ProxySpec, ProxyUndefined, available_proxies, get_proxy
from torch import nn
from torch.utils import _pytree as pytree

# Errors a statistic's computation may raise on a numerically bad network; bugs elsewhere
# (TypeError, AttributeError, ...) still surface.
NUMERIC_ERRORS = (ProxyUndefined, ArithmeticError, RuntimeError, ValueError)
FLOAT_INPUT = frozenset({"input_grad", "synflow", "zen", "aznas", "vkdnw"})
"""Pass features that differentiate with respect to the input or replace it by synthetic
floats (synflow's ones, Zen's, AZ-NAS's and VKDNW's Gaussians): undefined on integer token
ids."""


@dataclass(frozen=True)
class ScoreResult:
    """Statistic name → value (``result[name]``, iteration, ``len``, ``items()``); the
    ``values`` dict holds them, ``seconds`` the times (per pass, per statistic and
    ``total``) and ``errors`` the reason for every NaN or infinite value.

    ``code_sites`` says where the statistics that read binary codes read them: for each
    such statistic asked for, site → number of calls read.  The activation-code ones
    (naswot, naswot_layerwise, linear_regions, swap) name activation types (``"ReLU6"``,
    ``"SiLU"``; functional forms as ``"F.relu"``); tcet names the weight layers whose
    inputs it codes (``"Conv2d input"``).  Empty for a network with no such site (its
    statistics are NaN with the reason) and when their pass failed."""

    values: dict[str, float]
    seconds: dict[str, float]
    errors: dict[str, str]
    passes: tuple[str, ...]
    code_sites: dict[str, dict[str, int]] = field(default_factory=dict)

    def __getitem__(self, name: str) -> float:
        return self.values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def __contains__(self, name: object) -> bool:
        return name in self.values

    def items(self) -> Iterator[tuple[str, float]]:
        """(name, value) pairs in the order the statistics were asked for."""
        return iter(self.values.items())


def resolve_device(device: str | torch.device | None, default: torch.device) -> torch.device:
    """The device to score on; a device string torch cannot parse, or an unavailable CUDA
    device, is a ValueError."""
    try:
        dev = default if device is None else torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device {device!r} is not a torch device: {_first_line(exc)}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(dev)!r} requested but CUDA is not available")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(
            f"device {str(dev)!r} requested but only {torch.cuda.device_count()} CUDA "
            f"device(s) exist (cuda:0..cuda:{torch.cuda.device_count() - 1})"
        )
    return dev


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _check_batch(batch: object) -> tuple[torch.Tensor, torch.Tensor]:
    if not (isinstance(batch, Sequence) and len(batch) == 2):
        raise ValueError(f"batch must be a pair (x, y) of tensors, got {type(batch).__name__}")
    x, y = batch
    if not (torch.is_tensor(x) and x.dim() >= 2 and x.dtype != torch.bool and not x.is_complex()):
        raise ValueError(
            "batch x must be a floating (or integer token id) tensor of shape (N, ...) with N ≥ 1"
        )
    if not (torch.is_tensor(y) and y.dtype == torch.int64 and y.shape == (x.shape[0],)):
        raise ValueError(f"batch y must be an int64 tensor of shape ({x.shape[0]},) (class labels)")
    return x, y


def _resolve_proxies(proxies: Sequence[str] | None) -> list[ProxySpec]:
    names = available_proxies() if proxies is None else list(proxies)
    if isinstance(proxies, str):
        raise ValueError(f"proxies must be a list of names, got the string {proxies!r}")
    if not names or len(set(names)) != len(names):
        raise ValueError(f"proxies must be a non-empty list of distinct names, got {names}")
    return [get_proxy(n) for n in names]


def working_copy(model: nn.Module, device: torch.device, copy_model: bool = True) -> nn.Module:
    """A deep copy of ``model`` (``model`` itself unless ``copy_model``) on ``device``, in
    training mode, all parameters trainable, no gradients."""
    if copy_model:
        model = copy.deepcopy(model, memo=_detached_attributes(model))
    work = model.to(device).train()
    for p in work.parameters():
        p.requires_grad_(True)
        p.grad = None
    return work


def _detached_attributes(model: nn.Module) -> dict[int, torch.Tensor]:
    """A deepcopy memo mapping each tensor that a forward computed and a module kept as an
    attribute (timm's LeViT caches its attention biases in eval mode) to a copy without
    autograd history: deepcopy refuses tensors with history."""
    memo: dict[int, torch.Tensor] = {}
    for module in model.modules():
        for leaf in pytree.tree_leaves(list(module.__dict__.values())):
            if isinstance(leaf, torch.Tensor) and leaf.grad_fn is not None:
                memo[id(leaf)] = leaf.detach().clone()
    return memo


def input_on(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The batch's input on ``device``: as laid out on the CPU, in the standard (NCHW)
    layout on CUDA.

    A channels-last batch (the bundled CIFAR sample is one; such convolutions are faster on
    the CPU) makes every activation channels-last, and PyTorch's CUDA backward of a padded
    ``avg_pool2d`` in that layout returns wrong input gradients (pytorch/pytorch#188344,
    fixed by PR #188345; seen here on torch 2.11: grad_norm off by up to 8.5× on NB201 cells
    with average pooling, forward-only statistics unaffected).  The values are the same
    either way; only the kernels differ.
    """
    if device.type == "cuda":
        return x.to(device, memory_format=torch.contiguous_format)
    return x.to(device)


@contextmanager
def full_fp32(device: torch.device) -> Iterator[None]:
    """On CUDA, convolutions and matrix products in full float32 for the block, restored after.

    cuDNN's default TF32 convolutions keep 10 bits of mantissa: values would differ from the
    CPU's by ~1e-3 and near-zero pre-activations could flip the binary codes that naswot and
    SWAP count, so one store could not mix rows scored on CPU and on CUDA.
    """
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _pass_of(feature: str) -> str:
    return "main" if feature in MAIN_FEATURES else feature


_ACTIVATION_CODES = frozenset({"relu_codes", "relu_patterns", "neuron_patterns"})
"""Pass features read from the codes at the activations' inputs."""


def _code_sites(needs: frozenset[str], results: PassResults) -> dict[str, int] | None:
    """Where a statistic with ``needs`` read binary codes (site → calls); None if it reads none."""
    if not needs & (_ACTIVATION_CODES | {"layer_codes"}):
        return None
    sites: dict[str, int] = {}
    if needs & _ACTIVATION_CODES:
        sites.update(results.activation_sites or {})
    if "layer_codes" in needs:
        sites.update(results.layer_sites or {})
    return sites


def score(
    model: nn.Module,
    batch: tuple[torch.Tensor, torch.Tensor],
    proxies: Sequence[str] | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    copy_model: bool = True,
) -> ScoreResult:
    """Compute the named statistics (default: all registered) of ``model`` on ``batch``.

    ``batch`` is ``(x, y)`` with class labels ``y`` (``x`` may be integer token ids: the
    statistics that need a floating input are then NaN with that reason); ``seed`` seeds
    every random choice of the passes (dropout, for instance) and makes the result
    deterministic.  The device
    defaults to the batch's.  The statistics run on a deep copy, so ``model`` is left as it
    was; ``copy_model=False`` scores ``model`` itself (left in training mode, its parameters
    trainable, its batch-norm running statistics updated by the forward passes): for a
    network built only to be scored, as :func:`score_space` does, it saves the copy (a third
    of MeCo's time on NB201), with the same values.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    specs = _resolve_proxies(proxies)
    x, y = _check_batch(batch)
    dev = resolve_device(device, x.device)
    start = time.perf_counter()
    results = PassResults(working_copy(model, dev, copy_model), input_on(x, dev), y.to(dev))
    errors: dict[str, str] = {}
    if not x.is_floating_point():
        for spec in specs:
            if spec.needs & FLOAT_INPUT:
                errors[spec.name] = (
                    f"{spec.name} needs a floating input (it differentiates with respect to the "
                    f"input or feeds synthetic ones or Gaussians); x is {x.dtype} (token ids?)"
                )
    features = frozenset().union(*(s.needs for s in specs if s.name not in errors))
    seconds: dict[str, float] = {}
    failed: dict[str, str] = {}
    with full_fp32(dev):
        passes = plan(features)
        for name in passes:
            try:
                seconds[f"pass:{name}"] = run_pass(name, results, features, seed)
            except NUMERIC_ERRORS as exc:
                failed[name] = f"pass {name!r} failed: {type(exc).__name__}: {exc}"
        values: dict[str, float] = {}
        code_sites: dict[str, dict[str, int]] = {}
        for spec in specs:
            sites = _code_sites(spec.needs, results)
            if sites is not None:
                code_sites[spec.name] = sites
            t0 = time.perf_counter()
            reasons = [failed[p] for p in sorted({_pass_of(f) for f in spec.needs}) if p in failed]
            value = math.nan
            if spec.name in errors:  # refused before the passes (a token-id input)
                pass
            elif reasons:
                errors[spec.name] = "; ".join(reasons)
            else:
                try:
                    value = float(spec.fn(results))
                except NUMERIC_ERRORS as exc:
                    errors[spec.name] = str(exc) if isinstance(exc, ProxyUndefined) else repr(exc)
            if not math.isfinite(value) and spec.name not in errors:
                errors[spec.name] = f"value is {value} (singular kernel or degenerate network)"
            values[spec.name] = value
            seconds[spec.name] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - start
    return ScoreResult(values, seconds, errors, tuple(passes), code_sites)


def score_space(
    space: Any,
    index: int,
    proxies: Sequence[str] | None = None,
    batch_size: int = 64,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> ScoreResult:
    """Score architecture ``index`` of any space (see :mod:`reduce.space` for the contract):
    the network ``space.build(index)`` with its initialisation drawn from ``seed``, on the batch
    ``space.batch(batch_size, seed)``.  A space without ``batch`` raises ValueError (give it
    data first); a network that cannot be built raises, since no statistic is defined then."""
    if not callable(getattr(space, "batch", None)):
        raise ValueError(
            f"space {getattr(space, 'name', type(space).__name__)!r} has no batch(size, seed); "
            "data-dependent statistics need one (or name a data set)"
        )
    with seeded(seed, torch.device("cpu")):
        net = space.build(index)
    if not isinstance(net, nn.Module):
        raise ValueError(
            f"build({index}) returned {type(net).__name__}; expected a torch.nn.Module"
        )
    try:
        batch = space.batch(batch_size, seed)
    except (ValueError, FileNotFoundError):
        raise  # the space's own message (a size out of range, a data set not on disk)
    except Exception as exc:  # a user's space may fail in any way, e.g. on a huge size
        raise ValueError(
            f"batch({batch_size}, {seed}) of the space raised {type(exc).__name__}: "
            f"{_first_line(exc)}"
        ) from exc
    return score(net, batch, proxies, seed, device, copy_model=False)  # built to be scored
