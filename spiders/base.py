"""What every site spider shares, and nothing site-specific.

A site module provides a pure `parse_*(response) -> SourceRecord` function;
the spider calls it through `HarvestSpider.record_or_reject`, so that a page
that cannot be parsed becomes a counted `Reject` (kept in the store with its
error) instead of an exception that loses it.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Callable

import scrapy
from scrapy.http import Response

from items import Reject, SourceRecord

logger = logging.getLogger(__name__)


def fetched_at(response: Response) -> datetime:
    """When the page was fetched: the server's Date header (so a replayed
    cassette gives the same record every time), else now."""
    date = response.headers.get(b"Date")
    if date:
        try:
            value = parsedate_to_datetime(date.decode("latin-1"))
            return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        except (TypeError, ValueError):
            pass
    return datetime.now(timezone.utc).replace(microsecond=0)


def split_arg(value: str | None) -> list[str]:
    """`-a nct=NCT1,NCT2` → ["NCT1", "NCT2"] (commas or whitespace)."""
    if not value:
        return []
    return [v for v in value.replace(",", " ").split() if v]


class HarvestSpider(scrapy.Spider):
    #: the `site` value of the records this spider yields
    site: str = ""

    def record_or_reject(self, response: Response, parse: Callable[..., SourceRecord], *args):
        """Run a site's pure parse function; a failure becomes a Reject."""
        try:
            return parse(response, *args)
        except Exception as exc:  # a parser bug or an unexpected page must not stop the crawl
            self.crawler.stats.inc_value(f"harvester/parse_error/{self.site}")
            logger.error("cannot parse %s: %s: %s", response.url, type(exc).__name__, exc)
            return Reject(site=self.site, url=response.url, stage="parse",
                          error=f"{type(exc).__name__}: {exc}", payload=response.body)
