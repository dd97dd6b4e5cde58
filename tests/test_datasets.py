"""Data sets: readers of the standard formats (tiny files written here), sample, batches."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from cbred.bench.datasets import (
    MEAN_STD,
    bundled_cifar10,
    get_batch,
    load_dataset,
    normalise,
    read_cifar10,
    read_cifar100,
    read_imagenet16,
    sample_batch,
)


def _dump(path, obj, byte_keys=True):
    if byte_keys:
        obj = {k.encode(): v for k, v in obj.items()}
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def _flat(images):
    return images.transpose(0, 3, 1, 2).reshape(len(images), -1)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_cifar10_reader(tmp_path, rng):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    images = rng.integers(0, 256, size=(12, 32, 32, 3), dtype=np.uint8)
    labels = list(range(10)) + [3, 4]
    for i in range(1, 6):
        _dump(folder / f"data_batch_{i}", {"data": _flat(images[:2]), "labels": labels[:2]})
    _dump(folder / "test_batch", {"data": _flat(images), "labels": labels})
    train = read_cifar10(tmp_path, "train")
    test = load_dataset("cifar10", tmp_path, "test")
    assert train.images.shape == (10, 32, 32, 3) and len(test) == 12
    assert np.array_equal(test.images, images) and test.labels.tolist() == labels
    assert test.num_classes == 10


def test_cifar100_reader_uses_fine_labels(tmp_path, rng):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    images = rng.integers(0, 256, size=(5, 32, 32, 3), dtype=np.uint8)
    batch = {"data": _flat(images), "fine_labels": [99, 0, 5, 7, 42], "coarse_labels": [1] * 5}
    _dump(folder / "train", batch)
    data = read_cifar100(tmp_path, "train")
    assert data.labels.tolist() == [99, 0, 5, 7, 42] and np.array_equal(data.images, images)


def test_imagenet16_keeps_first_120_classes(tmp_path, rng):
    images = rng.integers(0, 256, size=(6, 16, 16, 3), dtype=np.uint8)
    labels = [1, 120, 121, 1000, 60, 2]
    _dump(
        tmp_path / "train_data_batch_1",
        {"data": _flat(images[:3]), "labels": labels[:3]},
        byte_keys=False,
    )
    _dump(
        tmp_path / "train_data_batch_2",
        {"data": _flat(images[3:]), "labels": labels[3:]},
        byte_keys=False,
    )
    data = read_imagenet16(tmp_path, "train")
    assert data.labels.tolist() == [0, 119, 59, 1]
    assert np.array_equal(data.images, images[[0, 1, 4, 5]])


def test_corrupt_and_missing_files(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    (folder / "train").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="corrupt data file .*train"):
        read_cifar100(tmp_path)
    _dump(folder / "test", {"data": np.zeros((2, 100), np.uint8), "fine_labels": [0, 1]})
    with pytest.raises(ValueError, match=r"data shape \(2, 100\)"):
        read_cifar100(tmp_path, "test")
    with pytest.raises(FileNotFoundError, match="data_batch_1"):
        read_cifar10(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="not bundled"):
        load_dataset("cifar100")
    with pytest.raises(ValueError, match="'valid'"):
        load_dataset("cifar10", split="valid")


def test_bundled_sample_is_real_and_balanced():
    train, test = bundled_cifar10("train"), bundled_cifar10("test")
    assert train.images.shape == (600, 32, 32, 3) and train.images.dtype == np.uint8
    assert np.bincount(train.labels).tolist() == [60] * 10
    assert np.bincount(test.labels).tolist() == [20] * 10
    assert 80 < train.images.mean() < 160  # natural images, not noise or zeros


def test_normalisation():
    images = np.zeros((1, 2, 2, 3), dtype=np.uint8)
    images[..., 0] = 255
    x = normalise(images, "cifar100")
    mean, std = MEAN_STD["cifar100"]
    assert x.shape == (1, 3, 2, 2) and x.dtype == torch.float32
    assert x[0, 0, 0, 0].item() == pytest.approx((255 - mean[0]) / std[0])
    assert x[0, 2, 1, 1].item() == pytest.approx(-mean[2] / std[2])


def test_batches_are_deterministic_by_seed():
    x1, y1 = get_batch("cifar10", 16, seed=5)
    x2, y2 = get_batch("cifar10", 16, seed=5)
    x3, _ = get_batch("cifar10", 16, seed=6)
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and not torch.equal(x1, x3)
    assert x1.shape == (16, 3, 32, 32) and abs(x1.mean().item()) < 0.5
    with pytest.raises(ValueError, match="batch size 601"):
        sample_batch(bundled_cifar10(), 601, seed=0)
