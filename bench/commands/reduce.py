"""``cbred reduce``: C-BRED — cluster a search space and keep its best cluster(s)."""

from __future__ import annotations

import argparse
import time

import numpy as np
from cbred.bench.ground_truth import DATASETS, canonical_dataset, load_ground_truth
from cbred.reduce.cluster import CLUSTERERS, make_clusterer
from cbred.reduce.pipeline import (
    DEFAULT_K,
    DISTANCES,
    FEATURES,
    LIVE_MEMBERS,
    ProxyScorer,
    nb201_op_counts,
    nb201_points,
    reduce_nb201,
    score_source,
)
from cbred.reduce.report import evaluate_subspace, write_report
from cbred.reduce.select import CRITERIA

SPACES = ("nb201",)


def _k_range(text: str) -> list[int]:
    """``8`` (fixed K) or ``2:30`` (candidates 2..30 inclusive)."""
    low, sep, high = text.partition(":")
    try:
        values = list(range(int(low), int(high) + 1)) if sep else [int(low)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K or LOW:HIGH, got {text!r}") from None
    if not values or min(values) < 2:
        raise argparse.ArgumentTypeError(f"K must be at least 2, got {text!r}")
    return values


def _budget(text: str) -> float | int:
    value = float(text)
    return int(value) if value >= 1 and value.is_integer() else value


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "reduce",
        help="cluster a space by computational-graph distance and keep the best cluster",
        description="C-BRED: choose K (and eta) without labels, cluster the architectures, "
        "score each cluster by a training-free statistic, write the best as a subspace.",
    )
    parser.add_argument("--space", choices=SPACES, default="nb201")
    parser.add_argument(
        "--dataset",
        default="cifar100",
        help="data set the report evaluates against (default cifar100)",
    )
    parser.add_argument(
        "--features",
        choices=FEATURES,
        default="graph",
        help="op usage of the traced graph or of the NB201 cell",
    )
    parser.add_argument("--distance", choices=DISTANCES, default="hellinger")
    parser.add_argument(
        "--cluster",
        choices=tuple(CLUSTERERS),
        default=None,
        help="default: kmeans (exact for Hellinger), kmedoids for the edit distance",
    )
    parser.add_argument(
        "--k",
        type=_k_range,
        default=None,
        metavar="K|LOW:HIGH",
        help=f"fixed K or the candidates for selection (default {DEFAULT_K[0]}:{DEFAULT_K[-1]})",
    )
    parser.add_argument(
        "--eta",
        type=float,
        action="append",
        default=None,
        help="affinity scale(s) for spectral clustering (repeatable; default: "
        "quantiles of the distances)",
    )
    parser.add_argument(
        "--neighbors",
        type=int,
        default=None,
        help="spectral: sparse k-nearest-neighbour affinity with this many neighbours",
    )
    parser.add_argument("--criterion", choices=CRITERIA, default="silhouette")
    parser.add_argument("--score", default="naswot", help="training-free statistic")
    parser.add_argument(
        "--scores",
        default=None,
        metavar="TABLE",
        help="Parquet/CSV score table (store export or wide); default: "
        "params/flops analytically, other statistics via the proxies API",
    )
    parser.add_argument(
        "--f",
        default="median",
        help="cluster scoring: median, mean_rank, quantile:Q, share_above:Q",
    )
    parser.add_argument(
        "--m",
        type=int,
        default=None,
        help="members scored per cluster (0: all); default all for statistics read from a "
        f"table, {LIVE_MEMBERS} for statistics computed through the proxies API",
    )
    parser.add_argument(
        "--budget",
        type=_budget,
        default=None,
        help="keep the best clusters up to this share (<1) or count",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--proxy-dataset",
        default="cifar10",
        help="batch for the statistic (default: the bundled CIFAR-10 sample)",
    )
    # On-demand scoring uses a reduced network (8 channels, 1 cell per stage, batch 32)
    # so that a CPU run takes minutes; a score table, when there is one, comes first.
    parser.add_argument("--proxy-batch-size", type=int, default=32)
    parser.add_argument("--proxy-channels", type=int, default=8)
    parser.add_argument("--proxy-cells", type=int, default=1, help="cells per stage")
    parser.add_argument("--out", default="subspace.json", help="subspace file (.json or .csv)")
    parser.add_argument("--report", default=None, metavar="DIR", help="write a report here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    dataset = canonical_dataset(args.dataset)
    if args.cluster is None:
        args.cluster = "kmedoids" if args.distance == "edit" else "kmeans"
    if not args.out.endswith((".json", ".csv")):
        raise ValueError(f"--out {args.out!r} must end in .json or .csv")
    total = time.perf_counter()
    start = time.perf_counter()
    counts, op_names = nb201_op_counts(args.features)  # the report's op-usage plots
    points = nb201_points(args.distance, args.features)
    described = (
        "cells (exact edit distance)"
        if args.distance == "edit"
        else f"{args.features} op-usage vectors"
    )
    features_seconds = time.perf_counter() - start

    start = time.perf_counter()
    scores, origin = score_source(
        args.score,
        table=args.scores,
        dataset=canonical_dataset(args.proxy_dataset),
        batch_size=args.proxy_batch_size,
        seed=args.seed,
        channels=args.proxy_channels,
        cells_per_stage=args.proxy_cells,
    )
    score_setup = time.perf_counter() - start
    computed = isinstance(scores, ProxyScorer)
    m = (LIVE_MEMBERS if computed else None) if args.m is None else (args.m or None)
    fixed = args.k is not None and len(args.k) == 1
    params: dict[str, object] = {"seed": args.seed}
    if fixed:
        params["n_clusters"] = args.k[0]
    if args.cluster == "spectral":
        params["n_neighbors"] = args.neighbors
        if fixed and args.eta:
            params["eta"] = args.eta[0]
    elif args.neighbors is not None:
        raise ValueError(f"--neighbors applies to spectral clustering, not {args.cluster}")
    reduction = reduce_nb201(
        distance=args.distance,
        cluster=make_clusterer(args.cluster, **params),
        scores=scores,
        statistic=args.score,
        f=args.f,
        m=m,
        seed=args.seed,
        budget=args.budget,
        features=args.features,
        k_values=None if fixed else (args.k or DEFAULT_K),
        eta_values=args.eta if args.cluster == "spectral" else None,
        criterion=args.criterion,
        points=points,
    )
    reduction.timings["features+distance"] = features_seconds
    subspace = reduction.subspace
    (subspace.to_csv if args.out.endswith(".csv") else subspace.to_json)(args.out)
    timings = {"score source": score_setup, **reduction.timings}

    provenance = subspace.provenance
    print(
        f"space            {args.space}: {len(reduction.labels)} architectures, "
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
    print(f"scoring          f={provenance['f']} of {args.score} ({origin}), m={m or 'all'}")
    print(
        f"subspace         {len(subspace)} architectures "
        f"({len(subspace) / len(reduction.labels):.1%}), clusters {reduction.selected} "
        f"-> {args.out}"
    )
    if args.report:
        start = time.perf_counter()
        truth = load_ground_truth()
        datasets = (dataset, *[d for d in DATASETS if d != dataset])
        path = write_report(reduction, args.report, counts, op_names, truth, datasets, args.score)
        timings["report"] = time.perf_counter() - start
        row = evaluate_subspace(subspace.indices, truth, datasets)
        whole = evaluate_subspace(np.arange(len(reduction.labels)), truth, datasets)
        print(
            f"evaluation       {dataset} mean {row[f'{dataset}_mean']:.2f} "
            f"(space {whole[f'{dataset}_mean']:.2f}), max {row[f'{dataset}_max']:.2f}, "
            f"top-1% kept {row[f'{dataset}_top_kept']:.1%} (accuracies not used to choose)"
        )
        print(f"report           {path}")
    timings["total"] = time.perf_counter() - total
    print("stage seconds    " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))
    return 0
