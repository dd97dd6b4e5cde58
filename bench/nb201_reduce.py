"""C-BRED on NAS-Bench-201 by name: :func:`reduce.pipeline.reduce_space` on the NB201 space.

The benchmark, the acceptance table and the tests reduce NB201 often enough to want the
space filled in; everything here is the generic pipeline with ``NB201Space`` as the space.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from cbred.bench.nb201 import NB201Space, default_space
from cbred.reduce.cbred import Reduction
from cbred.reduce.cluster import Points
from cbred.reduce.pipeline import reduce_space, score_source, space_features, space_points


def nb201_op_counts(features: str = "graph") -> tuple[np.ndarray, tuple[str, ...]]:
    """(15625, P) features of every NB201 architecture (``graph``: op usage of the traced
    graphs; ``cell``: operations per edge type; any :mod:`cgraph.features` name) and names."""
    return space_features(default_space(), features)


def nb201_points(distance: str, features: str = "graph") -> Points:
    """The points C-BRED clusters on NB201 for ``distance``."""
    return space_points(default_space(), distance, features)


def nb201_score_source(
    statistic: str, table: Any = None, space: NB201Space | None = None, **options: Any
) -> tuple[Any, str]:
    """:func:`reduce.pipeline.score_source` over NB201 (default setting C=16, N=5)."""
    return score_source(statistic, space or default_space(), table, **options)


def reduce_nb201(*args: Any, features: str = "graph", **kwargs: Any) -> Reduction:
    """:func:`reduce.pipeline.reduce_space` on the NB201 space (same arguments after it)."""
    return reduce_space(default_space(), *args, features=features, **kwargs)
