"""`scrapy export --format parquet|duckdb|sqlite|csv -O PATH`: the store ->
flat analytics tables (see `harvester.export`).

Reads the store named by `HARVEST_DB` through reconciliation (the same
records as `scrapy reconcile`'s canonical.jsonl and unlinked.jsonl) and
writes `trials`, its child tables keyed by `nct_id`, `conflicts`, `sources`,
`field_provenance`, `unlinked` and `changes`. `parquet` and `csv` write a
directory of one file per table; `duckdb` and `sqlite` one database file
(`sqlite` also writes Datasette's `metadata.json` beside it, or to
`--metadata`). The output appears only once complete.

With a PostgreSQL store the same tables are refreshed in the schema
`HARVEST_EXPORT_SCHEMA` (default `export`) of that database; `-O` may then be
left out. `--as-of TIMESTAMP` exports the trials as the store knew them
then (each page's version current at that time). Reconciliation settings (`HARVEST_PRECEDENCE`, `HARVEST_LINK_*`)
apply as for `scrapy reconcile`.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pprint import pformat

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError
from scrapy.utils.log import configure_logging

from harvester.commands.reconcile import store_path_problem
from harvester.commands.options import add_as_of, add_output, no_arguments
from harvester.export import export
from harvester.export.engine import FORMATS
from harvester.store import is_postgres_url

logger = logging.getLogger(__name__)


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False

    def syntax(self) -> str:
        return "--format {" + "|".join(FORMATS) + "} -O PATH [--as-of TIMESTAMP] [--metadata FILE]"

    def short_desc(self) -> str:
        return "Export the reconciled trials as flat tables (Parquet, DuckDB, SQLite, CSV)"

    def long_desc(self) -> str:
        return (self.short_desc() + ". Reads HARVEST_DB through reconciliation; parquet and csv write a "
                "directory of one file per table, duckdb and sqlite one database (sqlite with Datasette's "
                "metadata.json beside it). With a PostgreSQL store the tables are also refreshed in its "
                "schema HARVEST_EXPORT_SCHEMA (default export).")

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--format", dest="format", choices=FORMATS, help="output format")
        add_output(parser, "the tables", metavar="PATH", stdout=False)
        add_as_of(parser, "the trials")
        parser.add_argument("--changes-since", dest="changes_since", metavar="TIMESTAMP",
                            help="the changes table from this time (exclusive; by default the store's beginning)")
        parser.add_argument("--metadata", metavar="FILE",
                            help="sqlite: where Datasette's metadata goes (metadata.json beside PATH by default)")

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        no_arguments(args)
        pg = is_postgres_url(str(self.settings.get("HARVEST_DB") or ""))
        if opts.output == "-":
            raise UsageError("-O -: the tables are files; give a path")
        if not pg and not opts.output:
            raise UsageError("-O PATH is required")
        if opts.output and not opts.format:
            raise UsageError("--format is required with -O (" + ", ".join(FORMATS) + ")")
        if opts.format and not opts.output:
            raise UsageError("--format needs -O PATH")
        if opts.metadata and opts.format != "sqlite":
            raise UsageError("--metadata goes with --format sqlite")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        configure_logging(self.settings)
        problem = store_path_problem(self.settings.get("HARVEST_DB"))
        if problem:
            raise UsageError(problem, print_help=False)
        try:
            summary = export(self.settings, opts.format, opts.output, metadata=opts.metadata, as_of=opts.as_of,
                             changes_since=opts.changes_since)
        except ValueError as exc:
            raise UsageError(str(exc), print_help=False) from None
        where = [opts.output] if opts.output else []
        if summary.postgres_schema:
            where.append(f"schema {summary.postgres_schema} of the PostgreSQL store")
        logger.info("Exported %d trials (%s) into %s in %.1f s", summary.rows.get("trials", 0),
                    summary.fmt, " and ".join(where), summary.seconds)
        print("Export stats:\n" + pformat(summary.as_stats()), file=sys.stderr, flush=True)
