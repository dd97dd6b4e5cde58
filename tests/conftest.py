"""Shared fixtures: one NB201 space per session, and one torch thread for every test."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def space():
    from cbred.bench.nb201 import NB201Space

    return NB201Space()


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tiny networks run fastest single-threaded, and the test machines have 2 shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def readonly_folder(tmp_path):
    """A folder this process cannot write into (skips where the user can write anywhere)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        yield folder
    finally:
        folder.chmod(0o700)
