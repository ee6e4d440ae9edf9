"""What the SQLite and PostgreSQL stores share: the schema upgrade, every
statement (`SqlStore`, the same SQL on both, so one write path), the
stored-record type and its serialization.

Both backends import this module and neither imports the other, so a store
module can be loaded (and replaced) on its own; `harvester.store.open_store`
picks the backend. What the store keeps and how is described in
`harvester.store`.
"""
from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property, lru_cache
from typing import Any, Iterable, Iterator, Optional

import orjson
from zlib_ng import zlib_ng

from harvester.integrity import IntegrityGate
from items import SourceRecord

SCHEMA_VERSION = 5

# The upgrade of a store written before versions were kept (schema 1), the
# same SQL on both backends: the stored record of each page becomes its
# version 1, a gone page an open interval. `body` moves to its version.
UPGRADE_FROM_1 = (
    "INSERT INTO versions (site, url, seq, nct_id, fetched_at, content_hash, body_hash, record, body,"
    " first_seen_at, last_seen_at, current_from)"
    " SELECT site, url, 1, nct_id, fetched_at, content_hash, body_hash, record, body, updated_at,"
    " last_seen_at, updated_at FROM sources WHERE version IS NULL",
    "INSERT INTO gone (site, url, gone_at) SELECT site, url, removed_at FROM sources"
    " WHERE version IS NULL AND removed_at IS NOT NULL",
    # substr(record, 1, 0): the empty blob, in SQL both backends read alike
    "UPDATE sources SET version = 1, record = substr(record, 1, 0), body = NULL WHERE version IS NULL",
)

# Schema 3: which data contract each stored record was written under
# (`record_contract()`); schema 4: the record's linking fields
# (`link_fields_json`). NULL for records stored before them.
UPGRADE_FROM_2 = ("versions", "sources")
# Schema 5: the Content-Type each body was served with (`content_type`),
# beside the body; NULL for bodies stored before it.
UPGRADE_TO_5 = ("versions", "sources")

# A page's current record: its current version's, or (rows written straight
# into `sources` without a version, as bench/reconcile.py's generator does)
# the row's own.
_JOIN = " FROM sources s LEFT JOIN versions v ON v.site = s.site AND v.url = s.url AND v.seq = s.version"
CURRENT = "SELECT COALESCE(v.record, s.record), s.removed_at" + _JOIN
# ... with the contract it was written under
CURRENT_WITH_CONTRACT = ("SELECT COALESCE(v.record, s.record), s.removed_at,"
                         " CASE WHEN v.record IS NULL THEN s.contract ELSE v.contract END, s.nct_id" + _JOIN)
# ... the linking fields instead of the record where they are stored (and the page has an NCT ID)
_LINK = "CASE WHEN v.record IS NULL THEN s.link_fields ELSE v.link_fields END"
CURRENT_LINK_FIELDS = (f"SELECT CASE WHEN {_LINK} IS NULL OR s.nct_id IS NULL THEN COALESCE(v.record, s.record) END,"
                       " s.removed_at, CASE WHEN v.record IS NULL THEN s.contract ELSE v.contract END, s.nct_id,"
                       f" {_LINK}" + _JOIN)

VERSION_COLUMNS = ("site", "url", "seq", "nct_id", "fetched_at", "content_hash", "first_seen_at",
                   "last_seen_at", "current_from", "quarantine", "accepted_at")


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def as_timestamp(value: str | datetime) -> str:
    """A user's point in time ("2026-11-20", "2026-11-20T08:00:00Z", a
    datetime; naive means UTC) as the store's timestamp text."""
    if isinstance(value, str):
        text = value.strip()
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not an ISO-8601 date or time: {value!r}") from None
    else:
        when = value
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).isoformat(timespec="microseconds")


#: zlib level of stored records and bodies: level 1 is several times faster
#: than the default 6 on study JSON and its output about a tenth larger; any
#: level reads back with the same zlib.decompress
COMPRESS_LEVEL = 1


def compress(data: bytes) -> bytes:
    return zlib.compress(data, COMPRESS_LEVEL)


#: zlib streams back to bytes: zlib-ng inflates study JSON about 40% faster
#: than the standard library's zlib, the same format
inflate = zlib_ng.decompress


def body_hash(body: bytes | None) -> str | None:
    return hashlib.sha256(body).hexdigest() if body is not None else None


def record_json(record: SourceRecord) -> bytes:
    """The one serialization of a record: JSON, field names by alias."""
    return orjson.dumps(record.model_dump(mode="json", by_alias=True))


#: Raise when validating a record changes what it gives without changing
#: `SourceRecord`'s JSON Schema (a new before-validator that rewrites a
#: value, say): records stored before then are validated again on read.
CONTRACT_REVISION = 1


def link_fields_json(record: SourceRecord) -> str:
    """What linking reads of a record (titles, lead sponsor name, conditions,
    age bounds, older NCT IDs), as JSON of the record's own shape: kept
    beside the record so a reader that indexes every trial reads a few
    hundred bytes per page instead of inflating and decoding the record."""
    sponsor, elig = record.lead_sponsor, record.eligibility
    return orjson.dumps({
        "nct_id_aliases": record.nct_id_aliases, "brief_title": record.brief_title,
        "official_title": record.official_title,
        "lead_sponsor": {"name": sponsor.name} if sponsor is not None else None,
        "conditions": record.conditions,
        "eligibility": {"min_age_years": elig.min_age_years, "max_age_years": elig.max_age_years},
    }).decode()


@lru_cache(maxsize=1)
def record_contract() -> str:
    """The data contract records are written under now: a fingerprint of
    `SourceRecord`'s JSON Schema and `CONTRACT_REVISION`. The store keeps it
    beside each record it writes: a record stored under this contract is the
    serialization of a validated record (`record_json`), which validating
    again gives back unchanged, so readers of many records may use its JSON
    as it is; any other record (NULL: stored before contracts were kept, or
    under an older one) must be validated, which upgrades it."""
    schema = orjson.dumps(SourceRecord.model_json_schema(by_alias=True), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(schema + b"/%d" % CONTRACT_REVISION).hexdigest()[:16]


@dataclass(frozen=True)
class StoredSource:
    record: SourceRecord
    removed_at: Optional[str]


@dataclass(frozen=True)
class StoredJson:
    """A page's current record as stored, not validated (what
    `iter_sources(raw=True)` gives): reading many records this way skips
    pydantic, so a reader that needs only some fields (decoding `json`
    itself), or can trust the record, pays for the JSON alone. `data`
    decodes it (once), `record` validates it."""

    json: bytes  # the record's JSON
    removed_at: Optional[str]
    contract: Optional[str] = None  # what the record was written under (`record_contract`)
    nct_id: Optional[str] = None  # the record's NCT ID (the store's column)
    link_fields: Optional[str] = None  # `link_fields_json` (read with link=True; then json may be None)

    @cached_property
    def data(self) -> dict:
        return orjson.loads(self.json)

    @property
    def current(self) -> bool:
        """Written under today's contract: `data` is what validating it would give."""
        return self.contract is not None and self.contract == record_contract()

    @property
    def record(self) -> SourceRecord:
        return SourceRecord.model_validate(self.data)


@dataclass(frozen=True)
class StoredBody:
    """A page's current version as `iter_bodies` gives it."""

    site: str
    url: str
    fetched_at: str
    content_hash: str
    removed_at: Optional[str]
    body: Optional[bytes]
    record_blob: Optional[bytes] = None  # the stored record (compressed JSON)
    #: the Content-Type the body was served with ("" none); None: stored before the store kept it
    content_type: Optional[str] = None

    @property
    def record(self) -> SourceRecord:
        return _load(self.record_blob)


class SqlStore:
    """The store, on either backend. Every statement is written once with
    `?` placeholders; a backend sets `conn` and `transaction()`, and adapts
    through `_q` (its placeholder style), `_text` (what its text columns
    cannot hold), `_lock_page` (serializing writers of one page), `_stream`
    (a streaming read) and `_order` (byte order of keys)."""

    conn: Any
    gate: Optional[IntegrityGate]

    def __init__(self) -> None:
        self.clock = utcnow
        self.gate = IntegrityGate()

    def _q(self, sql: str) -> str:
        return sql

    def _text(self, value: str) -> str:
        return value

    def _lock_page(self, c, site: str, url: str) -> None:
        """Held until the transaction ends (SQLite's BEGIN IMMEDIATE already
        serializes every writer)."""

    def _order(self, prefix: str = "") -> str:
        p = prefix
        return f" ORDER BY {p}nct_id IS NULL, {p}nct_id, {p}site, {p}url"

    def _stream(self, sql: str, params: tuple = ()) -> Iterator[tuple]:
        cur = self.conn.cursor()
        cur.arraysize = 256
        yield from cur.execute(sql, params)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- schema -----------------------------------------------------------------
    def _migrate(self, c, statements: Iterable[str], has_table, columns) -> None:
        """Create what is missing; upgrade a schema-1 store in place. A store
        already at this schema gets no DDL at all: on PostgreSQL even a no-op
        CREATE INDEX IF NOT EXISTS takes table locks that would deadlock with
        another worker's writes."""
        if has_table(c, "meta"):
            row = c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row and int(row[0]) >= SCHEMA_VERSION:
                return
        existed = has_table(c, "sources")
        for statement in statements:
            c.execute(statement)
        row = c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = int(row[0]) if row else (1 if existed else SCHEMA_VERSION)
        if version < 2:
            if "version" not in columns(c, "sources"):
                c.execute("ALTER TABLE sources ADD COLUMN version INTEGER")
            for statement in UPGRADE_FROM_1:
                c.execute(statement)
        if version < 4:
            for table in UPGRADE_FROM_2:
                have = columns(c, table)
                for column in ("contract", "link_fields"):
                    if column not in have:
                        c.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")
        if version < 5:
            for table in UPGRADE_TO_5:
                if "content_type" not in columns(c, table):
                    c.execute(f"ALTER TABLE {table} ADD COLUMN content_type TEXT")
        if row is None or version < SCHEMA_VERSION:
            c.execute(self._q("DELETE FROM meta WHERE key='schema_version'"))
            c.execute(self._q("INSERT INTO meta (key, value) VALUES ('schema_version', ?)"),
                      (str(SCHEMA_VERSION),))

    # -- writes ---------------------------------------------------------------
    def upsert(self, record: SourceRecord, body: bytes | None = None, content_type: str | None = None) -> str:
        """Store what a page says now (`body`: what it was read from,
        `content_type`: the Content-Type header the body was served with).
        Returns "inserted" (a new page),
        "updated" (a new current version), "unchanged" (same content as the
        current version: only last-seen moves, and a page that had been
        marked gone is back) or "quarantined" (a new version the integrity
        gate held back, or the same held-back version seen again; the
        current version stays)."""
        if not record.content_hash:
            raise ValueError("record has no content_hash; run it through the validation pipeline")
        with self.transaction() as c:
            return self._write(c, record, body, self.clock(), content_type=content_type)

    def upsert_many(self, items: Iterable[tuple]) -> list[str]:
        """`upsert` of many (record, body) pairs in one transaction: all
        written or none. The outcomes in the order given. Pages are locked in
        (site, url) order, so two writers' batches cannot deadlock. A third
        element of a pair, when given, is the record's JSON (`record_json`),
        already made; a fourth the body's Content-Type."""
        items = [tuple(item) + (None,) * (4 - len(item)) for item in items]
        for record, *_ in items:
            if not record.content_hash:
                raise ValueError("record has no content_hash; run it through the validation pipeline")
        order = sorted(range(len(items)), key=lambda i: (items[i][0].site, items[i][0].url))
        outcomes: list[str] = [""] * len(items)
        now = self.clock()
        with self.transaction() as c:
            for i in order:
                record, body, data, content_type = items[i]
                outcomes[i] = self._write(c, record, body, now, data=data, content_type=content_type)
        return outcomes

    def _write(self, c, record: SourceRecord, body: bytes | None, now: str, data: bytes | None = None,
               content_type: str | None = None) -> str:
        """The one write path of a page, inside the caller's transaction."""
        q = self._q
        site, url = record.site, record.url
        self._lock_page(c, site, url)
        current = c.execute(q("SELECT s.content_hash, s.version, COALESCE(v.record, s.record), v.body_hash,"
                              " v.seq IS NOT NULL AND v.content_type IS NULL FROM sources s"
                              " LEFT JOIN versions v ON v.site=s.site AND v.url=s.url AND v.seq=s.version"
                              " WHERE s.site=? AND s.url=?"), (site, url)).fetchone()
        if current is not None and current[0] == record.content_hash:
            self._seen(c, site, url, current[1], now)
            if current[4] and content_type is not None and body is not None and current[3] == body_hash(body):
                # a body stored before its Content-Type was kept, served again
                # byte for byte: now its header is known
                c.execute(q("UPDATE versions SET content_type=? WHERE site=? AND url=? AND seq=?"),
                          (self._text(content_type), site, url, current[1]))
            return "unchanged"
        latest = c.execute(q("SELECT seq, content_hash, current_from FROM versions WHERE site=? AND url=?"
                             " ORDER BY seq DESC LIMIT 1"), (site, url)).fetchone()
        if latest is not None and latest[2] is None and latest[1] == record.content_hash:
            c.execute(q("UPDATE versions SET last_seen_at=? WHERE site=? AND url=? AND seq=?"),
                      (now, site, url, latest[0]))
            return "quarantined"
        reason = None
        if current is not None and self.gate is not None:
            reason = self.gate.check(_load(current[2]), record)
        seq = max(latest[0] if latest else 0, (current[1] or 0) if current else 0) + 1
        blob = compress(data if data is not None else record_json(record))
        c.execute(
            q("INSERT INTO versions (site, url, seq, nct_id, fetched_at, content_hash, body_hash, record, body,"
              " first_seen_at, last_seen_at, current_from, quarantine, contract, link_fields, content_type)"
              " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"),
            (site, url, seq, record.nct_id, record.fetched_at.isoformat(), record.content_hash, body_hash(body),
             blob, compress(body) if body is not None else None, now, now,
             None if reason else now, self._text(reason) if reason else None, record_contract(),
             self._text(link_fields_json(record)),
             self._text(content_type) if body is not None and content_type is not None else None),
        )
        if reason:
            return "quarantined"
        if current is None:
            c.execute(
                q("INSERT INTO sources (site, url, nct_id, fetched_at, content_hash, body_hash, record, version,"
                  " first_seen_at, last_seen_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)"),
                (site, url, record.nct_id, record.fetched_at.isoformat(), record.content_hash, body_hash(body),
                 b"", seq, now, now, now),
            )
            return "inserted"
        self._make_current(c, site, url, seq, now)
        return "updated"

    def _make_current(self, c, site: str, url: str, seq: int, now: str) -> None:
        """Point the page's `sources` row at version `seq` (the record and
        body stay in `versions` only: each version is stored once)."""
        q = self._q
        c.execute(
            q("UPDATE sources SET (nct_id, fetched_at, content_hash, body_hash) ="
              " (SELECT nct_id, fetched_at, content_hash, body_hash FROM versions"
              "  WHERE site=? AND url=? AND seq=?),"
              " record=?, body=NULL, version=?, last_seen_at=?, updated_at=?, removed_at=NULL"
              " WHERE site=? AND url=?"),
            (site, url, seq, b"", seq, now, now, site, url),
        )
        c.execute(q("UPDATE gone SET back_at=? WHERE site=? AND url=? AND back_at IS NULL"), (now, site, url))

    def _seen(self, c, site: str, url: str, seq: Optional[int], now: str) -> None:
        """The current version was served again: move last-seen, the page is not gone."""
        q = self._q
        c.execute(q("UPDATE versions SET last_seen_at=? WHERE site=? AND url=? AND seq=?"), (now, site, url, seq))
        c.execute(q("UPDATE sources SET last_seen_at=?, removed_at=NULL WHERE site=? AND url=?"), (now, site, url))
        c.execute(q("UPDATE gone SET back_at=? WHERE site=? AND url=? AND back_at IS NULL"), (now, site, url))

    def accept(self, site: str, url: str, seq: int | None = None) -> dict:
        """Make the page's quarantined version current, after a person checked
        that the site really says less now. `seq`: the version to accept (the
        page's latest by default); it must be quarantined and the latest
        version of the page (an older one was superseded). Returns the
        accepted version's description (`versions()`)."""
        now = self.clock()
        q = self._q
        with self.transaction() as c:
            self._lock_page(c, site, url)
            latest = c.execute(q("SELECT seq, current_from FROM versions WHERE site=? AND url=?"
                                 " ORDER BY seq DESC LIMIT 1"), (site, url)).fetchone()
            if latest is None:
                raise LookupError(f"no stored page {site} {url}")
            seq = latest[0] if seq is None else int(seq)
            row = c.execute(q("SELECT current_from, quarantine FROM versions WHERE site=? AND url=? AND seq=?"),
                            (site, url, seq)).fetchone()
            if row is None:
                raise LookupError(f"{site} {url} has no version {seq}")
            if row[1] is None or row[0] is not None:
                raise ValueError(f"version {seq} of {url} is not quarantined")
            if seq != latest[0]:
                raise ValueError(f"version {seq} of {url} was superseded by version {latest[0]}")
            c.execute(q("UPDATE versions SET current_from=?, accepted_at=? WHERE site=? AND url=? AND seq=?"),
                      (now, now, site, url, seq))
            self._make_current(c, site, url, seq, now)
        return next(v for v in self.versions(site=site, url=url) if v["seq"] == seq)

    def reject(self, site: str, url: str, stage: str, error: str, payload: bytes | None = None) -> None:
        t = self._text
        with self.transaction() as c:
            c.execute(
                self._q("INSERT INTO rejects (site, url, stage, error, payload, rejected_at) VALUES (?,?,?,?,?,?)"),
                (t(site), t(url), t(stage), t(error), zlib.compress(payload) if payload else None, self.clock()),
            )

    def mark_removed(self, site: str, url: str, when: str | None = None) -> bool:
        """Mark a stored page as gone (404/410). Returns False if it was never stored."""
        when = when or self.clock()
        with self.transaction() as c:
            self._lock_page(c, site, url)
            cur = c.execute(
                self._q("UPDATE sources SET removed_at=COALESCE(removed_at, ?) WHERE site=? AND url=?"),
                (when, site, url),
            )
            if cur.rowcount <= 0:
                return False
            c.execute(
                self._q("INSERT INTO gone (site, url, gone_at) SELECT ?, ?, ? WHERE NOT EXISTS"
                        " (SELECT 1 FROM gone WHERE site=? AND url=? AND back_at IS NULL)"
                        " ON CONFLICT DO NOTHING"),
                (site, url, when, site, url),
            )
            return True

    def set_watermark(self, source: str, value: str) -> None:
        with self.transaction() as c:
            c.execute(
                self._q("INSERT INTO watermarks (source, value, updated_at) VALUES (?,?,?)"
                        " ON CONFLICT (source) DO UPDATE SET value=excluded.value,"
                        " updated_at=excluded.updated_at"),
                (source, value, self.clock()),
            )

    # -- reads ----------------------------------------------------------------
    def get_watermark(self, source: str) -> str | None:
        row = self.conn.execute(self._q("SELECT value FROM watermarks WHERE source=?"), (source,)).fetchone()
        return row[0] if row else None

    def get(self, site: str, url: str) -> StoredSource | None:
        row = self.conn.execute(self._q(CURRENT + " WHERE s.site=? AND s.url=?"), (site, url)).fetchone()
        return StoredSource(_load(row[0]), row[1]) if row else None

    def get_body(self, site: str, url: str, seq: int | None = None) -> bytes | None:
        """The body the page's current version (or version `seq`) was read from."""
        if seq is None:
            row = self.conn.execute(self._q(
                "SELECT v.body, s.body FROM sources s LEFT JOIN versions v"
                " ON v.site=s.site AND v.url=s.url AND v.seq=s.version WHERE s.site=? AND s.url=?"),
                (site, url)).fetchone()
        else:
            row = self.conn.execute(self._q("SELECT body, NULL FROM versions WHERE site=? AND url=? AND seq=?"),
                                    (site, url, seq)).fetchone()
        if not row:
            return None
        blob = row[0] if row[0] is not None else row[1]
        return zlib.decompress(blob) if blob is not None else None

    def iter_bodies(self, site: str | None = None, batch: int = 200) -> Iterator["StoredBody"]:
        """Every page's current version with the body it was read from, site
        by site in URL order, `batch` rows per query (keyset pages, so the
        store can be written between them: what `scrapy reparse` reads)."""
        sites = [site] if site else [r[0] for r in self.conn.execute(
            "SELECT DISTINCT site FROM sources ORDER BY site").fetchall()]
        sql = self._q(
            "SELECT s.url, s.fetched_at, s.content_hash, s.removed_at, v.body, s.body, COALESCE(v.record, s.record),"
            " v.content_type, s.content_type FROM sources s"
            " LEFT JOIN versions v ON v.site=s.site AND v.url=s.url AND v.seq=s.version"
            " WHERE s.site=? AND s.url>? ORDER BY s.url LIMIT ?")
        for name in sites:
            last = ""
            while True:
                rows = self.conn.execute(sql, (name, last, batch)).fetchall()
                for url, fetched, chash, removed, vbody, sbody, record, vtype, stype in rows:
                    blob, ctype = (vbody, vtype) if vbody is not None else (sbody, stype)
                    yield StoredBody(name, url, fetched, chash, removed,
                                     zlib.decompress(blob) if blob is not None else None, record, ctype)
                if len(rows) < batch:
                    break
                last = rows[-1][0]

    def live_nct_ids(self, site: str) -> set[str]:
        """The NCT IDs of a site's stored records not marked removed (to
        compare with a listing of the site's own)."""
        rows = self.conn.execute(
            self._q("SELECT nct_id FROM sources WHERE site=? AND removed_at IS NULL AND nct_id IS NOT NULL"), (site,))
        return {row[0] for row in rows}

    def count(self, table: str = "sources") -> int:
        if table not in {"sources", "rejects", "watermarks", "versions", "gone"}:
            raise ValueError(table)
        return self.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]

    def rejects(self) -> list[dict]:
        rows = self.conn.execute(
            "SELECT site, url, stage, error, rejected_at FROM rejects ORDER BY id"
        ).fetchall()
        return [dict(zip(("site", "url", "stage", "error", "rejected_at"), r)) for r in rows]

    def iter_sources(self, include_removed: bool = True, raw: bool = False,
                     link: bool = False) -> Iterator[StoredSource]:
        """Every page's current version, ordered by (nct_id, site, url) in
        byte order, NCT-less ones last. Streams: a batch of rows in memory at
        a time. `raw`: `StoredJson` (the stored JSON, not validated) instead;
        `link` (with `raw`): each with its `link_fields`, and its record's
        JSON only where those are not stored or the page has no NCT ID."""
        sql = _current_sql(raw, link)
        if not include_removed:
            sql += " WHERE s.removed_at IS NULL"
        yield from _stored(self._stream(sql + self._order("s.")), raw, link)

    def sources_for(self, nct_ids) -> list[StoredSource]:
        """The stored records of the given NCT IDs (by the nct_id index), in
        store order."""
        ids = sorted(set(nct_ids))
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self.conn.execute(
            self._q(CURRENT + f" WHERE s.nct_id IN ({marks})" + self._order("s.")),
            ids).fetchall()
        return [StoredSource(_load(rec), removed) for rec, removed in rows]

    # -- history ----------------------------------------------------------------
    # The version of a page current at time T: its highest seq whose
    # current_from <= T; the page is gone at T when a gone interval covers T.
    _AS_OF = (
        "SELECT {}, g.gone_at{} FROM versions v"
        " LEFT JOIN gone g ON g.site=v.site AND g.url=v.url AND g.gone_at <= ?"
        "  AND (g.back_at IS NULL OR g.back_at > ?)"
        " WHERE v.current_from <= ? AND v.seq = (SELECT MAX(w.seq) FROM versions w"
        "  WHERE w.site=v.site AND w.url=v.url AND w.current_from <= ?)"
    )

    def iter_sources_as_of(self, when: str | datetime, nct_ids: Iterable[str] | None = None,
                           include_removed: bool = True, nctless: bool = False,
                           raw: bool = False, link: bool = False) -> Iterator[StoredSource]:
        """Every page as it was at `when`: the version current then, with
        `removed_at` set when the page was gone then; pages first seen later
        are absent. Same order as `iter_sources`; streams. `nct_ids`: only
        pages whose version at `when` carries one of these NCT IDs;
        `nctless`: only pages whose version then carries none; `raw` and
        `link`: as for `iter_sources`."""
        t = as_timestamp(when)
        ids = None
        if nct_ids is not None and not nctless:
            ids = sorted(set(nct_ids))
            if not ids:
                return
        if self._is_now(t):  # nothing happened after `when`: the current versions, read directly
            sql, params, p, gone = _current_sql(raw, link) + " WHERE 1=1", [], "s.", "s.removed_at"
        else:
            record = ("CASE WHEN v.link_fields IS NULL OR v.nct_id IS NULL THEN v.record END"
                      if raw and link else "v.record")
            extra = ", v.contract, v.nct_id" + (", v.link_fields" if link else "") if raw else ""
            sql, params, p, gone = self._AS_OF.format(record, extra), [t, t, t, t], "v.", "g.gone_at"
        if nctless:
            sql += f" AND {p}nct_id IS NULL"
        elif ids is not None:
            sql += f" AND {p}nct_id IN ({','.join('?' * len(ids))})"
            params += ids
        if not include_removed:
            sql += f" AND {gone} IS NULL"
        yield from _stored(self._stream(self._q(sql + self._order(p)), tuple(params)), raw, link)

    def _is_now(self, t: str) -> bool:
        """No version became current, and no page went or came back, after `t`."""
        latest = self.conn.execute("SELECT MAX(current_from) FROM versions").fetchone()[0]
        gone, back = self.conn.execute("SELECT MAX(gone_at), MAX(back_at) FROM gone").fetchone()
        return all(x is None or x <= t for x in (latest, gone, back))

    def iter_records_as_of(self, when: str | datetime) -> Iterator[tuple[str, dict]]:
        """(nct_id, record as stored JSON) of every live page with an NCT ID
        at `when`, by NCT ID: what linking keys are built from, without
        validating each record."""
        t = as_timestamp(when)
        if self._is_now(t):
            sql, params, p = CURRENT + " WHERE s.nct_id IS NOT NULL AND s.removed_at IS NULL", (), "s."
        else:
            sql, params, p = self._AS_OF.format("v.record", "") + " AND v.nct_id IS NOT NULL AND g.gone_at IS NULL", (t, t, t, t), "v."
        # grouped by NCT ID (the order within a trial does not matter here), which
        # the nct_id indexes give without sorting the records
        for rec, _ in self._stream(self._q(sql + f" ORDER BY {p}nct_id"), params):
            data = orjson.loads(inflate(rec))
            yield data["nct_id"], data

    def iter_first_versions(self, since: str | datetime, until: str | datetime,
                            nct_ids: Iterable[str]) -> Iterator[StoredSource]:
        """Per page, the first version that became current in (since, until],
        of pages whose that version carries one of `nct_ids`; store order."""
        s, u = as_timestamp(since), as_timestamp(until)
        ids = sorted(set(nct_ids))
        if not ids:
            return
        sql = ("SELECT v.record, NULL FROM versions v WHERE v.nct_id IN (" + ",".join("?" * len(ids)) + ")"
               " AND v.seq = (SELECT MIN(w.seq) FROM versions w WHERE w.site=v.site AND w.url=v.url"
               "  AND w.current_from > ? AND w.current_from <= ?)")
        for rec, _ in self._stream(self._q(sql + self._order("v.")), tuple(ids) + (s, u)):
            yield StoredSource(_load(rec), None)

    def page_state(self, site: str, url: str, when: str | datetime) -> tuple[str | None, str | None]:
        """(first_seen_at of the version current at `when`, gone_at if the
        page was gone then)."""
        t = as_timestamp(when)
        row = self.conn.execute(self._q(
            "SELECT first_seen_at FROM versions WHERE site=? AND url=? AND current_from <= ?"
            " ORDER BY seq DESC LIMIT 1"), (site, url, t)).fetchone()
        gone = self.conn.execute(self._q(
            "SELECT gone_at FROM gone WHERE site=? AND url=? AND gone_at <= ? AND (back_at IS NULL OR back_at > ?)"),
            (site, url, t, t)).fetchone()
        return (row[0] if row else None, gone[0] if gone else None)

    def first_seen_after(self, site: str, url: str, since: str | datetime) -> str | None:
        """When the page's first version that became current after `since` was first seen."""
        row = self.conn.execute(self._q(
            "SELECT MIN(first_seen_at) FROM versions WHERE site=? AND url=? AND current_from > ?"),
            (site, url, as_timestamp(since))).fetchone()
        return row[0] if row else None

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute(self._q("SELECT value FROM meta WHERE key=?"), (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as c:
            c.execute(self._q("INSERT INTO meta (key, value) VALUES (?, ?)"
                              " ON CONFLICT (key) DO UPDATE SET value=excluded.value"), (key, value))

    def versions(self, site: str | None = None, url: str | None = None,
                 nct_ids: Iterable[str] | None = None, with_records: bool = False) -> list[dict]:
        """Versions of one page (site and url) or of every page that ever
        carried one of `nct_ids`, ordered by (site, url, seq): `VERSION_COLUMNS`,
        plus `record` (SourceRecord) with `with_records`."""
        cols = ", ".join(f"v.{c}" for c in VERSION_COLUMNS) + (", v.record" if with_records else "")
        if url is not None:
            sql = f"SELECT {cols} FROM versions v WHERE v.url=?"
            params: list = [url]
            if site is not None:
                sql += " AND v.site=?"
                params.append(site)
        else:
            ids = sorted(set(nct_ids or ()))
            if not ids:
                return []
            sql = (f"SELECT {cols} FROM versions v WHERE EXISTS (SELECT 1 FROM versions w WHERE"
                   f" w.site=v.site AND w.url=v.url AND w.nct_id IN ({','.join('?' * len(ids))}))")
            params = ids
        rows = self.conn.execute(self._q(sql + " ORDER BY v.site, v.url, v.seq"), params).fetchall()
        out = []
        for row in rows:
            item = dict(zip(VERSION_COLUMNS, row))
            if with_records:
                item["record"] = _load(row[len(VERSION_COLUMNS)])
            out.append(item)
        out.sort(key=lambda v: (v["site"].encode(), v["url"].encode(), v["seq"]))  # byte order on both backends
        return out

    def gone_intervals(self, site: str | None = None, url: str | None = None) -> list[dict]:
        """When pages went and came back, ordered by (site, url, gone_at)."""
        sql, params = "SELECT site, url, gone_at, back_at FROM gone", []
        if url is not None:
            sql += " WHERE url=?"
            params.append(url)
            if site is not None:
                sql += " AND site=?"
                params.append(site)
        rows = self.conn.execute(self._q(sql), params).fetchall()
        out = [dict(zip(("site", "url", "gone_at", "back_at"), r)) for r in rows]
        out.sort(key=lambda g: (g["site"].encode(), g["url"].encode(), g["gone_at"]))
        return out

    def quarantined(self) -> list[dict]:
        """Versions the integrity gate holds back and nobody accepted, with
        `reason` and `superseded` (a later version of the page exists, so
        this one can no longer be accepted)."""
        rows = self.conn.execute(
            "SELECT v.site, v.url, v.seq, v.nct_id, v.first_seen_at, v.last_seen_at, v.quarantine,"
            " (SELECT MAX(w.seq) FROM versions w WHERE w.site=v.site AND w.url=v.url)"
            " FROM versions v WHERE v.quarantine IS NOT NULL AND v.current_from IS NULL"
        ).fetchall()
        out = [{"site": r[0], "url": r[1], "seq": r[2], "nct_id": r[3], "first_seen_at": r[4],
                "last_seen_at": r[5], "reason": r[6], "superseded": r[7] != r[2]} for r in rows]
        out.sort(key=lambda v: (v["site"].encode(), v["url"].encode(), v["seq"]))
        return out

    def quarantine_reason(self, site: str, url: str) -> str | None:
        """Why the page's latest version is held back (None: it is not)."""
        row = self.conn.execute(self._q(
            "SELECT quarantine, current_from FROM versions WHERE site=? AND url=? ORDER BY seq DESC LIMIT 1"),
            (site, url)).fetchone()
        return row[0] if row and row[1] is None else None

    def changed_pages(self, since: str | datetime, until: str | datetime) -> list[tuple[str, str]]:
        """(site, url) of every page whose state changed in (since, until]:
        a version became current, or it went or came back."""
        s, u = as_timestamp(since), as_timestamp(until)
        rows = self.conn.execute(self._q(
            "SELECT site, url FROM versions WHERE current_from > ? AND current_from <= ?"
            " UNION SELECT site, url FROM gone WHERE (gone_at > ? AND gone_at <= ?)"
            " OR (back_at > ? AND back_at <= ?)"), (s, u, s, u, s, u)).fetchall()
        return sorted({(r[0], r[1]) for r in rows}, key=lambda k: (k[0].encode(), k[1].encode()))

    def nct_ids_of_pages(self, pages: Iterable[tuple[str, str]], when: Iterable[str | datetime]) -> set:
        """The NCT IDs the given pages carried at any of the times `when`."""
        times = [as_timestamp(t) for t in when]
        out: set = set()
        for site, url in pages:
            for t in times:
                row = self.conn.execute(self._q(
                    "SELECT nct_id FROM versions WHERE site=? AND url=? AND current_from <= ?"
                    " ORDER BY seq DESC LIMIT 1"), (site, url, t)).fetchone()
                if row and row[0]:
                    out.add(row[0])
        return out

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
                (site, url, etag, last_modified, self.clock()),
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
        last-seen time (and the page is not gone), rewrite nothing else.
        Returns False if the page was never stored."""
        with self.transaction() as c:
            self._lock_page(c, site, url)
            row = c.execute(self._q("SELECT version FROM sources WHERE site=? AND url=?"), (site, url)).fetchone()
            if row is None:
                return False
            self._seen(c, site, url, row[0], self.clock())
            return True


def _current_sql(raw: bool, link: bool) -> str:
    return (CURRENT_LINK_FIELDS if link else CURRENT_WITH_CONTRACT) if raw else CURRENT


def _stored(rows: Iterable[tuple], raw: bool, link: bool = False) -> Iterator[StoredSource | StoredJson]:
    """(record blob, removed_at[, contract, nct_id[, link_fields]]) rows as
    `StoredJson` (raw) or `StoredSource`."""
    if raw and link:  # the record only where the link fields are not enough
        for rec, removed, contract, nct, fields in rows:
            yield StoredJson(inflate(rec) if rec is not None else None, removed, contract, nct, fields)
    elif raw:
        for rec, removed, contract, nct in rows:
            yield StoredJson(inflate(rec), removed, contract, nct)
    else:
        for rec, removed in rows:
            yield StoredSource(_load(rec), removed)


def _load(blob: bytes) -> SourceRecord:
    return SourceRecord.model_validate(orjson.loads(inflate(blob)))
