"""The shipped NB201 score table: training-free statistics packaged with cbred.

The table is made by the scoring engine (``cbred score`` into a store) and packed
here as Parquet, one row per scored architecture and one column per statistic,
so that C-BRED and the searches run on NB201 without scoring anything.  Its
``attrs`` record the setting it was scored under and its coverage of the space.

    python -m cbred.bench.score_table --store scores.db --out table.parquet   # pack a store
    python -m cbred.bench.score_table --store scores.db --merge rest.db --out table.parquet
    python -m cbred.bench.score_table --store scores.db --out bench/data/nb201_scores.parquet
        # re-pack the shipped table, only ever on purpose
    python -m cbred.bench.score_table --store live.db --add-to bench/data/nb201_scores.parquet \\
        --statistics zen,az_expressivity
        # add a store's statistics (its rows under the table's setting, at the current code's
        # version, every architecture of the table covered) as new columns
    python -m cbred.bench.score_table --derive bench/data/nb201_scores.parquet
        # (re)compute the derived column ``recommended`` (the label-free ensemble) in place
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources

import pandas as pd
from cbred._files import atomic_output
from cbred.bench.nb201 import SPACE_SIZE, default_space

TABLE_NAME = "nb201_scores.parquet"
SETTING_COLUMNS = ("dataset", "batch_size", "seed")


def pack_store(
    store_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    channels: int = 16,
    cells_per_stage: int = 5,
) -> pd.DataFrame:
    """Write the NB201 rows of a score store as a wide Parquet table; returns it.

    The store must hold a single setting (data set, batch size, seed); failed values
    stay NaN.  ``channels``/``cells_per_stage`` name the network width it was scored at.
    """
    rows, settings = _store_rows(store_path)
    table = _wide(rows)
    table.insert(0, "arch_str", [default_space().string(int(a)) for a in table.index])
    table = with_derived(table)
    table.attrs = {
        "dataset": str(settings.iloc[0]["dataset"]),
        "batch_size": int(settings.iloc[0]["batch_size"]),
        "seed": int(settings.iloc[0]["seed"]),
        "channels": channels,
        "cells_per_stage": cells_per_stage,
        "versions": rows.groupby("statistic")["version"].first().to_dict(),
        "coverage": len(table) / SPACE_SIZE,
        **_derived_attrs(table),
    }
    with atomic_output(out) as tmp:
        table.to_parquet(tmp)
    return table


def _store_rows(store_path: str | os.PathLike[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The NB201 rows of a store and its one setting (a one-row frame of SETTING_COLUMNS)."""
    from cbred.proxies.store import ScoreStore

    with ScoreStore(store_path) as store:
        rows = store.frame(space="nb201")
    if rows.empty:
        raise ValueError(f"score store {str(store_path)!r} has no NB201 rows")
    settings = rows[list(SETTING_COLUMNS)].drop_duplicates()
    if len(settings) != 1:
        raise ValueError(f"score store mixes settings {settings.to_dict('records')}; pack one")
    return rows, settings


def _wide(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per architecture, one column per statistic (failed values NaN)."""
    table = rows.pivot_table(
        index="arch", columns="statistic", values="value", aggfunc="first", dropna=False
    )
    table.columns.name = None
    return table


def add_columns(
    table_path: str | os.PathLike[str],
    store_path: str | os.PathLike[str],
    statistics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Add statistics of a store as columns of the table at ``table_path``, in place.

    The shipped table grows this way without rescoring what it holds.  The store may hold
    other settings too (a live store of several seeds): only its rows under the table's
    setting (data set, batch size, seed) are read, and only those of the version the
    current code gives the statistic at the table's network setting (values of older code,
    or of another width, are never added).  ``statistics`` names which to add (default:
    every one the store holds there); each must cover every architecture of the table, and
    a statistic the table already has is replaced only at the same version.
    """
    table = pd.read_parquet(table_path)
    rows = _table_setting_rows(table, store_path, statistics)
    new = _wide(rows)
    missing = table.index.difference(new.index)
    if len(missing):
        raise ValueError(
            f"store {str(store_path)!r} covers {len(table) - len(missing)} of the table's "
            f"{len(table)} architectures (first missing: {int(missing[0])}); score the rest first"
        )
    versions = rows.groupby("statistic")["version"].first().to_dict()
    held = dict(table.attrs.get("versions", {}))
    for name in new.columns:
        if name in table.columns and held.get(name) != versions[name]:
            raise ValueError(
                f"the table's {name} has version {held.get(name)}, the store's {versions[name]}"
            )
    attrs = {k: v for k, v in table.attrs.items() if k != "derived"}
    grown = table.drop(columns=list(new.columns), errors="ignore")
    grown = grown.join(new.reindex(table.index))
    grown = with_derived(grown)
    grown.attrs = {**attrs, "versions": {**held, **versions}, **_derived_attrs(grown)}
    with atomic_output(table_path) as tmp:
        grown.to_parquet(tmp)
    return grown


def _table_setting_rows(
    table: pd.DataFrame, store_path: str | os.PathLike[str], statistics: Sequence[str] | None
) -> pd.DataFrame:
    """The store's NB201 rows under ``table``'s setting, of ``statistics`` (default: all
    there), each at the current code's version for the table's network setting."""
    from cbred.proxies.engine import statistic_version
    from cbred.proxies.store import ScoreStore

    setting = {k: table.attrs.get(k) for k in SETTING_COLUMNS}
    with ScoreStore(store_path) as store:
        rows = store.frame(space="nb201", **setting)
        if rows.empty:
            held = store.frame(space="nb201")[list(SETTING_COLUMNS)].drop_duplicates()
            raise ValueError(
                f"store {str(store_path)!r} has no NB201 rows under the table's setting "
                f"{setting} (it holds {held.to_dict('records')})"
            )
    names = sorted(rows["statistic"].unique()) if statistics is None else list(statistics)
    absent = sorted(set(names) - set(rows["statistic"]))
    if absent:
        raise ValueError(
            f"store {str(store_path)!r} has no rows of {absent} under the table's setting "
            f"{setting}; it has {sorted(rows['statistic'].unique())}"
        )
    network = default_space().with_setting(
        channels=table.attrs.get("channels", 16),
        cells_per_stage=table.attrs.get("cells_per_stage", 5),
    )
    current = {name: statistic_version(name, network.setting_key) for name in names}
    rows = rows[rows["statistic"].isin(names)]
    rows = rows[rows["version"] == rows["statistic"].map(current)]
    current_held = set(rows["statistic"])
    stale = [name for name in names if name not in current_held]
    if stale:
        raise ValueError(
            f"store {str(store_path)!r} holds {stale} only at versions other than the current "
            f"code's for the table's network ({network.setting_key}: "
            f"{', '.join(current[n] for n in stale)}); rescore them"
        )
    return rows


def with_derived(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the ``recommended`` ensemble column (:func:`proxies.recommended` over
    the table's rows) when it holds every member, computed afresh; else unchanged."""
    from cbred.proxies.ensemble import RECOMMENDED, recommended

    members = RECOMMENDED[1]
    table = table.drop(columns=["recommended"], errors="ignore")
    if not all(m in table.columns for m in members):
        return table
    out = table.copy()
    out["recommended"] = recommended({m: table[m].to_numpy() for m in members})
    out.attrs = dict(table.attrs)
    return out


def _derived_attrs(table: pd.DataFrame) -> dict:
    from cbred.proxies.ensemble import RECOMMENDED

    if "recommended" not in table.columns:
        return {}
    aggregate, members = RECOMMENDED
    return {"derived": {"recommended": f"{aggregate} of {', '.join(members)} over these rows"}}


def derive(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Rewrite the table at ``path`` with its derived columns (re)computed; returns it."""
    table = pd.read_parquet(path)
    attrs = {k: v for k, v in table.attrs.items() if k != "derived"}
    table = with_derived(table)
    table.attrs = {**attrs, **_derived_attrs(table)}
    with atomic_output(path) as tmp:
        table.to_parquet(tmp)
    return table


@lru_cache(maxsize=1)
def shipped_scores() -> pd.DataFrame:
    """The packaged table (index: NB201 index; columns: arch_str and statistics)."""
    path = resources.files("cbred.bench") / "data" / TABLE_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"no shipped score table at {path}; score the space with 'cbred score' and pack "
            "it with 'python -m cbred.bench.score_table --store scores.db --out "
            "bench/data/nb201_scores.parquet'"
        )
    with resources.as_file(path) as file:
        return pd.read_parquet(file)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Pack a score store into the shipped table.")
    parser.add_argument(
        "--derive",
        metavar="TABLE",
        help="only (re)compute the derived columns (the recommended ensemble) of TABLE in place",
    )
    parser.add_argument("--store")
    parser.add_argument(
        "--add-to",
        metavar="TABLE",
        help="add --store's statistics as columns of TABLE in place (its rows under TABLE's "
        "setting, at the current code's version; every architecture of TABLE scored)",
    )
    parser.add_argument(
        "--statistics",
        metavar="NAMES",
        help="with --add-to: comma-separated statistics to add (default: every one the store "
        "holds under TABLE's setting)",
    )
    parser.add_argument(
        "--merge", nargs="+", default=[], metavar="DB", help="stores merged into --store first"
    )
    parser.add_argument(
        "--out",
        help="Parquet file to write; the shipped table in the package is never a default "
        f"(to re-pack it on purpose, name bench/data/{TABLE_NAME})",
    )
    args = parser.parse_args(argv)
    if args.derive:
        table = derive(args.derive)
        added = "recommended" if "recommended" in table.columns else "nothing (members missing)"
        print(f"derived {added} for {len(table)} architectures -> {args.derive}")
        return 0
    if not (args.store and (args.out or args.add_to)):
        parser.error("--store with --out or --add-to TABLE is required (or --derive TABLE)")
    if args.statistics and not args.add_to:
        parser.error("--statistics names what --add-to TABLE adds; give --add-to")
    if args.merge:
        from cbred.proxies.store import ScoreStore

        with ScoreStore(args.store) as store:
            for other in args.merge:
                print(f"merged {store.merge(other)} rows of {other} into {args.store}")
    if args.add_to:
        names = [n.strip() for n in args.statistics.split(",")] if args.statistics else None
        table = add_columns(args.add_to, args.store, names)
        print(f"{args.add_to} now holds {[c for c in table.columns if c != 'arch_str']}")
        return 0
    table = pack_store(args.store, args.out)
    stats = [c for c in table.columns if c != "arch_str"]
    print(
        f"packed {len(table)} architectures ({table.attrs['coverage']:.1%} of NB201), "
        f"statistics {stats} -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    from cbred.bench.cli import module_main

    raise SystemExit(module_main(main, "cbred.bench.score_table"))
