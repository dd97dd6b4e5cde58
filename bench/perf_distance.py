"""Benchmark of the distance matrices: ``python -m cbred.bench.perf_distance [--smoke]``.

Figures printed:

1. each probabilistic matrix (kl, js, sqrt_js, hellinger) over the full NB201
   space (15,625 × 15,625, float32, in memory): time and peak memory, each run in
   a fresh process (cold) whose peak resident memory is read with ``os.wait4``;
   the same on random distributions with no repeated rows (the general case);
2. the exact NB201 edit-distance matrix: time and peak memory, likewise;
3. per-pair speed-up of that matrix over ``networkx.graph_edit_distance`` on
   the cell graphs with the same costs, checking the values are equal;
4. the bipartite approximation: on small random graphs, its error against the
   exact distance; on random DAGs of 50-500 nodes, where exact GED is out of
   reach, its time and its gap to a lower bound (an upper bound on its error) and
   to the cost of the known edit script that made the second graph from the
   first; on kernel graphs of traced NB201 networks (~250 and ~475 nodes), its
   time and gap to the lower bound.

``--smoke`` runs a tiny version in-process (for CI).  Medians over ``--repeats``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

PROBABILISTIC = ("kl", "js", "sqrt_js", "hellinger")
GENERAL_OPS = 12  # op types the NB201 networks use, for the no-duplicates case
SMALL_OPS = ("conv3x3", "conv1x1", "avg_pool3x3", "max_pool3x3", "relu", "add", "batch_norm")


# ----------------------------------------------------------------- jobs (one matrix each)
def _inputs(kind: str, smoke: bool) -> object:
    if kind == "nb201":
        if smoke:
            return np.random.default_rng(0).integers(0, 5, size=(400, 51))
        from cbred.bench.nb201_graph import space_op_counts

        return space_op_counts()
    if kind == "unique":
        n = 300 if smoke else 15625
        return np.random.default_rng(1).dirichlet(np.ones(GENERAL_OPS), size=n)
    if kind == "edit":
        from cbred.bench.nb201 import NB201Space

        space = NB201Space()
        if smoke:
            from cbred.bench.nb201_edit import nb201_edit_matrix

            class Cells:  # the first 400 cells, with NB201's exact edit matrix
                def edit_matrix(self, cost: object = None, **options: object) -> np.ndarray:
                    return nb201_edit_matrix(space.op_matrix[:400], cost, **options)

            return Cells()
        return space
    raise ValueError(f"unknown input kind {kind!r}")


def run_job(job: str, smoke: bool) -> dict[str, float]:
    """Compute one matrix (``kind:metric``) in this process; its time and the inputs' time."""
    from cbred.cgraph.distance import pairwise

    kind, metric = job.split(":")
    start = time.perf_counter()
    data = _inputs(kind, smoke)
    ready = time.perf_counter()
    matrix = pairwise(data, metric, dtype=np.float32)
    done = time.perf_counter()
    return {"seconds": done - ready, "input_seconds": ready - start, "n": len(matrix)}


def _peak_rss_gib(kilobytes: float) -> float:
    return kilobytes / 2**20  # Linux reports ru_maxrss in KiB


def measure(job: str, smoke: bool, repeats: int) -> dict[str, float]:
    """Median time and largest peak memory of ``job`` over ``repeats`` cold runs."""
    runs = []
    for _ in range(repeats):
        if smoke:
            result = run_job(job, smoke)
            result["peak_gib"] = _peak_rss_gib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        else:
            command = [sys.executable, "-m", "cbred.bench.perf_distance", "--job", job]
            child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            output = child.stdout.read()  # type: ignore[union-attr]
            _, status, usage = os.wait4(child.pid, 0)
            if status != 0:
                raise RuntimeError(f"benchmark job {job} failed with status {status}")
            result = json.loads(output.strip().splitlines()[-1])
            result["peak_gib"] = _peak_rss_gib(usage.ru_maxrss)
        runs.append(result)
    return {
        "n": runs[0]["n"],
        "seconds": statistics.median(r["seconds"] for r in runs),
        "input_seconds": statistics.median(r["input_seconds"] for r in runs),
        "peak_gib": max(r["peak_gib"] for r in runs),
        "runs": len(runs),
    }


# ----------------------------------------------------------------- NB201 edit vs networkx
def edit_speedup(matrix_seconds: float, n: int, pairs: int, seed: int) -> dict[str, float]:
    """Median networkx GED time per cell pair vs the matrix's time per entry (same values)."""
    import networkx as nx
    from cbred.bench.nb201 import SPACE_SIZE, Arch
    from cbred.bench.nb201_edit import cell_graph, cell_networkx_costs, nb201_edit_matrix

    rng = np.random.default_rng(seed)
    archs = [Arch.from_code(int(c)) for c in rng.integers(0, SPACE_SIZE, size=2 * pairs)]
    expected = nb201_edit_matrix(archs, dtype=np.float64)
    costs = cell_networkx_costs()
    times = []
    for k in range(pairs):
        a, b = cell_graph(archs[2 * k]), cell_graph(archs[2 * k + 1])
        start = time.perf_counter()
        value = nx.graph_edit_distance(a, b, **costs)
        times.append(time.perf_counter() - start)
        if value != expected[2 * k, 2 * k + 1]:
            raise AssertionError(f"networkx {value} != matrix {expected[2 * k, 2 * k + 1]}")
    per_entry = matrix_seconds / (n * n)
    per_pair = statistics.median(times)
    return {
        "pairs": pairs,
        "nx_pair_s": per_pair,
        "nx_pair_mean_s": float(np.mean(times)),
        "matrix_entry_s": per_entry,
        "speedup": per_pair / per_entry,
        "speedup_mean": float(np.mean(times)) / per_entry,
    }


# ----------------------------------------------------------------- approximation
def _perturbed(graph: object, edits: int, seed: int) -> tuple[object, float]:
    """A copy with ``edits`` random relabels, node deletions and edge flips, and the cost
    of that edit script (an upper bound on the true distance)."""
    from cbred.cgraph.distance import edit_path_cost

    rng = np.random.default_rng(seed)
    other = graph.copy()  # type: ignore[attr-defined]
    deleted = set()
    nodes = list(graph)  # type: ignore[call-overload]
    for _ in range(edits):
        kind = rng.integers(3)
        node = nodes[int(rng.integers(len(nodes)))]
        if node in deleted:
            continue
        if kind == 0:
            other.nodes[node]["op"] = SMALL_OPS[int(rng.integers(len(SMALL_OPS)))]
        elif kind == 1 and len(deleted) < len(nodes) // 4:
            other.remove_node(node)
            deleted.add(node)
        else:
            target = nodes[int(rng.integers(len(nodes)))]
            if target in deleted or target == node:
                continue
            u, v = min(node, target), max(node, target)
            if other.has_edge(u, v):
                other.remove_edge(u, v)
            else:
                other.add_edge(u, v)
    script = edit_path_cost(graph, other, {u: (None if u in deleted else u) for u in nodes})
    return other, script


def approximation_small(pairs: int, seed: int) -> dict[str, float]:
    """Approximation vs exact GED on random DAGs of 2-6 nodes."""
    from cbred.cgraph.distance import approx_edit_distance, edit_distance
    from cbred.cgraph.distance.edit import random_labelled_dag

    rng = np.random.default_rng(seed)
    rel, exact_t, approx_t, hits = [], [], [], 0
    for k in range(pairs):
        n1, n2 = rng.integers(2, 7, size=2)
        g1 = random_labelled_dag(int(n1), SMALL_OPS, edge_prob=0.4, seed=seed + 2 * k)
        g2 = random_labelled_dag(int(n2), SMALL_OPS, edge_prob=0.4, seed=seed + 2 * k + 1)
        start = time.perf_counter()
        exact = edit_distance(g1, g2)
        middle = time.perf_counter()
        upper = approx_edit_distance(g1, g2)
        end = time.perf_counter()
        if upper < exact - 1e-9:
            raise AssertionError(f"upper bound {upper} below exact {exact}")
        exact_t.append(middle - start)
        approx_t.append(end - middle)
        hits += upper == exact
        rel.append((upper - exact) / exact if exact else 0.0)
    return {
        "pairs": pairs,
        "exact_fraction": hits / pairs,
        "mean_rel_error": float(np.mean(rel)),
        "max_rel_error": float(np.max(rel)),
        "exact_s": statistics.median(exact_t),
        "approx_s": statistics.median(approx_t),
    }


def approximation_large(sizes: tuple[int, ...], pairs: int, seed: int) -> list[dict[str, float]]:
    """Approximation on larger DAGs (mean out-degree ~2): time, gap to the lower bound and
    to the edit script that made the pair."""
    from cbred.cgraph.distance import approx_edit_distance, edit_lower_bound
    from cbred.cgraph.distance.edit import random_labelled_dag

    rows = []
    for n in sizes:
        times, gaps, vs_script = [], [], []
        for k in range(pairs):
            g1 = random_labelled_dag(n, SMALL_OPS, edge_prob=min(1.0, 4.0 / n), seed=seed + k)
            g2, script = _perturbed(g1, max(2, n // 10), seed=seed + 100 + k)
            start = time.perf_counter()
            upper = approx_edit_distance(g1, g2)
            times.append(time.perf_counter() - start)
            lower = edit_lower_bound(g1, g2)
            if not lower <= upper + 1e-9:
                raise AssertionError(f"lower bound {lower} above upper bound {upper}")
            gaps.append((upper - lower) / upper if upper else 0.0)
            vs_script.append(upper / script if script else 1.0)
        rows.append(
            {
                "nodes": n,
                "pairs": pairs,
                "approx_s": statistics.median(times),
                "gap_to_lower_bound": float(np.mean(gaps)),
                "upper_over_script": float(np.mean(vs_script)),
            }
        )
    return rows


def approximation_traced(
    cells_per_stage: tuple[int, ...], pairs: int, seed: int
) -> list[dict[str, float]]:
    """Approximation on kernel graphs of traced NB201 networks of seeded random cells."""
    from cbred.bench.nb201 import NB201Space
    from cbred.bench.nb201_graph import nb201_graph
    from cbred.cgraph.distance import approx_edit_distance, edit_lower_bound, kernel_graph

    space = NB201Space()
    rows = []
    for cells in cells_per_stage:
        index = space.sample(2 * pairs, seed)
        graphs = [
            kernel_graph(nb201_graph(space.arch(int(i)), cells_per_stage=cells)) for i in index
        ]
        times, gaps = [], []
        for k in range(pairs):
            g1, g2 = graphs[2 * k], graphs[2 * k + 1]
            start = time.perf_counter()
            upper = approx_edit_distance(g1, g2)
            times.append(time.perf_counter() - start)
            lower = edit_lower_bound(g1, g2)
            gaps.append((upper - lower) / upper if upper else 0.0)
        rows.append(
            {
                "cells_per_stage": cells,
                "nodes": int(np.mean([g.number_of_nodes() for g in graphs])),
                "pairs": pairs,
                "approx_s": statistics.median(times),
                "gap_to_lower_bound": float(np.mean(gaps)),
            }
        )
    return rows


# ----------------------------------------------------------------- report
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny, in-process run for CI")
    parser.add_argument("--repeats", type=int, default=3, help="cold runs per full matrix")
    parser.add_argument("--job", help=argparse.SUPPRESS)  # internal: one matrix, JSON out
    parser.add_argument("--json", help="also write all figures to this JSON file")
    args = parser.parse_args(argv)
    if args.job:
        print(json.dumps(run_job(args.job, smoke=False)))
        return 0
    repeats = 1 if args.smoke else args.repeats
    figures: dict[str, object] = {}

    print("Probabilistic matrices, float32, cold process each (median time, peak RSS)")
    for kind, label in (("nb201", "NB201 space"), ("unique", "random, no duplicates")):
        for metric in PROBABILISTIC:
            result = measure(f"{kind}:{metric}", args.smoke, repeats if kind == "nb201" else 1)
            figures[f"{kind}:{metric}"] = result
            print(
                f"  {label:<22} {metric:<10} N={result['n']:<6} {result['seconds']:7.2f} s"
                f"  peak {result['peak_gib']:.2f} GiB  (inputs {result['input_seconds']:.2f} s)"
            )

    edit = measure("edit:edit", args.smoke, repeats)
    figures["edit"] = edit
    print(
        f"NB201 edit matrix N={edit['n']}: {edit['seconds']:.2f} s, peak {edit['peak_gib']:.2f} GiB"
    )
    speed = edit_speedup(edit["seconds"], int(edit["n"]), 5 if args.smoke else 60, seed=0)
    figures["edit_speedup"] = speed
    print(
        f"  networkx GED {speed['nx_pair_s'] * 1e3:.2f} ms/pair median "
        f"({speed['nx_pair_mean_s'] * 1e3:.2f} mean) over {speed['pairs']} pairs, same values; "
        f"matrix {speed['matrix_entry_s'] * 1e9:.1f} ns/entry: speed-up {speed['speedup']:.3g}x "
        f"median ({speed['speedup_mean']:.3g}x mean)"
    )

    small = approximation_small(20 if args.smoke else 200, seed=7)
    figures["approx_small"] = small
    print(
        f"Approximation vs exact, {small['pairs']} random DAG pairs of 2-6 nodes: exact on "
        f"{small['exact_fraction']:.0%}, mean relative error {small['mean_rel_error']:.3f}, "
        f"max {small['max_rel_error']:.3f}; {small['approx_s'] * 1e3:.2f} ms vs exact "
        f"{small['exact_s'] * 1e3:.2f} ms per pair (median)"
    )
    sizes = (50, 100) if args.smoke else (50, 100, 200, 500)
    large = approximation_large(sizes, 1 if args.smoke else 5, seed=11)
    figures["approx_large"] = large
    print("Approximation on large DAGs (exact GED infeasible: error bounded by a lower bound)")
    for row in large:
        print(
            f"  {row['nodes']:>4} nodes: {row['approx_s']:.3f} s/pair, (upper-lower)/upper "
            f"{row['gap_to_lower_bound']:.3f}, upper/known-script {row['upper_over_script']:.3f}"
            f" (median time, mean ratios over {row['pairs']} pairs)"
        )
    traced = approximation_traced((1,) if args.smoke else (5, 10), 1 if args.smoke else 5, 3)
    figures["approx_traced"] = traced
    print("Approximation on traced NB201 networks (kernel graphs; gap to the lower bound)")
    for row in traced:
        print(
            f"  {row['nodes']:>4} nodes ({row['cells_per_stage']} cells/stage): "
            f"{row['approx_s']:.3f} s/pair, (upper-lower)/upper {row['gap_to_lower_bound']:.3f}"
            f" (median time, mean gap over {row['pairs']} pairs)"
        )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=2)
    return 0


if __name__ == "__main__":
    from cbred.bench.cli import module_main

    raise SystemExit(module_main(main, "cbred.bench.perf_distance"))
