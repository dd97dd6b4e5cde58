"""TE-NAS: training-free pruning search over the NB201 supernet (NTK κ + linear regions).

Names load on first use, so that :mod:`bench.tenas.config` imports without torch.
"""

from __future__ import annotations

from cbred._lazy import lazy_exports

_PUBLIC = {
    "FULL": "cbred.bench.tenas.supernet",
    "CandidateScore": "cbred.bench.tenas.prune",
    "PruneRound": "cbred.bench.tenas.prune",
    "SuperNet": "cbred.bench.tenas.supernet",
    "TenasConfig": "cbred.bench.tenas.config",
    "TenasResult": "cbred.bench.tenas.prune",
    "ThinSuperNet": "cbred.bench.tenas.supernet",
    "choose_removals": "cbred.bench.tenas.prune",
    "rank_candidates": "cbred.bench.tenas.prune",
    "remove_op": "cbred.bench.tenas.supernet",
    "single_path": "cbred.bench.tenas.supernet",
    "tenas_search": "cbred.bench.tenas.prune",
}

__all__ = sorted(_PUBLIC)

__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
