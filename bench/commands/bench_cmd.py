"""``cbred bench``: search experiments that reproduce the published NB201 tables.

Each action prints our mean ± std over seeds next to the published figure; statistic
values come from score sources (``--scores``: a score store ``.db`` or its Parquet/CSV
export or a wide table), so repeated runs cost nothing.
"""

from __future__ import annotations

import argparse

import numpy as np
from cbred.bench.commands.common import (
    MAX_COUNT,
    add_tournament,
    dataset_name,
    lazy_module,
    non_negative_float,
    positive_float,
    positive_int,
    seed_int,
)
from cbred.reduce.names import PROXY_SECONDS, TRAIN_SECONDS

ex = lazy_module("cbred.bench.experiments")  # loaded on first use: `--help` stays fast


def _ints(text: str) -> list[int]:
    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values or min(values) < 1 or max(values) > MAX_COUNT:
        raise argparse.ArgumentTypeError(
            f"expected positive integers up to {MAX_COUNT}, got {text!r}"
        )
    return values


def _configs(text: str) -> list[str]:
    """``naswot,synflow,naswot+synflow,recommended`` → one fitness per item: a statistic,
    statistics joined by '+', or a named ensemble (resolved by :func:`_fitnesses`)."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise argparse.ArgumentTypeError(
            f"expected e.g. 'naswot,synflow,naswot+synflow,recommended', got {text!r}"
        )
    return items


Fitness = tuple[tuple[str, ...], str]
"""A fitness: its member statistics and how their ranks combine."""


def _fitnesses(args: argparse.Namespace) -> list[Fitness]:
    """``--score``'s items as (members, aggregate); '+' items combine by ``--aggregate``,
    named ensembles (one item of the list) by their own."""
    from cbred.proxies.ensemble import ENSEMBLES, parse_fitness  # imports torch: at run time

    return [
        parse_fitness(item, None if item in ENSEMBLES else args.aggregate) for item in args.score
    ]


def _common(parser: argparse.ArgumentParser, proxies: str) -> None:
    parser.add_argument(
        "--scores",
        action="append",
        default=[],
        metavar="SOURCE",
        help="score store (.db) or Parquet/CSV table; repeatable (first source with a "
        "statistic wins); then the shipped NB201 table; params/flops are analytic",
    )
    parser.add_argument(
        "--score",
        type=_configs,
        default=_configs(proxies),
        help="statistics; '+' joins an ensemble, combined by --aggregate; a named ensemble "
        f"of `cbred proxies list` (recommended, recommended_search, vote, az_nas, vkdnw_agg) "
        f"(default {proxies})",
    )
    parser.add_argument(
        "--aggregate",
        default=None,
        help="how a '+' ensemble combines its members' ranks among the evaluated "
        "architectures: mean_rank (default), log_rank or vote",
    )
    parser.add_argument("--seeds", type=positive_int, default=10, help="seeds 0..S-1 (default 10)")
    parser.add_argument("--subspace", help="also search inside this subspace (cbred reduce --out)")
    parser.add_argument(
        "--score-data",
        type=dataset_name,
        default="cifar10",
        help="data set of the scoring batch (store filter)",
    )
    parser.add_argument("--batch-size", type=positive_int, default=None, help="store filter")
    parser.add_argument("--seed", type=seed_int, default=None, help="store filter: scoring seed")
    parser.add_argument(
        "--stat-seconds",
        type=non_negative_float,
        default=PROXY_SECONDS,
        help=f"simulated seconds per statistic evaluation (default {PROXY_SECONDS:.4f}: "
        "NASWOT's published 306.19 s per 1000)",
    )


def _evolution(parser: argparse.ArgumentParser, population: int) -> None:
    parser.add_argument("--population", type=positive_int, default=population)
    add_tournament(parser)


def _trained(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=positive_float, default=12000.0, help="simulated budget")
    parser.add_argument(
        "--train-seconds",
        type=positive_float,  # 0 s per query would make the seconds budget endless
        default=TRAIN_SECONDS,
        help=f"simulated seconds per accuracy query (default {TRAIN_SECONDS:g}; an "
        "assumption, the bundled data has no training times)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("bench", help="search experiments beside the published NB201 tables")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = actions.add_parser("bestofn", help="best-of-N by a statistic (NASWOT Algorithm 1)")
    _common(p, "naswot")
    p.add_argument("--n", type=_ints, default=[10, 100, 1000], help="N values (10,100,1000)")
    p.set_defaults(func=run_bestofn)

    p = actions.add_parser("rea", help="REA with a statistic (or accuracy) as fitness")
    _common(p, "naswot,synflow")
    _evolution(p, 20)
    p.add_argument("--evaluations", type=positive_int, default=1000, help="statistic evaluations")
    p.add_argument("--accuracy", action="store_true", help="also the trained REA baseline")
    _trained(p)
    p.set_defaults(func=run_rea)

    p = actions.add_parser("area", help="AREA: statistic screening, then accuracy-driven REA")
    _common(p, "naswot")
    _evolution(p, 10)
    p.add_argument("--screen", type=positive_int, default=1000, help="architectures screened (M)")
    _trained(p)
    p.set_defaults(func=run_area)

    p = actions.add_parser("correlation", help="statistic vs accuracy rank correlations")
    _common(p, "params,flops,naswot,synflow")
    p.set_defaults(func=run_correlation)

    for name, help_text in (
        ("acceptance", "the acceptance table: best training-free search vs NASWOT N=1000"),
        ("report", "everything, written as a Markdown report with plots"),
    ):
        p = actions.add_parser(name, help=help_text)
        _common(p, "params,naswot,synflow,naswot+synflow,naswot+params")
        _evolution(p, 20)
        p.add_argument(
            "--evaluations", type=positive_int, default=1000, help="statistic evaluations"
        )
        if name == "report":
            p.add_argument("--out", required=True, help="report folder")
            _trained(p)
        p.set_defaults(func=run_acceptance)


def _source(args: argparse.Namespace, configs: list[Fitness]) -> ex.ScoreSource:
    names = sorted({name for members, _ in configs for name in members})
    return ex.load_scores(args.scores, names, args.score_data, args.batch_size, args.seed)


def _subspace(args: argparse.Namespace):
    return ex.load_subspace(args.subspace) if args.subspace else None


def _notes(args: argparse.Namespace, source: ex.ScoreSource, searches: bool = True) -> list[str]:
    """The header lines: the searches' seeds and simulated cost (when ``searches``), where
    the statistics were scored and how much of the space each covers."""
    lines = [
        f"statistics scored on the {args.score_data} batch and evaluated on all three data sets"
    ]
    if searches:
        lines.insert(0, f"seeds: {args.seeds}; std over seeds with ddof=0")
        lines.append(f"simulated cost: {args.stat_seconds:.4f} s per statistic evaluation")
    if hasattr(args, "train_seconds"):
        lines.append(
            f"trained baselines: {args.train_seconds:g} s charged per accuracy query "
            "(assumption); fitness is the 200-epoch test accuracy itself (no validation split "
            "or 12-epoch results are bundled), so our trained rows are optimistic upper bounds "
            "of the published ones, which select by noisy 12-epoch validation accuracy"
        )
    for name, values in source.series.items():
        share = len(values) / 15625
        lines.append(
            f"coverage of {name}: {len(values)} of 15625 ({share:.1%}) from {source.origin[name]}"
        )
    return lines


def _print(runs: list[ex.Runs], notes: list[str], source: ex.ScoreSource) -> None:
    for line in notes:
        print(f"# {line}")
    print(ex.results_table(runs))
    verdicts = ex.reproduction_verdicts(runs)
    if verdicts:
        print("\nreproduction:")
        for line in verdicts:
            print(f"  {line}")
    if any(r.label.startswith("naswot best-of-") for r in runs):
        print("\nevidence on the gaps:")
        for line in ex.gap_evidence(runs, ex.correlation_markdown(source)[0]):
            print(f"  {line}")


def _references(n: int, seeds: int, coverage: np.ndarray) -> list[ex.Runs]:
    """Random (N=1) and optimal-N references on the same architectures."""
    return [ex.oracle_runs(1, seeds, coverage), ex.oracle_runs(n, seeds, coverage)]


def run_bestofn(args: argparse.Namespace) -> int:
    configs = _fitnesses(args)
    source, subspace = _source(args, configs), _subspace(args)
    runs: list[ex.Runs] = []
    for members, aggregate in configs:
        for n in args.n:
            for sub in (None, subspace) if subspace is not None else (None,):
                runs.append(
                    ex.bestofn_runs(
                        source, members, n, args.seeds, sub, args.stat_seconds, aggregate
                    )
                )
    coverage = source.coverage(sorted({s for members, _ in configs for s in members}))
    for n in (n for n in args.n if n > 1):
        runs.append(ex.oracle_runs(n, args.seeds, coverage))
    runs.insert(0, ex.oracle_runs(1, args.seeds, coverage))
    _print(runs, _notes(args, source), source)
    small = [n for n in args.n if n > 0.2 * len(coverage)]
    if small:
        print(
            f"\nnote: N={small} exceed 20% of the {len(coverage)} covered architectures; "
            "seeds then share most candidates and the std shrinks"
        )
    return 0


def run_rea(args: argparse.Namespace) -> int:
    configs = _fitnesses(args)
    source, subspace = _source(args, configs), _subspace(args)
    runs = []
    for members, aggregate in configs:
        for sub in (None, subspace) if subspace is not None else (None,):
            runs.append(
                ex.rea_runs(
                    source,
                    members,
                    args.evaluations,
                    args.seeds,
                    args.population,
                    args.tournament,
                    sub,
                    args.stat_seconds,
                    aggregate,
                )
            )
    if args.accuracy:
        runs.append(
            ex.trained_runs(
                "rea",
                args.seconds,
                args.seeds,
                args.train_seconds,
                args.population,
                args.tournament,
            )
        )
    _print(runs, _notes(args, source), source)
    for members, _ in configs:
        if len(members) == 1 and members[0] in ex.COSSU_REA:
            print(
                f"published REA+{members[0]} (Cossu et al., 12-epoch validation accuracy, "
                f"C10/C100/IN16, not comparable): {ex.COSSU_REA[members[0]]}"
            )
    return 0


def run_area(args: argparse.Namespace) -> int:
    configs = _fitnesses(args)
    for item, (members, _) in zip(args.score, configs):
        if len(members) != 1:
            raise ValueError(f"AREA screens with one statistic, got the ensemble {item!r}")
    source, subspace = _source(args, configs), _subspace(args)
    runs = []
    for (statistic,), _ in configs:
        for sub in (None, subspace) if subspace is not None else (None,):
            runs.append(
                ex.trained_runs(
                    "area",
                    args.seconds,
                    args.seeds,
                    args.train_seconds,
                    args.population,
                    args.tournament,
                    source,
                    statistic,
                    args.screen,
                    sub,
                )
            )
    runs.append(ex.trained_runs("rea", args.seconds, args.seeds, args.train_seconds, 10, 5))
    _print(runs, _notes(args, source), source)
    print(
        "published AREA (validation accuracy, C10/C100/IN16): 91.20±0.27 / 71.95±0.99 / 45.70±1.05"
    )
    return 0


def run_correlation(args: argparse.Namespace) -> int:
    configs = _fitnesses(args)
    source = _source(args, configs)
    for line in _notes(args, source, searches=False):
        print(f"# {line}")
    # a named ensemble keeps its name (and its published figures); 'a+b' is labelled by its parts
    from cbred.proxies.ensemble import ENSEMBLES

    labelled = [
        (item if item in ENSEMBLES else ex.config_label(members, aggregate), members, aggregate)
        for item, (members, aggregate) in zip(args.score, configs)
    ]
    print(ex.correlation_markdown(source, labelled)[1])
    return 0


def run_acceptance(args: argparse.Namespace) -> int:
    n = args.evaluations
    configs = _fitnesses(args)
    largest = max(configs, key=lambda config: len(config[0]))[0]
    if n < len(largest):  # best-of-N of an ensemble spends len(members) evaluations per member
        raise ValueError(
            f"--evaluations {n} is fewer than the {len(largest)} statistics of the ensemble "
            f"{'+'.join(largest)} spend on one architecture"
        )
    if args.action == "report" and not args.out.strip():
        raise ValueError("--out '' names no folder; expected the report folder")
    source, subspace = _source(args, configs), _subspace(args)
    runs = [
        ex.bestofn_runs(source, ("naswot",), m, args.seeds, None, args.stat_seconds)
        for m in (10, 100)
        if "naswot" in source.series
    ]
    for sub in (None, subspace) if subspace is not None else (None,):
        for members, aggregate in configs:
            # An ensemble computes every member statistic: N shrinks to stay within budget.
            m = n // len(members)
            runs.append(
                ex.bestofn_runs(source, members, m, args.seeds, sub, args.stat_seconds, aggregate)
            )
            if len(members) == 1:
                runs.append(
                    ex.rea_runs(
                        source,
                        members[0],
                        n,
                        args.seeds,
                        args.population,
                        args.tournament,
                        sub,
                        args.stat_seconds,
                    )
                )
    runs += _references(100, args.seeds, np.arange(15625))
    notes = _notes(args, source)
    if args.action == "report":
        runs.append(ex.trained_runs("rea", args.seconds, args.seeds, args.train_seconds))
    _, lines = ex.acceptance(runs, n, min(len(v) for v in source.series.values()))
    if args.action == "report":  # the same verdict in the report as on the console
        path = ex.write_report(args.out, runs, source, notes, lines)
        print(f"report written to {path}")
    _print(runs, notes, source)
    print()
    for line in lines:
        print(line)
    return 0
