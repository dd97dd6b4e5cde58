"""Training-mode batch norm with a fast, exact second derivative, for GraSP's Hg.

GraSP needs the Hessian-gradient product Hg, computed by differentiating the backward
pass (double backward).  Through a training-mode batch norm, PyTorch's generic double
backward builds some sixty full-size temporaries per layer and is half the cost of the
whole product on an NB201 network (CPU).  Here the same derivative is written in closed
form in about six full-size operations; two of them are ``native_batch_norm_backward``
itself, which the algebra below reuses.

Per channel, with M values, x̂ = (x − μ)·s, s = (σ² + ε)^(−1/2), γ the scale:

* backward:  dx = γ s (dy − m₁ − x̂ m₂),  dγ = M m₂,  dβ = M m₁,
  m₁ = mean(dy), m₂ = mean(dy x̂);
* its vector-Jacobian product for cotangents (a, b, c) of (dx, dγ, dβ), with ā = mean(a),
  P = mean(a x̂), A = mean(a dy):

  ∂/∂dy = γ s (a − ā − x̂ P) + b x̂ + c   (the first term is the backward applied to a),
  ∂/∂x  = −s m₂ · γ s (a − ā − x̂ P) − s P · dx + γ s² (P m₂ − A + ā m₁) · x̂
          + b s (dy − m₁ − x̂ m₂),
  ∂/∂γ  = M s (A − ā m₁ − P m₂).

μ and s are functions of x and are differentiated as such (tests check the closed form
against finite differences, and the Hessian-vector product against PyTorch's).
Forward and first-order backward call the same kernels as ``F.batch_norm``, so every
first-order value is bit-identical with or without :func:`fast_second_order_batch_norm`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.overrides import TorchFunctionMode

_BN_BACKWARD = torch.ops.aten.native_batch_norm_backward
_BATCH_NORM_SIGNATURE = inspect.signature(F.batch_norm)


def _per_channel(v: Tensor, like: Tensor) -> Tensor:
    """A (C,) vector shaped to broadcast over the channel axis of an (N, C, ...) tensor."""
    return v.reshape([1, -1] + [1] * (like.dim() - 2))


def _channel_dims(x: Tensor) -> list[int]:
    """Every axis of an (N, C, ...) tensor but the channel axis."""
    return [0, *range(2, x.dim())]


class _BatchNormBackward(torch.autograd.Function):
    """(dy, x, γ) ↦ (dx, dγ, dβ) of training-mode batch norm, with a closed-form VJP."""

    @staticmethod
    def forward(
        ctx: Any,
        dy: Tensor,
        x: Tensor,
        weight: Tensor | None,
        mean: Tensor,
        invstd: Tensor,
        eps: float,
    ) -> tuple[Tensor, Tensor, Tensor]:
        dx, dw, db = _BN_BACKWARD(dy, x, weight, None, None, mean, invstd, True, eps, [True] * 3)
        ctx.save_for_backward(dy, x, weight, mean, invstd, dx, dw, db)
        ctx.eps = eps
        return dx, dw, db

    @staticmethod
    def backward(
        ctx: Any, a: Tensor | None, b: Tensor | None, c: Tensor | None
    ) -> tuple[Tensor | None, ...]:
        dy, x, weight, mean, s, dx, dw, db = ctx.saved_tensors
        m = x.numel() // x.shape[1]
        gamma = weight if weight is not None else torch.ones_like(s)
        m1, m2 = db / m, dw / m
        g_dy = g_x = g_gamma = None
        if a is not None:
            g_dy, sum_ax, sum_a = _BN_BACKWARD(
                a, x, weight, None, None, mean, s, True, ctx.eps, [True] * 3
            )
            p, a_bar = sum_ax / m, sum_a / m
            a_dy = (a * dy).sum(_channel_dims(x)) / m
            # γ s² (P m₂ − A + ā m₁) · x̂, with x̂ = (x − μ) s folded into one addcmul
            k = gamma * s**3 * (p * m2 - a_dy + a_bar * m1)
            g_x = torch.addcmul(_per_channel(-mean * k, x), x, _per_channel(k, x))
            g_x.addcmul_(g_dy, _per_channel(-s * m2, x)).addcmul_(dx, _per_channel(-s * p, x))
            g_gamma = m * s * (a_dy - a_bar * m1 - p * m2)
        if b is not None:
            x_hat = (x - _per_channel(mean, x)) * _per_channel(s, x)
            term = x_hat * _per_channel(b, x)
            g_dy = term if g_dy is None else g_dy + term
            bs = b * s
            term = torch.addcmul(_per_channel(-bs * m1, x), dy, _per_channel(bs, x))
            term.addcmul_(x_hat, _per_channel(-bs * m2, x))
            g_x = term if g_x is None else g_x + term
        if c is not None:
            term = _per_channel(c, x).expand_as(x)
            g_dy = term if g_dy is None else g_dy + term
        return g_dy, g_x, g_gamma if weight is not None else None, None, None, None


class _BatchNormTrain(torch.autograd.Function):
    """Training-mode batch norm whose backward is :class:`_BatchNormBackward`."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        weight: Tensor | None,
        bias: Tensor | None,
        running_mean: Tensor | None,
        running_var: Tensor | None,
        momentum: float,
        eps: float,
    ) -> Tensor:
        y, mean, invstd = torch.native_batch_norm(
            x, weight, bias, running_mean, running_var, True, momentum, eps
        )
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.eps = eps
        return y

    @staticmethod
    def backward(ctx: Any, dy: Tensor) -> tuple[Tensor | None, ...]:
        x, weight, mean, invstd = ctx.saved_tensors
        dx, dw, db = _BatchNormBackward.apply(dy, x, weight, mean, invstd, ctx.eps)
        need = ctx.needs_input_grad
        return (
            dx if need[0] else None,
            dw if need[1] else None,
            db if need[2] else None,
            None,
            None,
            None,
            None,
        )


class _ClosedFormBatchNorm(TorchFunctionMode):
    """Routes CPU ``F.batch_norm`` calls in training mode through :class:`_BatchNormTrain`.

    Only CPU tensors are routed (on CUDA, ``F.batch_norm`` may pick cuDNN, whose first-order
    rounding differs from ``native_batch_norm``); inputs with one value per channel fall
    through to ``F.batch_norm`` and its error.
    """

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple = (),
        kwargs: dict | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        if func is F.batch_norm:
            bound = _BATCH_NORM_SIGNATURE.bind(*args, **kwargs)
            bound.apply_defaults()
            p = bound.arguments
            x = p["input"]
            if p["training"] and x.device.type == "cpu" and x.numel() > x.shape[1]:
                return _BatchNormTrain.apply(
                    x,
                    p["weight"],
                    p["bias"],
                    p["running_mean"],
                    p["running_var"],
                    p["momentum"],
                    p["eps"],
                )
        return func(*args, **kwargs)


def fast_second_order_batch_norm() -> TorchFunctionMode:
    """A context within which training-mode CPU batch norm has the closed-form derivative."""
    return _ClosedFormBatchNorm()
