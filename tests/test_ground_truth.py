"""Ground truth: the bundled table and the NATS-Bench backend on a tiny official-format file."""

from __future__ import annotations

import pytest
from cbred.bench.ground_truth import (
    NATS_ENV,
    BundledGroundTruth,
    NatsBenchGroundTruth,
    canonical_dataset,
    load_ground_truth,
)
from nats_fixture import accuracy, write_tiny_nats


@pytest.fixture(scope="module")
def truth(space):
    return BundledGroundTruth(space)


def test_published_optima(truth):
    assert truth.accuracies("cifar10").max() == pytest.approx(94.37, abs=0.005)
    assert truth.accuracies("cifar100").max() == pytest.approx(73.51, abs=0.005)
    assert truth.accuracies("imagenet16_120").max() == pytest.approx(47.31, abs=0.005)
    assert truth.accuracies("cifar100").mean() == pytest.approx(61.41, abs=0.01)


def test_lookup_by_index_string_and_arch(truth, space):
    arch = space.arch(1)
    assert truth.accuracy(1, "cifar10") == pytest.approx(93.66)
    assert truth.accuracy(str(arch), "cifar-100") == truth.accuracy(arch, "cifar100")
    assert truth.accuracy(1, "ImageNet16-120") == pytest.approx(44.0333)


def test_bad_requests(truth):
    with pytest.raises(ValueError, match="'mnist'"):
        truth.accuracy(0, "mnist")
    with pytest.raises(ValueError, match="valid"):
        truth.accuracy(0, "cifar10", metric="valid")
    with pytest.raises(ValueError, match="12-epoch"):
        truth.accuracies("cifar10", epochs=12)
    with pytest.raises(IndexError, match="15625"):
        truth.accuracy(15625, "cifar10")
    with pytest.raises(ValueError, match="unknown dataset"):
        canonical_dataset("svhn")


@pytest.fixture(scope="module")
def nats_file(tmp_path_factory, space):
    path = tmp_path_factory.mktemp("nats") / "NATS-tss-tiny.pickle.pbz2"
    return write_tiny_nats(path, [space.string(i) for i in range(len(space))], [3, 7])


@pytest.mark.parametrize(
    "dataset, metric, epochs, nats_name, set_name",
    [
        ("cifar10", "valid", 200, "cifar10-valid", "x-valid"),
        ("cifar10", "test", 12, "cifar10", "ori-test"),
        ("cifar100", "valid", 12, "cifar100", "x-valid"),
        ("cifar100", "test", 200, "cifar100", "x-test"),
        ("imagenet16_120", "test", 200, "ImageNet16-120", "x-test"),
    ],
)
def test_nats_backend_reads_official_format(
    nats_file, space, dataset, metric, epochs, nats_name, set_name
):
    truth = NatsBenchGroundTruth(nats_file, space)
    expected = sum(accuracy(7, nats_name, set_name, epochs, s) for s in (777, 888)) / 2
    assert truth.accuracy(7, dataset, metric, epochs) == pytest.approx(expected)
    assert truth.accuracy(space.string(7), dataset, metric, epochs) == pytest.approx(expected)


def test_environment_variable_selects_nats(nats_file, space, monkeypatch):
    monkeypatch.setenv(NATS_ENV, str(nats_file))
    assert isinstance(load_ground_truth(space=space), NatsBenchGroundTruth)
    monkeypatch.delenv(NATS_ENV)
    assert type(load_ground_truth(space=space)) is BundledGroundTruth


def test_missing_nats_file(tmp_path, space):
    with pytest.raises(FileNotFoundError, match="nope.pickle.pbz2"):
        load_ground_truth(tmp_path / "nope.pickle.pbz2", space)
