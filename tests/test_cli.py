"""The cbred CLI: every sub-command has help, and `space` prints the facts."""

from __future__ import annotations

import subprocess
import sys

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
