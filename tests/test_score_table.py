"""Packing a score store into the shipped Parquet table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cbred.bench.score_table import pack_store
from cbred.proxies.engine import statistic_version
from cbred.proxies.store import ScoreRow, ScoreStore


def _row(arch, stat, value, seed=0):
    return ScoreRow("nb201", arch, stat, "cifar10", 64, seed, "v1", "s", value, 0.1, "cpu")


def test_pack_store_wide_table_with_setting(tmp_path, space):
    with ScoreStore(tmp_path / "s.db") as store:
        store.put(
            [
                _row(5, "naswot", 1.5),
                _row(5, "params", 2.0),
                _row(9, "naswot", None),
                _row(9, "params", 3.0),
            ]
        )
    table = pack_store(tmp_path / "s.db", tmp_path / "t.parquet")
    loaded = pd.read_parquet(tmp_path / "t.parquet")
    assert list(loaded.index) == [5, 9] and loaded.loc[5, "naswot"] == 1.5
    assert np.isnan(loaded.loc[9, "naswot"]) and loaded.loc[9, "arch_str"] == space.string(9)
    assert loaded.attrs["coverage"] == pytest.approx(2 / 15625)
    assert loaded.attrs["batch_size"] == 64 and loaded.attrs["versions"]["naswot"] == "v1"
    assert table.attrs == loaded.attrs


def test_pack_store_rejects_mixed_settings_and_empty(tmp_path):
    with ScoreStore(tmp_path / "s.db") as store:
        store.put([_row(5, "naswot", 1.5), _row(5, "naswot", 1.0, seed=1)])
    with pytest.raises(ValueError, match="mixes settings"):
        pack_store(tmp_path / "s.db", tmp_path / "t.parquet")
    ScoreStore(tmp_path / "empty.db").close()
    with pytest.raises(ValueError, match="no NB201 rows"):
        pack_store(tmp_path / "empty.db", tmp_path / "t.parquet")


def test_main_merges_stores_before_packing(tmp_path, capsys):
    from cbred.bench.score_table import main

    with ScoreStore(tmp_path / "a.db") as a, ScoreStore(tmp_path / "b.db") as b:
        a.put([_row(5, "naswot", 1.5)])
        b.put([_row(9, "naswot", 2.5)])
    out = tmp_path / "t.parquet"
    assert (
        main(
            [
                "--store",
                str(tmp_path / "a.db"),
                "--merge",
                str(tmp_path / "b.db"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert list(pd.read_parquet(out).index) == [5, 9]
    assert "merged 1 rows" in capsys.readouterr().out


def test_packing_never_defaults_to_the_shipped_table(tmp_path, capsys):
    from cbred.bench.score_table import main

    with ScoreStore(tmp_path / "a.db") as a:
        a.put([_row(5, "naswot", 1.5)])
    with pytest.raises(SystemExit):
        main(["--store", str(tmp_path / "a.db")])
    assert "--out" in capsys.readouterr().err


def _current(arch, stat, value, seed=0, key="C=16|N=5"):
    """A row at the version the current code gives ``stat`` on NB201's network ``key``."""
    version = statistic_version(stat, key)
    return ScoreRow("nb201", arch, stat, "cifar10", 64, seed, version, "s", value, 0.1, "cpu")


def test_add_columns_grows_a_table_in_its_setting_only(tmp_path, capsys):
    from cbred.bench.cli import module_main
    from cbred.bench.score_table import add_columns, main

    with ScoreStore(tmp_path / "s.db") as store:
        store.put([_current(5, "naswot", 1.5), _current(9, "naswot", 2.5)])
    table_path = tmp_path / "t.parquet"
    pack_store(tmp_path / "s.db", table_path)
    with ScoreStore(tmp_path / "new.db") as store:
        store.put([_current(5, "meco", 7.0), _current(9, "meco", None), _current(11, "meco", 1.0)])
    assert main(["--store", str(tmp_path / "new.db"), "--add-to", str(table_path)]) == 0
    grown = pd.read_parquet(table_path)
    assert list(grown.index) == [5, 9]  # the table's architectures, not the store's extra one
    assert grown.loc[5, "meco"] == 7.0 and np.isnan(grown.loc[9, "meco"])
    assert grown.loc[9, "naswot"] == 2.5 and grown.attrs["versions"] == {
        "naswot": statistic_version("naswot", "C=16|N=5"),
        "meco": statistic_version("meco", "C=16|N=5"),
    }

    with ScoreStore(tmp_path / "seed1.db") as store:
        store.put([_current(5, "zen", 1.0, seed=1), _current(9, "zen", 1.0, seed=1)])
    with pytest.raises(
        ValueError,
        match="no NB201 rows under the table's setting .*'seed': 0.*it holds .*'seed': 1",
    ):
        add_columns(table_path, tmp_path / "seed1.db")
    with ScoreStore(tmp_path / "part.db") as store:
        store.put([_current(5, "zen", 1.0)])
    with pytest.raises(ValueError, match="covers 1 of the table's 2 architectures"):
        add_columns(table_path, tmp_path / "part.db")
    args = ["--store", str(tmp_path / "part.db"), "--add-to", str(table_path)]
    capsys.readouterr()
    assert module_main(lambda: main(args), "score_table") == 2  # as `python -m` runs it
    err = capsys.readouterr().err
    assert err == (
        f"score_table: error: store '{tmp_path / 'part.db'}' covers 1 of the table's 2 "
        "architectures (first missing: 9); score the rest first\n"
    )
    with ScoreStore(tmp_path / "old.db") as store:  # older code's values, or another width
        store.put([_row(a, "zen", 1.0) for a in (5, 9)])
        store.put([_current(a, "swap", 1.0, key="C=8|N=5") for a in (5, 9)])
    for name in ("zen", "swap"):
        with pytest.raises(ValueError, match=f"holds \\['{name}'\\] only at versions other"):
            add_columns(table_path, tmp_path / "old.db", [name])
    assert "zen" not in pd.read_parquet(table_path).columns  # refused additions leave it as it was


def test_add_columns_reads_the_tables_setting_of_a_mixed_store(tmp_path, capsys):
    from cbred.bench.score_table import add_columns, main

    with ScoreStore(tmp_path / "s.db") as store:
        store.put([_row(5, "naswot", 1.5), _row(9, "naswot", 2.5)])  # a stale version
    table_path = tmp_path / "t.parquet"
    pack_store(tmp_path / "s.db", table_path)
    with ScoreStore(tmp_path / "live.db") as store:  # several seeds, statistics and versions
        store.put([_current(a, "zen", float(a), seed=s) for a in (5, 9) for s in (0, 1)])
        store.put([_row(a, "zen", -1.0) for a in (5, 9)])
        store.put([_current(a, "meco", 2.0 * a) for a in (5, 9)])
        store.put([_current(a, "naswot", 0.0) for a in (5, 9)])
    grown = add_columns(table_path, tmp_path / "live.db", ["zen"])
    assert grown["zen"].tolist() == [5.0, 9.0] and "meco" not in grown.columns
    with pytest.raises(ValueError, match="the table's naswot has version v1, the store's"):
        add_columns(table_path, tmp_path / "live.db", ["naswot"])
    with pytest.raises(ValueError, match="no rows of \\['nosuch'\\] under the table's setting"):
        add_columns(table_path, tmp_path / "live.db", ["meco", "nosuch"])
    args = ["--store", str(tmp_path / "live.db"), "--add-to", str(table_path)]
    assert main([*args, "--statistics", "meco, zen"]) == 0
    assert pd.read_parquet(table_path)["meco"].tolist() == [10.0, 18.0]
    with pytest.raises(SystemExit):
        main(["--store", str(tmp_path / "live.db"), "--out", "x.parquet", "--statistics", "a"])
    assert "--statistics names what --add-to TABLE adds" in capsys.readouterr().err
