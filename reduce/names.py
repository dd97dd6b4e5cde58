"""The names of C-BRED's choices, importable without numpy, scikit-learn or torch.

The modules that implement the choices take their names from here, and so does the CLI,
whose ``--help`` must not pay for importing scikit-learn and torch.
"""

PROBABILISTIC: tuple[str, ...] = ("hellinger", "js", "sqrt_js", "kl")
DISTANCES: tuple[str, ...] = (*PROBABILISTIC, "edit")
DEFAULT_FEATURES = "op_usage"
CLUSTERER_NAMES: tuple[str, ...] = ("kmeans", "spectral", "kmedoids")
CRITERIA: tuple[str, ...] = ("silhouette", "eigengap")
ALLOCATIONS: tuple[str, ...] = ("uniform", "halving")
LIVE_MEMBERS = 8  # members per cluster scored when values are computed on demand

PROXY_SECONDS = 306.19 / 1000
"""Simulated seconds per statistic evaluation: NASWOT's published GPU time for N=1000
(306.19 s) divided by 1000."""

TRAIN_SECONDS = 100.0
"""Simulated seconds per benchmark-accuracy query (an assumption: the bundled data has no
training times).  With it, the published 12,000 s REA budget buys 120 queries."""
