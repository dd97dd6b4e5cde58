"""A reduced search space: the value C-BRED hands to searchers.

A :class:`Subspace` is a set of architecture indices of a space (any object of the contract
in :mod:`reduce.space`), with their ``arch_str`` names and the provenance of the reduction
(features, distance, clusterer, K, η, scoring function, seed, every architecture scored).
Searchers iterate it, sample it uniformly, test membership and walk neighbourhoods inside it.
It saves to JSON (one object) or CSV (``index,arch`` rows under a ``# provenance:`` comment
line) under the space's name (a registered name, or the ``--space`` spec of a user's space),
so that a file names its architectures whatever the space.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from cbred._files import write_text
from cbred.reduce.space import as_rng, index_of, load_space, space_name

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


@dataclass(frozen=True)
class Subspace:
    """Sorted, distinct indices of the space named ``space`` with their names and provenance.

    ``source`` is the space object itself when known (it is not saved; a loaded subspace
    finds its space by name through :func:`reduce.space.load_space` on first need).
    """

    space: str
    indices: np.ndarray
    strings: tuple[str, ...]
    provenance: dict[str, Any] = field(default_factory=dict)
    source: Any = field(default=None, compare=False, repr=False)
    label: str = field(default="", compare=False)

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
    def from_indices(cls, indices: Any, space: Any, provenance: dict | None = None) -> Subspace:
        """Build from any iterable of indices (duplicates dropped) of ``space`` (an object or
        a ``--space`` value)."""
        full = load_space(space, probe=False) if isinstance(space, str) else space
        idx = np.unique(np.asarray(list(indices), dtype=np.int64))
        if idx.size and (idx[0] < 0 or idx[-1] >= len(full)):
            bad = idx[0] if idx[0] < 0 else idx[-1]
            raise IndexError(f"index {bad} out of range 0..{len(full) - 1} of {space_name(full)}")
        strings = tuple(full.arch_str(int(i)) for i in idx)
        return cls(space_name(full), idx, strings, dict(provenance or {}), full)

    @classmethod
    def full(cls, space: Any) -> Subspace:
        """Every architecture of ``space`` (kept on the space, so it is built once)."""
        cached = getattr(space, "_cbred_full", None)
        if isinstance(cached, Subspace) and cached.source is space:
            return cached
        whole = cls.from_indices(range(len(space)), space, {"full_space": True})
        try:
            space._cbred_full = whole
        except AttributeError:
            pass  # a frozen or slotted space rebuilds it next time
        return whole

    @property
    def name(self) -> str:
        """How searches name this subspace: its label, else its space's name."""
        return self.label or self.space

    @property
    def members(self) -> np.ndarray:
        return self.indices

    @property
    def universe_size(self) -> int:
        """The number of architectures of the whole space."""
        return len(self.full_space())

    def full_space(self) -> Any:
        """The space object (the one given, else loaded by name and kept)."""
        if self.source is None:
            object.__setattr__(self, "source", load_space(self.space, probe=False))
        return self.source

    def __len__(self) -> int:
        return int(self.indices.size)

    def __iter__(self) -> Iterator[int]:
        return (int(i) for i in self.indices)

    def __contains__(self, item: object) -> bool:
        """Membership of an index or an architecture's name (or any object whose ``str`` is)."""
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            index = int(item)
        elif item is not None and not isinstance(item, (float, bool)):
            try:
                index = index_of(self.full_space(), str(item))
            except (KeyError, ValueError, IndexError):
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

    def sample(self, n: int, seed: int | np.random.Generator, replace: bool = False) -> np.ndarray:
        """``n`` member indices drawn uniformly with ``seed`` (a seed or a Generator;
        distinct unless ``replace``)."""
        if n < 0 or (not replace and n > len(self)):
            raise ValueError(
                f"cannot draw {n} distinct architectures from a subspace of {len(self)}"
            )
        return as_rng(seed).choice(self.indices, size=n, replace=replace)

    def _mask(self) -> np.ndarray:
        mask = self.__dict__.get("_member_mask")
        if mask is None:
            mask = np.zeros(self.universe_size, dtype=bool)
            mask[self.indices] = True
            object.__setattr__(self, "_member_mask", mask)
        return mask

    def neighbours(self, index: int) -> np.ndarray:
        """Neighbours of ``index`` (any index of the space) that are members: from the space's
        ``neighbour_table()`` when it has one (fast), else its ``neighbours(i)``; none when it
        defines neither."""
        full, index = self.full_space(), int(index)
        if not 0 <= index < len(full):
            raise IndexError(f"index {index} out of range 0..{len(full) - 1}")
        table = self.__dict__.get("_table")
        if table is None and callable(getattr(full, "neighbour_table", None)):
            table = np.asarray(full.neighbour_table(), dtype=np.int64)
            object.__setattr__(self, "_table", table)
        if table is not None:
            row = table[index]
        elif callable(getattr(full, "neighbours", None)):
            row = np.asarray([int(j) for j in full.neighbours(index)], dtype=np.int64)
            row = row[(row >= 0) & (row < len(full))]
        else:
            return np.empty(0, dtype=np.int64)
        return row[self._mask()[row]]

    def random(self, rng: int | np.random.Generator) -> int:
        """One member drawn uniformly (``rng``: a Generator or a seed, as everywhere)."""
        rng = as_rng(rng)
        return int(self.indices[rng.integers(self.indices.size)])

    def mutate(self, index: int, rng: int | np.random.Generator) -> int:
        """A uniformly chosen member neighbour of ``index``; a random member when it has none
        (so a search never leaves its subspace). On NB201: change one edge's operation."""
        rng = as_rng(rng)
        inside = self.neighbours(index)
        if inside.size == 0:
            return self.random(rng)
        return int(inside[rng.integers(inside.size)])

    def restrict(self, keep: Any, name: str | None = None) -> Subspace:
        """The members also in ``keep`` (indices, or a boolean mask over the whole space)."""
        keep = np.asarray(keep)
        if keep.dtype == bool:
            if keep.shape != (self.universe_size,):
                raise ValueError(f"mask has shape {keep.shape}, expected ({self.universe_size},)")
            inside = keep[self.indices]
        else:
            inside = np.isin(self.indices, keep.astype(np.int64))
        if not inside.any():
            raise ValueError(f"restricting {self.name!r} leaves no members")
        strings = tuple(s for s, k in zip(self.strings, inside) if k)
        label = name or f"{self.name}∩"
        return Subspace(
            self.space, self.indices[inside], strings, self.provenance, self.source, label
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "space": self.space,
            "size": len(self),
            "provenance": self.provenance,
            "indices": self.indices.tolist(),
            "strings": list(self.strings),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], space: Any = None) -> Subspace:
        """From :meth:`to_dict` data; the names are checked against ``space`` (default: the
        space the data names, loaded)."""
        if not isinstance(data, dict):
            raise ValueError(
                f"subspace data must be an object with space, indices and strings, got "
                f"{type(data).__name__}"
            )
        missing = {"space", "indices", "strings"} - set(data)
        if missing:
            raise ValueError(f"subspace data lacks {sorted(missing)}")
        if space is not None and space_name(space) != data["space"]:
            raise ValueError(
                f"subspace is of space {data['space']!r}, not of {space_name(space)!r}"
            )
        sub = cls(
            data["space"],
            np.asarray(data["indices"]),
            tuple(data["strings"]),
            dict(data.get("provenance", {})),
            space,
        )
        sub.check_strings()
        return sub

    def check_strings(self) -> None:
        """Raise if a stored name is not the space's ``arch_str`` at its index."""
        full = self.full_space()
        if self.indices[-1] >= len(full):
            raise ValueError(f"index {self.indices[-1]} is beyond the space's {len(full)}")
        for index, text in zip(self.indices, self.strings):
            actual = full.arch_str(int(index))
            if actual != text:
                raise ValueError(f"index {index} is {actual!r}, not {text!r}")

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """The JSON text; written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=1)
        if path is not None:
            write_text(path, text + "\n")
        return text

    @classmethod
    def from_json(cls, source: str | os.PathLike[str], space: Any = None) -> Subspace:
        """Load from a JSON file path or from JSON text (``space`` as in :meth:`from_dict`)."""
        return cls.from_dict(json.loads(_text_of(source, "{")), space)

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
            write_text(path, text)
        return text

    @classmethod
    def from_csv(cls, source: str | os.PathLike[str], space: Any = None) -> Subspace:
        """Load from a CSV file path or CSV text written by :meth:`to_csv`."""
        text = _text_of(source, _PROVENANCE_PREFIX)
        first, _, body = text.partition("\n")
        if not first.startswith(_PROVENANCE_PREFIX):
            raise ValueError(f"subspace CSV must start with {_PROVENANCE_PREFIX.strip()!r}")
        header = json.loads(first[len(_PROVENANCE_PREFIX) :])
        if not isinstance(header, dict) or "space" not in header:
            raise ValueError("subspace CSV provenance must be a JSON object naming its space")
        rows = list(csv.reader(io.StringIO(body)))
        if not rows or rows[0] != ["index", "arch"]:
            raise ValueError("subspace CSV needs an 'index,arch' header row")
        name = header.pop("space")
        if any(len(r) != 2 or not r[0].strip().lstrip("-").isdigit() for r in rows[1:]):
            raise ValueError("subspace CSV rows must be 'index,arch' with an integer index")
        indices = [int(r[0]) for r in rows[1:]]
        strings = [r[1] for r in rows[1:]]
        data = {"space": name, "indices": indices, "strings": strings, "provenance": header}
        return cls.from_dict(data, space)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], space: Any = None) -> Subspace:
        """Load a subspace file written by ``cbred reduce`` (``.json`` or ``.csv``); every
        problem with the file is one error naming it."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"subspace file {str(path)!r} does not exist")
        if path.is_dir():
            raise ValueError(f"subspace file {str(path)!r} is a directory; expected .json or .csv")
        if path.suffix not in (".json", ".csv"):
            raise ValueError(f"subspace file {str(path)!r} must end in .json or .csv")
        loader = cls.from_json if path.suffix == ".json" else cls.from_csv
        try:
            return loader(path, space)
        except (ValueError, UnicodeDecodeError) as exc:  # json.JSONDecodeError is a ValueError
            raise ValueError(f"subspace file {str(path)!r}: {exc}") from None
