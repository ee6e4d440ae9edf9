"""Downloader middleware that records and replays HTTP traffic with vcrpy cassettes.

Register it above every built-in downloader middleware, at **950**::

    DOWNLOADER_MIDDLEWARES = {"harvester.middlewares.VcrCassetteMiddleware": 950}

At 950 its ``process_response`` is the first to see a downloaded response, so
it records what the server sent: a redirect as its own 30x interaction, a
gzip/br body still compressed. A replayed response is returned from
``process_request`` and still passes through every other middleware's
``process_response``, so it is decompressed, redirected and retried exactly like
a live one (a recorded 503-then-200 replays as a retry). At a lower priority
redirects are not recorded and bodies are stored decompressed. Keep
HttpCacheMiddleware (900) disabled while replaying: it would answer first.

Settings
--------
``VCR_CASSETTE``
    Path of a cassette file, or of a directory (an existing one, or a path
    ending in a separator): the cassette is then ``<dir>/<spider.name>.yaml``.
    Empty or unset: the middleware is disabled.
``VCR_RECORD_MODE`` (``"none"``)
    vcrpy's modes. ``none``: replay only; a request with no recording raises
    :class:`CassetteMiss`, never reaching the network. ``once``: record into a
    cassette that does not exist yet, else behave as ``none``. ``new_episodes``:
    replay what is recorded, download and record the rest. ``all``: download
    and record everything (re-recorded interactions replace the stored ones).
``VCR_MATCH_ON`` (``["method", "uri"]``)
    vcrpy matcher names. ``method``, ``uri``, ``scheme``, ``host``, ``port``,
    ``path`` and ``query`` form a hash key (O(1) lookup); ``body``,
    ``raw_body`` and ``headers`` are checked with vcrpy's matchers among the
    interactions sharing that key. List ``body`` for POST APIs. ``uri`` ignores
    the fragment and the case of scheme and host.
``VCR_FILTER_HEADERS`` (cookie, set-cookie, authorization, proxy-authorization, x-api-key)
    Header names (any case) dropped from recorded requests and responses.
    Beyond these, a recording keeps only what replay needs, by rule
    (:mod:`harvester.cassette_filter`): status, body, the headers the spiders
    and middlewares read, and URLs with credential-like query values redacted.
``VCR_ALLOW_REPEATS`` (``False``)
    Each recorded interaction plays once, in recorded order. When all the
    interactions recorded for a request have been played, the request misses,
    unless this is true: then the last of them is played again.

Stats: ``vcr/played``, ``vcr/recorded``, ``vcr/miss``, ``vcr/save_error``
(plus ``vcr/repeated`` when repeats are allowed). The cassette is saved on
``spider_closed`` (record modes only, and only if something was recorded); a
failed save is logged at ERROR and counted.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import vcr
import vcr.patch
from scrapy import signals
from scrapy.exceptions import IgnoreRequest, NotConfigured
from vcr.cassette import Cassette
from vcr.record_mode import RecordMode

from harvester.cassette import (
    KEY_FUNCTIONS,
    AtomicFilesystemPersister,
    CassetteIndex,
    header_filter,
    response_headers,
    strip_fragment,
    to_scrapy_response,
    to_vcr_request,
    to_vcr_response,
)
from harvester.cassette_filter import scrub_request, scrub_response, scrub_url

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

DEFAULT_FILTER_HEADERS = ("cookie", "set-cookie", "authorization", "proxy-authorization", "x-api-key")
DEFAULT_MATCH_ON = ("method", "uri")
REPLAY_FLAG = "cassette"
#: Priority this middleware must have in DOWNLOADER_MIDDLEWARES.
PRIORITY = 950


class CassetteMiss(IgnoreRequest):
    """A request that the cassette cannot answer while recording is off."""


class VcrCassetteMiddleware:
    def __init__(
        self,
        crawler: Crawler,
        cassette: str,
        record_mode: str = "none",
        match_on: tuple[str, ...] = DEFAULT_MATCH_ON,
        filter_headers: tuple[str, ...] = DEFAULT_FILTER_HEADERS,
        allow_repeats: bool = False,
    ):
        self.crawler = crawler
        self.stats = crawler.stats
        self.cassette_setting = cassette
        self.record_mode = RecordMode(record_mode)
        unknown = [m for m in match_on if m not in vcr.VCR().matchers]
        if unknown:
            raise ValueError(f"VCR_MATCH_ON: unknown vcrpy matcher(s) {unknown}")
        self.match_on = tuple(match_on)
        self.filter_headers = tuple(filter_headers)
        self.allow_repeats = allow_repeats
        self.path: Path | None = None
        self.cassette: Cassette | None = None
        self.index: CassetteIndex | None = None
        self.recording = False
        self.replaying = False
        self.load_seconds = 0.0
        self._context = None
        self._headers: dict[int, dict[bytes, list[bytes]]] = {}  # converted once per interaction
        # vcrpy logs every appended interaction, body included, at INFO.
        vcr_logger = logging.getLogger("vcr")
        if vcr_logger.getEffectiveLevel() < logging.WARNING:
            vcr_logger.setLevel(logging.WARNING)
        # Bound methods: Scrapy holds signal receivers weakly.
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> VcrCassetteMiddleware:
        settings = crawler.settings
        cassette = settings.get("VCR_CASSETTE") or ""
        if not str(cassette).strip():
            raise NotConfigured("VCR_CASSETTE is not set")
        filter_headers = settings.getlist("VCR_FILTER_HEADERS", list(DEFAULT_FILTER_HEADERS))
        mode = settings.get("VCR_RECORD_MODE")  # a name, or a vcr.record_mode.RecordMode
        middleware = cls(
            crawler,
            cassette=str(cassette),
            record_mode=str(getattr(mode, "value", mode) or "none").lower(),
            match_on=tuple(settings.getlist("VCR_MATCH_ON", list(DEFAULT_MATCH_ON))),
            filter_headers=tuple(filter_headers),
            allow_repeats=settings.getbool("VCR_ALLOW_REPEATS", False),
        )
        middleware._check_priority(settings)
        return middleware

    def _check_priority(self, settings) -> None:
        mws = settings.getwithbase("DOWNLOADER_MIDDLEWARES")
        own = None
        others = []
        for name, priority in mws.items():
            if priority is None:
                continue
            name = name if isinstance(name, str) else f"{name.__module__}.{name.__qualname__}"
            if name.endswith(type(self).__name__):
                own = priority
            else:
                others.append(priority)
        if own is not None and others and own <= max(others):
            logger.warning(
                "VcrCassetteMiddleware has priority %s, not above every other downloader "
                "middleware (highest: %s): recordings will miss redirects and hold "
                "decompressed bodies. Register it at %s.",
                own,
                max(others),
                PRIORITY,
            )

    # ------------------------------------------------------------------
    # Cassette life cycle

    def cassette_path(self, spider_name: str) -> Path:
        setting = self.cassette_setting
        path = Path(setting)
        if path.is_dir() or setting.endswith(("/", os.sep)):
            return path / f"{spider_name}.yaml"
        return path

    def open(self, spider_name: str) -> None:
        if self.cassette is not None:
            return
        self.path = self.cassette_path(spider_name)
        config = vcr.VCR(
            serializer="yaml",
            record_mode=self.record_mode,
            match_on=self.match_on,
            filter_headers=self.filter_headers,
            # keep only what replay needs (harvester/cassette_filter.py)
            before_record_request=scrub_request,
            before_record_response=lambda r: scrub_response(header_filter(self.filter_headers)(r)),
        ).get_merged_config(
            path=str(self.path),
            skip_patchers=vcr.patch.PATCHER_NAMES,
            persister=AtomicFilesystemPersister,
        )
        started = time.perf_counter()
        self._context = Cassette.use(**config)
        self.cassette = self._context.__enter__()
        self.load_seconds = time.perf_counter() - started

        loaded = len(self.cassette.data)
        self.replaying = self.record_mode != RecordMode.ALL
        self.recording = self.record_mode != RecordMode.NONE and not self.cassette.write_protected
        key_names = [m for m in self.match_on if m in KEY_FUNCTIONS]
        functions = dict(zip(self.match_on, config["match_on"], strict=True))
        other = [functions[m] for m in self.match_on if m not in KEY_FUNCTIONS]
        self.index = CassetteIndex(
            [request for request, _ in self.cassette.data],
            key_names,
            other,
            allow_repeats=self.allow_repeats,
        )
        if not loaded and not self.recording:
            logger.warning("Cassette %s holds no interactions: every request will miss", self.path)
        logger.info(
            "Cassette %s: %d interactions loaded in %.2fs, record mode %s",
            self.path,
            loaded,
            self.load_seconds,
            self.record_mode.value,
        )

    def spider_opened(self, spider: Spider) -> None:
        self.open(spider.name)

    def spider_closed(self, spider: Spider, reason: str = "") -> None:
        self.close()

    def close(self) -> None:
        if self._context is None:
            return
        context, self._context = self._context, None
        new = self.stats.get_value("vcr/recorded", 0)
        try:
            context.__exit__(None, None, None)  # vcrpy saves on exit, if anything was recorded
        except Exception:
            self.stats.inc_value("vcr/save_error")
            logger.exception("Cassette %s could not be saved (%d new interactions lost)", self.path, new)
            return
        if new:
            logger.info("Cassette %s saved with %d new interactions", self.path, new)

    # ------------------------------------------------------------------
    # Downloader middleware

    def process_request(self, request: Request) -> Response | None:
        if self.cassette is None:
            self.open(self.crawler.spider.name)
        if not self.replaying:
            return None
        found = self.index.take(to_vcr_request(request, full=self.index.needs_full_request))
        if found.index is not None:
            self.stats.inc_value("vcr/played")
            if found.repeated:
                self.stats.inc_value("vcr/repeated")
            recorded = self.cassette.data[found.index][1]
            headers = self._headers.get(found.index)
            if headers is None:
                headers = self._headers[found.index] = response_headers(recorded)
            return to_scrapy_response(recorded, request, [REPLAY_FLAG], headers)
        if self.recording:
            return None  # goes to the network; recorded in process_response
        self.stats.inc_value("vcr/miss")
        message = self._miss_message(request, found.recorded)
        logger.error(message)
        raise CassetteMiss(message)

    def process_response(self, request: Request, response: Response) -> Response:
        if not self.recording or REPLAY_FLAG in response.flags:
            return response
        self.cassette.append(to_vcr_request(request), to_vcr_response(response))
        self.stats.inc_value("vcr/recorded")
        return response

    def _miss_message(self, request: Request, recorded: int) -> str:
        url = scrub_url(strip_fragment(request.url))
        if recorded:
            why = (
                f"all {recorded} recorded interaction(s) for it were already played "
                "(set VCR_ALLOW_REPEATS=True to replay the last one again)"
            )
        else:
            why = "it is not recorded"
            closest = self.index.closest_uris(url)
            if closest:
                why += "; closest recorded: " + ", ".join(closest)
        return (
            f"Cassette miss: {request.method} {url} cannot be replayed from cassette "
            f"{self.path} (record mode {self.record_mode.value}, matching on "
            f"{', '.join(self.match_on)}): {why}"
        )


# ======================================================================
# Production crawling (issue 7): retries with backoff and Retry-After, and
# conditional requests for incremental runs.


def parse_retry_after(value: bytes | str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP
    date (RFC 9110 10.2.3); None when absent or unreadable; never negative."""
    from email.utils import parsedate_to_datetime

    if value is None:
        return None
    text = (value.decode("latin-1") if isinstance(value, bytes) else str(value)).strip()
    if not text:
        return None
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        from datetime import timezone

        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


async def _sleep(seconds: float) -> None:
    """Wait without blocking the reactor (the other downloads go on)."""
    from scrapy.utils.defer import maybe_deferred_to_future
    from twisted.internet import reactor, task

    if seconds > 0:
        await maybe_deferred_to_future(task.deferLater(reactor, seconds, lambda: None))


from scrapy.downloadermiddlewares.retry import RetryMiddleware  # noqa: E402
from scrapy.utils.response import response_status_message  # noqa: E402


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's RetryMiddleware (same settings: RETRY_TIMES, RETRY_HTTP_CODES,
    RETRY_EXCEPTIONS, `dont_retry`), registered in its place (550), plus:

    * **Retry-After** on a 429 or 503: the retry waits the time the server
      asked for (seconds or an HTTP date), at most `HARVEST_RETRY_AFTER_MAX`
      seconds (default 120), and the site's download slot waits as long, so
      the other requests to that site pause too. Counted
      `harvester/retry_after`, logged.
    * **backoff** for every other retry (5xx, timeouts, refused or dropped
      connections): `HARVEST_RETRY_BACKOFF_BASE` × 2^(attempt−1) seconds
      (default 2, 4, 8 ...), at most `HARVEST_RETRY_BACKOFF_MAX` (default 60),
      ±25% jitter. Counted `harvester/retry_backoff`.
    * a body the server cut short (Scrapy's `dataloss` flag, with
      DOWNLOAD_FAIL_ON_DATALOSS off) is retried like a 5xx; once the retries
      are spent it goes to the spider, which keeps it as a Reject.

    The waits are asynchronous: the reactor and the other downloads go on
    (the waiting request keeps its place among CONCURRENT_REQUESTS). Replayed
    cassette responses are retried without waiting.
    """

    def __init__(self, settings):
        super().__init__(settings)
        self.retry_after_max = settings.getfloat("HARVEST_RETRY_AFTER_MAX", 120.0)
        self.backoff_base = settings.getfloat("HARVEST_RETRY_BACKOFF_BASE", 2.0)
        self.backoff_max = settings.getfloat("HARVEST_RETRY_BACKOFF_MAX", 60.0)

    def backoff(self, attempt: int) -> float:
        import random

        delay = min(self.backoff_max, self.backoff_base * (2 ** max(0, attempt - 1)))
        return max(0.0, delay * random.uniform(0.75, 1.25))  # noqa: S311 - jitter, not crypto

    async def process_response(self, request, response):
        if request.meta.get("dont_retry", False):
            return response
        dataloss = "dataloss" in (response.flags or [])
        if response.status not in self.retry_http_codes and not dataloss:
            return response
        reason = "dataloss" if dataloss and response.status < 300 else response_status_message(response.status)
        retry = self._retry(request, reason)
        if retry is None:
            return response
        replayed = REPLAY_FLAG in (response.flags or [])
        stats = self.crawler.stats
        asked = parse_retry_after(response.headers.get(b"Retry-After")) \
            if response.status in (429, 503) else None
        if asked is not None:
            wait = min(asked, self.retry_after_max)
            stats.inc_value("harvester/retry_after")
            stats.max_value("harvester/retry_after_max_wait", round(wait, 3))
            logger.warning("HTTP %d with Retry-After %s from %s: retrying in %.1fs%s",
                           response.status, response.headers.get(b"Retry-After").decode("latin-1"),
                           request.url, wait, " (capped by HARVEST_RETRY_AFTER_MAX)" if asked > wait else "")
            if not replayed:
                self._pause_slot(request, wait)
        else:
            wait = self.backoff(retry.meta.get("retry_times", 1))
            stats.inc_value("harvester/retry_backoff")
            logger.info("retrying %s (%s) in %.1fs", request.url, reason, wait)
        if not replayed:
            await _sleep(wait)
        return retry

    async def process_exception(self, request, exception):
        if not isinstance(exception, self.exceptions_to_retry) or request.meta.get("dont_retry", False):
            return None
        retry = self._retry(request, exception)
        if retry is None:
            return None
        wait = self.backoff(retry.meta.get("retry_times", 1))
        self.crawler.stats.inc_value("harvester/retry_backoff")
        logger.info("retrying %s (%s) in %.1fs", request.url, type(exception).__name__, wait)
        await _sleep(wait)
        return retry

    def _pause_slot(self, request, wait: float) -> None:
        """Hold the other requests to the same site for `wait` seconds: raise
        the download slot's delay, and put it back afterwards (unless
        AutoThrottle moved it meanwhile)."""
        engine = getattr(self.crawler, "engine", None)
        key = request.meta.get("download_slot")
        slot = engine.downloader.slots.get(key) if engine is not None and key is not None else None
        if slot is None or wait <= slot.delay:
            return
        before, slot.delay = slot.delay, wait
        from twisted.internet import reactor

        def restore():
            if slot.delay == wait:
                slot.delay = before

        reactor.callLater(wait, restore)


class NotModified(IgnoreRequest):
    """HTTP 304 to a conditional request: the stored record is current."""


class ConditionalRequestMiddleware:
    """Conditional requests for incremental runs (`-a incremental=1`).

    * Every 200 response with an ETag or a Last-Modified header: once its
      record is stored (the `item_scraped` signal for that URL; the store
      pipeline's batch is written first), the validators are kept in the
      store (`Store.set_validators`), in every run.
    * In an incremental run, a GET for a page with stored validators carries
      If-None-Match / If-Modified-Since. A 304 answer moves the stored
      record's `last_seen_at` (`Store.touch`) and nothing else, is counted
      `harvester/not_modified` and ends the request (`NotModified`, which the
      spiders' errback ignores).

    The store URL of a request is `meta["store_url"]` when the spider sets it
    (a CT.gov study fetched from elsewhere), else its URL. Register it between
    the retry (550) and the cassette (950) middlewares; it does nothing for
    spiders without a `site`.
    """

    def __init__(self, crawler):
        self.crawler = crawler
        self.stats = crawler.stats
        self.store = None
        self.pending: dict[str, tuple[str | None, str | None]] = {}
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(self.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(self.item_dropped, signal=signals.item_dropped)

    @classmethod
    def from_crawler(cls, crawler):
        if not crawler.settings.get("HARVEST_DB"):
            raise NotConfigured("no HARVEST_DB")
        return cls(crawler)

    def _site(self) -> str | None:
        spider = getattr(self.crawler, "spider", None)
        return getattr(spider, "site", None) or None

    def spider_opened(self, spider) -> None:
        if not getattr(spider, "site", None):
            return
        from harvester.store import open_store

        self.store = open_store(self.crawler.settings)

    def spider_closed(self, spider, reason: str = "") -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def process_request(self, request):
        spider = self.crawler.spider
        if self.store is None or not getattr(spider, "incremental", False) or request.method != "GET":
            return None
        if b"If-None-Match" in request.headers or b"If-Modified-Since" in request.headers:
            return None
        found = self.store.get_validators(spider.site, request.meta.get("store_url", request.url))
        if not found:
            return None
        etag, last_modified = found
        if etag:
            request.headers[b"If-None-Match"] = etag
        if last_modified:
            request.headers[b"If-Modified-Since"] = last_modified
        request.meta["harvester_conditional"] = True
        self.stats.inc_value("harvester/conditional_requests")
        return None

    def process_response(self, request, response):
        if self.store is None:
            return response
        url = request.meta.get("store_url", response.url)
        if response.status == 304 and request.meta.get("harvester_conditional"):
            self.store.touch(self._site(), url)
            self.stats.inc_value("harvester/not_modified")
            logger.debug("not modified (304): %s", url)
            raise NotModified(f"not modified (HTTP 304): {url}")
        if response.status == 200:
            etag = response.headers.get(b"ETag")
            last_modified = response.headers.get(b"Last-Modified")
            if etag or last_modified:
                self.pending[url] = (etag.decode("latin-1") if etag else None,
                                     last_modified.decode("latin-1") if last_modified else None)
        return response

    def item_scraped(self, item, response=None, spider=None) -> None:
        if self.store is None or not self.pending:
            return
        url = item.get("url") if isinstance(item, dict) else getattr(item, "url", None)
        found = self.pending.pop(url, None) if url else None
        if found is not None:
            from pipelines.store import flush_store

            # the record first: validators without it would turn the next
            # incremental run's request into a 304 for a page never stored
            self.crawler.signals.send_catch_log(signal=flush_store)
            self.store.set_validators(self._site(), url, *found)

    def item_dropped(self, item, response=None, exception=None, spider=None) -> None:
        url = item.get("url") if isinstance(item, dict) else getattr(item, "url", None)
        if url:
            self.pending.pop(url, None)
