"""The search-space contract, and how a space is named on the command line.

A space is any object with

* ``__len__()`` — the number of architectures, indexed ``0..len-1``;
* ``arch_str(i) -> str`` — a stable, unique name of architecture ``i``;
* ``build(i) -> torch.nn.Module`` — a freshly initialised network (PyTorch's global RNG
  draws the weights, so callers seed it);
* ``input_shape`` — the shape of one input, batch dimension included, e.g. ``(1, 3, 32, 32)``;

and optionally ``neighbours(i)`` (one-step mutations for REA/AREA; without it a mutation
draws a random member), ``batch(size, seed) -> (inputs, targets)`` (data for data-dependent
statistics), ``accuracy(i, dataset) -> float`` (ground truth, only to evaluate), ``name``,
``index(arch_str)``, and richer capabilities where a space has them (``op_counts()`` and
``edit_matrix()`` for distances, ``features(name)``, ``costs()``, ``setting_key``).

:func:`load_space` turns a ``--space`` value into such an object: the name of a space
registered under the entry-point group ``cbred.spaces`` (cbred's own built-in spaces are
registered there too, so generic code never names one), ``package.module:OBJECT``, or
``path/to/file.py:OBJECT``. ``OBJECT`` may be an instance, a class or a function without
required arguments. Every way a value can be wrong raises :class:`SpaceError` with one line
naming the value and what was expected.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

ENTRY_POINT_GROUP = "cbred.spaces"
REQUIRED = ("__len__", "arch_str", "build", "input_shape")


class SpaceError(ValueError):
    """A ``--space`` value or a space object that does not meet the contract."""


@runtime_checkable
class Space(Protocol):
    """The smallest search space cbred works with (see the module docstring)."""

    input_shape: tuple[int, ...]

    def __len__(self) -> int: ...

    def arch_str(self, i: int) -> str: ...

    def build(self, i: int) -> Any: ...


def registered_spaces() -> dict[str, Any]:
    """Entry points of the ``cbred.spaces`` group by name (installed packages, cbred too)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def space_name(space: Any) -> str:
    """The name a space goes by in stores and subspace files: its ``name``, else its spec."""
    name = getattr(space, "name", None) or getattr(space, "spec", None)
    return str(name) if name else type(space).__name__


def _import_file(path: Path, spec: str) -> Any:
    """Import ``path`` as a module named after its file, as ``python -m`` would from its folder.

    Its folder goes on ``sys.path`` so that worker processes (spawned, they inherit
    ``sys.path``) unpickle the space's classes by reference.
    """
    if not path.is_file():
        raise SpaceError(f"--space {spec!r}: file {str(path)!r} does not exist")
    name = path.stem
    folder = str(path.resolve().parent)
    loaded = sys.modules.get(name)
    if (
        loaded is not None
        and Path(getattr(loaded, "__file__", "") or "").resolve() == path.resolve()
    ):
        return loaded
    if loaded is None and name.isidentifier():
        if folder not in sys.path:
            sys.path.insert(0, folder)
        module_spec = importlib.util.spec_from_file_location(name, path)
    else:  # a module of that name is already imported: load under a private name
        name = f"_cbred_space_{abs(hash(str(path.resolve())))}"
        module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise SpaceError(f"--space {spec!r}: cannot import {str(path)!r} as Python")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise SpaceError(
            f"--space {spec!r}: importing {str(path)!r} raised {type(exc).__name__}: {exc}"
        ) from exc
    return module


def _import_module(name: str, spec: str) -> Any:
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # like `python -m`: the current folder first
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise SpaceError(
            f"--space {spec!r}: no module {exc.name!r}; expected package.module:OBJECT, "
            "path/to/file.py:OBJECT or a registered space name "
            f"({', '.join(sorted(registered_spaces())) or 'none registered'})"
        ) from exc
    except Exception as exc:
        raise SpaceError(
            f"--space {spec!r}: importing {name!r} raised {type(exc).__name__}: {exc}"
        ) from exc


def _resolve(spec: str) -> Any:
    """The object a spec names, before instantiation."""
    registry = registered_spaces()
    if spec in registry:
        try:
            return registry[spec].load()
        except Exception as exc:
            raise SpaceError(
                f"--space {spec!r}: loading the registered space raised {type(exc).__name__}: {exc}"
            ) from exc
    location, sep, attribute = spec.rpartition(":")
    if not sep or not location or not attribute:
        raise SpaceError(
            f"--space {spec!r}: unknown space; expected a registered name "
            f"({', '.join(sorted(registry)) or 'none registered'}), package.module:OBJECT "
            "or path/to/file.py:OBJECT"
        )
    if location.endswith(".py") or "/" in location or "\\" in location:
        module = _import_file(Path(location).expanduser(), spec)
    else:
        module = _import_module(location, spec)
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise SpaceError(
            f"--space {spec!r}: {location!r} has no attribute {attribute!r}; expected the "
            "name of a space object, class or factory defined there"
        ) from None


def check_space(space: Any, spec: str | None = None, probe: bool = True) -> Any:
    """``space`` when it meets the contract; else :class:`SpaceError` naming what is missing.

    With ``probe``, ``build(0)`` is called once to check that it returns a ``torch.nn.Module``.
    """
    label = f"--space {spec!r}" if spec else f"space {type(space).__name__}"
    missing = [a for a in REQUIRED if not hasattr(space, a)]
    if missing:
        raise SpaceError(
            f"{label}: {type(space).__name__} lacks {', '.join(missing)}; a space needs "
            "__len__, arch_str(i), build(i) and input_shape"
        )
    try:
        size = len(space)
    except Exception as exc:
        raise SpaceError(f"{label}: len() raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(size, int) or size < 1:
        raise SpaceError(f"{label}: len() is {size!r}; expected a positive number of architectures")
    shape = space.input_shape
    if not (
        isinstance(shape, Sequence)
        and len(shape) >= 2
        and all(isinstance(d, (int, np.integer)) and d > 0 for d in shape)
    ):
        raise SpaceError(
            f"{label}: input_shape is {shape!r}; expected a tuple of positive ints with the "
            "batch dimension first, e.g. (1, 3, 32, 32)"
        )
    if probe:
        import torch

        try:
            name = space.arch_str(0)
            model = space.build(0)
        except Exception as exc:
            raise SpaceError(
                f"{label}: arch_str(0)/build(0) raised {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(name, str):
            raise SpaceError(f"{label}: arch_str(0) returned {type(name).__name__}; expected str")
        if not isinstance(model, torch.nn.Module):
            raise SpaceError(
                f"{label}: build(0) returned {type(model).__name__}; expected a torch.nn.Module"
            )
    return space


def load_space(spec: str | Any, probe: bool = True) -> Any:
    """The space a ``--space`` value names (an object passes through, checked).

    Classes and factories are called without arguments. The spec is kept on the object as
    ``spec`` when it has no ``name``, so results name the space the way the user did.
    """
    if not isinstance(spec, str):
        return check_space(spec, probe=probe)
    if not spec.strip():
        raise SpaceError(
            "--space '': expected a space name, package.module:OBJECT or FILE.py:OBJECT"
        )
    target = _resolve(spec)
    if isinstance(target, type) or (callable(target) and not hasattr(target, "arch_str")):
        try:
            target = target()
        except Exception as exc:
            raise SpaceError(
                f"--space {spec!r}: calling {getattr(target, '__name__', target)!r} raised "
                f"{type(exc).__name__}: {exc}"
            ) from exc
    space = check_space(target, spec, probe=probe)
    if not getattr(space, "name", None):
        try:
            space.spec = spec
        except AttributeError:
            pass  # a frozen or slotted object keeps its class name
    return space


def check_index(space: Any, i: Any) -> int:
    """``i`` as an int when it indexes ``space``; else IndexError naming the range."""
    if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
        raise IndexError(f"architecture index {i!r} is not an integer")
    if not 0 <= int(i) < len(space):
        raise IndexError(
            f"architecture index {int(i)} out of range 0..{len(space) - 1} of {space_name(space)}"
        )
    return int(i)


def index_of(space: Any, arch: Any) -> int:
    """The index of an architecture given by index or by its ``arch_str``."""
    if isinstance(arch, (int, np.integer)) and not isinstance(arch, bool):
        return check_index(space, arch)
    text = str(arch)
    finder = getattr(space, "index", None)
    if callable(finder):
        return int(finder(text))
    table = getattr(space, "_cbred_index_of", None)
    if table is None:
        table = {space.arch_str(i): i for i in range(len(space))}
        try:
            space._cbred_index_of = table
        except AttributeError:
            pass
    if text not in table:
        raise KeyError(f"{text!r} is not an architecture of {space_name(space)}")
    return table[text]


def as_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """The one sampling convention: a ``numpy.random.Generator``, or a seed for one."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)
