"""The label-free ``recommended`` ensemble (issue #16): its choice, its column, its searches."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from cbred.bench import ensemble as bench_ensemble
from cbred.bench import experiments as ex
from cbred.bench.ground_truth import load_ground_truth
from cbred.bench.score_table import derive, shipped_scores, with_derived
from cbred.proxies import recommended
from cbred.proxies.ensemble import (
    ENSEMBLES,
    RECOMMENDED,
    combine_ranks,
    log_rank,
    parse_fitness,
    vote,
)
from cbred.reduce.search import (
    Budget,
    TableObjective,
    best_of_n,
    grid_space,
    regularized_evolution,
)
from cbred.reduce.subspace import Subspace
from scipy.stats import rankdata, spearmanr


def test_combine_ranks_mean_and_log() -> None:
    rows = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    np.testing.assert_allclose(combine_ranks(rows, "mean_rank"), [2.0, 2.0, 2.0])
    # log rank punishes the candidate one member rates last: log(1/3) + log(3/3) < 2 log(2/3)
    scores = combine_ranks(rows, "log_rank")
    assert scores[1] > scores[0] == scores[2]
    with pytest.raises(ValueError, match="unknown aggregate 'median'"):
        combine_ranks(rows, "median")


def _vote_by_pairs(values: np.ndarray) -> np.ndarray:
    """The majority vote from the definition: for each pair, count the members (rows) that
    put one strictly above the other; NaN is the worst value."""
    v = np.where(np.isnan(values), -np.inf, values)
    members, n = v.shape
    wins = [
        sum(2 * (v[:, i] > v[:, j]).sum() > members for j in range(n) if j != i) for i in range(n)
    ]
    return np.array(wins) / (n - 1)


def test_the_vote_aggregate_of_ranks_is_the_vote_of_the_values(monkeypatch) -> None:
    """Ranks keep every strict order and every tie, so voting on them is voting on values;
    the blocked comparison (blocks smaller than the population) changes nothing."""
    from cbred.proxies import ensemble

    rng = np.random.default_rng(0)
    values = rng.integers(0, 4, size=(3, 40)).astype(float)  # many ties
    values[1, [3, 7]] = np.nan
    table = dict(zip(("synflow", "jacob_cov", "snip"), values))
    expected = _vote_by_pairs(values)
    np.testing.assert_allclose(vote(table), expected)
    monkeypatch.setattr(ensemble, "_VOTE_CHUNK", 7)
    np.testing.assert_allclose(vote(table), expected)
    rows = np.stack([ensemble.ranks(v) for v in values])
    np.testing.assert_allclose(combine_ranks(rows, "vote"), expected)
    assert combine_ranks(np.ones((3, 1)), "vote").tolist() == [0.0]  # a lone candidate
    with pytest.raises(ValueError, match="at least 2"):
        vote({"synflow": [1.0], "jacob_cov": [2.0], "snip": [3.0]})


def test_parse_fitness_takes_statistics_joined_ensembles_and_named_ones() -> None:
    assert parse_fitness("naswot") == (("naswot",), "mean_rank")
    assert parse_fitness("naswot + synflow", "log_rank") == (("naswot", "synflow"), "log_rank")
    for name, ensemble in ENSEMBLES.items():  # its own aggregate
        assert parse_fitness(name) == (ensemble.members, ensemble.aggregate)
        assert parse_fitness(name, ensemble.aggregate) == (ensemble.members, ensemble.aggregate)
    with pytest.raises(ValueError, match="'recommended' combines its members by log_rank"):
        parse_fitness("recommended", "mean_rank")  # asked for, never silently dropped
    assert ENSEMBLES["vote"].aggregate == "vote" and ENSEMBLES["az_nas"].aggregate == "log_rank"
    for text, aggregate, error, message in (
        ("naswot+naswot", "mean_rank", ValueError, "distinct"),
        ("naswot+", "mean_rank", ValueError, "distinct"),
        ("naswot+synflow", "median", ValueError, "unknown aggregate 'median'"),
        ("nosuch", "mean_rank", KeyError, "unknown statistic 'nosuch'"),
        ("naswot+vote", "mean_rank", KeyError, "'vote' is an ensemble \\(vote of synflow"),
    ):
        with pytest.raises(error, match=message):
            parse_fitness(text, aggregate)


def test_the_choice_on_half_the_space_is_the_shipped_recommended() -> None:
    table = shipped_scores()
    accuracy = load_ground_truth().accuracies("cifar10")[table.index.to_numpy()]
    selection, held = bench_ensemble.split(len(table))
    assert len(np.intersect1d(selection, held)) == 0
    assert len(selection) + len(held) == len(table)
    # the choice never reads the held-out half: NaN there would make every ρ NaN
    blind = accuracy.copy()
    blind[held] = np.nan
    chosen, frame = bench_ensemble.choose(table, blind)
    assert chosen == RECOMMENDED
    assert len(frame) == 2 * (2 ** len(bench_ensemble.CANDIDATES) - 1) - len(
        bench_ensemble.CANDIDATES
    )
    assert np.isfinite(frame["value"]).all()
    # each candidate's ρ is Spearman's ρ of its ensemble on the selection half
    for row in frame.sample(5, random_state=0).itertuples():
        score = bench_ensemble.ensemble_score(table, row.aggregate, row.members)
        expected = spearmanr(score[selection], accuracy[selection])[0]
        assert row.value == pytest.approx(expected, abs=1e-12)


def test_the_report_puts_the_published_aggregates_beside_the_choice() -> None:
    """AZ-NAS's and VKDNW's aggregates are computed from the table's columns beside the
    published figures, and left out where the table lacks a member."""
    table, accs = bench_ensemble.table_and_accuracies()
    frame = bench_ensemble.report(table, accs, RECOMMENDED).set_index("ranking")
    az = next(r for r in frame.index if r.startswith("az_nas = log_rank("))
    members = {m: table[m].to_numpy() for m in ENSEMBLES["az_nas"].members}
    expected = spearmanr(log_rank(members, list(members)), accs["cifar10"])[0]
    assert frame.loc[az, "cifar10 rho"] == pytest.approx(expected, abs=1e-12)
    assert any(r.startswith("vkdnw_agg = log_rank(vkdnw, jacob_cov") for r in frame.index)
    rows = bench_ensemble.report(table.drop(columns=["vkdnw"]), accs, RECOMMENDED)["ranking"]
    assert not any(r.startswith("vkdnw_agg") for r in rows)


def test_spearman_rows_is_spearmans_rho_of_each_row_ties_included() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(size=50).round(1)  # ties in the truth too
    scores = rng.normal(size=(6, 50))
    scores[1] = scores[1].round()  # many ties
    scores[2] = -truth  # exactly reversed
    scores[3, :25] = 0.0  # one large tie group at the bottom
    rho = bench_ensemble.spearman_rows(scores, rankdata(truth))
    expected = [spearmanr(row, truth)[0] for row in scores]
    np.testing.assert_allclose(rho, expected, rtol=0, atol=1e-12)
    assert rho[2] == pytest.approx(-1.0)


def test_the_choice_breaks_ties_by_size_then_order(monkeypatch) -> None:
    """Identical rankings tie (their ρ may differ by rounding): fewer members, then the
    earlier candidate wins."""
    rng = np.random.default_rng(0)
    accuracy = rng.normal(size=400)
    good = accuracy + rng.normal(scale=0.5, size=400)
    table = pd.DataFrame({"params": good, "flops": good * 3.0, "synflow": rng.normal(size=400)})
    monkeypatch.setattr(bench_ensemble, "CANDIDATES", ("synflow", "flops", "params"))
    chosen, frame = bench_ensemble.choose(table, accuracy)
    assert chosen == ("mean_rank", ("flops",))
    monkeypatch.setattr(bench_ensemble, "CANDIDATES", ("synflow", "params", "flops"))
    assert bench_ensemble.choose(table, accuracy)[0] == ("mean_rank", ("params",))


def test_the_shipped_column_is_the_ensemble_of_its_members() -> None:
    table = shipped_scores()
    members = {m: table[m].to_numpy() for m in RECOMMENDED[1]}
    np.testing.assert_allclose(table["recommended"].to_numpy(), recommended(members))
    np.testing.assert_allclose(recommended(members), log_rank(members, RECOMMENDED[1]))
    rho = spearmanr(table["recommended"], load_ground_truth().accuracies("cifar10"))[0]
    assert rho > 0.9  # the figure the README quotes is 0.922


def test_derive_adds_the_column_in_place_and_keeps_the_setting(tmp_path) -> None:
    rng = np.random.default_rng(0)
    table = pd.DataFrame({m: rng.normal(size=20) for m in RECOMMENDED[1]})
    table.attrs = {"seed": 3}
    path = tmp_path / "t.parquet"
    table.to_parquet(path)
    out = derive(path)
    again = pd.read_parquet(path)
    assert again.attrs["seed"] == 3 and "recommended" in again.attrs["derived"]
    np.testing.assert_allclose(again["recommended"], out["recommended"])
    assert "recommended" not in with_derived(table.drop(columns=[RECOMMENDED[1][-1]])).columns


def _objectives() -> tuple[Subspace, list[TableObjective]]:
    space = grid_space(4, 5)  # 625 codes, neighbours one digit apart
    rng = np.random.default_rng(1)
    n = space.universe_size
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    objectives = [TableObjective(c, frame[c], direction="higher", cost=1.0) for c in ("a", "b")]
    return space, objectives


def test_best_of_n_with_log_rank_picks_the_log_rank_winner_among_the_sampled() -> None:
    space, objectives = _objectives()
    result = best_of_n(space, objectives, 40, seed=0, aggregate="log_rank")
    values = result.history[["a", "b"]].to_numpy()
    rank_rows = [np.argsort(np.argsort(values[:, k])) + 1.0 for k in range(2)]  # no ties
    by_log = result.history["index"].iat[int(np.argmax(combine_ranks(rank_rows, "log_rank")))]
    by_mean = best_of_n(space, objectives, 40, seed=0).best
    assert result.best == by_log
    assert by_mean == result.history["index"].iat[int(np.argmax(np.mean(rank_rows, axis=0)))]
    assert result.settings["aggregate"] == "log_rank"


@pytest.mark.parametrize("aggregate", ["mean_rank", "log_rank"])
def test_rea_with_an_ensemble_is_seeded_and_ranks_only_what_it_evaluated(aggregate) -> None:
    space, objectives = _objectives()
    runs = [
        regularized_evolution(
            space, objectives, Budget(evaluations=60), 3, 10, 3, aggregate=aggregate
        )  # fmt: skip
        for _ in range(2)
    ]
    assert runs[0].history.equals(runs[1].history) and runs[0].best == runs[1].best
    assert runs[0].evaluations == 60
    history = runs[0].history
    charged = history[~history["repeat"].to_numpy(bool)]
    scores = combine_ranks(
        [pd.Series(charged[c].to_numpy()).rank().to_numpy() for c in ("a", "b")], aggregate
    )
    assert runs[0].best == int(charged["index"].iat[int(np.argmax(scores))])
    assert runs[0].settings["objective"] == "a+b"


def test_rea_with_one_objective_is_unchanged_by_the_ensemble_path() -> None:
    space, objectives = _objectives()
    single = regularized_evolution(space, objectives[0], Budget(evaluations=50), 5, 10, 3)
    listed = regularized_evolution(space, [objectives[0]], Budget(evaluations=50), 5, 10, 3)
    assert single.history.equals(listed.history) and single.best == listed.best
    assert single.best_value == objectives[0].value(single.best)


def test_ensemble_search_rows_count_every_member_evaluation() -> None:
    source = ex.load_scores([], list(RECOMMENDED[1]))
    run = ex.rea_runs(source, RECOMMENDED[1], 30, 2, aggregate=RECOMMENDED[0])
    assert run.label == f"log_rank({'+'.join(RECOMMENDED[1])}) REA-30"
    assert set(run.rows["statistic_evaluations"]) == {240}


def test_searches_over_proxy_seeds_read_tables_or_score_live_per_seed(tmp_path) -> None:
    """Search seed s reads proxy seed s mod 2: seed 0 the shipped table, seed 1 the seed-1
    naswot table and live synflow (kept in the store); flops is analytic under both."""
    from importlib import resources

    from cbred.proxies.store import ScoreStore
    from cbred.reduce.pipeline import load_score_table
    from cbred.reduce.search import LiveProxyObjective

    store = tmp_path / "s.db"
    shipped1 = pd.read_parquet(
        resources.files("cbred.bench") / "data" / "nb201_scores_seed1.parquet"
    )
    naswot_only = shipped1[["arch_str", "naswot"]].copy()  # whatever else the shipped one holds
    naswot_only.attrs = {
        **shipped1.attrs,
        "versions": {"naswot": shipped1.attrs["versions"]["naswot"]},
    }
    seed1 = str(tmp_path / "seed1_naswot.parquet")
    naswot_only.to_parquet(seed1)
    proxy = ex.ProxySeeds((0, 1), (seed1,), str(store))
    naswot0, synflow0, flops0 = proxy.objectives(["naswot", "synflow", "flops"], 2)
    naswot1, synflow1, flops1 = proxy.objectives(["naswot", "synflow", "flops"], 3)
    shipped = shipped_scores()
    assert naswot0.value(123) == shipped.loc[123, "naswot"]
    assert naswot1.value(123) == load_score_table(seed1, "naswot")[123]
    assert naswot1.value(123) != naswot0.value(123)
    assert isinstance(synflow1, LiveProxyObjective) and synflow1.scores.seed == 1
    assert flops1.value(77) == flops0.value(77)
    run = ex.rea_runs(ex.load_scores([], ["synflow"]), "synflow", 3, 2, population=2, proxy=proxy)
    assert run.label == "synflow REA-3 (proxy seeds 0,1)"
    with ScoreStore(store) as s:
        rows = s.frame()
    assert set(rows["seed"]) == {1} and 1 <= rows["arch"].nunique() <= 3
    assert proxy.objectives(["synflow"], 1)[0] is synflow1  # one memo per proxy seed
    assert ex._published_key("naswot best-of-1000 (proxy seeds 0,1)") == "naswot N=1000"
    assert ex._published_key("naswot best-of-1000 in subspace") is None
    line = bench_ensemble.per_proxy_seed(run, proxy)
    assert line.startswith("synflow REA-3 (proxy seeds 0,1) per proxy seed: seed 0: ")
    assert "; seed 1: " in line


def test_the_benchmark_refuses_a_missing_source_before_any_work(capsys) -> None:
    from cbred.bench.cli import module_main

    argv = ["--proxy-seeds", "0,1", "--scores", "/no/such.parquet"]
    assert module_main(lambda: bench_ensemble.main(argv), "ensemble") == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # refused before the choice and the report
    assert captured.err == "ensemble: error: score source '/no/such.parquet' does not exist\n"


@pytest.mark.parametrize("bad", ["0,x", "", "1,1", "-1"])
def test_the_benchmark_rejects_bad_proxy_seeds(bad, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        bench_ensemble.main(["--smoke", "--proxy-seeds", bad])
    assert stop.value.code == 2
    assert "--proxy-seeds: expected" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["", "rea,rea", "bestofn,area"])
def test_the_benchmark_rejects_bad_methods(bad, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        bench_ensemble.main(["--smoke", "--methods", bad])
    assert stop.value.code == 2
    assert f"--methods: expected distinct names of ('bestofn', 'rea'), got {bad!r}" in (
        capsys.readouterr().err
    )


def test_the_ensemble_searches_are_the_methods_asked_for_first() -> None:
    """--methods bestofn leaves out the ensemble's REA (whose visits cannot be scored ahead),
    never the baselines beside it."""
    ensemble = f"log_rank({'+'.join(RECOMMENDED[1])})"
    labels = [r.label for r in bench_ensemble.searches(40, 2, methods=("bestofn",))]
    assert labels[0] == f"{ensemble} best-of-40"
    assert not any(x.startswith(ensemble) for x in labels[1:])
    assert "naswot best-of-40" in labels and "synflow REA-40" in labels
    both = [r.label for r in bench_ensemble.searches(40, 2, methods=("rea", "bestofn"))]
    assert both[:2] == [f"{ensemble} REA-40", f"{ensemble} best-of-40"]


def test_the_benchmark_smoke_run_prints_the_choice_and_the_gaps(capsys) -> None:
    assert bench_ensemble.main(["--smoke"]) == 0
    out = capsys.readouterr().out
    assert f"chosen: log_rank({', '.join(RECOMMENDED[1])}) = RECOMMENDED" in out
    assert len(RECOMMENDED[1]) == 8 and "az_trainability" in RECOMMENDED[1]
    assert "whole-space ρ on cifar10: 0.953 (target ≥ 0.92: met)" in out
    assert "whole-space ρ on imagenet16_120: 0.926 (target ≥ 0.92: met)" in out
    assert "vs target 94.0 / 72.5 / 46.0: -" in out  # a search's gap is reported plainly


@pytest.mark.parametrize("command", [["search", "rea"], ["bench", "correlation"]])
def test_the_score_help_names_every_named_ensemble(command, capsys) -> None:
    """The help is written out (the CLI does not import the proxies to build its parser):
    it must not fall behind :data:`ENSEMBLES`."""
    from cbred.bench.cli import main

    with pytest.raises(SystemExit):
        main([*command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(name in text for name in ENSEMBLES), text


def test_proxies_list_names_the_ensembles(capsys) -> None:
    from cbred.bench.cli import main

    assert main(["proxies", "list", "--brief"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("recommended"))
    assert ", ".join(RECOMMENDED[1]) in line and "log_rank" in line
    az = next(x for x in out.splitlines() if x.startswith("az_nas"))
    assert re.search(r"flops {2,}log_rank", az)  # the members column never runs into the aggregate
    search = next(x for x in out.splitlines() if x.startswith("recommended_search"))
    assert re.match(r"recommended_search {2,}synflow, swap, zen {2,}log_rank", search)


def test_cli_searches_take_the_recommended_ensemble(tmp_path, capsys) -> None:
    import json

    from cbred.bench.cli import main

    out = tmp_path / "rea.json"
    args = ["search", "rea", "--space", "nb201", "--score", "recommended"]
    assert main([*args, "--evaluations", "160", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["members"] == list(RECOMMENDED[1]) and report["aggregate"] == "log_rank"
    assert report["evaluations"] == 160 and len(report["history"]["index"]) == 20
    assert "20 architectures × 8 statistics" in capsys.readouterr().out
    assert main(["search", "bestofn", "--space", "nb201", "--score", "naswot+synflow",
                 "--aggregate", "log_rank", "--evaluations", "10"]) == 0  # fmt: skip
    assert "5 architectures × 2 statistics" in capsys.readouterr().out
    vote_out = tmp_path / "vote.json"
    assert main(["search", "bestofn", "--space", "nb201", "--score", "vote", "--evaluations",
                 "30", "--out", str(vote_out)]) == 0  # fmt: skip
    report = json.loads(vote_out.read_text())
    assert report["members"] == ["synflow", "jacob_cov", "snip"] and report["aggregate"] == "vote"
    capsys.readouterr()
    for bad, message in (
        (["search", "area", "--space", "nb201", "--score", "recommended"], "one statistic"),
        (
            ["score", "--space", "nb201", "--score", "recommended", "--sample", "2"],
            "'recommended' is an ensemble (log_rank of synflow, jacob_cov, meco, ",
        ),
        (
            ["reduce", "--space", "nb201", "--score", "az_nas", "--out", str(tmp_path / "r.json")],
            "'az_nas' is an ensemble",
        ),
        (["bench", "area", "--score", "vote", "--seeds", "2"], "got the ensemble 'vote'"),
        (
            [
                "search",
                "bestofn",
                "--space",
                "nb201",
                "--score",
                "naswot+synflow",
                "--aggregate",
                "median",
            ],
            "unknown aggregate 'median'",
        ),
        ([*args, "--evaluations", "2"], "fewer than the 8 statistics"),
        (["search", "rea", "--space", "nb201", "--score", "naswot+naswot"], "distinct"),
    ):
        assert main(bad) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_cli_bench_searches_take_named_ensembles_and_rea_ensembles(capsys) -> None:
    """cbred bench bestofn/rea: a named ensemble brings its own aggregate; '+' items take
    --aggregate; REA runs ensembles (it used to refuse them)."""
    from cbred.bench.cli import main

    args = ["--seeds", "2", "--stat-seconds", "0"]
    assert main(["bench", "bestofn", "--score", "vote,synflow+meco", "--aggregate", "log_rank",
                 "--n", "30", *args]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "| vote(synflow+jacob_cov+snip) best-of-30 |" in out
    assert "| log_rank(synflow+meco) best-of-30 |" in out
    assert main(["bench", "rea", "--score", "recommended", "--evaluations", "80", *args]) == 0
    assert f"| log_rank({'+'.join(RECOMMENDED[1])}) REA-80 |" in capsys.readouterr().out
    # correlation: the ensemble's own row beside its members', and no searches' header
    assert main(["bench", "correlation", "--score", "recommended,vote,synflow+meco"]) == 0
    out = capsys.readouterr().out
    assert "| recommended | 15625 | 0.953 (—) |" in out
    assert "| vote | 15625 | 0.864 (0.82) |" in out  # a named ensemble keeps its published ρ
    assert "| synflow+meco | 15625 |" in out and "| meco | 15625 |" in out
    assert "# seeds" not in out


def test_cli_search_under_another_proxy_seed_scores_live_into_a_store(tmp_path, capsys) -> None:
    """--proxy-seed 1 never reads the shipped (seed 0) table; --store keeps what is computed,
    so the same search again computes nothing and finds the same architecture."""
    import json

    from cbred.bench.cli import main
    from cbred.proxies.store import ScoreStore

    store, out = tmp_path / "s.db", tmp_path / "r.json"
    args = ["search", "rea", "--space", "nb201", "--channels", "4", "--cells", "1",
            "--batch-size", "8", "--score", "naswot+synflow+params", "--evaluations", "18",
            "--population", "3", "--seed", "5", "--out", str(out)]  # fmt: skip
    assert main([*args, "--proxy-seed", "1", "--store", str(store)]) == 0
    first = json.loads(out.read_text())
    assert first["score_source"] == "analytic, live, store s.db" and first["proxy_seed"] == 1
    with ScoreStore(store) as s:
        rows = s.frame()
    assert set(rows["seed"]) == {1} and set(rows["statistic"]) == {"naswot", "synflow"}
    assert rows["arch"].nunique() == len(set(first["history"]["index"]))
    written = rows["created"].max()
    assert main([*args, "--proxy-seed", "1", "--store", str(store)]) == 0
    again = json.loads(out.read_text())
    assert again["best"] == first["best"] and again["history"] == first["history"]
    with ScoreStore(store) as s:
        assert s.frame()["created"].max() == written  # nothing recomputed
    # the store read as a table (--scores): the same values, nothing computed
    assert main([*args, "--proxy-seed", "1", "--scores", str(store)]) == 0
    read = json.loads(out.read_text())
    assert read["score_source"] == "analytic, table s.db" and read["best"] == first["best"]
    assert main([*args, "--proxy-seed", "2", "--scores", str(store)]) == 2
    assert "s.db has no rows for 'naswot'" in capsys.readouterr().err
    capsys.readouterr()
    shipped = ["search", "bestofn", "--space", "nb201", "--score", "naswot", "--evaluations", "3"]
    assert main([*shipped, "--proxy-seed", "0"]) == 0
    assert "(shipped score table)" in capsys.readouterr().out
    assert main(["search", "rea", "--space", "nb201", "--store", str(tmp_path / "no" / "s.db"),
                 "--proxy-seed", "3", "--evaluations", "2"]) == 2  # fmt: skip
    assert "does not exist" in capsys.readouterr().err
