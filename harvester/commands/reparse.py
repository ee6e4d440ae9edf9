"""`scrapy reparse [--site SITE]`: rebuild every stored source record from its
stored body with the current parser. No network.

After an upgrade of harvester (a parser that reads more fields, a fixed
normalizer) this gives every stored page the record today's parser makes of
it, without crawling anything: the full CT.gov study JSON and the HTML pages
are in the store. It runs as a crawl of `harvester.reparse.ReparseSpider`,
so its records go through the same validation and store pipelines as a
crawl's (a changed record becomes the page's new version) and it writes a
run report (`reports/reparse-latest.json`).

Prints `reparse: N pages: C changed, U unchanged, F failed` (and what was
skipped) on stderr. Exit status 1 when a page could not be re-parsed (its
stored record is kept, and a Reject with the error and body is stored) or
the run did not finish. Then `scrapy reconcile` gives the canonical records
with the new fields.
"""
from __future__ import annotations

import argparse
import sys

from scrapy.commands import ScrapyCommand

from harvester.reparse import ReparseSpider
from harvester.commands.options import no_arguments
from harvester.sites import sites

COUNTS = ("changed", "unchanged", "failed", "skipped_removed", "no_body", "no_parser", "charset_unknown")


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = True

    def syntax(self) -> str:
        return "[--site SITE]"

    def short_desc(self) -> str:
        return "Rebuild every stored record from its stored body with the current parser (no network)"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--site", metavar="SITE", default=None,
                            help="only the records of this site (a site of the registry: "
                                 f"{', '.join(sites(getattr(self, 'settings', None)))})")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        no_arguments(args)
        process = self.crawler_process
        assert process is not None
        crawler = process.create_crawler(ReparseSpider)
        process.crawl(crawler, site=opts.site)
        process.start()
        stats = crawler.stats.get_stats() if crawler.stats is not None else {}
        counts = {k: stats.get(f"reparse/{k}", 0) for k in COUNTS}
        skipped = ", ".join(f"{counts[k]} {k.replace('_', ' ')}" for k in COUNTS[3:] if counts[k])
        print(f"reparse: {stats.get('reparse/pages', 0)} pages: {counts['changed']} changed, "
              f"{counts['unchanged']} unchanged, {counts['failed']} failed"
              + (f" (skipped: {skipped})" if skipped else ""), file=sys.stderr)
        guessed = stats.get("reparse/content_type_guessed", 0)
        if guessed:
            print(f"reparse: {guessed} pages read with a guessed Content-Type, "
                  f"{stats.get('reparse/content_type_guessed_changed', 0)} of them changed (stored before the"
                  " store kept the header: a page whose charset was only in the HTTP header may read differently;"
                  " a crawl served the same body again stores its header)", file=sys.stderr)
        finished = crawler.spider is not None and stats.get("finish_reason") == "finished"
        if counts["failed"] or not finished:
            if not finished:
                print(f"reparse: did not finish ({stats.get('finish_reason', 'did not start')})", file=sys.stderr)
            self.exitcode = 1
