"""Re-parse the store: every stored page's body through the current parser.

`scrapy reparse [--site SITE]` runs `ReparseSpider` as a crawl with no
network: its `start()` reads the store (`HARVEST_DB`) page by page
(`SqlStore.iter_bodies`), rebuilds the response the page was parsed from
(its URL, its body, the Content-Type header it was served with, its fetch
time as the Date header; the response class Scrapy's downloader picks for
them) and runs the site's page object (from the site registry,
`harvester.sites`). So the page object sees what the crawl saw: the charset
the header declared (before a BOM or a <meta charset>), and whether the body
is HTML or a text rendering. What it yields goes
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
* `reparse/no_parser`: a page of a site no spider of the project parses;
* `reparse/content_type_guessed`: a page re-read with a guessed
  Content-Type, because its body was stored before the store kept the
  header (schema 5): JSON for a body that is a JSON object or array, else
  HTML with no charset declared (the page's BOM or <meta charset>, else
  detected). An HTML page served with its charset only in the HTTP header
  (`text/html; charset=windows-1252`), or a text rendering, may read
  differently from the crawl then (`reparse/content_type_guessed_changed`
  counts those of them whose record changed: a new field, or a misread);
  a crawl that is served the same body again stores its header;
* `reparse/charset_unknown`: such a page whose record changed, but whose
  bytes are not UTF-8 and declare no charset (no BOM, no <meta charset>):
  the header it was served with is the only thing that said how to read
  it, so the new record could be its text misread, and the stored record
  is kept (a warning names the page; a crawl that fetches it again stores
  its header, and the next reparse reads it).

The record keeps the stored page's URL and fetch time: re-reading a page is
not fetching it.
"""
from __future__ import annotations

import logging
from datetime import datetime
from email.utils import format_datetime
from typing import Any, Callable, Optional

import scrapy
from scrapy.http import Headers, HtmlResponse, Response, TextResponse
from scrapy.responsetypes import responsetypes
from w3lib.encoding import html_body_declared_encoding, read_bom

from harvester.store import open_store
from harvester.store_base import StoredBody
from items import RecordWithBody, Reject, SourceRecord
from pipelines.validate import json_content_hash

logger = logging.getLogger(__name__)

__all__ = ["ReparseSpider", "parsers_by_site", "stored_response"]


def stored_response(page: StoredBody) -> Response:
    """The response a stored page was parsed from, as far as the store kept it:
    with the Content-Type it was served with, of the class the downloader
    makes of it; for a body stored without one (`content_type` None), guessed
    (see the module's docstring)."""
    fetched = datetime.fromisoformat(page.fetched_at)
    headers = {"Date": format_datetime(fetched, usegmt=True) if fetched.tzinfo else page.fetched_at}
    if page.content_type is not None:
        if page.content_type:  # "": served with no Content-Type, as the crawl saw it
            headers["Content-Type"] = page.content_type
        headers = Headers(headers)
        cls = responsetypes.from_args(headers=headers, url=page.url, body=page.body)
        return cls(url=page.url, body=page.body, headers=headers)
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
        if page.content_type is None:
            stats.inc_value("reparse/content_type_guessed")
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
        if page.content_type is None and not reads_one_way(page.body):
            # The guess is the only reading there is, and the header the page
            # was served with may have named another charset: a new version
            # made from it could be the page's text misread.
            stats.inc_value("reparse/charset_unknown")
            logger.warning("%s: stored without its Content-Type, its bytes neither UTF-8 nor declaring a "
                           "charset: its stored record is kept (a crawl that fetches it again stores its header)",
                           page.url)
            return None
        stats.inc_value("reparse/changed")
        if page.content_type is None:
            stats.inc_value("reparse/content_type_guessed_changed")
        return RecordWithBody(record, page.body, page.content_type)


def reads_one_way(body: bytes) -> bool:
    """Whether a body decodes to one text whatever header it was served with:
    it starts with a BOM, declares its charset (<meta charset> ...), or is
    UTF-8 (JSON is; a body in a legacy 8-bit charset with any byte above
    0x7F almost never is)."""
    if read_bom(body)[0] or html_body_declared_encoding(body):
        return True
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
