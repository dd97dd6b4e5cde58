"""Benchmark of graph tracing: the whole NB201 space, the naive path, the model zoo.

``python -m cbred.bench.perf_trace`` prints, in one fresh (cold) process:

1. NB201 full space: time to build the graph and op-usage distribution of every
   architecture with the template path (:mod:`cgraph.nb201`), templates and the
   space object included, and a check that the distributions equal
   :func:`cgraph.nb201.space_op_counts` row by row;
2. the naive path on a sample: ``build_network`` + ``cgraph.trace`` per
   architecture (median ms), each graph compared for equality with the fast one;
3. zoo throughput: graphs per second of ``cgraph.trace`` on each zoo model;
4. peak resident memory of the process after each phase (mostly torch itself), and the
   peak Python heap of one zoo trace (tracemalloc; tensor storage is not included).

``--smoke`` runs a tiny version (a few architectures, one zoo pass) for CI.
Torch runs on one thread: on a small shared machine this is much faster for the
many tiny tensors of shape propagation.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from cbred.bench.nb201 import NB201Space
from cbred.bench.nb201_graph import iter_space_graphs, nb201_graph, space_op_counts
from cbred.bench.nb201_network import build_network
from cbred.cgraph import trace, zoo


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _distributions(indices: np.ndarray) -> np.ndarray:
    """Op-usage distributions of the graphs of ``indices`` (built, then discarded)."""
    torch.set_num_threads(1)
    space = NB201Space()
    rows = [g.op_distribution() for g in iter_space_graphs(space, indices)]
    return np.stack(rows) if rows else np.zeros((0, 0))


def full_space(indices: np.ndarray, workers: int) -> tuple[float, float, np.ndarray]:
    """Wall and CPU seconds (this process and its workers) to build graphs and distributions
    for ``indices``, and the distributions."""
    start, cpu = time.perf_counter(), _cpu_seconds()
    if workers <= 1:
        result = _distributions(indices)
    else:
        chunks = np.array_split(indices, workers)
        with ProcessPoolExecutor(workers) as pool:
            result = np.concatenate(list(pool.map(_distributions, chunks)))
    return time.perf_counter() - start, _cpu_seconds() - cpu, result


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def naive_sample(indices: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-architecture wall and CPU ms of build + trace; raises if a traced graph differs
    from the fast one."""
    x = torch.zeros(1, 3, 32, 32)
    wall, cpu = [], []
    for index in indices:
        start, start_cpu = time.perf_counter(), time.process_time()
        graph = trace(build_network(int(index)), x)
        wall.append((time.perf_counter() - start) * 1e3)
        cpu.append((time.process_time() - start_cpu) * 1e3)
        if graph != nb201_graph(int(index)):
            raise AssertionError(f"fast and traced graphs differ for architecture {index}")
    return wall, cpu


def zoo_throughput(repeats: int) -> dict[str, tuple[float, float]]:
    """Per zoo model: graphs per second of ``cgraph.trace`` (median over ``repeats``) and the
    peak Python heap of one more trace in MiB (tracemalloc, run apart from the timing)."""
    rates = {}
    for name, entry in zoo.ZOO.items():
        if not entry.fx_traceable:
            continue
        model, x = zoo.build(name)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            trace(model, x)
            times.append(time.perf_counter() - start)
        tracemalloc.start()
        trace(model, x)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        rates[name] = (1.0 / statistics.median(times), peak)
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI")
    parser.add_argument("--workers", type=int, default=1, help="processes for the NB201 pass")
    parser.add_argument("--naive", type=int, default=20, help="architectures traced naively")
    parser.add_argument("--repeats", type=int, default=5, help="zoo traces per model")
    parser.add_argument("--seed", type=int, default=0, help="seed of the naive sample")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    start = time.perf_counter()
    space = NB201Space()
    indices = np.arange(20 if args.smoke else len(space))
    seconds, cpu, distributions = full_space(indices, args.workers)
    counts = space_op_counts(space)[indices]
    expected = counts / counts.sum(axis=1, keepdims=True)
    if not np.array_equal(distributions, expected):
        raise AssertionError("graph distributions differ from space_op_counts")
    total = time.perf_counter() - start
    print(
        f"nb201 space      {len(indices)} graphs + distributions in {seconds:.1f} s wall, "
        f"{cpu:.1f} s CPU ({seconds / len(indices) * 1e3:.2f} ms each, {args.workers} "
        f"worker(s)); with space setup and count check {total:.1f} s; "
        f"peak RSS {peak_rss_mb():.0f} MiB"
    )

    sample = space.sample(2 if args.smoke else args.naive, seed=args.seed)
    wall, cpu_ms = naive_sample(sample)
    median = statistics.median(wall)
    fast = seconds / len(indices) * 1e3
    print(
        f"naive path       build+trace median {median:.1f} ms wall, "
        f"{statistics.median(cpu_ms):.1f} ms CPU per arch over {len(sample)} "
        f"(fast path {fast:.2f} ms wall, {median / fast:.0f}x faster); all graphs equal"
    )

    rates = zoo_throughput(1 if args.smoke else args.repeats)
    for name, (rate, peak) in rates.items():
        print(f"zoo {name:<16} {rate:8.1f} graphs/s, peak Python heap {peak:5.2f} MiB per trace")
    overall = len(rates) / sum(1 / rate for rate, _ in rates.values())
    print(f"zoo overall      {overall:8.1f} graphs/s; peak RSS {peak_rss_mb():.0f} MiB")
    return 0


if __name__ == "__main__":
    from cbred.bench.cli import module_main

    raise SystemExit(module_main(main, "cbred.bench.perf_trace"))
