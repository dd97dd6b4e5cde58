"""Searches: toy optimum, exact budgets, subspace constraints, determinism, NB201 wiring."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pytest
from cbred.bench.nb201 import default_space
from cbred.reduce.search import (
    AccuracyObjective,
    Budget,
    BudgetExhausted,
    Evaluator,
    LiveProxyObjective,
    PenalisedObjective,
    TableObjective,
    area,
    as_subspace,
    best_of_n,
    grid_space,
    live_objectives,
    regularized_evolution,
    soft_reward,
    within_budget,
)
from cbred.reduce.subspace import Subspace
from hypothesis import given, settings
from hypothesis import strategies as st

POSITIONS, VALUES = 4, 4
TARGET = (3, 1, 0, 2)


def digits(code: int) -> tuple[int, ...]:
    return tuple((code // VALUES**p) % VALUES for p in range(POSITIONS))


@dataclass(frozen=True)
class Matches:
    """Toy objective: digits equal to TARGET (unique optimum = TARGET's code), with
    a position-dependent cost so that seconds budgets see unequal charges."""

    name: str = "matches"
    direction: str = "higher"

    def value(self, index: int) -> float:
        return float(sum(a == b for a, b in zip(digits(index), TARGET)))

    def seconds(self, index: int) -> float:
        return 1.0 + index % 3


@dataclass(frozen=True)
class Mismatches(Matches):
    """The same objective, lower is better."""

    name: str = "mismatches"
    direction: str = "lower"

    def value(self, index: int) -> float:
        return POSITIONS - super().value(index)


OPTIMUM = sum(d * VALUES**p for p, d in enumerate(TARGET))
TOY = grid_space(POSITIONS, VALUES)


def test_grid_neighbours_differ_in_exactly_one_position():
    table = TOY.full_space().neighbour_table()
    assert table.shape == (VALUES**POSITIONS, POSITIONS * (VALUES - 1))
    for code in (0, 17, OPTIMUM, VALUES**POSITIONS - 1):
        neighbours = table[code]
        assert len(set(neighbours.tolist())) == neighbours.size
        for other in neighbours:
            assert sum(a != b for a, b in zip(digits(code), digits(int(other)))) == 1


def test_nb201_neighbour_table_matches_the_space():
    space = default_space()
    searchable = as_subspace(space)
    assert len(searchable) == 15625
    for index in (0, 1, 6111, 9930, 15624):
        fast = space.neighbour_table()[index].tolist()
        assert sorted(fast) == sorted(space.neighbours(index))
        assert sorted(searchable.neighbours(index).tolist()) == sorted(fast)


def test_rea_refuses_a_tournament_larger_than_its_population():
    """The tournament draws distinct members: one larger than the population was cut to it
    silently, so the user's setting was not the one run."""
    for initial in (None, [0, 1, 2]):  # the population size, or AREA's seeded population
        with pytest.raises(
            ValueError, match="a tournament of 4 is larger than the population of 3"
        ):
            regularized_evolution(TOY, Matches(), Budget(evaluations=10), 0, 3, 4, initial=initial)
    result = regularized_evolution(TOY, Matches(), Budget(evaluations=10), 0, 3, 3)
    assert result.evaluations == 10  # a tournament of the whole population is allowed
    default = regularized_evolution(TOY, Matches(), Budget(evaluations=10), 0, 3)
    assert default.settings["tournament_size"] == 3  # the default 5 shrinks to the population
    assert default.history["index"].tolist() == result.history["index"].tolist()


@pytest.mark.parametrize("objective", [Matches(), Mismatches()])
@pytest.mark.parametrize("seed", range(5))
def test_rea_finds_the_known_optimum(objective, seed):
    result = regularized_evolution(
        TOY, objective, Budget(evaluations=120), seed, population_size=10, tournament_size=4
    )
    assert result.best == OPTIMUM
    assert result.best_value == objective.value(OPTIMUM)
    # A fixed evaluation budget: REA beats best-of-N with the same budget on average.
    assert result.evaluations == 120


def test_rea_evolves_rather_than_samples():
    """With 40 evaluations random sampling rarely hits the optimum (p ≈ 0.15); REA
    (oldest dies, tournament, one-position mutation) does in most seeds."""
    found = [
        regularized_evolution(TOY, Matches(), Budget(evaluations=40), s, 8, 4).best == OPTIMUM
        for s in range(20)
    ]
    sampled = [best_of_n(TOY, Matches(), 40, s).best == OPTIMUM for s in range(20)]
    assert sum(found) >= 14 and sum(found) > sum(sampled) + 5


@settings(max_examples=25, deadline=None)
@given(
    cap=st.integers(1, 120),
    seed=st.integers(0, 2**16),
    charge=st.booleans(),
)
def test_evaluation_budget_is_exact(cap, seed, charge):
    result = regularized_evolution(
        TOY, Matches(), Budget(evaluations=cap), seed, 6, 3, charge_repeats=charge
    )
    history = result.history
    assert result.evaluations == history["evaluations"].iat[-1]
    charged = len(history) if charge else int((~history["repeat"]).sum())
    assert charged == result.evaluations
    assert result.evaluations == cap


@settings(max_examples=25, deadline=None)
@given(cap=st.floats(3.0, 400.0), seed=st.integers(0, 2**16))
def test_seconds_budget_is_never_exceeded_and_nearly_spent(cap, seed):
    result = regularized_evolution(
        TOY, Matches(), Budget(seconds=cap), seed, 6, 3, charge_repeats=True
    )
    assert result.seconds <= cap
    assert result.seconds == pytest.approx(result.history["seconds"].iat[-1])
    # Stopped only because the next query (cost <= 3 s) would not fit.
    assert cap - result.seconds < 3.0
    assert "seconds budget" in result.stop_reason


def test_budget_refusing_everything_is_an_error():
    with pytest.raises(ValueError, match="allows no evaluation"):
        regularized_evolution(TOY, Matches(), Budget(evaluations=0), 0)
    with pytest.raises(ValueError, match="budget must be an int"):
        Budget(evaluations=-1)
    with pytest.raises(ValueError, match="seconds budget"):
        Budget(seconds=math.inf)


def test_best_of_n_respects_n_and_budget_and_picks_the_best():
    result = best_of_n(TOY, Matches(), 50, seed=3)
    assert result.evaluations == len(result.history) == 50
    assert result.history["index"].is_unique
    assert result.best_value == result.history["matches"].max()
    first_best = result.history.loc[result.history["matches"].idxmax(), "index"]
    assert result.best == first_best
    capped = best_of_n(TOY, Matches(), 50, seed=3, budget=Budget(seconds=30.0))
    assert capped.seconds <= 30.0 and capped.evaluations < 50
    assert (
        capped.history["index"].tolist() == result.history["index"][: capped.evaluations].tolist()
    )


def test_best_of_n_ensemble_ranks_only_the_candidates():
    table = {i: float(i) for i in range(len(TOY))}
    high = TableObjective("up", table, direction="higher", cost=1.0)
    low = TableObjective("down", table, direction="lower", cost=2.0)
    result = best_of_n(TOY, [high, Matches()], 30, seed=1)
    assert result.method == "best_of_n_ensemble"
    assert result.seconds == sum(1.0 + Matches().seconds(i) for i in result.history["index"])
    history = result.history
    rank_sum = history["up"].rank() + history["matches"].rank()
    assert result.best_value == pytest.approx(rank_sum.max() / 2)
    # Two opposed statistics tie everywhere: the earliest candidate wins.
    tied = best_of_n(TOY, [high, low], 30, seed=1)
    assert tied.best == tied.history["index"].iat[0]


def _toy_subspace(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(len(TOY), size=40, replace=False))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_searches_never_leave_a_subspace(seed):
    members = _toy_subspace(seed)
    inside = TOY.restrict(members)
    allowed = set(members.tolist())
    runs = [
        best_of_n(inside, Matches(), 100, seed),
        regularized_evolution(inside, Matches(), Budget(evaluations=30), seed, 5, 3),
        area(inside, Matches(), Mismatches(), Budget(evaluations=30), seed, 20, 5, 2),
    ]
    for result in runs:
        assert set(result.history["index"].tolist()) <= allowed
        assert result.best in allowed
    assert runs[0].evaluations == 40  # N clipped to the subspace size


def test_mutation_resamples_when_no_neighbour_is_inside():
    isolated = TOY.restrict(np.array([0, 5, 10, 15]))  # pairwise two digits apart
    assert all(isolated.neighbours(i).size == 0 for i in isolated)
    rng = np.random.default_rng(0)
    children = {isolated.mutate(0, rng) for _ in range(50)}
    assert children == {0, 5, 10, 15}


def test_evaluator_refuses_non_members_and_counts_repeats_once():
    inside = TOY.restrict(np.arange(10))
    evaluator = Evaluator(inside, [Matches()], Budget(evaluations=3))
    with pytest.raises(ValueError, match="not a member"):
        evaluator.evaluate(11)
    for index in (1, 2, 1, 1, 3):
        evaluator.evaluate(index)
    assert evaluator.evaluations == 3
    assert evaluator.history_frame()["repeat"].tolist() == [False, False, True, True, False]
    evaluator.evaluate(2)  # a repeat is still answered after the cap
    with pytest.raises(BudgetExhausted, match="evaluation budget 3"):
        evaluator.evaluate(4)


def test_free_repeats_stop_when_stalled(monkeypatch):
    monkeypatch.setattr("cbred.reduce.search.base.MAX_STALL", 2)
    result = regularized_evolution(TOY, Matches(), Budget(), 0, 4, 4)
    assert "stalled" in result.stop_reason
    repeats = result.history["repeat"].to_numpy()
    assert repeats[-2:].all() and result.evaluations < len(TOY)


def test_free_repeats_stop_when_the_space_is_exhausted():
    tiny = TOY.restrict(np.arange(6))
    result = regularized_evolution(tiny, Matches(), Budget(), 0, 3, 2)
    assert result.evaluations == 6
    assert "every member" in result.stop_reason


@pytest.mark.parametrize(
    "run",
    [
        lambda s: best_of_n(TOY, Matches(), 30, s),
        lambda s: regularized_evolution(TOY, Matches(), Budget(evaluations=80), s, 8, 3),
        lambda s: area(TOY, Mismatches(), Matches(), Budget(seconds=100.0), s, 40, 6, 3),
    ],
)
def test_same_seed_same_history(run):
    first, again, other = run(7), run(7), run(8)
    pd.testing.assert_frame_equal(first.history, again.history)
    assert first.best == again.best
    assert not first.history["index"].equals(other.history["index"])


def test_area_screens_exactly_m_and_seeds_with_the_top():
    result = area(TOY, Mismatches(), Matches(), Budget(evaluations=25), 4, 60, 8, 3)
    screen = result.history[result.history["phase"] == "screen"]
    evolve = result.history[result.history["phase"] == "evolve"]
    assert len(screen) == 60 and screen["index"].is_unique
    top = screen.sort_values("mismatches", kind="stable")["index"].head(8).tolist()
    assert evolve["index"].head(8).tolist() == top
    assert int((~evolve["repeat"]).sum()) == 25
    assert result.evaluations == 60 + 25
    assert result.best_value == evolve["matches"].max()


def test_hard_cost_budget_restricts_the_space():
    costs = np.arange(len(TOY), dtype=float)
    feasible = within_budget(TOY, costs, 99.5)
    assert feasible.members.tolist() == list(range(100))
    result = regularized_evolution(feasible, Matches(), Budget(evaluations=50), 0, 6, 3)
    assert (costs[result.history["index"]] <= 99.5).all()
    with pytest.raises(ValueError, match="no member"):
        within_budget(TOY, costs + 1000, 10)


def test_soft_penalty_follows_the_reward_formula():
    costs = np.linspace(1.0, 4.0, len(TOY))
    penalised = PenalisedObjective(Matches(), costs, target=2.0, gamma=-0.5)
    for index in (0, 100, OPTIMUM):
        expected = Matches().value(index) * (costs[index] / 2.0) ** -0.5
        assert penalised.value(index) == pytest.approx(expected)
        assert penalised.value(index) == soft_reward(Matches().value(index), costs[index], 2, -0.5)
    with pytest.raises(ValueError, match="lower-is-better"):
        PenalisedObjective(Mismatches(), costs, 2.0)


def test_nb201_subspace_and_accuracy_oracle():
    indices = default_space().sample(300, seed=1)
    sub = Subspace.from_indices(indices, default_space())
    space = as_subspace(sub)
    assert len(space) == 300
    accuracy = AccuracyObjective("cifar100", space=default_space())
    result = regularized_evolution(
        sub, accuracy, Budget(seconds=3000.0), 0, 10, 3, charge_repeats=True
    )
    assert result.evaluations == 30 and result.seconds == 3000.0
    assert set(result.history["index"]) <= set(indices.tolist())
    assert result.best_value == max(accuracy.value(i) for i in result.history["index"])


def test_table_objective_reports_missing_architectures():
    objective = TableObjective("naswot", {1: 5.0, 2: float("nan")})
    assert objective.direction == "higher"
    assert objective.covered.tolist() == [1, 2]
    with pytest.raises(KeyError, match="no value for architecture 3"):
        objective.value(3)
    result = best_of_n(TOY.restrict(np.array([1, 2])), objective, 2, 0)
    assert result.best == 1  # NaN is the worst value


def test_live_proxy_objective_scores_on_demand():
    from cbred.bench.nb201_network import count_params_flops

    small = default_space().with_setting(channels=4, cells_per_stage=1)
    (live,) = live_objectives(["params"], small, batch_size=8)
    assert live.value(6111) == count_params_flops(6111, 4, 1)[0]
    assert live.scores.scored == [6111]
    live.value(6111)
    assert live.scores.scored == [6111]  # memoised
    assert live.seconds(6111) == pytest.approx(0.30619)
    with pytest.raises(ValueError, match="'naswot' is not one of"):
        LiveProxyObjective("naswot", live.scores)


def test_live_scores_fuse_members_and_resume_from_a_store(tmp_path):
    from cbred.proxies import score_space
    from cbred.proxies.store import ScoreStore

    small = default_space().with_setting(channels=4, cells_per_stage=1)
    store = tmp_path / "live.db"
    naswot, params = live_objectives(["naswot", "params"], small, 8, seed=1, store=store)
    first = [naswot.value(i) for i in (5, 77, 5)] + [params.value(77)]
    assert naswot.scores.scored == [5, 77]  # one fused pass per architecture
    expected = score_space(small, 77, ["naswot"], 8, 1).values["naswot"]
    assert first[1] == pytest.approx(expected, rel=1e-12)
    with ScoreStore(store) as s:
        rows = s.frame()
    assert sorted(zip(rows["arch"], rows["statistic"])) == [
        (5, "naswot"),
        (5, "params"),
        (77, "naswot"),
        (77, "params"),
    ]
    assert set(rows["seed"]) == {1}
    # a new search in the same setting reads them, computing nothing
    again, _ = live_objectives(["naswot", "params"], small, 8, seed=1, store=store)
    assert [again.value(i) for i in (5, 77)] == first[:2]
    assert again.scores.scored == []
    # another seed is another setting: never served the stored values
    other, _ = live_objectives(["naswot", "params"], small, 8, seed=2, store=store)
    assert other.scores.cache == {}
    other.value(5)
    assert other.scores.scored == [5]
    assert other.value(5) != first[0]


def test_live_scores_complete_an_architecture_the_store_holds_in_part(tmp_path):
    """Stored statistics are served and only the missing one is computed and stored."""
    from cbred.proxies import score_space
    from cbred.proxies.engine import ScoreJob, score_chunk
    from cbred.proxies.store import ScoreStore

    small = default_space().with_setting(channels=4, cells_per_stage=1)
    store = tmp_path / "live.db"
    with ScoreStore(store) as s:
        rows = score_chunk(ScoreJob(("params",), small, 8, 1), [5])
        s.put([replace(r, value=-7.0) for r in rows])  # a marker no computation gives
    naswot, params = live_objectives(["naswot", "params"], small, 8, seed=1, store=store)
    assert params.value(5) == -7.0 and naswot.scores.scored == []
    expected = score_space(small, 5, ["naswot"], 8, 1).values["naswot"]
    assert naswot.value(5) == pytest.approx(expected, rel=1e-12)
    assert naswot.scores.scored == [5] and params.value(5) == -7.0
    with ScoreStore(store) as s:
        wide = s.wide()
    assert wide.loc[5, "params"] == -7.0 and wide.loc[5, "naswot"] == naswot.value(5)


def test_live_scores_see_what_a_concurrent_run_stored_after_they_opened(tmp_path):
    small = default_space().with_setting(channels=4, cells_per_stage=1)
    store = tmp_path / "live.db"
    first, _ = live_objectives(["naswot", "params"], small, 8, seed=1, store=store)
    second, _ = live_objectives(["naswot", "params"], small, 8, seed=1, store=store)
    value = first.value(77)  # stored after `second` read the (then empty) store
    assert second.value(77) == value and second.scores.scored == []


def test_area_screens_only_the_screen_space():
    scored = TOY.restrict(np.arange(0, 256, 2))  # e.g. the architectures a table covers
    result = area(
        TOY, Mismatches(), Matches(), Budget(evaluations=40), 1, 30, 5, 3, screen_space=scored
    )
    screen = result.history[result.history["phase"] == "screen"]
    evolve = result.history[result.history["phase"] == "evolve"]
    assert set(screen["index"]) <= set(scored.members.tolist())
    assert (evolve["index"] % 2 == 1).any()  # evolution reaches beyond the scored part
