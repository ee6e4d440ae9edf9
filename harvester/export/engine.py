"""Writing the export tables with DuckDB.

Reconciliation writes its canonical JSON lines (the same bytes as
`canonical.jsonl`) into `ChunkSink`, which cuts them into files of about
`chunk_bytes`. A loader process (`Loader`) has DuckDB read each finished
file in place (`read_json` with the contract's column types, so nothing is
inferred), runs every table's SELECT over it, and appends the rows straight
to the outputs (`Sink`s: Parquet files, a DuckDB or SQLite database, CSV
files, a PostgreSQL schema), while reconciliation goes on with the next
chunk: the two use both cores. Only the current chunk is ever in memory,
and a bounded queue keeps at most `max_pending` chunk files waiting, so
memory and temporary disk stay bounded whatever the number of trials.
Chunks arrive in NCT ID order and each table's SELECT orders its rows, so
every table is written in key order.
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
        self.bytes = 0
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
        self.bytes += len(data)
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


def _chunk_source(kind: str, path: Path, columns: dict[str, str]) -> str:
    return (f"read_json({_sql_literal(str(path))}, format = 'newline_delimited', "
            f"columns = {columns[kind]}, maximum_object_size = {MAX_LINE})")


# which staged table each kind of chunk becomes, and the tables filled from it
STAGED = {"trials": "chunk", "unlinked": "unlinked_chunk", "changes": "changes_chunk"}


def _describe(exc: BaseException, sinks: list[tuple]) -> str:
    """An error for the user, with any PostgreSQL password redacted (a
    connection error may echo the URL)."""
    from harvester.redact import redact_text

    text = f"{type(exc).__name__}: {exc}"
    for spec in sinks:
        if spec[0] == "postgresql":
            text = redact_text(text, spec[1])
    return text


def _loader_main(tables: dict[str, Table], sinks: list[tuple], workdir: str, memory_limit: str,
                 threads: Optional[int], tasks, results) -> None:
    """The loader process: open the sinks, load every chunk it is sent into
    them, close them, then report the row counts (or the first error)."""
    error = None
    conn = None
    opened: list[Sink] = []
    counts = {name: 0 for name in tables}
    try:
        conn = _duck_connect(":memory:", Path(workdir), memory_limit, threads)
        columns = {"trials": read_columns(Trial), "unlinked": read_columns(UnlinkedPage)}
        from harvester.export.sql import changes_columns

        columns["changes"] = changes_columns()
        for spec in sinks:
            opened.append(SINKS[spec[0]](tables, *spec[1:]))
    except BaseException as exc:
        error = _describe(exc, sinks)
        results.put(("error", error))
    while True:
        item = tasks.get()
        if item is None:
            break
        kind, path = item
        try:
            if error is None:  # after an error, only drain, so the producer never blocks
                staged = STAGED[kind]
                conn.execute(f"CREATE OR REPLACE TEMP TABLE {staged} AS SELECT * FROM "
                             f"{_chunk_source(kind, Path(path), columns)}")
                for t in tables.values():
                    if t.select and t.staged == staged:
                        batch = conn.sql(t.select).to_arrow_table()
                        counts[t.name] += batch.num_rows
                        for sink in opened:
                            sink.write(t, batch, conn)
                conn.execute(f"DROP TABLE {staged}")
        except BaseException as exc:
            error = _describe(exc, sinks)
            results.put(("error", error))
        finally:
            Path(path).unlink(missing_ok=True)
    if error is None:
        try:
            for sink in opened:
                sink.close(conn)
            results.put(("done", counts))
            return
        except BaseException as exc:
            results.put(("error", _describe(exc, sinks)))
    for sink in opened:
        sink.abort()


class Loader:
    """The loader process (see the module doc). A process, not a thread, so
    that DuckDB's work and reconciliation's Python never share one
    interpreter (and its lock): each gets a core."""

    def __init__(self, tables: dict[str, Table], sinks: list[tuple], workdir: Path, *,
                 memory_limit: str = "512MB", threads: Optional[int] = None, max_pending: int = 2):
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self.tables = tables
        self._tasks = ctx.Queue(maxsize=max_pending)
        self._results = ctx.Queue()
        self._proc = ctx.Process(target=_loader_main, name="export-loader", daemon=True,
                                 args=(tables, sinks, str(workdir), memory_limit, threads,
                                       self._tasks, self._results))
        self._proc.start()
        self.counts: dict[str, int] = {}
        self._error: Optional[str] = None

    def _take(self, block: bool) -> bool:
        try:
            kind, value = self._results.get(timeout=1) if block else self._results.get_nowait()
        except queue.Empty:
            return False
        if kind == "error":
            self._error = value
        else:
            self.counts = value
        return True

    def check(self) -> None:
        while self._error is None and self._take(block=False):
            pass
        if self._error is not None:
            raise RuntimeError(f"export: writing the tables failed: {self._error}")
        if not self._proc.is_alive() and not self.counts:
            raise RuntimeError(f"export: the loader process died (exit code {self._proc.exitcode})")

    def submit(self, kind: str, path: Path) -> None:
        while True:
            self.check()
            try:
                self._tasks.put((kind, str(path)), timeout=1)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Wait until every chunk is written and the outputs are closed."""
        self._tasks.put(None)
        while not self.counts and self._error is None:
            if not self._take(block=True) and not self._proc.is_alive():
                self._take(block=False)
                break
        self._proc.join()
        self.check()

    def abort(self) -> None:
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join()

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


class Sink:
    """Where a table's rows go, chunk by chunk. `write` receives one chunk's
    rows of one table as an Arrow table (`conn` can query it)."""

    def __init__(self, tables: dict[str, Table]):
        self.tables = tables

    def write(self, table: Table, batch, conn) -> None:
        raise NotImplementedError

    def close(self, conn) -> None:
        pass

    def abort(self) -> None:
        pass


def _select_over(table: Table, expr: Callable[[str, LType], str], conn, batch):
    """`batch` (an Arrow table) with every column in the form `expr` gives."""
    conn.register("batch", batch)
    try:
        return conn.sql("SELECT " + ", ".join(f"{expr(c.name, c.type)} AS {qi(c.name)}" for c in table.columns)
                        + " FROM batch").to_arrow_table()
    finally:
        conn.unregister("batch")


class ParquetSink(Sink):
    """One Parquet file per table, one row group per chunk or so, with the
    contract's schema. pyarrow writes them, not DuckDB's COPY: DuckDB marks a
    column REQUIRED in a file where it happens to hold no null, so a column's
    type would depend on the data."""

    def __init__(self, tables: dict[str, Table], outdir: str):
        import pyarrow.parquet as pq

        super().__init__(tables)
        Path(outdir).mkdir(parents=True, exist_ok=True)
        self.schemas = {n: arrow_schema(t) for n, t in tables.items()}
        self.writers = {n: pq.ParquetWriter(Path(outdir) / f"{n}.parquet", self.schemas[n], compression="zstd")
                        for n in tables}

    def write(self, table: Table, batch, conn) -> None:
        self.writers[table.name].write_table(batch.cast(self.schemas[table.name]),
                                             row_group_size=PARQUET_ROW_GROUP)

    def close(self, conn) -> None:
        for w in self.writers.values():
            w.close()

    def abort(self) -> None:
        for w in self.writers.values():
            try:
                w.close()
            except Exception:
                pass


class CsvSink(Sink):
    """One CSV file per table with a header: lists and JSON as JSON text,
    timestamps as ISO 8601 in UTC, null as an empty field."""

    def __init__(self, tables: dict[str, Table], outdir: str):
        import pyarrow.csv as pacsv

        super().__init__(tables)
        Path(outdir).mkdir(parents=True, exist_ok=True)
        self.files = {n: open(Path(outdir) / f"{n}.csv", "wb") for n in tables}
        self.writers = {}
        for n, t in tables.items():
            import pyarrow as pa

            schema = pa.schema([pa.field(c.name, _text_arrow_type(c.type)) for c in t.columns])
            self.writers[n] = pacsv.CSVWriter(self.files[n], schema)

    def write(self, table: Table, batch, conn) -> None:
        self.writers[table.name].write_table(_select_over(table, text_expr, conn, batch))

    def close(self, conn) -> None:
        for n in self.tables:
            self.writers[n].close()
            self.files[n].close()

    def abort(self) -> None:
        for f in self.files.values():
            f.close()


def _text_arrow_type(t: LType):
    import pyarrow as pa

    if t.is_list or t.kind in ("JSON", "TIMESTAMPTZ", "DATE"):
        return pa.string()
    return arrow_type(t)


class _FileDatabaseSink(Sink):
    """A sink writing into one database file through `self.db`."""

    def abort(self) -> None:
        try:
            self.db.close()
        except Exception:
            pass


class DuckDBSink(_FileDatabaseSink):
    def __init__(self, tables: dict[str, Table], path: str):
        import duckdb

        super().__init__(tables)
        self.db = duckdb.connect(path)
        for stmt in create_statements(tables, "duckdb"):
            self.db.execute(stmt)

    def write(self, table: Table, batch, conn) -> None:
        self.db.register("batch", batch)
        self.db.execute(f"INSERT INTO {qi(table.name)} SELECT * FROM batch")
        self.db.unregister("batch")

    def close(self, conn) -> None:
        self.db.execute("CHECKPOINT")
        self.db.close()


class SqliteSink(_FileDatabaseSink):
    def __init__(self, tables: dict[str, Table], path: str, views: list[str]):
        super().__init__(tables)
        self.views = views
        self.db = sqlite3.connect(path)
        self.db.execute("PRAGMA journal_mode = OFF")
        self.db.execute("PRAGMA synchronous = OFF")
        self.db.execute("BEGIN")
        for stmt in create_statements(tables, "sqlite"):
            self.db.execute(stmt)

    def write(self, table: Table, batch, conn) -> None:
        marks = ",".join("?" * len(table.columns))
        text = _select_over(table, text_expr, conn, batch)
        self.db.executemany(f"INSERT INTO {qi(table.name)} VALUES ({marks})",
                            zip(*(col.to_pylist() for col in text.columns)))

    def close(self, conn) -> None:
        for stmt in index_statements(self.tables) + list(self.views):
            self.db.execute(stmt)
        self.db.execute("COMMIT")
        self.db.close()


class PostgresSink(Sink):
    """The tables into `schema` of the PostgreSQL database at `url`. They are
    built under a scratch schema and swapped in with one transaction at the
    end, so a reader sees the old tables or the new ones, never half."""

    def __init__(self, tables: dict[str, Table], url: str, schema: str):
        import psycopg

        super().__init__(tables)
        self.schema, self.scratch = schema, f"{schema}__new"
        self.pg = psycopg.connect(url)
        with self.pg.transaction():
            self.pg.execute(f"DROP SCHEMA IF EXISTS {qi(self.scratch)} CASCADE")
            self.pg.execute(f"CREATE SCHEMA {qi(self.scratch)}")
            for stmt in create_statements(tables, "postgresql", self.scratch):
                self.pg.execute(stmt)

    def write(self, table: Table, batch, conn) -> None:
        rows = _select_over(table, pg_expr, conn, batch)
        names = ", ".join(qi(c.name) for c in table.columns)
        with self.pg.transaction(), self.pg.cursor() as cur:
            with cur.copy(f"COPY {qi(self.scratch)}.{qi(table.name)} ({names}) FROM STDIN") as copy:
                for row in zip(*(col.to_pylist() for col in rows.columns)):
                    copy.write_row(row)

    def close(self, conn) -> None:
        with self.pg.transaction():
            for stmt in index_statements(self.tables, self.scratch):
                self.pg.execute(stmt)
            self.pg.execute(f"DROP SCHEMA IF EXISTS {qi(self.schema)} CASCADE")
            self.pg.execute(f"ALTER SCHEMA {qi(self.scratch)} RENAME TO {qi(self.schema)}")
        self.pg.close()

    def abort(self) -> None:
        try:
            if not self.pg.closed:
                self.pg.rollback()
                self.pg.execute(f"DROP SCHEMA IF EXISTS {qi(self.scratch)} CASCADE")
                self.pg.commit()
                self.pg.close()
        except Exception:
            pass


SINKS = {"parquet": ParquetSink, "csv": CsvSink, "duckdb": DuckDBSink, "sqlite": SqliteSink,
         "postgresql": PostgresSink}


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
    """A scratch directory beside `target` (`.<name>.<pid>.<random>.tmp`),
    after removing those of killed exports (their PID gone): they hold up
    to a whole export."""
    import re

    from harvester.atomic import _alive

    target.parent.mkdir(parents=True, exist_ok=True)
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(\d+)\.[^.]+\.tmp$")
    for entry in target.parent.iterdir():
        m = pattern.match(entry.name)
        if m and entry.is_dir() and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent))
