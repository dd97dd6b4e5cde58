"""``cbred reduce``: C-BRED — cluster a search space and keep its best cluster(s).

Works on any ``--space``: the features are the space's own (NB201: graph op usage from
templates) or traced from every ``build(i)``; the statistic comes from a score table, the
space's shipped table, or is computed live on at most ``--evaluations`` members.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from cbred.bench.commands.common import (
    add_proxy_seed,
    check_dataset,
    non_negative_int,
    open_space,
    positive_int,
    scoring_parent,
    space_parent,
)
from cbred.bench.dataset_names import DATASETS
from cbred.reduce.names import (
    ALLOCATIONS,
    CLUSTERER_NAMES,
    CRITERIA,
    DEFAULT_FEATURES,
    DISTANCES,
    LIVE_MEMBERS,
)
from cbred.reduce.space import space_name


def _k_range(text: str) -> range:
    """``8`` (fixed K) or ``2:30`` (candidates 2..30 inclusive), as a range: ``2:10**11``
    costs nothing until it is checked against the number of points."""
    low, sep, high = text.partition(":")
    try:
        values = range(int(low), int(high) + 1) if sep else range(int(low), int(low) + 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K or LOW:HIGH, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected LOW <= HIGH in LOW:HIGH, got {text!r}")
    if values[0] < 2:
        raise argparse.ArgumentTypeError(f"K must be at least 2, got {text!r}")
    return values


def _scoring(text: str) -> str:
    """A cluster scoring function's name, checked (``quantile:0.75``, not ``q0.75``)."""
    from cbred.reduce.scoring import parse_scoring

    try:
        parse_scoring(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _budget(text: str) -> float | int:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a share in (0, 1) or a count, got {text!r}"
        ) from None
    return int(value) if value >= 1 and value.is_integer() else value


class _Truth:
    """A space's accuracies in the shape the report reads (``accuracies(dataset)``)."""

    def __init__(self, space: object) -> None:
        self.space = space

    def accuracies(self, dataset: str) -> np.ndarray:
        own = getattr(self.space, "accuracies", None)
        if callable(own):
            return np.asarray(own(dataset), dtype=np.float64)
        values = [self.space.accuracy(i, dataset) for i in range(len(self.space))]
        return np.asarray(values, dtype=np.float64)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "reduce",
        parents=[
            space_parent(),
            scoring_parent(
                seed_help="seed of the clustering and of the members scored (the "
                "statistic's own is --proxy-seed)"
            ),
        ],
        help="C-BRED: cluster a space and keep the best cluster",
        description="Cluster every architecture of --space by its graph features (no forward "
        "passes), score the clusters with a training-free statistic on sampled members, and "
        "write the best cluster(s) as a subspace.",
    )
    parser.add_argument(
        "--features",
        default=DEFAULT_FEATURES,
        help="what the clustering sees: op_usage (default), flops_usage, params_usage, "
        "kernel_shapes (cgraph.features), or a space's own (NB201: cell)",
    )
    parser.add_argument("--distance", choices=DISTANCES, default="hellinger")
    parser.add_argument(
        "--cluster",
        choices=CLUSTERER_NAMES,
        default=None,
        help="clusterer (default kmeans; kmedoids for --distance edit)",
    )
    parser.add_argument(
        "--k",
        type=_k_range,
        default=None,
        help="fixed K or LOW:HIGH candidates for selection (default 2:floor(sqrt(N)))",
    )
    parser.add_argument(
        "--eta", type=float, nargs="+", help="spectral affinity scale(s) (default: quantiles)"
    )
    parser.add_argument(
        "--neighbors", type=positive_int, help="spectral: k-NN affinity graph instead"
    )
    parser.add_argument("--criterion", choices=CRITERIA, default="silhouette")
    parser.add_argument("--score", default="naswot", help="training-free statistic")
    parser.add_argument(
        "--scores",
        help="score table (.parquet/.csv) with the statistic; 'none' to ignore the space's "
        "shipped table and compute live",
    )
    add_proxy_seed(parser)
    parser.add_argument(
        "--store",
        help="score store (cbred score) that live statistics are read from and written to: a "
        "rerun computes nothing twice (the values still count as evaluations)",
    )
    parser.add_argument(
        "--evaluations",
        type=positive_int,
        help="at most this many architectures scored, spread over the clusters (K <= it)",
    )
    parser.add_argument(
        "--allocation",
        choices=ALLOCATIONS,
        default="uniform",
        help="how --evaluations are spread: evenly, or by successive halving over clusters",
    )
    parser.add_argument(
        "--f",
        type=_scoring,
        default="median",
        help="cluster scoring function: median, mean_rank, quantile:Q or share_above:Q "
        "(0 < Q < 1), e.g. quantile:0.75",
    )
    parser.add_argument(
        "--m",
        type=non_negative_int,
        help="members scored per cluster (0 = all; default all from a table, "
        f"{LIVE_MEMBERS} when computed live)",
    )
    parser.add_argument("--budget", type=_budget, help="keep clusters up to this size/share")
    parser.add_argument(
        "--dataset",
        default="cifar100",
        help="data set whose accuracies evaluate the subspace in the report (never to choose)",
    )
    parser.add_argument("--out", default="subspace.json", help="subspace file (.json or .csv)")
    parser.add_argument("--report", default=None, metavar="DIR", help="write a report here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cbred._files import check_output_path, output_folder
    from cbred.reduce.cluster import make_clusterer
    from cbred.reduce.pipeline import (
        ProxyScorer,
        default_k,
        reduce_space,
        score_source,
        space_features,
        space_points,
    )
    from cbred.reduce.report import evaluate_subspace, write_report

    if args.cluster is None:
        args.cluster = "kmedoids" if args.distance == "edit" else "kmeans"
    if not args.out.endswith((".json", ".csv")):
        raise ValueError(f"--out {args.out!r} must end in .json or .csv")
    check_output_path(args.out)  # a missing folder fails now, not after the reduction
    if args.report:
        output_folder(args.report)  # a file in the way fails now, not after the work
    total = time.perf_counter()
    space = open_space(args)
    check_dataset(space, args.dataset)
    start = time.perf_counter()
    points = space_points(space, args.distance, args.features)
    described = (
        "per-position codes (exact edit distance)"
        if args.distance == "edit"
        else f"{args.features} feature vectors"
    )
    features_seconds = time.perf_counter() - start

    start = time.perf_counter()
    live_only = args.scores is not None and args.scores.lower() == "none"
    scores, origin = score_source(
        args.score,
        space,
        table=None if live_only else args.scores,
        use_space_table=not live_only,
        batch_size=args.batch_size,
        seed=args.proxy_seed,
        device=args.device,
        store=args.store,
    )
    score_setup = time.perf_counter() - start
    computed = isinstance(scores, ProxyScorer)
    if args.m is not None and args.m < 0:
        raise ValueError(f"--m must be >= 0, got {args.m}")
    if args.m is None:
        m = LIVE_MEMBERS if computed and args.evaluations is None else None
    else:
        m = args.m or None
    fixed = args.k is not None and len(args.k) == 1
    if args.k is not None and args.k[-1] > len(points):
        shown = f"{args.k[0]}:{args.k[-1]}" if len(args.k) > 1 else str(args.k[0])
        raise ValueError(
            f"--k {shown} asks for up to {args.k[-1]} clusters, more than the {len(points)} "
            "distinct points of the space"
        )
    params: dict[str, object] = {"seed": args.seed}
    if fixed:
        params["n_clusters"] = args.k[0]
    if args.cluster == "spectral":
        params["n_neighbors"] = args.neighbors
        if fixed and args.eta:
            params["eta"] = args.eta[0]
    elif args.neighbors is not None:
        raise ValueError(f"--neighbors applies to spectral clustering, not {args.cluster}")
    k_values = None if fixed else list(args.k or default_k(len(space)))
    reduction = reduce_space(
        space,
        distance=args.distance,
        cluster=make_clusterer(args.cluster, **params),
        scores=scores,
        statistic=args.score,
        f=args.f,
        m=m,
        seed=args.seed,
        budget=args.budget,
        features=args.features,
        k_values=k_values,
        eta_values=args.eta if args.cluster == "spectral" else None,
        criterion=args.criterion,
        points=points,
        evaluations=args.evaluations,
        allocation=args.allocation,
    )
    reduction.timings["features+distance"] = features_seconds
    subspace = reduction.subspace
    subspace.provenance["space_spec"] = args.space
    subspace.provenance["score_source"] = origin
    subspace.provenance["proxy_setting"] = {"batch_size": args.batch_size, "seed": args.proxy_seed}
    (subspace.to_csv if args.out.endswith(".csv") else subspace.to_json)(args.out)
    timings = {"score source": score_setup, **reduction.timings}

    provenance = subspace.provenance
    print(
        f"space            {space_name(space)}: {len(reduction.labels)} architectures, "
        f"{len(points)} distinct {described}"
    )
    print(
        f"clustering       {args.cluster} on {args.distance}, K={provenance['n_clusters']}, "
        f"eta={provenance['eta']}"
    )
    if reduction.selection is not None:
        print(
            f"selection        {reduction.selection.criterion} over "
            f"{len(reduction.selection.curve)} candidates"
        )
    spent = ""
    if computed:
        evaluated, fresh = provenance["scored_live"], provenance["computed_live"]
        read = f", {evaluated - fresh} read from the store" if fresh < evaluated else ""
        spent = f", {evaluated} evaluated live ({fresh} computed{read})"
    members = "all" if m is None and args.evaluations is None else (m or "spread")
    print(
        f"scoring          f={provenance['f']} of {args.score} ({origin}), m={members}, "
        f"{provenance['scored']} architectures read{spent}"
    )
    print(
        f"subspace         {len(subspace)} architectures "
        f"({len(subspace) / len(reduction.labels):.1%}), clusters {reduction.selected} "
        f"-> {args.out}"
    )
    if args.report:
        start = time.perf_counter()
        has_truth = callable(getattr(space, "accuracy", None))
        truth = _Truth(space) if has_truth else None
        datasets = (args.dataset, *[d for d in DATASETS if d != args.dataset])
        counts, names = (
            space_features(space, args.features) if args.distance != "edit" else (None, None)
        )
        path = write_report(
            reduction, args.report, counts, names, truth, datasets if has_truth else (), args.score
        )
        timings["report"] = time.perf_counter() - start
        if truth is not None:
            row = evaluate_subspace(subspace.indices, truth, [args.dataset])
            whole = evaluate_subspace(np.arange(len(reduction.labels)), truth, [args.dataset])
            d = args.dataset
            print(
                f"evaluation       {d} mean {row[f'{d}_mean']:.2f} "
                f"(space {whole[f'{d}_mean']:.2f}), max {row[f'{d}_max']:.2f}, "
                f"top-1% kept {row[f'{d}_top_kept']:.1%} (accuracies not used to choose)"
            )
        print(f"report           {path}")
    timings["total"] = time.perf_counter() - total
    print("stage seconds    " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))
    return 0
