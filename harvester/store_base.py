"""What the SQLite and PostgreSQL stores share: the statements that are the
same SQL on both (`SqlStore`), the stored-record type and its serialization.

Both backends import this module and neither imports the other, so a store
module can be loaded (and replaced) on its own; `harvester.store.open_store`
picks the backend.
"""
from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Optional

import orjson

from items import SourceRecord


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


def _load(blob: bytes) -> SourceRecord:
    return SourceRecord.model_validate(orjson.loads(zlib.decompress(blob)))
