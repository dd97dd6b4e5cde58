"""The statistic registry: each statistic declares its direction, source and passes.

A statistic is a function of the shared pass results (:class:`proxies.passes.PassResults`)
returning one float.  It declares the pass *features* it consumes (see
:data:`proxies.passes.FEATURES`), so :func:`proxies.api.score` can run the fewest passes
for any set of statistics.  Users add their own with :func:`register_proxy`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cbred.proxies.passes import PassResults

DIRECTIONS = ("higher", "lower")


class ProxyUndefined(Exception):
    """Raised by a statistic when it has no value for this network; carries the reason."""


@dataclass(frozen=True)
class ProxySpec:
    """One registered statistic."""

    name: str
    fn: Callable[[PassResults], float]
    direction: str
    source: str
    needs: frozenset[str]
    formula: str

    def better(self, a: float, b: float) -> bool:
        """Whether value ``a`` is strictly better than ``b`` under this direction."""
        return a > b if self.direction == "higher" else a < b


_REGISTRY: dict[str, ProxySpec] = {}
_OTHER_NAMES: dict[str, str] = {}
"""Names that are not statistics → what they are (:func:`register_other_name`)."""


def register_proxy(
    name: str,
    *,
    direction: str,
    source: str,
    needs: Iterable[str],
    formula: str = "",
    replace: bool = False,
) -> Callable[[Callable[[PassResults], float]], Callable[[PassResults], float]]:
    """Decorator registering ``fn(results) -> float`` as statistic ``name``.

    ``needs`` names pass features from :data:`proxies.passes.FEATURES`; ``direction`` says
    whether higher or lower values predict better accuracy.  Re-registering a name raises
    unless ``replace=True``.
    """
    from cbred.proxies.passes import FEATURES

    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    needs = frozenset(needs)
    unknown = needs - set(FEATURES)
    if unknown:
        raise ValueError(f"unknown pass features {sorted(unknown)}; expected some of {FEATURES}")
    if not name or not isinstance(name, str):
        raise ValueError(f"statistic name must be a non-empty string, got {name!r}")

    def decorate(fn: Callable[[PassResults], float]) -> Callable[[PassResults], float]:
        if name in _REGISTRY and not replace:
            raise ValueError(f"statistic {name!r} is already registered (pass replace=True)")
        doc = formula or (fn.__doc__ or "").strip().split("\n")[0]
        _REGISTRY[name] = ProxySpec(name, fn, direction, source, needs, doc)
        return fn

    return decorate


def unregister_proxy(name: str) -> None:
    """Remove a registered statistic (for user statistics and tests)."""
    get_proxy(name)
    del _REGISTRY[name]


def get_proxy(name: str) -> ProxySpec:
    """The spec of statistic ``name``; a clear error lists the known names, or says what a
    name that is not a statistic is (:func:`register_other_name`)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        if name in _OTHER_NAMES:
            raise KeyError(f"{name!r} is {_OTHER_NAMES[name]}") from None
        raise KeyError(f"unknown statistic {name!r}; known: {sorted(_REGISTRY)}") from None


def register_other_name(name: str, what: str) -> None:
    """Say what ``name`` is where a statistic is expected: a name users take for one (the
    named ensembles of :mod:`proxies.ensemble`) gets this explanation instead of the list
    of known statistics."""
    _OTHER_NAMES[name] = what


def available_proxies() -> list[str]:
    """Names of all registered statistics, in registration order."""
    return list(_REGISTRY)
