"""The Subspace value: members, sampling, neighbours and JSON/CSV round trips."""

from __future__ import annotations

import numpy as np
import pytest
from cbred.bench.nb201 import NB201Space, default_space
from cbred.reduce.subspace import Subspace
from hypothesis import given, settings
from hypothesis import strategies as st


@pytest.fixture(scope="module")
def space() -> NB201Space:
    return default_space()


@pytest.fixture(scope="module")
def subspace(space) -> Subspace:
    anchor = 1234
    members = [anchor, *space.neighbours(anchor)[:10], 15624, 0]
    return Subspace.from_indices(members, space, {"distance": "hellinger", "K": 9, "eta": 0.1})


def test_members_are_sorted_with_their_strings(subspace, space) -> None:
    assert len(subspace) == 13
    assert list(subspace) == sorted(subspace)
    assert all(subspace.string(i) == space.string(i) for i in subspace)
    assert subspace.strings[0] == space.string(0)


def test_membership_by_index_string_and_arch(subspace, space) -> None:
    assert 1234 in subspace and np.int64(0) in subspace
    assert space.string(1234) in subspace and space.arch(15624) in subspace
    outside = next(i for i in range(len(space)) if i not in set(subspace))
    assert outside not in subspace and space.string(outside) not in subspace
    assert "not a cell" not in subspace and 3.5 not in subspace
    with pytest.raises(KeyError, match="not in this subspace"):
        subspace.string(outside)


def test_neighbours_stay_inside(subspace, space) -> None:
    inside = subspace.neighbours(1234)
    assert sorted(inside) == sorted(space.neighbours(1234)[:10])
    assert all(j in subspace for j in subspace.neighbours(0))


def test_sample_is_uniform_seeded_and_within(subspace) -> None:
    draw = subspace.sample(5, seed=3)
    assert np.array_equal(draw, subspace.sample(5, seed=3))
    assert len(set(draw.tolist())) == 5 and all(int(i) in subspace for i in draw)
    counts = np.bincount(np.searchsorted(subspace.indices, subspace.sample(13000, 0, True)))
    assert counts.min() > 850 and counts.max() < 1150  # 1000 expected per member
    with pytest.raises(ValueError, match="cannot draw 14"):
        subspace.sample(14, seed=0)


def test_json_and_csv_round_trip(subspace, tmp_path) -> None:
    assert Subspace.from_json(subspace.to_json()) == subspace
    subspace.to_json(tmp_path / "s.json")
    assert Subspace.from_json(tmp_path / "s.json") == subspace
    subspace.to_csv(tmp_path / "s.csv")
    loaded = Subspace.from_csv(tmp_path / "s.csv")
    assert loaded == subspace and loaded.provenance["eta"] == 0.1
    assert (tmp_path / "s.csv").read_text().splitlines()[1] == "index,arch"


def test_provenance_is_kept_json_native(space) -> None:
    sub = Subspace.from_indices([1, 2], space, {"k": np.int64(3), "curve": np.array([0.5, 1.0])})
    assert sub.provenance == {"k": 3, "curve": [0.5, 1.0]}
    with pytest.raises(TypeError, match="not JSON data"):
        Subspace.from_indices([1], space, {"bad": object()})


def test_bad_subspaces_are_rejected(space, subspace) -> None:
    with pytest.raises(IndexError, match="out of range"):
        Subspace.from_indices([0, 15625], space)
    with pytest.raises(ValueError, match="at least one"):
        Subspace.from_indices([], space)
    with pytest.raises(ValueError, match="unknown space"):
        Subspace.from_indices([0], "nb101")
    tampered = subspace.to_dict()
    tampered["strings"][0] = space.string(1)
    with pytest.raises(ValueError, match="index 0 is"):
        Subspace.from_dict(tampered)
    with pytest.raises(ValueError, match="provenance"):
        Subspace.from_csv("index,arch\n0,x\n")


@settings(max_examples=20, deadline=None)
@given(st.sets(st.integers(0, 15624), min_size=1, max_size=40))
def test_round_trip_property(indices) -> None:
    sub = Subspace.from_indices(indices, "nb201", {"seed": 1})
    assert Subspace.from_csv(sub.to_csv()) == sub == Subspace.from_json(sub.to_json())
    assert set(sub) == indices
