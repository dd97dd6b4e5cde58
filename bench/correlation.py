"""Correlation of training-free statistics with NB201 test accuracy (benchmark command).

    python -m cbred.bench.correlation --sample 500 --seed 0 --score grad_norm,snip --out run.csv
    python -m cbred.bench.correlation --report run.csv other_run.csv
    python -m cbred.bench.correlation --report bench/data/nb201_scores.parquet   # whole space

Scores a seeded random sample of NB201 architectures (C=16, N=5, 10 classes) on a seeded
CIFAR-10 batch from the bundled sample and appends one CSV row per architecture as soon
as it is finished, so a run can be stopped and resumed (finished indices are skipped).
The report merges result files (these CSVs, or Parquet score tables such as the shipped
whole-space table of :mod:`bench.score_table`) on the architecture index and prints
Spearman ρ and Kendall τ against the bundled test accuracies of all three data sets,
beside the published figures.  ``--reference-cells`` scores the NB201 cells as the
zero-cost-proxy reference code builds them (batch norm without affine parameters, so
convolutions with a bias): the same outputs and weight gradients, but Fisher reads the
biased convolution outputs, which is what its published ρ measured.  CIFAR-100 and
ImageNet16-120 are scored with the same CIFAR-10 batch and 10-class networks (only
CIFAR-10 images are bundled).  NaN ranks as the worst value; lower-is-better statistics
are negated so that a positive ρ means "predicts accuracy".
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from cbred.bench.datasets import DATASETS
from cbred.bench.ground_truth import load_ground_truth
from cbred.bench.nb201 import NB201Space
from cbred.bench.nb201_proxies import score_nb201
from cbred.proxies import available_proxies, get_proxy, mean_rank, ranks, vote
from cbred.proxies.ensemble import ENSEMBLES, VOTE_MEMBERS
from scipy.stats import kendalltau, spearmanr

# Spearman ρ on CIFAR-10 / CIFAR-100 / ImageNet16-120: Abdelfattah et al.; AZ-NAS's
# aggregate from its authors' notebook (CIFAR-10 only); VKDNW_single and VKDNW_agg from
# Týbl & Neumann's Table 1 (mean of 5 runs).
PUBLISHED_RHO = {
    "grad_norm": (0.58, 0.64, 0.58),
    "snip": (0.58, 0.63, 0.58),
    "grasp": (0.48, 0.54, 0.56),
    "fisher": (0.36, 0.39, 0.33),
    "synflow": (0.74, 0.76, 0.75),
    "jacob_cov": (0.73, 0.71, 0.71),
    "vote": (0.82, 0.83, 0.82),
    "az_nas": (0.913, math.nan, math.nan),
    "vkdnw": (0.815, 0.829, 0.814),
    "vkdnw_agg": (0.919, 0.919, 0.906),
}
# Kendall τ on CIFAR-10 (Xiang et al.; VKDNW's from Týbl & Neumann's Table 1).
PUBLISHED_TAU = {
    "synflow": 0.54,
    "snip": 0.46,
    "zico": 0.61,
    "naswot": 0.58,
    "ssnr": 0.68,
    "tcet": 0.69,
    "vkdnw": 0.618,
    "vkdnw_agg": 0.750,
}
ABDELFATTAH_SIX = ("grad_norm", "snip", "grasp", "fisher", "synflow", "jacob_cov")
TOLERANCE = 0.07


def parse_proxies(text: str) -> list[str]:
    """Comma-separated statistic names, each checked against the registry."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    for n in names:
        get_proxy(n)
    if not names:
        raise ValueError("--score needs at least one statistic name")
    return names


def finished_indices(path: Path, header: list[str]) -> set[int]:
    """Indices already in a result file; its header must match this run's."""
    if not path.exists() or path.stat().st_size == 0:
        return set()
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if rows[0] != header:
        raise ValueError(
            f"{path} has columns {rows[0]}, this run writes {header}; use another --out"
        )
    return {int(r[0]) for r in rows[1:] if len(r) == len(header)}


def append_row(path: Path, row: Sequence[object]) -> None:
    """Append one complete CSV line and flush it to disk."""
    line = ",".join(str(v) for v in row) + "\n"
    with open(path, "a") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def run_scores(args: argparse.Namespace) -> Path:
    """Score the sample, appending rows; returns the result file."""
    names = parse_proxies(args.score)
    space = NB201Space()
    indices = space.sample(args.sample, args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    header = ["index", "arch", *names, "seconds"]
    done = finished_indices(out, header)
    if not done and not out.exists():
        append_row(out, header)
    todo = [int(i) for i in indices if int(i) not in done]
    print(f"{len(done)} done, {len(todo)} to score -> {out}", file=sys.stderr)
    for k, index in enumerate(todo, 1):
        start = time.perf_counter()
        result = score_nb201(
            index,
            names,
            batch_size=args.batch_size,
            seed=args.seed,
            channels=args.channels,
            cells_per_stage=args.cells,
            cell_affine=not args.reference_cells,
        )
        seconds = time.perf_counter() - start
        append_row(out, [index, space.string(index), *(repr(result[n]) for n in names), seconds])
        if k % 10 == 0 or k == len(todo):
            print(f"{k}/{len(todo)} scored ({seconds:.2f} s last)", file=sys.stderr, flush=True)
    return out


def load_results(paths: Sequence[str | Path]) -> pd.DataFrame:
    """Merge result CSVs and Parquet score tables on the architecture index."""
    frames = []
    for p in paths:
        if Path(p).suffix == ".parquet":  # a wide score table indexed by architecture
            frames.append(pd.read_parquet(p).drop(columns=["arch_str"], errors="ignore"))
            continue
        df = pd.read_csv(p).dropna(subset=["index"]).drop(columns=["arch", "seconds"])
        frames.append(df.drop_duplicates("index").set_index("index"))
    merged = frames[0]
    for df in frames[1:]:
        merged = merged.join(df[[c for c in df.columns if c not in merged.columns]], how="inner")
    return merged.sort_index()


def correlation_table(table: pd.DataFrame, ensembles: Collection[str] = ()) -> pd.DataFrame:
    """ρ and τ of every statistic (and available ensembles) against the three accuracies;
    columns named in ``ensembles`` (or :data:`proxies.ensemble.ENSEMBLES`) are ensemble
    scores, higher better."""
    truth = load_ground_truth()
    idx = table.index.to_numpy(dtype=np.int64)
    oriented = {
        c: ranks(
            table[c].to_numpy(),
            "higher" if c in ENSEMBLES or c in ensembles else get_proxy(c).direction,
        )
        for c in table.columns
    }
    if all(m in table.columns for m in VOTE_MEMBERS):
        oriented["vote"] = vote({m: table[m].to_numpy() for m in VOTE_MEMBERS})
    scored = [c for c in table.columns if c in available_proxies()]
    if len(scored) > 1:
        oriented["mean_rank(all)"] = mean_rank({c: table[c].to_numpy() for c in scored}, scored)
    rows = []
    for name, score in oriented.items():
        row = {"statistic": name, "n": len(idx)}
        row["finite"] = int(np.isfinite(table[name]).sum()) if name in table else len(idx)
        for ds in DATASETS:
            acc = truth.accuracies(ds)[idx]
            row[f"rho_{ds}"] = spearmanr(score, acc).statistic
            row[f"tau_{ds}"] = kendalltau(score, acc).statistic
        pub = PUBLISHED_RHO.get(name, (math.nan,) * 3)
        for ds, v in zip(DATASETS, pub, strict=True):
            row[f"pub_rho_{ds}"] = v
        row["pub_tau_cifar10"] = PUBLISHED_TAU.get(name, math.nan)
        rows.append(row)
    return pd.DataFrame(rows).set_index("statistic")


def format_table(corr: pd.DataFrame) -> str:
    """The printed table, with the ±0.07 check for Abdelfattah's six statistics."""
    short = {"cifar10": "C10", "cifar100": "C100", "imagenet16_120": "IN16"}
    head = f"{'statistic':<18}{'n':>6}{'fin':>6}"
    head += "".join(f"{'ρ ' + short[d]:>8}" for d in DATASETS)
    head += "".join(f"{'τ ' + short[d]:>8}" for d in DATASETS)
    head += f"  {'published ρ C10/C100/IN16':<26}{'pub τ C10':>9}  check"
    lines = [head]
    for name, r in corr.iterrows():
        pub = "/".join(
            "—" if math.isnan(r[f"pub_rho_{d}"]) else f"{r[f'pub_rho_{d}']:.2f}" for d in DATASETS
        )
        tau = "—" if math.isnan(r["pub_tau_cifar10"]) else f"{r['pub_tau_cifar10']:.2f}"
        check = ""
        if name in ABDELFATTAH_SIX:
            delta = r["rho_cifar10"] - r["pub_rho_cifar10"]
            check = f"{'ok' if abs(delta) <= TOLERANCE else 'MISS'} (Δρ {delta:+.2f})"
        line = f"{name:<18}{int(r['n']):>6}{int(r['finite']):>6}"
        line += "".join(f"{r[f'rho_{d}']:8.3f}" for d in DATASETS)
        line += "".join(f"{r[f'tau_{d}']:8.3f}" for d in DATASETS)
        lines.append(f"{line}  {pub:<26}{tau:>9}  {check}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=int, default=500, help="number of architectures")
    parser.add_argument("--seed", type=int, default=0, help="sample, batch and init seed")
    parser.add_argument("--score", default="grad_norm,snip,fisher,synflow,jacob_cov,naswot")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--channels", type=int, default=16, help="NB201 width C")
    parser.add_argument("--cells", type=int, default=5, help="NB201 cells per stage N")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--reference-cells",
        action="store_true",
        help="score the zero-cost-proxy reference code's NB201 cells (batch norm without affine "
        "parameters, convolutions with a bias) instead of the official network's",
    )
    parser.add_argument("--out", default=None, help="result CSV (default under bench_results/)")
    parser.add_argument("--report", nargs="+", metavar="CSV", help="only print the table of files")
    parser.add_argument("--smoke", action="store_true", help="tiny run (6 narrow networks)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.sample, args.batch_size, args.channels, args.cells = 6, 8, 4, 1
    torch.set_num_threads(args.threads)
    if args.out is None:
        suffix = "_reference_cells" if args.reference_cells else ""
        args.out = f"bench_results/correlation{suffix}.csv"
    paths = args.report or [run_scores(args)]
    table = load_results(paths)
    print(f"NB201, {len(table)} architectures, seed {args.seed}; CIFAR-10 batch for all data sets")
    print(f"({args.threads} thread(s); NaN ranks worst; lower-is-better statistics negated)")
    print(format_table(correlation_table(table)))
    return 0


if __name__ == "__main__":
    from cbred.bench.cli import module_main

    raise SystemExit(module_main(main, "cbred.bench.correlation"))
