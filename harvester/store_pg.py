"""The record store on PostgreSQL (psycopg 3): `HARVEST_DB=postgresql://...`.

Same interface and semantics as the SQLite `harvester.store.Store`, for N
crawl workers on N machines writing at once:

* `upsert` is one statement, hence one transaction and one round trip:
  `INSERT ... ON CONFLICT (site, url) DO UPDATE ... WHERE the content hash
  differs`. The row is locked by the conflict check, so two workers writing
  the same page serialize on it: no lost update, no duplicate-key error,
  exactly one of them sees "inserted". A page whose hash did not change only
  moves `last_seen_at` (and clears `removed_at`), as in SQLite.
* rejects, `mark_removed` and watermarks as in SQLite.
* `iter_sources` streams through a server-side (named) cursor on its own
  read-only connection, in the same order as SQLite: (nct_id, site, url)
  compared byte-wise (`COLLATE "C"`, which for UTF-8 is SQLite's BINARY order
  whatever the database's locale), NCT-less rows last. Records are stored as
  the same compressed JSON blobs, so both stores give back identical records.

Timestamps are kept as the same ISO-8601 text the SQLite store writes.
"""
from __future__ import annotations

import zlib
from contextlib import contextmanager
from typing import Iterator

import psycopg

from harvester.store_base import SqlStore, StoredSource, _load, body_hash, record_json, utcnow
from items import SourceRecord

# Serializes schema creation when several workers start at once (CREATE ...
# IF NOT EXISTS is not safe against a concurrent CREATE of the same name).
_SCHEMA_LOCK = 0x68617276  # "harv"

SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    site          TEXT COLLATE "C" NOT NULL,
    url           TEXT COLLATE "C" NOT NULL,
    nct_id        TEXT COLLATE "C",
    fetched_at    TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    body_hash     TEXT,
    record        BYTEA NOT NULL,
    body          BYTEA,
    first_seen_at TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    removed_at    TEXT,
    PRIMARY KEY (site, url)
);
CREATE INDEX IF NOT EXISTS sources_nct ON sources (nct_id);
CREATE INDEX IF NOT EXISTS sources_order ON sources ((nct_id IS NULL), nct_id, site, url);
CREATE TABLE IF NOT EXISTS rejects (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site        TEXT NOT NULL,
    url         TEXT NOT NULL,
    stage       TEXT NOT NULL,
    error       TEXT NOT NULL,
    payload     BYTEA,
    rejected_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS watermarks (
    source     TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""

# One statement, so one round trip and its own transaction: the INSERT ...
# ON CONFLICT either inserts the row, or (the row exists) locks it and
# rewrites it when the content hash differs; only when it did neither (same
# hash) does the second part move last_seen_at and clear removed_at.
_UPSERT = """
WITH written AS (
    INSERT INTO sources AS s (site, url, nct_id, fetched_at, content_hash, body_hash, record, body,
                              first_seen_at, last_seen_at, updated_at)
    VALUES (%(site)s, %(url)s, %(nct_id)s, %(fetched_at)s, %(content_hash)s, %(body_hash)s, %(record)s,
            %(body)s, %(now)s, %(now)s, %(now)s)
    ON CONFLICT (site, url) DO UPDATE SET
        nct_id = EXCLUDED.nct_id, fetched_at = EXCLUDED.fetched_at, content_hash = EXCLUDED.content_hash,
        body_hash = EXCLUDED.body_hash, record = EXCLUDED.record, body = EXCLUDED.body,
        last_seen_at = EXCLUDED.last_seen_at, updated_at = EXCLUDED.updated_at, removed_at = NULL
    WHERE s.content_hash IS DISTINCT FROM EXCLUDED.content_hash
    RETURNING (s.xmax = 0) AS inserted
), seen AS (
    UPDATE sources SET last_seen_at = %(now)s, removed_at = NULL
    WHERE site = %(site)s AND url = %(url)s AND NOT EXISTS (SELECT 1 FROM written)
    RETURNING 1
)
SELECT (SELECT inserted FROM written), EXISTS (SELECT 1 FROM seen)
"""

_ORDER = ' ORDER BY nct_id IS NULL, nct_id COLLATE "C", site COLLATE "C", url COLLATE "C"'


class PgStore(SqlStore):
    """PostgreSQL-backed store. Use as a context manager or call `close()`."""

    def __init__(self, url: str):
        self.url = url
        try:
            self.conn = psycopg.connect(url, autocommit=True)
        except psycopg.OperationalError as exc:
            raise ConnectionError(f"cannot connect to the PostgreSQL store: {exc}".strip()) from None
        with self.transaction() as c:
            c.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            c.execute(SCHEMA)

    def _q(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def _text(self, value: str) -> str:
        """PostgreSQL text cannot hold NUL; SQLite's can. Keep the rest as is."""
        return value.replace("\x00", "\ufffd")

    @classmethod
    def from_settings(cls, settings) -> "PgStore":
        return cls(settings.get("HARVEST_DB"))

    @contextmanager
    def transaction(self):
        with self.conn.transaction():
            yield self.conn

    # -- writes ---------------------------------------------------------------
    def upsert(self, record: SourceRecord, body: bytes | None = None) -> str:
        """Insert or update the row of (site, url). Returns "inserted",
        "updated" or "unchanged" (same content hash: nothing rewritten but the
        last-seen time, and a page that had been marked gone is back)."""
        if not record.content_hash:
            raise ValueError("record has no content_hash; run it through the validation pipeline")
        now = utcnow()
        params = {
            "site": record.site,
            "url": record.url,
            "nct_id": record.nct_id,
            "fetched_at": record.fetched_at.isoformat(),
            "content_hash": record.content_hash,
            "body_hash": body_hash(body),
            "record": zlib.compress(record_json(record)),
            "body": zlib.compress(body) if body is not None else None,
            "now": now,
        }
        inserted, _seen = self.conn.execute(_UPSERT, params).fetchone()
        if inserted is None:
            # Same hash. (A row another worker committed after this statement
            # began is not visible to its second part; that writer has just
            # set last_seen_at and removed_at itself.)
            return "unchanged"
        return "inserted" if inserted else "updated"

    # -- reads ----------------------------------------------------------------
    def iter_sources(self, include_removed: bool = True, itersize: int = 256) -> Iterator[StoredSource]:
        """Every stored record, ordered by (nct_id, site, url), NCT-less ones
        last. Streams through a server-side cursor (`itersize` rows per
        round trip) on a read-only connection of its own, so the store stays
        usable while a consumer iterates, and all rows come from one snapshot."""
        sql = "SELECT record, removed_at FROM sources"
        if not include_removed:
            sql += " WHERE removed_at IS NULL"
        sql += _ORDER
        with psycopg.connect(self.url) as conn:
            conn.read_only = True
            with conn.cursor(name="harvester_iter_sources") as cur:
                cur.itersize = itersize
                cur.execute(sql)
                for rec, removed in cur:
                    yield StoredSource(_load(rec), removed)

    def sources_for(self, nct_ids) -> list[StoredSource]:
        """The stored records of the given NCT IDs (by the nct_id index), in
        store order."""
        ids = sorted(set(nct_ids))
        if not ids:
            return []
        rows = self.conn.execute(
            "SELECT record, removed_at FROM sources WHERE nct_id = ANY(%s)"
            ' ORDER BY nct_id COLLATE "C", site COLLATE "C", url COLLATE "C"', (ids,)
        ).fetchall()
        return [StoredSource(_load(rec), removed) for rec, removed in rows]

    # -- incremental crawls: HTTP validators and 304s -----------------------------
    # (added for issue 7; same semantics as the SQLite store's; the table is
    # created on first use, under the schema lock)
    def _validators_table(self) -> None:
        if not getattr(self, "_has_validators", False):
            with self.transaction() as c:
                c.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                c.execute(
                    'CREATE TABLE IF NOT EXISTS validators (site TEXT COLLATE "C" NOT NULL,'
                    ' url TEXT COLLATE "C" NOT NULL, etag TEXT, last_modified TEXT,'
                    ' updated_at TEXT NOT NULL, PRIMARY KEY (site, url))'
                )
            self._has_validators = True

