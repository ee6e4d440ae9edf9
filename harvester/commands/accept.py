"""`scrapy accept URL [URL ...] [--site SITE] [--version N]`, `scrapy accept --list`:
make a quarantined version current, after a person checked it.

The integrity gate keeps a new version that loses the NCT ID, changes it,
or empties core fields, without making it current (the run that met it
failed and its report lists it). When the site really did remove the data,
accept it: the version becomes the page's current one from now on (the
reason stays on record; `scrapy history` shows both). `--list` prints the
quarantined versions still waiting, one JSON line each. Exit status 1 when
a URL has no quarantined version to accept.
"""
from __future__ import annotations

import argparse
import sys

import orjson
from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from harvester.commands.reconcile import store_path_problem
from harvester.store import Store


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False

    def syntax(self) -> str:
        return "URL [URL ...] [--site SITE] [--version N] | --list"

    def short_desc(self) -> str:
        return "Accept a quarantined version of a page (after checking it), or list them"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--list", action="store_true", help="list the quarantined versions")
        parser.add_argument("--site", help="the site of the URLs (when one URL is stored for two sites)")
        parser.add_argument("--version", type=int, help="the version to accept (default: the page's latest)")

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        if not args and not opts.list:
            raise UsageError("give the URL of a quarantined page, or --list")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        problem = store_path_problem(self.settings.get("HARVEST_DB"))
        if problem:
            raise UsageError(problem, print_help=False)
        with Store.from_settings(self.settings) as store:
            if opts.list:
                for q in store.quarantined():
                    sys.stdout.buffer.write(orjson.dumps(q) + b"\n")
                return
            waiting = store.quarantined()
            for url in args:
                sites = sorted({q["site"] for q in waiting if q["url"] == url and not q["superseded"]})
                if opts.site:
                    sites = [s for s in sites if s == opts.site]
                if len(sites) != 1:
                    why = "no quarantined version waiting" if not sites else f"stored for {', '.join(sites)}: give --site"
                    print(f"accept {url}: {why}", file=sys.stderr)
                    self.exitcode = 1
                    continue
                try:
                    v = store.accept(sites[0], url, opts.version)
                except (LookupError, ValueError) as exc:
                    print(f"accept {url}: {exc}", file=sys.stderr)
                    self.exitcode = 1
                    continue
                print(f"accepted {sites[0]} {url} version {v['seq']} (held back: {v['quarantine']}); "
                      f"current from {v['current_from']}", file=sys.stderr)
