"""TE-NAS pruning: ranking direction, exact per-round bookkeeping, validity, determinism, CLI."""

from __future__ import annotations

import json
import math

import pytest
from cbred.bench.cli import main as cli_main
from cbred.bench.datasets import DATASETS
from cbred.bench.ground_truth import load_ground_truth
from cbred.bench.nb201 import NUM_EDGES, OPS, Arch
from cbred.bench.perf_tenas import SMOKE_CONFIG
from cbred.bench.perf_tenas import main as perf_main
from cbred.bench.tenas import TenasConfig, choose_removals, rank_candidates, tenas_search
from cbred.bench.tenas.prune import CandidateScore, relative_change
from cbred.bench.tenas.supernet import FULL, remove_op
from hypothesis import given, settings
from hypothesis import strategies as st

TINY = SMOKE_CONFIG  # C=2 NTK supernet, 4 images at 8x8, 32 patches, one repeat


@pytest.fixture(scope="module")
def result():
    return tenas_search(seed=11, config=TINY)


def test_search_yields_a_valid_architecture(result) -> None:
    assert isinstance(result.arch, Arch)
    assert Arch.from_string(str(result.arch)) == result.arch
    assert "none" not in result.arch.ops  # dropped before ranking, as in the reference code
    assert result.dropped == tuple((e, "none") for e in range(NUM_EDGES))
    assert result.seconds > 0 and result.cpu_seconds > 0


def test_each_round_removes_exactly_one_op_per_edge(result) -> None:
    alive = FULL
    for e, op in result.dropped:
        alive = remove_op(alive, e, op)
    assert len(result.rounds) == len(OPS) - 2  # four ops per edge left: three rounds
    for r in result.rounds:
        wide = [e for e, ops in enumerate(alive) if len(ops) > 1]
        assert sorted({(c.edge, c.op) for c in r.candidates}) == sorted(
            (e, op) for e in wide for op in alive[e]
        )
        assert [e for e, _ in r.removed] == wide
        for e, op in r.removed:
            on_edge = [c for c in r.candidates if c.edge == e]
            assert min(c.importance for c in on_edge) == next(
                c.importance for c in on_edge if c.op == op
            )
            alive = remove_op(alive, e, op)
        assert r.alive_after == alive
    assert alive == tuple((op,) for op in result.arch.ops)


def _without_times(res) -> dict:
    out = res.to_dict() if not isinstance(res, dict) else dict(res)
    out = {k: v for k, v in out.items() if k not in ("seconds", "cpu_seconds")}
    out["rounds"] = [{k: v for k, v in r.items() if k != "seconds"} for r in out["rounds"]]
    return out


TWO_LEFT = tuple(("skip_connect", "nor_conv_3x3") for _ in range(NUM_EDGES))


def test_same_seed_same_result() -> None:
    first = tenas_search(seed=5, dataset="imagenet16_120", config=TINY, alive=TWO_LEFT)
    second = tenas_search(seed=5, dataset="imagenet16_120", config=TINY, alive=TWO_LEFT)
    assert first.num_classes == 120 and len(first.rounds) == 1
    assert _without_times(first) == _without_times(second)
    other = tenas_search(seed=6, dataset="imagenet16_120", config=TINY, alive=TWO_LEFT)
    deltas = [(c.delta_kappa, c.delta_regions) for c in first.rounds[0].candidates]
    assert deltas != [(c.delta_kappa, c.delta_regions) for c in other.rounds[0].candidates]


def test_removing_none_changes_nothing() -> None:
    """``none`` adds zero to its edge: its removal leaves κ and R exactly unchanged."""
    alive = tuple(("none", "skip_connect") if e % 2 else ("nor_conv_3x3",) for e in range(6))
    config = TenasConfig(**{**TINY.__dict__, "drop_none": False})
    res = tenas_search(seed=0, config=config, alive=alive)
    (only,) = res.rounds
    nones = [c for c in only.candidates if c.op == "none"]
    assert len(nones) == 3 and len(only.candidates) == 6
    assert all(c.delta_kappa == 0.0 and c.delta_regions == 0.0 for c in nones)


def test_ranking_direction() -> None:
    """High Δκ (removal lowers κ) and low ΔR (removal keeps regions) mark the op to remove."""
    deltas = {
        (0, "skip_connect"): (0.5, 0.0),  # best for both criteria: removed
        (0, "nor_conv_3x3"): (-0.2, 0.3),
        (1, "avg_pool_3x3"): (0.1, 0.2),
        (1, "nor_conv_1x1"): (0.1, 0.4),  # ties avg_pool on Δκ, worse on ΔR
    }
    scores = {(c.edge, c.op): c for c in rank_candidates(deltas)}
    assert scores[(0, "skip_connect")].rank_kappa == 0
    assert scores[(1, "avg_pool_3x3")].rank_kappa == scores[(1, "nor_conv_1x1")].rank_kappa == 1
    assert scores[(0, "nor_conv_3x3")].rank_kappa == 2
    assert [scores[k].rank_regions for k in deltas] == [0, 2, 1, 3]
    alive = (("skip_connect", "nor_conv_3x3"), ("nor_conv_1x1", "avg_pool_3x3"), *[("none",)] * 4)
    removed = choose_removals(alive, list(scores.values()))
    assert removed == ((0, "skip_connect"), (1, "avg_pool_3x3"))


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_choose_removals_picks_one_least_important_op_per_wide_edge(data) -> None:
    alive = tuple(
        tuple(sorted(data.draw(st.sets(st.sampled_from(OPS), min_size=1)), key=OPS.index))
        for _ in range(NUM_EDGES)
    )
    finite = st.floats(-1, 1, allow_nan=False)
    deltas = {
        (e, op): (data.draw(finite), data.draw(finite))
        for e, ops in enumerate(alive)
        if len(ops) > 1
        for op in ops
    }
    scores = rank_candidates(deltas) if deltas else []
    removed = dict(choose_removals(alive, scores))
    assert sorted(removed) == [e for e, ops in enumerate(alive) if len(ops) > 1]
    for e, op in removed.items():
        best = min(c.importance for c in scores if c.edge == e)
        assert next(c for c in scores if (c.edge, c.op) == (e, op)).importance == best


def test_choose_removals_needs_every_alive_op_scored() -> None:
    scores = [CandidateScore(0, "skip_connect", 0.0, 0.0, 0, 0)]
    with pytest.raises(ValueError, match="edge 0: scores cover 1 of its 2"):
        choose_removals((("skip_connect", "nor_conv_3x3"), *[("none",)] * 5), scores)


def test_relative_change_handles_infinite_and_nan() -> None:
    assert relative_change(4.0, 1.0) == 0.75
    assert relative_change(math.inf, 3.0) == math.inf  # removal made the NTK well conditioned
    assert relative_change(3.0, math.inf) == -math.inf
    assert relative_change(math.inf, math.inf) == 0.0
    assert math.isnan(relative_change(math.nan, 1.0))


def test_bad_config_and_dataset() -> None:
    with pytest.raises(ValueError, match="repeats must be >= 1, got 0"):
        TenasConfig(repeats=0)
    with pytest.raises(ValueError, match="lr_channels must be 1..3"):
        TenasConfig(lr_channels=4)
    with pytest.raises(ValueError, match="mnist"):
        tenas_search(0, "mnist", TINY)


def test_cli_search_tenas_reproduces_the_api_search(result, capsys) -> None:
    argv = ["search", "tenas", "--dataset", "cifar10", "--seed", "11", "--json"]
    argv += ["--ntk-channels", "2", "--ntk-batch", "4", "--ntk-resolution", "8"]
    argv += ["--lr-samples", "32", "--repeats", "1"]
    assert cli_main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    arch = Arch.from_string(out["arch"])
    assert arch == result.arch  # same seed, same settings: the same search, run twice
    assert _without_times({k: out[k] for k in result.to_dict()}) == _without_times(result)
    truth = load_ground_truth()
    assert out["accuracy"] == {d: truth.accuracy(arch, d) for d in DATASETS}


def test_perf_smoke(capsys) -> None:
    assert perf_main(["--smoke", "--seeds", "1"]) == 0
    out = capsys.readouterr().out
    assert "paper TE-NAS" in out and "93.90 ± 0.47" in out and "1558 GPU s" in out
