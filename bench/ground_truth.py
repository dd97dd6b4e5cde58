"""Benchmark accuracies of NB201 architectures.

Two sources share one interface:

* :class:`BundledGroundTruth` — the 200-epoch test accuracies (mean over the
  benchmark's seeds) of all 15,625 architectures on CIFAR-10, CIFAR-100 and
  ImageNet16-120, shipped inside the package; works offline.
* :class:`NatsBenchGroundTruth` — the official NATS-Bench topology file read
  through the ``nats_bench`` package, which adds validation accuracies and the
  12-epoch schedule.  Used when the user names the file (argument or the
  ``CBRED_NATS_PATH`` environment variable).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from cbred.bench.datasets import canonical_dataset
from cbred.bench.nb201 import Arch, NB201Space, parse_arch
from cbred.bench.nb201_table import bundled_table

NATS_ENV = "CBRED_NATS_PATH"

# NATS-Bench's own dataset names; CIFAR-10 validation lives in its 'cifar10-valid' split.
_NATS_NAMES = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16_120": "ImageNet16-120"}


class BundledGroundTruth:
    """200-epoch test accuracies (%) of every NB201 architecture, from the packaged table."""

    metrics: tuple[str, ...] = ("test",)
    epochs: tuple[int, ...] = (200,)

    def __init__(self, space: NB201Space | None = None) -> None:
        self.space = space or NB201Space()
        self.table = bundled_table()

    def _check(self, dataset: str, metric: str, epochs: int) -> str:
        dataset = canonical_dataset(dataset)
        if metric not in self.metrics:
            raise ValueError(
                f"metric {metric!r} is not in this source (has {', '.join(self.metrics)}); "
                f"validation accuracies need the NATS-Bench file (set {NATS_ENV})"
            )
        if epochs not in self.epochs:
            raise ValueError(
                f"{epochs}-epoch results are not in this source (has {self.epochs}); "
                f"12-epoch results need the NATS-Bench file (set {NATS_ENV})"
            )
        return dataset

    def _index(self, arch: Arch | str | int) -> int:
        if isinstance(arch, (int, np.integer)):
            self.space.arch(int(arch))  # range check with a clear error
            return int(arch)
        return self.space.index(parse_arch(arch))

    def accuracy(
        self, arch: Arch | str | int, dataset: str, metric: str = "test", epochs: int = 200
    ) -> float:
        """Accuracy (%) of one architecture given by index, cell string or :class:`Arch`."""
        dataset = self._check(dataset, metric, epochs)
        return float(self.table[dataset].iat[self._index(arch)])

    def accuracies(self, dataset: str, metric: str = "test", epochs: int = 200) -> np.ndarray:
        """(15625,) accuracies in index order."""
        dataset = self._check(dataset, metric, epochs)
        return self.table[dataset].to_numpy(dtype=np.float64)


class NatsBenchGroundTruth(BundledGroundTruth):
    """Accuracies from the official NATS-Bench topology file (``nats_bench`` package).

    ``source`` is the path of the file or of its fast-mode directory, or an API
    object already created by ``nats_bench.create``.  Test accuracies at 200
    epochs stay available offline from the bundled table; everything else is
    read from the file and averaged over the benchmark's seeds.
    """

    metrics = ("test", "valid")
    epochs = (12, 200)

    def __init__(self, source: str | os.PathLike[str] | Any, space: NB201Space | None = None):
        super().__init__(space)
        if isinstance(source, (str, os.PathLike)):
            path = Path(source).expanduser()
            if not path.exists():
                raise FileNotFoundError(
                    f"NATS-Bench file {str(path)!r} does not exist; expected the topology "
                    "benchmark file or its directory (e.g. NATS-tss-v1_0-3ffb9-simple)"
                )
            import nats_bench

            try:
                self.api = nats_bench.create(
                    str(path), "tss", fast_mode=path.is_dir(), verbose=False
                )
            except Exception as exc:  # not a benchmark file: bz2, pickle, assertion errors
                lines = [line for line in str(exc).splitlines() if line.strip()]
                raise ValueError(
                    f"NATS-Bench file {str(path)!r} cannot be read ({type(exc).__name__}: "
                    f"{lines[0] if lines else 'no message'}); expected the topology benchmark "
                    "file or its directory (e.g. NATS-tss-v1_0-3ffb9-simple)"
                ) from None
        else:
            self.api = source

    def accuracy(
        self, arch: Arch | str | int, dataset: str, metric: str = "test", epochs: int = 200
    ) -> float:
        dataset = self._check(dataset, metric, epochs)
        index = self._index(arch)
        if dataset == "cifar10" and metric == "valid":
            nats_dataset = "cifar10-valid"
        else:
            nats_dataset = _NATS_NAMES[dataset]
        info = self.api.get_more_info(index, nats_dataset, hp=str(epochs), is_random=False)
        key = "valid-accuracy" if metric == "valid" else "test-accuracy"
        if key not in info:
            raise KeyError(f"NATS-Bench has no {key} for {dataset} at {epochs} epochs")
        return float(info[key])

    def accuracies(self, dataset: str, metric: str = "test", epochs: int = 200) -> np.ndarray:
        return np.array(
            [self.accuracy(i, dataset, metric, epochs) for i in range(len(self.space))],
            dtype=np.float64,
        )


def load_ground_truth(
    path: str | os.PathLike[str] | None = None, space: NB201Space | None = None
) -> BundledGroundTruth:
    """The NATS-Bench file when given (or set in ``CBRED_NATS_PATH``), else the bundled table."""
    path = path or os.environ.get(NATS_ENV) or None
    if path:
        return NatsBenchGroundTruth(path, space)
    return BundledGroundTruth(space)
