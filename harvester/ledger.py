"""What a crawl has seen of a source's listing, kept so that completeness
can be judged at the end of the run, even of a run killed and resumed.

A `RunLedger` holds sets of IDs by kind (for example the IDs a search's
pages listed, the IDs stored from them, the IDs a whole-registry ID listing
named) and a few values (the count the source announced, whether a listing
reached its last page). Without JOBDIR it lives in memory. With JOBDIR it
is also a SQLite file in the job directory, `<JOBDIR>/ledger-<spider>.sqlite3`,
written before the request whose page it records is marked done in the
crawl-safe queue (`harvester.frontier`): after `kill -9` the resumed crawl
reloads it, and a page fetched again only adds IDs it already holds.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Iterable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ids (kind TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (kind, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class RunLedger:
    def __init__(self, path: str | Path | None = None):
        self.ids: dict[str, set[str]] = {}
        self.meta: dict[str, str] = {}
        self.db = None
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(path), isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
            for kind, id_ in self.db.execute("SELECT kind, id FROM ids"):
                self.ids.setdefault(kind, set()).add(id_)
            self.meta.update(self.db.execute("SELECT key, value FROM meta"))

    @classmethod
    def for_crawler(cls, crawler, name: str) -> "RunLedger":
        jobdir = crawler.settings.get("JOBDIR")
        return cls(Path(jobdir) / f"ledger-{name}.sqlite3" if jobdir else None)

    def add(self, kind: str, ids: Iterable[str]) -> None:
        new = [i for i in ids if i not in self.ids.setdefault(kind, set())]
        if not new:
            return
        self.ids[kind].update(new)
        if self.db is not None:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR IGNORE INTO ids (kind, id) VALUES (?, ?)", [(kind, i) for i in new])
            self.db.execute("COMMIT")

    def get(self, kind: str) -> set[str]:
        return self.ids.get(kind, set())

    def set(self, key: str, value) -> None:
        value = str(value)
        if self.meta.get(key) == value:
            return
        self.meta[key] = value
        if self.db is not None:
            self.db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE"
                            " SET value=excluded.value", (key, value))

    def value(self, key: str, default=None):
        return self.meta.get(key, default)

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None
