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
            before_record_response=header_filter(self.filter_headers),
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
        url = strip_fragment(request.url)
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
