"""``cbred score``: score architectures of a space with training-free statistics into a store."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from cbred.bench.commands.common import (
    arch_index,
    open_space,
    positive_float,
    positive_int,
    scoring_parent,
    seed_int,
    space_parent,
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "score",
        parents=[space_parent(), scoring_parent()],
        help="score a space with training-free statistics (cached, resumable, parallel)",
        description="Scores architectures into a SQLite store; a re-run computes only what is "
        "missing. Use --workers for a local process pool or --ray ADDRESS for a Ray cluster.",
    )
    parser.add_argument(
        "--score", help="comma-separated statistic names (required unless only --merge)"
    )
    parser.add_argument(
        "--sample", type=positive_int, help="score a seeded uniform sample of this size"
    )
    parser.add_argument("--sample-seed", type=seed_int, default=0, help="seed of --sample")
    parser.add_argument(
        "--archs",
        metavar="FILE",
        help="score the architectures FILE lists, in its order (one index or arch string per "
        "line, blank lines skipped): a search's visits, a subspace, a half to score first",
    )
    parser.add_argument("--workers", type=positive_int, default=1, help="local worker processes")
    parser.add_argument("--ray", metavar="ADDRESS", help="Ray cluster address, or 'local'")
    parser.add_argument("--chunk-size", type=positive_int, default=8)
    parser.add_argument("--store", default="scores.db", help="SQLite score store")
    parser.add_argument(
        "--merge",
        nargs="+",
        default=[],
        metavar="FILE",
        help="merge these stores, or .parquet/.csv files --export wrote, into --store first",
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="recompute architectures whose stored values are failures (NaN with a reason)",
    )
    parser.add_argument(
        "--lock-timeout",
        type=positive_float,
        default=60.0,
        help="seconds to wait for another process's write lock on the store (default 60)",
    )
    parser.add_argument(
        "--export", type=export_path, help="also write the store's rows to .parquet or .csv"
    )
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)


def export_path(text: str) -> str:
    """An export file: ``.parquet`` or ``.csv`` in an existing folder (checked before any
    scoring, so a bad path never costs a run)."""
    path = Path(text)
    if path.suffix not in (".parquet", ".csv"):
        raise argparse.ArgumentTypeError(f"expected a .parquet or .csv file, got {text!r}")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a directory; expected a file")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"folder of {text!r} does not exist")
    return text


def listed_archs(space: Any, path: str) -> list[int]:
    """The indices of the architectures listed in the text file ``path``, in its order,
    each once (an index or an ``arch_str`` per line); a bad line is named with its number."""
    file = Path(path)
    if file.is_dir():
        raise ValueError(f"--archs {path!r} is a folder; expected a text file")
    if not file.exists():  # a pipe, such as --archs <(python make_list.py), is read too
        raise FileNotFoundError(f"--archs file {path!r} does not exist")
    try:
        lines = file.read_text().splitlines()
    except UnicodeDecodeError:
        raise ValueError(f"--archs file {path!r} is not text; expected one arch per line") from None
    found: dict[int, None] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            found[arch_index(space, line.strip())] = None
        except (IndexError, KeyError, ValueError) as exc:
            raise ValueError(f"--archs {path}, line {number}: {exc.args[0]}") from None
    if not found:
        raise ValueError(f"--archs file {path!r} lists no architecture; expected one per line")
    return list(found)


def run(args: argparse.Namespace) -> int:
    from cbred.proxies.engine import ScoreJob, run_scoring
    from cbred.proxies.executors import make_executor
    from cbred.proxies.store import ScoreStore

    if not args.score and not args.merge:
        raise ValueError("--score is required (comma-separated statistic names)")
    with ScoreStore(args.store, timeout=args.lock_timeout) as store:
        for other in args.merge:
            print(f"merged {store.merge(other)} rows of {other} into {args.store}")
        if not args.score:  # only a merge: the export is the whole store's
            if args.export:
                print(f"exported to {store.export(args.export)}")
            return 0
    space = open_space(args)
    job = ScoreJob(
        tuple(p.strip() for p in args.score.split(",") if p.strip()),
        space,
        args.batch_size,
        args.seed,
        args.device or "cpu",
    )
    if args.sample is not None and args.archs:
        raise ValueError("give --sample or --archs, not both")
    if args.sample is not None and args.sample > len(space):
        raise ValueError(f"--sample {args.sample} is more than the space's {len(space)}")
    if args.archs:
        archs = listed_archs(space, args.archs)
    elif args.sample is None:
        archs = range(len(space))
    else:
        archs = np.random.default_rng(args.sample_seed).choice(len(space), args.sample, False)
    executor = make_executor(args.workers, args.ray)
    with ScoreStore(args.store, timeout=args.lock_timeout) as store:
        summary = run_scoring(
            store,
            job,
            list(archs),
            executor,
            args.chunk_size,
            progress=not args.no_progress,
            retry_failed=args.retry_failed,
        )
        print(summary)
        if args.export:
            print(f"exported to {store.export(args.export, space=job.space_name)}")
    return 1 if summary.failed_chunks else 0
