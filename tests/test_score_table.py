"""Packing a score store into the shipped Parquet table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cbred.bench.score_table import pack_store
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
