"""Rank ensembles over a population: mean rank of chosen statistics and the majority vote.

Both take a table ``{statistic name: values over the population}`` and use each
statistic's registered direction; NaN counts as the worst value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from cbred.proxies.registry import get_proxy
from scipy.stats import rankdata

VOTE_MEMBERS = ("synflow", "jacob_cov", "snip")


def _oriented(table: Mapping[str, Sequence[float]], names: Sequence[str]) -> np.ndarray:
    """(len(names), n) values flipped so that higher is better, NaN → −inf."""
    if not names:
        raise ValueError("an ensemble needs at least one statistic")
    missing = [n for n in names if n not in table]
    if missing:
        raise KeyError(f"statistics {missing} missing from the table (has {sorted(table)})")
    rows = []
    for name in names:
        v = np.asarray(table[name], dtype=np.float64)
        v = v if get_proxy(name).direction == "higher" else -v
        rows.append(np.where(np.isnan(v), -np.inf, v))
    lengths = {len(r) for r in rows}
    if len(lengths) != 1:
        raise ValueError(f"statistics have different population sizes {sorted(lengths)}")
    return np.stack(rows)


def ranks(values: Sequence[float], direction: str = "higher") -> np.ndarray:
    """Average ranks 1..n with n the best; NaN ranks lowest."""
    v = np.asarray(values, dtype=np.float64)
    if direction not in ("higher", "lower"):
        raise ValueError(f"direction must be 'higher' or 'lower', got {direction!r}")
    v = v if direction == "higher" else -v
    return rankdata(np.where(np.isnan(v), -np.inf, v))


def mean_rank(table: Mapping[str, Sequence[float]], names: Sequence[str]) -> np.ndarray:
    """Mean over ``names`` of each member's rank (higher is better)."""
    oriented = _oriented(table, names)
    return np.mean([rankdata(row) for row in oriented], axis=0)


def vote(
    table: Mapping[str, Sequence[float]],
    names: Sequence[str] = VOTE_MEMBERS,
    chunk: int = 512,
) -> np.ndarray:
    """Fraction of the other members each one beats by a strict majority of ``names``.

    Abdelfattah et al.'s vote compares two architectures by the majority of synflow,
    jacob_cov and snip; summing the pairwise wins turns it into one score per member.
    """
    oriented = _oriented(table, names)
    n = oriented.shape[1]
    if n < 2:
        raise ValueError(f"vote needs at least 2 members, got {n}")
    wins = np.zeros(n)
    for start in range(0, n, chunk):
        block = oriented[:, start : start + chunk, None] > oriented[:, None, :]
        wins[start : start + chunk] = (block.sum(0) * 2 > len(names)).sum(1)
    return wins / (n - 1)
