"""Graph features for clustering: named, pluggable maps from a graph to a non-negative vector.

C-BRED clusters networks by a distance between feature vectors.  The original
feature is the op-usage histogram (:meth:`CompGraph.op_histogram`), which is
blind to widths: two MobileNets that differ only in expansion ratio have equal
histograms and sit at distance 0, and NATS-Bench's 32,768 size-space networks have
only four distinct histograms.  The width- and cost-aware features here tell them
apart.

A feature is a function ``fn(graph) -> Mapping[str, float]`` from a
:class:`~cgraph.graph.CompGraph` to **non-negative** values over named columns
(missing columns count as 0).  :func:`feature_matrix` stacks the mappings of many
graphs into one (N, P) float64 matrix over the union of their columns, so that
every probabilistic distance (which normalises each row into a distribution)
applies to every feature::

    matrix, columns = feature_matrix(graphs, "flops_usage")
    distances = pairwise(matrix, metric="hellinger")

Column order is deterministic: a feature may declare ``columns`` (the per-op-type
features declare :data:`~cgraph.vocab.VOCAB`), which always come first and in
that order, even when every graph has 0 there, so their matrices are comparable
between calls; any other column follows, sorted.

Built-in features (``op_usage`` is the default, the original C-BRED feature):

==================  ==============================================================
``op_usage``        kernels per op type (columns: VOCAB); ``graph.op_histogram()``
``flops_usage``     FLOPs (multiply-accumulates) of the kernels of each op type
``params_usage``    parameter elements read by the kernels of each op type
``kernel_shapes``   kernels per op type *and* weight shape, ``"conv3x3[16x8x3x3]"``
==================  ==============================================================

A row summing to 0 (``flops_usage`` of a graph without convolutions or linear
layers) has no distribution: the probabilistic distances reject it unless given
``smoothing``.

Add a feature with :func:`register_feature`; :func:`available_features` lists them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from cbred.cgraph.graph import BUFFER, PARAMETER, CompGraph
from cbred.cgraph.vocab import VOCAB

FeatureFn = Callable[[CompGraph], Mapping[str, float]]
"""A feature function: a graph to non-negative values over named columns."""

DEFAULT_FEATURE = "op_usage"


@dataclass(frozen=True)
class Feature:
    """A registered feature: its function, what it measures, and its declared columns.

    Calling it computes and checks one graph's row: a dict of finite, non-negative
    floats (``ValueError`` otherwise, naming the feature and the column).
    """

    name: str
    compute: FeatureFn
    description: str
    columns: tuple[str, ...] = ()

    def __call__(self, graph: CompGraph) -> dict[str, float]:
        row = self.compute(graph)
        if not isinstance(row, Mapping):
            raise TypeError(
                f"feature {self.name!r} must return a mapping column -> value, "
                f"got {type(row).__name__}"
            )
        checked = {}
        for column, value in row.items():
            if not isinstance(column, str):
                raise TypeError(f"feature {self.name!r} gave a non-string column {column!r}")
            number = float(value)
            if not (math.isfinite(number) and number >= 0):
                raise ValueError(
                    f"feature {self.name!r} gave {value!r} for column {column!r}; "
                    "values must be finite and non-negative"
                )
            checked[column] = number
        return checked


_FEATURES: dict[str, Feature] = {}
_BUILTIN: set[str] = set()


def register_feature(
    name: str,
    fn: FeatureFn,
    description: str,
    *,
    columns: Sequence[str] = (),
    overwrite: bool = False,
) -> Feature:
    """Register ``fn`` as feature ``name`` and return the :class:`Feature`.

    ``fn(graph)`` returns a mapping column -> non-negative value; ``columns``
    fixes the leading columns of :func:`feature_matrix` and their order (always
    present, 0 when a graph lacks them).  ``overwrite`` allows replacing a feature.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"feature name must be a non-empty string, got {name!r}")
    if not callable(fn):
        raise TypeError(f"feature {name!r}: fn must be callable, got {type(fn).__name__}")
    columns = tuple(columns)
    if len(set(columns)) != len(columns):
        raise ValueError(f"feature {name!r}: declared columns are not unique")
    if name in _FEATURES and not overwrite:
        raise ValueError(f"feature {name!r} is already registered; pass overwrite=True")
    feature = Feature(name, fn, str(description), columns)
    _FEATURES[name] = feature
    return feature


def unregister_feature(name: str) -> None:
    """Remove the feature ``name``; the built-in features cannot be removed."""
    if name in _BUILTIN:
        raise ValueError(f"feature {name!r} is built in and cannot be unregistered")
    get_feature(name)
    del _FEATURES[name]


def get_feature(name: str) -> Feature:
    """The registered feature ``name``; ValueError naming the known features otherwise."""
    try:
        return _FEATURES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown feature {name!r}; available: {', '.join(available_features())}"
        ) from None


def available_features() -> list[str]:
    """Names of all registered features, sorted."""
    return sorted(_FEATURES)


def feature_matrix(
    graphs: Sequence[CompGraph], name: str = DEFAULT_FEATURE
) -> tuple[np.ndarray, tuple[str, ...]]:
    """The (N, P) float64 matrix of feature ``name`` over ``graphs``, and its P columns.

    Columns are the feature's declared columns, in their order, then every other
    column some graph has, sorted; a graph lacking a column has 0 there.
    """
    feature = get_feature(name)
    rows = [feature(graph) for graph in graphs]
    declared = set(feature.columns)
    extra = sorted({c for row in rows for c in row} - declared)
    columns = feature.columns + tuple(extra)
    index = {column: j for j, column in enumerate(columns)}
    matrix = np.zeros((len(rows), len(columns)), dtype=np.float64)
    for i, row in enumerate(rows):
        for column, value in row.items():
            matrix[i, index[column]] = value
    return matrix, columns


# ------------------------------------------------------------------ built-in features
def _per_op(values: np.ndarray) -> dict[str, float]:
    return {op: float(v) for op, v in zip(VOCAB, values.tolist())}


def _sum_by_op(ops: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Exact int64 sums of ``values`` grouped by op code (length ``len(VOCAB)``)."""
    totals = np.zeros(len(VOCAB), dtype=np.int64)
    np.add.at(totals, np.asarray(ops, dtype=np.int64), np.asarray(values, dtype=np.int64))
    return totals


def op_usage(graph: CompGraph) -> dict[str, float]:
    """Kernel counts per VOCAB op type: the op-usage histogram, C-BRED's original feature."""
    return _per_op(graph.op_histogram())


def flops_usage(graph: CompGraph) -> dict[str, float]:
    """Total FLOPs of the kernels of each VOCAB op type: ``kernel_flops`` summed by ``kernel_op``.

    FLOPs are multiply-accumulates (:mod:`cgraph.kernels`), so the row sums to
    ``graph.summary().flops``; op types without FLOPs (activations, norms) get 0.
    """
    return _per_op(_sum_by_op(graph.kernel_op, graph.kernel_flops))


def params_usage(graph: CompGraph) -> dict[str, float]:
    """Parameter elements read by the kernels of each VOCAB op type.

    Every read of a ``parameter`` memory node adds its element count to the
    reading kernel's type; buffers (batch-norm statistics) and constants do not
    count.  A parameter read by two kernels (a module called twice, tied weights)
    counts once per reading kernel, so the row sums to the parameter count only
    for models without shared parameters: the feature measures the weights used,
    not stored.
    """
    reads = graph.reads[graph.mem_kind[graph.reads[:, 0]] == PARAMETER]
    return _per_op(_sum_by_op(graph.kernel_op[reads[:, 1]], graph.mem_numel[reads[:, 0]]))


def _weight_shape(attrs: Mapping[str, object], op: str) -> tuple[int, ...] | None:
    """The weight shape implied by a conv / transposed conv / linear kernel's attributes."""
    try:
        if "out_features" in attrs:
            return (int(attrs["out_features"]), int(attrs["in_features"]))
        if "kernel_size" in attrs and "out_channels" in attrs:
            c_in, c_out = int(attrs["in_channels"]), int(attrs["out_channels"])
            groups, kernel = int(attrs.get("groups", 1)), tuple(attrs["kernel_size"])
            if op == "conv_transpose":
                return (c_in, c_out // groups, *kernel)
            return (c_out, c_in // groups, *kernel)
    except (KeyError, TypeError, ValueError):
        return None
    return None


def kernel_shapes(graph: CompGraph) -> dict[str, float]:
    """Kernel counts by op type refined by weight shape: ``"conv3x3[16x8x3x3]"``, ``"relu"``.

    The shape of a convolution, transposed convolution or linear kernel comes from
    its attributes (``(out, in/groups, *kernel)``, ``(in, out/groups, *kernel)``,
    ``(out, in)``: the weight's shape even when the weight is computed rather than
    a parameter); other kernels take the shape of the first parameter they read,
    else of the first buffer (``batch_norm[16]``), else stay unrefined (``relu``).
    Columns are sorted, so networks of different widths land in different columns.
    """
    reads = graph.reads
    kinds = graph.mem_kind[reads[:, 0]]
    first: dict[int, dict[int, int]] = {}
    for kind in (PARAMETER, BUFFER):
        rows = reads[kinds == kind]
        kernels, at = np.unique(rows[:, 1], return_index=True)
        first[kind] = dict(zip(kernels.tolist(), rows[at, 0].tolist()))
    counts: dict[str, float] = {}
    for k, op in enumerate(graph.kernel_ops):
        shape = _weight_shape(graph.kernel_attrs[k], op)
        if shape is None:
            mem = first[PARAMETER].get(k, first[BUFFER].get(k))
            shape = None if mem is None else graph.mem_shape[mem]
        key = op if shape is None else f"{op}[{'x'.join(map(str, shape))}]"
        counts[key] = counts.get(key, 0.0) + 1.0
    return counts


def _register_builtin(fn: FeatureFn, columns: Sequence[str] = ()) -> None:
    register_feature(fn.__name__, fn, (fn.__doc__ or "").splitlines()[0], columns=columns)
    _BUILTIN.add(fn.__name__)


_register_builtin(op_usage, VOCAB)
_register_builtin(flops_usage, VOCAB)
_register_builtin(params_usage, VOCAB)
_register_builtin(kernel_shapes)
