"""`scrapy crawl <spider>`: Scrapy's own command, with an exit status a
scheduler can act on.

Exit status 0 when the run can be trusted, 1 when it failed: the spider did
not start, or the run report says failed (`harvester.extensions.crawl_failures`:
it did not finish, pages failed or could not be read whole, requests failed
after their retries, cassette misses, unexpected HTTP errors, spider
exceptions, layout drift). Scrapy's `crawl` exits 0 for all of these. Usage
errors exit 2, as in Scrapy.

It overrides the built-in command through this project's COMMANDS_MODULE
only (not an entry point, which would replace `crawl` in every Scrapy project
of the environment).
"""
from __future__ import annotations

import logging
import sys

from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.exceptions import UsageError

from harvester.extensions import crawl_failures

logger = logging.getLogger(__name__)


class Command(ScrapyCrawlCommand):
    def long_desc(self) -> str:
        return (self.short_desc() + ". Exit status 1 when the spider did not start or the run failed "
                "(the run report's `failed`: failed pages, parse errors, retries exhausted, cassette "
                "misses, unexpected HTTP errors, spider exceptions, layout drift), else 0.")

    def run(self, args, opts) -> None:
        if len(args) < 1:
            raise UsageError
        if len(args) > 1:
            raise UsageError("running 'scrapy crawl' with more than one spider is not supported")
        process = self.crawler_process
        assert process is not None
        crawler = self._create_crawler(args[0])
        process.crawl(crawler, **opts.spargs)
        process.start()
        if process.bootstrap_failed or crawler.spider is None or crawler.stats is None:
            self.exitcode = 1
            return
        reasons = crawl_failures(crawler.stats.get_stats(), crawler.settings)
        if reasons:
            print(f"crawl {args[0]}: run failed: {'; '.join(reasons)}", file=sys.stderr)
            self.exitcode = 1
