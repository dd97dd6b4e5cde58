"""Data set names, classes and resolutions, importable without torch (the CLI's ``--help``)."""

from __future__ import annotations

DATASETS: tuple[str, ...] = ("cifar10", "cifar100", "imagenet16_120")
_DATASET_ALIASES = {
    "cifar10": "cifar10",
    "cifar-10": "cifar10",
    "cifar100": "cifar100",
    "cifar-100": "cifar100",
    "imagenet16_120": "imagenet16_120",
    "imagenet16-120": "imagenet16_120",
    "imagenet16": "imagenet16_120",
}


def canonical_dataset(name: str) -> str:
    """Normalise a dataset name (``'ImageNet16-120'`` → ``'imagenet16_120'``) or raise."""
    key = str(name).lower()
    if key not in _DATASET_ALIASES:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    return _DATASET_ALIASES[key]


NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet16_120": 120}
RESOLUTION = {"cifar10": 32, "cifar100": 32, "imagenet16_120": 16}
