"""Scoring engine: store, resume after SIGKILL, concurrent writers, failures, executors."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from cbred.bench.nb201 import NB201Space
from cbred.proxies.engine import ScoreJob, missing_archs, run_scoring, score_chunk
from cbred.proxies.executors import InProcessExecutor, ProcessPoolExecutor
from cbred.proxies.registry import register_proxy, unregister_proxy
from cbred.proxies.store import ScoreRow, ScoreStore, StoreLockedError
from engine_helpers import always_raise, die_once_then_score, slow_params

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


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_an_export_merges_back_into_a_fresh_store_row_for_row(tmp_path, suffix):
    failed = replace(_row(2, "naswot", None), error="constant features")
    with ScoreStore(tmp_path / "a.db") as a:
        a.put([_row(1, value=1.5), failed, _row(3, value=float("-inf"))])
        a.export(tmp_path / f"rows{suffix}")
        with ScoreStore(tmp_path / "b.db") as b:
            b.put([_row(1, value=99.0), _row(7)])
            assert b.merge(tmp_path / f"rows{suffix}") == 3
            merged = b.frame().set_index(["arch", "statistic"])
            original = a.frame().set_index(["arch", "statistic"])
    assert len(merged) == 4 and merged.loc[(7, "params"), "value"] == 1.0
    pd.testing.assert_frame_equal(merged.drop(index=[(7, "params")]), original)
    assert merged.loc[(2, "naswot"), "error"] == "constant features"
    assert pd.isna(merged.loc[(3, "params"), "value"])  # -inf is stored as NULL with its reason


def test_cli_merge_only_exports_the_merged_store(tmp_path, capsys):
    """cbred score --merge B --export F (no --score) writes the whole merged store to F; it
    used to merge and stop, writing no file and saying nothing."""
    from cbred.bench.cli import main

    with ScoreStore(tmp_path / "b.db") as b:
        b.put([_row(1, value=1.5), _row(2, value=2.5)])
    out = tmp_path / "all.parquet"
    argv = ["score", "--store", str(tmp_path / "a.db"), "--merge", str(tmp_path / "b.db")]
    assert main([*argv, "--export", str(out)]) == 0
    assert f"exported to {out}" in capsys.readouterr().out
    with ScoreStore(tmp_path / "b.db") as b:
        expected = b.frame()
    pd.testing.assert_frame_equal(pd.read_parquet(out), expected)


def test_a_broken_export_is_refused_before_any_row_is_written(tmp_path):
    with ScoreStore(tmp_path / "a.db") as a:
        a.put([_row(1), _row(2)])
        a.export(tmp_path / "rows.csv")
        frame = pd.read_csv(tmp_path / "rows.csv")
        frame.drop(columns=["version"]).to_csv(tmp_path / "no_version.csv", index=False)
        frame.assign(arch=[1, -2]).to_csv(tmp_path / "bad_arch.csv", index=False)
        frame.assign(value=["1.5", "abc"]).to_csv(tmp_path / "bad_value.csv", index=False)
        frame.assign(value=[1.5, float("inf")]).to_csv(tmp_path / "inf.csv", index=False)
        (tmp_path / "junk.parquet").write_text("not parquet")
    with ScoreStore(tmp_path / "b.db") as b:
        with pytest.raises(ValueError, match=r"lacks the columns \['version'\]"):
            b.merge(tmp_path / "no_version.csv")
        with pytest.raises(ValueError, match="arch must be an integer >= 0, got -2"):
            b.merge(tmp_path / "bad_arch.csv")
        with pytest.raises(ValueError, match="value 'abc' of architecture 2; expected a number"):
            b.merge(tmp_path / "bad_value.csv")
        with pytest.raises(ValueError, match="architecture 2 \\(params\\) has value inf"):
            b.merge(tmp_path / "inf.csv")
        with pytest.raises(ValueError, match="junk.parquet' is not a readable score export"):
            b.merge(tmp_path / "junk.parquet")
        assert len(b) == 0


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
    # enough architectures that the run cannot finish between two polls of the store (with
    # 12, an idle machine scored them all in one 0.2 s poll interval, before the kill)
    sample = 60
    db = tmp_path / "s.db"
    cmd = [
        sys.executable,
        "-m",
        "cbred.bench.cli",
        "score",
        "--score",
        "params,naswot",
        "--sample",
        str(sample),
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
        time.sleep(0.05)
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
    assert 4 <= len(before) < 2 * sample and len(before) % 2 == 0  # whole chunks only
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    cached = len(before) // 2
    assert f"{cached} cached, {sample - cached} scored" in done.stdout
    with ScoreStore(db) as store:
        after = store.frame()
    assert len(after) == 2 * sample and not after.duplicated(["arch", "statistic"]).any()
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


def test_a_run_computes_only_the_statistics_an_architecture_lacks(tmp_path):
    """A job adding synflow to a store holding params scores synflow alone there: the
    stored params (a planted marker value) are kept, the new values equal a fused pass's."""
    job = ScoreJob(("params", "synflow"), **TINY)
    fused = _values(score_chunk(job, ARCHS))
    params_only = ScoreJob(("params",), **TINY)
    seen: list[tuple[tuple[str, ...], list[int]]] = []

    def recording(part, chunk):
        seen.append((part.statistics, list(chunk)))
        return score_chunk(part, chunk)

    with ScoreStore(tmp_path / "s.db") as store:
        planted = [replace(r, value=-7.0) for r in score_chunk(params_only, ARCHS[:2])]
        store.put(planted)
        summary = run_scoring(store, job, ARCHS, progress=False, chunk_fn=recording)
        wide = store.wide()
    assert sorted(seen) == [(("params", "synflow"), ARCHS[2:]), (("synflow",), ARCHS[:2])]
    assert summary.scored == len(ARCHS) and summary.cached == 0
    assert all(wide.loc[a, "params"] == -7.0 for a in ARCHS[:2])  # never recomputed
    assert all(wide.loc[a, s] == v for (a, s), v in fused.items() if (a, s) not in
               {(a, "params") for a in ARCHS[:2]})  # fmt: skip


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


def test_retry_failed_recomputes_stored_failures(tmp_path):
    job = ScoreJob(("params",), **TINY)
    with ScoreStore(tmp_path / "s.db") as store:
        rows = score_chunk(job, [0, 1])
        failed = ScoreRow(**{**rows[1].__dict__, "value": None, "error": "boom"})
        store.put([rows[0], failed])
        assert run_scoring(store, job, [0, 1], progress=False).scored == 0  # cached, failure too
        summary = run_scoring(store, job, [0, 1], progress=False, retry_failed=True)
        assert summary.scored == 1 and summary.cached == 1
        assert store.wide().loc[1, "params"] == rows[1].value


def test_indices_outside_the_space_are_refused(tmp_path):
    job = ScoreJob(("params",), **TINY)
    with ScoreStore(tmp_path / "s.db") as store:
        with pytest.raises(ValueError, match=r"index 15625 is outside .* \(expected 0\.\.15624\)"):
            run_scoring(store, job, [0, 15625], progress=False)
        with pytest.raises(ValueError, match="index -1 is outside"):
            run_scoring(store, job, [-1], progress=False)
        assert len(store) == 0


def test_merge_into_itself_is_refused_at_once(tmp_path):
    with ScoreStore(tmp_path / "a.db") as a:
        a.put([_row(1)])
        start = time.perf_counter()
        with pytest.raises(ValueError, match="into itself"):
            a.merge(tmp_path / "a.db")
        assert time.perf_counter() - start < 5
        (tmp_path / "junk.db").write_text("not a database")
        with pytest.raises(ValueError, match="not a SQLite database"):
            a.merge(tmp_path / "junk.db")


def test_a_store_that_cannot_be_opened_names_its_path(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match=r"cannot open score store '.*afile/s\.db': unable to"):
        ScoreStore(tmp_path / "afile" / "s.db")  # sqlite's message alone names no path


def test_store_in_unwritable_place_is_one_clear_error(readonly_folder):
    with pytest.raises(ValueError, match=r"cannot .* score store '.*ro/s\.db'"):
        ScoreStore(readonly_folder / "s.db")


HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_a_held_lock_is_named_and_computed_rows_are_kept(tmp_path):
    db = tmp_path / "s.db"
    ScoreStore(db).close()
    holders: list[subprocess.Popen] = []

    def score_then_lock(job, chunk):  # another process takes the lock after the first chunk
        if not holders:
            holders.append(
                subprocess.Popen(
                    [sys.executable, "-c", HOLD_LOCK, str(db), "30"],
                    stdout=subprocess.PIPE,
                    text=True,
                )  # fmt: skip
            )
            assert holders[0].stdout.readline().strip() == "locked"
        return score_chunk(job, chunk)

    job = ScoreJob(("params",), **TINY)
    try:
        with ScoreStore(db, timeout=0.5) as store:
            with pytest.raises(StoreLockedError) as caught:
                run_scoring(store, job, ARCHS, chunk_size=2, progress=False,
                            chunk_fn=score_then_lock)  # fmt: skip
        message = str(caught.value)
        assert f"pid {holders[0].pid}" in message and "over 0.5 s" in message
        assert "\n" not in message
        side = tmp_path / f"s.db.unsaved-{os.getpid()}.db"
        assert f"2 architectures scored meanwhile are kept in '{side}'" in message
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()
    with ScoreStore(side) as kept:
        assert sorted(kept.wide().index) == ARCHS[:2]
    with ScoreStore(db) as store:  # free again: the kept rows merge in, the rest is missing
        store.merge(side)
        assert missing_archs(store, job, ARCHS) == ARCHS[2:]


def test_concurrent_runs_on_one_store_split_the_work(tmp_path, monkeypatch):
    import threading

    log = tmp_path / "log.txt"
    monkeypatch.setenv("CBRED_TEST_LOG", str(log))
    monkeypatch.setenv("CBRED_TEST_PAUSE", "0.3")
    job = ScoreJob(("params",), **TINY)
    archs = list(range(24))
    summaries = []

    def one_run() -> None:
        with ScoreStore(tmp_path / "s.db") as store:
            summaries.append(
                run_scoring(
                    store, job, archs, chunk_size=2, progress=False, chunk_fn=slow_params,
                    poll=0.1,
                )
            )  # fmt: skip

    threads = [threading.Thread(target=one_run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    scored = [int(a) for line in log.read_text().split() for a in line.split()]
    assert sorted(scored) == archs  # every architecture computed exactly once
    assert sorted(s.scored for s in summaries) != [0, 24]  # both runs did a share
    assert sum(s.scored for s in summaries) == 24
    with ScoreStore(tmp_path / "s.db") as store:
        assert missing_archs(store, job, archs) == []
        assert store._conn.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0


def test_claims_of_a_dead_run_are_taken_over(tmp_path):
    job = ScoreJob(("params",), **TINY)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    import socket

    setting = (job.space_name, job.dataset, job.batch_size, job.seed)
    with ScoreStore(tmp_path / "s.db") as store:
        gone = f"{socket.gethostname()}|{dead.stdout.strip()}|x"
        assert store.claim(setting, job.versions, ARCHS, 10, gone, 600)[0] == ARCHS
        summary = run_scoring(store, job, ARCHS, progress=False)
        assert summary.scored == len(ARCHS) and missing_archs(store, job, ARCHS) == []
        alive = f"{socket.gethostname()}|{os.getpid()}|y"
        assert store.claim(setting, job.versions, [5, 6], 10, alive, 600)[0] == [5, 6]
        claimed, held, rest = store.claim(setting, job.versions, [5, 6, 7], 10, "other|1|z", 600)
        assert (claimed, held, rest) == ([7], [5, 6], [])


def _descendants(pid: int) -> set[int]:
    children = {pid}
    for _ in range(3):
        for proc in os.listdir("/proc"):
            if proc.isdigit():
                try:
                    stat = open(f"/proc/{proc}/stat").read().rpartition(")")[2].split()
                except OSError:
                    continue
                if int(stat[1]) in children:
                    children.add(int(proc))
    return children - {pid}


def _alive(pid: int) -> bool:
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads processes from /proc")
def test_workers_die_with_a_killed_parent(tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    script = (
        "import sys; sys.path.insert(0, {!r})\n"
        "from cbred.bench.nb201 import NB201Space\n"
        "from cbred.proxies.engine import ScoreJob, run_scoring\n"
        "from cbred.proxies.executors import ProcessPoolExecutor\n"
        "from cbred.proxies.store import ScoreStore\n"
        "from engine_helpers import record_pid_and_hang\n"
        "if __name__ == '__main__':\n"
        "    job = ScoreJob(('params',), NB201Space(channels=4, cells_per_stage=1), 8)\n"
        "    run_scoring(ScoreStore({!r}), job, range(8), ProcessPoolExecutor(2), 2,\n"
        "                progress=False, chunk_fn=record_pid_and_hang)\n"
    ).format(os.path.dirname(__file__), str(tmp_path / "s.db"))
    env = {**os.environ, "CBRED_TEST_PIDS": str(pids)}
    parent = subprocess.Popen([sys.executable, "-c", script], env=env)
    deadline = time.time() + 120
    while len(os.listdir(pids)) < 2 and time.time() < deadline:
        time.sleep(0.2)
    assert len(os.listdir(pids)) == 2, "workers did not start"
    family = _descendants(parent.pid)
    assert {int(p) for p in os.listdir(pids)} <= family
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    time.sleep(5)
    survivors = [p for p in family if _alive(p)]
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert survivors == []


NO_MAIN_GUARD = """
import sys; sys.path.insert(0, {tests!r})
from cbred.bench.nb201 import NB201Space
from cbred.proxies.engine import ScoreJob, run_scoring
from cbred.proxies.executors import ProcessPoolExecutor
from cbred.proxies.store import ScoreStore

job = ScoreJob(("params",), NB201Space(channels=4, cells_per_stage=1), 8)
print(run_scoring(ScoreStore({db!r}), job, range(4), ProcessPoolExecutor(1, retries=0), 2,
                  progress=False))
"""


def test_a_script_without_main_guard_reports_its_failure(tmp_path):
    script = tmp_path / "noguard.py"
    script.write_text(
        NO_MAIN_GUARD.format(tests=os.path.dirname(__file__), db=str(tmp_path / "s.db"))
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)  # fmt: skip
    assert "chunks FAILED after retries (4 architectures not scored" in out.stdout
    assert "__name__ == '__main__'" in out.stderr


def test_ray_missing_is_one_line(tmp_path, capsys, monkeypatch):
    from cbred.bench.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    argv = ["score", "--score", "params", "--sample", "1", "--channels", "4", "--cells", "1",
            "--ray", "local", "--store", str(tmp_path / "s.db"), "--no-progress"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'cbred[ray]'" in err


def test_perf_engine_smoke_times_every_local_executor(capsys):
    """`python -m cbred.bench.perf_engine --smoke`, the benchmark's CI version."""
    from cbred.bench.perf_engine import main as perf_main

    assert perf_main(["--smoke"]) == 0
    out = capsys.readouterr().out
    for executor in ("in-process x1", "pool x1", "pool x2"):
        rows = [line.split() for line in out.splitlines() if line.startswith(executor)]
        assert [r[-3] for r in rows] == ["naswot", "suite"]
        assert all(float(r[-2]) > 0 for r in rows)  # architectures per second
    assert "store overhead" in out and "per result" in out
