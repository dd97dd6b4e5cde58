"""TE-NAS (Chen, Gong & Wang, ICLR 2021): training-free pruning of the NB201 supernet.

Each round, for every alive operation ``o`` on an edge that still holds several, TE-NAS
measures how removing ``o`` changes

* the NTK condition number κ of the supernet (trainability; lower is better), as
  Δκ(o) = (κ_N − κ_{N∖o}) / κ_N — a *high* Δκ means removing ``o`` makes the supernet
  easier to train, so ``o`` is a good candidate for removal;
* the number of linear regions R of a thin supernet (expressivity; higher is better), as
  ΔR(o) = (R_N − R_{N∖o}) / R_N — a *low* ΔR means ``o`` adds few regions, so it too is a
  good candidate for removal.

All candidates of the round are ranked globally: s_κ(o) is o's dense rank in the list of
Δκ sorted *descending*, s_R(o) its dense rank in the list of ΔR sorted *ascending*
(rank 0 = most removable; equal values, compared after rounding to 10 decimals, share a
rank, as in the reference code).  On every edge with more than one alive op the op with
the smallest s(o) = s_κ(o) + s_R(o) is removed (ties: smaller s_κ, then ``OPS`` order).
Rounds repeat until one op per edge remains: the ordinary NB201 architecture.

Noise control follows the paper: every quantity is the mean over ``repeats``
measurements, each with a fresh Kaiming initialisation (fan-out for the NTK network,
fan-in for the thin network) and a fresh mini-batch / input sample.  Within one round and
repeat, the full supernet and all its pruned variants share the same weights and inputs
(common random numbers), so differences between candidates are not drowned by
initialisation noise.  Everything is drawn from ``seed``: same seed, same result.

``none`` is handled as in the authors' implementation: it is removed from every edge before
the first round (``drop_none=True``).  In a summed supernet ``none`` adds nothing, so its
removal leaves κ and R unchanged; the paper's Algorithm 1 never returns it.

κ and R are the registered statistics ``ntk_cond`` and ``linear_regions`` of
:mod:`proxies`, computed on the supernets of :mod:`reduce.tenas.supernet`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from cbred.bench.datasets import NUM_CLASSES, bundled_cifar10, canonical_dataset, normalise
from cbred.bench.nb201 import OPS, Arch
from cbred.bench.tenas.config import TenasConfig
from cbred.bench.tenas.supernet import (
    FULL,
    Alive,
    SuperNet,
    ThinSuperNet,
    check_alive,
    kaiming_init,
    remove_op,
    single_path,
)
from cbred.proxies import score
from scipy.stats import rankdata

Candidate = tuple[int, str]
"""(edge index, op name) of one alive operation."""

PRECISION = 10
"""Decimals the relative changes are rounded to before ranking (ties share a rank)."""


@dataclass(frozen=True)
class CandidateScore:
    """One alive operation's measured effect of removal and its ranks in its round."""

    edge: int
    op: str
    delta_kappa: float
    delta_regions: float
    rank_kappa: int
    rank_regions: int

    @property
    def importance(self) -> int:
        """s = s_κ + s_R; the op with the smallest s on an edge is removed."""
        return self.rank_kappa + self.rank_regions


@dataclass(frozen=True)
class PruneRound:
    """One pruning round: the supernet's mean κ and R, every candidate, what was removed."""

    index: int
    kappa: float
    regions: float
    candidates: tuple[CandidateScore, ...]
    removed: tuple[Candidate, ...]
    alive_after: Alive
    seconds: float


@dataclass(frozen=True)
class TenasResult:
    """The architecture TE-NAS found and how it got there."""

    arch: Arch
    seed: int
    num_classes: int
    config: TenasConfig
    dropped: tuple[Candidate, ...]
    rounds: tuple[PruneRound, ...] = field(default_factory=tuple)
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    def trace_lines(self) -> list[str]:
        """A human-readable pruning trace, one line per removal."""
        lines = [f"round 0: dropped {op} on edge {e} (before ranking)" for e, op in self.dropped]
        for r in self.rounds:
            by_key = {(c.edge, c.op): c for c in r.candidates}
            lines.append(
                f"round {r.index}: kappa={r.kappa:.4g} regions={r.regions:.1f} "
                f"({len(r.candidates)} candidates, {r.seconds:.1f} s)"
            )
            for e, op in r.removed:
                c = by_key[(e, op)]
                lines.append(
                    f"  edge {e}: remove {op:<13} dkappa={c.delta_kappa:+.4f} "
                    f"dR={c.delta_regions:+.4f} s={c.rank_kappa}+{c.rank_regions}"
                )
        return lines

    def to_dict(self) -> dict:
        """JSON-ready summary (architecture, trace, time, settings)."""
        return {
            "arch": str(self.arch),
            "seed": self.seed,
            "num_classes": self.num_classes,
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "config": self.config.__dict__,
            "dropped": [list(c) for c in self.dropped],
            "rounds": [
                {
                    "index": r.index,
                    "kappa": r.kappa,
                    "regions": r.regions,
                    "seconds": r.seconds,
                    "removed": [list(c) for c in r.removed],
                    "candidates": [
                        {**c.__dict__, "importance": c.importance} for c in r.candidates
                    ],
                }
                for r in self.rounds
            ],
        }


def relative_change(base: float, new: float) -> float:
    """(base − new) / base for positive finite values; ±inf when only one side is infinite
    (removal made the quantity finite: +inf; made it infinite: −inf), 0 when both are,
    NaN when either is NaN."""
    if math.isnan(base) or math.isnan(new):
        return math.nan
    if math.isinf(base) and math.isinf(new):
        return 0.0
    if math.isinf(base):
        return math.inf
    if math.isinf(new):
        return -math.inf
    return (base - new) / base


def _dense_ranks(keys: np.ndarray) -> np.ndarray:
    """0-based dense ranks of ``keys`` ascending; NaN keys rank last (least removable)."""
    keys = np.where(np.isnan(keys), np.inf, np.round(keys, PRECISION))
    return rankdata(keys, method="dense").astype(int) - 1


def rank_candidates(deltas: dict[Candidate, tuple[float, float]]) -> list[CandidateScore]:
    """Rank every candidate by Δκ (descending) and ΔR (ascending), over the whole round."""
    keys = list(deltas)
    dk = np.array([deltas[k][0] for k in keys], dtype=float)
    dr = np.array([deltas[k][1] for k in keys], dtype=float)
    rk, rr = _dense_ranks(-dk), _dense_ranks(dr)
    return [
        CandidateScore(e, op, float(dk[i]), float(dr[i]), int(rk[i]), int(rr[i]))
        for i, (e, op) in enumerate(keys)
    ]


def choose_removals(alive: Alive, scores: list[CandidateScore]) -> tuple[Candidate, ...]:
    """On every edge with more than one alive op, the op of least importance s."""
    removed = []
    for e, ops in enumerate(alive):
        if len(ops) < 2:
            continue
        on_edge = [c for c in scores if c.edge == e and c.op in ops]
        if len(on_edge) != len(ops):
            raise ValueError(f"edge {e}: scores cover {len(on_edge)} of its {len(ops)} alive ops")
        best = min(on_edge, key=lambda c: (c.importance, c.rank_kappa, OPS.index(c.op)))
        removed.append((e, best.op))
    return tuple(removed)


@lru_cache(maxsize=1)
def _images() -> tuple[torch.Tensor, np.ndarray]:
    """The bundled CIFAR-10 training images, normalised (N, 3, 32, 32), and their labels."""
    data = bundled_cifar10("train")
    return normalise(data.images, "cifar10"), data.labels.astype(np.int64)


def _round_seed(seed: int, round_index: int, repeat: int) -> int:
    return int(np.random.SeedSequence([seed, round_index, repeat]).generate_state(1)[0])


def ntk_batch(config: TenasConfig, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The seeded CIFAR-10 batch for the NTK, average-pooled to ``ntk_resolution``."""
    images, labels = _images()
    if config.ntk_batch > len(images):
        raise ValueError(f"ntk_batch {config.ntk_batch} exceeds the {len(images)} bundled images")
    idx = np.sort(np.random.default_rng(seed).choice(len(images), config.ntk_batch, replace=False))
    x = F.adaptive_avg_pool2d(images[idx], config.ntk_resolution)
    return x, torch.from_numpy(labels[idx])


def region_inputs(config: TenasConfig, seed: int) -> torch.Tensor:
    """``lr_samples`` seeded random patches (N, lr_channels, lr_patch, lr_patch) of the images."""
    images, _ = _images()
    rng = np.random.default_rng(seed)
    n, side, p, c = config.lr_samples, images.shape[-1], config.lr_patch, config.lr_channels
    img, ch = rng.integers(0, len(images), n), rng.integers(0, 4 - c, n)
    row, col = rng.integers(0, side - p + 1, n), rng.integers(0, side - p + 1, n)
    return torch.stack(
        [
            images[i, k : k + c, r : r + p, q : q + p]
            for i, k, r, q in zip(img, ch, row, col, strict=True)
        ]
    )


class Measurer:
    """κ and R of pruned supernets, with the weights and inputs of one (round, repeat)."""

    def __init__(self, config: TenasConfig, num_classes: int) -> None:
        self.config = config
        self.ntk_net = SuperNet(config.ntk_channels, config.ntk_cells, num_classes)
        self.thin_net = ThinSuperNet(config.lr_channels, config.lr_cells)
        self._seed = 0
        self._batch: tuple[torch.Tensor, torch.Tensor] | None = None
        self._regions: tuple[torch.Tensor, torch.Tensor] | None = None

    def _check_drawn(self) -> None:
        if self._batch is None:
            raise RuntimeError("Measurer.draw(seed) must be called before measuring")

    def draw(self, seed: int) -> None:
        """Fresh Kaiming weights for both networks and fresh inputs, all from ``seed``."""
        self._seed = seed
        kaiming_init(self.ntk_net, seed, "fan_out")
        kaiming_init(self.thin_net, seed, "fan_in")
        self._batch = ntk_batch(self.config, seed)
        x = region_inputs(self.config, seed)
        self._regions = (x, torch.zeros(x.shape[0], dtype=torch.int64))

    def kappa(self, alive: Alive) -> float:
        """NTK condition number of the supernet pruned to ``alive`` (NaN if undefined)."""
        self._check_drawn()
        self.ntk_net.set_alive(alive)
        return score(self.ntk_net, self._batch, ["ntk_cond"], seed=self._seed)["ntk_cond"]

    def regions(self, alive: Alive) -> float:
        """Linear-region count of the thin supernet pruned to ``alive``."""
        self._check_drawn()
        self.thin_net.set_alive(alive)
        return score(self.thin_net, self._regions, ["linear_regions"], seed=self._seed)[
            "linear_regions"
        ]


def measure_round(
    measurer: Measurer, alive: Alive, seed: int, round_index: int
) -> tuple[float, float, dict[Candidate, tuple[float, float]]]:
    """Mean κ and R of ``alive`` and, per removable op, mean relative Δκ and ΔR."""
    candidates = [(e, op) for e, ops in enumerate(alive) if len(ops) > 1 for op in ops]
    kappas, regions = [], []
    changes: dict[Candidate, list[tuple[float, float]]] = {c: [] for c in candidates}
    for repeat in range(measurer.config.repeats):
        measurer.draw(_round_seed(seed, round_index, repeat))
        k0, r0 = measurer.kappa(alive), measurer.regions(alive)
        kappas.append(k0)
        regions.append(r0)
        for e, op in candidates:
            pruned = remove_op(alive, e, op)
            changes[(e, op)].append(
                (
                    relative_change(k0, measurer.kappa(pruned)),
                    relative_change(r0, measurer.regions(pruned)),
                )
            )
    deltas = {c: tuple(float(v) for v in np.mean(changes[c], axis=0)) for c in candidates}
    return float(np.mean(kappas)), float(np.mean(regions)), deltas


def tenas_search(
    seed: int = 0,
    dataset: str = "cifar10",
    config: TenasConfig | None = None,
    alive: Alive = FULL,
    progress: Callable[[PruneRound], None] | None = None,
) -> TenasResult:
    """Prune the NB201 supernet by TE-NAS until one op per edge remains.

    ``dataset`` sets the classifier width of the NTK supernet (10/100/120 classes); the
    measurements always use the bundled CIFAR-10 images (the only images shipped).
    ``alive`` may start from a partly pruned supernet; ``progress`` is called after each
    round.
    """
    config = config or TenasConfig()
    num_classes = NUM_CLASSES[canonical_dataset(dataset)]
    alive = check_alive(alive)
    start, cpu_start = time.perf_counter(), time.process_time()
    dropped: tuple[Candidate, ...] = ()
    if config.drop_none:
        dropped = tuple(
            (e, "none") for e, ops in enumerate(alive) if "none" in ops and len(ops) > 1
        )
        for e, op in dropped:
            alive = remove_op(alive, e, op)
    measurer = Measurer(config, num_classes)
    rounds: list[PruneRound] = []
    while any(len(ops) > 1 for ops in alive):
        t0 = time.perf_counter()
        index = len(rounds) + 1
        kappa, regions, deltas = measure_round(measurer, alive, seed, index)
        scores = rank_candidates(deltas)
        removed = choose_removals(alive, scores)
        for e, op in removed:
            alive = remove_op(alive, e, op)
        rounds.append(
            PruneRound(
                index, kappa, regions, tuple(scores), removed, alive, time.perf_counter() - t0
            )
        )
        if progress is not None:
            progress(rounds[-1])
    return TenasResult(
        single_path(alive),
        seed,
        num_classes,
        config,
        dropped,
        tuple(rounds),
        time.perf_counter() - start,
        time.process_time() - cpu_start,
    )


__all__ = [
    "CandidateScore",
    "Measurer",
    "PruneRound",
    "TenasConfig",
    "TenasResult",
    "choose_removals",
    "measure_round",
    "rank_candidates",
    "relative_change",
    "tenas_search",
]
