"""The score store: every computed statistic, in one SQLite file.

A row is keyed by (space, architecture, statistic, data set, batch size, seed,
statistic version) and records the value (NULL when undefined), the seconds it
took, the device and any error text.  The database runs in WAL mode with a busy
timeout, every batch of rows is written in one transaction, and inserts are
idempotent (``INSERT OR REPLACE`` on the key): a process killed at any point
leaves either a whole chunk or none of it, and several processes may write the
same file at once.

Concurrent runs on one file split the work instead of repeating it: a run *claims* the
architectures it is about to compute (table ``claims``, one row per architecture and
statistic, with the run's id and an expiry it renews while it makes progress) and skips
what another live run has claimed.  A claim of a run that died (its process is gone on
this host, or its lease expired) is taken over.  A write that finds the file locked by
another process for longer than ``timeout`` raises :class:`StoreLockedError`, naming the
processes that hold the file open.
"""

from __future__ import annotations

import math
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
from cbred._files import atomic_output

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

_CLAIMS_SCHEMA = """
CREATE TABLE IF NOT EXISTS claims (
    space TEXT NOT NULL,
    arch INTEGER NOT NULL,
    statistic TEXT NOT NULL,
    dataset TEXT NOT NULL,
    batch_size INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    version TEXT NOT NULL,
    run TEXT NOT NULL,
    expires REAL NOT NULL,
    PRIMARY KEY (space, arch, statistic, dataset, batch_size, seed, version)
)
"""

STORE_TABLES = frozenset({"scores", "claims"})
EXPORT_SUFFIXES = (".parquet", ".csv")
"""The file types :meth:`ScoreStore.export` writes and :meth:`ScoreStore.merge` reads."""


class StoreLockedError(ValueError):
    """Another process held the store's write lock for longer than the store's timeout."""


def new_run_id() -> str:
    """An id for one scoring run: host, process id and a random suffix."""
    return f"{socket.gethostname()}|{os.getpid()}|{uuid.uuid4().hex[:8]}"


def run_is_alive(run: str) -> bool:
    """False only when ``run`` was started on this host by a process that no longer exists.

    Runs of other hosts cannot be checked here; their claims end when their lease expires.
    """
    host, _, rest = run.partition("|")
    pid_text = rest.partition("|")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return _process_state(int(pid_text)) != "Z"


def _process_state(pid: int) -> str:
    """The one-letter state of process ``pid`` from /proc ('' where /proc is absent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rpartition(")")[2].split()[0]


def _holders(path: Path) -> list[str]:
    """'pid N (command)' of the other processes that hold ``path`` (or its WAL) open.

    Read from /proc on Linux; elsewhere, or without permission, the list is empty.
    """
    targets = {str(path.resolve()), f"{path.resolve()}-wal", f"{path.resolve()}-shm"}
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        if int(proc.name) == os.getpid():
            continue
        try:
            if not any(os.readlink(fd) in targets for fd in (proc / "fd").iterdir()):
                continue
            command = " ".join((proc / "cmdline").read_bytes().decode().replace("\0", " ").split())
        except OSError:
            continue
        found.append(f"pid {proc.name} ({command[:80]})")
    return found


def _is_lock_error(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


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
        self.timeout = timeout
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
        except sqlite3.OperationalError as exc:
            raise ValueError(f"cannot open score store {str(self.path)!r}: {exc}") from None
        except sqlite3.DatabaseError as exc:
            raise ValueError(
                f"score store {str(self.path)!r} is not a SQLite database ({exc})"
            ) from None
        if tables - STORE_TABLES:
            self._conn.close()
            raise ValueError(
                f"{str(self.path)!r} is a SQLite file of something else (tables "
                f"{sorted(tables)}); a score store holds only {sorted(STORE_TABLES)}, so "
                "nothing is written into it"
            )
        try:
            self._write(lambda: self._conn.execute("PRAGMA journal_mode = WAL"))
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._write(lambda: self._conn.execute(_SCHEMA))
            self._write(lambda: self._conn.execute(_CLAIMS_SCHEMA))
        except sqlite3.OperationalError as exc:
            self._conn.close()
            raise ValueError(f"cannot write score store {str(self.path)!r}: {exc}") from None

    def _write(self, action):  # noqa: ANN001, ANN202 - any callable and its result
        """Run ``action`` (a write); a lock held past the timeout becomes StoreLockedError."""
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if not _is_lock_error(exc):
                raise
            holders = _holders(self.path)
            raise StoreLockedError(
                f"score store {str(self.path)!r} stayed locked by another writer for over "
                f"{self.timeout:g} s ("
                + ("; ".join(holders) if holders else "the holder could not be named")
                + ")"
            ) from None

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
        return self._insert(records)

    def _insert(self, records: list[tuple]) -> int:
        """Write store records (``COLUMNS`` order) in one transaction, releasing their claims;
        returns how many."""
        if not records:
            return 0
        placeholders = ",".join("?" * len(COLUMNS))

        def write() -> None:
            with self._conn:  # BEGIN ... COMMIT, rolled back on error
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany(
                    f"INSERT OR REPLACE INTO scores ({','.join(COLUMNS)}) VALUES ({placeholders})",
                    records,
                )
                self._conn.executemany(
                    f"DELETE FROM claims WHERE {' AND '.join(f'{k}=?' for k in KEY_COLUMNS)}",
                    [r[: len(KEY_COLUMNS)] for r in records],
                )

        self._write(write)
        return len(records)

    def merge(self, other: str | os.PathLike[str]) -> int:
        """Copy every row of ``other`` into this store in one transaction.

        ``other`` is a store file, or a ``.parquet`` / ``.csv`` file that :meth:`export`
        wrote (the portable form in which rows travel between machines or are kept beside
        code).  Stores filled on different machines (or a lost run's remainder scored into
        a fresh file) become one; rows with the same key are replaced by ``other``'s.
        Returns the number of rows copied.
        """
        other = Path(other)
        if not other.is_file():
            raise FileNotFoundError(f"score store {str(other)!r} to merge does not exist")
        if self.path.exists() and other.samefile(self.path):
            raise ValueError(f"cannot merge score store {str(other)!r} into itself")
        if other.suffix in EXPORT_SUFFIXES:
            return self._insert(read_export(other))
        ScoreStore(other, timeout=self.timeout).close()  # refuses a foreign or broken file
        columns = ",".join(COLUMNS)
        self._conn.execute("ATTACH DATABASE ? AS other", (str(other),))

        def write() -> int:
            with self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                cursor = self._conn.execute(
                    f"INSERT OR REPLACE INTO main.scores ({columns}) "
                    f"SELECT {columns} FROM other.scores"
                )
                return cursor.rowcount

        try:
            return self._write(write)
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

    def claim(
        self,
        setting: tuple[str, str, int, int],
        versions: dict[str, str],
        archs: Sequence[int],
        limit: int,
        run: str,
        lease: float,
        include_failed: bool = True,
    ) -> tuple[list[int], list[int], list[int]]:
        """Claim for ``run`` up to ``limit`` architectures of ``archs``, in order, in one
        transaction; returns ``(claimed, held, rest)``.

        ``setting`` is (space, data set, batch size, seed); ``versions`` maps the statistics
        of the run to their versions.  An architecture is claimed when some statistic of it
        is missing and none of its missing statistics is claimed by another live run;
        ``held`` are those another live run holds, architectures with every statistic
        stored are dropped, and ``rest`` are the ones not examined once ``limit`` was
        reached.  A stored failure (NULL value) counts as stored unless ``include_failed``
        is False.  Claims expire ``lease`` seconds from now; a claim of a dead run is
        removed.  The run's other claims are renewed too.
        """
        now = time.time()
        where = "space=? AND dataset=? AND batch_size=? AND seed=?"
        marks = ",".join("?" * len(archs))
        stored = "" if include_failed else " AND value IS NOT NULL"
        params = (*setting, *(int(a) for a in archs))

        def write() -> tuple[list[int], list[int], list[int]]:
            with self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.execute("DELETE FROM claims WHERE expires < ?", (now,))
                self._conn.execute("UPDATE claims SET expires=? WHERE run=?", (now + lease, run))
                done = {
                    (a, s)
                    for a, s, v in self._conn.execute(
                        f"SELECT arch, statistic, version FROM scores WHERE {where} "
                        f"AND arch IN ({marks}){stored}",
                        params,
                    )
                    if versions.get(s) == v
                }
                rows = self._conn.execute(
                    f"SELECT arch, statistic, version, run FROM claims WHERE {where} "
                    f"AND arch IN ({marks}) AND run != ?",
                    (*params, run),
                ).fetchall()
                dead = {r for r in {row[3] for row in rows} if not run_is_alive(r)}
                for other in dead:
                    self._conn.execute("DELETE FROM claims WHERE run=?", (other,))
                others = {(a, s) for a, s, v, r in rows if r not in dead and versions.get(s) == v}
                claimed: list[int] = []
                held: list[int] = []
                for position, arch in enumerate(int(a) for a in archs):
                    if len(claimed) == limit:
                        return claimed, held, [int(a) for a in archs[position:]]
                    missing = [s for s in versions if (arch, s) not in done]
                    if not missing:
                        continue
                    if any((arch, s) in others for s in missing):
                        held.append(arch)
                        continue
                    claimed.append(arch)
                    self._conn.executemany(
                        "INSERT OR REPLACE INTO claims VALUES (?,?,?,?,?,?,?,?,?)",
                        [
                            (setting[0], arch, s, *setting[1:], versions[s], run, now + lease)
                            for s in missing
                        ],
                    )
                return claimed, held, []

        return self._write(write)

    def release(self, run: str) -> None:
        """Drop every claim of ``run`` (its end, or its architectures handed back)."""
        self._write(lambda: self._conn.execute("DELETE FROM claims WHERE run=?", (run,)))

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
        """Write rows to ``.parquet`` or ``.csv`` (by suffix) atomically; returns the path.

        :meth:`merge` reads such a file back into any store."""
        path = Path(path)
        if path.suffix not in EXPORT_SUFFIXES:
            raise ValueError(f"export path {str(path)!r} must end in .parquet or .csv")
        frame = self.frame(**where)
        with atomic_output(path) as tmp:
            if path.suffix == ".parquet":
                frame.to_parquet(tmp, index=False)
            else:
                frame.to_csv(tmp, index=False)
        return path

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0])


def read_export(path: str | os.PathLike[str]) -> list[tuple]:
    """The rows of an :meth:`ScoreStore.export` file as store records (``COLUMNS`` order).

    Every key is checked as :meth:`ScoreStore.put` checks it, and empty cells (CSV writes
    a missing value or error as an empty field) become NULL; a file that lacks a column
    is refused with one line naming what is missing.
    """
    path = Path(path)
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (ValueError, OSError) as exc:  # pyarrow's and pandas' parse errors are ValueErrors
        raise ValueError(f"{str(path)!r} is not a readable score export ({exc})") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{str(path)!r} is not a score export: it lacks the columns {missing} "
            f"(an export holds {list(COLUMNS)})"
        )
    for name in ("value", "seconds", "created"):
        numbers = pd.to_numeric(frame[name], errors="coerce")
        bad = numbers.isna() & frame[name].notna()
        if bad.any():
            at = bad.idxmax()
            raise ValueError(
                f"{str(path)!r}: {name} {frame.at[at, name]!r} of architecture "
                f"{frame.at[at, 'arch']}; expected a number"
            )
        frame[name] = numbers
    frame = frame[list(COLUMNS)].astype(object).where(frame[list(COLUMNS)].notna(), None)
    records = []
    for record in frame.itertuples(index=False, name=None):
        row = dict(zip(COLUMNS, record))
        row["arch_str"] = "" if row["arch_str"] is None else str(row["arch_str"])
        created = row.pop("created")
        ScoreRow(**row).check()
        if created is None or (row["value"] is not None and not math.isfinite(row["value"])):
            raise ValueError(
                f"{str(path)!r}: architecture {row['arch']} ({row['statistic']}) has value "
                f"{row['value']} and time {created}; expected a finite value or none, and a time"
            )
        records.append((*row.values(), created))
    return records
