"""C-BRED end to end: planted clusters, sampling, budgets, the NB201 wiring, report and CLI."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from cbred.bench.cli import main
from cbred.bench.ground_truth import load_ground_truth
from cbred.bench.nb201 import default_space
from cbred.bench.nb201_reduce import nb201_op_counts, nb201_score_source, reduce_nb201
from cbred.reduce import report
from cbred.reduce.cbred import Reduction, cbred_reduce
from cbred.reduce.cluster import KMeansClusterer, KMedoidsClusterer, Points, SpectralClusterer
from cbred.reduce.pipeline import distribution_points, load_score_table
from cbred.reduce.report import (
    HIGHLIGHT,
    cluster_colours,
    cluster_table,
    evaluate_subspace,
    shown_clusters,
    write_report,
)
from cbred.reduce.select import ParameterSelection
from cbred.reduce.subspace import Subspace
from matplotlib.colors import to_hex
from matplotlib.image import imread
from matplotlib.patches import PathPatch, Rectangle

N = 15625


def reduce_nb(*args, **kwargs):
    """cbred_reduce over the NB201 space (the planted points index its architectures)."""
    return cbred_reduce(*args, space=default_space(), **kwargs)


@pytest.fixture(scope="module")
def planted() -> tuple[Points, np.ndarray, np.ndarray]:
    """Five groups of NB201 indices at five well-separated points; group g's statistic
    is centred on g, so group 4 is the best."""
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 5, N)
    centers = 10.0 * np.eye(5)
    points = Points.from_embedding(centers[groups])
    scores = groups + rng.normal(0, 1.0, N)
    return points, groups, scores


def test_best_planted_cluster_is_selected(planted) -> None:
    points, groups, scores = planted
    result = reduce_nb(points, KMeansClusterer(5, seed=0), scores, "median", m=24, seed=1)
    assert np.array_equal(result.subspace.indices, np.flatnonzero(groups == 4))
    assert [len(s) for s in result.sampled] == [24] * 5
    provenance = result.subspace.provenance
    assert provenance["n_clusters"] == 5 and provenance["f"] == "median"
    assert provenance["m"] == 24 and provenance["seed"] == 1
    assert set(result.timings) == {"select", "cluster", "score", "subspace"}


@pytest.mark.parametrize("f", ["quantile:0.9", "mean_rank", "share_above:0.8"])
def test_every_scoring_function_finds_the_planted_cluster(planted, f: str) -> None:
    points, groups, scores = planted
    result = reduce_nb(points, KMedoidsClusterer(5, seed=0), scores, f, m=32, seed=0)
    assert np.array_equal(result.subspace.indices, np.flatnonzero(groups == 4))


def test_parameter_selection_and_budget(planted) -> None:
    points, groups, scores = planted
    result = reduce_nb(
        points,
        SpectralClusterer(seed=0),
        pd.Series(scores),
        m=None,
        budget=0.45,
        k_values=range(2, 6),
        eta_values=[2.0, 5.0],
    )
    assert result.selection.n_clusters == 5
    assert len(result.selection.curve) == 8
    assert np.array_equal(result.subspace.indices, np.flatnonzero(groups >= 3))
    assert len(result.selected) == 2 and len(result.subspace) <= 0.45 * N


def test_sampling_is_seeded_and_calls_the_score_function_once(planted) -> None:
    points, _, scores = planted
    calls: list[np.ndarray] = []

    def score_fn(indices: np.ndarray) -> np.ndarray:
        calls.append(indices)
        return scores[indices]

    first = reduce_nb(points, KMeansClusterer(5), score_fn, m=7, seed=3)
    second = reduce_nb(points, KMeansClusterer(5), score_fn, m=7, seed=3)
    assert len(calls) == 2 and calls[0].size == 35
    assert all(np.array_equal(a, b) for a, b in zip(first.sampled, second.sampled))
    assert all(np.all(first.labels[s] == c) for c, s in enumerate(first.sampled))


def test_cbred_rejects_bad_arguments(planted) -> None:
    points, _, scores = planted
    with pytest.raises(ValueError, match="m \\(members"):
        reduce_nb(points, KMeansClusterer(5), scores, m=0)
    with pytest.raises(ValueError, match="15625"):
        small = Points.from_embedding(np.eye(3))
        reduce_nb(small, KMeansClusterer(2), scores)
    with pytest.raises(ValueError, match="no cluster fits"):
        reduce_nb(points, KMeansClusterer(5), scores, budget=10)


@pytest.fixture(scope="module")
def cell_points() -> Points:
    counts, _ = nb201_op_counts("cell")
    return distribution_points(counts, "hellinger")


def test_nb201_cell_features_and_distances(cell_points) -> None:
    counts, names = nb201_op_counts("cell")
    assert counts.shape == (N, 5) and np.all(counts.sum(axis=1) == 6)
    assert names[0] == "none"
    # 6 edges over 5 operations: C(10, 4) = 210 distinct count vectors.
    assert len(cell_points) == 210 and cell_points.weights.sum() == N
    p = counts / 6.0
    i, j = 17, 9001
    hellinger = np.linalg.norm(np.sqrt(p[i]) - np.sqrt(p[j])) / np.sqrt(2)
    d = cell_points.distance_matrix()
    assert d[cell_points.inverse[i], cell_points.inverse[j]] == pytest.approx(hellinger)
    emb = cell_points.embedding
    assert np.linalg.norm(emb[0] - emb[1]) / np.sqrt(2) == pytest.approx(d[0, 1])


def test_reduce_nb201_and_report(cell_points, tmp_path) -> None:
    result = reduce_nb201(
        "hellinger",
        KMeansClusterer(8),
        statistic="params",
        m=None,
        k_values=None,
        features="cell",
        points=cell_points,
    )
    sub = result.subspace
    assert sub.provenance["distance"] == "hellinger" and sub.provenance["statistic"] == "params"
    assert np.all(np.isin(result.labels[sub.indices], result.selected))
    truth = load_ground_truth()
    counts, names = nb201_op_counts("cell")
    table = cluster_table(result, counts, names, truth)
    assert len(table) == 8 and table["size"].sum() == N
    assert table.loc[table["selected"], "size"].sum() == len(sub)
    np.testing.assert_allclose(table[[f"op:{n}" for n in names]].sum(axis=1), 1.0)
    whole = evaluate_subspace(np.arange(N), truth)
    assert whole["cifar100_mean"] == pytest.approx(truth.accuracies("cifar100").mean())
    assert whole["cifar10_top_kept"] == 1.0 and whole["size"] == N
    path = write_report(result, tmp_path, counts, names, truth, statistic="params")
    written = {p.name for p in tmp_path.iterdir()}
    assert {"report.md", "clusters.csv", "op_usage.png", "statistic.png"} <= written
    assert "accuracy_cifar100.png" in written
    assert "not used to choose" in path.read_text()
    assert all(png_width(p) <= 1200 for p in tmp_path.glob("*.png"))


def png_width(path) -> int:
    """Width in pixels of a written PNG."""
    return imread(path).shape[1]


def highlighted(texts) -> list[str]:
    """The tick labels drawn in the highlight colour."""
    return [t.get_text() for t in texts if to_hex(t.get_color()) == HIGHLIGHT]


@pytest.fixture
def many_clusters() -> tuple[Reduction, np.ndarray, list[str], SimpleNamespace]:
    """125 clusters of 24 architectures, f = cluster id (cluster 3 has no finite value, so
    f = -inf), and cluster 24 selected although it ranks 101st by f (as a size budget can
    do); op counts and accuracies are random, but cluster 0 sits at 10 % accuracy."""
    rng = np.random.default_rng(0)
    k, size = 125, 24
    labels = np.repeat(np.arange(k), size)
    f = np.arange(k, dtype=float)
    f[3] = -np.inf
    values = [rng.normal(c, 1.0, 8) for c in range(k)]
    values[3] = np.full(8, np.nan)
    members = np.flatnonzero(labels == 24)
    curve = pd.DataFrame({"n_clusters": range(2, k + 1), "eta": np.nan, "value": 0.5})
    reduction = Reduction(
        subspace=Subspace("synthetic", members, tuple(map(str, members)), {"f": "median"}),
        labels=labels,
        sizes=np.bincount(labels),
        f_values=f,
        selected=[24],
        sampled=[np.flatnonzero(labels == c)[:8] for c in range(k)],
        sample_values=values,
        selection=ParameterSelection(k, None, "silhouette", curve),
    )
    counts = rng.integers(0, 4, (labels.size, 6)) + np.eye(6, dtype=np.int64)[0]
    acc = rng.uniform(40.0, 90.0, labels.size)
    acc[labels == 0] = 10.0  # diverged networks: outliers that must not squash the boxes
    truth = SimpleNamespace(accuracies=lambda dataset: acc)
    return reduction, counts, [f"op{i}" for i in range(6)], truth


def test_plotted_clusters_keep_a_low_ranked_selected_cluster(many_clusters) -> None:
    reduction = many_clusters[0]
    shown = shown_clusters(reduction)
    assert shown == list(range(124, 105, -1)) + [24]
    assert shown_clusters(reduction, limit=3) == [124, 123, 24]
    assert cluster_colours(shown, reduction.selected).count(HIGHLIGHT) == 1
    assert cluster_colours(shown, reduction.selected)[-1] == HIGHLIGHT


def test_report_plots_are_readable_separate_and_highlight_the_selected_cluster(
    many_clusters, tmp_path, monkeypatch
) -> None:
    reduction, counts, names, truth = many_clusters
    figures = {}
    save = report._save

    def keep(fig, path):
        figures[path.name] = fig.axes[0]
        return save(fig, path)

    monkeypatch.setattr(report, "_save", keep)
    text = write_report(reduction, tmp_path, counts, names, truth, ["cifar10"], "naswot")
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    expected = ["accuracy_cifar10.png", "clusters.png", "op_usage.png", "selection.png"]
    assert pngs == sorted([*expected, "statistic.png"]) == sorted(figures)
    assert all(f"]({name})" in text.read_text() for name in pngs)
    widths = {name: png_width(tmp_path / name) for name in pngs}
    assert max(widths.values()) <= 1200, widths
    for name in ("statistic.png", "accuracy_cifar10.png"):
        ax = figures[name]
        ticks = [t.get_text().split("\n")[0] for t in ax.get_xticklabels()]
        assert len(ticks) == 21 and ticks[-1] == "rest" and ticks[-2] == "24"
        assert highlighted(ax.get_xticklabels()) == ["24\n24"]
        boxes = [to_hex(p.get_facecolor()) for p in ax.patches if isinstance(p, PathPatch)]
        assert boxes.count(HIGHLIGHT) == 1 and boxes[-2] == HIGHLIGHT
    accuracy = figures["accuracy_cifar10.png"]
    assert 10.0 < accuracy.get_ylim()[0] < 40.0
    assert any("24 outliers outside the plotted range" in t.get_text() for t in accuracy.texts)
    heat = figures["op_usage.png"]
    assert highlighted(heat.get_yticklabels()) == ["cluster 24 (n=24)"]
    outlines = [p for p in heat.patches if isinstance(p, Rectangle)]
    assert [to_hex(p.get_edgecolor()) for p in outlines] == [HIGHLIGHT]
    overview = figures["clusters.png"]
    red = [c for c in overview.collections if to_hex(c.get_facecolor()[0]) == HIGHLIGHT]
    assert len(red) == 1 and red[0].get_offsets().tolist() == [[24.0, 24.0]]
    assert any("cluster 24" in t.get_text() for t in overview.texts)


def test_score_tables_long_and_wide(tmp_path) -> None:
    long = pd.DataFrame(
        {
            "arch": [0, 1, 0, 1],
            "statistic": ["naswot", "naswot", "synflow", "synflow"],
            "dataset": "cifar10",
            "value": [1.0, 2.0, 3.0, np.nan],
        }
    )
    long.to_parquet(tmp_path / "long.parquet")
    series = load_score_table(tmp_path / "long.parquet", "synflow", "cifar10")
    assert series.loc[0] == 3.0 and np.isnan(series.loc[1])
    pd.DataFrame({"index": [5, 6], "naswot": [7.0, 8.0]}).to_csv(tmp_path / "wide.csv")
    assert load_score_table(tmp_path / "wide.csv", "naswot").loc[6] == 8.0
    shipped_like = pd.DataFrame(
        {"arch_str": ["a", "b"], "synflow": [1.0, 2.0]}, index=pd.Index([3, 4], name="arch")
    )
    assert load_score_table(shipped_like, "synflow").loc[4] == 2.0
    with pytest.raises(KeyError, match="no 'naswot' column"):
        load_score_table(shipped_like, "naswot")
    with pytest.raises(KeyError, match="no rows"):
        load_score_table(tmp_path / "long.parquet", "snip")
    with pytest.raises(FileNotFoundError):
        load_score_table(tmp_path / "missing.csv", "naswot")


def test_a_score_store_is_read_as_a_table_in_the_setting_asked_for(tmp_path) -> None:
    """``load_score_table`` reads a ``.db`` store as its long export: filtered to the space
    and setting asked for; several settings left is one error naming them; reading never
    creates a store."""
    from cbred.proxies.store import ScoreRow, ScoreStore

    def row(space: str, arch: int, seed: int, version: str, value: float) -> ScoreRow:
        return ScoreRow(space, arch, "naswot", "cifar10", 64, seed, version, "", value, 0.1, "cpu")

    path = tmp_path / "s.db"
    with ScoreStore(path) as store:
        store.put([row("nb201", 0, 0, "v1", 1.0), row("nb201", 1, 0, "v1", 2.0),
                   row("nb201", 0, 1, "v1", 3.0), row("other", 0, 0, "v1", 9.0),
                   row("nb201", 0, 2, "v1", 5.0), row("nb201", 0, 2, "v2", 6.0)])  # fmt: skip
    values = load_score_table(path, "naswot", seed=0, space="nb201")
    assert values.to_dict() == {0: 1.0, 1: 2.0}
    assert load_score_table(path, "naswot", seed=1, batch_size=64).to_dict() == {0: 3.0}
    with pytest.raises(ValueError, match=r"several 'naswot' values .*'space': 'other'"):
        load_score_table(path, "naswot", seed=0)  # two spaces left
    with pytest.raises(ValueError, match=r"'version': 'v1'\}, \{.*'version': 'v2'"):
        load_score_table(path, "naswot", seed=2, space="nb201")
    with pytest.raises(KeyError, match=r"s.db has no rows for 'naswot' \(space nb201, seed 3\)"):
        load_score_table(path, "naswot", seed=3, space="nb201")
    with pytest.raises(FileNotFoundError, match="score store .*missing.db' does not exist"):
        load_score_table(tmp_path / "missing.db", "naswot")
    assert not (tmp_path / "missing.db").exists()


def test_score_tables_are_read_only_in_their_scoring_setting(tmp_path) -> None:
    """A table scored under another batch/init seed is another measurement: a long export is
    filtered to the setting asked for, a wide table recording another one is refused, and
    the space's own table is passed over (then the values are computed live)."""
    from cbred.reduce.pipeline import score_source, space_score_table

    long = pd.DataFrame(
        {
            "arch": [0, 1, 0, 1],
            "statistic": "naswot",
            "batch_size": 64,
            "seed": [0, 0, 1, 1],
            "value": [1.0, 2.0, 3.0, 4.0],
        }
    )
    assert load_score_table(long, "naswot", seed=1).tolist() == [3.0, 4.0]
    assert load_score_table(long, "naswot", seed=0, batch_size=64).tolist() == [1.0, 2.0]
    with pytest.raises(KeyError, match=r"no rows for 'naswot' \(seed 2\)"):
        load_score_table(long, "naswot", seed=2)
    wide = pd.DataFrame({"naswot": [5.0, 6.0]}, index=[0, 1])
    wide.attrs = {"dataset": "cifar10", "batch_size": 64, "seed": 1}
    wide.to_parquet(tmp_path / "seed1.parquet")  # attrs travel with the file
    assert load_score_table(tmp_path / "seed1.parquet", "naswot", seed=1).tolist() == [5.0, 6.0]
    assert load_score_table(wide, "naswot").tolist() == [5.0, 6.0]  # no setting asked: any
    with pytest.raises(ValueError, match=r"seed1.parquet .*: seed 1 \(asked for 0\)"):
        load_score_table(tmp_path / "seed1.parquet", "naswot", seed=0)
    with pytest.raises(ValueError, match=r"batch_size 64 \(asked for 8\)"):
        score_source("naswot", object(), table=wide, batch_size=8, seed=1)

    class Space:
        def __len__(self) -> int:
            return 2

        def score_table(self) -> pd.DataFrame:
            return wide

    assert space_score_table(Space(), "naswot", seed=1).tolist() == [5.0, 6.0]
    assert space_score_table(Space(), "naswot", seed=0) is None
    assert score_source("naswot", Space(), seed=1)[1] == "shipped score table"
    nb201 = default_space()  # its shipped table is proxy seed 0's
    assert score_source("naswot", nb201, seed=0)[1] == "shipped score table"
    assert score_source("naswot", nb201, seed=1, batch_size=64)[1].startswith("live")


def test_cli_reduce_writes_subspace_and_report(tmp_path, capsys) -> None:
    out = tmp_path / "sub.csv"
    status = main(
        [
            "reduce",
            "--features",
            "cell",
            "--cluster",
            "kmedoids",
            "--k",
            "6",
            "--score",
            "params",
            "--m",
            "0",
            "--out",
            str(out),
            "--report",
            str(tmp_path / "r"),
        ]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "stage seconds" in printed and "evaluation" in printed
    sub = Subspace.from_csv(out)
    assert sub.provenance["n_clusters"] == 6 and sub.provenance["clusterer"] == "KMedoidsClusterer"
    assert json.loads(json.dumps(sub.provenance))["features"] == "cell"
    assert (tmp_path / "r" / "report.md").exists()
    assert main(["reduce", "--out", str(tmp_path / "x.txt")]) == 2


def test_cli_reduce_seed_draws_the_clustering_and_proxy_seed_the_statistic(
    tmp_path, capsys
) -> None:
    """--seed no longer doubles as the statistic's seed: the shipped (seed-0) table serves any
    clustering seed, a table of proxy seed 1 is read only with --proxy-seed 1."""
    from importlib import resources

    seed1 = str(resources.files("cbred.bench") / "data" / "nb201_scores_seed1.parquet")
    base = ["reduce", "--features", "cell", "--cluster", "kmedoids", "--k", "6"]
    out = tmp_path / "s.json"
    assert main([*base, "--seed", "3", "--out", str(out)]) == 0
    assert "(shipped score table)" in capsys.readouterr().out
    sub = Subspace.from_json(out)
    assert sub.provenance["seed"] == 3
    assert sub.provenance["proxy_setting"] == {"batch_size": 64, "seed": 0}
    assert main([*base, "--proxy-seed", "1", "--scores", seed1, "--out", str(out)]) == 0
    assert "(table nb201_scores_seed1.parquet)" in capsys.readouterr().out
    assert Subspace.from_json(out).provenance["proxy_setting"]["seed"] == 1
    assert main([*base, "--scores", seed1, "--out", str(tmp_path / "t.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "seed 1 (asked for 0)" in err[0]
    assert not (tmp_path / "t.json").exists()


def test_perf_reduce_smoke(capsys) -> None:
    from cbred.bench.perf_reduce import main as perf_main

    assert perf_main(["--smoke"]) == 0
    printed = capsys.readouterr().out
    assert "(whole space)" in printed and "hellinger     kmeans" in printed
    assert "end-to-end" in printed and "stages:" in printed


def test_score_sources_are_oriented_larger_is_better() -> None:
    from cbred.bench.nb201_network import count_params_flops
    from cbred.reduce.pipeline import ProxyScorer, statistic_direction

    params, origin = nb201_score_source("params")
    assert origin == "analytic" and params[77] == count_params_flops(77)[0]
    assert statistic_direction("ntk_cond") == -1.0  # a lower condition number is better
    scorer, origin = nb201_score_source("ntk_cond")
    assert isinstance(scorer, ProxyScorer) and scorer.direction == -1.0
    with pytest.raises(ValueError, match="unknown statistic"):
        nb201_score_source("accuracy")


def test_default_verdict_reads_the_default_row() -> None:
    from cbred.bench.perf_reduce import DEFAULT_CONFIG, default_verdict

    row = {**DEFAULT_CONFIG, "size": 1000.0, "cifar100_mean": 70.2, "cifar100_top_kept": 0.3}
    assert default_verdict(pd.DataFrame([row])).endswith(": met")
    low = pd.DataFrame([{**row, "cifar100_mean": 69.9}])
    assert default_verdict(low).endswith("NOT met")
    assert "not in this run" in default_verdict(pd.DataFrame([{**row, "cluster": "spectral"}]))


def test_sample_members_prefers_free_scores():
    from cbred.reduce.cbred import sample_members

    members = np.arange(100, 120)
    prefer = np.array([101, 105, 107, 110, 111, 119, 500])
    many = sample_members(members, 4, np.random.default_rng(0), prefer)
    assert set(many) <= set(prefer) and len(set(many)) == 4
    few = sample_members(members, 9, np.random.default_rng(0), prefer)
    assert set(prefer[:-1]) <= set(few) and len(set(few)) == 9 and set(few) <= set(members)
    again = sample_members(members, 9, np.random.default_rng(0), prefer)
    assert np.array_equal(few, again) and np.all(np.diff(few) > 0)


def test_partial_shipped_table_seeds_a_live_scorer(monkeypatch):
    import cbred.bench.score_table
    from cbred.reduce.pipeline import ProxyScorer

    table = pd.DataFrame({"arch_str": ["a", "b"], "naswot": [10.0, np.nan]}, index=[3, 8])
    table.attrs = {
        "dataset": "cifar10",
        "batch_size": 64,
        "seed": 0,
        "channels": 16,
        "cells_per_stage": 5,
        "coverage": 2 / 15625,
    }
    monkeypatch.setattr(cbred.bench.score_table, "shipped_scores", lambda: table)
    scorer, origin = nb201_score_source("naswot")
    assert isinstance(scorer, ProxyScorer) and "0% of the space" in origin
    assert (scorer.space.channels, scorer.space.cells_per_stage) == (16, 5)
    other = default_space().with_setting(channels=8, cells_per_stage=1)
    assert nb201_score_source("naswot", space=other)[1].startswith("live")  # not its setting
    assert sorted(scorer.cached_indices()) == [3, 8]
    values = scorer(np.array([8, 3]))  # from the cache: nothing is computed
    assert np.isnan(values[0]) and values[1] == 10.0 and scorer.cache.keys() == {3, 8}


def test_live_statistics_score_a_sample_of_each_cluster(cell_points) -> None:
    from cbred.reduce.pipeline import LIVE_MEMBERS, ProxyScorer

    class CountingScorer(ProxyScorer):
        """Values without networks; remembers every architecture it was asked for."""

        def __call__(self, indices: np.ndarray) -> np.ndarray:
            self.cache.update((int(i), float(i % 97)) for i in indices)
            return np.asarray(indices, dtype=float) % 97

    scorer = CountingScorer("naswot", default_space())
    reduce_nb201(
        "hellinger",
        KMeansClusterer(4),
        scores=scorer,
        k_values=None,
        features="cell",
        points=cell_points,
    )
    assert 0 < len(scorer.cache) <= 4 * LIVE_MEMBERS


def test_cli_reduce_on_the_edit_distance_defaults_to_kmedoids(tmp_path, capsys) -> None:
    out = tmp_path / "sub.json"
    args = ["reduce", "--distance", "edit", "--k", "2:3", "--score", "params", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "kmedoids on edit" in printed and "15625 distinct per-position codes" in printed
    assert Subspace.from_json(out).provenance["distance"] == "edit"
    assert main([*args, "--cluster", "kmeans"]) == 2  # k-means needs an embedding
    assert "use k-medoids" in capsys.readouterr().err


# The subspace the main job printed before the space contract refactor (session 3's code:
# `python -m bench.cli reduce --space nb201 --dataset cifar100 --distance hellinger
# --cluster kmeans --score naswot`), recorded to check that the generic pipeline reproduces it.
MAIN_JOB_SUBSPACE = [
    440, 749, 862, 915, 1160, 1303, 1462, 1498, 1716, 2011, 2889, 2954, 3621, 3767, 4125, 4317,
    4404, 4681, 4787, 5115, 5207, 5563, 5636, 5721, 6338, 6361, 7209, 7294, 7335, 7337, 7361,
    7408, 7442, 7632, 7855, 8102, 8625, 8662, 9558, 9596, 9608, 10063, 10400, 10436, 10593,
    10721, 10861, 11882, 12117, 12156, 12399, 12598, 12606, 12692, 12887, 13323, 13700, 13717,
    14016, 14029, 14417, 15128, 15341, 15537,
]  # fmt: skip


def test_main_job_gives_the_same_subspace_as_before(tmp_path, capsys) -> None:
    out = tmp_path / "subspace.json"
    args = ["reduce", "--space", "nb201", "--dataset", "cifar100", "--distance", "hellinger"]
    assert main([*args, "--cluster", "kmeans", "--score", "naswot", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["indices"] == MAIN_JOB_SUBSPACE and data["space"] == "nb201"
    assert "64 architectures (0.4%), clusters [119]" in capsys.readouterr().out


def test_budget_fill_stops_at_the_first_cluster_that_does_not_fit() -> None:
    from cbred.reduce.cbred import choose_clusters

    f_values = np.array([5.0, 4.0, 3.0, 0.1])  # cluster 3 is the worst but tiny
    sizes = np.array([10, 50, 10, 5])
    # 0 fits (10), 1 does not (60 > 30): filling stops there, 2 and 3 are never taken
    assert choose_clusters(f_values, sizes, 30) == [0]
    assert choose_clusters(f_values, sizes, 72) == [0, 1, 2]  # 3 would exceed 72
    # the best cluster alone is too big: filling starts at the best one that fits
    assert choose_clusters(np.array([9.0, 1.0, 0.5]), np.array([100, 5, 5]), 20) == [1, 2]
    assert choose_clusters(np.array([9.0, 1.0, 0.5]), np.array([100, 15, 10]), 20) == [1]


def test_cbred_estimator_follows_scikit_learn_conventions(planted) -> None:
    from cbred.reduce import CBRED
    from sklearn.base import clone

    points, groups, scores = planted
    estimator = CBRED(KMeansClusterer(5, seed=0), evaluations=40, random_state=2)
    assert clone(estimator).get_params()["evaluations"] == 40
    fitted = estimator.fit(points, scores, default_space())
    assert fitted is estimator and fitted.evaluations_ == 40
    assert np.array_equal(fitted.subspace_.indices, np.flatnonzero(groups == 4))
    assert len(fitted.labels_) == N and len(fitted.cluster_scores_) == 5
    assert fitted.subspace_.provenance["allocation"] == "uniform"
    with pytest.raises(ValueError, match="needs an evaluation budget"):
        CBRED(KMeansClusterer(5), allocation="halving").fit(points, scores, default_space())
    with pytest.raises(ValueError, match="unknown allocation"):
        CBRED(KMeansClusterer(5), allocation="greedy").fit(points, scores, default_space())


def test_halving_spends_the_budget_on_the_clusters_still_in_contention(planted) -> None:
    from cbred.reduce import CBRED

    points, groups, scores = planted
    asked: list[int] = []

    def score_fn(indices: np.ndarray) -> np.ndarray:
        asked.extend(int(i) for i in indices)
        return scores[indices]

    est = CBRED(KMeansClusterer(5, seed=0), evaluations=60, allocation="halving", random_state=0)
    est.fit(points, score_fn, default_space())
    assert len(asked) == len(set(asked)) == est.evaluations_ <= 60
    assert np.array_equal(est.subspace_.indices, np.flatnonzero(groups == 4))
    best = groups[est.subspace_.indices[0]]
    spent = {int(groups[s[0]]): len(s) for s in est.sampled_}
    assert spent[best] == max(spent.values()) and spent[best] > 60 // 5  # more than uniform
    assert min(spent.values()) >= 1  # every cluster was scored
    for members, values in zip(est.sampled_, est.sample_values_):
        np.testing.assert_array_equal(values, scores[members])  # values follow their members


def test_protocol_smoke_prints_every_method_at_equal_size(capsys) -> None:
    from cbred.bench.protocol import METHODS
    from cbred.bench.protocol import main as protocol_main

    assert protocol_main(["--smoke"]) == 0
    out = capsys.readouterr().out
    assert all(method in out for method in METHODS)
    assert "top-k of B random at 1%" in out and "one proxy seed" in out
    assert "tuning on cifar10 only" in out and out.count("<- chosen") == 1
    assert "cifar10 chose k_max: its rows are not an independent test" in out


def test_protocol_reads_one_table_per_proxy_seed(tmp_path) -> None:
    """Proxy seeds come from a store; a seed that does not cover the space is refused."""
    from cbred.bench.protocol import proxy_tables
    from cbred.proxies.store import ScoreRow, ScoreStore

    with ScoreStore(tmp_path / "s.db") as store:
        rows = [
            ScoreRow("nb201", a, "naswot", "cifar10", 64, 1, "v", "x", float(a % 97), 0.1, "cpu")
            for a in range(15625)
        ]
        store.put(rows)
        store.put([ScoreRow("nb201", 3, "naswot", "cifar10", 64, 2, "v", "x", 1.0, 0.1, "cpu")])
    seed0, seed1 = (
        proxy_tables([], [0], 15625)[0],
        proxy_tables([str(tmp_path / "s.db")], [1], 15625)[0],
    )
    assert seed1[5] == 5.0 and seed1[100] == 3.0 and np.isfinite(seed0).sum() > 15000
    with pytest.raises(ValueError, match="proxy seed 2 covers 1 of 15625 .* --seed 2"):
        proxy_tables([str(tmp_path / "s.db")], [2], 15625)
    # seed 0 is the shipped table's, beside a store of other seeds
    both = proxy_tables([str(tmp_path / "s.db")], [0, 1], 15625)
    np.testing.assert_array_equal(both[0], seed0)
    np.testing.assert_array_equal(both[1], seed1)
    # a table scored under seed 0 never stands in for seed 1
    from cbred.bench.score_table import shipped_scores

    shipped_scores().to_parquet(tmp_path / "seed0.parquet")
    with pytest.raises(KeyError, match="'naswot' is in none of the score sources"):
        proxy_tables([str(tmp_path / "seed0.parquet")], [1], 15625)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_shipped_seed_tables_hold_the_five_statistics_at_the_shipped_versions(seed) -> None:
    """Proxy seeds 1 and 2 have naswot, synflow, jacob_cov, snip and grad_norm for all of
    NB201, scored by the same code as the seed-0 table (same versions): other draws, not
    another method."""
    from importlib import resources

    from cbred.bench.score_table import shipped_scores
    from scipy.stats import spearmanr

    name = f"nb201_scores_seed{seed}.parquet"
    one = pd.read_parquet(resources.files("cbred.bench") / "data" / name)
    zero = shipped_scores()
    five = ["naswot", "synflow", "jacob_cov", "snip", "grad_norm"]
    assert len(one) == 15625 and one.attrs["seed"] == seed and one.attrs["coverage"] == 1.0
    assert {s: one.attrs["versions"][s] for s in five} == {
        s: zero.attrs["versions"][s] for s in five
    }
    for name in five:
        a, b = zero[name].to_numpy(), one[name].to_numpy()
        both = np.isfinite(a) & np.isfinite(b)
        assert both.sum() > 15000 and not np.array_equal(a[both], b[both]), name
        # the same method under another draw: jacob_cov, the noisiest, agrees at 0.90-0.92
        assert spearmanr(a[both], b[both])[0] > 0.85, name


@pytest.mark.parametrize("seed", [1, 2])
def test_the_shipped_other_proxy_seeds_cover_nb201_and_differ_from_the_first(seed) -> None:
    """bench/data/nb201_scores_seed{1,2}.parquet: naswot (and more) under batch/init seeds 1
    and 2, whole space; each is read only for its own seed."""
    from importlib import resources

    from cbred.bench.protocol import proxy_tables
    from scipy.stats import spearmanr

    path = str(resources.files("cbred.bench") / "data" / f"nb201_scores_seed{seed}.parquet")
    seed0, other = proxy_tables([path], [0, seed], 15625)
    both = np.isfinite(seed0) & np.isfinite(other)
    assert both.sum() > 15000 and not np.array_equal(seed0[both], other[both])
    assert spearmanr(seed0[both], other[both])[0] > 0.99  # close over the space, noisy at the top
    with pytest.raises(KeyError, match="naswot"):
        proxy_tables([path], [3 - seed], 15625)  # never served as the other seed


def test_undefined_scores_never_pick_a_cluster():
    """All-NaN statistics: a clear error, not an arbitrary subspace with f = -inf."""
    from cbred.reduce.cbred import choose_clusters

    sizes = np.array([640, 10, 20])
    with pytest.raises(ValueError, match="no cluster has a defined score"):
        choose_clusters(np.array([np.nan, -np.inf, np.nan]), sizes, None)
    assert choose_clusters(np.array([np.nan, 1.0, -np.inf]), sizes, None) == [1]
    assert choose_clusters(np.array([np.nan, 1.0, -np.inf]), sizes, 1000) == [1]
    nan = pd.Series(np.nan, index=range(15625))
    with pytest.raises(ValueError, match="no cluster has a defined score"):
        reduce_nb201(distance="hellinger", cluster="kmeans", scores=nan, k_values=[8])
