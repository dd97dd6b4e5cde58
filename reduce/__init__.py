"""Clustering, C-BRED search-space reduction, and searches over full or reduced spaces.

The C-BRED pipeline, one module per stage: :mod:`reduce.cluster` (k-means, spectral,
k-medoids on weighted distinct points), :mod:`reduce.select` (K and η without labels),
:mod:`reduce.scoring` (cluster scoring functions f), :mod:`reduce.cbred` (Algorithm 1),
:mod:`reduce.subspace` (the reduced space searchers consume), :mod:`reduce.report`
(tables and plots) and :mod:`reduce.pipeline` (features, distances, statistic sources for
any space of the contract in :mod:`reduce.space`).
"""

from cbred.reduce.cbred import CBRED, Reduction, cbred_reduce
from cbred.reduce.cluster import (
    KMeansClusterer,
    KMedoidsClusterer,
    Points,
    SpectralClusterer,
    make_clusterer,
)
from cbred.reduce.pipeline import reduce_space
from cbred.reduce.scoring import ScoringFunction, parse_scoring
from cbred.reduce.select import ParameterSelection, select_best_parameter
from cbred.reduce.space import Space, SpaceError, load_space
from cbred.reduce.subspace import Subspace

__all__ = [
    "CBRED",
    "KMeansClusterer",
    "KMedoidsClusterer",
    "ParameterSelection",
    "Points",
    "Reduction",
    "ScoringFunction",
    "Space",
    "SpaceError",
    "SpectralClusterer",
    "Subspace",
    "cbred_reduce",
    "load_space",
    "make_clusterer",
    "parse_scoring",
    "reduce_space",
    "select_best_parameter",
]
