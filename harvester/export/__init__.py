"""Analytics tables from the store: `scrapy export --format parquet|duckdb|sqlite|csv -O PATH`.

    summary = export(settings, "parquet", "out/tables")

Reads the store through reconciliation (the very lines `scrapy reconcile`
writes to `canonical.jsonl` and `unlinked.jsonl`) and writes flat tables, one
row per NCT ID in `trials` and child tables keyed by `nct_id`
(`harvester.export.layout` derives them from the data contract;
`items/schema/tables.sql` and `tables.schema.json` publish them). DuckDB does
the writing (`harvester.export.engine`).

Outputs: `parquet` and `csv` write a directory with one `<table>.parquet` /
`<table>.csv` per table; `duckdb` and `sqlite` one database file (SQLite with
the Datasette views and a `metadata.json` beside it, see
`harvester.export.datasette`). Every output is built under a temporary name
and moved into place when complete. When the store is PostgreSQL, the same
tables are refreshed in the schema `HARVEST_EXPORT_SCHEMA` (default
`export`) of that database by the same run.
"""
from __future__ import annotations

import logging
import shutil
import time
from datetime import datetime, timezone
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import orjson

from harvester.export.engine import FORMATS, ChunkSink, Loader, replace_path, workspace
from harvester.export.layout import Table, build_tables

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_BYTES = 32 << 20


@dataclass
class ExportSummary:
    fmt: str
    output: Optional[str]
    rows: dict[str, int] = field(default_factory=dict)
    reconcile: dict[str, int] = field(default_factory=dict)
    postgres_schema: Optional[str] = None
    seconds: float = 0.0
    jsonl_bytes: int = 0  # the canonical JSON lines read (the size canonical.jsonl would have)

    def as_stats(self) -> dict[str, Any]:
        stats = {f"export/rows/{name}": n for name, n in self.rows.items()}
        stats.update(self.reconcile)
        return stats


def _get(settings: Any, name: str, default: Any = None) -> Any:
    if settings is None:
        return default
    value = settings.get(name, default)
    return default if value is None else value


class AsOf:
    """The store as it was at a point in time: `iter_sources` gives each
    page's version current then (the versioned store's `iter_sources_as_of`),
    so reconciliation rebuilds the trials of that moment."""

    def __init__(self, store: Any, when: str):
        self.store, self.when = store, when

    def iter_sources(self, include_removed: bool = True, raw: bool = False, link: bool = False):
        return self.store.iter_sources_as_of(self.when, include_removed=include_removed, raw=raw, link=link)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def change_feed():
    """The change feed's iterator (`harvester.changes.iter_changes`), or None
    where the store keeps no history to compute it from."""
    try:
        from harvester.changes import iter_changes
    except ImportError:
        return None
    return iter_changes


def export(settings: Any, fmt: Optional[str], output: Optional[str], *, store: Any = None,
           metadata: Optional[str] = None, as_of: Optional[str] = None, changes_since: Optional[str] = None,
           tables: Optional[dict[str, Table]] = None) -> ExportSummary:
    """Reconcile the store of `settings` (or `store`) and write the tables.

    `fmt` and `output` may both be None when the store is PostgreSQL: then
    only its export schema is refreshed."""
    from harvester.reconciliation import reconcile
    from harvester.store import is_postgres_url, open_store

    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    if (fmt is None) != (output is None):
        raise ValueError("give both a format and an output path")
    start = time.perf_counter()
    tables = tables or build_tables()
    db_url = str(_get(settings, "HARVEST_DB", "") or "")
    pg_schema = _get(settings, "HARVEST_EXPORT_SCHEMA", "export") if is_postgres_url(db_url) else None
    if as_of is not None:
        from harvester.store_base import as_timestamp

        as_of = as_timestamp(as_of)  # a clear error now, not after the store is opened
    if changes_since is not None:
        from harvester.store_base import as_timestamp

        changes_since = as_timestamp(changes_since)
    if output is None and pg_schema is None:
        raise ValueError("no output: give -O PATH (only a PostgreSQL store can be refreshed in place)")
    target = Path(output) if output else None
    work = workspace(target) if target else workspace(Path.cwd() / "export")
    sinks: list[tuple] = []
    if fmt in ("parquet", "csv"):
        sinks.append((fmt, str(work / "out")))
    elif fmt == "sqlite":
        from harvester.export import datasette

        sinks.append(("sqlite", str(work / "out"), datasette.views(tables)))
    elif fmt == "duckdb":
        sinks.append(("duckdb", str(work / "out")))
    if pg_schema:
        sinks.append(("postgresql", db_url, pg_schema))
    loader = None
    try:
        loader = Loader(tables, sinks, work,
                        memory_limit=str(_get(settings, "HARVEST_EXPORT_MEMORY", "512MB")),
                        threads=_get(settings, "HARVEST_EXPORT_THREADS", None))
        chunk = int(_get(settings, "HARVEST_EXPORT_CHUNK_BYTES", DEFAULT_CHUNK_BYTES))
        trials_out = ChunkSink(work, lambda p: loader.submit("trials", p), chunk, "trials")
        unlinked_out = ChunkSink(work, lambda p: loader.submit("unlinked", p), chunk, "unlinked")
        own_store = store is None
        store = store if store is not None else open_store(settings)
        try:
            rsummary = reconcile(AsOf(store, as_of) if as_of else store, trials_out, unlinked_out, settings)
            trials_out.close()
            unlinked_out.close()
            feed = change_feed()
            if feed is not None and hasattr(store, "changed_pages"):
                changes_out = ChunkSink(work, lambda p: loader.submit("changes", p), chunk, "changes")
                until = as_of or datetime.now(timezone.utc)
                since = changes_since or _get(settings, "HARVEST_EXPORT_CHANGES_SINCE", None)
                for change in feed(store, since, until, settings):
                    changes_out.write(orjson.dumps(change) + b"\n")
                changes_out.close()
        finally:
            if own_store:
                store.close()
        loader.finish()
        summary = ExportSummary(fmt or "postgresql", output, reconcile=rsummary.as_stats())
        summary.rows = dict(loader.counts)
        summary.postgres_schema = pg_schema
        summary.jsonl_bytes = trials_out.bytes
        if target is not None:
            replace_path(work / "out", target)
        if fmt == "sqlite":
            meta = Path(metadata) if metadata else target.with_name("metadata.json")
            datasette.write_metadata(meta, target, tables)
        summary.seconds = round(time.perf_counter() - start, 1)
        return summary
    finally:
        if loader is not None:
            loader.abort()
        shutil.rmtree(work, ignore_errors=True)
