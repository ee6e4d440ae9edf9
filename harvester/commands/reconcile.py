"""`scrapy reconcile -O canonical.jsonl [--unlinked PATH] [--as-of TIMESTAMP]`:
the store -> one canonical record per NCT ID.

Reads the store named by `HARVEST_DB` and writes one JSON line per NCT ID,
sorted by NCT ID (`-O -` writes to stdout; logs and the summary always go to
stderr). `--as-of TIMESTAMP` (an ISO-8601 date or time, UTC when no zone is
given) writes the records as they were at that time: the version of each
page current then, pages gone then left out; the same bytes whenever it is
run. Pages without an NCT ID that could not be linked to a trial go to
`--unlinked` (default: `unlinked.jsonl` beside the output; in the current
directory with `-O -`). Files are written to a temporary name and renamed
when complete, so a failed run never leaves half a file behind.

Linking and precedence settings (`HARVEST_PRECEDENCE`, `HARVEST_LINK_*`,
`HARVEST_AGE_TOLERANCE`) are described in `harvester.reconciliation`; `-s`
sets them for one run, e.g. `-s HARVEST_LINK_ONLINE=1` to let linking ask the
CT.gov API.
"""
from __future__ import annotations

import argparse
import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from pprint import pformat
from typing import IO, Iterator

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError
from scrapy.utils.log import configure_logging

from harvester.atomic import atomic_write
from harvester.changes import AsOf
from harvester.commands.options import add_as_of, add_output, add_unlinked, no_arguments, require_output, timestamp
from harvester.reconciliation import Summary, reconcile
from harvester.store import Store

logger = logging.getLogger(__name__)


def unlinked_path(output: str, unlinked: str | None) -> str:
    """`--unlinked`, or `unlinked.jsonl` beside the output (cwd for stdout)."""
    if unlinked:
        return unlinked
    if output == "-":
        return "unlinked.jsonl"
    return str(Path(output).with_name("unlinked.jsonl"))


def store_path_problem(db: str | None) -> str | None:
    """Why HARVEST_DB cannot be reconciled from, for a SQLite file that does
    not exist (Store would create an empty one). Other URLs are left to the
    store."""
    if not db:
        return "HARVEST_DB is not set"
    path = db[len("sqlite:///"):] if db.startswith("sqlite:///") else db
    if "://" in path or path == ":memory:":
        return None
    if not Path(path).exists():
        return f"no store at {path} (HARVEST_DB); crawl first, or `scrapy harvest`"
    return None


@contextmanager
def atomic_output(path: str) -> Iterator[IO[bytes]]:
    """A binary file that appears at `path` only once complete ("-": stdout)."""
    if path == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    # the replaced file's mode (else the umask's), through a symlink, stale temporaries removed
    with atomic_write(path, "wb", buffering=1 << 20) as fh:
        yield fh


def reconcile_to(settings, output: str, unlinked: str | None = None, as_of: str | None = None) -> Summary:
    """Reconcile the store of `settings` into `output` (path or "-"); with
    `as_of`, the store as it was at that time."""
    problem = store_path_problem(settings.get("HARVEST_DB"))
    if problem:
        raise UsageError(problem, print_help=False)
    unlinked = unlinked_path(output, unlinked)
    with Store.from_settings(settings) as store, atomic_output(output) as out, \
            atomic_output(unlinked) as unlinked_out:
        source = AsOf(store, as_of) if as_of else store
        summary = reconcile(source, out, unlinked_out, settings)
    logger.info("Reconciled %d trials from %d pages into %s; %d unlinked pages in %s",
                summary.trials, summary.sources, "stdout" if output == "-" else output,
                summary.unlinked, unlinked)
    print_summary(summary)
    return summary


def print_summary(summary: Summary) -> None:
    """The counts, on stderr (stdout may be carrying the trials)."""
    print("Reconcile stats:\n" + pformat(summary.as_stats()), file=sys.stderr, flush=True)


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False

    def syntax(self) -> str:
        return "-O FILE [--unlinked FILE] [--as-of TIMESTAMP]"

    def short_desc(self) -> str:
        return "Reconcile the stored pages into one canonical JSON line per NCT ID"

    def long_desc(self) -> str:
        return (self.short_desc() + ". Reads HARVEST_DB; writes the trials sorted by NCT ID to FILE "
                "(- for stdout) and pages that could not be linked to a trial to --unlinked.")

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        add_output(parser, "the canonical trials")
        add_unlinked(parser)
        add_as_of(parser, "the canonical records")

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        no_arguments(args)
        require_output(opts)
        opts.as_of = timestamp(opts.as_of, "--as-of")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        configure_logging(self.settings)
        reconcile_to(self.settings, opts.output, opts.unlinked, opts.as_of)
