"""Distances between operation-usage distributions, as whole matrices.

Each row of the input is one network's op-usage counts (or probabilities) over a
fixed vocabulary of P operation types.  Rows are turned into distributions by
:func:`to_distributions`, with optional additive smoothing, and the N×N matrix of
a distance is computed block by block of rows (:mod:`cgraph.distance._blocks`), in
float64, then stored in the requested dtype (float32 halves the memory of the
result).  Hellinger is one matrix product (Bhattacharyya coefficients √P √Pᵀ);
symmetric KL expands into two, ``Σp log p + Σq log q − P (log P)ᵀ − (log P) Pᵀ``;
JS needs the entropy of every mixture, one vectorised pass per op type.  Each
distinct row is computed once (op histograms repeat a lot: the 15,625 NB201
networks have 210 distinct ones) and equal rows get exactly 0.

Definitions, for distributions p and q:

* symmetrised Kullback-Leibler ``KL(p‖q) + KL(q‖p) = Σ (p−q)(log p − log q)``
  (natural log).  It is infinite when one distribution has a zero where the
  other does not, so it needs smoothing; it is not a metric (no triangle
  inequality).
* Jensen-Shannon divergence ``JS = ½KL(p‖m) + ½KL(q‖m)``, ``m = (p+q)/2``, in bits
  (log base 2), so ``0 ≤ JS ≤ 1``.  Its square root is a metric.
* Hellinger ``H = ‖√p − √q‖₂ / √2 = √(1 − Σ√(pq))``, a metric in ``[0, 1]``.

Smoothing: ``smoothing = α ≥ 0`` adds the pseudo-count α to every entry of a row
*as given* before normalising, ``p_k = (x_k + α) / (Σx + Pα)`` (Lidstone; α = 1 is
Laplace, α = 0.5 Jeffreys-Perks), over the P columns that some row of the input
uses: a column that every row leaves at 0 (an op type none of the compared networks
runs) gets no pseudo-count and stays out of every distance.  So extending the
vocabulary, which appends columns no existing network uses, changes no distance
between existing networks; comparing a network that uses a new type with the others
does (that type is then a column of the comparison).  α is in the units of the
input, so use a count such as 0.5 for histograms and a small number such as 1e-6
for rows that already sum to 1.  Hellinger and JS are finite without it; KL
defaults to α = 0.5.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from cbred.cgraph.distance._blocks import BlockKernel, OutSpec, fill_deduplicated, resolve_dtype

KL_DEFAULT_SMOOTHING = 0.5


def to_distributions(counts: np.ndarray, smoothing: float = 0.0) -> np.ndarray:
    """Normalise non-negative rows to sum 1 after adding the pseudo-count ``smoothing`` to
    the columns that some row uses (columns that are 0 in every row stay 0).

    Raises ValueError for a non-2-D, negative or non-finite input, a negative
    smoothing, or a row that sums to zero (an empty histogram has no distribution).
    """
    x = np.asarray(counts, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"expected an (N, P) array of counts with P >= 1, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("counts contain NaN or infinite values")
    if np.any(x < 0):
        raise ValueError(f"counts must be non-negative, found minimum {x.min()}")
    if not (np.isfinite(smoothing) and smoothing >= 0):
        raise ValueError(f"smoothing must be a finite number >= 0, got {smoothing}")
    x = x + smoothing * x.any(axis=0)
    totals = x.sum(axis=1, keepdims=True)
    empty = np.flatnonzero(totals[:, 0] <= 0)
    if empty.size:
        raise ValueError(
            f"rows {empty[:5].tolist()} sum to zero; give non-empty histograms or smoothing > 0"
        )
    return x / totals


def _plogp(p: np.ndarray) -> np.ndarray:
    """Elementwise p·log p with 0·log 0 = 0."""
    logs = np.zeros_like(p)
    np.log(p, out=logs, where=p > 0)
    return p * logs


def _hellinger_kernel(p: np.ndarray) -> BlockKernel:
    roots = np.sqrt(p)

    def kernel(ids: np.ndarray, target: np.ndarray) -> None:
        coefficients = roots[ids] @ roots.T  # Bhattacharyya coefficients Σ√(pq)
        np.subtract(1.0, coefficients, out=target, casting="same_kind")
        np.maximum(target, 0.0, out=target)
        np.sqrt(target, out=target)

    return kernel


def _kl_kernel(p: np.ndarray) -> BlockKernel:
    logs = np.log(p)
    neg_entropy = np.einsum("ij,ij->i", p, logs)

    def kernel(ids: np.ndarray, target: np.ndarray) -> None:
        # Σ(p−q)(log p − log q) = Σp log p + Σq log q − Σp log q − Σq log p
        cross = p[ids] @ logs.T
        cross += logs[ids] @ p.T
        cross -= neg_entropy[None, :]
        cross -= neg_entropy[ids, None]
        np.negative(cross, out=target, casting="same_kind")
        np.maximum(target, 0.0, out=target)

    return kernel


def _js_bits(p: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Block function giving float64 JS divergences (bits) from rows ``ids`` to all rows."""
    p = p[:, p.any(axis=0)]  # an op that no row uses adds 0 to every JS
    half_neg_entropy = 0.5 * _plogp(p).sum(axis=1)
    columns = np.ascontiguousarray(p.T)

    def block(ids: np.ndarray) -> np.ndarray:
        # JS = ½Σp log p + ½Σq log q − Σ m log m with m = (p+q)/2
        d = half_neg_entropy[ids, None] + half_neg_entropy[None, :]
        mix = np.empty_like(d)
        logs = np.empty_like(d)
        rows = columns[:, ids]
        for k in range(columns.shape[0]):
            np.add.outer(rows[k], columns[k], out=mix)
            mix *= 0.5
            logs.fill(0.0)
            np.log(mix, out=logs, where=mix > 0)
            logs *= mix
            d -= logs
        d *= 1.0 / np.log(2.0)
        return np.maximum(d, 0.0, out=d)

    return block


def _js_kernel(p: np.ndarray) -> BlockKernel:
    js = _js_bits(p)

    def kernel(ids: np.ndarray, target: np.ndarray) -> None:
        target[...] = js(ids)

    return kernel


def _sqrt_js_kernel(p: np.ndarray) -> BlockKernel:
    js = _js_bits(p)

    def kernel(ids: np.ndarray, target: np.ndarray) -> None:
        np.sqrt(js(ids), out=target, casting="same_kind")

    return kernel


def _matrix(
    kernel_factory: Callable[[np.ndarray], BlockKernel],
    counts: np.ndarray,
    smoothing: float,
    dtype: object,
    chunk: int | None,
    out: OutSpec,
) -> np.ndarray:
    p = to_distributions(counts, smoothing)
    return fill_deduplicated(p, kernel_factory, resolve_dtype(dtype), chunk, out)


def hellinger_matrix(
    counts: np.ndarray,
    *,
    smoothing: float = 0.0,
    dtype: object = np.float32,
    chunk: int | None = None,
    out: OutSpec = None,
) -> np.ndarray:
    """N×N Hellinger distances between the rows of ``counts`` (a metric in [0, 1])."""
    return _matrix(_hellinger_kernel, counts, smoothing, dtype, chunk, out)


def js_matrix(
    counts: np.ndarray,
    *,
    smoothing: float = 0.0,
    dtype: object = np.float32,
    chunk: int | None = None,
    out: OutSpec = None,
) -> np.ndarray:
    """N×N Jensen-Shannon divergences in bits (in [0, 1]; not a metric, its root is)."""
    return _matrix(_js_kernel, counts, smoothing, dtype, chunk, out)


def sqrt_js_matrix(
    counts: np.ndarray,
    *,
    smoothing: float = 0.0,
    dtype: object = np.float32,
    chunk: int | None = None,
    out: OutSpec = None,
) -> np.ndarray:
    """N×N square roots of the Jensen-Shannon divergence (the Jensen-Shannon metric)."""
    return _matrix(_sqrt_js_kernel, counts, smoothing, dtype, chunk, out)


def kl_matrix(
    counts: np.ndarray,
    *,
    smoothing: float = KL_DEFAULT_SMOOTHING,
    dtype: object = np.float32,
    chunk: int | None = None,
    out: OutSpec = None,
) -> np.ndarray:
    """N×N symmetrised KL divergences ``KL(p‖q) + KL(q‖p)`` in nats.

    Raises ValueError when a smoothed distribution still has a zero entry, since
    the divergence would then be infinite.
    """
    p = to_distributions(counts, smoothing)
    p = p[:, p.any(axis=0)]  # a column no row uses adds 0 to every divergence
    if np.any(p <= 0):
        raise ValueError(
            "symmetric KL is infinite for distributions with zero entries; "
            f"use smoothing > 0 (got smoothing={smoothing})"
        )
    return fill_deduplicated(p, _kl_kernel, resolve_dtype(dtype), chunk, out)
