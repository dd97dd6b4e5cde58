"""NATS-Bench size space: index order, strings, networks and costs against the official
xautodl implementation, graph features against tracing, ground truth through nats_bench."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from cbred.bench.nats_sss import (
    CANDIDATES,
    GENOTYPE,
    SPACE_SIZE,
    SSS_ENV,
    InvalidSizeArchitectureError,
    NATSSizeSpace,
)
from cbred.cgraph import VOCAB, trace
from nats_sss_fixture import accuracy, official_arch_strings, write_tiny_sss, write_tiny_sss_dir

xmodels = pytest.importorskip("xautodl.models")
flop_benchmark = pytest.importorskip("xautodl.utils.flop_benchmark")


@pytest.fixture(scope="module")
def sss():
    return NATSSizeSpace()


def official(arch: str, num_classes: int = 10) -> torch.nn.Module:
    """xautodl's SSS network, configured as NATS-Bench's main-sss.py does."""
    from xautodl.config_utils import dict2config

    config = {
        "name": "infer.shape.tiny",
        "channels": arch,
        "genotype": GENOTYPE,
        "num_classes": num_classes,
    }
    return xmodels.get_cell_based_tiny_net(dict2config(config, None))


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_size_and_contract(sss):
    assert len(sss) == SPACE_SIZE == 32768
    assert NATSSizeSpace.name == "nats_sss"
    assert sss.input_shape == (1, 3, 32, 32)
    assert sss.channel_matrix.shape == (32768, 5)


def test_index_order_is_the_official_one(sss):
    strings = [sss.arch_str(i) for i in range(len(sss))]
    assert strings == official_arch_strings()
    product = [":".join(map(str, c)) for c in itertools.product(CANDIDATES, repeat=5)]
    assert strings == product  # the last position varies fastest
    assert strings[:2] == ["8:8:8:8:8", "8:8:8:8:16"]
    assert strings[8] == "8:8:8:16:8" and strings[4096] == "16:8:8:8:8"
    assert strings[-1] == "64:64:64:64:64"
    assert all(sss.index(s) == i for i, s in enumerate(strings))
    assert sss.channels(12345) == tuple(int(c) for c in strings[12345].split(":"))


@pytest.mark.parametrize(
    "bad",
    ["8:16:24:32", "8:16:24:32:64:8", "8:16:24:32:65", "08:16:24:32:64", " 8:16:24:32:64",
     "8,16,24,32,64", "a:b:c:d:e", "", "8:16:24:32:-8"],
)  # fmt: skip
def test_bad_strings(sss, bad):
    with pytest.raises(InvalidSizeArchitectureError, match="e.g. '8:16:24:32:64'") as err:
        sss.index(bad)
    assert repr(bad) in str(err.value)


def test_bad_indices(sss):
    for bad in (-1, 32768, 10**9):
        with pytest.raises(ValueError, match="0..32767"):
            sss.arch_str(bad)
        with pytest.raises(IndexError):
            sss.build(bad)
    with pytest.raises(TypeError):
        sss.arch_str(1.0)
    with pytest.raises(InvalidSizeArchitectureError):
        sss.index(8)


def test_neighbours_differ_at_one_position(sss):
    for index in [0, 32767, *sss.sample(20, seed=3)]:
        index = int(index)
        mine = sss.channel_matrix[index]
        neighbours = sss.neighbours(index)
        assert len(neighbours) == len(set(neighbours)) == 35 and index not in neighbours
        diff = (sss.channel_matrix[neighbours] != mine).sum(axis=1)
        assert (diff == 1).all()
        assert all(index in sss.neighbours(n) for n in neighbours[::7])
    assert sss.neighbours("8:8:8:8:8") == sss.neighbours(0)


def test_param_counts_equal_official_on_200_architectures(sss):
    """Analytic counts equal xautodl's networks on 200 architectures, and our built
    networks (same parameter names, in order) on 50 of them."""
    costs = sss.costs()["params"]
    with torch.device("meta"):  # counting only: no real weights
        for k, index in enumerate(sss.sample(200, seed=0)):
            arch = sss.arch_str(int(index))
            theirs = official(arch)
            assert n_params(theirs) == costs[index], arch
            if k % 4 == 0:
                ours = sss.build(int(index))
                assert n_params(ours) == costs[index], arch
                names = [n for n, _ in theirs.named_parameters()]
                assert [n for n, _ in ours.named_parameters()] == names


@pytest.mark.parametrize(
    "arch, classes",
    [("8:16:16:32:32", 10), ("16:24:40:32:64", 10), ("64:8:56:64:16", 100)],
)
def test_outputs_equal_official_with_same_weights(sss, arch, classes):
    torch.manual_seed(0)
    theirs = official(arch, classes)
    ours = sss.build(arch, num_classes=classes)
    ours.load_state_dict(theirs.state_dict())  # same module names, strict
    x = torch.randn(4, 3, 32, 32)
    for train in (True, False):
        theirs.train(train), ours.train(train)
        with torch.no_grad():
            torch.testing.assert_close(ours(x), theirs(x)[1], rtol=1e-5, atol=1e-5)


def test_flops_equal_official(sss):
    costs = sss.costs()
    for index in [0, 32767, *sss.sample(4, seed=1)]:
        arch = sss.arch_str(int(index))
        flops, params = flop_benchmark.get_model_infos(official(arch), (1, 3, 32, 32))
        assert costs["flops"][index] / 1e6 == pytest.approx(flops, rel=1e-12), arch
        assert costs["params"][index] / 1e6 == pytest.approx(params, rel=1e-12)
    arch = "24:40:40:16:56"  # ImageNet16-120 shape
    flops, params = flop_benchmark.get_model_infos(official(arch, 120), (1, 3, 16, 16))
    small = sss.costs(num_classes=120, resolution=16)
    assert small["flops"][sss.index(arch)] / 1e6 == pytest.approx(flops, rel=1e-12)
    assert small["params"][sss.index(arch)] / 1e6 == pytest.approx(params, rel=1e-12)


def test_costs_extremes(sss):
    costs = sss.costs()
    assert costs["params"].dtype == costs["flops"].dtype == np.int64
    assert costs["params"].min() == costs["params"][0] == 11714
    assert costs["params"].max() == costs["params"][-1] == 713674
    assert costs["flops"].min() == 4481114 and costs["flops"].max() == 274399882


def test_features_equal_tracing(sss):
    op_usage, names = sss.features("op_usage")
    flops_usage, flop_names = sss.features("flops_usage")
    assert names == flop_names == VOCAB
    assert op_usage.shape == flops_usage.shape == (32768, len(VOCAB))
    # both width changes, neither, and one of each; then random ones
    picks = ["8:16:24:32:40", "64:8:8:16:16", "8:16:16:40:64", "24:48:8:56:56"]
    indices = [sss.index(a) for a in picks] + [int(i) for i in sss.sample(2, seed=5)]
    for index in indices:
        torch.manual_seed(0)
        graph = trace(sss.build(index), torch.zeros(sss.input_shape))
        ops = np.asarray(graph.kernel_op, dtype=np.int64)
        per_type = np.zeros(len(VOCAB), dtype=np.int64)
        np.add.at(per_type, ops, graph.kernel_flops)
        np.testing.assert_array_equal(flops_usage[index], per_type, err_msg=sss.arch_str(index))
        np.testing.assert_array_equal(op_usage[index], np.bincount(ops, minlength=len(VOCAB)))
    np.testing.assert_array_equal(flops_usage.sum(axis=1), sss.costs()["flops"])
    conv1x1 = op_usage[:, VOCAB.index("conv1x1")]
    c = sss.channel_matrix
    np.testing.assert_array_equal(conv1x1, 2 + (c[:, 1] != c[:, 2]) + (c[:, 3] != c[:, 4]))
    assert (op_usage[:, VOCAB.index("conv3x3")] == 20).all()
    with pytest.raises(ValueError, match="op_usage"):
        sss.features("nope")


def test_build_and_batch(sss):
    torch.manual_seed(1)
    a = sss.build(100)
    torch.manual_seed(1)
    b = sss.build(sss.arch_str(100))
    torch.testing.assert_close(a.state_dict(), b.state_dict())
    x, y = sss.batch(4, seed=0)
    assert x.shape == (4, 3, 32, 32) and y.shape == (4,)
    torch.testing.assert_close(sss.batch(4, seed=0)[0], x)
    assert a(x).shape == (4, 10)
    assert sss.build(100, num_classes=100)(x).shape == (4, 100)


# ----- ground truth


@pytest.fixture(scope="module")
def sss_file(tmp_path_factory):
    return write_tiny_sss(tmp_path_factory.mktemp("sss") / "NATS-sss-tiny.pickle.pbz2", [5, 30000])


@pytest.mark.parametrize(
    "dataset, metric, epochs, nats_name, set_name",
    [
        ("cifar10", "valid", 90, "cifar10-valid", "x-valid"),
        ("cifar10", "test", 12, "cifar10", "ori-test"),
        ("cifar-100", "valid", 1, "cifar100", "x-valid"),
        ("cifar100", "test", 90, "cifar100", "x-test"),
        ("ImageNet16-120", "test", 12, "ImageNet16-120", "x-test"),
    ],
)
def test_nats_backend_reads_official_format(sss_file, dataset, metric, epochs, nats_name, set_name):
    space = NATSSizeSpace(nats_path=sss_file)
    expected = sum(accuracy(30000, nats_name, set_name, epochs, s) for s in (777, 888)) / 2
    assert space.accuracy(30000, dataset, metric, epochs) == pytest.approx(expected)
    arch = space.arch_str(30000)
    assert space.accuracy(arch, dataset, metric, epochs) == pytest.approx(expected)


def test_nats_api_agrees_on_the_index_order(sss_file, sss):
    import nats_bench

    api = nats_bench.create(str(sss_file), "sss", fast_mode=False, verbose=False)
    assert len(api) == len(sss)
    for index in [0, 1, 8, 5, 30000, 32767, *sss.sample(20, seed=7)]:
        assert api.arch(int(index)) == sss.arch_str(int(index))
        assert api.query_index_by_arch(sss.arch_str(int(index))) == index


def test_default_is_the_full_schedule_and_env_var_with_directory(tmp_path, monkeypatch):
    directory = write_tiny_sss_dir(tmp_path / "NATS-sss-tiny-simple", [5])
    monkeypatch.setenv(SSS_ENV, str(directory))
    expected = sum(accuracy(5, "cifar10", "ori-test", 90, s) for s in (777, 888)) / 2
    assert NATSSizeSpace().accuracy(5, "cifar10") == pytest.approx(expected)


def test_bad_ground_truth_requests(sss_file):
    space = NATSSizeSpace(nats_path=sss_file)
    with pytest.raises(ValueError, match="200-epoch"):
        space.accuracy(5, "cifar10", epochs=200)
    with pytest.raises(ValueError, match="metric"):
        space.accuracy(5, "cifar10", metric="train")
    with pytest.raises(ValueError, match="unknown dataset"):
        space.accuracy(5, "svhn")


def test_clear_error_without_a_file(tmp_path, monkeypatch):
    monkeypatch.delenv(SSS_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=f"nats_path=.*{SSS_ENV}") as err:
        NATSSizeSpace().accuracy(0, "cifar10")
    assert "\n" not in str(err.value)
    with pytest.raises(FileNotFoundError, match="nope.pickle.pbz2"):
        NATSSizeSpace(nats_path=tmp_path / "nope.pickle.pbz2").accuracy(0, "cifar10")


def test_flops_usage_matches_the_generic_feature(sss):
    """Same definition as cbred.cgraph.features' ``flops_usage`` (op type -> kernel FLOPs)."""
    features = pytest.importorskip("cbred.cgraph.features")
    index = sss.index("16:24:40:32:64")
    graph = trace(sss.build(index), torch.zeros(sss.input_shape))
    for name in ("op_usage", "flops_usage"):
        generic, columns = features.feature_matrix([graph], name)
        ours, names = sss.features(name)
        assert columns[: len(names)] == names
        np.testing.assert_array_equal(generic[0, : len(names)], ours[index])
