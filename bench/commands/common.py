"""Flags that several commands share, one name per concept, and how they open a space.

* ``--space SPEC`` — a registered space name (``nb201``, ``nats_sss``, or any package's
  ``cbred.spaces`` entry point), ``package.module:OBJECT`` or ``path/to/file.py:OBJECT``;
* ``--score-data`` — the data set of the scoring batch (NB201: also the classes its head
  predicts); for a space without ``batch(size, seed)`` it names a readable data set;
* ``--dataset`` — the data set whose benchmark accuracies evaluate a result (never used to
  choose one);
* ``--channels`` / ``--cells`` — the network setting of a space that has one (NB201's C and
  cells per stage);
* ``--score`` — training-free statistic name(s); ``--scores`` — a score table file;
* ``--batch-size`` / ``--seed`` — the scoring batch and the seed of weights, batch and passes;
* ``--evaluations`` — how many statistic evaluations a command may spend.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from types import ModuleType
from typing import Any

from cbred.reduce.space import load_space


def lazy_module(name: str) -> ModuleType:
    """Module ``name``, executed on first attribute access (``importlib.util.LazyLoader``,
    the standard library's lazy import): parsers build without importing torch."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module {name!r}")
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def space_parent(default: str | None = "nb201") -> argparse.ArgumentParser:
    """``--space``, ``--score-data``, ``--channels``, ``--cells``."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--space",
        default=default,
        required=default is None,
        metavar="SPEC",
        help="a registered space (nb201, nats_sss, ...), package.module:OBJECT or "
        f"FILE.py:OBJECT (default {default})",
    )
    parent.add_argument(
        "--score-data",
        default=None,
        help="data set of the scoring batch: cifar10, cifar100, imagenet16_120 (default: the "
        "space's own data, else cifar10)",
    )
    parent.add_argument("--channels", type=positive_int, help="network width (NB201: C=16)")
    parent.add_argument("--cells", type=positive_int, help="cells per stage (NB201: 5)")
    return parent


def scoring_parent(batch_size: int = 64) -> argparse.ArgumentParser:
    """``--batch-size``, ``--seed``, ``--device``."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--batch-size", type=positive_int, default=batch_size)
    parent.add_argument(
        "--seed", type=int, default=0, help="seed of weights, batch and every random choice"
    )
    parent.add_argument("--device", default=None, help="cpu or cuda (default: cpu)")
    return parent


def open_space(args: argparse.Namespace, probe: bool = True) -> Any:
    """The space ``args.space`` names, in the setting the flags ask for, with data."""
    space = load_space(args.space, probe=probe)
    setting = {
        key: value
        for key, value in (
            ("channels", getattr(args, "channels", None)),
            ("cells_per_stage", getattr(args, "cells", None)),
            ("dataset", getattr(args, "score_data", None)),
        )
        if value is not None
    }
    if callable(getattr(space, "with_setting", None)):
        known = {k: v for k, v in setting.items() if hasattr(space, k)}
        unknown = sorted(set(setting) - set(known) - {"dataset"})
        if unknown:
            raise ValueError(f"--space {args.space!r} has no network setting {unknown}")
        return space.with_setting(**known) if known else space
    if "channels" in setting or "cells_per_stage" in setting:
        raise ValueError(
            f"--channels/--cells apply to spaces with a network setting; {args.space!r} has none"
        )
    if callable(getattr(space, "batch", None)):
        return space
    from cbred.bench.user_space import with_data

    return with_data(space, setting.get("dataset", "cifar10"))
