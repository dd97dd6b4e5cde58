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


MAX_COUNT = 2**31 - 1  # above any count a run can use; larger ones overflow numpy and SQLite
MAX_SEED = 2**32 - 1  # numpy's, scikit-learn's and torch's seeds all take 0..2**32-1


def _int(text: str, expected: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def positive_int(text: str) -> int:
    """A count: 1..MAX_COUNT."""
    value = _int(text, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    if value > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_COUNT}, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """A count where 0 has a meaning: 0..MAX_COUNT."""
    value = _int(text, "an integer >= 0")
    if not 0 <= value <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"expected an integer in 0..{MAX_COUNT}, got {text!r}")
    return value


def seed_int(text: str) -> int:
    """A random seed: 0..MAX_SEED, the range every library here accepts."""
    value = _int(text, f"a seed in 0..{MAX_SEED}")
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected a seed in 0..{MAX_SEED}, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def dataset_name(text: str) -> str:
    """A data set name (``ImageNet16-120`` → ``imagenet16_120``)."""
    from cbred.bench.dataset_names import canonical_dataset

    try:
        return canonical_dataset(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def device_name(text: str) -> str:
    """A torch device string (cpu, cuda, cuda:1, mps, ...); torch is imported only when the
    flag is given, so ``--help`` stays fast."""
    import torch

    try:
        torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        raise argparse.ArgumentTypeError(
            f"expected a device such as cpu, cuda or cuda:1, got {text!r}"
        ) from None
    return text


def arch_index(space: Any, text: str) -> int:
    """The index that ``--arch TEXT`` names: an integer (checked against the space's range,
    negative ones included) or an ``arch_str``."""
    from cbred.reduce.space import index_of

    stripped = text.strip()
    if stripped.lstrip("+-").isdigit():
        return index_of(space, int(stripped))
    return index_of(space, text)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
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
        type=dataset_name,
        default=None,
        help="data set of the scoring batch: cifar10, cifar100, imagenet16_120 (default: the "
        "space's own data, else cifar10)",
    )
    parent.add_argument("--channels", type=positive_int, help="network width (NB201: C=16)")
    parent.add_argument("--cells", type=positive_int, help="cells per stage (NB201: 5)")
    return parent


def scoring_parent(
    batch_size: int = 64, seed_help: str = "seed of weights, batch and every random choice"
) -> argparse.ArgumentParser:
    """``--batch-size``, ``--seed`` (``seed_help`` says what it draws), ``--device``."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--batch-size", type=positive_int, default=batch_size)
    parent.add_argument("--seed", type=seed_int, default=0, help=seed_help)
    parent.add_argument(
        "--device", type=device_name, default=None, help="cpu or cuda (default: cpu)"
    )
    return parent


def add_tournament(parser: argparse.ArgumentParser) -> None:
    """``--tournament``: REA's tournament size; by default 5, or the whole population when
    ``--population`` is smaller (:func:`reduce.search.regularized_evolution`; a larger
    tournament given explicitly is an error)."""
    parser.add_argument(
        "--tournament",
        type=positive_int,
        default=None,
        help="tournament size (default 5, or --population when smaller)",
    )


def add_proxy_seed(parser: argparse.ArgumentParser) -> None:
    """``--proxy-seed``: the batch/init seed of the statistics, apart from ``--seed``, which
    draws the method (search, clustering), so both can vary on one score store or table."""
    parser.add_argument(
        "--proxy-seed",
        type=seed_int,
        default=0,
        help="seed of the statistics' networks and batch (default 0, the shipped table's; "
        "another seed reads a table of that seed or is computed live)",
    )


def check_dataset(space: Any, dataset: str) -> None:
    """Fail now on a ``--dataset`` the space's accuracies do not know, rather than report
    "accuracy unavailable" after the work; a space without ground truth passes."""
    accuracy = getattr(space, "accuracy", None)
    if not callable(accuracy):
        return
    try:
        accuracy(0, dataset)
    except (ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise ValueError(f"--dataset {dataset!r}: {message}") from None
    except FileNotFoundError:
        pass  # no ground truth on this machine: the search runs, the accuracy is unavailable


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
        if "dataset" in setting:  # it would be ignored: the space draws its own batches
            raise ValueError(
                f"--score-data applies to spaces without their own batch(size, seed); "
                f"{args.space!r} has one"
            )
        return space
    from cbred.bench.user_space import with_data

    return with_data(space, setting.get("dataset", "cifar10"))
