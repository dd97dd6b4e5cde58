"""The closed-form second derivative of training-mode batch norm (proxies.batchnorm)."""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F
from cbred.proxies.batchnorm import _BatchNormBackward, fast_second_order_batch_norm
from torch import nn

EPS = 1e-5


def _stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    dims = [0, *range(2, x.dim())]
    with torch.no_grad():
        return x.mean(dims), (x.var(dims, unbiased=False) + EPS).rsqrt()


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (4, 3, 2, 3)])
@pytest.mark.parametrize("affine", [True, False])
def test_backward_of_backward_matches_finite_differences(shape, affine):
    # mean and invstd are recomputed from x inside the function, so the numerical
    # Jacobian includes their dependence on x, which the closed form must account for
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64, generator=gen, requires_grad=True)
    dy = torch.randn(shape, dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.randn(shape[1], dtype=torch.float64, generator=gen, requires_grad=True)

    def backward(dy: torch.Tensor, x: torch.Tensor, w: torch.Tensor) -> tuple:
        mean, invstd = _stats(x)
        return _BatchNormBackward.apply(dy, x, w if affine else None, mean, invstd, EPS)

    assert torch.autograd.gradcheck(backward, (dy, x, w))


def _net(dtype: torch.dtype) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.BatchNorm2d(4, affine=False),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.BatchNorm2d(4, track_running_stats=False),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 6),
        nn.BatchNorm1d(6),
        nn.ReLU(),
        nn.Linear(6, 10),
    ).to(dtype)


def _passes(net: nn.Module, closed_form: bool, dtype: torch.dtype):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(8, 3, 6, 6, dtype=dtype, generator=gen)
    y = torch.randint(0, 10, (8,), generator=gen)
    params = list(net.parameters())
    weights = [p for p in params if p.dim() > 1]
    with fast_second_order_batch_norm() if closed_form else contextlib.nullcontext():
        out = net(x)
    grads = torch.autograd.grad(F.cross_entropy(out, y), params, create_graph=True)
    z = sum((g.detach() * g).sum() for g, p in zip(grads, params) if p.dim() > 1)
    hg = torch.autograd.grad(z, weights)
    buffers = [b.clone() for b in net.buffers()]
    return out, grads, hg, buffers


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_first_order_values_are_bit_identical(dtype):
    out0, g0, _, b0 = _passes(_net(dtype), False, dtype)
    out1, g1, _, b1 = _passes(_net(dtype), True, dtype)
    assert torch.equal(out0, out1)
    assert all(torch.equal(a, b) for a, b in zip(g0, g1, strict=True))
    # running statistics and batch counters are updated exactly as by nn.BatchNorm
    assert all(torch.equal(a, b) for a, b in zip(b0, b1, strict=True))


def test_hessian_gradient_product_matches_pytorch_double_backward():
    _, _, hg0, _ = _passes(_net(torch.float64), False, torch.float64)
    _, _, hg1, _ = _passes(_net(torch.float64), True, torch.float64)
    for a, b in zip(hg1, hg0, strict=True):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)
    assert any(float(b.abs().max()) > 1e-3 for b in hg0)  # a non-trivial product


def test_only_training_mode_cpu_batch_norm_is_routed():
    bn = nn.BatchNorm2d(3)
    x = torch.randn(4, 3, 2, 2, requires_grad=True)
    with fast_second_order_batch_norm():
        train_out = bn(x)
        bn.eval()
        eval_out = bn(x)
    assert type(train_out.grad_fn).__name__ == "_BatchNormTrainBackward"
    assert type(eval_out.grad_fn).__name__ != "_BatchNormTrainBackward"


def test_one_value_per_channel_keeps_batch_norms_error():
    bn = nn.BatchNorm1d(3)
    with fast_second_order_batch_norm(), pytest.raises(ValueError, match="more than 1 value"):
        bn(torch.randn(1, 3))
