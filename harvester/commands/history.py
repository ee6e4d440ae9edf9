"""`scrapy history NCT... [--json]`: the versions of a trial, per page, with
their dates and what each changed, for a person looking into one trial.

Reads `HARVEST_DB`. For every page that ever carried one of the NCT IDs:
its versions in order (first seen, last seen, when it became current, or
that the integrity gate holds it back and why, or when a person accepted
it), the changes of each against the version current before it, and when
the page went (404/410) and came back. `--json` writes the same as one JSON
document per page on stdout.
"""
from __future__ import annotations

import argparse
import re
import sys

import orjson
from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from harvester.changes import history
from harvester.commands.reconcile import store_path_problem
from harvester.store import Store


def _value(v) -> str:
    text = orjson.dumps(v).decode() if not isinstance(v, str) else v
    return text if len(text) <= 160 else text[:157] + "..."


def describe(pages: list[dict]) -> str:
    lines = []
    for page in pages:
        lines.append(f"{page['site']} {page['url']}")
        for v in page["versions"]:
            state = (f"current from {v['current_from']}" if v["current_from"] else "QUARANTINED")
            if v["accepted_at"]:
                state += " (accepted)"
            lines.append(f"  version {v['seq']}: first seen {v['first_seen_at']}, last seen {v['last_seen_at']}, "
                         f"{state}; NCT ID {v['nct_id'] or '-'}")
            if v["quarantine"]:
                lines.append(f"    held back: {v['quarantine']}")
            for c in v["changes"]:
                key = f" [{_value(c['key'])}]" if c["key"] else ""
                if c["change"] == "changed":
                    lines.append(f"    {c['field']}{key}: {_value(c['old'])} -> {_value(c['new'])}")
                else:
                    lines.append(f"    {c['field']} {c['change']}: {_value(c['new'] if c['change'] == 'added' else c['old'])}")
        for g in page["gone"]:
            lines.append(f"  gone {g['gone_at']}" + (f", back {g['back_at']}" if g["back_at"] else ", still gone"))
    return "\n".join(lines)


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False

    def syntax(self) -> str:
        return "NCT_ID [NCT_ID ...] [--json]"

    def short_desc(self) -> str:
        return "Show the versions of a trial's pages, with their dates and what each changed"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--json", action="store_true", help="one JSON document per page instead of text")

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        if not args:
            raise UsageError("give one or more NCT IDs")
        bad = [a for a in args if not re.fullmatch(r"NCT\d{8}", a.strip().upper())]
        if bad:
            raise UsageError(f"not NCT IDs: {' '.join(bad)}", print_help=False)

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        problem = store_path_problem(self.settings.get("HARVEST_DB"))
        if problem:
            raise UsageError(problem, print_help=False)
        ids = [a.strip().upper() for a in args]
        with Store.from_settings(self.settings) as store:
            pages = history(store, ids)
        if not pages:
            print(f"no stored page of {' '.join(ids)}", file=sys.stderr)
            self.exitcode = 1
            return
        if opts.json:
            for page in pages:
                sys.stdout.buffer.write(orjson.dumps(page) + b"\n")
        else:
            print(describe(pages))
