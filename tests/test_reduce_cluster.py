"""Clusterers and parameter selection on synthetic data with known structure."""

from __future__ import annotations

import numpy as np
import pytest
from cbred.reduce.cluster import (
    KMeansClusterer,
    KMedoidsClusterer,
    Points,
    SpectralClusterer,
    affinity_matrix,
    make_clusterer,
)
from cbred.reduce.select import select_best_parameter, weighted_silhouette
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist
from sklearn.cluster import SpectralClustering
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score, silhouette_score


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    x, y = make_blobs(n_samples=150, centers=4, cluster_std=0.4, random_state=3)
    return x, y


def _fit(clusterer, x: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    data = x if clusterer.input_kind == "embedding" else cdist(x, x)
    return clusterer.fit(data, sample_weight=weights).labels_


@pytest.mark.parametrize(
    "clusterer",
    [
        KMeansClusterer(4, seed=1),
        SpectralClusterer(4, eta=1.0, seed=1),
        SpectralClusterer(4, eta=1.0, n_neighbors=8, seed=1),
        KMedoidsClusterer(4, seed=1),
    ],
    ids=["kmeans", "spectral", "spectral-knn", "kmedoids"],
)
def test_clusterers_recover_blobs(blobs, clusterer) -> None:
    x, y = blobs
    assert adjusted_rand_score(y, _fit(clusterer, x)) == pytest.approx(1.0)


def test_spectral_matches_sklearn_on_non_convex_data() -> None:
    # Two concentric rings: k-means cannot separate them, spectral clustering can.
    rng = np.random.default_rng(0)
    angles = rng.uniform(0, 2 * np.pi, 200)
    radius = np.where(np.arange(200) < 100, 1.0, 4.0)
    x = np.c_[radius * np.cos(angles), radius * np.sin(angles)] + rng.normal(0, 0.05, (200, 2))
    truth = (radius > 2).astype(int)
    d = cdist(x, x)
    ours = SpectralClusterer(2, eta=0.3, seed=0).fit(d).labels_
    reference = SpectralClustering(2, affinity="precomputed", random_state=0).fit(
        affinity_matrix(d, 0.3)
    )
    assert adjusted_rand_score(truth, ours) == pytest.approx(1.0)
    assert adjusted_rand_score(reference.labels_, ours) == pytest.approx(1.0)
    assert adjusted_rand_score(truth, KMeansClusterer(2).fit(x).labels_) < 0.5


@pytest.mark.parametrize("name", ["kmeans", "spectral", "kmedoids"])
def test_weights_equal_duplicating_points(name: str) -> None:
    # Clustering weighted distinct points must label every item as clustering the items.
    rng = np.random.default_rng(5)
    base = np.r_[
        rng.normal(0, 0.3, (8, 2)), rng.normal(3, 0.3, (8, 2)), rng.normal([0, 3], 0.3, (8, 2))
    ]
    weights = rng.integers(1, 5, len(base))
    items = np.repeat(base, weights, axis=0)
    params = {"eta": 1.0} if name == "spectral" else {}
    compressed = Points.from_embedding(items)
    model = make_clusterer(name, n_clusters=3, seed=0, **params)
    labels = compressed.item_labels(
        model.fit(compressed.data_for(model), sample_weight=compressed.weights).labels_
    )
    direct = _fit(make_clusterer(name, n_clusters=3, seed=0, **params), items)
    assert adjusted_rand_score(direct, labels) == pytest.approx(1.0)


def test_spectral_embedding_of_weighted_points_equals_duplicated_items() -> None:
    rng = np.random.default_rng(2)
    base = rng.normal(size=(12, 3))
    weights = rng.integers(1, 4, len(base))
    items = np.repeat(base, weights, axis=0)
    small = SpectralClusterer(3, eta=1.5).fit(cdist(base, base), sample_weight=weights)
    large = SpectralClusterer(3, eta=1.5).fit(cdist(items, items))
    np.testing.assert_allclose(small.eigenvalues_, large.eigenvalues_, atol=1e-9)
    np.testing.assert_allclose(
        np.repeat(small.embedding_, weights, axis=0), large.embedding_, atol=1e-8
    )


def test_estimators_are_seeded_and_sklearn_style(blobs) -> None:
    x, _ = blobs
    d = cdist(x, x)
    for model in (KMedoidsClusterer(6, seed=4, n_init=2), SpectralClusterer(6, eta=0.5, seed=4)):
        first = model.fit(d).labels_.copy()
        assert np.array_equal(first, model.fit(d).labels_)
        assert model.get_params()["seed"] == 4
    assert make_clusterer("kmeans", n_clusters=3).set_params(n_clusters=5).n_clusters == 5


def test_kmedoids_medoids_minimise_within_cluster_distance(blobs) -> None:
    x, _ = blobs
    d = cdist(x, x)
    model = KMedoidsClusterer(4, seed=0).fit(d)
    for c, medoid in enumerate(model.medoid_indices_):
        members = np.flatnonzero(model.labels_ == c)
        within = d[np.ix_(members, members)].sum(axis=1)
        assert d[medoid, members].sum() == pytest.approx(within.min())
    assert model.inertia_ == pytest.approx(d[:, model.medoid_indices_].min(axis=1).sum())


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda d, x: KMeansClusterer(200).fit(x), "exceeds the number of distinct points"),
        (lambda d, x: KMedoidsClusterer(0).fit(d), "positive integer"),
        (lambda d, x: SpectralClusterer(3).fit(np.where(d > 5, np.nan, d)), "non-finite"),
        (lambda d, x: SpectralClusterer(3).fit(d[:, :-1]), "square"),
        (lambda d, x: KMedoidsClusterer(3).fit(d - 1.0), "negative"),
        (lambda d, x: SpectralClusterer(3, eta=-1.0).fit(d), "eta must be positive"),
        (lambda d, x: KMeansClusterer(3).fit(x, sample_weight=np.zeros(len(x))), "positive"),
        (lambda d, x: SpectralClusterer(3, eta=1.0, n_neighbors=500).fit(d), "n_neighbors"),
    ],
)
def test_bad_input_raises_clearly(blobs, call, message: str) -> None:
    x, _ = blobs
    with pytest.raises(ValueError, match=message):
        call(cdist(x, x), x)


def test_points_from_distances_merges_zero_distance_items() -> None:
    x = np.array([[0.0], [0.0], [1.0], [3.0], [1.0]])
    points = Points.from_distances(cdist(x, x))
    assert sorted(points.weights.tolist()) == [1.0, 2.0, 2.0]
    assert points.inverse[0] == points.inverse[1] and points.inverse[2] == points.inverse[4]
    np.testing.assert_allclose(
        points.distance_matrix()[np.ix_(points.inverse, points.inverse)], cdist(x, x)
    )


def test_points_need_an_embedding_for_kmeans() -> None:
    points = Points.from_distances(np.array([[0.0, 1.0], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="needs an embedding"):
        points.data_for(KMeansClusterer(2))


@settings(max_examples=25, deadline=None)
@given(
    weights=st.lists(st.integers(1, 4), min_size=6, max_size=12),
    k=st.integers(2, 4),
    seed=st.integers(0, 1000),
)
def test_weighted_silhouette_equals_sklearn_on_duplicated_items(weights, k, seed) -> None:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(len(weights), 2))
    labels = rng.integers(0, k, len(weights))
    labels[:2] = [0, 1]  # at least two clusters
    items = np.repeat(base, weights, axis=0)
    expected = silhouette_score(
        cdist(items, items), np.repeat(labels, weights), metric="precomputed"
    )
    assert weighted_silhouette(cdist(base, base), labels, np.array(weights)) == pytest.approx(
        expected, abs=1e-10
    )


@pytest.mark.parametrize("planted", [3, 5])
@pytest.mark.parametrize("name", ["kmeans", "kmedoids", "spectral"])
def test_silhouette_selection_recovers_planted_k(name: str, planted: int) -> None:
    angles = 2 * np.pi * np.arange(planted) / planted
    centers = 6.0 * np.c_[np.cos(angles), np.sin(angles)]
    x, _ = make_blobs(n_samples=120, centers=centers, cluster_std=0.3, random_state=planted)
    points = Points.from_embedding(x)
    etas = [0.5, 1.0, 2.0] if name == "spectral" else None
    selection = select_best_parameter(make_clusterer(name, seed=0), points, range(2, 9), etas)
    assert selection.n_clusters == planted
    assert len(selection.curve) == 7 * (len(etas) if etas else 1)
    assert selection.curve["value"].max() == pytest.approx(
        selection.curve.set_index("n_clusters").loc[planted, "value"].max()
    )


def test_eigengap_selection_recovers_planted_k() -> None:
    x, _ = make_blobs(n_samples=120, centers=4, cluster_std=0.3, random_state=7)
    points = Points.from_embedding(x)
    selection = select_best_parameter(
        SpectralClusterer(), points, range(2, 9), [0.5, 1.0], criterion="eigengap"
    )
    assert selection.n_clusters == 4 and selection.eta in (0.5, 1.0)
    assert set(selection.curve["eta"]) == {0.5, 1.0}


def test_selection_rejects_bad_arguments() -> None:
    points = Points.from_embedding(np.arange(10.0)[:, None])
    with pytest.raises(ValueError, match="unknown criterion"):
        select_best_parameter(KMeansClusterer(), points, [2, 3], criterion="elbow")
    with pytest.raises(ValueError, match=">= 2"):
        select_best_parameter(KMeansClusterer(), points, [1, 2])
    with pytest.raises(ValueError, match="exceeds"):
        select_best_parameter(KMeansClusterer(), points, [2, 11])
    with pytest.raises(ValueError, match="no eta"):
        select_best_parameter(KMeansClusterer(), points, [2, 3], [1.0])
    with pytest.raises(ValueError, match="spectral clustering only"):
        select_best_parameter(KMedoidsClusterer(), points, [2, 3], criterion="eigengap")
