"""``cbred search``: one search over any space or subspace — ``bestofn``, ``rea``, ``area``
(statistic screening, then accuracy-driven REA), and ``tenas`` (NB201 supernet pruning).

Each search action is one entry of :data:`SEARCH_ACTIONS` (name → function adding its
sub-parser). Statistics come from ``--scores`` (a table), the space's shipped table, or are
computed live; every search prints and saves how many evaluations it really made.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cbred._files import check_output_path, write_text
from cbred.bench.commands.common import (
    add_proxy_seed,
    add_tournament,
    check_dataset,
    open_space,
    positive_int,
    scoring_parent,
    seed_int,
    space_parent,
)
from cbred.bench.dataset_names import DATASETS, canonical_dataset
from cbred.bench.tenas.config import TenasConfig

_DEFAULTS = TenasConfig()
_SEARCH_SEED = "seed of the search's draws (the statistics' own is --proxy-seed)"


_positive = positive_int


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--subspace", help="search inside this subspace (cbred reduce --out)")
    p.add_argument(
        "--score",
        default="naswot",
        help="training-free statistic (fitness); 'a+b+c' a rank ensemble of several; or a "
        "named ensemble of `cbred proxies list` (recommended, recommended_search, vote, "
        "az_nas, vkdnw_agg) with its own "
        "aggregate",
    )
    p.add_argument(
        "--aggregate",
        default=None,
        help="how an 'a+b+c' ensemble combines its members' ranks among the evaluated "
        "architectures: mean_rank (default), log_rank or vote (strict majority)",
    )
    p.add_argument(
        "--scores",
        help="score table (.parquet/.csv) or score store (.db) with the statistic, read in "
        "--batch-size/--proxy-seed; 'none' to always compute live",
    )
    add_proxy_seed(p)
    p.add_argument(
        "--store",
        help="score store (cbred score) that live statistics are read from and written to: "
        "an interrupted search resumes, and searches in one setting share their work",
    )
    p.add_argument("--evaluations", type=positive_int, default=100, help="statistic evaluations")
    p.add_argument("--dataset", default="cifar10", help="data set whose accuracy is reported")
    p.add_argument("--out", help="write the result (best architecture, history) as JSON")


def register_bestofn(actions: argparse._SubParsersAction) -> None:
    p = actions.add_parser(
        "bestofn",
        parents=[space_parent(), scoring_parent(seed_help=_SEARCH_SEED)],
        help="best of N random members by a statistic (NASWOT Algorithm 1)",
    )
    _common(p)
    p.set_defaults(func=run_search, method="bestofn")


def register_rea(actions: argparse._SubParsersAction) -> None:
    p = actions.add_parser(
        "rea",
        parents=[space_parent(), scoring_parent(seed_help=_SEARCH_SEED)],
        help="regularised evolution with a statistic as fitness",
    )
    _common(p)
    p.add_argument("--population", type=positive_int, default=20)
    add_tournament(p)
    p.set_defaults(func=run_search, method="rea")


def register_area(actions: argparse._SubParsersAction) -> None:
    p = actions.add_parser(
        "area",
        parents=[space_parent(), scoring_parent(seed_help=_SEARCH_SEED)],
        help="AREA: screen with a statistic, then REA on benchmark accuracy",
    )
    _common(p)
    p.add_argument("--screen", type=positive_int, default=100, help="architectures screened")
    p.add_argument("--queries", type=positive_int, default=50, help="accuracy queries")
    p.add_argument("--population", type=positive_int, default=10)
    add_tournament(p)
    p.set_defaults(func=run_search, method="area")


def _objectives(args: argparse.Namespace, space: Any, names: list[str]) -> tuple[list, str]:
    """The statistics ``names`` as search objectives and where they come from: the space's
    analytic ``costs()`` (params, flops), ``--scores``, its shipped table when scored under
    ``--batch-size``/``--proxy-seed``, or live, all live members in one fused pass per
    architecture (kept in ``--store``)."""
    from cbred.reduce.pipeline import ANALYTIC_STATISTICS, load_score_table, space_score_table
    from cbred.reduce.search import TableObjective, live_objectives
    from cbred.reduce.space import space_name

    live_only = args.scores is not None and args.scores.lower() == "none"
    setting = {"batch_size": args.batch_size, "seed": args.proxy_seed}
    found: dict[str, tuple[Any, str]] = {}
    for name in names:
        if name in ANALYTIC_STATISTICS and callable(getattr(space, "costs", None)):
            costs = space.costs()[name]  # no weights, no batch: the same under every seed
            found[name] = TableObjective(name, dict(enumerate(costs))), "analytic"
            continue
        if args.scores and not live_only:
            values = load_score_table(args.scores, name, **setting, space=space_name(space))
            found[name] = TableObjective(name, values), f"table {Path(args.scores).name}"
            continue
        shipped = None if live_only else space_score_table(space, name, **setting)
        if shipped is not None and len(shipped) == len(space):
            found[name] = TableObjective(name, shipped), "shipped score table"
    rest = [n for n in names if n not in found]
    if rest:
        where = f"live, store {Path(args.store).name}" if args.store else "live"
        live = live_objectives(
            rest, space, args.batch_size, args.proxy_seed, args.device, args.store
        )
        found.update((o.name, (o, where)) for o in live)
    objectives = [found[n][0] for n in names]
    return objectives, ", ".join(sorted({found[n][1] for n in names}))


def run_search(args: argparse.Namespace) -> int:
    from cbred.reduce.search import (
        AccuracyObjective,
        Budget,
        area,
        best_of_n,
        regularized_evolution,
    )
    from cbred.reduce.space import space_name
    from cbred.reduce.subspace import Subspace

    if args.out:
        check_output_path(args.out)  # a bad --out fails now, not after the search
    space = open_space(args)
    check_dataset(space, args.dataset)
    where: Any = space
    if args.subspace:
        where = Subspace.from_file(args.subspace, space)
    from cbred.proxies.ensemble import parse_fitness

    members, aggregate = parse_fitness(args.score, args.aggregate)
    names = list(members)
    if len(names) > 1 and args.method == "area":
        raise ValueError(f"area screens with one statistic, got the ensemble {args.score!r}")
    if args.evaluations < len(names):
        raise ValueError(
            f"--evaluations {args.evaluations} is fewer than the {len(names)} statistics "
            f"of {args.score!r} spend on one architecture"
        )
    objectives, origin = _objectives(args, space, names)
    objective = objectives[0] if len(objectives) == 1 else objectives
    # every member statistic is evaluated for each architecture: N shrinks to stay in budget
    architectures = args.evaluations // len(names)
    budget = Budget(evaluations=architectures)
    if args.method == "bestofn":
        result = best_of_n(where, objective, architectures, args.seed, budget, aggregate)
    elif args.method == "rea":
        result = regularized_evolution(
            where,
            objective,
            budget,
            args.seed,
            args.population,
            args.tournament,
            aggregate=aggregate,
        )
    else:
        if not callable(getattr(space, "accuracy", None)):
            raise ValueError(
                f"area needs a space with accuracy(i, dataset); {args.space!r} has none"
            )
        if args.screen > args.evaluations:  # the screen is the statistic's whole budget
            raise ValueError(
                f"--screen {args.screen} is more than --evaluations {args.evaluations}, the "
                "statistic evaluations area may spend; lower --screen or raise --evaluations"
            )
        accuracy = AccuracyObjective(args.dataset, space=space)
        result = area(
            where,
            objective,
            accuracy,
            Budget(evaluations=args.queries),
            args.seed,
            screen_size=args.screen,
            population_size=args.population,
            tournament_size=args.tournament,
        )
    best = int(result.best)
    report: dict[str, Any] = {
        "method": args.method,
        "space": space_name(space),
        "space_spec": args.space,
        "subspace": args.subspace,
        "statistic": args.score,
        "members": names,
        "aggregate": aggregate if len(names) > 1 else None,
        "score_source": origin,
        "seed": args.seed,
        "proxy_seed": args.proxy_seed,
        "evaluations_budget": args.evaluations,
        "evaluations": int(result.evaluations) * len(names),
        "stop_reason": result.stop_reason,
        "best": best,
        "best_arch": space.arch_str(best),
        "best_value": float(result.best_value),
    }
    unavailable = ""
    if callable(getattr(space, "accuracy", None)):
        try:
            report["accuracy"] = {args.dataset: float(space.accuracy(best, args.dataset))}
        except (FileNotFoundError, KeyError, ValueError) as exc:  # no ground truth here
            unavailable = str(exc)
    print(
        f"search           {args.method} on {report['space']}"
        + (f" inside {args.subspace} ({len(where)} architectures)" if args.subspace else "")
    )
    members = f" = {aggregate}({', '.join(names)})" if len(names) > 1 else ""
    print(f"statistic        {args.score}{members} ({origin})")
    if args.method == "area":  # two phases: statistic screening, then accuracy queries
        screened = int((result.history["phase"] == "screen").sum())
        spent = f"{screened} statistic evaluations + {report['evaluations'] - screened} accuracy "
        spent += f"queries (of {args.screen} + {args.queries})"
        value_name = f"accuracy[{args.dataset}]"
    else:
        spent = f"{report['evaluations']} of {args.evaluations}"
        if len(names) > 1:
            spent += f" ({result.evaluations} architectures × {len(names)} statistics)"
        value_name = args.score if len(names) == 1 else f"{aggregate} among the evaluated"
    reason = f" ({result.stop_reason})" if result.stop_reason else ""
    print(f"evaluations      {spent}{reason}")
    print(f"best             #{best} {report['best_arch']}  {value_name}={result.best_value:.6g}")
    if "accuracy" in report:
        print(f"accuracy         {report['accuracy'][args.dataset]:.2f} ({args.dataset})")
    elif unavailable:
        print(f"accuracy         unavailable: {unavailable}")
    if args.out:
        report["history"] = result.history.to_dict(orient="list")
        write_text(args.out, json.dumps(report, indent=1, default=float) + "\n")
        print(f"result           -> {args.out}")
    return 0


def register_tenas(actions: argparse._SubParsersAction) -> None:
    """Add ``tenas`` to the ``search`` actions."""
    p = actions.add_parser(
        "tenas",
        help="TE-NAS: prune the NB201 supernet by NTK condition number and linear regions",
        description="Training-free pruning search (Chen et al., ICLR 2021) on the NB201 "
        "supernet. Measurements use the bundled CIFAR-10 images; --dataset sets the "
        "classifier width and the data set whose benchmark accuracy is reported.",
    )
    p.add_argument("--dataset", default="cifar10", help=f"one of {', '.join(DATASETS)}")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of every random choice")
    p.add_argument(
        "--repeats", type=_positive, default=_DEFAULTS.repeats, help="measurements averaged"
    )
    p.add_argument(
        "--ntk-channels", type=_positive, default=_DEFAULTS.ntk_channels, help="NTK supernet C"
    )
    p.add_argument(
        "--ntk-cells", type=_positive, default=_DEFAULTS.ntk_cells, help="NTK supernet N"
    )
    p.add_argument(
        "--ntk-batch", type=_positive, default=_DEFAULTS.ntk_batch, help="images in the NTK"
    )
    p.add_argument(
        "--ntk-resolution",
        type=_positive,
        default=_DEFAULTS.ntk_resolution,
        help="image side the NTK batch is pooled to",
    )
    p.add_argument(
        "--lr-samples",
        type=_positive,
        default=_DEFAULTS.lr_samples,
        help="input patches for the linear-region count",
    )
    p.add_argument("--keep-none", action="store_true", help="rank `none` like any other op")
    p.add_argument("--nats-path", help="official NATS-Bench file (default: bundled table)")
    p.add_argument(
        "--threads",
        type=_positive,
        default=1,
        help="torch CPU threads (default 1: the supernets are small, extra threads only contend)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run_tenas)


SEARCH_ACTIONS: dict[str, Callable[[argparse._SubParsersAction], None]] = {
    "bestofn": register_bestofn,
    "rea": register_rea,
    "area": register_area,
    "tenas": register_tenas,
}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("search", help="search an architecture space")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for add in SEARCH_ACTIONS.values():
        add(actions)


def run_tenas(args: argparse.Namespace) -> int:
    import torch
    from cbred.bench.ground_truth import load_ground_truth
    from cbred.bench.nb201 import NB201Space
    from cbred.bench.tenas import tenas_search

    dataset = canonical_dataset(args.dataset)
    config = TenasConfig(
        ntk_channels=args.ntk_channels,
        ntk_cells=args.ntk_cells,
        ntk_batch=args.ntk_batch,
        ntk_resolution=args.ntk_resolution,
        lr_samples=args.lr_samples,
        repeats=args.repeats,
        drop_none=not args.keep_none,
    )
    space = NB201Space()
    truth = load_ground_truth(args.nats_path, space)  # a bad --nats-path fails before the search
    torch.set_num_threads(args.threads)
    result = tenas_search(args.seed, dataset, config)
    accuracy = {d: truth.accuracy(result.arch, d) for d in DATASETS}
    if args.json:
        out = {**result.to_dict(), "index": space.index(result.arch), "dataset": dataset}
        print(json.dumps({**out, "accuracy": accuracy}, indent=1))
        return 0
    print(f"arch             {result.arch}")
    print(f"index            {space.index(result.arch)}")
    print(f"accuracy         {accuracy[dataset]:.2f} ({dataset} test, 200 epochs)")
    others = ", ".join(f"{d} {a:.2f}" for d, a in accuracy.items() if d != dataset)
    print(f"other data sets  {others}")
    print(f"search time      {result.seconds:.1f} s wall, {result.cpu_seconds:.1f} s CPU")
    print("pruning trace:")
    for line in result.trace_lines():
        print(f"  {line}")
    return 0
