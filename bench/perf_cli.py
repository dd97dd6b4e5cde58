"""Start-up time of the CLI: ``python -m cbred.bench.perf_cli [--runs 5] [--smoke]``.

Each command's ``--help`` runs in a fresh process (the console script), ``--runs`` times; the
median and the range are printed, beside the same for ``python -c pass`` (the floor: the
interpreter alone). ``--help`` must not import torch or scikit-learn (see tests/test_cli.py).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from cbred.bench.cli import COMMANDS

SUBCOMMANDS = {"search": ("rea",), "space": ("info",), "proxies": ("score",)}


def timed(command: list[str], runs: int) -> list[float]:
    """Wall seconds of ``runs`` fresh runs of ``command``."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="one run of three commands")
    args = parser.parse_args(argv)
    cbred = shutil.which("cbred", path=str(Path(sys.executable).parent)) or "cbred"
    runs = 1 if args.smoke else args.runs
    rows = [
        ("python -c pass (floor)", [sys.executable, "-c", "pass"]),
        ("cbred --help", [cbred, "--help"]),
    ]
    names = ["reduce"] if args.smoke else list(COMMANDS)
    for name in names:
        rows.append((f"cbred {name} --help", [cbred, name, "--help"]))
        for action in () if args.smoke else SUBCOMMANDS.get(name, ()):
            rows.append((f"cbred {name} {action} --help", [cbred, name, action, "--help"]))
    print(f"{'command':<32}{'median s':>10}{'min':>8}{'max':>8}   ({runs} runs each)")
    for label, command in rows:
        times = timed(command, runs)
        print(f"{label:<32}{statistics.median(times):10.3f}{min(times):8.3f}{max(times):8.3f}")
    return 0


if __name__ == "__main__":
    from cbred.bench.cli import module_main

    raise SystemExit(module_main(main, "cbred.bench.perf_cli"))
