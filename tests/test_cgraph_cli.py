"""``cbred trace`` and the ``bench.perf_trace`` smoke run."""

from __future__ import annotations

import pytest
import torch
from cbred.bench import perf_trace
from cbred.bench.cli import main
from cbred.bench.nb201_graph import nb201_graph
from cbred.bench.nb201_network import count_params_flops
from cbred.cgraph.export import load


def test_trace_nb201_writes_json_and_prints_summary(tmp_path, capsys):
    out = tmp_path / "g.json"
    assert main(["trace", "--space", "nb201", "--arch", "1234", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    params, flops = count_params_flops(1234)
    assert f"{params:,}" in text and f"{flops:,}" in text and "conv1x1:" in text
    assert load(out) == nb201_graph(1234)


def test_trace_nb201_slow_path_agrees(capsys):
    arch = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|none~2|"
    common = ["trace", "--space", "nb201", "--arch", arch, "--channels", "4"]
    assert main([*common, "--cells", "1"]) == 0
    fast = capsys.readouterr().out
    assert main([*common, "--cells", "1", "--slow"]) == 0
    assert capsys.readouterr().out == fast


def test_trace_user_model_graphml_and_pyg(tmp_path, capsys):
    for suffix in (".graphml", ".pt"):
        out = tmp_path / f"g{suffix}"
        argv = ["trace", "--model", "cbred.cgraph.zoo:MobileNetV2", "--input-shape", "1,3,32,32"]
        assert main([*argv, "--out", str(out)]) == 0
        assert out.stat().st_size > 0
    assert "dwconv3x3:3" in capsys.readouterr().out
    data = torch.load(tmp_path / "g.pt", weights_only=False)
    assert set(data.node_types) == {"memory", "kernel"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "no_such_module:f", "--input-shape", "1,3"], "cannot import"),
        (["--model", "cbred.cgraph.zoo", "--input-shape", "1,3"], "package.module:factory"),
        (["--model", "cbred.cgraph.zoo:ResNet"], "--input-shape"),
        (["--model", "cbred.cgraph.zoo:ResNet", "--input-shape", "1,x"], "comma-separated"),
        (["--model", "cbred.cgraph.zoo:ZOO", "--input-shape", "1,3"], "no callable"),
        (["--space", "nb201"], "--arch"),
        (["--space", "nb201", "--arch", "99999"], "99999"),
        (
            [
                "--model",
                "cbred.cgraph.zoo:DataDependentNet",
                "--input-shape",
                "1,3,8,8",
                "--fallback",
                "error",
            ],
            "control flow",
        ),
    ],
)
def test_trace_errors_are_reported(argv, message, capsys):
    assert main(["trace", *argv]) == 2
    assert message in capsys.readouterr().err


def test_perf_trace_smoke(capsys):
    assert perf_trace.main(["--smoke"]) == 0
    text = capsys.readouterr().out
    assert "nb201 space" in text and "all graphs equal" in text and "zoo overall" in text


TOKEN_MODELS = """
import torch
from torch import nn


class TinyLM(nn.Module):
    def __init__(self, vocab=50, width=8):
        super().__init__()
        self.embed, self.head = nn.Embedding(vocab, width), nn.Linear(width, vocab)
        self.drop = nn.Dropout(0.5)

    def forward(self, ids):
        x = self.embed(ids)
        if self.training:  # a train-only branch: its kernels show which mode was traced
            x = torch.tanh(x)
        return self.head(self.drop(x))


def needs_args(width):
    return TinyLM(width=width)


def example_inputs():
    return torch.zeros(1, 5, dtype=torch.long)
"""


def test_trace_takes_token_inputs_factory_kwargs_and_eval_mode(tmp_path, capsys, monkeypatch):
    (tmp_path / "token_models.py").write_text(TOKEN_MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    base = ["trace", "--model", "token_models:TinyLM"]
    assert main([*base, "--input-shape", "1,5", "--input-dtype", "long", "--vocab", "50"]) == 0
    evaluated = capsys.readouterr().out
    assert "tanh" not in evaluated.split("ops", 1)[1]  # traced in eval mode by default
    assert main([*base]) == 0  # the module's example_inputs()
    assert main([*base, "--train", "--input-shape", "1,5", "--input-dtype", "long",
                 "--vocab", "50"]) == 0  # fmt: skip
    trained = capsys.readouterr().out
    assert "tanh" in trained.split("ops")[-1]
    assert main(["trace", "--model", "token_models:needs_args", "--factory-kwargs",
                 '{"width": 4}']) == 0  # fmt: skip
    capsys.readouterr()
    for argv, message in (
        (["--model", "token_models:needs_args"], "pass its arguments with --factory-kwargs"),
        (["--model", "token_models:TinyLM", "--factory-kwargs", "[1]"], "JSON object"),
        (["--model", "token_models:TinyLM", "--input-shape", "1,5", "--input-dtype", "long"],
         "needs --vocab"),
    ):  # fmt: skip
        assert main(["trace", *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
