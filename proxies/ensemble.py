"""Rank ensembles over a population: mean rank of chosen statistics, the majority vote and
AZ-NAS's sum of log relative ranks.

Both take a table ``{statistic name: values over the population}`` and use each
statistic's registered direction; NaN counts as the worst value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from cbred.proxies.registry import get_proxy
from scipy.stats import rankdata

VOTE_MEMBERS = ("synflow", "jacob_cov", "snip")
# AZ-NAS's four components; its complexity is the FLOPs of one forward (cbred's ``flops``).
AZ_MEMBERS = ("az_expressivity", "az_progressivity", "az_trainability", "flops")


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


def log_rank(table: Mapping[str, Sequence[float]], names: Sequence[str]) -> np.ndarray:
    """Σ over ``names`` of log(rank / n), ranks 1..n with n the best (higher is better).

    The sum of logs is a product of relative ranks: one member ranking a network near the
    bottom pulls it down far more than in :func:`mean_rank`, so the best networks are the
    ones no member rates poorly.
    """
    oriented = _oriented(table, names)
    n = oriented.shape[1]
    return np.sum([np.log(rankdata(row) / n) for row in oriented], axis=0)


def az_nas(table: Mapping[str, Sequence[float]], names: Sequence[str] = AZ_MEMBERS) -> np.ndarray:
    """AZ-NAS's aggregate (Lee & Ham, CVPR 2024): :func:`log_rank` of expressivity,
    progressivity, trainability and complexity (FLOPs) over the population, as in the
    authors' NB201 notebook (average ranks for ties; NaN, their −∞, ranks last)."""
    return log_rank(table, names)
