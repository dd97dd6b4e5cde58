"""Cost statistics: parameter count and multiply-accumulates of one forward pass."""

from __future__ import annotations

from cbred.proxies.passes import PassResults
from cbred.proxies.registry import ProxyUndefined, register_proxy


@register_proxy(
    "params",
    direction="higher",
    source="NB201 convention (all trainable tensors, batch-norm affine included)",
    needs=(),
    formula="Σ_p numel(p) over the model's parameters",
)
def params(r: PassResults) -> float:
    """Number of parameters of the model."""
    return float(sum(p.numel() for p in r.model.parameters()))


@register_proxy(
    "flops",
    direction="higher",
    source="NB201 convention (multiply-accumulates of conv and linear layers, bias included)",
    needs={"costs"},
    formula="Σ_calls out_elements·((C_in/groups)·k² or in_features, +1 with bias) per sample",
)
def flops(r: PassResults) -> float:
    """Multiply-accumulates of one forward pass for one input."""
    if r.macs is None:
        raise ProxyUndefined("FLOPs were not measured")
    return float(r.macs)
