"""The cbred CLI: every sub-command has help, and `space` prints the facts."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources

import pytest
from cbred.bench.cli import build_parser, main


def _subcommands(parser):
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            yield from action.choices.items()


def test_every_subcommand_has_help(capsys):
    parser = build_parser("all")
    stack = [((), parser)]
    seen = 0
    while stack:
        path, p = stack.pop()
        with pytest.raises(SystemExit) as exit_info:
            main([*path, "--help"])
        assert exit_info.value.code == 0
        assert "usage: cbred" in capsys.readouterr().out
        seen += 1
        stack.extend(((*path, name), child) for name, child in _subcommands(p))
    assert seen >= 12


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys, contextlib, io\n"
        "from bench.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])\n"
        "print(sorted(m for m in ('torch', 'sklearn', 'torch_geometric') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


def test_space_info(capsys):
    assert main(["space", "info", "nb201"]) == 0
    out = capsys.readouterr().out
    assert "15625" in out and "6466 distinct classes" in out
    assert "94.37" in out and "73.51" in out and "47.31" in out


def test_space_arch_and_errors(capsys):
    assert main(["space", "arch", "nb201", "6111"]) == 0
    out = capsys.readouterr().out
    assert "94.37" in out and "nor_conv_1x1~2" in out
    assert main(["space", "arch", "nb201", "|bad~0|+|none~0|none~1|+|none~0|none~1|none~2|"]) == 2
    assert "'bad'" in capsys.readouterr().err


def test_console_script_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "cbred.bench.cli", "space", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "info" in result.stdout


def test_bench_modules_report_bad_input_in_one_line():
    """Every ``python -m cbred.bench.X`` reports bad input as ``cbred`` does: one line, exit 2."""
    from pathlib import Path

    import cbred.bench

    runnable = [
        p for p in Path(cbred.bench.__file__).parent.rglob("*.py")
        if 'if __name__ == "__main__":' in p.read_text() and p.name != "cli.py"
    ]  # fmt: skip
    assert len(runnable) >= 16
    assert [p.name for p in runnable if "module_main(main, " not in p.read_text()] == []
    done = subprocess.run(
        [sys.executable, "-m", "cbred.bench.protocol", "--scores", "/no/such.parquet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "cbred.bench.protocol: error: score source '/no/such.parquet' does not exist\n"
    )


def test_cbred_imports_modules_from_the_current_folder(tmp_path):
    """Like `python -m`, the console script finds `--model module:factory` in the cwd."""
    import shutil
    from pathlib import Path

    (tmp_path / "here_models.py").write_text(
        "from torch import nn\n\n\ndef tiny():\n    return nn.Sequential(nn.Linear(4, 2))\n"
    )
    cbred = shutil.which("cbred", path=str(Path(sys.executable).parent))
    done = subprocess.run(
        [cbred, "trace", "--model", "here_models:tiny", "--input-shape", "1,4"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "kernels" in done.stdout


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["reduce", "--help"], ["search", "rea", "--help"], ["search", "tenas", "--help"],
     ["space", "info", "--help"], ["score", "--help"], ["proxies", "score", "--help"],
     ["distance", "--help"], ["trace", "--help"], ["bench", "--help"]],
)  # fmt: skip
def test_help_imports_neither_torch_nor_sklearn(argv):
    """`--help` starts in a fraction of a second: no heavy import on the way."""
    code = (
        "import sys\nfrom cbred.bench.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('torch', 'sklearn', 'pandas') if m in sys.modules)\n"
        "print('heavy:', heavy, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "heavy: []" in done.stderr, done.stderr[-500:]


def test_perf_cli_smoke(capsys):
    from cbred.bench.perf_cli import main as perf_main

    assert perf_main(["--smoke"]) == 0
    out = capsys.readouterr().out
    assert "cbred reduce --help" in out and "floor" in out


# ---------------------------------------------------------------- one line per bad input (#18)
# Each case is a defect the property-based sweep (tests/test_cli_sweep.py) found: a traceback,
# several lines, an error that names nothing, or a silent success.


@pytest.fixture()
def sweep_files(tmp_path, monkeypatch):
    """The sweep's tiny space, models and junk files, in the current folder."""
    from test_cli_sweep import write_sweep_files

    write_sweep_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


TINY = "sweep_space.py:SPACE"
SEED1 = str(resources.files("cbred.bench") / "data" / "nb201_scores_seed1.parquet")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # argparse's usage text plus an error line -> one line pointing at --help
        (["space", "nope", "nb201"], "(see cbred space --help)"),
        (["search", "rea", "--evaluations", "0"], "argument --evaluations"),
        (["nope"], "(see cbred --help)"),
        # bare KeyError 'dataset' from --seeds 0; numpy errors from --seeds -1 and huge
        (["bench", "bestofn", "--seeds", "0"], "argument --seeds"),
        (["bench", "bestofn", "--seeds", "-1"], "argument --seeds"),
        (["bench", "bestofn", "--seeds", "99999999999999999999"], "argument --seeds"),
        (["bench", "bestofn", "--seeds", "1", "--n", "99999999999999999999"], "argument --n"),
        (["bench", "rea", "--seeds", "1", "--evaluations", "-1"], "argument --evaluations"),
        (["bench", "area", "--seeds", "1", "--seconds", "inf"], "argument --seconds"),
        (["bench", "rea", "--accuracy", "--train-seconds", "0"], "argument --train-seconds"),
        (["bench", "bestofn", "--seeds", "1", "--score-data", "nope"], "unknown dataset 'nope'"),
        (["bench", "bestofn", "--seeds", "1", "--batch-size", "-1"], "argument --batch-size"),
        (["bench", "acceptance", "--seeds", "1", "--evaluations", "1"], "fewer than the 2"),
        (["bench", "report", "--seeds", "1", "--evaluations", "4", "--out", ""], "names no"),
        # the index and the range, not "expected 3 node groups" or "not an architecture"
        (["space", "arch", "nb201", "-1"], "index -1 out of range 0..15624"),
        (["trace", "--space", "nb201", "--arch", "-1"], "index -1 out of range 0..15624"),
        (["proxies", "score", "--space", TINY, "--arch", "-1"], "index -1 out of range 0..5"),
        # torch.fx's multi-line messages and torch's allocation errors
        (["trace", "--model", "sweep_models:linear", "--input-shape", "1,5"], "mat1 and mat2"),
        (["trace", "--model", "sweep_models:linear", "--input-shape", "99999999999,99999999"],
         "--input-shape '99999999999,99999999'"),
        (["trace", "--space", "nb201", "--arch", "3", "--channels", "123456"],
         "cannot trace architecture 3"),
        (["trace", "--space", "nb201", "--arch", "3", "--resolution", "1", "--slow"],
         "cannot trace architecture 3"),
        (["trace", "--space", "nb201", "--arch", "3", "--resolution", "0"], "--resolution"),
        (["trace", "--model", "sweep_models:linear", "--fallback", "nope"], "--fallback"),
        # a device torch cannot parse was a RuntimeError traceback
        (["proxies", "score", "--space", TINY, "--arch", "0", "--device", "nope"], "--device"),
        (["search", "bestofn", "--space", TINY, "--device", ""], "--device"),
        # seeds and counts beyond what numpy, scikit-learn, torch and SQLite take
        (["distance", "--models", "sweep_models:linear", "--input-shape", "1,4", "--seed",
          "99999999999999999999"], "argument --seed"),
        (["reduce", "--space", TINY, "--seed", "-1"], "argument --seed"),
        (["score", "--space", TINY, "--score", "params", "--store", "s.db", "--seed",
          "99999999999999999999"], "argument --seed"),
        (["score", "--space", TINY, "--score", "params", "--store", "s.db", "--batch-size",
          "99999999999999999999"], "argument --batch-size"),
        (["reduce", "--space", TINY, "--evaluations", "99999999999999999999"], "--evaluations"),
        (["reduce", "--space", TINY, "--score", "params", "--k", "2:99999999999"],
         "--k 2:99999999999 asks for up to 99999999999 clusters, more than"),
        # an unknown --dataset failed only after the reduction, in the report
        (["reduce", "--space", "nb201", "--dataset", "nosuch", "--k", "6"], "--dataset 'nosuch'"),
        # a user space's batch() failing on a huge size was its own traceback
        (["proxies", "score", "--space", TINY, "--arch", "0", "--score", "naswot",
          "--batch-size", "2147483647"], "batch(2147483647, 0) of the space raised"),
        # KeyError messages were printed as Python reprs, quotes and escapes included
        (["distance", "--models", "sweep_models:linear", "--input-shape", "1,4", "--metric",
          "nope"], ": error: unknown metric 'nope'"),
        # score tables: a folder, junk, a store, all-NaN values
        (["reduce", "--space", TINY, "--score", "naswot", "--scores", "adir"], "is a directory"),
        (["search", "bestofn", "--space", TINY, "--scores", "adir"], "is a directory"),
        (["bench", "bestofn", "--seeds", "1", "--scores", "adir"], "is a directory"),
        (["reduce", "--space", TINY, "--score", "naswot", "--scores", "binary.csv"],
         "'binary.csv' is not a readable CSV"),
        (["reduce", "--space", TINY, "--score", "naswot", "--scores", "junk.db"], "score store"),
        (["reduce", "--space", TINY, "--score", "naswot", "--scores", "tiny_scores_nan.csv"],
         "no finite 'naswot' value"),
        (["search", "bestofn", "--space", TINY, "--scores", "tiny_scores_nan.csv"],
         "no finite 'naswot' value"),
        # a table of proxy seed 1 stood in for seed 0, the one asked for (a silent wrong answer)
        (["search", "bestofn", "--space", "nb201", "--scores", SEED1], "seed 1 (asked for 0)"),
        # subspace files: a JSON number, a folder, text
        (["search", "bestofn", "--space", TINY, "--subspace", "number.json"], "got int"),
        (["bench", "bestofn", "--seeds", "1", "--subspace", "number.json"], "got int"),
        (["search", "bestofn", "--space", TINY, "--subspace", "adir.json"], "is a directory"),
        (["bench", "bestofn", "--seeds", "1", "--subspace", "adir.json"], "is a directory"),
        (["search", "bestofn", "--space", TINY, "--subspace", "text.json"], "'text.json'"),
        # silently ignored: a data set the accuracies do not know, --score-data of a space
        # that draws its own batches
        (["search", "bestofn", "--space", "nb201", "--evaluations", "2", "--dataset", "nope"],
         "--dataset 'nope'"),
        (["proxies", "score", "--space", TINY, "--arch", "0", "--score-data", "cifar100"],
         "--score-data applies to spaces without their own batch"),
        # --space '' was taken for "no --space": a TypeError/AttributeError traceback
        (["distance", "--space", "", "--metric", "js"], "--space ''"),
        (["trace", "--space", "", "--arch", "0"], "--space ''"),
        # a subspace of another space was read as NB201 indices: a silent wrong answer
        (["bench", "bestofn", "--seeds", "1", "--subspace", "tiny_sub.json"], "not of 'nb201'"),
        # --help suggested q0.75, which was rejected only after the features were computed
        (["reduce", "--space", TINY, "--f", "q0.75"], "argument --f"),
        # a file that is not a NATS-Bench file; TE-NAS checks it before its search
        (["space", "info", "nb201", "--nats-path", "junk.db"], "cannot be read"),
        (["search", "tenas", "--nats-path", "junk.db"], "cannot be read"),
        # an --out in a missing folder failed only after the work
        (["search", "bestofn", "--space", TINY, "--out", "nofolder/r.json"],
         "folder 'nofolder' of output 'nofolder/r.json' does not exist"),
        (["reduce", "--space", TINY, "--out", "nofolder/s.json"], "folder 'nofolder'"),
        (["trace", "--space", "nb201", "--arch", "3", "--out", "nofolder/g.json"],
         "folder 'nofolder'"),
        (["distance", "--space", TINY, "--metric", "js", "--out", "nofolder/d.npy"],
         "folder 'nofolder'"),
        # an ensemble where one network's statistic is expected: what it is, what to do
        (["score", "--space", TINY, "--score", "recommended", "--store", "s.db"],
         "'recommended' is an ensemble (log_rank of synflow, jacob_cov, meco, "),
        (["search", "bestofn", "--space", TINY, "--score", "vote+naswot"], "score its members"),
        # a tournament larger than its population was cut to it silently
        (["search", "rea", "--space", TINY, "--population", "3", "--tournament", "4"],
         "a tournament of 4 is larger than the population of 3"),
        # a score store read as a table is never created by the reading
        (["search", "bestofn", "--space", TINY, "--scores", "missing.db"],
         "score store 'missing.db' does not exist"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line(sweep_files, argv, expected):
    from test_cli_sweep import run_cli

    status, _, err = run_cli(argv)
    assert status == 2 and "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("cbred") and ": error: " in err, err
    assert expected in err, err
    assert not (sweep_files / "nofolder").exists() and not (sweep_files / "missing.db").exists()


def test_distance_of_models_compares_the_features_asked_for(tmp_path, monkeypatch, capsys):
    """Two small CNNs with the same operations and different widths: equal op usage (distance
    0), but the convolution's share of parameters and FLOPs against the classifier's differs
    (was: --features ignored for --models, 0 under every feature)."""
    import numpy as np

    (tmp_path / "widths.py").write_text(
        "from torch import nn\n\n\ndef cnn(width):\n"
        "    return nn.Sequential(nn.Conv2d(3, width, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),\n"
        "                         nn.Flatten(), nn.Linear(width, 2))\n\n\n"
        "def narrow():\n    return cnn(3)\n\n\ndef wide():\n    return cnn(64)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    base = ["distance", "--models", "widths:narrow", "widths:wide", "--input-shape", "1,3,4,4"]
    for features, zero in (("op_usage", True), ("params_usage", False), ("flops_usage", False)):
        out = tmp_path / f"{features}.npy"
        assert main([*base, "--features", features, "--out", str(out)]) == 0
        assert (np.load(out)[0, 1] == 0) == zero, features
    capsys.readouterr()


def test_a_failed_pass_prints_nan_not_a_key_error(capsys):
    """NB201 at C=1, N=1 on one image: zico's pass fails; its statistic is NaN with the
    reason, the others print, and the passes line says which failed (was: error 'pass:zico')."""
    argv = ["proxies", "score", "--space", "nb201", "--arch", "0", "--channels", "1",
            "--cells", "1", "--batch-size", "1", "--score", "zico,params"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "zico failed" in out and "params" in out and "nan" in out


def test_search_scores_live_on_the_device_asked_for(sweep_files, capsys):
    """--device reached live scoring (it was dropped: any device 'worked')."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    argv = ["search", "bestofn", "--space", TINY, "--evaluations", "2", "--score", "naswot"]
    assert main([*argv, "--device", "cuda"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err
    assert main([*argv, "--device", "cpu"]) == 0


def test_a_cuda_index_beyond_the_devices_is_a_value_error(monkeypatch):
    """--device cuda:99 on a one-GPU machine failed in .to() with a RuntimeError traceback."""
    import torch
    from cbred.proxies.api import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match=r"'cuda:99'.*only 1 CUDA device"):
        resolve_device("cuda:99", torch.device("cpu"))
    assert resolve_device("cuda:0", torch.device("cpu")) == torch.device("cuda:0")
    with pytest.raises(ValueError, match="not a torch device"):
        resolve_device("nope", torch.device("cpu"))


def test_bench_best_of_n_beyond_a_small_table(sweep_files, capsys):
    """N above a table's 6 architectures: the run says it stopped short (its label used to
    break the gap notes: "invalid literal for int() ... '100 (stopped after 6 ...)'")."""
    argv = ["bench", "bestofn", "--seeds", "2", "--scores", "tiny_scores.csv", "--n", "100"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "stopped after 6 of 100 evaluations" in out and "N=[100] exceed 20%" in out
