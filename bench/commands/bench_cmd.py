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


def _configs(text: str) -> list[tuple[str, ...]]:
    """``naswot,synflow,naswot+synflow`` → one statistic or one ensemble per item."""
    items = [tuple(p.strip() for p in item.split("+")) for item in text.split(",") if item.strip()]
    if not items or any(not all(item) for item in items):
        raise argparse.ArgumentTypeError(
            f"expected e.g. 'naswot,synflow,naswot+synflow', got {text!r}"
        )
    return items


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
        help=f"statistics, '+' joins an ensemble (default {proxies})",
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
    parser.add_argument("--tournament", type=positive_int, default=5)


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


def _source(args: argparse.Namespace, configs: list[tuple[str, ...]]) -> ex.ScoreSource:
    names = sorted({name for config in configs for name in config})
    return ex.load_scores(args.scores, names, args.score_data, args.batch_size, args.seed)


def _subspace(args: argparse.Namespace):
    return ex.load_subspace(args.subspace) if args.subspace else None


def _notes(args: argparse.Namespace, source: ex.ScoreSource) -> list[str]:
    lines = [
        f"seeds: {args.seeds}; std over seeds with ddof=0",
        f"statistics scored on the {args.score_data} batch and evaluated on all three data sets",
        f"simulated cost: {args.stat_seconds:.4f} s per statistic evaluation",
    ]
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
    source, subspace = _source(args, args.score), _subspace(args)
    runs: list[ex.Runs] = []
    for config in args.score:
        for n in args.n:
            runs.append(ex.bestofn_runs(source, config, n, args.seeds, None, args.stat_seconds))
            if subspace is not None:
                runs.append(
                    ex.bestofn_runs(source, config, n, args.seeds, subspace, args.stat_seconds)
                )
    coverage = source.coverage(sorted({s for c in args.score for s in c}))
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
    source, subspace = _source(args, args.score), _subspace(args)
    runs = []
    for config in args.score:
        if len(config) != 1:
            raise ValueError(f"REA takes one statistic as fitness, got ensemble {'+'.join(config)}")
        for sub in (None, subspace) if subspace is not None else (None,):
            runs.append(
                ex.rea_runs(
                    source,
                    config[0],
                    args.evaluations,
                    args.seeds,
                    args.population,
                    args.tournament,
                    sub,
                    args.stat_seconds,
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
    for config in args.score:
        if config[0] in ex.COSSU_REA:
            print(
                f"published REA+{config[0]} (Cossu et al., 12-epoch validation accuracy, "
                f"C10/C100/IN16, not comparable): {ex.COSSU_REA[config[0]]}"
            )
    return 0


def run_area(args: argparse.Namespace) -> int:
    source, subspace = _source(args, args.score), _subspace(args)
    runs = []
    for config in args.score:
        if len(config) != 1:
            raise ValueError(f"AREA screens with one statistic, got ensemble {'+'.join(config)}")
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
                    config[0],
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
    source = _source(args, args.score)
    for line in _notes(args, source):
        print(f"# {line}")
    print(ex.correlation_markdown(source)[1])
    return 0


def run_acceptance(args: argparse.Namespace) -> int:
    n = args.evaluations
    largest = max(args.score, key=len)
    if n < len(largest):  # best-of-N of an ensemble spends len(config) evaluations per member
        raise ValueError(
            f"--evaluations {n} is fewer than the {len(largest)} statistics of the ensemble "
            f"{'+'.join(largest)} spend on one architecture"
        )
    if args.action == "report" and not args.out.strip():
        raise ValueError("--out '' names no folder; expected the report folder")
    source, subspace = _source(args, args.score), _subspace(args)
    runs = [
        ex.bestofn_runs(source, ("naswot",), m, args.seeds, None, args.stat_seconds)
        for m in (10, 100)
        if "naswot" in source.series
    ]
    for sub in (None, subspace) if subspace is not None else (None,):
        for config in args.score:
            # An ensemble computes every member statistic: N shrinks to stay within budget.
            m = n // len(config)
            runs.append(ex.bestofn_runs(source, config, m, args.seeds, sub, args.stat_seconds))
            if len(config) == 1:
                runs.append(
                    ex.rea_runs(
                        source,
                        config[0],
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
