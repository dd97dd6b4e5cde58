"""Chunk functions for engine tests; module-level so spawned workers can import them."""

from __future__ import annotations

import os
from pathlib import Path

from cbred.proxies.engine import score_chunk


def die_once_then_score(job, chunk):
    """Kill this worker process the first time (a marker file remembers), then score."""
    marker = Path(os.environ["CBRED_TEST_MARKER"])
    if not marker.exists():
        marker.write_text("died")
        os._exit(9)
    return score_chunk(job, chunk)


def always_raise(job, chunk):
    raise RuntimeError(f"chunk {chunk} cannot be scored")


def slow_params(job, chunk):
    """Score params, after a pause (so concurrent runs overlap) and noting who scored what."""
    import time

    time.sleep(float(os.environ.get("CBRED_TEST_PAUSE", "0.2")))
    log = os.environ.get("CBRED_TEST_LOG")
    if log:
        with open(log, "a") as handle:
            handle.write(" ".join(map(str, chunk)) + "\n")
    return score_chunk(job, chunk)


def record_pid_and_hang(job, chunk):
    """Write this worker's pid into the folder CBRED_TEST_PIDS, then work for a long time."""
    import time

    folder = Path(os.environ["CBRED_TEST_PIDS"])
    (folder / str(os.getpid())).write_text("worker")
    time.sleep(600)
    return score_chunk(job, chunk)
