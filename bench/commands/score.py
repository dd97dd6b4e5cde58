"""``cbred score``: score architectures of a space with training-free statistics into a store."""

from __future__ import annotations

import argparse

from cbred.bench.nb201 import NB201Space


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "score",
        help="score a space with training-free statistics (cached, resumable, parallel)",
        description="Scores architectures into a SQLite store; a re-run computes only what is "
        "missing. Use --workers for a local process pool or --ray ADDRESS for a Ray cluster.",
    )
    parser.add_argument("--space", default="nb201", choices=("nb201",))
    parser.add_argument("--proxies", required=True, help="comma-separated statistic names")
    parser.add_argument("--dataset", default="cifar10", help="data set of the scoring batch")
    parser.add_argument("--sample", type=int, help="score a seeded uniform sample of this size")
    parser.add_argument("--sample-seed", type=int, default=0, help="seed of --sample")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights and batch")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--cells", type=int, default=5, help="cells per stage")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=1, help="local worker processes")
    parser.add_argument("--ray", metavar="ADDRESS", help="Ray cluster address, or 'local'")
    parser.add_argument("--chunk-size", type=int, default=8)
    parser.add_argument("--store", default="scores.db", help="SQLite score store")
    parser.add_argument("--export", help="also write the store's rows to .parquet or .csv")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cbred.proxies.engine import ScoreJob, run_scoring
    from cbred.proxies.executors import make_executor
    from cbred.proxies.store import ScoreStore

    job = ScoreJob(
        tuple(p.strip() for p in args.proxies.split(",") if p.strip()),
        args.space,
        args.dataset,
        args.batch_size,
        args.seed,
        args.channels,
        args.cells,
        args.device,
    )
    space = NB201Space()
    archs = (
        range(len(space)) if args.sample is None else space.sample(args.sample, args.sample_seed)
    )
    executor = make_executor(args.workers, args.ray)
    with ScoreStore(args.store) as store:
        summary = run_scoring(
            store, job, list(archs), executor, args.chunk_size, progress=not args.no_progress
        )
        print(summary)
        if summary.failed_chunks:
            print(f"{len(summary.failed_chunks)} chunks failed after retries; re-run to retry")
        if args.export:
            print(f"exported to {store.export(args.export, space=job.space)}")
    return 1 if summary.failed_chunks else 0
