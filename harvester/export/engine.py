"""Writing the export tables with DuckDB.

Reconciliation writes its canonical JSON lines (the same bytes as
`canonical.jsonl`) into `ChunkSink`, which cuts them into files of about
`chunk_bytes`. A loader process has DuckDB read each finished file in place
(`read_json` with the contract's column types, so nothing is inferred) and
append every table's rows from it to a working DuckDB database, while
reconciliation goes on with the next chunk, so the two use both cores. A bounded queue keeps at most `max_pending` chunks
waiting, so memory and temporary disk stay bounded whatever the number of
trials. At the end the tables are copied out of the working database into the
requested format (DuckDB streams `COPY ... TO` to Parquet and CSV; SQLite and
PostgreSQL receive rows in batches).
"""
from __future__ import annotations

import logging
import os
import queue
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from harvester.export.layout import LType, Table, qi
from harvester.export.sql import read_columns
from items import Trial
from items.unlinked import UnlinkedPage

logger = logging.getLogger(__name__)

FORMATS = ("parquet", "duckdb", "sqlite", "csv")
BATCH_ROWS = 10_000
# longest canonical line DuckDB accepts (the largest real study, with 400+ sites, is well under 1 MB)
MAX_LINE = 32 << 20
PARQUET_ROW_GROUP = 100_000


def _duck_connect(path: str, workdir: Path, memory_limit: str, threads: Optional[int]):
    import duckdb

    conn = duckdb.connect(path)
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute(f"SET memory_limit = '{memory_limit}'")
    conn.execute(f"SET temp_directory = '{workdir / 'duckdb.tmp'}'")
    conn.execute("SET preserve_insertion_order = true")
    if threads:
        conn.execute(f"SET threads = {int(threads)}")
    return conn


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class ChunkSink:
    """A binary file for `reconcile(out=...)`: every `chunk_bytes` (at a line
    boundary: reconcile writes one whole line per call) the file is closed and
    handed to `on_chunk`."""

    def __init__(self, workdir: Path, on_chunk: Callable[[Path], None], chunk_bytes: int, prefix: str = "chunk"):
        self.workdir, self.on_chunk, self.chunk_bytes, self.prefix = workdir, on_chunk, chunk_bytes, prefix
        self.n = 0
        self.lines = 0
        self._fh = None
        self._size = 0

    def _open(self) -> None:
        self.n += 1
        self.path = self.workdir / f"{self.prefix}-{self.n:06d}.jsonl"
        self._fh = open(self.path, "wb", buffering=1 << 20)
        self._size = 0

    def write(self, data: bytes) -> int:
        if self._fh is None:
            self._open()
        self._fh.write(data)
        self._size += len(data)
        self.lines += 1
        if self._size >= self.chunk_bytes:
            self._flush()
        return len(data)

    def _flush(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            self.on_chunk(self.path)

    def close(self) -> None:
        self._flush()


def _load_chunk(cur, tables: dict[str, Table], kind: str, path: Path, columns: dict[str, str]) -> None:
    source = (f"read_json({_sql_literal(str(path))}, format = 'newline_delimited', "
              f"columns = {columns[kind]}, maximum_object_size = {MAX_LINE})")
    if kind == "trials":
        cur.execute(f"CREATE OR REPLACE TEMP TABLE chunk AS SELECT * FROM {source}")
        for t in tables.values():
            if t.select and "FROM chunk" in t.select:
                cur.execute(f"INSERT INTO {qi(t.name)} {t.select}")
        cur.execute("DROP TABLE chunk")
    else:
        cur.execute(f"CREATE OR REPLACE TEMP TABLE unlinked_chunk AS SELECT * FROM {source}")
        cur.execute(f"INSERT INTO {qi('unlinked')} {tables['unlinked'].select}")
        cur.execute("DROP TABLE unlinked_chunk")


def _loader_main(tables: dict[str, Table], db_path: str, workdir: str, memory_limit: str,
                 threads: Optional[int], tasks, results) -> None:
    """The loader process: create the tables, load every chunk it is sent,
    then report the row counts (or the first error)."""
    error = None
    conn = None
    try:
        conn = _duck_connect(db_path, Path(workdir), memory_limit, threads)
        for t in tables.values():
            cols = ", ".join(f"{qi(c.name)} {c.type.duckdb()}" for c in t.columns)
            conn.execute(f"CREATE TABLE {qi(t.name)} ({cols})")
        columns = {"trials": read_columns(Trial), "unlinked": read_columns(UnlinkedPage)}
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
        results.put(("error", error))
    while True:
        item = tasks.get()
        if item is None:
            break
        kind, path = item
        try:
            if error is None:  # after an error, only drain, so the producer never blocks
                _load_chunk(conn, tables, kind, Path(path), columns)
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            results.put(("error", error))
        finally:
            Path(path).unlink(missing_ok=True)
    if error is None:
        try:
            counts = {name: conn.execute(f"SELECT count(*) FROM {qi(name)}").fetchone()[0] for name in tables}
            conn.execute("CHECKPOINT")
            conn.close()
            results.put(("done", counts))
        except BaseException as exc:
            results.put(("error", f"{type(exc).__name__}: {exc}"))


class Loader:
    """The working DuckDB database, filled by a process of its own, so that
    DuckDB's work and reconciliation's Python never share one interpreter
    (and its lock): each gets a core."""

    def __init__(self, tables: dict[str, Table], db_path: Path, workdir: Path, *, memory_limit: str = "512MB",
                 threads: Optional[int] = None, max_pending: int = 2):
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self.tables = tables
        self.db_path = db_path
        self.workdir = workdir
        self.memory_limit, self.threads = memory_limit, threads
        self._tasks = ctx.Queue(maxsize=max_pending)
        self._results = ctx.Queue()
        self._proc = ctx.Process(target=_loader_main, name="export-loader", daemon=True,
                                 args=(tables, str(db_path), str(workdir), memory_limit, threads,
                                       self._tasks, self._results))
        self._proc.start()
        self.counts: dict[str, int] = {}
        self._error: Optional[str] = None
        self.conn = None

    def _poll(self) -> None:
        while self._error is None:
            try:
                kind, value = self._results.get_nowait()
            except queue.Empty:
                return
            if kind == "error":
                self._error = value
            else:
                self.counts = value

    def check(self) -> None:
        self._poll()
        if self._error is None and not self._proc.is_alive() and not self.counts:
            self._error = f"the loader process died (exit code {self._proc.exitcode})"
        if self._error is not None:
            raise RuntimeError(f"export: loading into DuckDB failed: {self._error}")

    def submit(self, kind: str, path: Path) -> None:
        while True:
            self.check()
            try:
                self._tasks.put((kind, str(path)), timeout=1)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Wait for the loader to finish, then open its database here."""
        self._tasks.put(None)
        while not self.counts and self._error is None:
            try:
                kind, value = self._results.get(timeout=1)
            except queue.Empty:
                if not self._proc.is_alive():
                    self._poll()
                    if not self.counts and self._error is None:
                        self._error = f"the loader process died (exit code {self._proc.exitcode})"
                continue
            if kind == "error":
                self._error = value
            else:
                self.counts = value
        self._proc.join()
        self.check()
        self.conn = _duck_connect(str(self.db_path), self.workdir, self.memory_limit, self.threads)

    def abort(self) -> None:
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def count(self, table: str) -> int:
        return self.counts[table]


# ---------------------------------------------------------------------------- value forms per target

ISO = "'%Y-%m-%dT%H:%M:%S.%fZ'"


def text_expr(name: str, t: LType) -> str:
    """A column as text-friendly SQLite/CSV wants it: lists and JSON as JSON
    text, timestamps as ISO 8601 in UTC (as canonical.jsonl writes them)."""
    col = qi(name)
    if t.is_list:
        return f"to_json({col})::VARCHAR"
    if t.kind == "JSON":
        return f"{col}::VARCHAR"
    if t.kind == "TIMESTAMPTZ":
        return f"regexp_replace(strftime({col}, {ISO}), '\\.000000Z$', 'Z')"
    if t.kind == "DATE":
        return f"strftime({col}, '%Y-%m-%d')"
    return col


def pg_expr(name: str, t: LType) -> str:
    col = qi(name)
    if t.kind in ("JSON", "TIMESTAMPTZ", "DATE"):
        return text_expr(name, t)
    return col


SQLITE_TYPES = {"VARCHAR": "TEXT", "BIGINT": "INTEGER", "DOUBLE": "REAL", "BOOLEAN": "INTEGER",
                "TIMESTAMPTZ": "TEXT", "DATE": "TEXT", "JSON": "TEXT"}
PG_TYPES = {"VARCHAR": "text", "BIGINT": "bigint", "DOUBLE": "double precision", "BOOLEAN": "boolean",
            "TIMESTAMPTZ": "timestamptz", "DATE": "date", "JSON": "jsonb"}


def sql_type(t: LType, dialect: str) -> str:
    if dialect == "duckdb":
        return t.duckdb()
    if dialect == "sqlite":
        return "TEXT" if t.is_list else SQLITE_TYPES[t.kind]
    if dialect == "postgresql":
        return sql_type(t.item, dialect) + "[]" if t.is_list else PG_TYPES[t.kind]
    raise ValueError(dialect)


def rows(conn, table: Table, expr: Callable[[str, LType], str]) -> Iterator[list[tuple]]:
    cur = conn.cursor()
    cur.execute("SELECT " + ", ".join(expr(c.name, c.type) for c in table.columns) + f" FROM {qi(table.name)}")
    while True:
        batch = cur.fetchmany(BATCH_ROWS)
        if not batch:
            break
        yield batch
    cur.close()


# ---------------------------------------------------------------------------- outputs

def arrow_type(t: LType):
    import pyarrow as pa

    if t.is_list:
        return pa.list_(arrow_type(t.item))
    return {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64(), "BOOLEAN": pa.bool_(),
            "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"), "DATE": pa.date32(), "JSON": pa.string()}[t.kind]


def arrow_schema(table: Table):
    import pyarrow as pa

    return pa.schema([pa.field(c.name, arrow_type(c.type), nullable=True) for c in table.columns])


def write_parquet(conn, table: Table, path: Path) -> None:
    """One table to Parquet, streamed in row groups, with the contract's schema.

    pyarrow writes it, not DuckDB's COPY: DuckDB marks a column REQUIRED in a
    file where it happens to hold no null, so its type would depend on the
    data."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema(table)
    reader = conn.sql(f"SELECT * FROM {qi(table.name)}").to_arrow_reader(PARQUET_ROW_GROUP)
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for batch in reader:
            writer.write_table(pa.Table.from_batches([batch]).cast(schema), row_group_size=PARQUET_ROW_GROUP)


def write_files(conn, tables: dict[str, Table], outdir: Path, fmt: str) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    for t in tables.values():
        target = _sql_literal(str(outdir / f"{t.name}.{fmt}"))
        if fmt == "parquet":
            write_parquet(conn, t, outdir / f"{t.name}.parquet")
        else:
            cols = ", ".join(f"{text_expr(c.name, c.type)} AS {qi(c.name)}" for c in t.columns)
            conn.execute(f"COPY (SELECT {cols} FROM {qi(t.name)}) TO {target} (FORMAT csv, HEADER true)")


def create_statements(tables: dict[str, Table], dialect: str, schema: Optional[str] = None) -> list[str]:
    prefix = f"{qi(schema)}." if schema else ""
    out = []
    for t in tables.values():
        cols = ", ".join(f"{qi(c.name)} {sql_type(c.type, dialect)}" for c in t.columns)
        if t.name == "trials":  # Datasette links a trial's row by its NCT ID
            cols += ", PRIMARY KEY (nct_id)"
        out.append(f"CREATE TABLE {prefix}{qi(t.name)} ({cols})")
    return out


def index_statements(tables: dict[str, Table], schema: Optional[str] = None) -> list[str]:
    prefix = f"{qi(schema)}." if schema else ""
    out = []
    for t in tables.values():
        if t.name != "trials" and any(c.name == "nct_id" for c in t.columns):
            out.append(f"CREATE INDEX {qi(t.name + '_nct_id')} ON {prefix}{qi(t.name)} (nct_id)")
    return out


def write_sqlite(conn, tables: dict[str, Table], path: Path, views: list[str] = ()) -> None:
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        db.execute("BEGIN")
        for stmt in create_statements(tables, "sqlite"):
            db.execute(stmt)
        for t in tables.values():
            marks = ",".join("?" * len(t.columns))
            for batch in rows(conn, t, text_expr):
                db.executemany(f"INSERT INTO {qi(t.name)} VALUES ({marks})", batch)
        for stmt in index_statements(tables) + list(views):
            db.execute(stmt)
        db.execute("COMMIT")
    finally:
        db.close()


def write_postgres(conn, tables: dict[str, Table], url: str, schema: str) -> None:
    """The tables into `schema` of the PostgreSQL database at `url`, replaced in
    one transaction at the end (built under a scratch schema name first, so a
    reader sees the old tables or the new ones, never half)."""
    import psycopg

    scratch = f"{schema}__new"
    with psycopg.connect(url) as pg:
        with pg.transaction():
            pg.execute(f"DROP SCHEMA IF EXISTS {qi(scratch)} CASCADE")
            pg.execute(f"CREATE SCHEMA {qi(scratch)}")
            for stmt in create_statements(tables, "postgresql", scratch):
                pg.execute(stmt)
        for t in tables.values():
            names = ", ".join(qi(c.name) for c in t.columns)
            with pg.transaction(), pg.cursor() as cur:
                with cur.copy(f"COPY {qi(scratch)}.{qi(t.name)} ({names}) FROM STDIN") as copy:
                    for batch in rows(conn, t, pg_expr):
                        for row in batch:
                            copy.write_row(row)
        with pg.transaction():
            for stmt in index_statements(tables, scratch):
                pg.execute(stmt)
            pg.execute(f"DROP SCHEMA IF EXISTS {qi(schema)} CASCADE")
            pg.execute(f"ALTER SCHEMA {qi(scratch)} RENAME TO {qi(schema)}")


# ---------------------------------------------------------------------------- atomic targets

def replace_path(tmp: Path, target: Path) -> None:
    """Put `tmp` (a file or a directory) at `target`, replacing what was there."""
    if target.is_dir() and not target.is_symlink():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(old)
        try:
            tmp.rename(target)
        except BaseException:
            old.rename(target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)


def workspace(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
