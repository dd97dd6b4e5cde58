"""Executors: run chunk-scoring functions in-process, on a local process pool, or on Ray.

All three share one method, ``map_chunks(fn, job, chunks)``, which yields
``(chunk, rows)`` pairs as chunks finish (in completion order); ``rows`` is
``None`` for a chunk that still failed after ``retries`` further attempts.  A
chunk fails when its function raises or its worker process dies; per-architecture
problems are recorded by the function itself and do not fail the chunk.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

ChunkResult = tuple[list[int], Any]


class InProcessExecutor:
    """Scores chunks one after another in this process."""

    def __init__(self, retries: int = 1) -> None:
        self.retries = retries

    def map_chunks(
        self, fn: Callable, job: object, chunks: Sequence[list[int]]
    ) -> Iterator[ChunkResult]:
        for chunk in chunks:
            rows = None
            for _ in range(self.retries + 1):
                try:
                    rows = fn(job, chunk)
                    break
                except Exception as exc:  # a failing chunk is retried, then reported
                    print(f"chunk {chunk[:3]}... failed: {exc!r}", file=sys.stderr)
            yield chunk, rows


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


class ProcessPoolExecutor:
    """A pool of ``workers`` local processes; the machine's cores are split among them.

    Processes are started with 'spawn', so no thread pool state is inherited.  When a
    worker dies (killed, out of memory), the pool is rebuilt and every unfinished chunk
    is submitted again; a chunk is given up after ``retries`` further attempts.
    """

    def __init__(self, workers: int = 2, retries: int = 2, threads: int | None = None) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self.retries = retries
        self.threads = threads or max(1, (os.cpu_count() or 1) // workers)

    def _pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.threads,),
        )

    def map_chunks(
        self, fn: Callable, job: object, chunks: Sequence[list[int]]
    ) -> Iterator[ChunkResult]:
        attempts = dict.fromkeys(range(len(chunks)), 0)
        pending = list(range(len(chunks)))
        while pending:
            pool = self._pool()
            futures = {pool.submit(fn, job, chunks[i]): i for i in pending}
            pending = []
            try:
                # A dead worker breaks the pool: all its unfinished futures then hold
                # BrokenProcessPool, and a fresh pool takes them in the next round.
                for future in cf.as_completed(futures):
                    i = futures[future]
                    exc = future.exception()
                    if exc is None:
                        yield chunks[i], future.result()
                        continue
                    print(f"chunk {i} failed: {exc!r}", file=sys.stderr)
                    attempts[i] += 1
                    if attempts[i] > self.retries:
                        yield chunks[i], None
                    else:
                        pending.append(i)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor:
    """Runs each chunk as a Ray task on a cluster (``address``) or a local Ray instance.

    Ray re-runs a task whose worker died (``max_retries``) and, with
    ``retry_exceptions``, one that raised.  Results come back to the calling process,
    which writes them to the store.
    """

    def __init__(
        self,
        address: str | None = None,
        retries: int = 2,
        num_cpus_per_task: float = 1,
        num_gpus_per_task: float = 0,
        init_kwargs: dict | None = None,
    ) -> None:
        try:
            import ray
        except ImportError as exc:
            raise ImportError("the Ray executor needs ray: pip install 'cbred[ray]'") from exc
        self.ray = ray
        if not ray.is_initialized():
            kwargs = {"include_dashboard": False, "log_to_driver": False, **(init_kwargs or {})}
            ray.init(address=address, **kwargs)
        self.retries = retries
        self.options = {"num_cpus": num_cpus_per_task, "num_gpus": num_gpus_per_task}

    def map_chunks(
        self, fn: Callable, job: object, chunks: Sequence[list[int]]
    ) -> Iterator[ChunkResult]:
        ray = self.ray
        threads = max(1, int(self.options["num_cpus"]))
        task = ray.remote(_ray_chunk).options(
            max_retries=self.retries, retry_exceptions=True, **self.options
        )
        refs = {task.remote(fn, job, chunk, threads): i for i, chunk in enumerate(chunks)}
        waiting = list(refs)
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1)
            i = refs[ready[0]]
            try:
                yield chunks[i], ray.get(ready[0])
            except (ray.exceptions.RayTaskError, ray.exceptions.WorkerCrashedError) as exc:
                print(f"chunk {i} failed on Ray: {exc!r}", file=sys.stderr)
                yield chunks[i], None

    def shutdown(self) -> None:
        self.ray.shutdown()


def _ray_chunk(fn: Callable, job: object, chunk: list[int], threads: int) -> Any:
    _init_worker(threads)
    return fn(job, chunk)


def make_executor(workers: int = 1, ray_address: str | None = None) -> object:
    """The executor the CLI flags ask for: Ray when an address is given ('local' for a
    fresh local instance), a process pool for more than one worker, else in-process."""
    if ray_address:
        return RayExecutor(None if ray_address == "local" else ray_address)
    if workers > 1:
        return ProcessPoolExecutor(workers)
    return InProcessExecutor()
