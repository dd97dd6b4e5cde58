"""One entry point, :func:`pairwise`, over a registry of named distance metrics.

``pairwise(x, metric=name)`` returns the N×N matrix of a registered metric.
What ``x`` may be depends on the metric's ``inputs``:

* ``"counts"`` metrics (``kl``, ``js``, ``sqrt_js``, ``hellinger``) take an (N, P)
  array of op counts or probabilities, a list of ``CompGraph`` (their
  ``op_histogram()``), or a space with ``op_counts()`` (the op counts of every
  architecture, which a space may compute faster than by tracing); the function
  registered receives the (N, P) float array.
* ``"raw"`` metrics (``edit``) receive ``x`` unchanged.

Add a metric with the decorator::

    @register_metric("total_variation", inputs="counts", is_metric=True)
    def tv(counts, *, dtype, chunk, out, **options):
        p = to_distributions(counts)
        ...  # fill and return an (N, N) array of dtype (``out`` may name a .npy path)

Every metric function is called as ``fn(x, dtype=..., chunk=..., out=..., **options)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np
from cbred.cgraph.distance._blocks import OutSpec
from cbred.cgraph.distance.costs import CostModel
from cbred.cgraph.distance.edit import edit_matrix
from cbred.cgraph.distance.probabilistic import (
    hellinger_matrix,
    js_matrix,
    kl_matrix,
    sqrt_js_matrix,
)

INPUT_KINDS = ("counts", "raw")
EXACT_MAX_NODES = 7
"""``edit`` with ``method="auto"`` is exact when every graph has at most this many nodes."""


@dataclass(frozen=True)
class Metric:
    """A registered distance: how to compute its matrix and what it guarantees."""

    name: str
    compute: Callable[..., np.ndarray]
    inputs: str
    is_metric: bool
    description: str


_METRICS: dict[str, Metric] = {}


def register_metric(
    name: str, *, inputs: str = "counts", is_metric: bool = False, overwrite: bool = False
) -> Callable[[Callable[..., np.ndarray]], Callable[..., np.ndarray]]:
    """Decorator registering a matrix function under ``name`` (see the module docstring).

    ``is_metric`` declares that the distance obeys the triangle inequality (the
    clustering code may rely on it); ``overwrite`` allows replacing a metric.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"metric name must be a non-empty string, got {name!r}")
    if inputs not in INPUT_KINDS:
        raise ValueError(f"inputs must be one of {INPUT_KINDS}, got {inputs!r}")

    def decorator(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        if name in _METRICS and not overwrite:
            raise ValueError(f"metric {name!r} is already registered; pass overwrite=True")
        doc = (fn.__doc__ or "").strip().splitlines()
        _METRICS[name] = Metric(name, fn, inputs, is_metric, doc[0] if doc else "")
        return fn

    return decorator


def get_metric(name: str) -> Metric:
    """The registered metric ``name``; KeyError listing the known names otherwise."""
    try:
        return _METRICS[name]
    except KeyError:
        raise KeyError(
            f"unknown metric {name!r}; registered: {', '.join(sorted(_METRICS))}"
        ) from None


def available_metrics() -> list[str]:
    """Names of all registered metrics, sorted."""
    return sorted(_METRICS)


def as_counts(x: object) -> np.ndarray:
    """An (N, P) float64 array of op counts from an array, CompGraphs, or a space that
    provides ``op_counts()`` (the counts of all its architectures, computed its own way)."""
    if callable(getattr(x, "op_counts", None)):
        return np.asarray(x.op_counts(), dtype=np.float64)  # type: ignore[attr-defined]
    if isinstance(x, str):
        raise ValueError(
            f"got the string {x!r}; pass a space object (e.g. from cbred.reduce.load_space), "
            "an (N, P) array of op counts or a list of CompGraph"
        )
    if isinstance(x, Sequence) and x and all(hasattr(g, "op_histogram") for g in x):
        return np.stack([np.asarray(g.op_histogram(), dtype=np.float64) for g in x])
    counts = np.asarray(x, dtype=np.float64)
    if counts.ndim != 2:
        raise ValueError(
            "expected an (N, P) array, a list of CompGraph or a space with op_counts(); "
            f"got shape {counts.shape}"
        )
    return counts


def kernel_graph(graph: object, *, label: str = "op") -> nx.DiGraph:
    """The kernel projection of a ``CompGraph`` as a DiGraph with op types under ``label``."""
    if not (hasattr(graph, "kernel_projection") and hasattr(graph, "kernel_ops")):
        raise TypeError(
            f"expected a networkx graph or a CompGraph for the edit distance, "
            f"got {type(graph).__name__}"
        )
    projection = graph.kernel_projection()  # type: ignore[attr-defined]
    result = nx.from_scipy_sparse_array(projection, create_using=nx.DiGraph)
    nx.set_node_attributes(result, dict(enumerate(graph.kernel_ops)), label)  # type: ignore[attr-defined]
    for _, _, data in result.edges(data=True):
        data.pop("weight", None)
    return result


def pairwise(
    x: object,
    metric: str = "hellinger",
    *,
    dtype: object = np.float32,
    chunk: int | None = None,
    out: OutSpec = None,
    **options: object,
) -> np.ndarray:
    """The N×N matrix of ``metric`` over ``x`` (see the module docstring for inputs).

    ``dtype`` float32 or float64; ``chunk`` rows per block (default: a ~64 MiB
    budget); ``out`` an (N, N) array or a ``.npy`` path to fill as a memmap;
    ``options`` go to the metric (``smoothing=`` for probabilistic ones,
    ``cost=``/``method=`` for ``edit``).
    """
    entry = get_metric(metric)
    data = as_counts(x) if entry.inputs == "counts" else x
    return entry.compute(data, dtype=dtype, chunk=chunk, out=out, **options)


register_metric("kl")(kl_matrix)
register_metric("js")(js_matrix)
register_metric("sqrt_js", is_metric=True)(sqrt_js_matrix)
register_metric("hellinger", is_metric=True)(hellinger_matrix)


@register_metric("edit", inputs="raw", is_metric=True)
def edit_metric(
    x: object,
    *,
    dtype: object = np.float32,
    chunk: int | None = None,
    out: OutSpec = None,
    cost: CostModel | None = None,
    method: str = "auto",
    label: str = "op",
) -> np.ndarray:
    """Graph-edit distance: networkx GED or its bipartite upper bound over graphs (a metric
    under a metric cost model), or a space's own exact matrix.

    ``x``: a list of networkx graphs or ``CompGraph`` (their kernel projections), or an
    object with ``edit_matrix(cost, dtype=, chunk=, out=)`` (a space whose edit distance has
    a fast exact form, such as NB201's per-edge sums).  ``method``: "exact", "approx" or
    "auto" (exact when every graph has at most :data:`EXACT_MAX_NODES` nodes).
    """
    if callable(getattr(x, "edit_matrix", None)):
        return x.edit_matrix(cost, dtype=dtype, chunk=chunk, out=out)  # type: ignore[attr-defined]
    items = list(x)  # type: ignore[call-overload]
    graphs = [g if isinstance(g, nx.Graph) else kernel_graph(g, label=label) for g in items]
    if method == "auto":
        small = all(g.number_of_nodes() <= EXACT_MAX_NODES for g in graphs)
        method = "exact" if small else "approx"
    return edit_matrix(graphs, cost, method=method, label=label, dtype=dtype, out=out)
