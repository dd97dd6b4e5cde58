"""Probabilistic distances: closed forms, a naive reference, metric properties, chunking."""

from __future__ import annotations

import numpy as np
import pytest
from cbred.cgraph.distance import (
    hellinger_matrix,
    js_matrix,
    kl_matrix,
    sqrt_js_matrix,
    to_distributions,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

LN2 = np.log(2.0)
MATRICES = {
    "kl": kl_matrix,
    "js": js_matrix,
    "sqrt_js": sqrt_js_matrix,
    "hellinger": hellinger_matrix,
}
TRUE_METRICS = ("sqrt_js", "hellinger")


def _ref(name: str, p: np.ndarray, q: np.ndarray) -> float:
    """Textbook per-pair definitions, written independently of the matrix code."""
    if name == "kl":  # over the columns either uses (smoothing leaves unused columns at 0)
        used = (p > 0) | (q > 0)
        return float(np.sum((p - q)[used] * (np.log(p[used]) - np.log(q[used]))))
    if name == "hellinger":
        return float(np.linalg.norm(np.sqrt(p) - np.sqrt(q)) / np.sqrt(2))
    m = (p + q) / 2
    kl_pm = sum(a * np.log2(a / b) for a, b in zip(p, m) if a > 0)
    kl_qm = sum(a * np.log2(a / b) for a, b in zip(q, m) if a > 0)
    js = 0.5 * kl_pm + 0.5 * kl_qm
    return float(np.sqrt(max(js, 0.0)) if name == "sqrt_js" else js)


def _reference_matrix(name: str, counts: np.ndarray, smoothing: float) -> np.ndarray:
    p = to_distributions(counts, smoothing)
    return np.array([[_ref(name, a, b) for b in p] for a in p])


def _smoothing(name: str) -> float:
    return 0.5 if name == "kl" else 0.0


count_rows = st.integers(2, 7).flatmap(
    lambda n: st.integers(1, 6).flatmap(
        lambda p: arrays(np.int64, (n, p), elements=st.integers(0, 6))
    )
)


def _nonempty(counts: np.ndarray) -> np.ndarray:
    counts = counts.copy()
    counts[counts.sum(axis=1) == 0, 0] = 1
    return counts


# ----------------------------------------------------------------- closed forms
def test_disjoint_supports_are_at_maximal_distance() -> None:
    counts = np.array([[3, 0], [0, 5]])
    assert hellinger_matrix(counts, dtype=np.float64)[0, 1] == pytest.approx(1.0)
    assert js_matrix(counts, dtype=np.float64)[0, 1] == pytest.approx(1.0)
    assert sqrt_js_matrix(counts, dtype=np.float64)[0, 1] == pytest.approx(1.0)


def test_hand_computed_values() -> None:
    counts = np.array([[1.0, 0.0], [0.5, 0.5]])
    h = hellinger_matrix(counts, dtype=np.float64)[0, 1]
    assert h == pytest.approx(np.sqrt(1 - np.sqrt(0.5)))
    # m = (0.75, 0.25): JS = ½·log2(4/3) + ½·(½·log2(2/3) + ½·log2(2))
    expected_js = 0.5 * np.log2(4 / 3) + 0.5 * (0.5 * np.log2(2 / 3) + 0.5)
    assert js_matrix(counts, dtype=np.float64)[0, 1] == pytest.approx(expected_js)
    kl = kl_matrix(np.array([[0.5, 0.5], [0.9, 0.1]]), smoothing=0.0, dtype=np.float64)[0, 1]
    expected_kl = (0.5 - 0.9) * np.log(0.5 / 0.9) + (0.5 - 0.1) * np.log(0.5 / 0.1)
    assert kl == pytest.approx(expected_kl)


def test_laplace_smoothing_of_counts() -> None:
    # α = 1 turns counts (1, 0) and (0, 1) into (2/3, 1/3) and (1/3, 2/3)
    np.testing.assert_allclose(to_distributions(np.array([[1, 0], [0, 1]]), 1.0)[0], [2 / 3, 1 / 3])
    kl = kl_matrix(np.array([[1, 0], [0, 1]]), smoothing=1.0, dtype=np.float64)[0, 1]
    assert kl == pytest.approx(2 / 3 * LN2)


def test_scale_invariance_without_smoothing() -> None:
    counts = np.array([[1, 2, 3], [2, 4, 6], [3, 0, 1]])
    for name in ("js", "sqrt_js", "hellinger"):
        d = MATRICES[name](counts, dtype=np.float64)
        assert d[0, 1] == 0.0, name
        assert d[0, 2] == d[1, 2], name


# ----------------------------------------------------------------- reference and properties
@pytest.mark.parametrize("name", sorted(MATRICES))
@settings(max_examples=25, deadline=None)
@given(raw=count_rows)
def test_matches_reference_and_properties(name: str, raw: np.ndarray) -> None:
    counts = _nonempty(raw)
    smoothing = _smoothing(name)
    d = MATRICES[name](counts, smoothing=smoothing, dtype=np.float64)
    np.testing.assert_allclose(d, _reference_matrix(name, counts, smoothing), atol=1e-9)
    assert np.all(np.diag(d) == 0.0)
    assert np.all(d >= 0.0)
    np.testing.assert_allclose(d, d.T, atol=1e-12)
    p = to_distributions(counts, smoothing)
    same = np.all(p[:, None, :] == p[None, :, :], axis=2)
    assert np.all(d[same] == 0.0)  # equal distributions: exactly zero
    assert np.all(d[~same] > 0.0)  # identity of indiscernibles
    if name in TRUE_METRICS:
        assert np.all(d[:, None, :] <= d[:, :, None] + d[None, :, :] + 1e-12)


def test_js_is_not_a_metric_but_its_root_is() -> None:
    counts = np.array([[1, 0], [1, 1], [0, 1]])
    js = js_matrix(counts, dtype=np.float64)
    assert js[0, 2] > js[0, 1] + js[1, 2]
    root = sqrt_js_matrix(counts, dtype=np.float64)
    assert root[0, 2] <= root[0, 1] + root[1, 2]


# ----------------------------------------------------------------- numerics and layout
@pytest.mark.parametrize("name", sorted(MATRICES))
def test_chunking_dtype_and_duplicates(name: str) -> None:
    rng = np.random.default_rng(3)
    base = rng.integers(0, 5, size=(23, 9))
    base[:, 0] += 1
    counts = base[rng.integers(0, 23, size=61)]  # many duplicated rows
    smoothing = _smoothing(name)
    full = MATRICES[name](counts, smoothing=smoothing, dtype=np.float64)
    for chunk in (1, 7, 1000):
        blocked = MATRICES[name](counts, smoothing=smoothing, dtype=np.float64, chunk=chunk)
        np.testing.assert_allclose(blocked, full, atol=1e-12)
    single = MATRICES[name](counts, smoothing=smoothing, dtype=np.float32)
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, full, atol=1e-6)
    reference = _reference_matrix(name, counts, smoothing)
    np.testing.assert_allclose(full, reference, atol=1e-9)


def test_memmap_output(tmp_path) -> None:
    counts = np.random.default_rng(0).integers(1, 9, size=(40, 5))
    path = tmp_path / "D.npy"
    written = hellinger_matrix(counts, out=path, chunk=6)
    assert isinstance(written, np.memmap)
    written.flush()
    np.testing.assert_array_equal(np.load(path), hellinger_matrix(counts))
    target = np.zeros((40, 40), np.float64)
    assert hellinger_matrix(counts, dtype=np.float64, out=target) is target


@pytest.mark.parametrize(
    ("counts", "kwargs", "message"),
    [
        (np.array([1, 2, 3]), {}, "expected an \\(N, P\\) array"),
        (np.array([[1, -1]]), {}, "non-negative"),
        (np.array([[1, np.nan]]), {}, "NaN"),
        (np.array([[0, 0], [1, 1]]), {}, "sum to zero"),
        (np.array([[1, 1]]), {"smoothing": -1.0}, "smoothing must be"),
        (np.array([[1, 1]]), {"dtype": np.int32}, "float32 or float64"),
        (np.array([[1, 1]]), {"chunk": 0}, "chunk must be"),
        (np.array([[1, 1]]), {"out": np.zeros((2, 2), np.float32)}, "expected \\(1, 1\\)"),
    ],
)
def test_bad_input_is_named(counts: np.ndarray, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        hellinger_matrix(counts, **kwargs)


def test_kl_needs_smoothing_for_zeros() -> None:
    with pytest.raises(ValueError, match="smoothing > 0"):
        kl_matrix(np.array([[1, 0], [1, 1]]), smoothing=0.0)
    assert np.isfinite(kl_matrix(np.array([[1, 0], [1, 1]]))).all()
