"""Writes a tiny NATS-Bench topology file in the official format, with known accuracies."""

from __future__ import annotations

import bz2
import pickle
from collections.abc import Callable
from pathlib import Path

from nats_bench.api_utils import ArchResults, ResultsCount

# (dataset in NATS-Bench naming) -> evaluation set names stored for it
EVAL_SETS = {
    "cifar10-valid": ("x-valid", "ori-test"),
    "cifar10": ("ori-test",),
    "cifar100": ("x-valid", "x-test", "ori-test"),
    "ImageNet16-120": ("x-valid", "x-test", "ori-test"),
}
SEEDS = (777, 888)


def accuracy(index: int, dataset: str, set_name: str, epochs: int, seed: int) -> float:
    """The accuracy the fixture stores: distinct for every argument combination."""
    base = {"cifar10-valid": 80.0, "cifar10": 85.0, "cifar100": 60.0, "ImageNet16-120": 30.0}
    offset = {"x-valid": 0.5, "x-test": 1.0, "ori-test": 1.5}[set_name]
    return base[dataset] + offset + index * 0.01 + (epochs == 200) * 5.0 + (seed == 888) * 0.2


def trial(
    index: int,
    dataset: str,
    epochs: int,
    seed: int,
    accuracy_of: Callable[..., float] | None = None,
    train_times: bool = False,
) -> ResultsCount:
    """One trial's results in nats_bench's own class; the final accuracies are
    ``accuracy_of(index, dataset, set_name, epochs, seed)`` (default :func:`accuracy`)."""
    accuracy_of = accuracy_of or accuracy
    train = {i: 50.0 + i for i in range(epochs)}
    result = ResultsCount(dataset, None, train, dict(train), 0.1, 10.0, None, seed, epochs, None)
    times_per_epoch = {i: 0.1 for i in range(epochs)} if train_times else None
    result.update_train_info(train, None, dict(train), times_per_epoch)
    accs, losses, times = {}, {}, {}
    for name in EVAL_SETS[dataset]:
        for i in range(epochs):
            key = f"{name}@{i}"
            accs[key] = accuracy_of(index, dataset, name, epochs, seed) if i == epochs - 1 else 1.0
            losses[key], times[key] = 1.0, 0.1
    result.update_eval(accs, losses, times)
    return result


def write_tiny_nats(path: Path, arch_strings: list[str], indices: list[int]) -> Path:
    """Write a bz2-pickled NATS-Bench TSS file with results for ``indices`` only."""
    arch2infos = {}
    for index in indices:
        per_hp = {}
        for epochs in (12, 200):
            results = ArchResults(index, arch_strings[index])
            for dataset in EVAL_SETS:
                for seed in SEEDS:
                    results.update(dataset, seed, trial(index, dataset, epochs, seed))
            per_hp[str(epochs)] = results.state_dict()
        arch2infos[index] = per_hp
    data = {"meta_archs": arch_strings, "arch2infos": arch2infos, "evaluated_indexes": indices}
    with bz2.BZ2File(path, "wb") as f:
        pickle.dump(data, f)
    return path
