"""The pairwise API, the metric registry, traced graphs, the CLI and the benchmark smoke run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cbred.bench.cli import main as cli_main
from cbred.bench.nb201_edit import nb201_edit_matrix
from cbred.cgraph import trace
from cbred.cgraph.distance import (
    CostModel,
    approx_edit_distance,
    available_metrics,
    edit_lower_bound,
    get_metric,
    hellinger_matrix,
    kernel_graph,
    pairwise,
    register_metric,
    registry,
    to_distributions,
)
from torch import nn


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2))


def wide_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1)
    )


@pytest.fixture
def scratch_metric():
    yield "total_variation_test"
    registry._METRICS.pop("total_variation_test", None)


def test_builtin_metrics_and_flags() -> None:
    assert set(available_metrics()) >= {"kl", "js", "sqrt_js", "hellinger", "edit"}
    assert get_metric("hellinger").is_metric and get_metric("sqrt_js").is_metric
    assert not get_metric("kl").is_metric and not get_metric("js").is_metric
    with pytest.raises(KeyError, match="unknown metric 'nope'; registered: edit"):
        pairwise(np.ones((2, 2)), "nope")


def test_pairwise_on_arrays_passes_options() -> None:
    counts = np.array([[1, 0, 2], [0, 3, 1], [2, 2, 2]])
    np.testing.assert_array_equal(pairwise(counts, "hellinger"), hellinger_matrix(counts))
    smoothed = pairwise(counts, "kl", smoothing=2.0, dtype=np.float64)
    assert smoothed.dtype == np.float64 and smoothed[0, 1] > 0
    assert not np.allclose(smoothed, pairwise(counts, "kl", dtype=np.float64))
    with pytest.raises(ValueError, match="got the string 'nb101'; pass a space object"):
        pairwise("nb101", "js")


def test_register_a_user_metric(scratch_metric: str) -> None:
    @register_metric(scratch_metric, is_metric=True)
    def total_variation(counts, *, dtype, chunk, out):
        """Total variation distance."""
        p = to_distributions(counts)
        d = 0.5 * np.abs(p[:, None, :] - p[None, :, :]).sum(axis=2)
        return d.astype(dtype)

    entry = get_metric(scratch_metric)
    assert entry.is_metric and entry.description == "Total variation distance."
    d = pairwise(np.array([[1, 0], [0, 1], [1, 1]]), scratch_metric)
    np.testing.assert_allclose(d, [[0, 1, 0.5], [1, 0, 0.5], [0.5, 0.5, 0]])
    with pytest.raises(ValueError, match="already registered"):
        register_metric(scratch_metric)(total_variation)
    register_metric(scratch_metric, overwrite=True)(total_variation)
    with pytest.raises(ValueError, match="inputs must be one of"):
        register_metric("x", inputs="graphs")


def test_pairwise_on_traced_graphs() -> None:
    x = torch.randn(1, 3, 8, 8)
    graphs = [trace(small_cnn(), x), trace(wide_cnn(), x), trace(small_cnn(), x)]
    hist = np.stack([g.op_histogram() for g in graphs])
    d = pairwise(graphs, "sqrt_js")
    np.testing.assert_array_equal(d, pairwise(hist, "sqrt_js"))
    assert d[0, 2] == 0 and d[0, 1] > 0
    kernels = [kernel_graph(g) for g in graphs]
    assert [kernels[0].nodes[k]["op"] for k in kernels[0]] == graphs[0].kernel_ops
    edit = pairwise(graphs, "edit")  # tiny graphs: exact
    assert edit[0, 2] == 0 and edit[0, 1] > 0
    approx = pairwise(graphs, "edit", method="approx")
    assert np.all(approx >= edit - 1e-6)
    assert edit_lower_bound(kernels[0], kernels[1]) <= edit[0, 1]
    assert approx_edit_distance(kernels[0], kernels[1]) == approx[0, 1]
    with pytest.raises(TypeError, match="CompGraph"):
        pairwise([object(), object()], "edit")


def test_edit_metric_uses_a_space_s_own_matrix() -> None:
    class Codes:
        """A space-like object whose edit distance is NB201's per-edge sums."""

        def __init__(self, codes: np.ndarray) -> None:
            self.codes = codes

        def edit_matrix(self, cost=None, **options):
            return nb201_edit_matrix(self.codes, cost, **options)

    codes = np.array([[0, 1, 2, 3, 4, 0], [0, 1, 2, 2, 4, 0], [4, 4, 4, 4, 4, 4]], dtype=np.int8)
    d = pairwise(Codes(codes), "edit")
    np.testing.assert_array_equal(d, nb201_edit_matrix(codes))
    assert d[0, 1] == 0.5
    expensive = CostModel(same_family=0.9)
    assert pairwise(Codes(codes), "edit", cost=expensive)[0, 1] == pytest.approx(0.9)
    with pytest.raises(ValueError, match="integer NB201 op codes"):
        pairwise(Codes(codes.astype(float)), "edit")


USER_MODULE = """
import torch
from torch import nn


def small_cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2))


def wide_cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.ReLU())
"""


def test_cli_space_and_models(tmp_path, capsys, monkeypatch) -> None:
    (tmp_path / "user_models_for_cli.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "models.npy"
    specs = ["user_models_for_cli:small_cnn", "user_models_for_cli:wide_cnn"]
    status = cli_main(
        [
            "distance",
            "--models",
            *specs,
            "--input-shape",
            "1,3,8,8",
            "--metric",
            "hellinger",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    text = capsys.readouterr().out
    assert "matrix           2 x 2 float32" in text and "small_cnn" in text
    d = np.load(out)
    assert d.shape == (2, 2) and d[0, 1] > 0 and d[0, 1] == d[1, 0]
    bad = cli_main(["distance", "--models", "no_such_module:f", "--metric", "js"])
    assert bad == 2 and "cannot import 'no_such_module'" in capsys.readouterr().err
    bad = cli_main(["distance", "--models", specs[0], "--input-shape", "1,x"])
    assert bad == 2 and "--input-shape" in capsys.readouterr().err
    bad = cli_main(["distance", "--space", "nb201", "--metric", "edit", "--smoothing", "1"])
    assert bad == 2 and "--smoothing applies" in capsys.readouterr().err


def test_cli_space_uses_space_op_counts(tmp_path, capsys, monkeypatch) -> None:
    import cbred.bench.nb201_graph

    calls = []

    def fake_counts(space, channels=16, cells_per_stage=5):
        calls.append((len(space), channels, cells_per_stage))
        return np.random.default_rng(0).integers(0, 4, size=(30, 6)) + np.eye(30, 6, dtype=int)

    monkeypatch.setattr(cbred.bench.nb201_graph, "space_op_counts", fake_counts)
    out = tmp_path / "D.npy"
    args = ["distance", "--space", "nb201", "--metric", "js", "--channels", "8", "--cells", "1"]
    assert cli_main([*args, "--dtype", "float64", "--out", str(out)]) == 0
    assert calls == [(15625, 8, 1)]
    text = capsys.readouterr().out
    assert "matrix           30 x 30 float64" in text and "zero pairs" in text
    np.testing.assert_array_equal(
        np.load(out), pairwise(fake_counts(range(15625), 8, 1), "js", dtype=np.float64)
    )


def test_benchmark_smoke(capsys) -> None:
    from cbred.bench.perf_distance import main as bench_main

    assert bench_main(["--smoke"]) == 0
    text = capsys.readouterr().out
    assert "speed-up" in text and "NB201 edit matrix" in text
    assert "500 nodes" not in text and "100 nodes" in text
