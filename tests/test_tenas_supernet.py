"""The TE-NAS supernet: summed edges, exact removal bookkeeping, single path = NB201 network."""

from __future__ import annotations

import pytest
import torch
from cbred.bench.nb201 import NUM_EDGES, OPS, Arch
from cbred.bench.nb201_network import build_network
from cbred.bench.tenas.supernet import (
    FULL,
    SuperCell,
    SuperNet,
    ThinSuperNet,
    check_alive,
    kaiming_init,
    remove_op,
    single_path,
)
from hypothesis import given, settings
from hypothesis import strategies as st

ARCH = Arch.from_string(
    "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"
)


def _single_path_network(net: SuperNet, arch: Arch, channels: int) -> torch.nn.Module:
    """The NB201 network of ``arch`` carrying the supernet's weights of the alive ops."""
    ref = build_network(arch, channels=channels, cells_per_stage=1)
    state = {}
    for name, value in net.state_dict().items():
        parts = name.split(".")
        if len(parts) > 3 and parts[2] == "edges":
            edge, op = int(parts[3]), parts[4]
            if op != arch.ops[edge]:
                continue
            name = ".".join([*parts[:2], "layers", parts[3], *parts[5:]])
        state[name] = value
    ref.load_state_dict(state, strict=True)
    return ref


@pytest.mark.parametrize("train", [True, False])
def test_single_path_supernet_is_the_nb201_network(train: bool) -> None:
    torch.manual_seed(0)
    net = SuperNet(channels=4, cells_per_stage=1, num_classes=10)
    kaiming_init(net, seed=3, mode="fan_in")
    net.set_alive([(op,) for op in ARCH.ops])
    assert net.single_path() == ARCH
    ref = _single_path_network(net, ARCH, 4)
    net.train(train)
    ref.train(train)
    x = torch.randn(5, 3, 16, 16)
    torch.testing.assert_close(net(x), ref(x), rtol=1e-5, atol=1e-6)


def test_edge_output_is_the_sum_of_its_alive_ops() -> None:
    cell = SuperCell(channels=2)
    # only edge 3, (0 -> 3), feeds the output; it holds skip and average pooling
    cell.alive = check_alive([("none",)] * 3 + [("skip_connect", "avg_pool_3x3")] + [("none",)] * 2)
    x = torch.randn(3, 2, 5, 5)
    pool = torch.nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    torch.testing.assert_close(cell(x), x + pool(x))
    cell.alive = remove_op(cell.alive, 3, "avg_pool_3x3")
    torch.testing.assert_close(cell(x), x)


def test_thin_supernet_shape_and_input_check() -> None:
    thin = ThinSuperNet(channels=1, cells=2)
    assert thin(torch.randn(7, 1, 3, 3)).shape == (7, 9)
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        thin(torch.randn(7, 3, 3, 3))


def test_kaiming_init_is_seeded() -> None:
    a, b = SuperNet(4, 1), SuperNet(4, 1)
    kaiming_init(a, 7, "fan_out")
    kaiming_init(b, 7, "fan_out")
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    kaiming_init(b, 8, "fan_out")
    assert not torch.equal(a.stem[0].weight, b.stem[0].weight)
    with pytest.raises(ValueError, match="fan_in"):
        kaiming_init(a, 0, "fan_avg")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, NUM_EDGES - 1), st.sampled_from(OPS)), max_size=30))
def test_removal_bookkeeping_is_exact(removals: list[tuple[int, str]]) -> None:
    alive, done = FULL, 0
    for edge, op in removals:
        if op in alive[edge] and len(alive[edge]) > 1:
            after = remove_op(alive, edge, op)
            for e in range(NUM_EDGES):
                expected = tuple(o for o in alive[e] if (e, o) != (edge, op))
                assert after[e] == expected
            alive, done = after, done + 1
        else:
            with pytest.raises(ValueError, match=f"edge {edge}"):
                remove_op(alive, edge, op)
    assert sum(len(ops) for ops in alive) == len(OPS) * NUM_EDGES - done
    assert all(ops for ops in alive)


def test_bad_alive_sets_are_rejected() -> None:
    with pytest.raises(ValueError, match="one op set per edge"):
        check_alive([OPS] * 5)
    with pytest.raises(ValueError, match="unknown operations"):
        check_alive([OPS] * 5 + [("conv_5x5",)])
    with pytest.raises(ValueError, match="edge 2 has no operation"):
        check_alive([OPS, OPS, (), OPS, OPS, OPS])
    with pytest.raises(ValueError, match="not a single path: edges"):
        single_path(FULL)
    with pytest.raises(ValueError, match="out of range"):
        remove_op(FULL, 6, "none")
