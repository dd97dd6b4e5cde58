"""Writes a tiny NATS-Bench size-space (SSS) file in the official format, with known accuracies.

The SSS file differs from the topology one (see ``nats_fixture``) only in its contents:
``meta_archs`` lists the 32,768 channel strings, and each evaluated index maps the
hyper-parameter tags ``"01"``, ``"12"`` and ``"90"`` (training epochs) to an
``ArchResults`` state dict.  The fast-mode directory holds ``meta.pickle.pbz2`` and one
``{index:06d}.pickle.pbz2`` per architecture.
"""

from __future__ import annotations

import bz2
import pickle
from pathlib import Path

from nats_bench.api_utils import ArchResults
from nats_fixture import EVAL_SETS, SEEDS, trial

HPS = ("01", "12", "90")
CANDIDATES = [8, 16, 24, 32, 40, 48, 56, 64]


def traverse_net(candidates: list[int], num_layers: int) -> list[str]:
    """The official list of SSS strings, as NATS-Bench's own ``main-sss.py`` and
    ``sss-collect.py`` build ``meta_archs`` (re-typed, same loop): each new position
    is appended inside the loop over the existing prefixes, so the last varies fastest."""
    nets = [""]
    for _ in range(num_layers):
        nets = [str(c) if net == "" else f"{net}:{c}" for net in nets for c in candidates]
    return nets


def official_arch_strings() -> list[str]:
    return traverse_net(CANDIDATES, 5)


def accuracy(index: int, dataset: str, set_name: str, epochs: int, seed: int) -> float:
    """The accuracy the fixture stores: distinct for every argument combination."""
    base = {"cifar10-valid": 80.0, "cifar10": 85.0, "cifar100": 60.0, "ImageNet16-120": 30.0}
    offset = {"x-valid": 0.5, "x-test": 1.0, "ori-test": 1.5}[set_name]
    bonus = {1: 0.0, 12: 2.0, 90: 5.0}[epochs]
    return base[dataset] + offset + index * 0.001 + bonus + (seed == 888) * 0.2


def _per_hp(index: int, arch_str: str) -> dict:
    per_hp = {}
    for hp in HPS:
        results = ArchResults(index, arch_str)
        for dataset in EVAL_SETS:
            for seed in SEEDS:
                results.update(
                    dataset, seed, trial(index, dataset, int(hp), seed, accuracy, train_times=True)
                )
        per_hp[hp] = results.state_dict()
    return per_hp


def _dump(data: object, path: Path) -> None:
    with bz2.BZ2File(path, "wb") as f:
        pickle.dump(data, f)


def write_tiny_sss(path: Path, indices: list[int]) -> Path:
    """Write a bz2-pickled NATS-Bench SSS file with results for ``indices`` only."""
    archs = official_arch_strings()
    arch2infos = {index: _per_hp(index, archs[index]) for index in indices}
    _dump({"meta_archs": archs, "arch2infos": arch2infos, "evaluated_indexes": indices}, path)
    return path


def write_tiny_sss_dir(path: Path, indices: list[int]) -> Path:
    """Write the fast-mode directory form (``meta`` plus one file per index)."""
    archs = official_arch_strings()
    path.mkdir(parents=True, exist_ok=True)
    meta = {"meta_archs": archs, "arch2infos": None, "evaluated_indexes": set()}
    _dump(meta, path / "meta.pickle.pbz2")
    for index in indices:
        _dump(_per_hp(index, archs[index]), path / f"{index:06d}.pickle.pbz2")
    return path
