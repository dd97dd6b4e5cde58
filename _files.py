"""Atomic output files: a finished file or none, never a half-written one.

Every command that writes an output (``--out``, exports, reports) writes a temporary
file in the target's folder and renames it over the target only once the writer
returned, so a run killed or failing mid-write leaves the previous file (or nothing)
in place, and a reader never sees a partial file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path (same folder and suffix) to write; it replaces ``path`` when
    the block ends without an exception and is removed otherwise.

    A missing folder, a directory in the way or a folder that cannot be written raise one
    clear error naming the path.
    """
    path = check_output_path(path)
    tmp = path.parent / f".{path.stem}.{os.getpid()}.tmp{path.suffix}"
    try:
        yield tmp
        os.replace(tmp, path)
    except PermissionError as exc:
        raise ValueError(f"cannot write output {str(path)!r}: {exc.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)


def check_output_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path once it can take an output file: not a directory, in an existing
    folder this process may write.  Commands call it before their work, so that a bad
    ``--out`` fails in one line at once rather than after minutes of computing."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"output {str(path)!r} is a directory; expected a file path")
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"folder {str(folder)!r} of output {str(path)!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"cannot write output {str(path)!r}: folder {str(folder)!r} is read-only")
    return path


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically; returns the path."""
    with atomic_output(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def output_folder(path: str | os.PathLike[str]) -> Path:
    """Create the output folder ``path`` (and its parents) if needed; returns it.

    A file in the way or a folder that cannot be created is one clear error.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"output folder {str(path)!r} is an existing file; expected a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except PermissionError as exc:
        raise ValueError(f"cannot create output folder {str(path)!r}: {exc.strerror}") from None
    return path
