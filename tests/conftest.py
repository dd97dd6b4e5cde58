"""Shared fixtures: one NB201 space per test session (loading it reads the bundled table)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def space():
    from bench.nb201 import NB201Space

    return NB201Space()
