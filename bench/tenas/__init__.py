"""TE-NAS: training-free pruning search over the NB201 supernet (NTK κ + linear regions)."""

from cbred.bench.tenas.prune import (
    CandidateScore,
    PruneRound,
    TenasConfig,
    TenasResult,
    choose_removals,
    rank_candidates,
    tenas_search,
)
from cbred.bench.tenas.supernet import FULL, SuperNet, ThinSuperNet, remove_op, single_path

__all__ = [
    "FULL",
    "CandidateScore",
    "PruneRound",
    "SuperNet",
    "TenasConfig",
    "TenasResult",
    "ThinSuperNet",
    "choose_removals",
    "rank_candidates",
    "remove_op",
    "single_path",
    "tenas_search",
]
