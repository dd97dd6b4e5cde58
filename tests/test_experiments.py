"""Experiments: score sources, runs against references, the CLI and the report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cbred.bench import experiments as ex
from cbred.bench.cli import main
from cbred.bench.ground_truth import load_ground_truth
from cbred.bench.nb201 import default_space
from cbred.proxies.store import ScoreRow, ScoreStore
from cbred.reduce.subspace import Subspace
from matplotlib.image import imread

COVERED = np.sort(np.random.default_rng(0).choice(15625, size=400, replace=False))


@pytest.fixture(scope="module")
def accuracy():
    return load_ground_truth().accuracies("cifar10")


@pytest.fixture(scope="module")
def table(tmp_path_factory, accuracy):
    """A wide CSV: 'naswot' = CIFAR-10 accuracy (a perfect statistic), 'synflow' = noise."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "index": COVERED,
            "naswot": accuracy[COVERED],
            "synflow": rng.normal(size=COVERED.size),
        }
    )
    path = tmp_path_factory.mktemp("scores") / "scores.csv"
    frame.to_csv(path, index=False)
    return path


def test_load_scores_from_a_table_and_analytic_costs(table):
    source = ex.load_scores([table], ["naswot", "params"])
    assert source.origin == {"naswot": "scores.csv", "params": "analytic"}
    assert source.series["naswot"].index.tolist() == COVERED.tolist()
    assert len(source.series["params"]) == 15625
    assert source.coverage(["naswot", "params"]).tolist() == COVERED.tolist()
    with pytest.raises(KeyError, match="'snip' is in none of the score sources .*scores.csv"):
        ex.load_scores([table], ["snip"])  # a given source lacks it: no silent shipped table
    shipped = ex.load_scores([], ["snip"])  # no source: the shipped table
    assert (
        shipped.origin == {"snip": "shipped score table"} and len(shipped.series["snip"]) == 15625
    )
    with pytest.raises(KeyError, match="'fisher' is in none"):
        ex.load_scores([], ["fisher"])
    with pytest.raises(KeyError, match="'snip' is in none"):  # the table's batch is CIFAR-10
        ex.load_scores([], ["snip"], dataset="cifar100")
    with pytest.raises(FileNotFoundError):
        ex.load_scores([table.with_name("missing.csv")], ["naswot"])


def test_load_scores_passes_over_a_table_of_another_scoring_setting(table, tmp_path):
    """A Parquet table recording CIFAR-10 batches, seed 0, never stands in for CIFAR-100 or
    seed 1 (skipped like a source without the statistic, not an error from the reader)."""
    frame = pd.read_csv(table)
    frame.attrs = {"dataset": "cifar10", "batch_size": 64, "seed": 0}
    frame.to_parquet(tmp_path / "c10.parquet")
    path = tmp_path / "c10.parquet"
    assert ex.load_scores([path], ["naswot"], seed=0).origin == {"naswot": "c10.parquet"}
    for other in ({"dataset": "cifar100"}, {"seed": 1}):
        with pytest.raises(KeyError, match="'naswot' is in none .* for this setting"):
            ex.load_scores([path], ["naswot"], **other)


def test_load_scores_from_a_store(tmp_path):
    path = tmp_path / "s.db"
    with ScoreStore(path) as store:
        store.put(
            ScoreRow(
                "nb201", i, "naswot", "cifar10", 64, seed, "v1", "", float(i + seed), 0.1, "cpu"
            )
            for i in (3, 5, 7)
            for seed in (0, 1)
        )
        store.put(
            [ScoreRow("nb201", 9, "naswot", "cifar10", 64, 0, "v1", "", None, 0.1, "cpu", "x")]
        )
    source = ex.load_scores([path], ["naswot"], seed=1)
    assert source.series["naswot"].to_dict() == {3: 4.0, 5: 6.0, 7: 8.0}
    failed = ex.load_scores([path], ["naswot"], seed=0).series["naswot"]
    assert failed.index.tolist() == [3, 5, 7, 9] and np.isnan(failed[9])
    with pytest.raises(
        ValueError, match="several .naswot. values per architecture, under the settings"
    ):
        ex.load_scores([path], ["naswot"])


def test_perfect_statistic_best_of_n_equals_the_optimal_reference(table):
    source = ex.load_scores([table], ["naswot"])
    ours = ex.bestofn_runs(source, ("naswot",), 20, seeds=4)
    oracle = ex.oracle_runs(20, 4, source.coverage(["naswot"]))
    c10 = ours.rows[ours.rows["dataset"] == "cifar10"]
    reference = oracle.rows[oracle.rows["dataset"] == "cifar10"]
    assert c10["accuracy"].tolist() == reference["accuracy"].tolist()
    assert set(ours.rows["index"]) <= set(COVERED.tolist())
    assert ours.coverage == 400 and (ours.rows["evaluations"] == 20).all()
    curve = ours.curves["cifar10"]
    assert curve.shape == (4, 20)
    assert (np.diff(curve, axis=1) >= 0).all()  # a perfect statistic never gets worse
    assert curve[:, -1].tolist() == c10["accuracy"].tolist()


def test_ensemble_and_subspace_runs(table, accuracy):
    source = ex.load_scores([table], ["naswot", "synflow"])
    members = COVERED[::2]
    sub = Subspace.from_indices(members, default_space())
    runs = ex.bestofn_runs(source, ("naswot", "synflow"), 30, 3, subspace=sub)
    assert runs.label == "naswot+synflow best-of-30 in subspace"
    assert runs.coverage == members.size
    assert set(runs.rows["index"]) <= set(members.tolist())
    rea = ex.rea_runs(source, "naswot", 60, 3, population=8, tournament=3, subspace=sub)
    assert set(rea.rows["index"]) <= set(members.tolist())
    assert rea.summary()["cifar10"][0] >= np.median(accuracy[members])
    tiny = Subspace.from_indices(members[:12], default_space())
    stalled = ex.rea_runs(source, "naswot", 60, 2, population=8, tournament=3, subspace=tiny)
    assert (stalled.rows["evaluations"] == 12).all()  # 12 candidates: REA cannot make 60
    assert stalled.label == (
        "naswot REA-60 in subspace (stopped after 12 of 60 evaluations: 12 candidates)"
    )


def test_sampling_check_names_the_data_sets_outside_the_published_std():
    """Only ImageNet16-120 off the published optimal N=100 row: the line names it (it said
    "OUTSIDE ... on all data sets" whenever any one was off)."""
    published = ex.PUBLISHED["optimal N=100"]
    means = {d: published[d][0] for d in ex.DATASETS}
    means["imagenet16_120"] += 2 * published["imagenet16_120"][1]
    rows = pd.DataFrame({"dataset": list(means), "accuracy": list(means.values())})
    empty = pd.DataFrame()
    line = ex.gap_evidence([ex.Runs("optimal N=100", 15625, rows)], empty)[0]
    assert line.endswith("is OUTSIDE the published std on imagenet16_120"), line
    rows["accuracy"] = [published[d][0] for d in rows["dataset"]]
    line = ex.gap_evidence([ex.Runs("optimal N=100", 15625, rows)], empty)[0]
    assert line.endswith("is within the published std on all data sets"), line


def test_trained_rea_charges_fixed_training_seconds():
    runs = ex.trained_runs("rea", seconds=1000.0, seeds=2, train_seconds=100.0)
    assert (runs.rows["evaluations"] == 10).all() and (runs.rows["seconds"] == 1000.0).all()
    assert runs.label.startswith("REA (accuracy")
    assert runs.curves["cifar100"].shape == (2, 10)


def test_acceptance_picks_a_training_free_winner(table):
    source = ex.load_scores([table], ["naswot", "synflow"])
    runs = [ex.bestofn_runs(source, (s,), 50, 2) for s in ("naswot", "synflow")]
    best, lines = ex.acceptance(runs)
    assert best is runs[0]
    assert lines[-1].startswith("ACCEPTANCE: ") and "PROVISIONAL" not in lines[-1]
    assert "PROVISIONAL" in ex.acceptance(runs, scored=400)[1][-1]
    assert "TE-NAS" in lines[1] and "optimum" in lines[1]


def test_cli_bestofn_prints_published_rows(table, capsys):
    args = ["bench", "bestofn", "--score", "naswot", "--n", "10,100", "--seeds", "3"]
    assert main([*args, "--scores", str(table)]) == 0
    out = capsys.readouterr().out
    assert "92.44 ± 1.13" in out and "69.48 ± 1.70" in out  # published N=10 / N=100
    assert "coverage of naswot: 400 of 15625" in out
    assert "naswot best-of-10 C10" in out  # a reproduction verdict line


def test_cli_rejects_unknown_statistics(table, capsys):
    assert main(["bench", "rea", "--score", "fisher", "--scores", str(table)]) == 2
    assert "fisher" in capsys.readouterr().err


def test_cli_report_writes_markdown_and_plots(table, tmp_path, capsys):
    out = tmp_path / "report"
    args = ["bench", "report", "--score", "naswot,params", "--seeds", "2", "--evaluations", "40"]
    args += ["--scores", str(table), "--out", str(out), "--seconds", "500"]
    assert main(args) == 0
    text = (out / "report.md").read_text()
    assert "| naswot best-of-40 |" in text and "ACCEPTANCE" in text
    pngs = sorted(p.name for p in out.glob("*.png"))
    curves = [f"curves_{d}.png" for d in ex.DATASETS]
    assert pngs == [*curves, "scatter_naswot.png", "scatter_params.png"]
    assert all(f"]({name})" in text for name in pngs)
    assert all(imread(out / name).shape[1] <= 1200 for name in pngs)
    printed = [line for line in capsys.readouterr().out.splitlines() if "ACCEPTANCE" in line]
    written = [line for line in text.splitlines() if "ACCEPTANCE" in line]
    assert printed == written and len(printed) == 1  # one verdict, printed and written
    assert "<= 40 statistic evaluations" in text  # the budget asked for, not a default
    results = pd.read_csv(out / "results.csv")
    assert set(results["dataset"]) == {"cifar10", "cifar100", "imagenet16_120"}
