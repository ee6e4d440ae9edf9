"""The record store on PostgreSQL (psycopg 3): `HARVEST_DB=postgresql://...`.

Same interface, semantics and statements as the SQLite
`harvester.store.Store` (both are `SqlStore`), for N crawl workers on N
machines writing at once:

* a write (`SqlStore._write`) runs in one transaction that first takes a
  transaction-scoped advisory lock on the page (a hash of site and URL), so
  two workers writing the same page serialize on it: no lost update, no
  duplicate version number, exactly one of them sees "inserted"; writers of
  different pages do not wait for each other.
* `iter_sources` and `iter_sources_as_of` stream through a server-side
  (named) cursor on their own read-only connection, in the same order as
  SQLite: (nct_id, site, url) compared byte-wise (`COLLATE "C"`, which for
  UTF-8 is SQLite's BINARY order whatever the database's locale), NCT-less
  rows last. Records are stored as the same compressed JSON blobs, so both
  stores give back identical records.
* the schema is created, and a store of the release before versions
  upgraded, under a global advisory lock, so workers starting at once do
  not race.

Timestamps are kept as the same ISO-8601 text the SQLite store writes.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

try:
    import psycopg
except ImportError as exc:  # the core install has no PostgreSQL driver
    raise ImportError(f"the PostgreSQL store needs the [pg] extra ({exc}): "
                      "pip install -c constraints.txt -e '.[pg]'") from exc

from harvester.redact import redact_text, redact_url
from harvester.store_base import (  # noqa: F401  (StoredSource: re-exported)
    SqlStore, StoredSource, _current_sql, _load, _stored)

# Serializes schema creation when several workers start at once (CREATE ...
# IF NOT EXISTS is not safe against a concurrent CREATE of the same name).
_SCHEMA_LOCK = 0x68617276  # "harv"

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS sources (
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
    version       INTEGER,
    contract      TEXT,
    link_fields   TEXT,
    content_type  TEXT,
    PRIMARY KEY (site, url)
)""",
    "CREATE INDEX IF NOT EXISTS sources_nct ON sources (nct_id)",
    "CREATE INDEX IF NOT EXISTS sources_order ON sources ((nct_id IS NULL), nct_id, site, url)",
    """CREATE TABLE IF NOT EXISTS versions (
    site          TEXT COLLATE "C" NOT NULL,
    url           TEXT COLLATE "C" NOT NULL,
    seq           INTEGER NOT NULL,
    nct_id        TEXT COLLATE "C",
    fetched_at    TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    body_hash     TEXT,
    record        BYTEA NOT NULL,
    body          BYTEA,
    first_seen_at TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    current_from  TEXT COLLATE "C",
    quarantine    TEXT,
    accepted_at   TEXT,
    contract      TEXT,
    link_fields   TEXT,
    content_type  TEXT,
    PRIMARY KEY (site, url, seq)
)""",
    "CREATE INDEX IF NOT EXISTS versions_nct ON versions (nct_id)",
    "CREATE INDEX IF NOT EXISTS versions_current_from ON versions (current_from)",
    """CREATE TABLE IF NOT EXISTS gone (
    site    TEXT COLLATE "C" NOT NULL,
    url     TEXT COLLATE "C" NOT NULL,
    gone_at TEXT COLLATE "C" NOT NULL,
    back_at TEXT COLLATE "C",
    PRIMARY KEY (site, url, gone_at)
)""",
    """CREATE TABLE IF NOT EXISTS rejects (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site        TEXT NOT NULL,
    url         TEXT NOT NULL,
    stage       TEXT NOT NULL,
    error       TEXT NOT NULL,
    payload     BYTEA,
    rejected_at TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS watermarks (
    source     TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
)""",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


def _has_table(c, name: str) -> bool:
    return c.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]


def _columns(c, table: str) -> set[str]:
    rows = c.execute("SELECT column_name FROM information_schema.columns"
                     " WHERE table_schema = current_schema() AND table_name = %s", (table,)).fetchall()
    return {r[0] for r in rows}


class PgStore(SqlStore):
    """PostgreSQL-backed store. Use as a context manager or call `close()`."""

    def __init__(self, url: str):
        super().__init__()
        self.url = url
        try:
            self.conn = psycopg.connect(url, autocommit=True)
        except psycopg.Error as exc:  # libpq may echo part of the URL: its password never goes on
            raise ConnectionError(redact_text(f"cannot connect to the PostgreSQL store "
                                              f"{redact_url(url)}: {exc}".strip(), url)) from None
        with self.transaction() as c:
            c.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            self._migrate(c, SCHEMA, _has_table, _columns)

    def _q(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def _text(self, value: str) -> str:
        """PostgreSQL text cannot hold NUL; SQLite's can. Keep the rest as is."""
        return value.replace("\x00", "\ufffd")

    def _lock_page(self, c, site: str, url: str) -> None:
        c.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{site}\n{url}",))

    def _order(self, prefix: str = "") -> str:
        p = prefix
        return f' ORDER BY {p}nct_id IS NULL, {p}nct_id COLLATE "C", {p}site COLLATE "C", {p}url COLLATE "C"'

    def _stream(self, sql: str, params: tuple = (), itersize: int = 256) -> Iterator[tuple]:
        """Rows through a server-side cursor (`itersize` rows per round trip)
        on a read-only connection of its own, so the store stays usable while
        a consumer iterates, and all rows come from one snapshot."""
        with psycopg.connect(self.url) as conn:
            conn.read_only = True
            with conn.cursor(name="harvester_stream") as cur:
                cur.itersize = itersize
                cur.execute(sql, params or None)
                yield from cur

    @classmethod
    def from_settings(cls, settings) -> "PgStore":
        return cls(settings.get("HARVEST_DB"))

    @contextmanager
    def transaction(self):
        with self.conn.transaction():
            yield self.conn

    def iter_sources(self, include_removed: bool = True, raw: bool = False, link: bool = False,
                     itersize: int = 256) -> Iterator[StoredSource]:
        sql = _current_sql(raw, link)
        if not include_removed:
            sql += " WHERE s.removed_at IS NULL"
        yield from _stored(self._stream(sql + self._order("s."), (), itersize), raw, link)

    iter_sources.__doc__ = SqlStore.iter_sources.__doc__

    # -- incremental crawls: HTTP validators and 304s -----------------------------
    # (the table is created on first use, under the schema lock)
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
