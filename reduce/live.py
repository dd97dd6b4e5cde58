"""Statistics of a space's architectures computed on demand, fused, memoised and stored.

:class:`LiveScores` is what a search or a reduction uses when no score table covers the
space or the setting it asks for (another batch/init seed, another batch size): the first
request for an architecture computes all the statistics it lacks in one fused pass
(:func:`proxies.engine.score_chunk`, the code ``cbred score`` runs), and with a ``store``
every value is read from and written to a score store under the same key as
``cbred score``.  So an interrupted search resumes without recomputing, searches over the
same setting share their work, and a store filled by whole-space scoring serves them free.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from typing import Any

from cbred.proxies.engine import ScoreJob, score_chunk
from cbred.proxies.store import ScoreStore


@dataclass(eq=False)
class LiveScores:
    """``statistics`` of architectures of ``space`` (a space of :mod:`reduce.space` with a
    ``batch``), scored with network and batch drawn from ``seed``.

    ``values(i)`` is a dict statistic → value (NaN where a statistic failed on that
    architecture; a setting that cannot score anything, such as a missing device, raises
    before the first architecture).  ``scored`` lists the architectures computed by this
    object, in order (what it cost); those read from the store or the memo cost nothing.
    The store is opened once and kept open, so each new architecture costs one write; an
    architecture the store holds some statistics of is completed by computing only the rest.
    """

    statistics: tuple[str, ...]
    space: Any
    batch_size: int = 64
    seed: int = 0
    device: str | None = None
    store: str | os.PathLike[str] | None = None
    cache: dict[int, dict[str, float]] = field(init=False, default_factory=dict)
    scored: list[int] = field(init=False, default_factory=list)
    _partial: dict[int, dict[str, float]] = field(init=False, default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.statistics = tuple(self.statistics)
        self.job = ScoreJob(self.statistics, self.space, self.batch_size, self.seed,
                            self.device or "cpu")  # fmt: skip
        self._store = None if self.store is None else ScoreStore(self.store)
        if self._store is not None:
            self._read_store(self._store)

    def _read_store(self, store: ScoreStore, arch: int | None = None) -> None:
        """Memoise what the store holds in this setting, at the statistics' current code
        versions (older values are never served): every architecture it holds all
        statistics of, and the stored part of those it holds only some of.  With ``arch``,
        that architecture alone (one indexed query)."""
        versions = self.job.versions
        where = {"arch": int(arch)} if arch is not None else {}
        rows = store.frame(space=self.job.space_name, dataset=self.job.dataset,
                           batch_size=self.batch_size, seed=self.seed, **where)  # fmt: skip
        rows = rows[rows["version"].to_numpy() == rows["statistic"].map(versions).to_numpy()]
        for index, group in rows.groupby("arch"):
            values = dict(zip(group["statistic"], group["value"].astype(float)))
            known = {s: float(values[s]) for s in self.statistics if s in values}
            if len(known) == len(self.statistics):
                self.cache[int(index)] = known
                self._partial.pop(int(index), None)
            elif known:
                self._partial[int(index)] = known

    def values(self, index: int) -> dict[str, float]:
        """All statistics of architecture ``index``, computed (and stored) on first use.

        With a store, a miss first asks the store again: another run on the same store (a
        concurrent search, ``cbred score``) may have scored it since this object read it.
        """
        index = int(index)
        if index not in self.cache and self._store is not None:
            self._read_store(self._store, index)
        if index not in self.cache:
            if not self.scored:  # a broken setting (device, data) fails here, never as NaNs
                self.job.check_setting()
            known = self._partial.pop(index, {})
            lacking = tuple(s for s in self.statistics if s not in known)
            rows = score_chunk(replace(self.job, statistics=lacking), [index])
            if self._store is not None:
                self._store.put(rows)
            known |= {r.statistic: math.nan if r.value is None else float(r.value) for r in rows}
            self.cache[index] = {s: known[s] for s in self.statistics}
            self.scored.append(index)
        return self.cache[index]

    def value(self, index: int, statistic: str) -> float:
        """One statistic of architecture ``index`` (a stored one is served without computing
        the architecture's missing others)."""
        if statistic not in self.statistics:
            raise KeyError(f"statistic {statistic!r} is not one of {list(self.statistics)}")
        stored = self._partial.get(int(index), {})
        if statistic in stored:
            return stored[statistic]
        return self.values(index)[statistic]
