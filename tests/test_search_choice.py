"""The search-oriented choice: its criterion, its blindness to the held-out half, its CLI."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cbred.bench import ensemble as bench_ensemble
from cbred.bench import experiments as ex
from cbred.bench import score_table
from cbred.bench import search_choice as sc
from cbred.bench.dataset_names import DATASETS
from cbred.bench.ground_truth import load_ground_truth
from cbred.bench.score_table import shipped_scores
from cbred.proxies.ensemble import ENSEMBLES, RECOMMENDED_SEARCH


def _enumerated_best(score: np.ndarray, accuracy: np.ndarray, picks: int) -> float:
    """Mean over every ``picks``-subset of the mean accuracy of its top-scored items."""
    values = []
    for subset in itertools.combinations(range(len(score)), picks):
        chosen = np.array(subset)
        top = chosen[score[chosen] == score[chosen].max()]
        values.append(accuracy[top].mean())
    return float(np.mean(values))


@pytest.mark.parametrize("picks", [1, 2, 3, 5, 8])
def test_expected_best_is_the_mean_over_every_subset_ties_shared(picks: int) -> None:
    rng = np.random.default_rng(0)
    accuracy = rng.normal(size=8)
    scores = np.stack(
        [
            rng.normal(size=8),
            rng.integers(0, 3, size=8).astype(float),  # large tie groups
            accuracy,  # the truth itself
            -accuracy,  # reversed
            np.zeros(8),  # one group: every subset returns a uniform member
        ]
    )
    got = sc.expected_best_rows(scores, accuracy, picks)
    expected = [_enumerated_best(row, accuracy, picks) for row in scores]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert got[4] == pytest.approx(accuracy.mean())
    assert got[2] >= got[0] >= got[3] or picks == 8  # at n picks every order returns the top


def test_none_in_top_is_the_hypergeometric_miss_probability() -> None:
    from math import comb

    w = sc.none_in_top(10, 4)
    np.testing.assert_allclose(w, [comb(10 - k, 4) / comb(10, 4) for k in range(11)])


def test_the_search_choice_reads_only_the_selection_half() -> None:
    table = shipped_scores()[["synflow", "naswot", "params", "jacob_cov"]]
    accuracy = load_ground_truth().accuracies("cifar10")[table.index.to_numpy()]
    _, held = bench_ensemble.split(len(table))
    blind = accuracy.copy()
    blind[held] = np.nan  # read, it would make every value NaN
    candidates = ("synflow", "naswot", "params", "jacob_cov")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bench_ensemble, "CANDIDATES", candidates)
        chosen, frame = sc.choose_for_search(table, blind, 100)
        again, _ = sc.choose_for_search(table, accuracy, 100)
    assert chosen == again
    assert np.isfinite(frame["value"]).all()
    best = frame["value"].max()
    aggregate, members = chosen
    row = frame[[(a, m) == chosen for a, m in zip(frame["aggregate"], frame["members"])]]
    assert row["value"].iloc[0] == best
    # the value is the expected best-of-100 accuracy of the candidate's order on the half
    selection, _ = bench_ensemble.split(len(table))
    score = bench_ensemble.ensemble_score(table, aggregate, members)[selection]
    direct = sc.expected_best_rows(score[None], accuracy[selection], 100)[0]
    assert best == pytest.approx(direct, abs=1e-9)
    # best-of-100 by any candidate beats random (the mean) and trails the optimum
    assert accuracy[selection].mean() < best < np.nanmax(accuracy[selection])


def test_the_held_out_subspace_is_the_other_half() -> None:
    held = sc.held_out_subspace(15625)
    selection, expected = bench_ensemble.split(15625)
    np.testing.assert_array_equal(held.indices, expected)
    assert len(np.intersect1d(held.indices, selection)) == 0


def test_the_searches_run_on_the_held_out_half_only(capsys, monkeypatch) -> None:
    monkeypatch.setattr(bench_ensemble, "CANDIDATES", ("synflow", "naswot", "jacob_cov"))
    assert sc.main(["--smoke", "--methods", "bestofn"]) == 0
    out = capsys.readouterr().out
    assert "chosen: " in out
    assert "REA" not in out.split("searches on the held-out half")[1].split("naswot")[0]
    held = set(sc.held_out_subspace(15625).indices.tolist())
    runs = sc.searches(("mean_rank", ("synflow",)), 30, 2, sc.held_out_subspace(15625))
    labels = [r.label for r in runs]
    assert all("subspace" in label for label in labels), labels
    for run in runs:
        assert set(run.rows["index"]) <= held, run.label
    frame = pd.concat([r.rows for r in runs])
    assert frame["accuracy"].notna().all()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--proxy-seeds", "0,x"], "--proxy-seeds: expected integers"),
        (["--seeds", "0"], "must be >= 1"),
        (["--methods", "rea,grid"], "--methods: expected distinct names"),
    ],
)
def test_bad_arguments_get_one_line(argv, message, capsys) -> None:
    with pytest.raises(SystemExit):
        sc.main(argv)
    assert message in capsys.readouterr().err


def test_only_the_chosen_and_naswot_rows_draw_proxy_seeds() -> None:
    """The chosen fitness and NASWOT read proxy seed s mod 2 (here synflow and naswot from
    the shipped seed-1 table, nothing live); recommended, params and synflow REA stay on
    the shipped table."""
    seed1 = Path(score_table.__file__).parent / "data" / "nb201_scores_seed1.parquet"
    proxy = ex.ProxySeeds((0, 1), (str(seed1),))
    held = sc.held_out_subspace(15625)
    runs = sc.searches(("mean_rank", ("synflow",)), 20, 2, held, proxy, ("bestofn",))
    drawn = [r.label for r in runs if r.label.endswith(proxy.label())]
    assert [label.split(" ")[0] for label in drawn] == ["synflow", "naswot"]
    assert any(r.label.startswith("log_rank(synflow+jacob_cov+meco") for r in runs)


def test_verdicts_break_a_stalled_run_down_by_proxy_seed() -> None:
    """A run that stalled has its label extended after the proxy seeds; its per-proxy-seed
    means are still printed, and the gaps read each data set's mean."""
    proxy = ex.ProxySeeds((0, 1))
    label = f"fit REA-10{proxy.label()} (stopped after 8-10 of 10 evaluations: 9 candidates)"
    rows = pd.DataFrame(
        [
            {"seed": s, "dataset": d, "accuracy": acc + s}
            for s in range(4)
            for d, acc in zip(DATASETS, (90.0, 70.0, 40.0))
        ]
    )
    run = ex.Runs(label, 9, rows)
    other = ex.Runs("params best-of-10", 9, rows)
    lines = bench_ensemble.search_verdicts([run], [run, other], proxy)
    assert lines[:2] == [
        "published TE-NAS: 93.90 / 71.24 / 42.38",
        "published NASI: 93.55 / 71.20 / 44.84",
    ]
    assert lines[2].endswith("-2.50 / -1.00 / -4.50")  # means 91.5 / 71.5 / 41.5
    assert lines[3] == (
        f"{label} per proxy seed: seed 0: 91.00 / 71.00 / 41.00; seed 1: 92.00 / 72.00 / 42.00"
    )
    assert len(lines) == 4


def test_the_search_choice_on_half_the_space_is_the_shipped_recommended_search() -> None:
    table = shipped_scores()
    accuracy = load_ground_truth().accuracies("cifar10")[table.index.to_numpy()]
    _, held = bench_ensemble.split(len(table))
    blind = accuracy.copy()
    blind[held] = np.nan  # the choice never reads the held-out half
    chosen, frame = sc.choose_for_search(table, blind, 1000)
    assert chosen == RECOMMENDED_SEARCH
    assert ENSEMBLES["recommended_search"].members == RECOMMENDED_SEARCH[1]
    assert len(frame) == len(bench_ensemble.candidates())
    assert np.isfinite(frame["value"]).all()
