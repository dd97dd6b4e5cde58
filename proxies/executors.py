"""Executors: run chunk-scoring functions in-process, on a local process pool, or on Ray.

All three share one method, ``map_chunks(fn, job, chunks)``, which yields
``(chunk, rows)`` pairs as chunks finish (in completion order); ``rows`` is
``None`` for a chunk that still failed after ``retries`` further attempts.  A
chunk fails when its function raises or its worker process dies; per-architecture
problems are recorded by the function itself and do not fail the chunk.
``chunks`` may be a lazy iterable: the executors take a chunk only when a worker
is free for it (a few in flight per worker), so the caller can claim work as it
goes (:func:`proxies.engine.run_scoring`).
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from typing import Any

ChunkResult = tuple[list[int], Any]


class InProcessExecutor:
    """Scores chunks one after another in this process."""

    def __init__(self, retries: int = 1) -> None:
        self.retries = retries

    def map_chunks(
        self, fn: Callable, job: object, chunks: Iterable[list[int]]
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


def _init_worker(threads: int, parent: int | None = None) -> None:
    """Set the worker's torch threads; with ``parent``, exit as soon as that process is gone.

    A pool worker busy with a chunk would otherwise outlive a parent killed with SIGKILL
    by minutes (and hold its memory); a daemon thread polls the parent's pid.
    """
    import torch

    torch.set_num_threads(threads)
    if parent is not None:
        threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int, interval: float = 0.5) -> None:
    while os.getppid() == parent:
        time.sleep(interval)
    os._exit(1)


SCRIPT_HINT = (
    "worker processes died before finishing any chunk; a script that starts workers must "
    "call run_scoring under `if __name__ == '__main__':` (spawned workers import the script)"
)


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
            initargs=(self.threads, os.getpid()),
        )

    def map_chunks(
        self, fn: Callable, job: object, chunks: Iterable[list[int]]
    ) -> Iterator[ChunkResult]:
        if getattr(multiprocessing.current_process(), "_inheriting", False):
            raise RuntimeError(SCRIPT_HINT)  # a spawned worker importing an unguarded script
        source = iter(chunks)
        known: list[list[int]] = []  # every chunk taken from source, by number
        attempts: list[int] = []
        retry: list[int] = []  # numbers of chunks to submit again
        finished = 0
        pool = None
        try:
            while True:
                running: dict[cf.Future, int] = {}
                broken = False
                while True:
                    while not broken and len(running) < 2 * self.workers:
                        i = retry.pop(0) if retry else _take(source, known, attempts)
                        if i is None:
                            break
                        pool = pool or self._pool()
                        try:
                            running[pool.submit(fn, job, known[i])] = i
                        except BrokenProcessPool:  # broke since the last wait
                            retry.insert(0, i)
                            broken = True
                    if not running:
                        break
                    done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                    for future in done:
                        i = running.pop(future)
                        exc = future.exception()
                        if exc is None:
                            finished += 1
                            yield known[i], future.result()
                            continue
                        print(f"chunk {i} failed: {exc!r}", file=sys.stderr)
                        if isinstance(exc, BrokenProcessPool):
                            broken = True  # the pool is dead: every chunk in it fails
                            if not finished:
                                print(SCRIPT_HINT, file=sys.stderr)
                        attempts[i] += 1
                        if attempts[i] > self.retries:
                            yield known[i], None
                        else:
                            retry.append(i)
                if not broken:
                    return
                pool.shutdown(wait=True, cancel_futures=True)
                pool = None  # a fresh pool takes the chunks to retry
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)


def _take(source: Iterator[list[int]], known: list[list[int]], attempts: list[int]) -> int | None:
    """Take the next chunk from ``source`` into ``known``; its number, or None at the end."""
    chunk = next(source, None)
    if chunk is None:
        return None
    known.append(list(chunk))
    attempts.append(0)
    return len(known) - 1


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
        except ImportError:
            raise ValueError(
                "the Ray executor needs ray, which is not installed: pip install 'cbred[ray]'"
            ) from None
        self.ray = ray
        if not ray.is_initialized():
            kwargs = {"include_dashboard": False, "log_to_driver": False, **(init_kwargs or {})}
            ray.init(address=address, **kwargs)
        self.retries = retries
        self.options = {"num_cpus": num_cpus_per_task, "num_gpus": num_gpus_per_task}

    def map_chunks(
        self, fn: Callable, job: object, chunks: Iterable[list[int]]
    ) -> Iterator[ChunkResult]:
        ray = self.ray
        threads = max(1, int(self.options["num_cpus"]))
        task = ray.remote(_ray_chunk).options(
            max_retries=self.retries, retry_exceptions=True, **self.options
        )
        slots = max(1, int(ray.cluster_resources().get("CPU", 1) // self.options["num_cpus"]))
        source = iter(chunks)
        refs: dict[Any, list[int]] = {}
        for chunk in itertools.islice(source, 2 * slots):
            refs[task.remote(fn, job, chunk, threads)] = list(chunk)
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            chunk = refs.pop(ready[0])
            try:
                yield chunk, ray.get(ready[0])
            except (ray.exceptions.RayTaskError, ray.exceptions.WorkerCrashedError) as exc:
                print(f"chunk {chunk[:3]}... failed on Ray: {exc!r}", file=sys.stderr)
                yield chunk, None
            following = next(source, None)
            if following is not None:
                refs[task.remote(fn, job, following, threads)] = list(following)

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
