"""Chunked construction of N×N distance matrices with bounded memory.

Every matrix metric in this package fills its output one block of rows at a
time, so the temporaries never exceed a fixed budget whatever N is, and the
output itself may live in a memory-mapped ``.npy`` file instead of RAM.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import numpy as np

BLOCK_BYTES = 64 * 2**20
"""Default budget (bytes) for one block's float64 temporaries."""

OutSpec = np.ndarray | str | os.PathLike | None
"""Where a matrix goes: a new array (None), an existing (N, N) array, or a ``.npy`` path."""


def resolve_dtype(dtype: object) -> np.dtype:
    """The output dtype, which must be float32 or float64."""
    resolved = np.dtype(dtype)  # type: ignore[call-overload]
    if resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {resolved}")
    return resolved


def prepare_output(n: int, dtype: np.dtype, out: OutSpec) -> np.ndarray:
    """An (n, n) array to fill: new, the caller's array, or a fresh ``.npy`` memmap at a path.

    A path gives ``numpy.lib.format.open_memmap`` so the finished file loads with
    ``np.load(path, mmap_mode="r")`` and the matrix never has to fit in RAM.
    """
    if out is None:
        return np.empty((n, n), dtype=dtype)
    if isinstance(out, (str, os.PathLike)):
        return np.lib.format.open_memmap(os.fspath(out), mode="w+", dtype=dtype, shape=(n, n))
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be None, a path or an ndarray, got {type(out).__name__}")
    if out.shape != (n, n) or out.dtype != dtype:
        raise ValueError(
            f"out has shape {out.shape} and dtype {out.dtype}; expected ({n}, {n}) and {dtype}"
        )
    return out


def row_chunk(n_cols: int, chunk: int | None, temporaries: int = 4) -> int:
    """Rows per block: ``chunk`` if given, else what keeps ``temporaries`` float64 blocks
    of ``n_cols`` columns within :data:`BLOCK_BYTES`."""
    if chunk is not None:
        if int(chunk) < 1:
            raise ValueError(f"chunk must be a positive number of rows, got {chunk}")
        return int(chunk)
    return max(1, BLOCK_BYTES // (8 * temporaries * max(1, n_cols)))


def row_blocks(n: int, chunk: int) -> Iterator[slice]:
    """Consecutive row slices of at most ``chunk`` rows covering 0..n."""
    for start in range(0, n, chunk):
        yield slice(start, min(n, start + chunk))


BlockKernel = Callable[[np.ndarray, np.ndarray], None]
"""``kernel(ids, target)`` writes the distances from the distinct rows ``ids`` to all M
distinct rows into ``target``, a (len(ids), M) array of the output dtype."""


def fill_deduplicated(
    rows: np.ndarray,
    make_kernel: Callable[[np.ndarray], BlockKernel],
    dtype: np.dtype,
    chunk: int | None,
    out: OutSpec,
) -> np.ndarray:
    """Fill the (N, N) matrix of a row-wise distance, computing each distinct row once.

    ``make_kernel(unique_rows)`` returns a :data:`BlockKernel` over the distinct rows.
    Duplicated rows (common: many architectures share one op histogram) are computed
    once and copied by index, and the distance between equal rows is set to exactly
    0, which plain floating-point cancellation would not guarantee.
    """
    n = rows.shape[0]
    result = prepare_output(n, dtype, out)
    unique, inverse = np.unique(rows, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    m = len(unique)
    if m == n:  # no duplicates: keep the caller's order and fill blocks in place
        kernel = make_kernel(rows)
        for block in row_blocks(n, row_chunk(n, chunk)):
            ids = np.arange(block.start, block.stop)
            kernel(ids, result[block])
            result[block][np.arange(len(ids)), ids] = 0.0
        return result
    kernel = make_kernel(unique)
    if m * m * 8 <= BLOCK_BYTES:  # few distinct rows: one small table, then look-ups
        table = np.empty((m, m), dtype)
        kernel(np.arange(m), table)
        np.fill_diagonal(table, 0.0)
        table = (table + table.T) / 2  # exactly symmetric
        for block in row_blocks(n, row_chunk(n, chunk, temporaries=1)):
            np.take(table[inverse[block]], inverse, axis=1, out=result[block])
        return result
    for block in row_blocks(n, row_chunk(m + n, chunk)):
        ids = inverse[block]
        target = np.empty((len(ids), m), dtype)
        kernel(ids, target)
        target[np.arange(len(ids)), ids] = 0.0
        np.take(target, inverse, axis=1, out=result[block])
    return result
