"""The code reproduces the shipped NB201 score table, under the table's versions.

params, flops and synflow (float64) must agree to 1e-9. The float32 gradient statistics agree
to 1e-3 relative: oneDNN picks convolution kernels by the CPU's instruction set, and the
table was scored on another CPU (measured: up to 3e-4 on grad_norm/snip/jacob_cov across
machines). A change to a formula moves values by far more than that.

A change to a pass or a statistic that alters values makes this test fail: then bump
``proxies.passes.PASSES_VERSION`` (or the statistic's code changes its version by itself)
and rescore the table.  The same holds for the rows of a whole-space run still in progress,
kept in ``bench/data/progress/`` (a store export that ``cbred score --merge`` resumes from).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cbred.bench import score_table
from cbred.bench.nb201_proxies import score_nb201
from cbred.bench.score_table import shipped_scores
from cbred.proxies.engine import statistic_version

# a cell with convolutions on every edge, one with pooling and skips, one with no path
ARCHS = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_1x1~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|skip_connect~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
)

EXACT = {"params", "flops", "synflow"}  # float64 or analytic: no kernel-dependent rounding
PROGRESS = sorted((Path(score_table.__file__).parent / "data" / "progress").glob("*.parquet"))


@pytest.fixture(scope="module")
def table():
    return shipped_scores()


def test_shipped_table_versions_match_the_code(table):
    attrs = table.attrs
    for name, version in attrs["versions"].items():
        assert version == statistic_version(
            name, f"C={attrs['channels']}|N={attrs['cells_per_stage']}"
        )


@pytest.mark.parametrize("arch", ARCHS)
def test_code_reproduces_shipped_values(table, space, arch):
    attrs = table.attrs
    stats = list(attrs["versions"])
    result = score_nb201(
        arch,
        stats,
        attrs["dataset"],
        attrs["batch_size"],
        attrs["seed"],
        attrs["channels"],
        attrs["cells_per_stage"],
    )
    row = table.loc[space.index(arch)]
    for name in stats:
        expected = row[name]
        if np.isnan(expected):  # the store keeps non-finite values as NaN with a reason
            assert not np.isfinite(result[name]) and name in result.errors, name
        else:
            rel = 1e-9 if name in EXACT else 1e-3
            assert result[name] == pytest.approx(expected, rel=rel, abs=1e-12), name


def test_feature_versions_change_only_the_statistics_that_read_them(monkeypatch):
    from cbred.proxies import passes

    before = {s: statistic_version(s, "C=16|N=5") for s in ("grasp", "grad_norm", "naswot")}
    monkeypatch.setitem(passes.FEATURE_VERSIONS, "hvp", "test")
    after = {s: statistic_version(s, "C=16|N=5") for s in before}
    assert after["grasp"] != before["grasp"]
    assert after["grad_norm"] == before["grad_norm"]
    assert after["naswot"] == before["naswot"]


@pytest.mark.parametrize("path", PROGRESS, ids=lambda p: p.name)
def test_kept_partial_rows_are_the_current_code_under_the_table_setting(table, path):
    """Rows kept from an unfinished run resume it only if they are what the code computes
    now: the table's network, data set and batch (under any proxy seed: a search over proxy
    seeds keeps its live values too), current versions, and two per seed re-scored."""
    attrs = table.attrs
    rows = pd.read_parquet(path)
    setting = rows[["space", "dataset", "batch_size"]].drop_duplicates()
    assert setting.values.tolist() == [["nb201", attrs["dataset"], attrs["batch_size"]]]
    network = f"C={attrs['channels']}|N={attrs['cells_per_stage']}"
    current = {name: statistic_version(name, network) for name in rows["statistic"].unique()}
    assert (rows["version"] == rows["statistic"].map(current)).all()
    assert not rows.duplicated(["arch", "statistic", "seed"]).any()
    for seed, of_seed in rows.groupby("seed"):
        wide = of_seed.pivot(index="arch", columns="statistic", values="value").dropna()
        for arch in (wide.index[0], wide.index[-1]):
            arch_str = of_seed.loc[of_seed["arch"] == arch, "arch_str"].iloc[0]
            result = score_nb201(
                arch_str,
                list(wide.columns),
                attrs["dataset"],
                attrs["batch_size"],
                int(seed),
                attrs["channels"],
                attrs["cells_per_stage"],
            )
            for name in wide.columns:
                expected = wide.loc[arch, name]
                assert result[name] == pytest.approx(expected, rel=1e-3), (seed, arch, name)
