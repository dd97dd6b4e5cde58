"""Statistics on another device beside the same statistics on the CPU, network by network.

    python -m cbred.bench.device_agreement --device cuda --archs 16

For a seeded sample of NB201 architectures (half of them with at least three
average-pooling edges, where PyTorch's channels-last pooling backward once went wrong on
CUDA, the rest drawn from the whole space), every statistic is scored fused on the CPU and
on ``--device`` with the same network, weights, batch and seed, and the table gives, per
statistic, the largest relative difference, the Spearman correlation over the networks,
and how many networks are finite on one device only.  The exit status is 1 when a
statistic's largest relative difference passes ``--tolerance``: run it first on a new GPU,
torch version or driver, before a store mixes rows of both devices.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from cbred.bench.nb201 import NB201Space
from cbred.proxies import available_proxies
from cbred.proxies.api import score_space
from scipy.stats import spearmanr

POOLING_EDGES = 3


def sample_archs(space: NB201Space, n: int, seed: int) -> list[int]:
    """``n`` seeded architectures: ⌈n/2⌉ with ≥ 3 ``avg_pool_3x3`` edges, the rest any."""
    order = [int(i) for i in space.sample(len(space), seed)]
    pooled = [i for i in order if space.arch_str(i).count("avg_pool_3x3") >= POOLING_EDGES]
    chosen = pooled[: (n + 1) // 2]
    taken = set(chosen)
    return chosen + [i for i in order if i not in taken][: n - len(chosen)]


def compare(
    space: NB201Space,
    archs: Sequence[int],
    statistics: Sequence[str],
    device: str,
    batch_size: int,
    seed: int,
) -> pd.DataFrame:
    """One row per statistic: max relative difference, Spearman, one-sided non-finite count."""
    cpu, other = [], []
    for index in archs:
        cpu.append(score_space(space, index, list(statistics), batch_size, seed, "cpu").values)
        other.append(score_space(space, index, list(statistics), batch_size, seed, device).values)
    rows = []
    for name in statistics:
        a = np.array([v[name] for v in cpu], dtype=np.float64)
        b = np.array([v[name] for v in other], dtype=np.float64)
        both = np.isfinite(a) & np.isfinite(b)
        rel = np.abs(a[both] - b[both]) / np.maximum(np.abs(a[both]), 1e-12)
        rho = spearmanr(a[both], b[both])[0] if both.sum() > 2 else math.nan
        rows.append(
            {
                "statistic": name,
                "networks": int(both.sum()),
                "max rel diff": float(rel.max()) if rel.size else math.nan,
                "spearman": float(rho),
                "finite on one only": int((np.isfinite(a) != np.isfinite(b)).sum()),
            }
        )
    return pd.DataFrame(rows)


def failures(frame: pd.DataFrame, tolerance: float) -> list[str]:
    """Statistics whose devices disagree: beyond ``tolerance``, or finite on one only."""
    bad = (frame["max rel diff"] > tolerance) | (frame["finite on one only"] > 0)
    return frame.loc[bad, "statistic"].tolist()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="the device set beside the CPU")
    parser.add_argument("--archs", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--score", default=",".join(available_proxies()))
    parser.add_argument("--tolerance", type=float, default=1e-3)
    parser.add_argument("--smoke", action="store_true", help="2 networks, batch 8, on the CPU")
    args = parser.parse_args(argv)
    if args.smoke:
        args.archs, args.batch_size, args.device = 2, 8, "cpu"
    statistics = [s.strip() for s in args.score.split(",") if s.strip()]
    space = NB201Space()
    archs = sample_archs(space, args.archs, args.seed)
    frame = compare(space, archs, statistics, args.device, args.batch_size, args.seed)
    print(
        f"NB201, {len(archs)} networks ({(len(archs) + 1) // 2} with ≥ {POOLING_EDGES} "
        f"average-pooling edges), batch {args.batch_size}, seed {args.seed}: cpu vs {args.device}"
    )
    formats = {"max rel diff": "{:.1e}".format, "spearman": "{:.4f}".format}
    print(frame.to_string(index=False, formatters=formats))
    bad = failures(frame, args.tolerance)
    if bad:
        print(f"devices disagree beyond {args.tolerance:g}: {', '.join(bad)}")
        return 1
    print(f"all statistics agree within {args.tolerance:g}")
    return 0


if __name__ == "__main__":
    from cbred.bench.cli import module_main

    raise SystemExit(module_main(main, "cbred.bench.device_agreement"))
