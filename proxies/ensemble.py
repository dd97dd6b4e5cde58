"""Rank ensembles over a population: mean rank of chosen statistics, the majority vote,
AZ-NAS's and VKDNW's sums of log relative ranks, cbred's :func:`recommended` ensemble and
its fitness for searches, :data:`RECOMMENDED_SEARCH`.

All take a table ``{statistic name: values over the population}`` and use each
statistic's registered direction; NaN counts as the worst value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
from cbred.proxies.registry import get_proxy, register_other_name
from scipy.stats import rankdata

VOTE_MEMBERS = ("synflow", "jacob_cov", "snip")
# AZ-NAS's four components; its complexity is the FLOPs of one forward (cbred's ``flops``).
AZ_MEMBERS = ("az_expressivity", "az_progressivity", "az_trainability", "flops")
# VKDNW_agg's five (Týbl & Neumann, CVPR 2025): their single ranking (ℵ, then the entropy)
# with AZ-NAS's expressivity and trainability, FLOPs and Jacobian covariance.
VKDNW_AGG_MEMBERS = ("vkdnw", "jacob_cov", "az_expressivity", "az_trainability", "flops")
AGGREGATES = ("mean_rank", "log_rank", "vote")
"""How per-member ranks combine into one score (:func:`combine_ranks`)."""
_VOTE_CHUNK = 512
"""Candidates compared against all others at once by the vote (bounds its memory)."""
RECOMMENDED = (
    "log_rank",
    (
        "synflow",
        "jacob_cov",
        "meco",
        "meco_opt",
        "zen",
        "az_expressivity",
        "az_progressivity",
        "az_trainability",
    ),
)
"""cbred's label-free ensemble: (aggregate, members).  Chosen by
``python -m cbred.bench.ensemble`` among every subset of the statistics of the shipped
NB201 table under each aggregate, by Spearman ρ with CIFAR-10 test accuracy on a fixed
random half of NB201 only (seed in :mod:`bench.ensemble`); the other half and the other two
data sets were not looked at.  A test re-runs the choice and checks it gives this.  The same
rule chose synflow, jacob_cov, flops until MeCo's whole-space columns shipped (session 8), then
synflow, jacob_cov, meco until Zen's and AZ-NAS's shipped (session 15)."""

RECOMMENDED_SEARCH = ("log_rank", ("synflow", "swap", "zen"))
"""cbred's label-free fitness for searches: (aggregate, members).  Chosen by
``python -m cbred.bench.search_choice`` among the same candidates as :data:`RECOMMENDED`, by
the expected CIFAR-10 test accuracy of best-of-1000 on the same half of NB201 only (a search
keeps its best find, so the criterion is the top, not the whole ranking: whole-space ρ 0.78
against 0.95, top-1% precision 36% against 10% on the held-out half); registered before any
figure was seen (session 16).  A test re-runs the choice and checks it gives this."""


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


def combine_ranks(rank_rows: np.ndarray, aggregate: str) -> np.ndarray:
    """One score per candidate from (members, n) ranks 1..n with n the best (higher is
    better): their mean (``mean_rank``), the sum of log(rank / n) (``log_rank``), or the
    share of the other candidates it beats by a strict majority of members (``vote``)."""
    rank_rows = np.asarray(rank_rows, dtype=np.float64)
    if aggregate == "mean_rank":
        return rank_rows.mean(axis=0)
    if aggregate == "log_rank":
        return np.log(rank_rows / rank_rows.shape[1]).sum(axis=0)
    if aggregate == "vote":
        return _majority_wins(rank_rows)
    raise ValueError(f"unknown aggregate {aggregate!r}; expected one of {AGGREGATES}")


def _majority_wins(rank_rows: np.ndarray) -> np.ndarray:
    """Share of the other candidates each one beats by a strict majority of the members
    (0 for a lone candidate); compared in blocks of :data:`_VOTE_CHUNK` rows."""
    members, n = rank_rows.shape
    wins = np.zeros(n)
    for start in range(0, n, _VOTE_CHUNK):
        block = rank_rows[:, start : start + _VOTE_CHUNK, None] > rank_rows[:, None, :]
        wins[start : start + _VOTE_CHUNK] = (block.sum(0) * 2 > members).sum(1)
    return wins / max(n - 1, 1)


def rank_ensemble(
    table: Mapping[str, Sequence[float]], names: Sequence[str], aggregate: str
) -> np.ndarray:
    """Each member of ``names`` ranked over the population by its registered direction, the
    ranks combined by ``aggregate`` (:func:`combine_ranks`; higher is better)."""
    return combine_ranks([rankdata(row) for row in _oriented(table, names)], aggregate)


def mean_rank(table: Mapping[str, Sequence[float]], names: Sequence[str]) -> np.ndarray:
    """Mean over ``names`` of each member's rank (higher is better)."""
    return rank_ensemble(table, names, "mean_rank")


def vote(table: Mapping[str, Sequence[float]], names: Sequence[str] = VOTE_MEMBERS) -> np.ndarray:
    """Fraction of the other members each one beats by a strict majority of ``names``.

    Abdelfattah et al.'s vote compares two architectures by the majority of synflow,
    jacob_cov and snip; summing the pairwise wins turns it into one score per member.
    Ranks order candidates as their values do (ties stay ties), so the vote of the ranks
    is the vote of the values.
    """
    scores = rank_ensemble(table, names, "vote")
    if len(scores) < 2:
        raise ValueError(f"vote needs at least 2 members, got {len(scores)}")
    return scores


def log_rank(table: Mapping[str, Sequence[float]], names: Sequence[str]) -> np.ndarray:
    """Σ over ``names`` of log(rank / n), ranks 1..n with n the best (higher is better).

    The sum of logs is a product of relative ranks: one member ranking a network near the
    bottom pulls it down far more than in :func:`mean_rank`, so the best networks are the
    ones no member rates poorly.
    """
    return rank_ensemble(table, names, "log_rank")


def az_nas(table: Mapping[str, Sequence[float]], names: Sequence[str] = AZ_MEMBERS) -> np.ndarray:
    """AZ-NAS's aggregate (Lee & Ham, CVPR 2024): :func:`log_rank` of expressivity,
    progressivity, trainability and complexity (FLOPs) over the population, as in the
    authors' NB201 notebook (average ranks for ties; NaN, their −∞, ranks last)."""
    return log_rank(table, names)


def vkdnw_agg(
    table: Mapping[str, Sequence[float]], names: Sequence[str] = VKDNW_AGG_MEMBERS
) -> np.ndarray:
    """VKDNW_agg (Týbl & Neumann, CVPR 2025): :func:`log_rank` of the ``vkdnw`` ranking,
    Jacobian covariance, AZ-NAS's expressivity and trainability, and FLOPs, as the authors'
    NB201 code sums them (``vkdnw_comb_rank`` in ``NB201/tss_utils.py`` at beb332b, deleted
    later; their log ranks are not divided by n, a constant shift).  Two differences where
    values tie: they rank the (ℵ, entropy) pairs densely (1, 2, … over distinct pairs),
    cbred by average rank as every other member; and they set a NaN Jacobian covariance to
    the column's minimum, cbred ranks it below every value."""
    return log_rank(table, names)


def recommended(table: Mapping[str, Sequence[float]]) -> np.ndarray:
    """cbred's label-free ensemble (:data:`RECOMMENDED`) over the population of ``table``:
    its members' log relative ranks summed (higher is better)."""
    aggregate, members = RECOMMENDED
    return rank_ensemble(table, members, aggregate)


class Ensemble(NamedTuple):
    """A named ensemble: its member statistics, how their ranks combine, and its source."""

    members: tuple[str, ...]
    aggregate: str
    source: str


ENSEMBLES: dict[str, Ensemble] = {
    "recommended": Ensemble(
        RECOMMENDED[1], RECOMMENDED[0], "cbred, chosen on half of NB201 vs CIFAR-10 only"
    ),
    "recommended_search": Ensemble(
        RECOMMENDED_SEARCH[1],
        RECOMMENDED_SEARCH[0],
        "cbred, chosen on half of NB201 by best-of-1000 CIFAR-10 accuracy only",
    ),
    "vote": Ensemble(VOTE_MEMBERS, "vote", "Abdelfattah et al., Zero-Cost Proxies, ICLR 2021"),
    "az_nas": Ensemble(AZ_MEMBERS, "log_rank", "Lee & Ham, AZ-NAS, CVPR 2024"),
    "vkdnw_agg": Ensemble(
        VKDNW_AGG_MEMBERS, "log_rank", "Týbl & Neumann, VKDNW (VKDNW_agg), CVPR 2025"
    ),
}
"""Named ensembles (``cbred proxies list``), usable wherever a search takes a fitness."""
for _name, _ensemble in ENSEMBLES.items():  # named where a statistic is expected: say what it is
    register_other_name(
        _name,
        f"an ensemble ({_ensemble.aggregate} of {', '.join(_ensemble.members)}) ranked over a "
        "population, not a statistic of one network; score its members",
    )


def parse_fitness(text: str, aggregate: str | None = None) -> tuple[tuple[str, ...], str]:
    """(member statistics, aggregate) of a fitness as the command line spells it: one
    statistic, distinct statistics joined by ``+`` (combined by ``aggregate``, mean rank by
    default), or a name of :data:`ENSEMBLES` (its own members and aggregate; another
    ``aggregate`` asked for is an error, never silently dropped).  Every member must be
    registered."""
    if text in ENSEMBLES:
        members, own, _ = ENSEMBLES[text]
        if aggregate not in (None, own):
            raise ValueError(
                f"{text!r} combines its members by {own}; --aggregate {aggregate} applies to "
                "'a+b' ensembles (spell the members out to combine them otherwise)"
            )
        return members, own
    aggregate = aggregate or "mean_rank"
    if aggregate not in AGGREGATES:
        raise ValueError(f"unknown aggregate {aggregate!r}; expected one of {AGGREGATES}")
    names = tuple(n.strip() for n in text.split("+"))
    if not all(names) or len(set(names)) != len(names):
        raise ValueError(
            f"fitness {text!r}: expected a statistic, distinct statistics joined by '+', "
            f"or an ensemble ({', '.join(ENSEMBLES)})"
        )
    for name in names:
        get_proxy(name)
    return names, aggregate
