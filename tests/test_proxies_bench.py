"""Smoke runs of the proxy benchmarks and the ``cbred proxies`` command."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from cbred.bench import correlation, perf_proxies
from cbred.bench.commands import proxies as proxies_command


def test_perf_smoke_prints_every_statistic_and_the_fused_ratio(capsys) -> None:
    assert perf_proxies.main(["--smoke", "--score", "params,snip"]) == 0
    out = capsys.readouterr().out
    for name in perf_proxies.SUITE:
        assert f"\n{name} " in out
    assert "ratio" in out and "target" in out


def test_perf_report_gives_the_ratio_and_its_floor() -> None:
    alone = {"a": [0.5, 0.6, 0.7], "b": [0.1, 0.3, 0.2], "c": [0.2, 0.2, 0.2]}
    text = perf_proxies.report(alone, {("a", "b", "c"): [0.2, 0.3, 0.4]})
    # medians 0.6 + 0.2 + 0.2 = 1.0; fused median 0.3; costliest member a: 0.6 / 1.0
    assert "sum of members alone     1.000 s" in text
    assert "ratio                    0.300  (meets target" in text
    assert "floor                    0.600  (a alone over the sum)" in text


def test_correlation_smoke_resumes_and_prints_the_table(tmp_path, capsys) -> None:
    out_csv = tmp_path / "corr.csv"
    args = ["--smoke", "--score", "snip,synflow,jacob_cov", "--out", str(out_csv)]
    assert correlation.main(args) == 0
    first = pd.read_csv(out_csv)
    assert len(first) == 6 and list(first.columns[2:5]) == ["snip", "synflow", "jacob_cov"]
    assert correlation.main(args) == 0  # resumed: nothing left to score
    assert pd.read_csv(out_csv).equals(first)
    text = capsys.readouterr().out
    assert "vote" in text and "0.74/0.76/0.75" in text and "Δρ" in text
    assert correlation.main(["--report", str(out_csv)]) == 0


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    proxies_command.register(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_lists_statistics(capsys) -> None:
    assert _cli(["proxies", "list"]) == 0
    out = capsys.readouterr().out
    assert "ntk_cond" in out and "lower" in out and "synflow" in out


def test_cli_scores_one_narrow_network(capsys) -> None:
    dead = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    argv = ["proxies", "score", "--arch", dead, "--score", "snip,jacob_cov", "--channels", "4"]
    assert _cli([*argv, "--cells", "1", "--batch-size", "8"]) == 0
    out = capsys.readouterr().out
    assert "snip" in out and "passes: main=" in out and "constant" in out


def test_correlation_report_reads_a_parquet_score_table(tmp_path, capsys) -> None:
    from cbred.bench.score_table import shipped_scores

    table = shipped_scores().iloc[:300]
    path = tmp_path / "t.parquet"
    table.to_parquet(path)
    merged = correlation.load_results([path])
    assert list(merged.index) == list(table.index) and "arch_str" not in merged.columns
    assert correlation.main(["--report", str(path)]) == 0
    out = capsys.readouterr().out
    assert "   300   300" in out and "synflow" in out and "ok (Δρ" in out


def test_correlation_reference_cells_change_fisher(tmp_path) -> None:
    runs = {}
    for flag in ([], ["--reference-cells"]):
        out = tmp_path / f"corr{len(flag)}.csv"
        args = ["--smoke", "--score", "fisher,naswot", "--out", str(out), *flag]
        assert correlation.main(args) == 0
        runs[bool(flag)] = pd.read_csv(out).set_index("index")
    assert not np.allclose(runs[True]["fisher"], runs[False]["fisher"])


def test_reference_linear_regions_smoke_runs_cbred_alone(capsys) -> None:
    from cbred.bench import reference_linear_regions

    assert reference_linear_regions.main(["--smoke"]) == 0
    out = capsys.readouterr().out
    assert "threads=1" in out and "median" in out and "input (32, 1, 3, 3)" in out


_FAKE_COUNTER = '''
class LinearRegionCount:
    pass


class Linear_Region_Collector:
    """A stand-in with the reference's interface: distinct rows of the ReLU outputs' signs."""

    def __init__(self, input_size, sample_batch):
        self.input_size, self.sample_batch, self.seen = input_size, sample_batch, []

    def reinit(self, models):
        self.model = models[0]
        for m in self.model.modules():
            if isinstance(m, nn.ReLU):
                m.register_forward_hook(lambda m, i, o: self.seen.append(o.flatten(1)))

    @torch.no_grad()
    def forward_batch_sample(self):
        for _ in range(self.sample_batch):
            self.model(self.loader.next()[0].cuda())
        a = (torch.cat(self.seen, 1) > 0).float()
        res = a @ (1 - a).T  # rows i, j differ where res[i, j] + res[j, i] > 0
        res += res.T  # the in-place form that load_collector rewrites out of place
        return [float((1.0 / (res == 0).float().sum(1)).sum())]

    def clear(self):
        self.seen = []
'''


def test_reference_linear_regions_reads_a_collector_from_the_ref_dir(tmp_path, capsys) -> None:
    from cbred.bench import reference_linear_regions as ref

    counter = tmp_path / ref.COUNTER_FILE
    counter.parent.mkdir(parents=True)
    counter.write_text(_FAKE_COUNTER)
    arch = ref.DEFAULT_ARCHS[0]
    assert (
        ref.main(["--ref-dir", str(tmp_path), "--inputs", "64", "--runs", "1", "--archs", arch])
        == 0
    )
    assert "counts agree: yes" in capsys.readouterr().out


def test_device_agreement_smoke_finds_the_cpu_equal_to_itself(capsys) -> None:
    from cbred.bench import device_agreement

    assert device_agreement.main(["--smoke", "--score", "naswot,synflow,zen"]) == 0
    out = capsys.readouterr().out
    assert "cpu vs cpu" in out and "all statistics agree" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:5]}
    assert sorted(rows) == ["naswot", "synflow", "zen"]
    assert all(row[2] == "0.0e+00" for row in rows.values())  # max rel diff


def test_device_agreement_flags_a_gap_or_a_one_sided_nan() -> None:
    from cbred.bench import device_agreement

    frame = pd.DataFrame(
        {
            "statistic": ["a", "b", "c"],
            "max rel diff": [1e-6, 0.2, 0.0],
            "finite on one only": [0, 0, 1],
        }
    )
    assert device_agreement.failures(frame, 1e-3) == ["b", "c"]


def test_device_agreement_sample_is_half_pooling_cells_and_seeded() -> None:
    from cbred.bench import device_agreement
    from cbred.bench.nb201 import NB201Space

    space = NB201Space()
    archs = device_agreement.sample_archs(space, 6, seed=3)
    assert archs == device_agreement.sample_archs(space, 6, seed=3)
    assert len(set(archs)) == 6
    pooled = [a for a in archs if space.arch_str(a).count("avg_pool_3x3") >= 3]
    assert set(archs[:3]) <= set(pooled)
