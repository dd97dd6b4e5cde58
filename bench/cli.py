"""The ``cbred`` command line: one sub-command per module in :mod:`bench.commands`.

Sub-command modules import torch, scikit-learn or PyTorch Geometric, which take
seconds; so only the module of the command being run is imported.  The others
appear in ``cbred --help`` through the one-line summaries below.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from typing import NoReturn

# command -> (module defining ``register(subparsers)``, summary for ``cbred --help``)
COMMANDS: dict[str, tuple[str, str]] = {
    "space": ("cbred.bench.commands.space", "describe a search space or one architecture"),
    "trace": ("cbred.bench.commands.trace", "trace a model into its computational graph"),
    "distance": (
        "cbred.bench.commands.distance",
        "distance matrix over a space or a list of models",
    ),
    "proxies": (
        "cbred.bench.commands.proxies",
        "list training-free statistics or score one network",
    ),
    "score": (
        "cbred.bench.commands.score",
        "score a space with training-free statistics into a store",
    ),
    "reduce": ("cbred.bench.commands.reduce", "C-BRED: cluster a space and keep the best cluster"),
    "search": (
        "cbred.bench.commands.search",
        "one search over a space or subspace: bestofn, rea, area, tenas",
    ),
    "bench": (
        "cbred.bench.commands.bench_cmd",
        "reproductions and tables beside the published NB201 results",
    ),
}


class CliParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr, like cbred's own:
    ``cbred <cmd>: error: <message> (see cbred <cmd> --help)``, exit status 2.

    Sub-parsers inherit the class (``add_subparsers`` builds them with ``type(self)``).
    """

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(load: str | None = None) -> argparse.ArgumentParser:
    """The parser; ``load`` names the one command to load fully, or ``'all'``."""
    parser = CliParser(
        prog="cbred",
        description="Training-free NAS by clustering computational graphs (C-BRED).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, summary) in COMMANDS.items():
        if load in (name, "all"):
            importlib.import_module(module).register(sub)
        else:
            sub.add_parser(name, help=summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cbred`` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`: modules in the current folder import
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command if command in COMMANDS else None).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as exc:
        print(f"cbred {args.command}: error: {error_line(exc)}", file=sys.stderr)
        return 2


USER_ERRORS = (ValueError, OSError, KeyError, IndexError)
"""What bad input raises (a bad value, a missing file, an unknown name): reported in one line."""


def module_main(main: Callable[[], int | None], prog: str) -> int:
    """Run the ``main`` of a ``python -m cbred.bench.X`` command as ``cbred`` runs its
    sub-commands: bad input (:data:`USER_ERRORS`) prints one line ``PROG: error: ...`` on
    stderr and gives exit status 2 instead of a traceback."""
    try:
        return int(main() or 0)
    except USER_ERRORS as exc:
        print(f"{prog}: error: {error_line(exc)}", file=sys.stderr)
        return 2


def error_line(exc: BaseException) -> str:
    """The one line a user error prints: the message's first non-empty line (a KeyError's
    message without the quotes ``str(KeyError)`` adds)."""
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str):
        text = exc.args[0]
    else:
        text = str(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
