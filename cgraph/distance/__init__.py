"""Distances between computational graphs, as N×N matrices over a set or a whole space.

* Probabilistic distances between op-usage distributions
  (:mod:`~cgraph.distance.probabilistic`): symmetrised KL, Jensen-Shannon and its
  square root, Hellinger.
* Graph-edit distance under a heuristic :class:`CostModel`
  (:mod:`~cgraph.distance.edit`: exact and bipartite approximation; a space may supply its
  own exact matrix through ``edit_matrix``).
* :func:`pairwise` and :func:`register_metric` (:mod:`~cgraph.distance.registry`).
"""

from cbred.cgraph.distance.costs import CostModel, family_of
from cbred.cgraph.distance.edit import (
    approx_edit_distance,
    edit_distance,
    edit_lower_bound,
    edit_matrix,
    edit_path_cost,
)
from cbred.cgraph.distance.probabilistic import (
    hellinger_matrix,
    js_matrix,
    kl_matrix,
    sqrt_js_matrix,
    to_distributions,
)
from cbred.cgraph.distance.registry import (
    Metric,
    as_counts,
    available_metrics,
    get_metric,
    kernel_graph,
    pairwise,
    register_metric,
)

__all__ = [
    "CostModel",
    "Metric",
    "approx_edit_distance",
    "as_counts",
    "available_metrics",
    "edit_distance",
    "edit_lower_bound",
    "edit_matrix",
    "edit_path_cost",
    "family_of",
    "get_metric",
    "hellinger_matrix",
    "js_matrix",
    "kernel_graph",
    "kl_matrix",
    "pairwise",
    "register_metric",
    "sqrt_js_matrix",
    "to_distributions",
]
