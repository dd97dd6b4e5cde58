"""NB201 space: strings, indices, enumeration, neighbours, isomorphism classes."""

from __future__ import annotations

import numpy as np
import pytest
from cbred.bench.nb201 import (
    EDGES,
    NUM_ISOMORPHISM_CLASSES,
    OPS,
    SPACE_SIZE,
    Arch,
    InvalidArchitectureError,
    parse_arch,
)
from hypothesis import given, settings
from hypothesis import strategies as st

archs = st.tuples(*[st.sampled_from(OPS)] * len(EDGES)).map(Arch)
BEST_C10 = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
    "|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
)


@settings(max_examples=200, deadline=None)
@given(archs)
def test_string_round_trip(arch):
    text = str(arch)
    assert Arch.from_string(text) == arch
    assert Arch.from_code(arch.code) == arch
    assert text.count("~") == 6 and text.count("+") == 2


def test_string_format_matches_benchmark():
    arch = Arch.from_string(BEST_C10)
    assert arch.ops == (
        "nor_conv_3x3",
        "nor_conv_3x3",
        "nor_conv_3x3",
        "skip_connect",
        "nor_conv_3x3",
        "nor_conv_1x1",
    )
    assert arch.edge_op(0, 3) == "skip_connect" and arch.edge_op(2, 3) == "nor_conv_1x1"
    assert str(arch) == BEST_C10


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "'conv'"),
        ("|none~0|+|none~0|none~1|", "3 node groups"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 needs 2"),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|none~1|", "from node 2, not 1"),
        ("|none-0|+|none~0|none~1|+|none~0|none~1|none~2|", "malformed edge 'none-0'"),
        ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "must start and end"),
        ("", "3 node groups"),
    ],
)
def test_invalid_strings_name_the_problem(text, fragment):
    with pytest.raises(InvalidArchitectureError, match=fragment.replace("|", r"\|")):
        Arch.from_string(text)


def test_invalid_op_list_and_types():
    with pytest.raises(InvalidArchitectureError, match="6 edges"):
        Arch(("none",) * 5)
    with pytest.raises(InvalidArchitectureError, match="float"):
        parse_arch(1.5)  # type: ignore[arg-type]


def test_index_order_is_nats_bench(space):
    # Row 0 and the known optimum of the official table.
    assert space.string(0) == (
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|"
        "skip_connect~2|"
    )
    assert space.index(BEST_C10) == 6111
    assert space.index(space.arch(12345)) == 12345


def test_indices_out_of_range(space):
    for bad in (-1, SPACE_SIZE, 10**9):
        with pytest.raises(IndexError, match=str(bad)):
            space.arch(bad)


def test_enumeration_covers_every_cell_once(space):
    codes = {a.code for a in space}
    assert len(space) == SPACE_SIZE == len(codes) == 15625
    assert space.op_matrix.shape == (SPACE_SIZE, 6)
    assert np.array_equal(space.op_matrix[42], space.arch(42).op_indices)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, SPACE_SIZE - 1))
def test_neighbours_differ_on_one_edge(space, index):
    arch = space.arch(index)
    neighbours = space.neighbours(index)
    assert len(neighbours) == len(set(neighbours)) == 24
    for n in neighbours:
        diff = sum(a != b for a, b in zip(arch.ops, space.arch(n).ops))
        assert diff == 1


def test_isomorphism_class_count(space):
    assert len(np.unique(space.isomorphism_classes)) == NUM_ISOMORPHISM_CLASSES == 6466


@settings(max_examples=100, deadline=None)
@given(archs, st.sampled_from(OPS), st.sampled_from(OPS))
def test_unreachable_operations_do_not_change_the_key(arch, op_a, op_b):
    # With edge 0->1 removed, node 1 is zero: the ops on its out-edges (1->2, 1->3) are dead.
    cut = arch.with_op(0, "none")
    variant = cut.with_op(2, op_a).with_op(4, op_b)
    assert variant.isomorphism_key() == cut.isomorphism_key()


@settings(max_examples=100, deadline=None)
@given(archs)
def test_skip_is_identity_in_the_key(arch):
    # A skip from node 0 into node 1 makes node 1 the input itself: its out-edges then
    # read the same value as edges from node 0, so swapping the ops on 1->3 and 0->3 keeps it.
    base = arch.with_op(0, "skip_connect")
    swapped = base.with_op(3, base.ops[4]).with_op(4, base.ops[3])
    assert swapped.isomorphism_key() == base.isomorphism_key()


def test_key_agrees_with_official_implementation(space):
    genotypes = pytest.importorskip("xautodl.models.cell_searchs.genotypes")
    official = [
        genotypes.Structure.str2structure(str(a)).to_unique_str(consider_zero=True) for a in space
    ]
    ours = [a.isomorphism_key() for a in space]
    assert ours == official


def test_has_path():
    assert not Arch(("none",) * 6).has_path()
    assert Arch(("none", "none", "none", "skip_connect", "none", "none")).has_path()
    assert not Arch(("nor_conv_3x3", "none", "none", "none", "none", "avg_pool_3x3")).has_path()


def test_sample_is_seeded(space):
    assert np.array_equal(space.sample(10, seed=3), space.sample(10, seed=3))
    assert not np.array_equal(space.sample(10, seed=3), space.sample(10, seed=4))
    with pytest.raises(ValueError, match="20000"):
        space.sample(20000, seed=0)
