"""Clustering, C-BRED search-space reduction, and searches over full or reduced spaces.

The C-BRED pipeline, one module per stage: :mod:`reduce.cluster` (k-means, spectral,
k-medoids on weighted distinct points), :mod:`reduce.select` (K and η without labels),
:mod:`reduce.scoring` (cluster scoring functions f), :mod:`reduce.cbred` (Algorithm 1),
:mod:`reduce.subspace` (the reduced space searchers consume), :mod:`reduce.report`
(tables and plots) and :mod:`reduce.pipeline` (features, distances, statistic sources for
any space of the contract in :mod:`reduce.space`).
"""

from __future__ import annotations

from cbred._lazy import lazy_exports

# name -> module: loaded on first use, so that importing one light module of the package
# (reduce.space, reduce.names) does not import scikit-learn.
_PUBLIC = {
    "CBRED": "cbred.reduce.cbred",
    "KMeansClusterer": "cbred.reduce.cluster",
    "KMedoidsClusterer": "cbred.reduce.cluster",
    "ParameterSelection": "cbred.reduce.select",
    "Points": "cbred.reduce.cluster",
    "Reduction": "cbred.reduce.cbred",
    "ScoringFunction": "cbred.reduce.scoring",
    "Space": "cbred.reduce.space",
    "SpaceError": "cbred.reduce.space",
    "SpectralClusterer": "cbred.reduce.cluster",
    "Subspace": "cbred.reduce.subspace",
    "cbred_reduce": "cbred.reduce.cbred",
    "load_space": "cbred.reduce.space",
    "make_clusterer": "cbred.reduce.cluster",
    "parse_scoring": "cbred.reduce.scoring",
    "reduce_space": "cbred.reduce.pipeline",
    "select_best_parameter": "cbred.reduce.select",
}

__all__ = sorted(_PUBLIC)

__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
