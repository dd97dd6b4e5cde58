"""What a kernel node says about one call: its vocabulary type, attributes and FLOPs.

Both tracers (``torch.fx`` and the eager fallback) describe a call the same way:
the call's arguments are *bound* to the parameter names of its functional form
(so ``nn.Conv2d`` and ``F.conv2d`` give the same dictionary), tensors appear as
:class:`Operand` records, and :func:`describe` turns the binding into the
kernel's type, attributes and FLOPs.

FLOPs are multiply-accumulates, the convention of NAS-Bench-201 and of the
papers: convolutions (``out_numel · C_in/groups · k``), transposed convolutions,
linear layers (``out_numel · in_features``), matrix products (``out_numel · K``),
``einsum`` (the products torch evaluates it with, see :func:`_einsum`) and attention
(projections plus the two score/value products); a bias adds one per output
element.  Every other kernel (normalisation, activation, pooling,
element-wise and shape operations) counts 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Number
from typing import Any

import torch
from cbred.cgraph.vocab import refine
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class Operand:
    """A tensor argument or result: its memory node, shape and dtype name."""

    mem: int
    shape: tuple[int, ...]
    dtype: str

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


_BINARY = ("input", "other")
_POOL = ("input", "kernel_size", "stride", "padding")

FUNCTION_ARGS: dict[str, tuple[str, ...]] = {
    "conv": ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
    "conv_transpose": (
        "input",
        "weight",
        "bias",
        "stride",
        "padding",
        "output_padding",
        "groups",
        "dilation",
    ),
    "linear": ("input", "weight", "bias"),
    "matmul": _BINARY,
    "attention": ("query", "key", "value"),
    "batch_norm": ("input", "running_mean", "running_var", "weight", "bias"),
    "layer_norm": ("input", "normalized_shape", "weight", "bias"),
    "group_norm": ("input", "num_groups", "weight", "bias"),
    "avg_pool": _POOL,
    "max_pool": _POOL,
    "adaptive_avg_pool": ("input", "output_size"),
    "adaptive_max_pool": ("input", "output_size"),
    "softmax": ("input", "dim"),
    "add": _BINARY,
    "sub": _BINARY,
    "mul": _BINARY,
    "div": _BINARY,
    "cat": ("tensors", "dim"),
    "reduce": ("input", "dim"),
    "split": ("input", "split_size_or_sections", "dim"),
    "embedding": ("input", "weight"),
    "dropout": ("input", "p", "training", "inplace"),
    "einsum": ("equation",),
    "rms_norm": ("input", "normalized_shape", "weight", "eps"),
}
"""Positional parameter names of each family's functional form (others: ``arg0``, ...)."""

RAW_ARGS: dict[str, tuple[str, ...]] = {
    "addmm": ("input", "mat1", "mat2"),
    "baddbmm": ("input", "batch1", "batch2"),
    "chunk": ("input", "chunks", "dim"),
}
"""Functions whose positional names differ from their family's."""

MODULE_ARGS: dict[str, tuple[str, ...]] = {"attention": ("query", "key", "value")}
"""Names of a leaf module's ``forward`` arguments (default: ``input``)."""

MODULE_OPTIONS: dict[str, tuple[str, ...]] = {
    "conv": ("stride", "padding", "dilation", "groups"),
    "conv_transpose": ("stride", "padding", "output_padding", "groups", "dilation"),
    "avg_pool": ("kernel_size", "stride", "padding"),
    "max_pool": ("kernel_size", "stride", "padding"),
    "adaptive_avg_pool": ("output_size",),
    "adaptive_max_pool": ("output_size",),
    "softmax": ("dim",),
    "attention": ("embed_dim", "num_heads", "batch_first", "add_zero_attn"),
    "dropout": ("p", "training"),
}
"""Module attributes that play the role of the functional form's options."""


def bind_function(family: str, name: str, args: tuple, kwargs: dict) -> dict[str, Any]:
    """Name the arguments of a function or method call (the tensor itself is ``input``)."""
    names = RAW_ARGS.get(name) or FUNCTION_ARGS.get(family, ())
    bound = {names[i] if i < len(names) else f"arg{i}": value for i, value in enumerate(args)}
    bound.update(kwargs)
    return bound


def bind_module(
    family: str, module: nn.Module, args: tuple, kwargs: dict, state: dict[str, Operand]
) -> dict[str, Any]:
    """Name a leaf module call's arguments, options and parameters/buffers (``state``)."""
    names = MODULE_ARGS.get(family, ("input",))
    bound = {names[i] if i < len(names) else f"arg{i}": value for i, value in enumerate(args)}
    bound.update(kwargs)
    for option in MODULE_OPTIONS.get(family, ()):
        bound[option] = getattr(module, option)
    bound.update(state)
    return bound


def describe(
    family: str, name: str, bound: dict[str, Any], outputs: list[Operand]
) -> tuple[str, dict[str, Any], int]:
    """(vocabulary type, attributes, FLOPs) of a call bound by :func:`bind_function`/``module``.

    ``name`` is the normalised function name or module class name; it gives the
    spatial rank of pooling layers (``avg_pool2d`` → 2).
    """
    out = outputs[0].numel if outputs else 0
    attrs: dict[str, Any] = {}
    flops = 0
    bias = isinstance(bound.get("bias"), Operand)
    if family == "conv":
        weight = bound["weight"]
        rank = len(weight.shape) - 2
        groups = int(bound.get("groups", 1))
        kernel = tuple(weight.shape[2:])
        attrs = {
            "in_channels": weight.shape[1] * groups,
            "out_channels": weight.shape[0],
            "kernel_size": kernel,
            "stride": _tuple(bound.get("stride", 1), rank),
            "padding": _padding(bound.get("padding", 0), rank),
            "dilation": _tuple(bound.get("dilation", 1), rank),
            "groups": groups,
            "bias": bias,
        }
        flops = out * weight.shape[1] * math.prod(kernel) + (out if bias else 0)
    elif family == "conv_transpose":
        weight, groups = bound["weight"], int(bound.get("groups", 1))
        rank = len(weight.shape) - 2
        attrs = {
            "in_channels": weight.shape[0],
            "out_channels": weight.shape[1] * groups,
            "kernel_size": tuple(weight.shape[2:]),
            "stride": _tuple(bound.get("stride", 1), rank),
            "padding": _padding(bound.get("padding", 0), rank),
            "groups": groups,
            "bias": bias,
        }
        macs = bound["input"].numel * weight.shape[1] * math.prod(weight.shape[2:])
        flops = macs + (out if bias else 0)
    elif family == "linear":
        weight = bound["weight"]
        attrs = {"in_features": weight.shape[-1], "out_features": weight.shape[0], "bias": bias}
        flops = out * weight.shape[-1] + (out if bias else 0)
    elif family == "matmul":
        left = bound.get("mat1") or bound.get("batch1") or bound["input"]
        flops = out * left.shape[-1]
    elif family == "attention":
        attrs, flops = _attention(bound)
    elif family == "einsum":
        attrs, flops = _einsum(bound)
    elif family == "dropout":
        attrs = _dropout(name, bound)
    elif family in ("avg_pool", "max_pool"):
        rank = _rank(name)
        kernel = _tuple(bound["kernel_size"], rank)
        stride = bound.get("stride")
        attrs = {
            "kernel_size": kernel,
            "stride": _tuple(stride, rank) if stride not in (None, ()) else kernel,
            "padding": _tuple(bound.get("padding", 0), rank),
        }
    elif family in ("adaptive_avg_pool", "adaptive_max_pool"):
        attrs = {"output_size": _tuple(bound["output_size"], _rank(name))}
    elif family in ("add", "sub", "mul", "div"):
        other = bound.get("other")
        if isinstance(other, Number):
            attrs = {"scalar": other}
    elif family == "reduce" and name == "mean" and _is_global_pool(bound):
        family = "adaptive_avg_pool"  # the same global average pool as nn.AdaptiveAvgPool2d(1)
        attrs = {"output_size": (1,) * (len(bound["input"].shape) - 2)}
    elif family in ("softmax", "cat", "reduce", "split") and "dim" in bound:
        attrs = {"dim": _clean(bound["dim"])}
    return refine(family, attrs), attrs, int(flops)


def _is_global_pool(bound: dict[str, Any]) -> bool:
    """Whether a ``mean`` reduces exactly the spatial axes of an (N, C, H, W) or
    (N, C, D, H, W) array: timm's ``x.mean((2, 3), keepdim=True)`` where torchvision writes
    ``AdaptiveAvgPool2d(1)``.  A 3-D array is left alone: (N, C, L) and a transformer's
    (N, T, D) cannot be told apart, and a mean over D is no pooling."""
    source, dims = bound.get("input"), bound.get("dim")
    if not isinstance(source, Operand) or len(source.shape) < 4 or dims is None:
        return False
    rank = len(source.shape)
    dims = dims if isinstance(dims, (tuple, list)) else (dims,)
    if not all(isinstance(d, int) for d in dims):
        return False
    return sorted(d % rank for d in dims) == list(range(2, rank))


def _attention(bound: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Attributes and MACs of ``nn.MultiheadAttention`` or scaled dot-product attention."""
    query, key, value = bound["query"], bound["key"], bound["value"]
    if "embed_dim" not in bound:  # F.scaled_dot_product_attention on (..., L, E) tensors
        length, source = query.shape[-2], key.shape[-2]
        batch = math.prod(query.shape[:-2])
        return {}, batch * length * source * (query.shape[-1] + value.shape[-1])
    embed = int(bound["embed_dim"])
    if len(query.shape) == 2:
        batch, length, source = 1, query.shape[0], key.shape[0]
    elif bound["batch_first"]:
        batch, length, source = query.shape[0], query.shape[1], key.shape[1]
    else:
        batch, length, source = query.shape[1], query.shape[0], key.shape[0]
    projections = length * embed * embed + source * embed * (key.shape[-1] + value.shape[-1])
    if isinstance(bound.get("in_proj_bias"), Operand):
        projections += (length + 2 * source) * embed
    output = length * embed * embed
    if isinstance(bound.get("out_proj.bias"), Operand):
        output += length * embed
    flops = batch * (projections + 2 * length * source * embed + output)
    return {"embed_dim": embed, "num_heads": int(bound["num_heads"])}, flops


def _einsum(bound: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Attributes and MACs of ``torch.einsum``.

    The MACs are those of the products torch evaluates the equation with, counted by
    :class:`~torch.utils.flop_counter.FlopCounterMode` on meta tensors of the operands'
    shapes (no data, no arithmetic): the count follows torch's own contraction order, so
    ``einsum("bij,bjk->bik", a, b)`` counts what ``torch.bmm(a, b)`` counts, and a pure
    element-wise product or a reduction counts 0, as ``mul`` and ``sum`` do.
    """
    args = [_on_meta(value) for value in bound.values()]
    with FlopCounterMode(display=False) as counter:
        torch.einsum(*args)
    equation = bound.get("equation")
    attrs = {"equation": equation.replace(" ", "")} if isinstance(equation, str) else {}
    return attrs, counter.get_total_flops() // 2


def _on_meta(value: Any) -> Any:
    """``value`` with every Operand (or tensor) replaced by an empty meta tensor of its shape."""
    if isinstance(value, Operand):
        return torch.empty(value.shape, dtype=getattr(torch, value.dtype), device="meta")
    if isinstance(value, torch.Tensor):
        return value.to("meta")
    if isinstance(value, (list, tuple)):
        return type(value)(_on_meta(v) for v in value)
    return value


_EVAL_BY_DEFAULT = ("alpha_dropout", "feature_alpha_dropout")
"""Functional dropouts whose ``training`` argument defaults to False."""


def _dropout(name: str, bound: dict[str, Any]) -> dict[str, Any]:
    """Drop probability and whether the call drops at all (``training``), as traced.

    Modules give their ``p`` and mode; functions their arguments (``F.dropout``'s
    ``training`` defaults to True, ``torch.dropout`` calls it ``train``).
    """
    training = bound.get("training", bound.get("train", name not in _EVAL_BY_DEFAULT))
    return {"p": _clean(bound.get("p", 0.5)), "training": _clean(training)}


def _rank(name: str) -> int:
    """Spatial rank from a name ending in ``1d``/``2d``/``3d``."""
    if len(name) >= 2 and name[-1] == "d" and name[-2] in "123":
        return int(name[-2])
    raise ValueError(
        f"cannot tell the spatial rank of {name!r}; expected a name ending in 1d/2d/3d"
    )


def _tuple(value: Any, rank: int) -> tuple:
    """An option given as a number or a sequence, as a tuple of length ``rank``."""
    if isinstance(value, (tuple, list)):
        return tuple(int(v) for v in value)
    return (int(value),) * rank


def _padding(value: Any, rank: int) -> tuple | str:
    """Convolution padding: a tuple, or the strings ``same``/``valid``."""
    return value if isinstance(value, str) else _tuple(value, rank)


def _clean(value: Any) -> Any:
    """An attribute value as JSON-friendly scalars and tuples."""
    if isinstance(value, (list, tuple)):
        return tuple(_clean(v) for v in value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)
