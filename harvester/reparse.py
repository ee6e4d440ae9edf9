"""Re-parse the store: every stored page's body through the current parser.

`scrapy reparse [--site SITE]` runs `ReparseSpider` as a crawl with no
network: its `start()` reads the store (`HARVEST_DB`) page by page
(`SqlStore.iter_bodies`), rebuilds the response the page was parsed from
(its URL, its body, its fetch time as the Date header; JSON for a body that
is a JSON object, HTML otherwise) and runs the site's page object (from the
site registry, `harvester.sites`). What it yields goes
through the project's item pipelines like a crawl's items: validation (a
record that no longer validates becomes a Reject), then the store (a new
version of the page, with the history the store keeps).

Counted in the crawl stats (and the run report, `reports/reparse-latest.json`):

* `reparse/changed`: the new record differs from the stored one (its content
  hash); it is stored as the page's new version;
* `reparse/unchanged`: the same record (as stored, or as the stored record
  reads in today's contract: fields added since are empty in both); nothing
  is written, not even the last-seen time (the page was not seen again, only
  read again);
* `reparse/failed`: the parser raised, or the record does not validate; a
  Reject is stored with the body, the stored record stays as it was;
* `reparse/skipped_removed`: pages marked gone keep the record they had when
  they went (they are not current, and reconciliation leaves them out);
* `reparse/no_body`: a page stored without its body (nothing to re-read);
* `reparse/no_parser`: a page of a site no spider of the project parses.

The record keeps the stored page's URL and fetch time: re-reading a page is
not fetching it.
"""
from __future__ import annotations

import logging
from datetime import datetime
from email.utils import format_datetime
from typing import Any, Callable, Optional

import scrapy
from scrapy.http import HtmlResponse, TextResponse

from harvester.store import open_store
from harvester.store_base import StoredBody
from items import RecordWithBody, Reject, SourceRecord
from pipelines.validate import json_content_hash

logger = logging.getLogger(__name__)

__all__ = ["ReparseSpider", "parsers_by_site", "stored_response"]


def stored_response(page: StoredBody) -> TextResponse:
    """The response a stored page was parsed from, as far as the store kept it."""
    fetched = datetime.fromisoformat(page.fetched_at)
    headers = {"Date": format_datetime(fetched, usegmt=True) if fetched.tzinfo else page.fetched_at}
    if page.body.lstrip()[:1] in (b"{", b"["):
        headers["Content-Type"] = "application/json"
        return TextResponse(url=page.url, body=page.body, headers=headers, encoding="utf-8")
    return HtmlResponse(url=page.url, body=page.body, headers=headers)


def parsers_by_site(settings) -> dict[str, Callable]:
    """site -> its pure parser (response -> SourceRecord): the site's page
    object, from the site registry."""
    from harvester.sites import sites

    def parser(page_class) -> Callable:
        return lambda response: page_class.from_response(response).to_record()

    return {name: parser(entry.page) for name, entry in sites(settings).items()}


def _hash_today(page: StoredBody) -> str | None:
    """The stored record's content hash in today's shape of the record: a
    record stored before the contract grew says the same as today's parse
    when only the new fields' empty defaults differ."""
    try:
        return json_content_hash(page.record.model_dump(mode="json", by_alias=True))
    except Exception:  # a stored record today's contract refuses: it cannot be the same
        return None


class ReparseSpider(scrapy.Spider):
    name = "reparse"
    custom_settings = {
        # reads the store only; a stray request would be a bug, not a fetch
        "ROBOTSTXT_OBEY": False,
        "HARVEST_BASELINE_DIR": "",  # re-reading is not a crawl of a site: no fill-rate baseline
    }

    def __init__(self, site: Optional[str] = None, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.only_site = site or None

    async def start(self):
        stats = self.crawler.stats
        parsers = parsers_by_site(self.crawler.settings)
        if self.only_site and self.only_site not in parsers:
            raise ValueError(f"unknown site {self.only_site!r}; known: {', '.join(sorted(parsers))}")
        store = open_store(self.crawler.settings)
        try:
            for page in store.iter_bodies(self.only_site):
                item = self.reparse(page, parsers.get(page.site), stats)
                if item is not None:
                    yield item
        finally:
            store.close()

    def reparse(self, page: StoredBody, parse: Optional[Callable], stats) -> RecordWithBody | Reject | None:
        stats.inc_value("reparse/pages")
        if page.removed_at:
            stats.inc_value("reparse/skipped_removed")
            return None
        if page.body is None:
            stats.inc_value("reparse/no_body")
            return None
        if parse is None:
            stats.inc_value("reparse/no_parser")
            logger.warning("no parser for site %r: %s left as stored", page.site, page.url)
            return None
        try:
            record = parse(stored_response(page))
            if isinstance(record, RecordWithBody):
                record = record.record
            if not isinstance(record, SourceRecord):
                raise TypeError(f"the parser gave {type(record).__name__}, not a SourceRecord")
            data = record.model_dump(mode="json", by_alias=True)
            data.update(url=page.url, fetched_at=page.fetched_at, content_hash=None)
            record = SourceRecord.model_validate(data)
        except Exception as exc:  # the new parser cannot read an old page: say so, keep the record
            stats.inc_value("reparse/failed")
            stats.inc_value(f"harvester/parse_error/{page.site}")
            logger.error("cannot re-parse %s: %s: %s", page.url, type(exc).__name__, exc)
            return Reject(site=page.site, url=page.url, stage="parse",
                          error=f"reparse: {type(exc).__name__}: {exc}", payload=page.body)
        new_hash = json_content_hash(record.model_dump(mode="json", by_alias=True))
        if new_hash == page.content_hash or new_hash == _hash_today(page):
            stats.inc_value("reparse/unchanged")
            return None
        stats.inc_value("reparse/changed")
        return RecordWithBody(record, page.body)
