"""Acceptance benchmark of TE-NAS: accuracy of the found architectures and CPU search time.

``python -m cbred.bench.perf_tenas --seeds 5`` runs one TE-NAS search per seed and prints the
mean ± std test accuracy (NB201, 200 epochs) of the found architectures on CIFAR-10,
CIFAR-100 and ImageNet16-120 beside the published TE-NAS row, with our CPU seconds per
search beside the paper's 1558 GPU seconds.

Only CIFAR-10 images are bundled, so every search measures κ and R on CIFAR-10 inputs.
By default one search per seed (10-class NTK supernet) is evaluated on all three data sets;
``--per-dataset`` runs a separate search per data set with that data set's classifier
width (100 / 120 classes), at three times the cost.  ``--smoke`` is a tiny, fast version.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from cbred.bench.datasets import DATASETS
from cbred.bench.ground_truth import load_ground_truth
from cbred.bench.tenas import TenasConfig, tenas_search

PAPER = {"cifar10": (93.9, 0.47), "cifar100": (71.24, 0.56), "imagenet16_120": (42.38, 0.46)}
PAPER_SECONDS = 1558.0
SMOKE_CONFIG = TenasConfig(
    ntk_channels=2, ntk_batch=4, ntk_resolution=8, lr_samples=32, lr_patch=3, repeats=1
)


def _mean_std(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.2f}" if values else "-"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def run(seeds: list[int], config: TenasConfig, per_dataset: bool) -> list[dict]:
    """One row per search (seed × searched data set) with its accuracy on every data set."""
    truth = load_ground_truth()
    rows = []
    for seed in seeds:
        for searched in DATASETS if per_dataset else ("cifar10",):
            result = tenas_search(seed, searched, config)
            rows.append(
                {
                    "seed": seed,
                    "searched": searched,
                    "arch": str(result.arch),
                    "accuracy": {d: truth.accuracy(result.arch, d) for d in DATASETS},
                    "seconds": result.seconds,
                    "cpu_seconds": result.cpu_seconds,
                }
            )
            print(
                f"seed {seed} {searched}: {result.arch} "
                f"({result.seconds:.1f} s wall, {result.cpu_seconds:.1f} s CPU)",
                flush=True,
            )
    return rows


def _table(title: str, accuracy: dict[str, list[float]]) -> None:
    truth = load_ground_truth()
    print(title)
    print(f"{'dataset':<16}{'ours (mean ± std)':>20}{'n':>4}{'paper TE-NAS':>16}{'optimal':>9}")
    for d in DATASETS:
        mean, std = PAPER[d]
        print(
            f"{d:<16}{_mean_std(accuracy[d]):>20}{len(accuracy[d]):>4}"
            f"{f'{mean:.2f} ± {std:.2f}':>16}{float(np.max(truth.accuracies(d))):>9.2f}"
        )
    print()


def print_table(rows: list[dict], config: TenasConfig) -> None:
    """The acceptance tables: accuracy beside the paper's row, and the search time."""
    print()
    print(f"settings: {json.dumps(config.__dict__)}; torch threads {torch.get_num_threads()}")
    print("kappa and R are always measured on the bundled CIFAR-10 images")
    print()
    own = {d: [r["accuracy"][d] for r in rows if r["searched"] == d] for d in DATASETS}
    if all(own.values()):
        _table("search per data set (classifier width of that data set):", own)
    c10 = {d: [r["accuracy"][d] for r in rows if r["searched"] == "cifar10"] for d in DATASETS}
    _table("CIFAR-10 search (10 classes), its architecture evaluated on every data set:", c10)
    cpu = [r["cpu_seconds"] for r in rows]
    wall = [r["seconds"] for r in rows]
    print(
        f"search time per search, median (min..max) over {len(rows)}: "
        f"{statistics.median(cpu):.1f} ({min(cpu):.1f}..{max(cpu):.1f}) CPU s, "
        f"{statistics.median(wall):.1f} s wall; paper {PAPER_SECONDS:.0f} GPU s (1080Ti)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (0..N-1)")
    parser.add_argument("--smoke", action="store_true", help="tiny supernets, one repeat")
    parser.add_argument("--per-dataset", action="store_true", help="a search per data set")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--json", help="also write the per-seed rows to this JSON file")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.threads < 1:
        parser.error(f"--seeds and --threads must be >= 1, got {args.seeds}, {args.threads}")
    torch.set_num_threads(args.threads)
    config = SMOKE_CONFIG if args.smoke else TenasConfig()
    start = time.perf_counter()
    rows = run(list(range(args.seeds)), config, args.per_dataset)
    print_table(rows, config)
    print(f"total wall time {time.perf_counter() - start:.1f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    from cbred.bench.cli import module_main

    raise SystemExit(module_main(main, "cbred.bench.perf_tenas"))
