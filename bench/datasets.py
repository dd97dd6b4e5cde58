"""Image data sets of the NB201 benchmark: readers, normalisation and seeded mini-batches.

Readers understand the standard on-disk formats:

* CIFAR-10: ``cifar-10-batches-py/`` with ``data_batch_1..5`` and ``test_batch``;
* CIFAR-100: ``cifar-100-python/`` with ``train`` and ``test`` (fine labels);
* ImageNet16-120: ``train_data_batch_1..10`` and ``val_data`` of the down-sampled
  ImageNet16, keeping the first 120 classes as NB201 does.

Without a root directory, CIFAR-10 falls back to a class-balanced sample of real
CIFAR-10 images shipped in the package (600 train, 200 test), which is all that
training-free statistics need.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from cbred.bench.dataset_names import (  # noqa: F401  (re-exported: the names live there)
    DATASETS,
    NUM_CLASSES,
    RESOLUTION,
    canonical_dataset,
)

DATA_ENV = "CBRED_DATA_ROOT"

# Per-channel mean and standard deviation (0..255 scale), as the benchmark trains with.
MEAN_STD: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "cifar10": ((125.3, 123.0, 113.9), (63.0, 62.1, 66.7)),
    "cifar100": ((129.3, 124.1, 112.4), (68.2, 65.4, 70.4)),
    "imagenet16_120": ((122.68, 116.66, 104.01), (63.22, 61.26, 65.09)),
}


@dataclass(frozen=True)
class ImageDataset:
    """Images as uint8 (N, H, W, 3) RGB with int64 labels in 0..num_classes-1."""

    name: str
    split: str
    images: np.ndarray
    labels: np.ndarray

    @property
    def num_classes(self) -> int:
        return NUM_CLASSES[self.name]

    def __len__(self) -> int:
        return len(self.labels)


def _unpickle(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"data file {str(path)!r} not found")
    try:
        with open(path, "rb") as f:
            data = pickle.load(f, encoding="bytes")
    except Exception as exc:  # any unpickling failure means a corrupt file
        raise ValueError(f"corrupt data file {str(path)!r}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"corrupt data file {str(path)!r}: expected a dict, got {type(data)}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in data.items()}


def _read_batches(paths: list[Path], label_key: str, side: int) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for path in paths:
        batch = _unpickle(path)
        if "data" not in batch or label_key not in batch:
            raise ValueError(
                f"corrupt data file {str(path)!r}: needs keys 'data' and {label_key!r}, "
                f"has {sorted(batch)}"
            )
        data = np.asarray(batch["data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3 * side * side:
            raise ValueError(
                f"corrupt data file {str(path)!r}: data shape {data.shape}, "
                f"expected (N, {3 * side * side})"
            )
        images.append(data.reshape(-1, 3, side, side).transpose(0, 2, 3, 1))
        labels.append(np.asarray(batch[label_key], dtype=np.int64))
        if len(labels[-1]) != len(images[-1]):
            raise ValueError(f"corrupt data file {str(path)!r}: label and image counts differ")
    return np.concatenate(images), np.concatenate(labels)


def _subdir(root: Path, name: str) -> Path:
    return root / name if (root / name).is_dir() else root


def read_cifar10(root: str | os.PathLike[str], split: str = "train") -> ImageDataset:
    """Read CIFAR-10 from ``root`` or ``root/cifar-10-batches-py``."""
    folder = _subdir(Path(root), "cifar-10-batches-py")
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    images, labels = _read_batches([folder / n for n in names], "labels", 32)
    return ImageDataset("cifar10", split, images, labels)


def read_cifar100(root: str | os.PathLike[str], split: str = "train") -> ImageDataset:
    """Read CIFAR-100 (fine labels) from ``root`` or ``root/cifar-100-python``."""
    folder = _subdir(Path(root), "cifar-100-python")
    images, labels = _read_batches([folder / split], "fine_labels", 32)
    return ImageDataset("cifar100", split, images, labels)


def read_imagenet16(
    root: str | os.PathLike[str], split: str = "train", num_classes: int = 120
) -> ImageDataset:
    """Read ImageNet16 and keep classes 1..num_classes (relabelled 0..num_classes-1)."""
    folder = Path(root)
    if split == "train":
        paths = sorted(folder.glob("train_data_batch_*"), key=lambda p: int(p.name.split("_")[-1]))
        if not paths:
            raise FileNotFoundError(f"no train_data_batch_* files in {str(folder)!r}")
    else:
        paths = [folder / "val_data"]
    images, labels = _read_batches(paths, "labels", 16)
    keep = (labels >= 1) & (labels <= num_classes)
    return ImageDataset("imagenet16_120", split, images[keep], labels[keep] - 1)


def bundled_cifar10(split: str = "train") -> ImageDataset:
    """The packaged class-balanced CIFAR-10 sample."""
    path = resources.files("cbred.bench") / "data" / "cifar10_sample.npz"
    with resources.as_file(path) as file, np.load(file) as data:
        return ImageDataset(
            "cifar10", split, data[f"{split}_images"].copy(), data[f"{split}_labels"].copy()
        )


def load_dataset(
    name: str, root: str | os.PathLike[str] | None = None, split: str = "train"
) -> ImageDataset:
    """Load a data set from ``root`` (or ``CBRED_DATA_ROOT``); CIFAR-10 defaults to the sample."""
    name = canonical_dataset(name)
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; expected 'train' or 'test'")
    root = root or os.environ.get(DATA_ENV) or None
    if root is None:
        if name == "cifar10":
            return bundled_cifar10(split)
        raise FileNotFoundError(
            f"{name} is not bundled; set {DATA_ENV} to the folder that holds it (or pass "
            "root= in Python)"
        )
    readers = {
        "cifar10": read_cifar10,
        "cifar100": read_cifar100,
        "imagenet16_120": read_imagenet16,
    }
    return readers[name](root, split)


def normalise(images: np.ndarray, dataset: str) -> torch.Tensor:
    """uint8 (N, H, W, 3) → float32 (N, 3, H, W) standardised with the data set's statistics."""
    mean, std = MEAN_STD[canonical_dataset(dataset)]
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def sample_batch(
    data: ImageDataset, batch_size: int, seed: int, stats: str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A deterministic mini-batch: ``batch_size`` distinct images drawn with ``seed``.

    ``stats`` names the data set whose normalisation to use (default: the data's own).
    """
    if not 1 <= batch_size <= len(data):
        raise ValueError(f"batch size {batch_size} out of range 1..{len(data)} for {data.name}")
    idx = np.sort(np.random.default_rng(seed).choice(len(data), size=batch_size, replace=False))
    x = normalise(data.images[idx], stats or data.name)
    return x, torch.from_numpy(data.labels[idx].copy())


def get_batch(
    dataset: str = "cifar10",
    batch_size: int = 64,
    seed: int = 0,
    root: str | os.PathLike[str] | None = None,
    split: str = "train",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load ``dataset`` and return one seeded, normalised mini-batch ``(x, y)``."""
    return sample_batch(load_dataset(dataset, root, split), batch_size, seed)
