"""Cost of each training-free statistic on NB201, and the saving of fused passes.

    python -m cbred.bench.perf_proxies --archs 5 --seed 0

For a seeded sample of NB201 architectures that have a path from cell input to output
(C=16, N=5, a CIFAR-10 batch of 64 from the bundled sample), times every statistic scored
alone and the fused suite grad_norm + snip + grasp + fisher + synflow + jacob_cov + naswot
(and the same suite without grasp, and the suite of the 2021–2024 statistics: MeCo,
Zen-score, SWAP and AZ-NAS), and prints the median seconds per architecture.
Target: fused suite ≤ 1/3 of the sum of its members' separate costs.  Runs on the CPU
with ``--threads`` torch threads, or on ``--device cuda`` (networks built on the CPU,
scored on the device, as ``cbred score --device`` does).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np
import torch
from cbred.bench.datasets import get_batch
from cbred.bench.nb201 import NB201Space
from cbred.bench.nb201_proxies import nb201_model
from cbred.proxies import available_proxies, score
from cbred.proxies.recent import RECENT

SUITE = ("grad_norm", "snip", "grasp", "fisher", "synflow", "jacob_cov", "naswot")
# The same suite without GraSP, whose double backward alone costs most of the suite.
SUITE_NO_GRASP = tuple(s for s in SUITE if s != "grasp")
# MeCo, Zen-score, SWAP and AZ-NAS's components: four passes (meco, zen, main, aznas) for eight.
SUITE_RECENT = RECENT
SUITES = (SUITE, SUITE_NO_GRASP, SUITE_RECENT)
TARGET_RATIO = 1 / 3


def sample_with_path(space: NB201Space, n: int, seed: int) -> list[int]:
    """``n`` seeded indices of architectures whose cell connects input to output."""
    order = space.sample(len(space), seed)
    return [int(i) for i in order if space.arch(int(i)).has_path()][:n]


def timed_score(*args: object) -> float:
    """Wall seconds of one :func:`proxies.score` call on the network itself, as the engine
    scores the networks it builds (:func:`proxies.score_space`: no defensive copy)."""
    start = time.perf_counter()
    score(*args, copy_model=False)
    return time.perf_counter() - start


def measure(
    indices: Sequence[int],
    stats: Sequence[str],
    batch,
    seed: int,
    channels: int,
    cells: int,
    device: str = "cpu",
) -> tuple[dict[str, list[float]], dict[tuple[str, ...], list[float]]]:
    """Seconds of each statistic alone and of each fused suite, per architecture."""
    alone: dict[str, list[float]] = {s: [] for s in stats}
    fused: dict[tuple[str, ...], list[float]] = {suite: [] for suite in SUITES}
    every = sorted({*stats, *(s for suite in SUITES for s in suite)})
    first = nb201_model(indices[0], seed, channels, cells)
    score(first, batch, every, seed, device)  # one-time costs (imports, LAPACK), untimed
    for index in indices:
        net = nb201_model(index, seed, channels, cells)
        score(net, batch, ["grad_norm"], seed, device)  # warm-up, untimed
        for s in stats:
            alone[s].append(timed_score(net, batch, [s], seed, device))
        for suite in SUITES:
            fused[suite].append(timed_score(net, batch, list(suite), seed, device))
    return alone, fused


def report(alone: dict[str, list[float]], fused: dict[tuple[str, ...], list[float]]) -> str:
    """The printed table and the fused-suite verdicts.

    A fused run does at least the work of its costliest member, so that member's time
    over the sum is a floor under any fused ratio; it is printed beside the ratio.
    """
    lines = [f"{'statistic':<18}{'median s/arch':>14}"]
    med = {s: float(np.median(v)) for s, v in alone.items()}
    lines += [f"{s:<18}{m:14.3f}" for s, m in med.items()]
    for suite, times in fused.items():
        members = sum(med[s] for s in suite)
        fused_med = float(np.median(times))
        ratio = fused_med / members
        verdict = "meets" if ratio <= TARGET_RATIO else "misses"
        lines.append("")
        lines.append(f"suite {'+'.join(suite)}")
        lines.append(f"  sum of members alone  {members:8.3f} s")
        lines.append(f"  fused                 {fused_med:8.3f} s")
        lines.append(
            f"  ratio                 {ratio:8.3f}  ({verdict} target ≤ {TARGET_RATIO:.3f})"
        )
        costliest = max(suite, key=med.__getitem__)
        lines.append(
            f"  floor                 {med[costliest] / members:8.3f}  "
            f"({costliest} alone over the sum)"
        )
    return "\n".join(lines)


def jacobian_methods(
    indices: Sequence[int], batch, seed: int, channels: int, cells: int, device: str = "cpu"
) -> str:
    """VKDNW's two ways to its per-sample Jacobians (:func:`proxies.vkdnw_passes.logit_jacobian`),
    timed in turn on the same networks and draws: median seconds of the whole VKDNW pass,
    their ratio, and the largest difference of the spectral entropy they lead to."""
    from cbred.proxies.vkdnw import decile_entropy
    from cbred.proxies.vkdnw_passes import vkdnw_terms

    seconds: dict[str, list[float]] = {"hooks": [], "vmap": []}
    gap = 0.0
    for index in indices:
        net = nb201_model(index, seed, channels, cells).to(device)
        entropy = {}
        for method in seconds:
            torch.manual_seed(seed)
            start = time.perf_counter()
            _, eigenvalues = vkdnw_terms(net, batch[0].to(device), method=method)
            seconds[method].append(time.perf_counter() - start)
            entropy[method] = decile_entropy(eigenvalues)
        gap = max(gap, abs(entropy["hooks"] - entropy["vmap"]))
    hooks, vmap = (float(np.median(v)) for v in seconds.values())
    return (
        f"vkdnw pass, per-sample Jacobians by module hooks {hooks:.3f} s vs torch.func vmap "
        f"{vmap:.3f} s (ratio {hooks / vmap:.2f}); entropies differ by at most {gap:.1e}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", type=int, default=5, help="architectures to time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--cells", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--score", default=",".join(available_proxies()))
    parser.add_argument("--smoke", action="store_true", help="one narrow network, batch 8")
    args = parser.parse_args(argv)
    if args.smoke:
        args.archs, args.batch_size, args.channels, args.cells = 1, 8, 4, 1
    stats = [s.strip() for s in args.score.split(",") if s.strip()]
    stats += [s for suite in SUITES for s in suite if s not in stats]
    stats = list(dict.fromkeys(stats))
    torch.set_num_threads(args.threads)
    batch = get_batch("cifar10", batch_size=args.batch_size, seed=args.seed)
    indices = sample_with_path(NB201Space(), args.archs, args.seed)
    alone, fused = measure(indices, stats, batch, args.seed, args.channels, args.cells, args.device)
    print(
        f"NB201 C={args.channels} N={args.cells}, batch {args.batch_size}, "
        f"{len(indices)} architectures, {args.threads} CPU thread(s), device {args.device}"
    )
    print(report(alone, fused))
    if "vkdnw" in stats or "vkdnw_entropy" in stats:
        print()
        print(jacobian_methods(indices, batch, args.seed, args.channels, args.cells, args.device))
    return 0


if __name__ == "__main__":
    from cbred.bench.cli import module_main

    raise SystemExit(module_main(main, "cbred.bench.perf_proxies"))
