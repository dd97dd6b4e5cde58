"""The operation vocabulary: canonical kernel types, their aliases and refinements.

Every kernel node of a :class:`~cgraph.graph.CompGraph` has one type from
:data:`VOCAB`.  The vocabulary is ordered and stable, because op-usage
histograms and distributions are vectors indexed by it: changing it changes the
meaning of every stored histogram, so extend it deliberately.

How a call becomes a type, in two steps:

1. **Family** (alias merging).  A leaf module class, a function or a tensor
   method is looked up in :data:`FAMILY_ALIASES` by its normalised name:
   ``nn.Conv2d``, ``F.conv2d``, ``torch.conv2d`` all give family ``conv``;
   ``a + b``, ``torch.add``, ``a.add_(b)``, ``a += b`` all give ``add``.
   Dunder wrappers are stripped (``__add__`` → ``add``), reflected and in-place
   forms fold into the plain one (``radd``, ``iadd``, ``relu_``).
2. **Refinement** by attributes, where the type matters for the papers'
   clusters (NB201's clusters differ between 3×3 and 1×1 convolutions):

   ======================  ================================================
   family                  refined types
   ======================  ================================================
   ``conv`` (groups < C)   ``conv1x1``, ``conv3x3``, ``conv5x5``, ``conv7x7``
                           for square 2-D kernels, else ``conv``
   ``conv`` depthwise      ``dwconv3x3``, ``dwconv5x5``, else ``dwconv``
   ``avg_pool``            ``avg_pool2x2``, ``avg_pool3x3``, else ``avg_pool``
   ``max_pool``            ``max_pool2x2``, ``max_pool3x3``, else ``max_pool``
   ``mul``                 ``zero`` when multiplying by the constant 0
   ``reduce`` (``mean``)   ``adaptive_avg_pool`` when it averages every
                           spatial axis of an (N, C, H, W) or (N, C, D, H, W)
                           array
   ======================  ================================================

   A convolution is *depthwise* when ``groups`` equals the input channels and is
   larger than one.  ``torch.zeros_like`` is also ``zero``.  A spatial ``mean`` is the
   global average pool ``nn.AdaptiveAvgPool2d(1)`` computes (timm writes the one where
   torchvision writes the other), so the two writings of a network get one type.

No-op and shape operations are kernels too, each with its own type, so the
number of kernels equals the number of executed operations:

- ``identity``: ``nn.Identity`` and copies/casts (``clone``, ``contiguous``,
  ``to``, ``detach``, ``float``).  NB201's ``skip_connect`` is an ``identity``
  kernel and its ``none`` a ``zero`` kernel (``x.mul(0)``), so both leave a
  trace in the op-usage distribution, as pooling and convolutions do.
- ``reshape`` (views and flattening), ``permute`` (axis reorders), ``index``
  (indexing a tensor) and ``split`` (one kernel writing several arrays).
- ``dropout``: every kind (``nn.Dropout*``, ``F.dropout*``, alpha dropout), with
  attributes ``p`` and ``training`` (the mode of the traced call), so that
  :func:`cgraph.passes.drop_noops` can remove the ones that compute nothing.
  torchvision's ``stochastic_depth`` is a Python function: the trace records what
  it calls (nothing in eval mode; the random mask and the scaling in training).
- ``attention``: the product softmax(QKᵀ/√d)V (``F.scaled_dot_product_attention``).
  ``nn.MultiheadAttention`` on one batched input is recorded as the operations it
  computes (q/k/v projection, heads split, ``attention``, heads merged, output
  projection), the way a transformer written out by hand runs them, so both writings of
  one block give one graph; other calls of the module (cross-attention, extra key/value
  biases) stay one ``attention`` kernel with the projections' FLOPs in it.
- Calls that return no tensor (``x.size()``, ``x.shape``, ``x.dim()``) and
  selecting an element of a tuple returned by a kernel are bookkeeping, not
  kernels.

Anything not listed is type ``other``; its original name stays on the kernel
(``CompGraph.kernel_target``).
"""

from __future__ import annotations

import numpy as np
from torch import nn

VOCAB: tuple[str, ...] = (
    "conv1x1",
    "conv3x3",
    "conv5x5",
    "conv7x7",
    "conv",
    "dwconv3x3",
    "dwconv5x5",
    "dwconv",
    "conv_transpose",
    "linear",
    "matmul",
    "attention",
    "batch_norm",
    "layer_norm",
    "group_norm",
    "instance_norm",
    "relu",
    "relu6",
    "leaky_relu",
    "gelu",
    "silu",
    "hardswish",
    "sigmoid",
    "tanh",
    "softmax",
    "avg_pool2x2",
    "avg_pool3x3",
    "avg_pool",
    "max_pool2x2",
    "max_pool3x3",
    "max_pool",
    "adaptive_avg_pool",
    "adaptive_max_pool",
    "add",
    "sub",
    "mul",
    "div",
    "zero",
    "cat",
    "reduce",
    "elementwise",
    "identity",
    "reshape",
    "permute",
    "index",
    "split",
    "dropout",
    "embedding",
    "pad",
    "interpolate",
    "other",
    "einsum",
    "hardsigmoid",
    "roll",
    "rms_norm",
)
"""Kernel types, in the fixed order of op-usage histograms.  New types are appended at the
end, so that the existing indices, and the stored histograms that use them, keep their
meaning."""

VOCAB_INDEX: dict[str, int] = {op: i for i, op in enumerate(VOCAB)}

FAMILY_ALIASES: dict[str, tuple[str, ...]] = {
    "conv": ("conv1d", "conv2d", "conv3d", "Conv1d", "Conv2d", "Conv3d"),
    "conv_transpose": (
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
        "ConvTranspose1d",
        "ConvTranspose2d",
        "ConvTranspose3d",
    ),
    "linear": ("linear", "Linear"),
    "matmul": ("matmul", "rmatmul", "mm", "bmm", "addmm", "baddbmm"),
    "attention": ("MultiheadAttention", "scaled_dot_product_attention"),
    "batch_norm": ("batch_norm", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d"),
    "layer_norm": ("layer_norm", "LayerNorm"),
    "group_norm": ("group_norm", "GroupNorm"),
    "instance_norm": ("instance_norm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"),
    "relu": ("relu", "ReLU"),
    "relu6": ("relu6", "ReLU6"),
    "leaky_relu": ("leaky_relu", "LeakyReLU"),
    "gelu": ("gelu", "GELU"),
    "silu": ("silu", "SiLU"),
    "hardswish": ("hardswish", "Hardswish"),
    "sigmoid": ("sigmoid", "Sigmoid"),
    "tanh": ("tanh", "Tanh"),
    "softmax": ("softmax", "log_softmax", "Softmax", "LogSoftmax"),
    "avg_pool": ("avg_pool1d", "avg_pool2d", "avg_pool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d"),
    "max_pool": ("max_pool1d", "max_pool2d", "max_pool3d", "MaxPool1d", "MaxPool2d", "MaxPool3d"),
    "adaptive_avg_pool": (
        "adaptive_avg_pool1d",
        "adaptive_avg_pool2d",
        "adaptive_avg_pool3d",
        "AdaptiveAvgPool1d",
        "AdaptiveAvgPool2d",
        "AdaptiveAvgPool3d",
    ),
    "adaptive_max_pool": (
        "adaptive_max_pool1d",
        "adaptive_max_pool2d",
        "adaptive_max_pool3d",
        "AdaptiveMaxPool1d",
        "AdaptiveMaxPool2d",
        "AdaptiveMaxPool3d",
    ),
    "add": ("add", "iadd", "radd"),
    "sub": ("sub", "isub", "rsub"),
    "mul": ("mul", "imul", "rmul"),
    "div": ("div", "truediv", "itruediv", "rtruediv", "floordiv", "floor_divide"),
    "zero": ("zeros_like",),
    "cat": ("cat", "concat", "concatenate", "stack"),
    "reduce": ("mean", "sum", "amax", "amin", "prod", "norm", "logsumexp"),
    "elementwise": (
        "exp",
        "log",
        "sqrt",
        "rsqrt",
        "pow",
        "abs",
        "neg",
        "clamp",
        "clip",
        "square",
        "erf",
        "reciprocal",
        "where",
        "masked_fill",
        "gt",
        "ge",
        "lt",
        "le",
        "eq",
        "ne",
    ),
    "identity": ("Identity", "clone", "contiguous", "detach", "to", "float", "half", "type_as"),
    "reshape": (
        "view",
        "view_as",
        "reshape",
        "reshape_as",
        "flatten",
        "Flatten",
        "unflatten",
        "Unflatten",
        "squeeze",
        "unsqueeze",
        "expand",
        "expand_as",
        "repeat",
        "broadcast_to",
    ),
    "permute": ("permute", "transpose", "t", "swapaxes", "movedim"),
    "index": ("getitem", "narrow", "select", "index_select", "gather"),
    "split": ("split", "chunk", "unbind", "tensor_split"),
    "dropout": (
        "dropout",
        "dropout1d",
        "dropout2d",
        "dropout3d",
        "Dropout",
        "Dropout1d",
        "Dropout2d",
        "Dropout3d",
        "alpha_dropout",
        "feature_alpha_dropout",
        "AlphaDropout",
        "FeatureAlphaDropout",
    ),
    "embedding": ("embedding", "Embedding"),
    "pad": ("pad", "ZeroPad2d", "ConstantPad1d", "ConstantPad2d", "ReflectionPad2d"),
    "interpolate": ("interpolate", "Upsample"),
    "einsum": ("einsum",),
    "hardsigmoid": ("hardsigmoid", "Hardsigmoid"),
    "roll": ("roll",),
    "rms_norm": ("rms_norm", "RMSNorm"),
}
"""Family → the normalised names (module class names, functions, methods) it merges."""

_FAMILY_OF: dict[str, str] = {
    alias: family for family, aliases in FAMILY_ALIASES.items() for alias in aliases
}

_MODULE_FAMILY: dict[type, str] = {
    cls: _FAMILY_OF[cls.__name__]
    for cls in vars(nn).values()
    if isinstance(cls, type) and issubclass(cls, nn.Module) and cls.__name__ in _FAMILY_OF
}

_SAME_AS = {
    "radd": "add",
    "iadd": "add",
    "isub": "sub",
    "rmul": "mul",
    "imul": "mul",
    "truediv": "div",
    "itruediv": "div",
    "imatmul": "matmul",
}
"""Operator spellings that torch dispatches as the plain method (``a / b`` is ``div``)."""


def normalise_name(name: str) -> str:
    """The alias key of a function or method name: no dunders, no in-place ``_`` suffix.

    ``__add__`` → ``add``, ``__iadd__`` → ``add``, ``relu_`` → ``relu``; names with
    a leading underscore (private helpers) are kept as they are.
    """
    if name.startswith("__") and name.endswith("__") and len(name) > 4:
        name = name[2:-2]
    elif name.endswith("_") and not name.startswith("_"):
        name = name[:-1]
    return _SAME_AS.get(name, name)


def function_family(name: str) -> str:
    """The family of a function or method with normalised name ``name`` (``other`` if unknown)."""
    return _FAMILY_OF.get(name, "other")


def module_family(module: nn.Module) -> str | None:
    """The family of a module traced as one kernel, or ``None`` to trace through it.

    A module is a leaf when its class, or a base class whose ``forward`` it does
    not override, is a ``torch.nn`` class listed in :data:`FAMILY_ALIASES`.
    """
    cls = type(module)
    for base in cls.__mro__:
        family = _MODULE_FAMILY.get(base)
        if family is not None:
            return family if cls.forward is base.forward else None
    return None


def refine(family: str, attrs: dict) -> str:
    """The vocabulary type of a kernel of ``family`` with attributes ``attrs``."""
    if family == "conv":
        kernel = attrs["kernel_size"]
        square = len(kernel) == 2 and kernel[0] == kernel[1]
        if attrs["groups"] > 1 and attrs["groups"] == attrs["in_channels"]:
            return f"dwconv{kernel[0]}x{kernel[0]}" if square and kernel[0] in (3, 5) else "dwconv"
        return f"conv{kernel[0]}x{kernel[0]}" if square and kernel[0] in (1, 3, 5, 7) else "conv"
    if family in ("avg_pool", "max_pool"):
        kernel = attrs["kernel_size"]
        square = len(kernel) == 2 and kernel[0] == kernel[1] and kernel[0] in (2, 3)
        return f"{family}{kernel[0]}x{kernel[0]}" if square else family
    if family == "mul" and attrs.get("scalar") == 0:
        return "zero"
    return family


def op_index(op: str) -> int:
    """Position of ``op`` in :data:`VOCAB`; raises for a name outside the vocabulary."""
    try:
        return VOCAB_INDEX[op]
    except KeyError:
        raise ValueError(
            f"unknown kernel type {op!r}; expected one of {', '.join(VOCAB)}"
        ) from None


def histogram(op_codes: np.ndarray) -> np.ndarray:
    """Counts of each :data:`VOCAB` type among kernel op codes, as an int64 vector."""
    return np.bincount(np.asarray(op_codes, dtype=np.int64), minlength=len(VOCAB))
