"""Additive categorical codes: NB201 cells under the edit distance without a matrix."""

from __future__ import annotations

import numpy as np
import pytest
from cbred.bench.nb201 import default_space
from cbred.bench.nb201_edit import nb201_edit_matrix, op_cost_table
from cbred.bench.nb201_reduce import reduce_nb201
from cbred.reduce.additive import AdditiveCodes
from cbred.reduce.cluster import Points, make_clusterer
from cbred.reduce.pipeline import edit_points
from cbred.reduce.select import points_silhouette, select_best_parameter, weighted_silhouette


@pytest.fixture(scope="module")
def sample(space):
    rows = np.random.default_rng(3).choice(len(space), 300, replace=False)
    ops = space.op_matrix[rows]
    return AdditiveCodes(ops, op_cost_table()), nb201_edit_matrix(ops, dtype=np.float64)


def test_codes_reproduce_the_exact_edit_matrix(sample):
    codes, matrix = sample
    np.testing.assert_allclose(codes.matrix(), matrix)
    np.testing.assert_allclose(codes.distances_to(np.array([5, 17])), matrix[:, [5, 17]])


def test_cluster_sums_equal_matrix_products(sample):
    codes, matrix = sample
    labels = np.random.default_rng(0).integers(0, 7, len(matrix))
    weights = np.random.default_rng(1).uniform(0.5, 2.0, len(matrix))
    onehot = np.zeros((len(matrix), 7))
    onehot[np.arange(len(matrix)), labels] = weights
    np.testing.assert_allclose(codes.cluster_sums(labels, 7, weights), matrix @ onehot)


def test_kmedoids_and_silhouette_match_the_matrix_path(sample):
    codes, matrix = sample
    by_codes = make_clusterer("kmedoids", n_clusters=6, seed=2).fit(codes)
    by_matrix = make_clusterer("kmedoids", n_clusters=6, seed=2).fit(matrix)
    np.testing.assert_array_equal(by_codes.labels_, by_matrix.labels_)
    assert by_codes.inertia_ == pytest.approx(by_matrix.inertia_)
    points = Points(weights=np.ones(len(codes)), inverse=np.arange(len(codes)), codes=codes)
    assert points_silhouette(points, by_codes.labels_) == pytest.approx(
        weighted_silhouette(matrix, by_codes.labels_)
    )
    chosen = select_best_parameter(make_clusterer("kmedoids", seed=0), points, [2, 3, 4])
    assert chosen.n_clusters in (2, 3, 4) and len(chosen.curve) == 3


def test_codes_are_validated_and_need_kmedoids(sample):
    codes, _ = sample
    with pytest.raises(ValueError, match="codes must lie in 0..4"):
        AdditiveCodes(np.array([[0, 7]]), op_cost_table())
    with pytest.raises(ValueError, match="square"):
        AdditiveCodes(np.array([[0, 1]]), np.ones((2, 3)))
    with pytest.raises(ValueError, match="zero on the diagonal"):
        AdditiveCodes(np.array([[0, 1]]), np.ones((5, 5)))
    points = Points(weights=np.ones(len(codes)), inverse=np.arange(len(codes)), codes=codes)
    with pytest.raises(ValueError, match="use k-medoids"):
        points.data_for(make_clusterer("spectral"))


def test_cbred_on_the_edit_distance_covers_the_space():
    reduction = reduce_nb201("edit", "kmedoids", statistic="params", k_values=[2, 3], seed=0)
    assert reduction.subspace.provenance["distance"] == "edit"
    assert len(reduction.labels) == 15625 and 0 < len(reduction.subspace) < 15625
    assert len(edit_points(default_space())) == 15625
    with pytest.raises(ValueError, match="does not provide"):
        edit_points(object())
