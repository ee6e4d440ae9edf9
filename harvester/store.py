"""The record store: one row per (site, url), knowing nothing of sites.

SQLite by default (`HARVEST_DB`, a path or `sqlite:///path`); PostgreSQL
for `HARVEST_DB=postgresql://...` (`harvester.store_pg`, same interface and
semantics, for several crawl workers writing at once). Open either with
`open_store(url_or_settings)`. Every write is a transaction; a re-crawl upserts the row, and a page whose content hash did
not change is left untouched (only `last_seen_at` moves). Records that fail
validation go to `rejects` with their error: never silently dropped. Pages
that disappear (404/410) are marked `removed_at`, never deleted. Watermarks
let incremental crawls resume from the last successful run.

The raw body (for the CT.gov API: the full study JSON) is kept compressed so
nothing is lost when the schema grows.
"""
from __future__ import annotations

import sqlite3
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from harvester.store_base import SqlStore, StoredSource, _load, body_hash, record_json, utcnow  # noqa: F401
from items import SourceRecord

if TYPE_CHECKING:
    from harvester.store_pg import PgStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    site          TEXT NOT NULL,
    url           TEXT NOT NULL,
    nct_id        TEXT,
    fetched_at    TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    body_hash     TEXT,
    record        BLOB NOT NULL,
    body          BLOB,
    first_seen_at TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    removed_at    TEXT,
    PRIMARY KEY (site, url)
);
CREATE INDEX IF NOT EXISTS sources_nct ON sources (nct_id);
CREATE TABLE IF NOT EXISTS rejects (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    site        TEXT NOT NULL,
    url         TEXT NOT NULL,
    stage       TEXT NOT NULL,
    error       TEXT NOT NULL,
    payload     BLOB,
    rejected_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS watermarks (
    source     TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""


class Store(SqlStore):
    """SQLite-backed store. Use as a context manager or call `close()`."""

    def __init__(self, path: str | Path):
        path = str(path)
        if is_postgres_url(path):
            raise ValueError(f"{path.split('@')[-1]!r} is a PostgreSQL URL: open it with open_store()")
        if path.startswith("sqlite:///"):
            path = path[len("sqlite:///"):]
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(SCHEMA)

    @classmethod
    def from_settings(cls, settings) -> "Store | PgStore":
        """The store `HARVEST_DB` names: SQLite or PostgreSQL (see `open_store`)."""
        return open_store(settings)

    @contextmanager
    def transaction(self):
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- writes ---------------------------------------------------------------
    def upsert(self, record: SourceRecord, body: bytes | None = None) -> str:
        """Insert or update the row of (site, url). Returns "inserted",
        "updated" or "unchanged" (same content hash: nothing rewritten but the
        last-seen time, and a page that had been marked gone is back)."""
        if not record.content_hash:
            raise ValueError("record has no content_hash; run it through the validation pipeline")
        now = utcnow()
        with self.transaction() as c:
            row = c.execute(
                "SELECT content_hash, removed_at FROM sources WHERE site=? AND url=?",
                (record.site, record.url),
            ).fetchone()
            if row is not None and row[0] == record.content_hash:
                c.execute(
                    "UPDATE sources SET last_seen_at=?, removed_at=NULL WHERE site=? AND url=?",
                    (now, record.site, record.url),
                )
                return "unchanged"
            values = (
                record.nct_id,
                record.fetched_at.isoformat(),
                record.content_hash,
                body_hash(body),
                zlib.compress(record_json(record)),
                zlib.compress(body) if body is not None else None,
            )
            if row is None:
                c.execute(
                    "INSERT INTO sources (nct_id, fetched_at, content_hash, body_hash, record, body,"
                    " site, url, first_seen_at, last_seen_at, updated_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    values + (record.site, record.url, now, now, now),
                )
                return "inserted"
            c.execute(
                "UPDATE sources SET nct_id=?, fetched_at=?, content_hash=?, body_hash=?, record=?,"
                " body=?, last_seen_at=?, updated_at=?, removed_at=NULL WHERE site=? AND url=?",
                values + (now, now, record.site, record.url),
            )
            return "updated"

    # -- reads ----------------------------------------------------------------
    def iter_sources(self, include_removed: bool = True) -> Iterator[StoredSource]:
        """Every stored record, ordered by (nct_id, site, url), NCT-less ones
        last. Streams: one row in memory at a time."""
        sql = "SELECT record, removed_at FROM sources"
        if not include_removed:
            sql += " WHERE removed_at IS NULL"
        sql += " ORDER BY nct_id IS NULL, nct_id, site, url"
        cur = self.conn.cursor()
        cur.arraysize = 256
        for rec, removed in cur.execute(sql):
            yield StoredSource(_load(rec), removed)

    def sources_for(self, nct_ids) -> list[StoredSource]:
        """The stored records of the given NCT IDs (by the nct_id index), in
        store order."""
        ids = sorted(set(nct_ids))
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self.conn.execute(
            f"SELECT record, removed_at FROM sources WHERE nct_id IN ({marks}) ORDER BY nct_id, site, url", ids
        ).fetchall()
        return [StoredSource(_load(rec), removed) for rec, removed in rows]

    # -- incremental crawls: HTTP validators and 304s -----------------------------
    # (added for issue 7; the table is created on first use, so stores made
    # before it need no migration)
    def _validators_table(self) -> None:
        if not getattr(self, "_has_validators", False):
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS validators (site TEXT NOT NULL, url TEXT NOT NULL,"
                " etag TEXT, last_modified TEXT, updated_at TEXT NOT NULL, PRIMARY KEY (site, url))"
            )
            self._has_validators = True


POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(target: str) -> bool:
    return str(target).startswith(POSTGRES_SCHEMES)


def open_store(target) -> "Store | PgStore":
    """Open the store named by `target`: a path or `sqlite:///path` (SQLite),
    or a `postgresql://` / `postgres://` URL (PostgreSQL, `harvester.store_pg`).
    `target` may also be Scrapy settings (or a dict): their `HARVEST_DB`."""
    if not isinstance(target, (str, Path)):
        target = target.get("HARVEST_DB")
    if not target:
        raise ValueError("no store given: set HARVEST_DB to a path, sqlite:///path or postgresql://...")
    if is_postgres_url(str(target)):
        from harvester.store_pg import PgStore

        return PgStore(str(target))
    return Store(target)
