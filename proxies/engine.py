"""Scoring a search space: what to compute, how to compute a chunk, and the run loop.

A :class:`ScoreJob` fixes the setting (statistics, data set, batch size, seed,
network width).  :func:`run_scoring` asks the store what is missing, splits the
missing architectures into chunks, hands the chunks to an executor
(:mod:`proxies.executors`) and writes each finished chunk to the store in one
transaction, so a killed run loses at most the chunks in flight and a restarted
run computes only what is missing.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from cbred.proxies.store import ScoreRow, ScoreStore, StoreLockedError, new_run_id
from tqdm.auto import tqdm

ChunkFn = Callable[["ScoreJob", Sequence[int]], list[ScoreRow]]


@dataclass(frozen=True)
class ScoreJob:
    """The setting under which architectures of ``space`` are scored.

    ``space`` is any object of the space contract (:mod:`reduce.space`) with a
    ``batch(size, seed)``; it travels to worker processes by pickling, so it must be
    importable there (a class defined in an importable module or file on ``sys.path``).
    The store keys rows by the space's ``name`` (or ``spec``), its ``dataset`` attribute when
    it has one, the batch size and seed, and a version that hashes the statistic's code and
    the space's ``setting_key`` (its network setting: width, depth, cell convention, ...).
    """

    statistics: tuple[str, ...]
    space: Any
    batch_size: int = 64
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        from cbred.proxies.registry import get_proxy

        if isinstance(self.statistics, str) or not self.statistics:
            raise ValueError(
                f"statistics must be a non-empty list of names, got {self.statistics!r}"
            )
        if len(set(self.statistics)) != len(self.statistics):
            raise ValueError(f"statistics must be distinct names, got {self.statistics!r}")
        for name in self.statistics:
            get_proxy(name)  # raises a clear KeyError for unknown names
        for attribute in ("build", "arch_str", "batch"):
            if not callable(getattr(self.space, attribute, None)):
                raise ValueError(
                    f"space {self.space_name!r} has no {attribute}(); scoring needs build(i), "
                    "arch_str(i) and batch(size, seed)"
                )
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int):
            raise ValueError(f"batch size must be an integer, got {self.batch_size!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")

    def check_setting(self) -> None:
        """Raise (ValueError, naming what is wrong) when the *setting* cannot score anything:
        the device, the data of the scoring batch, the network of the first architecture.

        A failure here is a property of the run, not of an architecture, so it must never be
        cached per architecture as a NaN row (a rerun with the setting fixed would find it).
        """
        import torch
        from cbred.proxies.api import resolve_device

        try:
            resolve_device(self.device, torch.device("cpu"))
            self.space.batch(self.batch_size, self.seed)
            self.space.build(0)
        except Exception as exc:
            raise ValueError(
                f"the scoring setting fails before any architecture is scored "
                f"({type(exc).__name__}: {exc}); nothing was written to the store"
            ) from exc

    @property
    def space_name(self) -> str:
        name = getattr(self.space, "name", None) or getattr(self.space, "spec", None)
        return str(name) if name else type(self.space).__name__

    @property
    def dataset(self) -> str:
        """The data set of the scoring batch as the store records it ('' when unnamed)."""
        return str(getattr(self.space, "dataset", "") or "")

    @property
    def setting_key(self) -> str:
        return str(getattr(self.space, "setting_key", "") or "")

    @property
    def versions(self) -> dict[str, str]:
        """Statistic → version: a hash of its code, the passes' version and the network setting.

        The setting enters the version because the stored key has no column for it.
        """
        return {name: statistic_version(name, self.setting_key) for name in self.statistics}


def statistic_version(name: str, setting_key: str = "") -> str:
    """12 hex digits naming the code of statistic ``name`` and the network setting it scored.

    The hash covers the statistic's own function, :data:`proxies.passes.PASSES_VERSION`
    (bumped whenever the passes change the values they produce), the
    :data:`proxies.passes.FEATURE_VERSIONS` of the features it reads (not the passes'
    source, so that a refactor or a speed-up of a pass keeps every stored value valid) and
    the space's ``setting_key`` (NB201's shipped setting is ``C=16|N=5``).
    """
    from cbred.proxies.passes import FEATURE_VERSIONS, PASSES_VERSION
    from cbred.proxies.registry import get_proxy

    spec = get_proxy(name)
    text = inspect.getsource(spec.fn) + f"|passes={PASSES_VERSION}"
    text += "".join(
        f"|{f}={FEATURE_VERSIONS[f]}" for f in sorted(spec.needs & FEATURE_VERSIONS.keys())
    )
    if setting_key:
        text += f"|{setting_key}"
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def score_chunk(job: ScoreJob, archs: Sequence[int]) -> list[ScoreRow]:
    """Score the architectures ``archs`` (indices of the job's space); one row per statistic.

    An exception while scoring one architecture is recorded in the error text of the rows
    it affects instead of ending the chunk.
    """
    versions = job.versions
    rows: list[ScoreRow] = []
    for index in archs:
        start = time.perf_counter()
        values, errors = _score_one(job, int(index))
        seconds = time.perf_counter() - start
        for name in job.statistics:
            value = values[name]
            rows.append(
                ScoreRow(
                    job.space_name,
                    int(index),
                    name,
                    job.dataset,
                    job.batch_size,
                    job.seed,
                    versions[name],
                    job.space.arch_str(int(index)),
                    value if np.isfinite(value) else None,
                    seconds,
                    job.device,
                    errors.get(name),
                )
            )
    return rows


def _score_one(job: ScoreJob, index: int) -> tuple[dict[str, float], dict[str, str]]:
    """Values and error reasons of all the job's statistics for one architecture.

    The fused call comes first; if it raises, each statistic is scored on its own so that
    one failing statistic does not take the others' values with it (fused and separate
    values are equal by construction of :func:`proxies.score`).
    """
    from cbred.proxies.api import score_space

    setting = (job.batch_size, job.seed, job.device)
    try:
        result = score_space(job.space, index, list(job.statistics), *setting)
        return result.values, result.errors
    except Exception:  # isolate the failing statistic below
        values: dict[str, float] = {}
        errors: dict[str, str] = {}
        for name in job.statistics:
            try:
                result = score_space(job.space, index, [name], *setting)
                values[name] = result.values[name]
                if name in result.errors:
                    errors[name] = result.errors[name]
            except Exception as exc:  # recorded in the store, never fatal for the run
                values[name] = float("nan")
                errors[name] = f"{type(exc).__name__}: {exc}"
        return values, errors


@dataclass
class RunSummary:
    """What a run did: architectures scored now, found in the store, scored meanwhile by
    another run on the same store, failed; chunks given up; wall time."""

    requested: int
    cached: int
    scored: int = 0
    failed: int = 0
    by_others: int = 0
    seconds: float = 0.0
    failed_chunks: list[list[int]] = field(default_factory=list)

    def __str__(self) -> str:
        rate = self.scored / self.seconds if self.seconds > 0 else float("nan")
        text = (
            f"{self.requested} requested: {self.cached} cached, {self.scored} scored "
            f"({self.failed} with errors), {self.seconds:.1f} s, {rate:.2f} arch/s"
        )
        if self.by_others:
            text += f"; {self.by_others} scored meanwhile by another run on the store"
        if self.failed_chunks:
            lost = sum(len(c) for c in self.failed_chunks)
            text += (
                f"; {len(self.failed_chunks)} chunks FAILED after retries ({lost} architectures "
                "not scored; re-run to retry them)"
            )
        return text


def missing_statistics(
    store: ScoreStore, job: ScoreJob, archs: Sequence[int], retry_failed: bool = False
) -> dict[tuple[str, ...], list[int]]:
    """The architectures of ``archs`` lacking statistics in the store, grouped by what they
    lack: ``{statistics missing: architectures}``, statistics in the job's order.

    So a job that adds a statistic to a store computes only that one where the others are
    stored.  A stored failure (NULL value) counts as present unless ``retry_failed``.
    """
    done = store.done(
        job.space_name, job.dataset, job.batch_size, job.seed, job.versions, not retry_failed
    )
    groups: dict[tuple[str, ...], list[int]] = {}
    for a in archs:
        lacking = tuple(s for s in job.statistics if (int(a), s) not in done)
        if lacking:
            groups.setdefault(lacking, []).append(int(a))
    return groups


def missing_archs(
    store: ScoreStore, job: ScoreJob, archs: Sequence[int], retry_failed: bool = False
) -> list[int]:
    """Architectures of ``archs`` lacking any of the job's statistics in the store."""
    lacking = {a for group in missing_statistics(store, job, archs, retry_failed).values()
               for a in group}  # fmt: skip
    return [int(a) for a in archs if int(a) in lacking]


def _check_indices(job: ScoreJob, archs: Sequence[int]) -> None:
    """Raise ValueError naming the first index outside the space."""
    size = len(job.space) if hasattr(job.space, "__len__") else None
    for a in archs:
        if isinstance(a, bool) or a < 0 or (size is not None and a >= size):
            raise ValueError(
                f"architecture index {a} is outside the space {job.space_name!r} "
                f"(expected 0..{size - 1 if size else '?'})"
            )


def _claimed_chunks(
    store: ScoreStore,
    job: ScoreJob,
    todo: Sequence[int],
    chunk_size: int,
    run: str,
    lease: float,
    retry_failed: bool,
    held: set[int],
    stop: list[Exception],
) -> Iterator[list[int]]:
    """Chunks of ``todo`` claimed for ``run`` one at a time, as an executor asks for them.

    Architectures another live run holds go to ``held``; a lock error ends the chunks and
    is appended to ``stop``.
    """
    queue = deque(todo)
    setting = (job.space_name, job.dataset, job.batch_size, job.seed)
    while queue and not stop:
        window = [queue.popleft() for _ in range(min(len(queue), CLAIM_WINDOW * chunk_size))]
        try:
            claimed, others, rest = store.claim(
                setting, job.versions, window, chunk_size, run, lease, not retry_failed
            )
        except StoreLockedError as exc:
            stop.append(exc)
            return
        queue.extendleft(reversed(rest))
        held.update(others)
        if claimed:
            yield claimed


CLAIM_WINDOW = 4
"""Chunks' worth of architectures examined per claim transaction."""


def run_scoring(
    store: ScoreStore,
    job: ScoreJob,
    archs: Sequence[int],
    executor: object | None = None,
    chunk_size: int = 8,
    progress: bool = True,
    chunk_fn: ChunkFn = score_chunk,
    retry_failed: bool = False,
    lease: float = 600.0,
    poll: float = 2.0,
) -> RunSummary:
    """Score every architecture in ``archs`` that the store lacks; returns a summary.

    Only the statistics an architecture lacks are computed: a job that adds a statistic to
    a store scores that one alone where the others are stored (fused and separate values
    are equal by construction of :func:`proxies.score`, so the rows agree either way).

    The setting is checked first (:meth:`ScoreJob.check_setting`): a wrong device or missing
    data raises before anything is written, instead of filling the store with NaN rows.
    Architectures are claimed chunk by chunk as the executor asks for them, so several runs
    on one store split the work; what another live run holds is waited for (polling every
    ``poll`` seconds) and taken over if that run dies or its ``lease`` runs out.
    ``retry_failed`` recomputes stored failures.  When the store stays locked by another
    process, the rows computed so far are kept in a side store beside it and
    :class:`StoreLockedError` says where.
    """
    from cbred.proxies.executors import InProcessExecutor

    if chunk_size < 1:
        raise ValueError(f"chunk size must be >= 1, got {chunk_size}")
    archs = [int(a) for a in archs]
    _check_indices(job, archs)
    executor = executor or InProcessExecutor()
    start = time.perf_counter()
    groups = missing_statistics(store, job, archs, retry_failed)
    if groups:
        job.check_setting()
    pending = sum(len(group) for group in groups.values())
    summary = RunSummary(requested=len(archs), cached=len(archs) - pending)
    run = new_run_id()
    unsaved: list[ScoreRow] = []
    stop: list[Exception] = []
    try:
        with tqdm(total=pending, disable=not progress, unit="arch", desc="scoring") as bar:
            for statistics, todo in groups.items():
                part = replace(job, statistics=statistics)  # only what these archs lack
                while todo and not stop:
                    held: set[int] = set()
                    chunks = _claimed_chunks(
                        store, part, todo, chunk_size, run, lease, retry_failed, held, stop
                    )
                    for chunk, rows in executor.map_chunks(chunk_fn, part, chunks):  # type: ignore[attr-defined]
                        if rows is None:  # the chunk failed even after retries
                            summary.failed_chunks.append(list(chunk))
                            continue
                        summary.scored += len(chunk)
                        summary.failed += len({r.arch for r in rows if r.failed})
                        bar.update(len(chunk))
                        unsaved.extend(rows)
                        if not stop:
                            try:
                                store.put(unsaved)
                                unsaved = []
                            except StoreLockedError as exc:
                                stop.append(exc)
                    todo = missing_archs(store, part, sorted(held), retry_failed) if held else []
                    summary.by_others += len(held) - len(todo)
                    bar.update(len(held) - len(todo))
                    if todo and not stop:
                        time.sleep(poll)
    finally:
        _save_unsaved(store, unsaved, stop)
        try:
            store.release(run)
        except StoreLockedError:
            pass  # the claims end with this process or their lease
    summary.seconds = time.perf_counter() - start
    return summary


def _save_unsaved(store: ScoreStore, rows: list[ScoreRow], stop: list[Exception]) -> None:
    """Write rows not yet in the store: to the store if it is free now, else to a side
    store next to it; then raise the lock error that stopped the run, if any."""
    if rows:
        try:
            store.put(rows)
            rows = []
        except StoreLockedError as exc:
            stop.append(exc)
    if not stop:
        return
    message = str(stop[0])
    if rows:
        side = store.path.with_name(f"{store.path.name}.unsaved-{os.getpid()}.db")
        with ScoreStore(side) as kept:
            kept.put(rows)
        message += (
            f"; the {len({r.arch for r in rows})} architectures scored meanwhile are kept in "
            f"{str(side)!r}: merge them with `cbred score --store {store.path} --merge {side}`"
        )
    raise StoreLockedError(message)
