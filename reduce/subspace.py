"""A reduced search space: the value C-BRED hands to searchers.

A :class:`Subspace` is a set of architecture indices of a named space, with their
cell strings and the provenance of the reduction (distance, clusterer, K, η,
scoring function, seed, ...).  Searchers iterate it, sample it uniformly, test
membership and walk one-edge neighbourhoods inside it.  It saves to JSON (one
object) or CSV (``index,arch`` rows under a ``# provenance:`` comment line).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from cbred.bench.nb201 import Arch, NB201Space, parse_arch

_PROVENANCE_PREFIX = "# provenance: "


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"provenance value {value!r} of type {type(value).__name__} is not JSON data")


def _text_of(source: str | os.PathLike[str], opening: str) -> str:
    """``source`` itself when it is text (multi-line or starting with ``opening``), else the
    contents of the file it names."""
    if isinstance(source, str) and ("\n" in source or source.lstrip().startswith(opening)):
        return source
    return Path(source).read_text()


@lru_cache(maxsize=1)
def _nb201() -> NB201Space:
    return NB201Space()


def space_by_name(name: str) -> NB201Space:
    """The search space called ``name`` (only ``nb201`` exists so far)."""
    if name != NB201Space.name:
        raise ValueError(f"unknown search space {name!r}; expected {NB201Space.name!r}")
    return _nb201()


@dataclass(frozen=True)
class Subspace:
    """Sorted, distinct indices of ``space`` with their strings and provenance."""

    space: str
    indices: np.ndarray
    strings: tuple[str, ...]
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        idx = np.asarray(self.indices, dtype=np.int64).reshape(-1)
        if idx.size == 0:
            raise ValueError("a subspace needs at least one architecture")
        if np.any(np.diff(idx) <= 0):
            raise ValueError("subspace indices must be sorted and distinct")
        if len(self.strings) != idx.size:
            raise ValueError(f"{len(self.strings)} strings for {idx.size} indices")
        object.__setattr__(self, "indices", idx)
        object.__setattr__(self, "strings", tuple(self.strings))
        # Provenance is kept JSON-native so that it survives a save/load unchanged.
        plain = json.loads(json.dumps(self.provenance, default=_plain))
        object.__setattr__(self, "provenance", plain)

    @classmethod
    def from_indices(
        cls, indices: Any, space: NB201Space | str = "nb201", provenance: dict | None = None
    ) -> Subspace:
        """Build from any iterable of indices (duplicates dropped) of ``space``."""
        full = space_by_name(space) if isinstance(space, str) else space
        idx = np.unique(np.asarray(list(indices), dtype=np.int64))
        if idx.size and (idx[0] < 0 or idx[-1] >= len(full)):
            bad = idx[0] if idx[0] < 0 else idx[-1]
            raise IndexError(f"index {bad} out of range 0..{len(full) - 1} of {full.name}")
        return cls(full.name, idx, tuple(full.string(int(i)) for i in idx), dict(provenance or {}))

    def full_space(self) -> NB201Space:
        return space_by_name(self.space)

    def __len__(self) -> int:
        return int(self.indices.size)

    def __iter__(self) -> Iterator[int]:
        return (int(i) for i in self.indices)

    def __contains__(self, item: object) -> bool:
        """Membership of an index, a cell string or an :class:`Arch`."""
        if isinstance(item, (int, np.integer)):
            index = int(item)
        elif isinstance(item, (str, Arch)):
            try:
                index = self.full_space().index(parse_arch(item))
            except ValueError:
                return False
        else:
            return False
        position = np.searchsorted(self.indices, index)
        return bool(position < self.indices.size and self.indices[position] == index)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Subspace):
            return NotImplemented
        return (
            self.space == other.space
            and np.array_equal(self.indices, other.indices)
            and self.strings == other.strings
            and self.provenance == other.provenance
        )

    __hash__ = None  # type: ignore[assignment]

    def string(self, index: int) -> str:
        """Cell string of a member index."""
        position = np.searchsorted(self.indices, index)
        if position >= self.indices.size or self.indices[position] != index:
            raise KeyError(f"index {index} is not in this subspace")
        return self.strings[int(position)]

    def sample(self, n: int, seed: int, replace: bool = False) -> np.ndarray:
        """``n`` member indices drawn uniformly with ``seed`` (distinct unless ``replace``)."""
        if n < 0 or (not replace and n > len(self)):
            raise ValueError(
                f"cannot draw {n} distinct architectures from a subspace of {len(self)}"
            )
        return np.random.default_rng(seed).choice(self.indices, size=n, replace=replace)

    def neighbours(self, index: int) -> list[int]:
        """One-edge neighbours of ``index`` (need not be a member) that are members."""
        return [j for j in self.full_space().neighbours(int(index)) if j in self]

    def to_dict(self) -> dict[str, Any]:
        return {
            "space": self.space,
            "size": len(self),
            "provenance": self.provenance,
            "indices": self.indices.tolist(),
            "strings": list(self.strings),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Subspace:
        missing = {"space", "indices", "strings"} - set(data)
        if missing:
            raise ValueError(f"subspace data lacks {sorted(missing)}")
        sub = cls(
            data["space"],
            np.asarray(data["indices"]),
            tuple(data["strings"]),
            dict(data.get("provenance", {})),
        )
        sub.check_strings()
        return sub

    def check_strings(self) -> None:
        """Raise if a stored string is not the space's string at its index."""
        full = self.full_space()
        for index, text in zip(self.indices, self.strings):
            if full.string(int(index)) != text:
                raise ValueError(f"index {index} is {full.string(int(index))!r}, not {text!r}")

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """The JSON text; written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=1)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    @classmethod
    def from_json(cls, source: str | os.PathLike[str]) -> Subspace:
        """Load from a JSON file path or from JSON text."""
        return cls.from_dict(json.loads(_text_of(source, "{")))

    def to_csv(self, path: str | os.PathLike[str] | None = None) -> str:
        """CSV text (``index,arch`` rows under a provenance comment); written to ``path``."""
        buffer = io.StringIO()
        header = {"space": self.space, **self.provenance}
        buffer.write(_PROVENANCE_PREFIX + json.dumps(header) + "\n")
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["index", "arch"])
        writer.writerows(zip(self.indices.tolist(), self.strings))
        text = buffer.getvalue()
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_csv(cls, source: str | os.PathLike[str]) -> Subspace:
        """Load from a CSV file path or CSV text written by :meth:`to_csv`."""
        text = _text_of(source, _PROVENANCE_PREFIX)
        first, _, body = text.partition("\n")
        if not first.startswith(_PROVENANCE_PREFIX):
            raise ValueError(f"subspace CSV must start with {_PROVENANCE_PREFIX.strip()!r}")
        header = json.loads(first[len(_PROVENANCE_PREFIX) :])
        rows = list(csv.reader(io.StringIO(body)))
        if not rows or rows[0] != ["index", "arch"]:
            raise ValueError("subspace CSV needs an 'index,arch' header row")
        space = header.pop("space")
        indices = [int(r[0]) for r in rows[1:]]
        strings = [r[1] for r in rows[1:]]
        return cls.from_dict(
            {"space": space, "indices": indices, "strings": strings, "provenance": header}
        )
