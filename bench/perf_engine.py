"""Benchmark of the scoring engine: throughput per executor and store overhead.

    python -m cbred.bench.perf_engine            # 24 NB201 architectures, C=16, N=5, batch 64
    python -m cbred.bench.perf_engine --smoke    # tiny networks, seconds

Prints architectures per second for NASWOT alone and for the fused suite
(params, FLOPs, NASWOT, synflow, snip, grad_norm, jacob_cov) with one in-process
worker, local pools of one and two worker processes and Ray (when installed, two
CPUs), each on a fresh store, and the store's cost per written result.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cbred.proxies.engine import ScoreJob, run_scoring
from cbred.proxies.executors import InProcessExecutor, ProcessPoolExecutor
from cbred.proxies.store import ScoreRow, ScoreStore

SUITE = ("params", "flops", "naswot", "synflow", "snip", "grad_norm", "jacob_cov")


def store_overhead(folder: Path, rows: int = 20000, chunk: int = 56) -> float:
    """Median microseconds per result of ``put`` in chunk-sized transactions."""
    per_row = []
    with ScoreStore(folder / "overhead.db") as store:
        for start in range(0, rows, chunk):
            batch = [
                ScoreRow("nb201", i, "naswot", "cifar10", 64, 0, "v", "s", 1.0, 0.1, "cpu")
                for i in range(start, start + chunk)
            ]
            t0 = time.perf_counter()
            store.put(batch)
            per_row.append((time.perf_counter() - t0) / chunk * 1e6)
    return statistics.median(per_row)


def executors(with_ray: bool) -> list[tuple[str, Callable[[], object]]]:
    """(label, factory) per executor; each is built only when its turn comes, so that Ray's
    start-up does not load the machine while the others are timed."""
    found: list[tuple[str, Callable[[], object]]] = [
        ("in-process x1", InProcessExecutor),
        ("pool x1", lambda: ProcessPoolExecutor(1)),
        ("pool x2", lambda: ProcessPoolExecutor(2)),
    ]
    if with_ray:
        try:
            from cbred.proxies.executors import RayExecutor
        except ImportError:
            print("ray not installed: skipping the Ray executor")
        else:
            found.append(("ray x2 (local)", lambda: RayExecutor(init_kwargs={"num_cpus": 2})))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny networks and sample")
    parser.add_argument("--archs", type=int, default=24)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args(argv)
    from cbred.bench.nb201 import NB201Space

    n = 4 if args.smoke else args.archs
    tiny = dict(batch_size=8, space=NB201Space(4, 1)) if args.smoke else {"space": NB201Space()}

    archs = [int(a) for a in NB201Space().sample(n, seed=0)]
    print(f"{n} NB201 architectures, setting {tiny['space'].setting_key}")
    print(f"{'executor':<16}{'statistics':<12}{'arch/s':>8}{'seconds':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for label, factory in executors(not args.no_ray and not args.smoke):
            executor = factory()
            for name, stats in (("naswot", ("naswot",)), ("suite", SUITE)):
                job = ScoreJob(stats, **tiny)
                with ScoreStore(folder / f"{label}-{name}.db".replace(" ", "_")) as store:
                    summary = run_scoring(store, job, archs, executor, chunk_size=2, progress=False)
                print(
                    f"{label:<16}{name:<12}{summary.scored / summary.seconds:8.2f}"
                    f"{summary.seconds:9.1f}"
                )
            if hasattr(executor, "shutdown"):
                executor.shutdown()
        rows = 2000 if args.smoke else 20000
        print(f"store overhead: {store_overhead(folder, rows):.1f} µs per result (median)")
    return 0


if __name__ == "__main__":
    from cbred.bench.cli import module_main

    raise SystemExit(module_main(main, "cbred.bench.perf_engine"))
