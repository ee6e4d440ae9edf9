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

import hashlib
import sqlite3
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional

import orjson

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


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def body_hash(body: bytes | None) -> str | None:
    return hashlib.sha256(body).hexdigest() if body is not None else None


def record_json(record: SourceRecord) -> bytes:
    """The one serialization of a record: JSON, field names by alias."""
    return orjson.dumps(record.model_dump(mode="json", by_alias=True))


@dataclass(frozen=True)
class StoredSource:
    record: SourceRecord
    removed_at: Optional[str]


class SqlStore:
    """What the SQLite and PostgreSQL stores share: every statement that is
    the same SQL on both, written once with `?` placeholders. A backend sets
    `conn` and `transaction()`, and adapts through `_q` (its placeholder
    style) and `_text` (what its text columns cannot hold)."""

    conn: Any

    def _q(self, sql: str) -> str:
        return sql

    def _text(self, value: str) -> str:
        return value

    def close(self) -> None:
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writes ---------------------------------------------------------------
    def reject(self, site: str, url: str, stage: str, error: str, payload: bytes | None = None) -> None:
        t = self._text
        with self.transaction() as c:
            c.execute(
                self._q("INSERT INTO rejects (site, url, stage, error, payload, rejected_at) VALUES (?,?,?,?,?,?)"),
                (t(site), t(url), t(stage), t(error), zlib.compress(payload) if payload else None, utcnow()),
            )

    def mark_removed(self, site: str, url: str, when: str | None = None) -> bool:
        """Mark a stored page as gone (404/410). Returns False if it was never stored."""
        with self.transaction() as c:
            cur = c.execute(
                self._q("UPDATE sources SET removed_at=COALESCE(removed_at, ?) WHERE site=? AND url=?"),
                (when or utcnow(), site, url),
            )
            return cur.rowcount > 0

    def set_watermark(self, source: str, value: str) -> None:
        with self.transaction() as c:
            c.execute(
                self._q("INSERT INTO watermarks (source, value, updated_at) VALUES (?,?,?)"
                        " ON CONFLICT (source) DO UPDATE SET value=excluded.value,"
                        " updated_at=excluded.updated_at"),
                (source, value, utcnow()),
            )

    # -- reads ----------------------------------------------------------------
    def get_watermark(self, source: str) -> str | None:
        row = self.conn.execute(self._q("SELECT value FROM watermarks WHERE source=?"), (source,)).fetchone()
        return row[0] if row else None

    def get(self, site: str, url: str) -> StoredSource | None:
        row = self.conn.execute(
            self._q("SELECT record, removed_at FROM sources WHERE site=? AND url=?"), (site, url)
        ).fetchone()
        return StoredSource(_load(row[0]), row[1]) if row else None

    def get_body(self, site: str, url: str) -> bytes | None:
        row = self.conn.execute(
            self._q("SELECT body FROM sources WHERE site=? AND url=?"), (site, url)
        ).fetchone()
        return zlib.decompress(row[0]) if row and row[0] is not None else None

    def count(self, table: str = "sources") -> int:
        if table not in {"sources", "rejects", "watermarks"}:
            raise ValueError(table)
        return self.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]

    def rejects(self) -> list[dict]:
        rows = self.conn.execute(
            "SELECT site, url, stage, error, rejected_at FROM rejects ORDER BY id"
        ).fetchall()
        return [dict(zip(("site", "url", "stage", "error", "rejected_at"), r)) for r in rows]

    # -- incremental crawls: HTTP validators and 304s -----------------------------
    # (the validators table is created on first use, by the backend's
    # `_validators_table`, so stores made before it need no migration)
    def set_validators(self, site: str, url: str, etag: str | None, last_modified: str | None) -> None:
        """Remember the ETag and Last-Modified a page was last served with, for
        the next incremental crawl's conditional request. Both None: forget them."""
        self._validators_table()
        with self.transaction() as c:
            if etag is None and last_modified is None:
                c.execute(self._q("DELETE FROM validators WHERE site=? AND url=?"), (site, url))
                return
            c.execute(
                self._q("INSERT INTO validators (site, url, etag, last_modified, updated_at) VALUES (?,?,?,?,?)"
                        " ON CONFLICT (site, url) DO UPDATE SET etag=excluded.etag,"
                        " last_modified=excluded.last_modified, updated_at=excluded.updated_at"),
                (site, url, etag, last_modified, utcnow()),
            )

    def get_validators(self, site: str, url: str) -> tuple[str | None, str | None] | None:
        """(etag, last_modified) stored for a page, or None."""
        self._validators_table()
        row = self.conn.execute(
            self._q("SELECT etag, last_modified FROM validators WHERE site=? AND url=?"), (site, url)
        ).fetchone()
        return (row[0], row[1]) if row else None

    def touch(self, site: str, url: str) -> bool:
        """The server says a stored page has not changed (HTTP 304): move its
        `last_seen_at` (and clear `removed_at`), rewrite nothing else.
        Returns False if the page was never stored."""
        with self.transaction() as c:
            cur = c.execute(
                self._q("UPDATE sources SET last_seen_at=?, removed_at=NULL WHERE site=? AND url=?"),
                (utcnow(), site, url),
            )
            return cur.rowcount > 0


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


def _load(blob: bytes) -> SourceRecord:
    return SourceRecord.model_validate(orjson.loads(zlib.decompress(blob)))
