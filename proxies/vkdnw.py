"""VKDNW (Týbl & Neumann, CVPR 2025): how evenly the Fisher information spreads over weights.

The statistic asks how hard the network's weights would be to estimate from its own
predictions: the Fisher information matrix of a sample of the weights, taken at a fresh
initialisation, is diagonalised and the entropy of its normalised spectrum, summarised by
the nine deciles of the eigenvalues, is the score (an even spectrum, high entropy, is
better).  Definitions, as in the authors' NB201 code (github.com/ondratybl/VKDNW,
``NB201/ZeroShotProxy/compute_vkdnw_score.py``), checked against it by
``python -m cbred.bench.reference_vkdnw``:

* **Initialisation and input.**  Every convolution and linear weight is redrawn Kaiming
  normal (fan-in, ReLU gain), biases 0, batch-norm affine (1, 0), in module order (AZ-NAS's
  initialisation, :func:`proxies.recent_passes._init_kaiming`); batch-norm running
  statistics are reset (a fresh network's); then a Gaussian input shaped like the batch is
  drawn.  The value depends on the architecture, the input shape and the seed only.  The
  working copy's weights, buffers and modes are restored afterwards.
* **Sampled weights.**  The first weight (flat index 0) of each of the first 128 parameter
  tensors in ``named_parameters()`` order: θ_S, P ≤ 128 scalars.  The authors' scoring
  function takes the count per tensor as ``p`` (evenly spaced indices) with a default of 0,
  which samples nothing, and the NB201 driver that set it is not in the released tree (it
  is in the repository's history, with the same default).  Their NB201 results were scored
  before ``p`` existed, with index 0 of each tensor, which ``p = 1`` reproduces: their
  ablation of ``p`` at ``p = 1`` and their earlier index-0 run with the same settings give
  the same Kendall τ (0.621262, ImageNet16-120).  ``VKDNW_PER_TENSOR``
  (:mod:`proxies.vkdnw_passes`) is their ``p``.
* **Fisher matrix.**  In evaluation mode (batch norm reads its running statistics, so each
  sample is scored on its own), J_i = ∂z_i/∂θ_S is the (C × P) Jacobian of sample i's
  logits.  The class probabilities are smoothed, p_i = (1 − α) softmax(z_i) + α/C with
  α = 0.05, and L_i is the lower-triangular factor of their covariance,
  L_i L_iᵀ = diag(p_i) − p_i p_iᵀ, in Tanabe & Sagae's closed form (1992), in float64.
  The matrix is F = mean_i (L_i J_i)ᵀ (L_i J_i), as the authors compute it: they multiply
  the Jacobian by L_i, not by L_iᵀ, so F is not the Fisher information of the categorical
  model, mean_i J_iᵀ (L_i L_iᵀ) J_i; cbred follows the code, which produced the published
  numbers.  (The authors' α is a float16 tensor, so their 1 − α and α/C are rounded to
  float16 and their p_i sums to 1 + 1.7·10⁻⁴ for C = 10; their L_i, built from
  q_j = 1 − Σ_{k≤j} p_k with q_C set to 0, and their F differ from the exact ones by a few
  tenths of a per cent.)
* **Score.**  λ the eigenvalues of F (float64, symmetric solver), d_k the k/10 quantile of λ
  (linear interpolation) for k = 1..9, t = d / Σd and ``vkdnw_entropy`` = −Σ t log t (the
  authors add 10⁻¹⁰ to Σd and inside the log: a difference of order 10⁻¹⁰ / Σd).  The
  authors take the singular values of F in float32, which cannot resolve eigenvalues below
  about 6·10⁻⁸ λ_max: on NB201 half of the spectrum lies below that, and their lower
  deciles are rounding noise at that level instead of the (near-)zero eigenvalues, which
  moves their entropy by a few per cent, and by up to 0.016 where cbred's is ~0
  (``python -m cbred.bench.reference_vkdnw --float32-solver`` shows both: cbred's F given
  to their float32 solver agrees with them to 0.3 %).
  ``vkdnw`` is the paper's single-proxy ranking: networks ordered by ℵ, their number of
  parameter tensors ("trainable layers"), then by the entropy; as one number, ℵ + H/ln 10
  (H ≤ ln 9 < ln 10, so ℵ decides first and H only breaks its ties).

The authors' aggregate (VKDNW_agg) sums, over a population, the log ranks of this ranking
and of Jacobian covariance, AZ-NAS's expressivity and trainability, and FLOPs: the named
ensemble ``vkdnw_agg`` (:func:`proxies.ensemble.vkdnw_agg`, which says where it differs
on ties).

The computation is in :mod:`proxies.vkdnw_passes` (the ``vkdnw`` pass).
"""

from __future__ import annotations

import math

import numpy as np
from cbred.proxies.passes import PassResults
from cbred.proxies.registry import ProxyUndefined, register_proxy

VKDNW = (
    "Týbl & Neumann, Training-free Neural Architecture Search through Variance of Knowledge "
    "of Deep Network Weights, CVPR 2025"
)
DECILES = tuple(k / 10 for k in range(1, 10))
STATISTICS = ("vkdnw", "vkdnw_entropy")
"""The statistics this module registers."""


def decile_entropy(eigenvalues: np.ndarray) -> float:
    """−Σ t log t over t = d / Σd, d the nine deciles (k/10 quantiles, linear) of the
    eigenvalues; 0 log 0 = 0."""
    deciles = np.quantile(np.asarray(eigenvalues, dtype=np.float64), DECILES)
    total = float(deciles.sum())
    if not total > 0:
        raise ProxyUndefined(
            "the Fisher spectrum's deciles are all 0: the logits do not depend on the "
            "sampled weights (a dead network?)"
        )
    t = deciles[deciles > 0] / total
    return float(-(t * np.log(t)).sum())


@register_proxy(
    "vkdnw_entropy",
    direction="higher",
    source=VKDNW,
    needs={"vkdnw"},
    formula="H(d/Σd), d = deciles of eig mean_i (L_i J_i)ᵀ(L_i J_i), J_i = ∂z_i/∂θ_S, LLᵀ = Cov(p)",
)
def vkdnw_entropy(r: PassResults) -> float:
    """Entropy of the normalised deciles of the Fisher spectrum of the sampled weights
    (the paper's VKDNW value): higher when the information is spread evenly."""
    return decile_entropy(r.vkdnw[1])


@register_proxy(
    "vkdnw",
    direction="higher",
    source=VKDNW + " (VKDNW_single: ranked by ℵ, then the entropy)",
    needs={"vkdnw"},
    formula="ℵ + vkdnw_entropy/ln 10, ℵ = number of parameter tensors",
)
def vkdnw(r: PassResults) -> float:
    """The paper's single-proxy ranking as one number: the number of parameter tensors ℵ
    first, the spectral entropy (< ln 10) breaking ties."""
    count, eigenvalues = r.vkdnw
    return count + decile_entropy(eigenvalues) / math.log(10)
