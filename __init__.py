"""cbred: training-free neural architecture search by clustering computational graphs.

The repository's top-level folders install as ``cbred.cgraph`` (tracing, graphs, distances),
``cbred.proxies`` (training-free statistics, scoring engine), ``cbred.reduce`` (space
contract, clustering, C-BRED, searches) and ``cbred.bench`` (concrete spaces, ground truth,
experiments, CLI). The names below are the public API; they load on first use, so that
``import cbred`` (and ``cbred --help``) does not import torch.
"""

from __future__ import annotations

from cbred._lazy import lazy_exports

_PUBLIC = {
    "trace": "cbred.cgraph",
    "CompGraph": "cbred.cgraph",
    "pairwise": "cbred.cgraph.distance",
    "score": "cbred.proxies",
    "available_proxies": "cbred.proxies",
    "register_proxy": "cbred.proxies",
    "CBRED": "cbred.reduce",
    "Space": "cbred.reduce",
    "load_space": "cbred.reduce",
    "reduce_space": "cbred.reduce",
    "Subspace": "cbred.reduce",
    "cbred_reduce": "cbred.reduce",
    "make_clusterer": "cbred.reduce",
}

__all__ = sorted(_PUBLIC)

__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
