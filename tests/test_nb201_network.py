"""NB201 network builder: parity with the official xautodl implementation, params and FLOPs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cbred.bench.nb201_network import build_network, count_params_flops, space_costs

xmodels = pytest.importorskip("xautodl.models")
flop_benchmark = pytest.importorskip("xautodl.utils.flop_benchmark")


def official(arch: str, channels: int = 16, cells: int = 5, classes: int = 10):
    from xautodl.config_utils import dict2config

    config = {
        "name": "infer.tiny",
        "C": channels,
        "N": cells,
        "arch_str": arch,
        "num_classes": classes,
    }
    return xmodels.get_cell_based_tiny_net(dict2config(config, None))


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_param_counts_equal_official_on_200_architectures(space):
    for index in space.sample(200, seed=0):
        arch = space.string(int(index))
        ours = build_network(arch)
        assert n_params(ours) == n_params(official(arch)), arch
        assert n_params(ours) == count_params_flops(arch)[0]


@pytest.mark.parametrize("channels, cells, classes", [(16, 5, 10), (8, 2, 100), (4, 1, 120)])
def test_outputs_equal_official_with_same_weights(space, channels, cells, classes):
    torch.manual_seed(0)
    x = torch.randn(3, 3, 32, 32)
    for index in space.sample(8, seed=channels):
        arch = space.string(int(index))
        theirs = official(arch, channels, cells, classes).eval()
        ours = build_network(arch, channels, cells, classes).eval()
        ours.load_state_dict(theirs.state_dict())  # same module names, strict
        with torch.no_grad():
            assert torch.allclose(ours(x), theirs(x)[1], atol=1e-5, rtol=1e-5), arch


def test_flops_equal_official(space):
    for index in space.sample(30, seed=1):
        arch = space.string(int(index))
        flops, params = flop_benchmark.get_model_infos(official(arch), (1, 3, 32, 32))
        ours_params, ours_flops = count_params_flops(arch)
        assert ours_flops / 1e6 == pytest.approx(flops, rel=1e-12), arch
        assert ours_params / 1e6 == pytest.approx(params, rel=1e-12)


def test_space_costs_extremes(space):
    params, flops = space_costs(space)
    # NB201's CIFAR-10 range: 0.073 M .. 1.531 M params, 7.78 .. 220.12 MFLOPs.
    assert params.min() == 73306 and params.max() == 1531546
    assert flops.min() == 7783050 and flops.max() == 220119690
    assert np.argmax(params) == np.argmax(flops)


def test_resolution_and_classes_change_flops():
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_3x3~2|"
    p10, f32 = count_params_flops(arch, num_classes=10)
    p120, f16 = count_params_flops(arch, num_classes=120, resolution=16)
    assert p120 - p10 == 110 * 64 + 110
    assert f16 < f32 / 3


def test_dead_cell_gives_finite_constant_output():
    net = build_network("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", 4, 1).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, 32, 32))
    assert torch.isfinite(out).all()


def test_bad_builder_arguments():
    with pytest.raises(ValueError, match="channels"):
        build_network(0, channels=0)
    with pytest.raises(IndexError, match="99999"):
        build_network(99999)


def test_reference_cells_differ_from_the_official_only_in_the_bias() -> None:
    """cell_affine=False (the zero-cost-proxy code's cells): conv bias, BN without affine;
    same logits and weight gradients for the same weights, a different Fisher value."""
    from cbred import proxies
    from cbred.bench.datasets import get_batch

    arch = "|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    official = build_network(arch, channels=4, cells_per_stage=1)
    reference = build_network(arch, channels=4, cells_per_stage=1, cell_affine=False)
    convs = [m for m in reference.cells[0].modules() if isinstance(m, torch.nn.Conv2d)]
    norms = [m for m in reference.cells[0].modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert convs and all(c.bias is not None for c in convs) and not any(n.affine for n in norms)
    missing, unexpected = reference.load_state_dict(official.state_dict(), strict=False)
    assert missing and all(k.endswith(".op.1.bias") for k in missing)  # the conv biases
    assert unexpected and all(".op.2." in k for k in unexpected)  # the BN affine parameters
    x, y = get_batch("cifar10", batch_size=8, seed=0)
    official.train(), reference.train()
    torch.testing.assert_close(reference(x), official(x), rtol=1e-4, atol=1e-5)
    stats = ["grad_norm", "snip", "naswot", "fisher"]
    a, b = proxies.score(official, (x, y), stats), proxies.score(reference, (x, y), stats)
    for name in ("grad_norm", "snip", "naswot"):
        assert b[name] == pytest.approx(a[name], rel=1e-4), name
    assert b["fisher"] != pytest.approx(a["fisher"], rel=1e-3)
