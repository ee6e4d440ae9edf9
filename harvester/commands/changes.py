"""`scrapy changes --since TIMESTAMP [--until TIMESTAMP] -O changes.jsonl`:
the change feed of the canonical trials between two points in time.

One JSON line per change (`harvester.changes`: nct_id, field, change, key,
old, new, site, url, observed_at), sorted by NCT ID and field, streamed
from the store named by `HARVEST_DB`. TIMESTAMP is an ISO-8601 date or
time ("2026-11-20", "2026-11-20T08:00:00Z"; no zone means UTC); `--until`
defaults to now; `-O -` writes to stdout. The file is written under a
temporary name and renamed when complete.
"""
from __future__ import annotations

import argparse
import logging
import sys

import orjson
from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError
from scrapy.utils.log import configure_logging

from harvester.changes import iter_changes
from harvester.commands.options import add_output, no_arguments, require_output, timestamp
from harvester.commands.reconcile import atomic_output, store_path_problem
from harvester.store import Store, utcnow

logger = logging.getLogger(__name__)


def write_changes(store, out, since, until, settings) -> dict:
    """Stream the changes into the binary file `out`; returns counts by kind."""
    counts: dict[str, int] = {}
    for change in iter_changes(store, since, until, settings):
        out.write(orjson.dumps(change) + b"\n")
        counts[change["change"]] = counts.get(change["change"], 0) + 1
    return counts


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False

    def syntax(self) -> str:
        return "--since TIMESTAMP [--until TIMESTAMP] -O FILE"

    def short_desc(self) -> str:
        return "Write the changes of the canonical trials between two points in time, one JSON line each"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--since", metavar="TIMESTAMP", help="from this time (exclusive)")
        parser.add_argument("--until", metavar="TIMESTAMP", help="to this time (inclusive; default: now)")
        add_output(parser, "the changes")

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        no_arguments(args)
        require_output(opts)
        if not opts.since:
            raise UsageError("--since TIMESTAMP is required")
        opts.since = timestamp(opts.since, "--since")
        opts.until = timestamp(opts.until, "--until") or utcnow()
        if opts.until < opts.since:
            raise UsageError("--until is before --since", print_help=False)

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        configure_logging(self.settings)
        problem = store_path_problem(self.settings.get("HARVEST_DB"))
        if problem:
            raise UsageError(problem, print_help=False)
        with Store.from_settings(self.settings) as store, atomic_output(opts.output) as out:
            counts = write_changes(store, out, opts.since, opts.until, self.settings)
        print(f"changes {opts.since} .. {opts.until}: {sum(counts.values())} "
              f"({', '.join(f'{k} {v}' for k, v in sorted(counts.items())) or 'none'})", file=sys.stderr)
