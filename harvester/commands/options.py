"""The options several commands take, spelled and checked in one place, so
`-O`, `--unlinked` and the timestamps mean the same in every command."""
from __future__ import annotations

import argparse

from scrapy.exceptions import UsageError

from harvester.store import as_timestamp


def add_output(parser: argparse.ArgumentParser, what: str, metavar: str = "FILE", stdout: bool = True) -> None:
    parser.add_argument("-O", "--overwrite-output", dest="output", metavar=metavar,
                        help=f"write {what} to {metavar}, replacing it" + (" (- for stdout)" if stdout else ""))


def add_unlinked(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--unlinked", metavar="FILE",
                        help="where pages that could not be linked go (unlinked.jsonl beside FILE by default)")


def add_as_of(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--as-of", dest="as_of", metavar="TIMESTAMP",
                        help=f"{what} as they were at this time (ISO-8601 date or time, UTC when no zone)")


def no_arguments(args: list[str]) -> None:
    if args:
        raise UsageError(f"unexpected arguments: {' '.join(args)}")


def require_output(opts: argparse.Namespace) -> None:
    if not opts.output:
        raise UsageError("-O FILE is required (-O - for stdout)")


def timestamp(value: str | None, name: str) -> str | None:
    """An option's ISO-8601 date or time as the store's UTC timestamp (None stays None)."""
    if value is None:
        return None
    try:
        return as_timestamp(value)
    except ValueError as exc:
        raise UsageError(f"{name}: {exc}", print_help=False) from None
