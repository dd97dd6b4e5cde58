"""C-BRED acceptance table and stage timings on NAS-Bench-201.

``python -m cbred.bench.perf_reduce`` prints, for every distance × clusterer × statistic ×
cluster scoring function, the selected subspace's size and share of the space, its
mean and max test accuracy on CIFAR-10, CIFAR-100 and ImageNet16-120, and the share
of the space's top-1% architectures (per data set) that it keeps, under the
whole-space row.  K and η are chosen per distance × clusterer by silhouette;
accuracies are only read to fill the table.  A line then checks the default
configuration (hellinger / kmeans / naswot / median) against the acceptance targets,
and ``cbred reduce`` is timed end to end in a fresh process (by default scoring with
``params``, a full table like the shipped score table) with its stage times.

Statistics with a full table (``params``, ``flops``, or any statistic in ``--scores``)
score every member; the others are computed on ``--m`` sampled members per cluster
through the proxies API on the reduced network of :class:`reduce.pipeline.ProxyScorer`,
only for ``--proxy-distances``, cached across rows and, with ``--proxy-cache``, across
runs.  ``--smoke`` runs a tiny version.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from cbred.bench.datasets import DATASETS
from cbred.bench.ground_truth import load_ground_truth
from cbred.bench.nb201 import default_space
from cbred.bench.nb201_reduce import nb201_op_counts, nb201_points, nb201_score_source
from cbred.reduce.cbred import cbred_reduce
from cbred.reduce.cluster import make_clusterer
from cbred.reduce.pipeline import (
    ProxyScorer,
    default_k,
    eta_candidates,
)
from cbred.reduce.report import evaluate_subspace
from cbred.reduce.select import select_best_parameter

SHORT = {"cifar10": "c10", "cifar100": "c100", "imagenet16_120": "in16"}
DEFAULT_F = ("median", "quantile:0.9", "mean_rank", "share_above:0.9")
CLUSTERERS_FOR = {"hellinger": ("kmeans", "spectral", "kmedoids"), "edit": ("kmedoids",)}
DISTANCE_ONLY = ("spectral", "kmedoids")  # k-means needs a Euclidean embedding


def acceptance_rows(
    distances: Sequence[str],
    statistics: Sequence[str],
    scorings: Sequence[str],
    features: str,
    k_values: Sequence[int],
    m: int,
    seed: int,
    proxy_options: dict,
    table: str | None,
    proxy_distances: Sequence[str] = ("hellinger",),
    cache_dir: str | None = None,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """One row per distance × clusterer × statistic × f, and seconds per stage.

    Statistics computed through the proxies API only run for ``proxy_distances``
    (they cost seconds per architecture on a CPU); their values are kept in
    ``cache_dir`` between runs, one CSV per statistic and setting.
    """
    truth = load_ground_truth()
    seconds = {"features": 0.0, "distance": 0.0, "select+cluster": 0.0, "statistic": 0.0}
    start = time.perf_counter()
    counts, _ = nb201_op_counts(features)
    seconds["features"] += time.perf_counter() - start
    sources = {}
    for name in statistics:
        start = time.perf_counter()
        options = dict(proxy_options)
        space = default_space().with_setting(**options.pop("setting", {}))
        sources[name] = nb201_score_source(name, table, space, **options)[0]
        if isinstance(sources[name], ProxyScorer) and cache_dir is not None:
            sources[name].cache.update(load_cache(cache_path(cache_dir, sources[name])))
        seconds["statistic"] += time.perf_counter() - start
    rows = []
    for distance in distances:
        start = time.perf_counter()
        points = nb201_points(distance, features)
        seconds["distance"] += time.perf_counter() - start
        for cluster in CLUSTERERS_FOR.get(distance, DISTANCE_ONLY):
            start = time.perf_counter()
            clusterer = make_clusterer(cluster, seed=seed)
            etas = eta_candidates(points) if cluster == "spectral" else None
            selection = select_best_parameter(clusterer, points, k_values, etas)
            clusterer.set_params(n_clusters=selection.n_clusters)
            if selection.eta is not None:
                clusterer.set_params(eta=selection.eta)
            seconds["select+cluster"] += time.perf_counter() - start
            for name in statistics:
                full = not isinstance(sources[name], ProxyScorer)
                if not full and distance not in proxy_distances:
                    continue
                for f in scorings:
                    start = time.perf_counter()
                    result = cbred_reduce(
                        points,
                        clusterer,
                        sources[name],
                        f,
                        m=None if full else m,
                        seed=seed,
                        space=default_space(),
                    )
                    seconds["statistic"] += time.perf_counter() - start
                    row = {
                        "distance": distance,
                        "cluster": cluster,
                        "statistic": name,
                        "f": f,
                        "K": selection.n_clusters,
                        "m": "all" if full else m,
                    }
                    rows.append({**row, **evaluate_subspace(result.subspace.indices, truth)})
                if isinstance(sources[name], ProxyScorer) and cache_dir is not None:
                    save_cache(cache_path(cache_dir, sources[name]), sources[name].cache)
    whole = {"distance": "(whole space)", "cluster": "", "statistic": "", "f": "", "K": 1, "m": ""}
    rows.insert(0, {**whole, **evaluate_subspace(np.arange(len(counts)), truth)})
    return pd.DataFrame(rows), seconds


def cache_path(folder: str, scorer: ProxyScorer) -> Path:
    """Cache file of one statistic under one setting (the setting is in the name)."""
    space = scorer.space
    name = (
        f"{scorer.statistic}_{space.dataset}_b{scorer.batch_size}_c{space.channels}"
        f"_n{space.cells_per_stage}_s{scorer.seed}.csv"
    )
    return Path(folder) / name


def load_cache(path: Path) -> dict[int, float]:
    if not path.exists():
        return {}
    frame = pd.read_csv(path)
    return dict(zip(frame["index"].astype(int), frame["value"].astype(float)))


def save_cache(path: Path, cache: dict[int, float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame({"index": list(cache), "value": list(cache.values())})
    frame.sort_values("index").to_csv(path, index=False)


def format_table(table: pd.DataFrame) -> str:
    """The acceptance table as fixed-width text."""
    head = (
        f"{'distance':<14}{'cluster':<9}{'statistic':<10}{'f':<16}{'K':>3}{'size':>7}{'share':>7}"
    )
    for dataset in DATASETS:
        head += f"{SHORT[dataset] + ' mean':>10}{'max':>7}{'top1%':>7}"
    lines = [head]
    for row in table.itertuples(index=False):
        r = row._asdict()
        line = (
            f"{r['distance']:<14}{r['cluster']:<9}{r['statistic']:<10}{r['f']:<16}{r['K']:>3}"
            f"{int(r['size']):>7}{r['size'] / 15625:>7.1%}"
        )
        for dataset in DATASETS:
            line += (
                f"{r[dataset + '_mean']:>10.2f}{r[dataset + '_max']:>7.2f}"
                f"{r[dataset + '_top_kept']:>7.1%}"
            )
        lines.append(line)
    return "\n".join(lines)


DEFAULT_CONFIG = {
    "distance": "hellinger",
    "cluster": "kmeans",
    "statistic": "naswot",
    "f": "median",
}
TARGET_MEAN, TARGET_SHARE = 70.0, 0.20  # CIFAR-100 mean accuracy (%) and share of the space


def default_verdict(table: pd.DataFrame) -> str:
    """One line: the default configuration's CIFAR-100 mean and share against the targets."""
    match = table
    for column, value in DEFAULT_CONFIG.items():
        match = match[match[column] == value]
    if match.empty:
        return "default configuration (" + "/".join(DEFAULT_CONFIG.values()) + ") not in this run"
    row = match.iloc[0]
    share = row["size"] / 15625
    met = row["cifar100_mean"] >= TARGET_MEAN and share <= TARGET_SHARE
    return (
        f"default configuration ({'/'.join(DEFAULT_CONFIG.values())}): CIFAR-100 mean "
        f"{row['cifar100_mean']:.2f} (target >= {TARGET_MEAN}), share {share:.1%} "
        f"(target <= {TARGET_SHARE:.0%}), top-1% kept {row['cifar100_top_kept']:.1%}: "
        + ("met" if met else "NOT met")
    )


def default_over_seeds(features: str, k_values: Sequence[int], seeds: int) -> list[str]:
    """The default configuration for seeds 0..seeds-1: size, K and CIFAR-100 mean per seed,
    and whether the targets hold for every seed (the k-means start is the only random part
    when the statistic comes from a full table)."""
    from cbred.bench.nb201_reduce import reduce_nb201

    truth = load_ground_truth()
    points = nb201_points(DEFAULT_CONFIG["distance"], features)
    scores = nb201_score_source(DEFAULT_CONFIG["statistic"])[0]
    lines, met = [], True
    for seed in range(seeds):
        reduction = reduce_nb201(
            DEFAULT_CONFIG["distance"],
            make_clusterer(DEFAULT_CONFIG["cluster"], seed=seed),
            scores,
            DEFAULT_CONFIG["statistic"],
            DEFAULT_CONFIG["f"],
            m=None,  # all members from a table, a sample when computed live
            seed=seed,
            features=features,
            k_values=k_values,
            points=points,
        )
        row = evaluate_subspace(reduction.subspace.indices, truth)
        ok = row["cifar100_mean"] >= TARGET_MEAN and row["size"] / 15625 <= TARGET_SHARE
        met &= ok
        lines.append(
            f"  seed {seed}: K={reduction.subspace.provenance['n_clusters']:>3} "
            f"size {int(row['size']):>5} ({row['size'] / 15625:.1%}), CIFAR-100 mean "
            f"{row['cifar100_mean']:.2f}, CIFAR-10 {row['cifar10_mean']:.2f}, "
            f"ImageNet16-120 {row['imagenet16_120_mean']:.2f}: {'met' if ok else 'NOT met'}"
        )
    verdict = "met on every seed" if met else "NOT met on every seed"
    return [f"default configuration over {seeds} seeds: {verdict}", *lines]


def end_to_end(command: list[str]) -> tuple[float, str]:
    """Run ``cbred reduce`` in a fresh interpreter; wall seconds and its stage line."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "cbred.bench.cli", "reduce", *command],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"cbred reduce failed ({done.returncode}): {done.stderr[-2000:]}")
    stages = re.search(r"^stage seconds\s+(.*)$", done.stdout, re.MULTILINE)
    return wall, stages.group(1) if stages else done.stdout


def end_to_end_here(command: list[str]) -> tuple[float, str]:
    """Like :func:`end_to_end` but in this interpreter (imports already paid)."""
    from cbred.bench.cli import main as cli_main

    buffer = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(buffer):
        status = cli_main(["reduce", *command])
    if status != 0:
        raise RuntimeError(f"cbred reduce failed with status {status}")
    stages = re.search(r"^stage seconds\s+(.*)$", buffer.getvalue(), re.MULTILINE)
    return time.perf_counter() - start, stages.group(1) if stages else buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny, fast version for CI")
    parser.add_argument("--distances", default="hellinger,js,kl,edit")
    parser.add_argument("--statistics", default="params,flops,naswot,synflow")
    parser.add_argument("--f", default=",".join(DEFAULT_F), help="cluster scoring functions")
    parser.add_argument("--features", default="graph", choices=("graph", "cell"))
    parser.add_argument("--k", default=f"2:{default_k(15625)[-1]}", help="K candidates")
    parser.add_argument("--m", type=int, default=8, help="sampled members for proxy statistics")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--seeds", type=int, default=10, help="seeds 0..S-1 for the default configuration"
    )
    parser.add_argument("--scores", default=None, help="score table for all statistics")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--cells", type=int, default=1)
    parser.add_argument(
        "--proxy-distances", default="hellinger", help="distances to run computed statistics on"
    )
    parser.add_argument("--proxy-cache", default=None, help="folder keeping computed values")
    parser.add_argument(
        "--e2e", default="", help="cbred reduce arguments for the timed run (default: none)"
    )
    args = parser.parse_args(argv)

    low, _, high = args.k.partition(":")
    k_values = list(range(int(low), int(high or low) + 1))
    distances = args.distances.split(",")
    statistics = args.statistics.split(",")
    scorings = args.f.split(",")
    features = args.features
    if args.smoke:
        distances, statistics, scorings, k_values = ["hellinger"], ["params"], ["median"], [4, 6]
        features = "cell"
    proxy_options = {
        "batch_size": args.batch_size,
        "seed": args.seed,
        "setting": {"channels": args.channels, "cells_per_stage": args.cells},
    }
    table, seconds = acceptance_rows(
        distances, statistics, scorings, features, k_values, args.m, args.seed,
        proxy_options, args.scores, args.proxy_distances.split(","), args.proxy_cache,
    )  # fmt: skip
    print(f"C-BRED acceptance on NB201 ({features} op usage; accuracies used only here)")
    print(format_table(table))
    print("table stage seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in seconds.items()))
    print(default_verdict(table))
    if not args.smoke:
        print("\n".join(default_over_seeds(features, k_values, args.seeds)))
    command = args.e2e.split() + ["--features", features]
    if args.smoke:
        command += ["--k", "4:6", "--cluster", "kmeans"]
    with tempfile.TemporaryDirectory() as folder:
        # The smoke run stays in this process; the real one pays interpreter start-up too.
        run = end_to_end_here if args.smoke else end_to_end
        wall, stages = run([*command, "--out", f"{folder}/subspace.json"])
    print(f"end-to-end `cbred reduce {' '.join(command)}`: {wall:.1f} s wall")
    print(f"  stages: {stages}")
    return 0


if __name__ == "__main__":
    from cbred.bench.cli import module_main

    raise SystemExit(module_main(main, "cbred.bench.perf_reduce"))
