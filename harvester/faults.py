"""Pages that failed for a reason the crawl must report, not drop.

Scrapy drops some pages with nothing above DEBUG, or with an `IgnoreRequest`
that reads like a request dropped on purpose. These downloader middlewares
turn them into a `PageFailed` with its reason, which the spiders' errback
counts as a failed page (`harvester/failed_pages`, and
`harvester/failed_pages/<kind>`), logs, and keeps in the store as a
"download" Reject filed under the study's own URL. A failed page fails the
run (`harvester.extensions.crawl_problems`), so an incremental run keeps its
watermark.

* `BoundedDecompression` (in place of Scrapy's HttpCompressionMiddleware, at
  590): a body that inflates past `DOWNLOAD_MAXSIZE` (a decompression bomb)
  is `BodyTooLarge`. Scrapy stops inflating at the limit, so memory stays
  bounded by it.
* `DownloadSizeLimit` (at 580, under the retries so an oversized page is not
  fetched again): a download Scrapy cancelled because it was larger than
  `DOWNLOAD_MAXSIZE` (announced by Content-Length, or counted as it
  arrived) is `BodyTooLarge`.
* `OffsiteRedirects` (in place of Scrapy's downloader OffsiteMiddleware, at
  50): a redirect to a host outside the spider's `allowed_domains` is
  `OffsiteRedirect` ("redirected off the site to HOST"), logged at WARNING.
  Requests a spider itself makes to other hosts are still filtered as Scrapy
  does.

The limits are per site: each spider's `custom_settings` sets
`DOWNLOAD_MAXSIZE` and `DOWNLOAD_WARNSIZE` to fit its pages, sitemaps get
`SITEMAP_MAXSIZE` (request meta `download_maxsize`).
"""
from __future__ import annotations

import logging
from urllib.parse import urlparse

from scrapy import signals
from scrapy.downloadermiddlewares.httpcompression import HttpCompressionMiddleware
from scrapy.downloadermiddlewares.offsite import OffsiteMiddleware
from scrapy.exceptions import IgnoreRequest

logger = logging.getLogger(__name__)

#: sitemaps may be 50 MB uncompressed (sitemaps.org); a little more is allowed
SITEMAP_MAXSIZE = 64 * 1024 * 1024
SITEMAP_WARNSIZE = 50 * 1024 * 1024


class PageFailed(Exception):
    """A page that could not be fetched whole, with the reason. The errback
    counts it under `harvester/failed_pages/<kind>` and logs it at `level`."""

    kind = "failed"
    level = logging.ERROR

    def __init__(self, reason: str, url: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.url = url


class BodyTooLarge(PageFailed):
    kind = "too_large"


class OffsiteRedirect(PageFailed):
    kind = "offsite_redirect"
    level = logging.WARNING


def first_url(request) -> str:
    """The URL the spider asked for, before any redirect."""
    redirects = request.meta.get("redirect_urls") or []
    return redirects[0] if redirects else request.url


def _limit(request, spider_settings, name: str, meta_key: str) -> int:
    value = request.meta.get(meta_key)
    return int(value) if value is not None else spider_settings.getint(name)


def _size(n: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} B"


class BoundedDecompression(HttpCompressionMiddleware):
    """Scrapy's HttpCompressionMiddleware, with a body that inflates past the
    limit reported as a failed page instead of an ignored request."""

    def process_response(self, request, response, spider=None):
        try:
            return super().process_response(request, response)
        except IgnoreRequest as exc:
            limit = request.meta.get("download_maxsize", self._max_size)
            self.stats.inc_value("harvester/too_large")
            raise BodyTooLarge(
                f"body larger than the download limit when decompressed: {_size(len(response.body))} "
                f"compressed, inflating past DOWNLOAD_MAXSIZE ({_size(limit)}); not read",
                first_url(request)) from exc


class DownloadSizeLimit:
    """A download Scrapy cancelled at DOWNLOAD_MAXSIZE, as a failed page.

    Scrapy's error says why only when the Content-Length announced too much;
    for a body that grew past the limit as it arrived it is a bare
    DownloadCancelledError, so the bytes received are counted here
    (`bytes_received`) to tell that from a cancellation at shutdown."""

    def __init__(self, crawler):
        self.crawler = crawler
        self.received: dict[int, int] = {}  # id(request) -> bytes, while it downloads
        crawler.signals.connect(self.bytes_received, signal=signals.bytes_received)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def bytes_received(self, data, request, spider=None):
        self.received[id(request)] = self.received.get(id(request), 0) + len(data)

    def process_response(self, request, response, spider=None):
        self.received.pop(id(request), None)
        return response

    def process_exception(self, request, exception, spider=None):
        from scrapy.exceptions import DownloadCancelledError

        received = self.received.pop(id(request), 0)
        if not isinstance(exception, DownloadCancelledError):
            return None
        limit = _limit(request, self.crawler.settings, "DOWNLOAD_MAXSIZE", "download_maxsize")
        if "max size" in str(exception):
            how = "announced by its Content-Length"
        elif limit and received > limit:
            how = f"{received:,} bytes received"
        else:
            return None  # cancelled for another reason (shutdown): Scrapy's handling
        self.crawler.stats.inc_value("harvester/too_large")
        raise BodyTooLarge(f"body larger than DOWNLOAD_MAXSIZE ({_size(limit)}), {how}; download cancelled",
                           first_url(request))


class OffsiteRedirects(OffsiteMiddleware):
    """Scrapy's downloader OffsiteMiddleware; a redirect off the site is a
    failed page, not a silently filtered request."""

    def request_scheduled(self, request, spider=None):
        # Scrapy also filters at scheduling, where a dropped request reaches
        # no errback; a redirect is judged when it is downloaded instead.
        if request.meta.get("redirect_urls"):
            return
        super().request_scheduled(request, spider)

    def process_request(self, request, spider=None):
        try:
            return super().process_request(request)
        except IgnoreRequest:
            if not request.meta.get("redirect_urls"):
                raise  # a request the spider made itself: filtered as Scrapy does
            host = urlparse(request.url).hostname or request.url
            self.crawler.stats.inc_value("harvester/offsite_redirect")
            raise OffsiteRedirect(f"redirected off the site to {host}", first_url(request)) from None


def page_failed(spider, request, exc: PageFailed):
    """What a spider's errback does with a PageFailed: count it, log it, and
    return the Reject that keeps it in the store under the study's URL."""
    from items import Reject

    stats = spider.crawler.stats
    stats.inc_value("harvester/failed_pages")
    stats.inc_value(f"harvester/failed_pages/{exc.kind}")
    stats.inc_value(f"{spider.name}/error/{exc.kind}")
    url = study_url(spider, request)
    spider.logger.log(exc.level, "page failed %s: %s", url, exc.reason)
    return Reject(site=spider.site, url=url, stage="download", error=exc.reason)


def study_url(spider, request) -> str:
    """The URL a page's reject is filed under, as its record would be: the
    store URL the spider gave the request (CT.gov's own under `-a
    base_url=`), else the URL it asked for, not where a redirect led (a
    login page, another host)."""
    return request.meta.get("store_url") or first_url(request)


#: libxml2's nesting limit without XML_PARSE_HUGE: deeper elements are dropped
LIBXML2_MAX_DEPTH = 256


def too_deeply_nested(body: bytes) -> bool:
    """Does this HTML nest past libxml2's depth limit (so the parse saw only
    part of it)? Checked only after a parse failed: it parses again."""
    from lxml import etree

    parser = etree.HTMLParser(recover=True)
    try:
        etree.fromstring(body, parser)
    except (etree.LxmlError, ValueError):
        pass
    return any("Excessive depth" in e.message for e in parser.error_log)


def parse_error_message(response, exc: Exception, stats=None) -> str:
    """What to say about a page the parser could not read: the parser's own
    error, unless the page is nested too deeply for libxml2 to read whole,
    which no parser fix would change."""
    content_type = (response.headers.get(b"Content-Type") or b"").decode("latin-1").lower()
    if ("html" in content_type or response.body[:1] == b"<") and too_deeply_nested(response.body):
        if stats is not None:
            stats.inc_value("harvester/too_deeply_nested")
        return (f"the page is nested too deeply to parse: elements past libxml2's limit of "
                f"{LIBXML2_MAX_DEPTH} levels are not read (the parser then said: {type(exc).__name__}: {exc})")
    return f"{type(exc).__name__}: {exc}"
