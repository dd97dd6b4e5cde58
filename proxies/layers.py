"""Which modules the statistics look at, and the small linear-algebra helpers they share.

Following the zero-cost-proxy reference code, parameter saliencies are taken over the
weights of convolution and linear layers ("weight layers"); activation codes are taken
at every activation, module or functional (:data:`ACTIVATION_MODULES`,
:data:`ACTIVATION_FUNCTIONS`): the sign pattern of the activation's input.
"""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Callable
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

WEIGHT_LAYER_TYPES: tuple[type[nn.Module], ...] = (nn.modules.conv._ConvNd, nn.Linear)


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every convolution or linear layer with a weight, in module order."""
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, WEIGHT_LAYER_TYPES) and isinstance(m.weight, nn.Parameter)
    ]


ACTIVATION_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.RReLU,
    nn.Hardtanh,
    nn.ELU,
    nn.CELU,
    nn.SELU,
    nn.GELU,
    nn.SiLU,
    nn.Hardswish,
    nn.Mish,
    nn.Tanh,
)
"""Activation modules whose input codes the NASWOT-type statistics read. For ReLU the code
is NASWOT's (which units are active); for the other piecewise-linear and the smooth ones the
same rule applies, the sign pattern of the pre-activation (x > 0), which is ReLU's code of
the same pre-activation, so one network written with ReLU or with GELU is compared on the
same partition of its inputs.  ``tanh`` is one of them: an activation of its own, and the
core of the tanh approximation of GELU (GPT-2's ``0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³)))``),
whose tanh input has the sign of x, so its code is GELU's."""

ACTIVATION_FUNCTIONS: frozenset = frozenset(
    {
        F.relu,
        F.relu_,
        torch.relu,
        torch.relu_,
        F.relu6,
        F.leaky_relu,
        F.leaky_relu_,
        F.hardtanh,
        F.hardtanh_,
        F.elu,
        F.celu,
        F.selu,
        F.gelu,
        F.silu,
        F.hardswish,
        F.mish,
        F.tanh,
        torch.tanh,
    }
)
"""The functional forms (``F.relu``, ``torch.relu``, ...), read when called outside an
activation module (a module's own call of its function is read once, at the module)."""


def activation_modules(model: nn.Module) -> list[nn.Module]:
    """Every activation module (:data:`ACTIVATION_MODULES`) of ``model``."""
    return [m for m in model.modules() if isinstance(m, ACTIVATION_MODULES)]


@lru_cache(maxsize=1)
def int8_gram_is_faster() -> bool:
    """Whether this CPU's int8→int32 product beats float32 on a NASWOT-sized Gram matrix.

    Measured, not assumed: with VNNI/AMX the int8 kernel was 2× faster than float32 (the
    machine the shipped table was scored on), without them it is 19× slower (measured on a
    2-core VM: 64 ms vs 3.4 ms for 64×16384 codes). Best of three runs of each, ~20 ms once.
    """
    codes = torch.ones(64, 4096, dtype=torch.int8)
    floats = codes.to(torch.float32)

    def best(fn: Callable[[], object]) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    try:
        int8 = best(lambda: torch._int_mm(codes, codes.T.contiguous()))
    except (RuntimeError, AttributeError):  # a build without the int8 kernel
        return False
    return int8 < best(lambda: floats @ floats.T)


def agreement_kernel(code: torch.Tensor) -> torch.Tensor:
    """K[i, j] = (number of units) − Hamming(code_i, code_j) for a boolean (N, D) code.

    With s = 2c − 1 ∈ {±1}, s_i·s_j = agreements − disagreements, so K = (s sᵀ + D) / 2.
    On a CPU whose int8 product is faster (:func:`int8_gram_is_faster`, measured once per
    process) sᵀs is an int8 product accumulated in int32; otherwise, and off the CPU, float32.
    Both are exact (float32 for D < 2²⁴), so the choice never changes a value.  Returned in
    float64.
    """
    units = code.shape[1]
    if code.device.type == "cpu" and int8_gram_is_faster():
        s8 = code.to(torch.int8).mul_(2).sub_(1)
        try:
            gram = torch._int_mm(s8, s8.T.contiguous())
        except (RuntimeError, AttributeError):  # shape or build without the int8 kernel
            gram = None
        if gram is not None:
            return (gram.to(torch.float64) + units) / 2
    s = code.to(torch.float32).mul_(2.0).sub_(1.0)
    return ((s @ s.T + units) / 2).to(torch.float64)


class KernelCache:
    """Agreement kernels of activation codes, computed once per distinct input tensor.

    In a cell-based network several ReLUs often read the same tensor (every edge leaving
    one node), so their kernels are equal.  Entries are keyed by the tensor's identity and
    checked by a weak reference and its version counter, so a freed or modified tensor is
    never mistaken for a cached one.
    """

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref, int, torch.Tensor]] = {}

    def __call__(self, x: torch.Tensor, batch: int | None = None) -> torch.Tensor:
        """The kernel of the code ``x > 0`` flattened per sample: ``batch`` rows (the
        leading axis, by default; a multiple of ``batch`` folds into it, batch outermost)."""
        entry = self._entries.get(id(x))
        if entry is not None and entry[0]() is x and entry[1] == x._version:
            return entry[2]
        kernel = agreement_kernel(x.detach().reshape(batch or x.shape[0], -1) > 0)
        self._entries[id(x)] = (weakref.ref(x), x._version, kernel)
        return kernel


def logdets_psd(kernels: torch.Tensor) -> list[float]:
    """log|K| of each positive semi-definite kernel in a (L, N, N) stack; −inf if singular.

    One batched ``slogdet`` and one device-to-host transfer for the whole stack.
    """
    sign, logabs = torch.linalg.slogdet(kernels.to(torch.float64))
    return torch.where(sign > 0, logabs, -math.inf).tolist()


def logdet_psd(kernel: torch.Tensor) -> float:
    """log|K| of one positive semi-definite kernel; −inf when it is singular."""
    return logdets_psd(kernel.unsqueeze(0))[0]


def macs_of_call(module: nn.Module, output: torch.Tensor) -> int:
    """Multiply-accumulates of one call of a weight layer, summed over the batch.

    Convolutions count (C_in/groups)·k² MACs per output element and linear layers
    ``in_features`` per output element; a bias adds one per output element (the NB201
    benchmark's convention).
    """
    if isinstance(module, nn.Linear):
        per_output = module.in_features
    else:
        per_output = (module.in_channels // module.groups) * math.prod(module.kernel_size)
    per_output += module.bias is not None
    return int(output.numel()) * per_output


SMALL_MATRIX_ROWS = 512
"""Up to this size a dense eigen- or singular-value problem is solved by LAPACK on the CPU
whatever the tensors' device: CUDA's solvers spend milliseconds a call in launches and
synchronisation, LAPACK microseconds on a 64×64 matrix, and MeCo solves one per module call."""


def small_on_cpu(matrix: torch.Tensor) -> torch.Tensor:
    """``matrix`` on the CPU when it has at most :data:`SMALL_MATRIX_ROWS` rows and columns,
    as it is otherwise: the place to solve a small eigen- or singular-value problem."""
    if matrix.device.type != "cpu" and max(matrix.shape[-2:]) <= SMALL_MATRIX_ROWS:
        return matrix.cpu()
    return matrix
