"""The heuristic cost model of the graph-edit (transformation) distance.

An operation is labelled by its op type (a string such as ``"conv2d_3x3"`` or
``"nor_conv_1x1"``).  Substituting one op for another costs by how far apart
they are: nothing for the same op, ``same_family`` for two ops of one family (a
3×3 and a 1×1 convolution), ``cross_family`` otherwise (a convolution and a
pooling).  Inserting or deleting an op costs ``insert``/``delete``; edges (data
flow) cost ``edge_insert``/``edge_delete`` and, when they carry labels,
``edge_substitute`` for a label change.  ``overrides`` sets the cost of chosen
op pairs explicitly.

Families come from :data:`FAMILY_PATTERNS` (first matching substring wins) unless
``families`` names one; an op that matches nothing is its own family.

When is the edit distance a metric?  (Bunke & Allermann's conditions.)  Edit
distance over graphs is a metric (on graphs up to label-preserving isomorphism)
when the costs form a metric over the labels extended by the "absent" label ε:
positive for different labels, symmetric (``insert == delete``, and the same
for edges) and obeying the triangle inequality, which for this model means
``same_family <= 2·cross_family`` (when ``same_family < cross_family``, automatic)
and ``cross_family <= insert + delete``; overrides must keep those properties.
:meth:`CostModel.metric_violations` checks them over a set of ops.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

FAMILY_PATTERNS: tuple[tuple[str, str], ...] = (
    ("conv", "conv"),
    ("pool", "pool"),
    ("norm", "norm"),
    ("skip", "identity"),
    ("identity", "identity"),
    ("relu", "activation"),
    ("gelu", "activation"),
    ("silu", "activation"),
    ("sigmoid", "activation"),
    ("tanh", "activation"),
    ("softmax", "activation"),
    ("linear", "linear"),
    ("matmul", "linear"),
    ("addmm", "linear"),
    ("add", "elementwise"),
    ("mul", "elementwise"),
    ("sub", "elementwise"),
    ("cat", "reshape"),
    ("view", "reshape"),
    ("reshape", "reshape"),
    ("flatten", "reshape"),
)
"""(substring, family) rules giving an op's family when ``families`` does not."""


def family_of(op: str, families: Mapping[str, str] | None = None) -> str:
    """The family of op ``op``: ``families[op]``, else the first matching pattern, else op."""
    if families and op in families:
        return families[op]
    lowered = op.lower()
    for pattern, family in FAMILY_PATTERNS:
        if pattern in lowered:
            return family
    return op


@dataclass(frozen=True)
class CostModel:
    """Costs of the edit operations; see the module docstring for the heuristic."""

    same_family: float = 0.5
    cross_family: float = 1.0
    insert: float = 1.0
    delete: float = 1.0
    edge_substitute: float = 1.0
    edge_insert: float = 1.0
    edge_delete: float = 1.0
    families: Mapping[str, str] = field(default_factory=dict)
    overrides: Mapping[tuple[str, str], float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in (
            "same_family",
            "cross_family",
            "insert",
            "delete",
            "edge_substitute",
            "edge_insert",
            "edge_delete",
        ):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"cost {name} must be a finite number >= 0, got {value}")
        for pair, value in self.overrides.items():
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise ValueError(f"override keys must be (op, op) pairs, got {pair!r}")
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"override cost for {pair} must be finite and >= 0, got {value}")
        object.__setattr__(self, "families", MappingProxyType(dict(self.families)))
        object.__setattr__(self, "overrides", MappingProxyType(dict(self.overrides)))

    def substitute(self, a: str, b: str) -> float:
        """Cost of relabelling an op ``a`` as ``b`` (0 when equal; overrides are symmetric)."""
        if a == b:
            return 0.0
        if (a, b) in self.overrides:
            return float(self.overrides[(a, b)])
        if (b, a) in self.overrides:
            return float(self.overrides[(b, a)])
        same = family_of(a, self.families) == family_of(b, self.families)
        return self.same_family if same else self.cross_family

    def edge_relabel(self, a: object, b: object) -> float:
        """Cost of changing an edge's label from ``a`` to ``b`` (unlabelled edges: None)."""
        return 0.0 if a == b else self.edge_substitute

    def substitution_matrix(self, ops: Iterable[str]) -> np.ndarray:
        """(K, K) float64 array of :meth:`substitute` over ``ops`` in the given order."""
        names = list(ops)
        return np.array([[self.substitute(a, b) for b in names] for a in names], dtype=np.float64)

    def metric_violations(self, ops: Iterable[str]) -> list[str]:
        """Why the edit distance over graphs labelled by ``ops`` is not a metric ([] if it is).

        Checks the conditions of the module docstring on the label set ``ops``
        extended with the absent label ε.
        """
        names = list(dict.fromkeys(ops))
        problems = []
        if self.insert != self.delete:
            problems.append(f"insert ({self.insert}) != delete ({self.delete})")
        if self.edge_insert != self.edge_delete:
            problems.append(f"edge_insert ({self.edge_insert}) != edge_delete ({self.edge_delete})")
        if min(self.insert, self.delete, self.edge_insert, self.edge_delete) <= 0:
            problems.append("insertion and deletion costs must be positive")
        if self.edge_substitute <= 0 or self.edge_substitute > self.edge_insert + self.edge_delete:
            problems.append("edge_substitute must lie in (0, edge_insert + edge_delete]")
        for a, b in itertools.combinations(names, 2):
            cost = self.substitute(a, b)
            if cost <= 0:
                problems.append(f"substitute({a!r}, {b!r}) = {cost} is not positive")
            if cost != self.substitute(b, a):
                problems.append(f"substitute is not symmetric on ({a!r}, {b!r})")
            if cost > self.insert + self.delete:
                problems.append(f"substitute({a!r}, {b!r}) = {cost} > insert + delete")
        for a, b, c in itertools.permutations(names, 3):
            if self.substitute(a, c) > self.substitute(a, b) + self.substitute(b, c) + 1e-12:
                problems.append(f"triangle inequality fails on {a!r} -> {b!r} -> {c!r}")
        return problems

    def is_metric(self, ops: Iterable[str]) -> bool:
        """Whether :meth:`metric_violations` finds nothing for ``ops``."""
        return not self.metric_violations(ops)
