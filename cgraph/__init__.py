"""Computational graphs of PyTorch models and distances between them.

``trace(model, example_inputs)`` gives a :class:`CompGraph`: arrays (memory
nodes) and executed operations (kernel nodes, typed by :data:`VOCAB`) joined by
read and write edges.  :mod:`cgraph.passes` rewrites graphs (:func:`drop_noops`
removes identities and inactive dropouts).  :mod:`cgraph.nb201` builds NB201
graphs and op counts for the whole space quickly; :mod:`cgraph.export` converts
graphs to networkx, PyTorch Geometric and JSON.
"""

from cbred.cgraph.features import (
    available_features,
    feature_matrix,
    get_feature,
    register_feature,
)
from cbred.cgraph.graph import MEMORY_KINDS, CompGraph, GraphSummary
from cbred.cgraph.passes import drop_noops
from cbred.cgraph.trace import TraceError, TraceFallbackWarning, trace
from cbred.cgraph.vocab import VOCAB, VOCAB_INDEX

__all__ = [
    "MEMORY_KINDS",
    "VOCAB",
    "VOCAB_INDEX",
    "CompGraph",
    "GraphSummary",
    "TraceError",
    "TraceFallbackWarning",
    "available_features",
    "drop_noops",
    "feature_matrix",
    "get_feature",
    "register_feature",
    "trace",
]
