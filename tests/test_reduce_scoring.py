"""Cluster scoring functions on hand-made distributions, and C-BRED's choice of clusters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cbred.reduce.cbred import budget_size, canonical_labels, choose_clusters, lookup_scores
from cbred.reduce.scoring import (
    ClusterSamples,
    ScoringFunction,
    parse_scoring,
    weighted_percentile_ranks,
    weighted_quantile,
)


def _samples(*values, sizes=None) -> ClusterSamples:
    sizes = sizes or [len(v) for v in values]
    return ClusterSamples.build([np.asarray(v, dtype=float) for v in values], sizes)


def test_median_and_quantile() -> None:
    samples = _samples([1, 2, 3, 4], [10, 0, 0, 0, 0], [5, 5, 5])
    np.testing.assert_allclose(parse_scoring("median")(samples), [2.5, 0.0, 5.0])
    # The upper quantile rewards a heavy right tail that the median ignores.
    np.testing.assert_allclose(parse_scoring("quantile:0.9")(samples), [3.7, 6.0, 5.0])


def test_mean_rank_is_mean_mid_rank_share_of_the_pool() -> None:
    samples = _samples([1, 2], [3, 4])
    # Pool 1,2,3,4 with equal weights: mid-rank shares 1/8, 3/8, 5/8, 7/8.
    np.testing.assert_allclose(parse_scoring("mean_rank")(samples), [0.25, 0.75])


def test_share_above_counts_members_at_or_above_the_space_quantile() -> None:
    samples = _samples([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    # Pool 1..10: the 0.8-quantile is 8, so cluster 1 has 8, 9, 10 at or above it.
    np.testing.assert_allclose(parse_scoring("share_above:0.8")(samples), [0.0, 0.6])


def test_pool_weights_each_sample_by_its_cluster_size() -> None:
    # Two members stand for 98 architectures, two for 2: the space is mostly low values.
    samples = _samples([0.0, 1.0], [10.0, 11.0], sizes=[98, 2])
    values, weights = samples.pooled()
    np.testing.assert_allclose(weights, [49, 49, 1, 1])
    assert weighted_quantile(values, weights, 0.4) == 0.0
    assert weighted_quantile(values, weights, 0.5) == 1.0
    assert weighted_quantile(values, weights, 0.99) == 10.0
    np.testing.assert_allclose(
        weighted_percentile_ranks(values, weights), [0.245, 0.735, 0.985, 0.995]
    )


def test_nan_counts_as_the_lowest_value() -> None:
    samples = _samples([np.nan, np.nan, 1.0], [0.5, 0.6, 0.7])
    assert parse_scoring("median")(samples)[0] == -np.inf
    assert np.isneginf(parse_scoring("quantile:0.5")(samples)[0])
    ranks = parse_scoring("mean_rank")(samples)
    assert ranks[0] < ranks[1]
    assert np.argmax(parse_scoring("median")(samples)) == 1


@pytest.mark.parametrize(
    "text, message",
    [
        ("mode", "unknown scoring"),
        ("quantile", "needs q"),
        ("share_above:1.5", "needs q"),
        ("median:0.5", "takes no q"),
        ("quantile:high", "not a number"),
    ],
)
def test_bad_scoring_names(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_scoring(text)


def test_samples_reject_empty_or_oversized_clusters() -> None:
    with pytest.raises(ValueError, match="no scored members"):
        ClusterSamples.build([np.array([])], [3])
    with pytest.raises(ValueError, match="size 1"):
        ClusterSamples.build([np.array([1.0, 2.0])], [1])


def test_scoring_names_round_trip() -> None:
    for text in ("median", "mean_rank", "quantile:0.9", "share_above:0.75"):
        assert parse_scoring(text).name == text
    assert parse_scoring(ScoringFunction("median")) == ScoringFunction("median")


def test_choose_best_cluster_and_budget() -> None:
    f = np.array([0.2, 0.9, 0.5, 0.9])
    sizes = np.array([10, 40, 20, 30])
    assert choose_clusters(f, sizes, None) == [3]  # tie on f: the smaller cluster
    # 40 does not fit after 30: filling stops there, the worse-scored 20 is not slipped in
    assert choose_clusters(f, sizes, 55) == [3]
    assert choose_clusters(f, sizes, 100) == [3, 1, 2, 0]
    with pytest.raises(ValueError, match="no cluster fits"):
        choose_clusters(f, sizes, 5)


def test_budget_size() -> None:
    assert budget_size(None, 100) is None
    assert budget_size(0.2, 15625) == 3125
    assert budget_size(7, 100) == 7
    for bad in (0.0, 1.5, 0, 101):
        with pytest.raises(ValueError, match="budget"):
            budget_size(bad, 100)


def test_canonical_labels_number_clusters_by_first_item() -> None:
    np.testing.assert_array_equal(canonical_labels(np.array([7, 7, 2, 9, 2])), [0, 0, 1, 2, 1])


def test_lookup_scores_from_each_source() -> None:
    table = np.array([0.0, 10.0, 20.0, 30.0])
    indices = np.array([3, 1])
    np.testing.assert_array_equal(lookup_scores(table, indices, 4), [30.0, 10.0])
    series = pd.Series([5.0, 6.0], index=[3, 1])
    np.testing.assert_array_equal(lookup_scores(series, indices, 4), [5.0, 6.0])
    np.testing.assert_array_equal(lookup_scores(lambda i: i * 2.0, indices, 4), [6.0, 2.0])
    with pytest.raises(KeyError, match="no value"):
        lookup_scores(series, np.array([0]), 4)
    with pytest.raises(ValueError, match="shape"):
        lookup_scores(table[:3], indices, 4)
    with pytest.raises(TypeError, match="Series"):
        lookup_scores([1.0, 2.0], indices, 4)
