"""Package shape: layer contracts (import-linter), one import root ``cbred``, a clean wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_hold(tmp_path) -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is a test dependency"
    done = subprocess.run(
        [lint, str(ROOT / "pyproject.toml")], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "3 kept, 0 broken" in done.stdout


@pytest.mark.parametrize("name", ["cgraph", "proxies", "reduce", "bench"])
def test_only_cbred_is_an_import_root(tmp_path, name) -> None:
    code = f"import cbred.{name}\ntry:\n    import {name}\nexcept ImportError:\n    print('ok')"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.stdout.strip() == "ok", done.stderr


def test_import_cbred_is_light_and_lazy(tmp_path) -> None:
    code = "import sys, cbred; assert 'torch' not in sys.modules; print(cbred.trace.__name__)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.strip() == "trace", done.stderr


def test_wheel_holds_only_cbred(tmp_path) -> None:
    pytest.importorskip("setuptools")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    wheel = next(tmp_path.glob("cbred-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {
        "cbred",
        wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info",
    }
    assert "cbred/bench/data/nb201_scores.parquet" in names
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
         str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    code = (
        "import cbred.cgraph, cbred.bench.nb201 as n; assert len(n.NB201Space()) == 15625\n"
        "try:\n    import cgraph\nexcept ImportError:\n    print('ok')"
    )
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert done.stdout.strip() == "ok", done.stderr[-2000:]
