"""The record store: every version of every page, knowing nothing of sites.

SQLite by default (`HARVEST_DB`, a path or `sqlite:///path`); PostgreSQL
for `HARVEST_DB=postgresql://...` (`harvester.store_pg`, same interface and
semantics, for several crawl workers writing at once). Open either with
`open_store(url_or_settings)`.

Tables
------
* `versions`: every distinct content version of every page, append-only:
  (site, url, seq) with the record (compressed JSON), the body it was read
  from (compressed; for the CT.gov API the full study JSON, so nothing is
  lost when the schema grows), `first_seen_at` / `last_seen_at`,
  `current_from` (when it became the page's current version; NULL while
  quarantined) and, for a version the integrity gate held back, its
  `quarantine` reason and `accepted_at`, and the data contract its record
  was written under (`contract`, `store_base.record_contract()`; NULL for
  records stored before schema 3: those are validated again when read) and
  the fields linking reads of it (`link_fields`, JSON, so reconciliation's
  first pass reads those instead of every record; NULL before schema 4)
  and the Content-Type header the body was served with (`content_type`,
  as served; "" when the server sent none; NULL before schema 5: `scrapy
  reparse` guesses it then). A version is decided by the
  record's content hash (what the page says, not when it was read, and not
  a date the site prints): a re-crawl with the same content adds nothing
  and only moves `last_seen_at`. Content that comes back after another
  version is a new version again (seq n+1), so the history reads in order.
* `sources`: one row per (site, url): which version is current
  (`version`, its seq; its NCT ID and content hash beside it), first and
  last seen, `removed_at` while the page is gone. The record and body live
  in `versions` only, so each version is stored once (the `record` and
  `body` columns of `sources` are empty; read records through the store:
  `iter_sources`, `get`, `sources_for`, or join `versions` on the seq).
* `gone`: when a page went (404/410) and came back, so a past state can be
  rebuilt (`iter_sources_as_of`).
* `rejects` (pages that could not become a record, with their error),
  `watermarks` (incremental crawls), `validators` (ETag/Last-Modified),
  `meta` (`schema_version`).

Every write is a transaction, and all of them go through `SqlStore._write`
(one page) so there is one write path for both backends. Before a new
version becomes current, `harvester.integrity.IntegrityGate` compares it
with the current one: a degraded version is kept but quarantined (outcome
"quarantined"), the current version stays, and `accept()` promotes it once
a person has checked it.

A store written by a release before versions were kept is upgraded in
place when opened: each page's stored record and body become its version
1 (first seen when it was last updated: older content was never kept),
each gone page an open `gone` interval; nothing is dropped. A store of an
older schema gets the columns added since (NULL in its rows), nothing else.

Timestamps are ISO-8601 UTC text with microseconds (`utcnow`); older rows
have whole seconds and still compare in order.
"""
from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from harvester.integrity import IntegrityGate
from harvester.store_base import (  # noqa: F401  (re-exported: the store's public names)
    SCHEMA_VERSION,
    SqlStore,
    StoredSource,
    _load,
    as_timestamp,
    body_hash,
    record_json,
    utcnow,
)

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
    version       INTEGER,
    contract      TEXT,
    link_fields   TEXT,
    content_type  TEXT,
    PRIMARY KEY (site, url)
);
CREATE INDEX IF NOT EXISTS sources_nct ON sources (nct_id);
CREATE TABLE IF NOT EXISTS versions (
    site          TEXT NOT NULL,
    url           TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    nct_id        TEXT,
    fetched_at    TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    body_hash     TEXT,
    record        BLOB NOT NULL,
    body          BLOB,
    first_seen_at TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    current_from  TEXT,
    quarantine    TEXT,
    accepted_at   TEXT,
    contract      TEXT,
    link_fields   TEXT,
    content_type  TEXT,
    PRIMARY KEY (site, url, seq)
);
CREATE INDEX IF NOT EXISTS versions_nct ON versions (nct_id);
CREATE INDEX IF NOT EXISTS versions_current_from ON versions (current_from);
CREATE TABLE IF NOT EXISTS gone (
    site    TEXT NOT NULL,
    url     TEXT NOT NULL,
    gone_at TEXT NOT NULL,
    back_at TEXT,
    PRIMARY KEY (site, url, gone_at)
);
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
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
)
"""


class Store(SqlStore):
    """SQLite-backed store. Use as a context manager or call `close()`."""

    def __init__(self, path: str | Path):
        super().__init__()
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
        with self.transaction() as c:
            self._migrate(c, [s for s in SCHEMA.split(";") if s.strip()], _sqlite_has_table, _sqlite_columns)

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

    def _validators_table(self) -> None:
        if not getattr(self, "_has_validators", False):
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS validators (site TEXT NOT NULL, url TEXT NOT NULL,"
                " etag TEXT, last_modified TEXT, updated_at TEXT NOT NULL, PRIMARY KEY (site, url))"
            )
            self._has_validators = True


def _sqlite_has_table(c, name: str) -> bool:
    return c.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone() is not None


def _sqlite_columns(c, table: str) -> set[str]:
    return {row[1] for row in c.execute(f"PRAGMA table_info({table})")}


POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(target: str) -> bool:
    return str(target).startswith(POSTGRES_SCHEMES)


def open_store(target) -> "Store | PgStore":
    """Open the store named by `target`: a path or `sqlite:///path` (SQLite),
    or a `postgresql://` / `postgres://` URL (PostgreSQL, `harvester.store_pg`).
    `target` may also be Scrapy settings (or a dict): their `HARVEST_DB`,
    and `HARVEST_INTEGRITY_FIELDS` for the integrity gate."""
    settings = None
    if not isinstance(target, (str, Path)):
        settings, target = target, target.get("HARVEST_DB")
    if not target:
        raise ValueError("no store given: set HARVEST_DB to a path, sqlite:///path or postgresql://...")
    if is_postgres_url(str(target)):
        from harvester.store_pg import PgStore

        store = PgStore(str(target))
    else:
        store = Store(target)
    if settings is not None:
        store.gate = IntegrityGate.from_settings(settings)
    return store
