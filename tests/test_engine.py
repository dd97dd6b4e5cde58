"""Scoring engine: store, resume after SIGKILL, concurrent writers, failures, executors."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch
from cbred.bench.nb201 import NB201Space
from cbred.proxies.engine import ScoreJob, missing_archs, run_scoring, score_chunk
from cbred.proxies.executors import InProcessExecutor, ProcessPoolExecutor
from cbred.proxies.registry import register_proxy, unregister_proxy
from cbred.proxies.store import ScoreRow, ScoreStore
from engine_helpers import always_raise, die_once_then_score

TINY = dict(batch_size=8, space=NB201Space(channels=4, cells_per_stage=1))
ARCHS = [0, 6111, 857, 123]


def _row(arch: int, stat: str = "params", value: float | None = 1.0) -> ScoreRow:
    return ScoreRow("nb201", arch, stat, "cifar10", 8, 0, "v1", f"a{arch}", value, 0.1, "cpu")


def test_store_round_trip_and_exports(tmp_path):
    with ScoreStore(tmp_path / "s.db") as store:
        assert store.put([_row(1), _row(2, value=float("nan")), _row(1, "naswot", 3.5)]) == 3
        assert store.put([_row(1)]) == 1  # same key: replaced, not duplicated
        assert len(store) == 3
        frame = store.frame()
        nan_row = frame[frame.arch == 2].iloc[0]
        assert pd.isna(nan_row.value) and "non-finite" in nan_row.error
        wide = store.wide()
        assert wide.loc[1, "naswot"] == 3.5 and np.isnan(wide.loc[2, "params"])
        assert store.done("nb201", "cifar10", 8, 0, {"params": "v1"}) == {
            (1, "params"),
            (2, "params"),
        }
        assert store.done("nb201", "cifar10", 8, 0, {"params": "v2"}) == set()
        for suffix, reader in ((".parquet", pd.read_parquet), (".csv", pd.read_csv)):
            out = store.export(tmp_path / f"scores{suffix}")
            assert len(reader(out)) == 3
        with pytest.raises(ValueError, match=r"\.json"):
            store.export(tmp_path / "scores.json")
        with pytest.raises(ValueError, match="colour"):
            store.frame(colour="red")


def test_put_is_all_or_nothing(tmp_path):
    with ScoreStore(tmp_path / "s.db") as store:
        bad = ScoreRow("nb201", None, "params", "cifar10", 8, 0, "v1", "x", 1.0, 0.1, "cpu")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="arch must be an integer >= 0, got None"):
            store.put([_row(5), bad])
        assert len(store) == 0
        for wrong, message in (
            (_row(-1), "arch must be an integer >= 0"),
            (ScoreRow("nb201", 1, "params", "cifar10", -8, 0, "v1", "x", 1.0, 0.1, "cpu"),
             "batch_size must be an integer >= 0"),
            (ScoreRow("", 1, "params", "cifar10", 8, 0, "v1", "x", 1.0, 0.1, "cpu"),
             "space must be a non-empty string"),
        ):  # fmt: skip
            with pytest.raises(ValueError, match=message):
                store.put([wrong])
        assert len(store) == 0


def test_store_refuses_foreign_or_broken_files(tmp_path):
    other = tmp_path / "app.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
    with pytest.raises(ValueError, match="SQLite file of something else"):
        ScoreStore(other)
    with sqlite3.connect(other) as conn:  # untouched: no scores table was added
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert tables == {"users"}
    with pytest.raises(ValueError, match="is a directory"):
        ScoreStore(tmp_path)
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ValueError, match="not a SQLite database"):
        ScoreStore(corrupt)


def test_wide_refuses_to_fold_settings(tmp_path):
    with ScoreStore(tmp_path / "s.db") as store:
        store.put([_row(1, "naswot", 1.0)])
        store.put([ScoreRow("nb201", 1, "naswot", "cifar10", 8, 1, "v1", "x", 9.0, 0.1, "cpu")])
        with pytest.raises(ValueError, match="several settings for \\['naswot'\\]"):
            store.wide()
        assert store.wide(seed=1).loc[1, "naswot"] == 9.0


def test_merge_combines_stores_and_replaces_equal_keys(tmp_path):
    with ScoreStore(tmp_path / "a.db") as a, ScoreStore(tmp_path / "b.db") as b:
        a.put([_row(1, value=1.0), _row(2, value=2.0)])
        b.put([_row(2, value=20.0), _row(3, "naswot", 3.0)])
        assert a.merge(tmp_path / "b.db") == 2
        wide = a.wide()
        assert len(a) == 3 and wide.loc[2, "params"] == 20.0 and wide.loc[3, "naswot"] == 3.0
        assert len(b) == 2  # the merged store is left as it was
        with pytest.raises(FileNotFoundError, match="missing.db"):
            a.merge(tmp_path / "missing.db")


def _writer(path: str, offset: int) -> None:
    with ScoreStore(path) as store:
        for start in range(0, 200, 10):
            store.put([_row(offset + i) for i in range(start, start + 10)])


def test_two_concurrent_writers(tmp_path):
    path = str(tmp_path / "s.db")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, off)) for off in (0, 100)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with ScoreStore(path) as store:
        assert len(store) == 300  # keys 0..299, the overlap 100..199 written twice
        assert store._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_resume_after_sigkill(tmp_path):
    db = tmp_path / "s.db"
    cmd = [
        sys.executable,
        "-m",
        "cbred.bench.cli",
        "score",
        "--score",
        "params,naswot",
        "--sample",
        "12",
        "--batch-size",
        "8",
        "--channels",
        "4",
        "--cells",
        "1",
        "--chunk-size",
        "1",
        "--no-progress",
        "--store",
        str(db),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    count = 0
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if db.exists():
            with ScoreStore(db) as store:
                count = len(store)
            if count >= 4:
                break
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with ScoreStore(db) as store:
        before = store.frame()
    assert 4 <= len(before) < 24 and len(before) % 2 == 0  # whole chunks only
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    cached = len(before) // 2
    assert f"{cached} cached, {12 - cached} scored" in done.stdout
    with ScoreStore(db) as store:
        after = store.frame()
    assert len(after) == 24 and not after.duplicated(["arch", "statistic"]).any()
    kept = before.merge(after, on=["arch", "statistic"], suffixes=("_0", "_1"))
    assert (kept.created_0 == kept.created_1).all()  # finished work was not recomputed


def test_failures_are_recorded_not_fatal(tmp_path):
    @register_proxy("test_boom", direction="higher", source="test", needs=["costs"])
    def boom(results):
        raise TypeError("boom")  # not a numeric error: escapes score(), caught per arch

    try:
        job = ScoreJob(("params", "test_boom", "naswot"), **TINY)
        with ScoreStore(tmp_path / "s.db") as store:
            dead = 1651  # a cell with no path from input to output
            summary = run_scoring(store, job, [0, dead], progress=False)
            frame = store.frame()
        assert summary.scored == 2 and summary.failed == 2
        assert frame[frame.statistic == "test_boom"].error.str.contains("boom").all()
        assert frame[frame.statistic == "params"].value.notna().all()
    finally:
        unregister_proxy("test_boom")


def test_failed_chunks_are_reported(tmp_path):
    job = ScoreJob(("params",), **TINY)
    with ScoreStore(tmp_path / "s.db") as store:
        summary = run_scoring(
            store,
            job,
            [0, 1, 2],
            InProcessExecutor(retries=1),
            chunk_size=2,
            progress=False,
            chunk_fn=always_raise,
        )
        assert summary.failed_chunks == [[0, 1], [2]] and len(store) == 0


def _values(rows):
    return {(r.arch, r.statistic): r.value for r in rows}


def test_dead_worker_chunk_is_retried_and_pool_values_match(tmp_path, monkeypatch):
    monkeypatch.setenv("CBRED_TEST_MARKER", str(tmp_path / "marker"))
    job = ScoreJob(("params", "naswot"), **TINY)
    with ScoreStore(tmp_path / "s.db") as store:
        summary = run_scoring(
            store,
            job,
            ARCHS,
            ProcessPoolExecutor(2, retries=2),
            chunk_size=2,
            progress=False,
            chunk_fn=die_once_then_score,
        )
        assert (tmp_path / "marker").exists()
        assert summary.failed_chunks == [] and summary.scored == len(ARCHS)
        assert len(store) == 2 * len(ARCHS)
        wide = store.wide()
    serial = _values(score_chunk(job, ARCHS))
    assert all(wide.loc[a, s] == v for (a, s), v in serial.items())


def test_in_process_run_matches_chunk_values(tmp_path):
    job = ScoreJob(("params", "synflow"), **TINY)
    serial = _values(score_chunk(job, ARCHS))
    with ScoreStore(tmp_path / "s.db") as store:
        run_scoring(store, job, ARCHS, progress=False)
        assert missing_archs(store, job, ARCHS + [5]) == [5]
        wide = store.wide()
    assert all(wide.loc[a, s] == v for (a, s), v in serial.items() if v is not None)


def test_ray_executor_matches_in_process(tmp_path):
    pytest.importorskip("ray")
    from cbred.proxies.executors import RayExecutor

    job = ScoreJob(("params", "naswot"), **TINY)
    executor = RayExecutor(init_kwargs={"num_cpus": 2})
    try:
        with ScoreStore(tmp_path / "s.db") as store:
            summary = run_scoring(store, job, ARCHS, executor, chunk_size=2, progress=False)
            assert summary.scored == len(ARCHS) and summary.failed_chunks == []
            wide = store.wide()
    finally:
        executor.shutdown()
    serial = _values(score_chunk(job, ARCHS))
    assert all(wide.loc[a, s] == v for (a, s), v in serial.items() if v is not None)


def test_job_validation():
    with pytest.raises(KeyError, match="nosuch"):
        ScoreJob(("nosuch",), NB201Space())
    with pytest.raises(ValueError, match="has no build"):
        ScoreJob(("params",), space=object())
    with pytest.raises(ValueError, match="'mnist'"):
        ScoreJob(("params",), NB201Space(dataset="mnist"))
    with pytest.raises(ValueError, match="batch size must be >= 1"):
        ScoreJob(("params",), NB201Space(), batch_size=0)
    wide = ScoreJob(("params",), NB201Space(channels=8))
    affine = ScoreJob(("params",), NB201Space(channels=8, cell_affine=False))
    assert wide.versions != affine.versions  # the cell convention enters the stored key


def test_a_failing_setting_writes_nothing_and_a_fixed_rerun_scores(tmp_path, capsys):
    """A wrong device or missing data is the run's failure, never cached per architecture."""
    from cbred.bench.cli import main

    store = tmp_path / "s.db"
    common = ["score", "--score", "params", "--sample", "2", "--batch-size", "4", "--channels",
              "4", "--cells", "1", "--store", str(store), "--no-progress"]  # fmt: skip
    if not torch.cuda.is_available():
        assert main([*common, "--device", "cuda"]) == 2
        err = capsys.readouterr().err
        assert "nothing was written" in err and "CUDA is not available" in err
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CBRED_DATA_ROOT", str(tmp_path / "no_data_here"))
        assert main([*common, "--score-data", "cifar100"]) == 2
        assert "nothing was written" in capsys.readouterr().err
    with ScoreStore(store) as s:
        assert len(s) == 0
    assert main(common) == 0
    assert "2 scored" in capsys.readouterr().out
