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
