"""`scrapy harvest -O canonical.jsonl [--spiders a,b] [--offline] [-a k=v ...]`:
crawl, then reconcile, in one command.

Runs the chosen spiders (default: every spider of the project, in
alphabetical order) in one process, each into the store (`HARVEST_DB`), then
reconciles the store into `-O` exactly as `scrapy reconcile` does (`-O -`
for stdout, `--unlinked` for the pages that could not be linked), and
writes the changes of the canonical trials since the previous harvest
(`harvester.changes`; since the beginning for the first harvest of a store)
to `--changes` (default `changes.jsonl` beside the output).

The spiders run one after another, in the order of `--spiders`, so a spider
that reads the store (Veeva's `-a nct` looks up titles the ctgov spider
stored) sees what the earlier ones wrote. `--together` runs them at the same
time instead, which is faster for live refreshes: each site has its own
politeness budget, so one site's delays need not hold back the others.

Live sites by default. `--offline` replays the bundled cassettes instead:
it sets `VCR_CASSETTE=<project>/cassettes`, `VCR_RECORD_MODE=none` and
`ROBOTSTXT_OBEY=False` (unless given with `-s`), and passes each spider the
arguments its site registry entry gives as `offline` (`harvester.sites`: the
`-a` arguments that make it crawl its bundled demo pages), so this command
has no site-specific code. `-a k=v` arguments go to every spider (after the offline
ones, so they win), e.g. `-a incremental=1`.

Exit status
-----------
0 when every spider finished cleanly, 1 otherwise. The canonical file is
written either way (from whatever the store holds), so a partial crawl still
gives a usable output. A spider failed when any of these holds in its stats:

* it did not start (bad arguments), or `finish_reason` is not "finished"
  (a `closespider_*` reason is a limit the user asked for and counts as
  finished);
* `harvester/parse_error/<site>` > 0: pages the parser could not read;
* `spider_exceptions/count` > 0: a callback raised;
* `retry/max_reached` > 0: a request that still failed after its retries;
* `harvester/failed_pages`, `harvester/dataloss`, `harvester/truncated_pages`
  > 0: pages that failed or could not be read whole (the run report's rule,
  `harvester.extensions.crawl_problems`);
* a layout-drift alarm fired (`harvester/drift_fields`, see
  `harvester.monitoring`);
* `vcr/miss` > 0: replaying, a request with no recording;
* a response status >= 400 that was neither retried (`RETRY_HTTP_CODES`,
  covered by `retry/max_reached`) nor expected (`HARVEST_EXPECTED_HTTP_STATUSES`,
  default 404 and 410: pages that are gone, which the store marks removed);
* a download exception that is not retried (`RETRY_EXCEPTIONS`) and not an
  `IgnoreRequest` (a request dropped on purpose, e.g. by robots.txt).

`log_count/ERROR` is not used: errors already counted above are logged too,
and a spider may log an error about something it handled.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError
from scrapy.settings import SETTINGS_PRIORITIES
from scrapy.utils.conf import arglist_to_dict, closest_scrapy_cfg

from harvester.commands.changes import write_changes
from harvester.commands.options import add_output, add_unlinked, no_arguments, require_output
from harvester.commands.reconcile import atomic_output, reconcile_to
from harvester.extensions import crawl_failures
from harvester.store import open_store, utcnow
from harvester.sites import sites

logger = logging.getLogger(__name__)

LAST_HARVEST = "last_harvest_at"  # meta key: the point in time of the previous harvest's output


def changes_path(output: str, changes: str | None) -> str:
    """`--changes`, or `changes.jsonl` beside the output (cwd for stdout)."""
    if changes:
        return changes
    return "changes.jsonl" if output == "-" else str(Path(output).with_name("changes.jsonl"))


def write_harvest_changes(settings, path: str, until: str) -> None:
    """The changes since the previous harvest (since the beginning for the
    first one) into `path`; then this harvest becomes the previous one."""
    with open_store(settings) as store:
        since = store.get_meta(LAST_HARVEST)
        with atomic_output(path) as out:
            counts = write_changes(store, out, since, until, settings)
        store.set_meta(LAST_HARVEST, until)
    print(f"changes since {'the previous harvest, ' + since if since else 'the beginning'}: "
          f"{sum(counts.values())} ({', '.join(f'{k} {v}' for k, v in sorted(counts.items())) or 'none'})"
          f" in {path}", file=sys.stderr)


def project_dir() -> Path:
    """The checkout: where scrapy.cfg is, else the parent of the harvester package."""
    cfg = closest_scrapy_cfg()
    if cfg:
        return Path(cfg).resolve().parent
    import harvester

    return Path(harvester.__file__).resolve().parent.parent


def run_in_sequence(process, jobs: list) -> None:
    """Start each (crawler, kwargs) when the previous crawl has ended. Works
    with both process kinds: `crawl()` returns a Deferred (CrawlerProcess) or
    an asyncio Task (AsyncCrawlerProcess); the process's join() keeps waiting
    while a crawl started from a callback is active."""
    pending = iter(jobs)

    def start_next(_=None):
        job = next(pending, None)
        if job is not None:
            crawler, kwargs = job
            started = process.crawl(crawler, **kwargs)
            if hasattr(started, "add_done_callback"):
                started.add_done_callback(start_next)
            else:
                started.addBoth(start_next)
        return None  # a failed crawl is reported by its stats, not re-raised here

    start_next()


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = True

    def syntax(self) -> str:
        return ("-O FILE [--spiders a,b] [--offline] [--together] [-a NAME=VALUE ...] [--unlinked FILE]"
                " [--changes FILE]")

    def short_desc(self) -> str:
        return "Crawl the chosen spiders, then reconcile the store into canonical JSONL"

    def long_desc(self) -> str:
        return (self.short_desc() + ". Live by default; --offline replays the bundled cassettes. "
                "Exit status 1 when a spider failed (parse errors, failed pages, spider exceptions, "
                "requests that failed after retries, unexpected HTTP errors, cassette misses, "
                "layout drift).")

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        add_output(parser, "the canonical trials")
        add_unlinked(parser)
        parser.add_argument("--changes", metavar="FILE",
                            help="where the changes since the previous harvest go (changes.jsonl beside FILE by default)")
        parser.add_argument("--spiders", metavar="NAMES",
                            help="comma-separated spiders to run (all spiders of the project by default)")
        parser.add_argument("--offline", action="store_true",
                            help="replay the bundled cassettes (no network) with each spider's demo arguments")
        parser.add_argument("--together", action="store_true",
                            help="run the spiders at the same time (one after another, in order, by default)")
        parser.add_argument("-a", dest="spargs", action="append", default=[], metavar="NAME=VALUE",
                            help="spider argument, passed to every spider (may be repeated)")

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        no_arguments(args)
        require_output(opts)
        try:
            opts.spargs = arglist_to_dict(opts.spargs)
        except ValueError:
            raise UsageError("Invalid -a value, use -a NAME=VALUE", print_help=False) from None
        if opts.offline:
            cassettes = project_dir() / "cassettes"
            if not cassettes.is_dir():
                raise UsageError(f"--offline: no cassettes at {cassettes}", print_help=False)
            for name, value in (("VCR_CASSETTE", str(cassettes)), ("VCR_RECORD_MODE", "none"),
                                ("ROBOTSTXT_OBEY", False)):
                if self.settings.getpriority(name) < SETTINGS_PRIORITIES["cmdline"]:
                    self.settings.set(name, value, priority="cmdline")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        process = self.crawler_process
        assert process is not None
        available = sorted(process.spider_loader.list())
        names = [n for n in (opts.spiders or "").replace(" ", ",").split(",") if n] or available
        unknown = [n for n in names if n not in available]
        if unknown:
            raise UsageError(f"unknown spiders: {', '.join(unknown)} (available: {', '.join(available)})",
                             print_help=False)
        registry = sites(self.settings)
        jobs = []
        for name in names:
            spidercls = process.spider_loader.load(name)
            entry = registry.get(name)
            kwargs = dict(entry.offline) if opts.offline and entry is not None else {}
            kwargs.update(opts.spargs)
            jobs.append((name, process.create_crawler(spidercls), kwargs))
        if opts.together:
            for _, crawler, kwargs in jobs:
                process.crawl(crawler, **kwargs)
        else:
            run_in_sequence(process, [(c, k) for _, c, k in jobs])
        process.start()
        crawlers = [(name, crawler) for name, crawler, _ in jobs]

        failed = False
        for name, crawler in crawlers:
            if crawler.spider is None or crawler.stats is None:
                reasons = ["did not start"]
            else:
                reasons = crawl_failures(crawler.stats.get_stats(), crawler.settings)
            if reasons:
                failed = True
                logger.error("spider %s failed: %s", name, "; ".join(reasons))
        if getattr(process, "bootstrap_failed", False):
            failed = True
        until = utcnow()  # the point in time this harvest's output stands for
        reconcile_to(self.settings, opts.output, opts.unlinked)
        write_harvest_changes(self.settings, changes_path(opts.output, opts.changes), until)
        if failed:
            print("harvest: some spiders failed (see the log); the output holds what the store has",
                  file=sys.stderr)
            self.exitcode = 1
