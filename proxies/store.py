"""The score store: every computed statistic, in one SQLite file.

A row is keyed by (space, architecture, statistic, data set, batch size, seed,
statistic version) and records the value (NULL when undefined), the seconds it
took, the device and any error text.  The database runs in WAL mode with a busy
timeout, every batch of rows is written in one transaction, and inserts are
idempotent (``INSERT OR REPLACE`` on the key): a process killed at any point
leaves either a whole chunk or none of it, and several processes may write the
same file at once.
"""

from __future__ import annotations

import math
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

KEY_COLUMNS = ("space", "arch", "statistic", "dataset", "batch_size", "seed", "version")
COLUMNS = (*KEY_COLUMNS, "arch_str", "value", "seconds", "device", "error", "created")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scores (
    space TEXT NOT NULL,
    arch INTEGER NOT NULL,
    statistic TEXT NOT NULL,
    dataset TEXT NOT NULL,
    batch_size INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    version TEXT NOT NULL,
    arch_str TEXT,
    value REAL,
    seconds REAL,
    device TEXT,
    error TEXT,
    created REAL NOT NULL,
    PRIMARY KEY (space, arch, statistic, dataset, batch_size, seed, version)
)
"""


@dataclass(frozen=True)
class ScoreRow:
    """One statistic of one architecture under one setting."""

    space: str
    arch: int
    statistic: str
    dataset: str
    batch_size: int
    seed: int
    version: str
    arch_str: str
    value: float | None
    seconds: float
    device: str
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.value is None or not math.isfinite(self.value)

    def check(self) -> None:
        """Raise ValueError naming the field when the key is not a valid score key."""
        for name in ("space", "statistic", "version"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(
                    f"score row {name} must be a non-empty string, got {getattr(self, name)!r}"
                )
        if not isinstance(self.dataset, str):
            raise ValueError(f"score row dataset must be a string, got {self.dataset!r}")
        for name in ("arch", "batch_size", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"score row {name} must be an integer >= 0, got {value!r}")
        if self.batch_size < 1:
            raise ValueError(f"score row batch_size must be >= 1, got {self.batch_size}")


class ScoreStore:
    """A SQLite score store at ``path`` (created on first use)."""

    def __init__(self, path: str | os.PathLike[str], timeout: float = 60.0) -> None:
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            raise FileNotFoundError(f"directory of score store {str(self.path)!r} does not exist")
        if self.path.is_dir():
            raise ValueError(f"score store {str(self.path)!r} is a directory; expected a file")
        try:
            self._conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
            self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            tables = {
                r[0]
                for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        except sqlite3.DatabaseError as exc:
            raise ValueError(
                f"score store {str(self.path)!r} is not a SQLite database ({exc})"
            ) from None
        if tables - {"scores"}:
            self._conn.close()
            raise ValueError(
                f"{str(self.path)!r} is a SQLite file of something else (tables "
                f"{sorted(tables)}); a score store holds only a 'scores' table, so nothing "
                "is written into it"
            )
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute(_SCHEMA)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ScoreStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def put(self, rows: Iterable[ScoreRow]) -> int:
        """Write rows in one transaction (all or nothing); returns how many."""
        now = time.time()
        records = []
        for row in rows:
            row.check()
            record = asdict(row)
            value = record["value"]
            if value is not None and not math.isfinite(value):
                record["error"] = record["error"] or f"non-finite value {value}"
                record["value"] = None
            records.append(tuple(record[c] for c in COLUMNS[:-1]) + (now,))
        if not records:
            return 0
        placeholders = ",".join("?" * len(COLUMNS))
        with self._conn:  # BEGIN ... COMMIT, rolled back on error
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(
                f"INSERT OR REPLACE INTO scores ({','.join(COLUMNS)}) VALUES ({placeholders})",
                records,
            )
        return len(records)

    def merge(self, other: str | os.PathLike[str]) -> int:
        """Copy every row of the store file ``other`` into this one in one transaction.

        Stores filled on different machines (or a lost run's remainder scored into a fresh
        file) become one; rows with the same key are replaced by ``other``'s.  Returns the
        number of rows copied.
        """
        other = Path(other)
        if not other.is_file():
            raise FileNotFoundError(f"score store {str(other)!r} to merge does not exist")
        columns = ",".join(COLUMNS)
        self._conn.execute("ATTACH DATABASE ? AS other", (str(other),))
        try:
            with self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                cursor = self._conn.execute(
                    f"INSERT OR REPLACE INTO main.scores ({columns}) "
                    f"SELECT {columns} FROM other.scores"
                )
                return cursor.rowcount
        finally:
            self._conn.execute("DETACH DATABASE other")

    def done(
        self,
        space: str,
        dataset: str,
        batch_size: int,
        seed: int,
        versions: dict[str, str],
        include_failed: bool = True,
    ) -> set[tuple[int, str]]:
        """(arch, statistic) pairs already stored for this setting and these versions."""
        query = (
            "SELECT arch, statistic, version FROM scores WHERE space=? AND dataset=? "
            "AND batch_size=? AND seed=?"
        )
        if not include_failed:
            query += " AND value IS NOT NULL"
        cursor = self._conn.execute(query, (space, dataset, batch_size, seed))
        return {(a, s) for a, s, v in cursor if versions.get(s) == v}

    def frame(self, **where: object) -> pd.DataFrame:
        """All rows (optionally filtered by equality on columns) as a DataFrame."""
        unknown = set(where) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown store columns {sorted(unknown)}; expected {COLUMNS}")
        clause = " AND ".join(f"{k}=?" for k in where)
        query = "SELECT * FROM scores" + (f" WHERE {clause}" if clause else "")
        return pd.read_sql_query(
            query + " ORDER BY arch, statistic", self._conn, params=tuple(where.values())
        )

    def wide(self, statistics: Sequence[str] | None = None, **where: object) -> pd.DataFrame:
        """One row per architecture, one column per statistic (NaN where failed).

        Rows of different settings (space, data set, batch size, seed, version) are never
        folded into one value: with more than one setting left after ``where``, this raises
        and names them, so the caller says which one it means.
        """
        frame = self.frame(**where)
        if statistics is not None:
            frame = frame[frame["statistic"].isin(list(statistics))]
        setting = ["space", "dataset", "batch_size", "seed", "statistic", "version"]
        mixed = frame.groupby(["statistic"])[setting].nunique().max(axis=1) > 1
        if mixed.any():
            names = mixed[mixed].index.tolist()
            raise ValueError(
                f"the store holds several settings for {names}; filter with wide(space=, "
                "dataset=, batch_size=, seed=, version=) to one"
            )
        table = frame.pivot_table(
            index="arch", columns="statistic", values="value", aggfunc="first", dropna=False
        )
        table.columns.name = None
        return table

    def export(self, path: str | os.PathLike[str], **where: object) -> Path:
        """Write rows to ``.parquet`` or ``.csv`` (by suffix) atomically; returns the path."""
        path = Path(path)
        frame = self.frame(**where)
        tmp = path.with_name(path.name + ".tmp")
        if path.suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        elif path.suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            raise ValueError(f"export path {str(path)!r} must end in .parquet or .csv")
        os.replace(tmp, path)
        return path

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0])
