"""The label-free ensemble: chosen on half of NB201 against CIFAR-10, reported on the rest.

    python -m cbred.bench.ensemble [--seeds 10] [--evaluations 1000] [--smoke]
        [--proxy-seeds 0,1,2 --scores SOURCE... --store STORE]

1. **Choice** (pre-registered here, before any figure below was seen): the candidates are
   every subset of :data:`CANDIDATES` (the label-free columns of the shipped table) under
   each aggregate of :data:`SELECTION_AGGREGATES` (a single statistic is its own
   ranking); the criterion is Spearman ρ with CIFAR-10 test accuracy on the half of NB201
   drawn by :data:`SPLIT_SEED`; ties go to fewer members, then to the earlier candidate
   (subsets in the order of :data:`CANDIDATES`, mean rank before log rank).  The winner must
   be :data:`proxies.ensemble.RECOMMENDED`, the shipped ``recommended`` column.
2. **Report**: ρ and Kendall τ on the held-out half and on the whole space for all three
   data sets, and the precision of its top 1% (the share of its top 1% in the true top 1%),
   beside each member alone, the vote, and the published figures.
3. **Searches** with the ensemble as fitness, ranking only the architectures a search has
   evaluated (the shipped column ranks the whole space and is never a search's fitness):
   best-of-N with N = ``--evaluations`` (each member statistic evaluated N times) and REA
   stopped at ``--evaluations`` architectures; mean ± std of test accuracy over search
   seeds, beside NASWOT best-of-N and REA with synflow (the best single member) at the same
   budget, random and optimal-N references, and the published NASWOT, TE-NAS and NASI rows.
   With ``--proxy-seeds 0,1,2`` (and ``--scores``/``--store`` for seeds 1 and 2), REA with
   the ensemble and NASWOT best-of-N draw the proxy (batch/init) seed with the search seed,
   so their spread covers both; values no table has are scored live and kept in the store.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from cbred.bench import experiments as ex
from cbred.bench.dataset_names import DATASETS
from cbred.bench.ground_truth import load_ground_truth
from cbred.bench.score_table import shipped_scores
from cbred.proxies.ensemble import (
    ENSEMBLES,
    RECOMMENDED,
    combine_ranks,
    rank_ensemble,
    ranks,
    vote,
)
from cbred.proxies.registry import get_proxy
from scipy.stats import kendalltau, rankdata, spearmanr

CANDIDATES = (
    "naswot",
    "synflow",
    "jacob_cov",
    "snip",
    "grad_norm",
    "flops",
    "params",
    "meco",
    "meco_opt",
    "swap",
    "swap_reg",
    "zen",
    "az_expressivity",
    "az_progressivity",
    "az_trainability",
    "vkdnw",
    "vkdnw_entropy",
)
"""The label-free whole-space columns of the shipped table, in tie-breaking order; MeCo's two
joined when their columns shipped (session 8), SWAP's two in session 11, Zen-score and
AZ-NAS's three in session 14 (registered here in session 13, before any whole-space value
of theirs was seen), VKDNW's two in session 17 (when the held-out half was scored, before
its values were looked at), the choice rule unchanged."""
SELECTION_AGGREGATES = ("mean_rank", "log_rank")
"""The aggregates the choice considers, fixed before the first choice (the majority vote,
an aggregate of :mod:`proxies.ensemble` since session 11, is reported beside the choice,
never a candidate: the rule stays as registered)."""
SPLIT_SEED = 201
CHOICE_BLOCK = 256
"""Candidates scored at once by :func:`choose`, one block per thread (bounds its memory:
~16 MB per array and thread)."""
RUNNERS = {"bestofn": ex.bestofn_runs, "rea": ex.rea_runs}
"""The searches run with an ensemble as fitness, by their ``--methods`` name."""
METHODS = tuple(RUNNERS)
TIE = 1e-12
"""ρ closer than this to the best ties (then fewer members, then the earlier candidate)."""
TOP = 0.01
TARGET_RHO = 0.92
TARGET_SEARCH = {"cifar10": 94.0, "cifar100": 72.5, "imagenet16_120": 46.0}
PUBLISHED_RHO = {  # whole-space Spearman ρ, label-free (issue #16)
    "VKDNW aggregate (CVPR 2025)": (0.919, 0.919, 0.906),
    "AZ-NAS (CVPR 2024, authors' notebook)": (0.913, None, None),
}
PUBLISHED_AGGREGATES = ("az_nas", "vkdnw_agg")
"""Named ensembles of :mod:`proxies.ensemble` that reproduce an aggregate of
:data:`PUBLISHED_RHO`: reported beside it whenever the table has every member."""
PUBLISHED_SEARCH = {  # test accuracy, C10 / C100 / IN16
    "TE-NAS": (93.9, 71.24, 42.38),
    "NASI": (93.55, 71.20, 44.84),
}


def split(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The fixed halves: (selection, held-out) indices of an n-architecture space."""
    perm = np.random.default_rng(SPLIT_SEED).permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2 :])


def candidates() -> list[tuple[str, tuple[str, ...]]]:
    """Every (aggregate, members) the choice considers, in tie-breaking order."""
    out: list[tuple[str, tuple[str, ...]]] = []
    for size in range(1, len(CANDIDATES) + 1):
        for members in itertools.combinations(CANDIDATES, size):
            out += [
                (a, members)
                for a in SELECTION_AGGREGATES
                if size > 1 or a == SELECTION_AGGREGATES[0]
            ]
    return out


def table_and_accuracies() -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The shipped score table and, per data set, the test accuracies of its rows."""
    table = shipped_scores()
    truth = load_ground_truth()
    idx = table.index.to_numpy(dtype=np.int64)
    return table, {d: truth.accuracies(d)[idx] for d in DATASETS}


def ensemble_score(table: pd.DataFrame, aggregate: str, members: tuple[str, ...]) -> np.ndarray:
    """The ensemble over the table's rows (higher is better)."""
    return rank_ensemble({m: table[m].to_numpy() for m in members}, members, aggregate)


def choose(
    table: pd.DataFrame,
    accuracy: np.ndarray,
    criterion: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> tuple[tuple[str, tuple[str, ...]], pd.DataFrame]:
    """The chosen (aggregate, members) and every candidate's criterion on the selection half.

    ``criterion(scores, accuracy)`` maps candidates' scores (candidates × n, higher is
    better) and the half's accuracies (n,) to one value per candidate, higher is better;
    by default Spearman's ρ (:func:`spearman_rows`).  Only the selection half's accuracies
    are read.  Each member is ranked once; candidates are scored :data:`CHOICE_BLOCK` at a
    time, each score the sum of its members' one-member :func:`combine_ranks` terms (both
    aggregates are sums; a mean ranks as its sum), blocks on as many threads as cores.
    Candidates within :data:`TIE` of the best value tie (identical rankings, such as flops
    and params on NB201, must not be split by rounding).
    """
    selection, _ = split(len(table))
    member_ranks = np.stack(
        [ranks(table[m].to_numpy(), get_proxy(m).direction)[selection] for m in CANDIDATES]
    )
    terms = {  # each aggregate is a sum of per-member terms (a mean ranks as its sum)
        a: np.stack([combine_ranks(row[None], a) for row in member_ranks])
        for a in SELECTION_AGGREGATES
    }
    truth = accuracy[selection]
    if criterion is None:
        truth_ranks = rankdata(truth)

        def criterion(scores: np.ndarray, _: np.ndarray) -> np.ndarray:
            return spearman_rows(scores, truth_ranks)

    position = {m: i for i, m in enumerate(CANDIDATES)}
    every = candidates()

    def block_values(start: int) -> np.ndarray:
        block = every[start : start + CHOICE_BLOCK]
        scores = np.stack(
            [terms[a][[position[m] for m in members]].sum(axis=0) for a, members in block]
        )
        return criterion(scores, truth)

    # numpy's sorts release the GIL: blocks on threads use every core, same values
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        value = np.concatenate(list(pool.map(block_values, range(0, len(every), CHOICE_BLOCK))))
    frame = pd.DataFrame(
        {"aggregate": [a for a, _ in every], "members": [m for _, m in every], "value": value}
    )
    tied = frame[frame["value"] >= value.max() - TIE].assign(size=lambda f: f["members"].map(len))
    winner = tied.sort_values("size", kind="stable").iloc[0]
    return (winner["aggregate"], winner["members"]), frame


def spearman_rows(scores: np.ndarray, truth_ranks: np.ndarray) -> np.ndarray:
    """Spearman's ρ of each row of ``scores`` (candidates × n) with ranks ``truth_ranks`` (n,).

    Pearson's r of the rows' average ranks (ties share their mean rank, as in
    ``scipy.stats.rankdata``) with the truth's.  The choice spends its time here: one
    unstable sort per row and no scatter of the ranks back to the rows' order take about
    half the time of ``rankdata`` by rows then a correlation.
    """
    rows, n = scores.shape
    truth = truth_ranks - truth_ranks.mean()
    truth = truth / np.linalg.norm(truth)
    order = np.argsort(scores, axis=1)
    ordered = np.take_along_axis(scores, order, axis=1)
    starts_group = np.ones((rows, n), dtype=bool)
    np.not_equal(ordered[:, 1:], ordered[:, :-1], out=starts_group[:, 1:])
    starts = np.flatnonzero(starts_group)
    sizes = np.diff(starts, append=rows * n)
    average = starts % n + (sizes + 1) / 2  # the 1-based mean rank of each tie group
    ranked = np.repeat(average, sizes).reshape(rows, n) - (n + 1) / 2
    return (ranked * truth[order]).sum(axis=1) / np.linalg.norm(ranked, axis=1)


def precision_top(score: np.ndarray, accuracy: np.ndarray, share: float = TOP) -> float:
    """Share of the score's top ``share`` that is in the accuracy's top ``share``."""
    k = max(1, int(round(share * len(score))))
    ours = np.argsort(-score, kind="stable")[:k]
    truth = np.argsort(-accuracy, kind="stable")[:k]
    return len(np.intersect1d(ours, truth)) / k


def report(table: pd.DataFrame, accs: dict[str, np.ndarray], chosen) -> pd.DataFrame:
    """ρ, τ (held-out half, whole space) and top-1% precision per data set, per row."""
    _, held = split(len(table))
    aggregate, members = chosen
    scores = {f"recommended = {aggregate}({', '.join(members)})": ensemble_score(table, *chosen)}
    scores["vote (synflow, jacob_cov, snip)"] = vote(
        {m: table[m].to_numpy() for m in ("synflow", "jacob_cov", "snip")}
    )
    for name in PUBLISHED_AGGREGATES:  # the authors' recipes on our columns, where all shipped
        ensemble = ENSEMBLES[name]
        if set(ensemble.members) <= set(table.columns):
            label = f"{name} = {ensemble.aggregate}({', '.join(ensemble.members)})"
            scores[label] = ensemble_score(table, ensemble.aggregate, ensemble.members)
    for m in members:
        scores[m] = ensemble_score(table, "mean_rank", (m,))
    rows = []
    for name, score in scores.items():
        row = {"ranking": name}
        for d, acc in accs.items():
            row[f"{d} rho held-out"] = spearmanr(score[held], acc[held])[0]
            row[f"{d} rho"] = spearmanr(score, acc)[0]
            row[f"{d} tau"] = kendalltau(score, acc)[0]
            row[f"{d} top1%"] = precision_top(score, acc)
        rows.append(row)
    return pd.DataFrame(rows)


def format_report(frame: pd.DataFrame) -> str:
    short = ex.SHORT
    head = "| ranking |" + "".join(
        f" {short[d]} ρ held-out | {short[d]} ρ | {short[d]} τ | {short[d]} top-1% |"
        for d in DATASETS
    )
    lines = [head, "|---|" + "---|---|---|---|" * len(DATASETS)]
    for _, r in frame.iterrows():
        cells = "".join(
            f" {r[f'{d} rho held-out']:.3f} | {r[f'{d} rho']:.3f} | {r[f'{d} tau']:.3f} |"
            f" {r[f'{d} top1%']:.0%} |"
            for d in DATASETS
        )
        lines.append(f"| {r['ranking']} |{cells}")
    for name, rho in PUBLISHED_RHO.items():
        cells = "".join(f" — | {'—' if v is None else f'{v:.3f}'} | — | — |" for v in rho)
        lines.append(f"| published: {name} |{cells}")
    return "\n".join(lines)


def searches(
    evaluations: int,
    seeds: int,
    proxy: ex.ProxySeeds | None = None,
    methods: tuple[str, ...] = METHODS,
) -> list[ex.Runs]:
    """The search rows at ``evaluations`` statistic evaluations per member statistic: first
    the ensemble's, one per method of ``methods``; with ``proxy``, those and NASWOT's
    best-of-N draw a proxy seed per search seed (the synflow REA row stays on the shipped
    table: it is there to show the single statistic's fitness, not its spread over draws).
    Live values go to ``proxy``'s store, so an interrupted run resumes."""
    source = ex.load_scores([], sorted({*RECOMMENDED[1], "naswot"}))
    aggregate, members = RECOMMENDED
    coverage = source.coverage(list(members))
    return [
        *(
            RUNNERS[m](source, members, evaluations, seeds, aggregate=aggregate, proxy=proxy)
            for m in methods
        ),
        ex.bestofn_runs(source, ("naswot",), evaluations, seeds, proxy=proxy),
        ex.rea_runs(source, "synflow", evaluations, seeds),
        ex.oracle_runs(1, seeds, coverage),
        ex.oracle_runs(evaluations, seeds, coverage),
    ]


def per_proxy_seed(run: ex.Runs, proxy: ex.ProxySeeds) -> str:
    """The mean test accuracy of ``run`` for each proxy seed (C10 / C100 / IN16): how much of
    its spread the batch/init draw accounts for."""
    rows = run.rows.assign(proxy_seed=[proxy.proxy_seed(s) for s in run.rows["seed"]])
    means = rows.groupby(["proxy_seed", "dataset"])["accuracy"].mean()
    cells = [
        f"seed {p}: " + " / ".join(f"{means[p, d]:.2f}" for d in DATASETS)
        for p in sorted(set(rows["proxy_seed"]))
    ]
    return f"{run.label} per proxy seed: " + "; ".join(cells)


@dataclass(frozen=True)
class SearchOptions:
    """What a benchmark's searches run: seeds, evaluations per member statistic, the
    ensemble's methods, and the proxy seeds (None: the shipped table alone)."""

    seeds: int
    evaluations: int
    methods: tuple[str, ...]
    proxy: ex.ProxySeeds | None


def search_parser(description: str, evaluations_help: str) -> argparse.ArgumentParser:
    """The options of the ensemble benchmarks' searches (:func:`search_options` reads them):
    ``--seeds``, ``--evaluations``, ``--smoke``, ``--methods``, and the proxy (batch/init)
    seeds with their sources, ``--proxy-seeds``, ``--scores`` and ``--store``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seeds", type=int, default=10, help="search seeds")
    parser.add_argument("--evaluations", type=int, default=1000, help=evaluations_help)
    parser.add_argument("--smoke", action="store_true", help="2 seeds, 50 evaluations")
    parser.add_argument(
        "--methods",
        default=",".join(METHODS),
        help="comma-separated searches of the ensemble: bestofn, rea (default both; "
        "best-of-N's visits do not depend on the fitness, so they can be scored ahead under "
        "new proxy seeds, REA's cannot)",
    )
    parser.add_argument(
        "--proxy-seeds",
        default="0",
        help="comma-separated proxy (batch/init) seeds; search seed s reads seed s mod their "
        "count (default 0: the shipped table only)",
    )
    parser.add_argument(
        "--scores",
        nargs="+",
        default=[],
        metavar="SOURCE",
        help="score stores or tables holding statistics under the other proxy seeds",
    )
    parser.add_argument(
        "--store",
        help="score store for the values no source covers, computed live as the searches "
        "visit them (resumable; a rerun computes nothing twice)",
    )
    return parser


def search_options(parser: argparse.ArgumentParser, argv: list[str] | None) -> SearchOptions:
    """Parse :func:`search_parser`'s arguments; a bad value exits with one line."""
    args = parser.parse_args(argv)
    methods = tuple(args.methods.split(","))
    if not methods or not set(methods) <= set(METHODS) or len(set(methods)) != len(methods):
        parser.error(f"--methods: expected distinct names of {METHODS}, got {args.methods!r}")
    if args.seeds < 1 or args.evaluations < 1:
        parser.error(
            f"--seeds and --evaluations must be >= 1, got {args.seeds}, {args.evaluations}"
        )
    try:
        proxy_seeds = tuple(int(v) for v in args.proxy_seeds.split(","))
    except ValueError:
        parser.error(f"--proxy-seeds: expected integers joined by ',', got {args.proxy_seeds!r}")
    if min(proxy_seeds) < 0 or len(set(proxy_seeds)) != len(proxy_seeds):
        parser.error(f"--proxy-seeds: expected distinct seeds >= 0, got {args.proxy_seeds!r}")
    proxy = None
    if proxy_seeds != (0,):
        proxy = ex.ProxySeeds(proxy_seeds, tuple(args.scores), args.store)
    seeds, evaluations = (2, 50) if args.smoke else (args.seeds, args.evaluations)
    return SearchOptions(seeds, evaluations, methods, proxy)


def search_verdicts(
    targeted: list[ex.Runs], runs: list[ex.Runs], proxy: ex.ProxySeeds | None
) -> list[str]:
    """Lines: the published search rows (:data:`PUBLISHED_SEARCH`, whole NB201), each of
    ``targeted``'s gap to :data:`TARGET_SEARCH`, then, with ``proxy``, the per-proxy-seed
    means of every run of ``runs`` that drew proxy seeds."""
    lines = [
        f"published {name}: " + " / ".join(f"{v:.2f}" for v in row)
        for name, row in PUBLISHED_SEARCH.items()
    ]
    for run in targeted:
        summary = run.summary()
        gaps = [f"{summary[d][0] - TARGET_SEARCH[d]:+.2f}" for d in DATASETS]
        lines.append(f"{run.label} vs target 94.0 / 72.5 / 46.0: {' / '.join(gaps)}")
    if proxy is not None:
        lines += [per_proxy_seed(r, proxy) for r in runs if proxy.label() in r.label]
    return lines


def main(argv: list[str] | None = None) -> int:
    o = search_options(search_parser(__doc__.splitlines()[0], "per member statistic"), argv)
    seeds, evaluations, methods, proxy = o.seeds, o.evaluations, o.methods, o.proxy
    start = time.perf_counter()
    table, accs = table_and_accuracies()
    chosen, frame = choose(table, accs["cifar10"])
    top = frame.sort_values("value", ascending=False, kind="stable").head(5)
    print(f"choice on the selection half (seed {SPLIT_SEED}, {len(table) // 2} architectures), "
          f"CIFAR-10 ρ, {len(frame)} candidates; the best five:")  # fmt: skip
    for _, r in top.iterrows():
        print(f"  {r['value']:.4f}  {r['aggregate']}({', '.join(r['members'])})")
    agreed = "= RECOMMENDED" if chosen == RECOMMENDED else f"≠ RECOMMENDED {RECOMMENDED}"
    print(f"chosen: {chosen[0]}({', '.join(chosen[1])}) {agreed}")
    result = report(table, accs, chosen)
    print()
    print(format_report(result))
    first = result.iloc[0]
    for d in DATASETS:
        rho = first[f"{d} rho"]
        verdict = "met" if rho >= TARGET_RHO else f"NOT met, short by {TARGET_RHO - rho:.3f}"
        print(f"whole-space ρ on {d}: {rho:.3f} (target ≥ {TARGET_RHO}: {verdict})")
    print()
    runs = searches(evaluations, seeds, proxy, methods)
    spread = "one proxy seed (the shipped table's)"
    if proxy is not None:
        spread = (f"rows marked (proxy seeds ...) read proxy seed s mod {len(proxy.seeds)} "
                  "for search seed s, the others the shipped table (seed 0)")  # fmt: skip
    print(f"searches: {evaluations} evaluations per member statistic, {seeds} search seeds; "
          f"{spread}")  # fmt: skip
    print(ex.results_table(runs))
    print(f"(evals = architectures; an ensemble row computes {len(RECOMMENDED[1])} statistics "
          f"for each, {evaluations} per member statistic)")  # fmt: skip
    print("\n".join(search_verdicts(runs[: len(methods)], runs, proxy)))
    print(f"seconds {time.perf_counter() - start:.1f}")
    return 0


if __name__ == "__main__":
    from cbred.bench.cli import module_main

    raise SystemExit(module_main(main, "cbred.bench.ensemble"))
