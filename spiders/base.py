"""What every site spider shares, and nothing site-specific.

A site module provides a pure `parse_*(response) -> SourceRecord` function;
the spider calls it through `HarvestSpider.record_or_reject`, so that a page
that cannot be parsed becomes a counted `Reject` (kept in the store with its
error) instead of an exception that loses it.

Also here, for every spider alike:

* **faults** (`HarvestSpider.on_error`, every request's errback): a page the
  site says is gone (404/410) becomes a `Gone` item, which the store pipeline
  turns into `removed_at` on the stored record (never a delete), counted
  `harvester/gone`; any other failure is counted `harvester/failed_pages`
  and `<spider>/http_<status>` or `<spider>/error/<exception>`, and logged.
  A body cut short by the server (fewer bytes than its Content-Length, Scrapy's
  `dataloss` flag, once the retries are spent) is a counted `Reject` at the
  "download" stage, its partial body kept: never parsed into a record that
  would overwrite a good one.
* **incremental runs** (`-a incremental=1`): the store's watermark for the
  spider (`watermark_key()`) minus `HARVEST_INCREMENTAL_OVERLAP_DAYS` becomes
  the lower bound of the run (CT.gov's `updated_since`, the sitemap `since`
  of the HTML sites); no watermark: a full crawl. A run that covered the whole
  source (`covers_whole_source()`) from no later than the stored watermark and
  finished cleanly sets the watermark to the date it started.
* **sitemap discovery** (`SitemapDiscovery`) for the HTML sites.
* `-a base_url=` points a spider at another origin (a mirror, a test server)
  instead of the site's own.
"""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterable, Iterator
from urllib.parse import urlparse

import scrapy
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.utils.gz import gunzip
from scrapy.utils.sitemap import Sitemap

from harvester.faults import (SITEMAP_MAXSIZE, SITEMAP_WARNSIZE, BodyTooLarge, page_failed,
                              parse_error_message, study_url)
from harvester.normalize.dates import normalize_date
from harvester.redact import split_credentials
from harvester.settings import user_agent
from items import Gone, RecordWithBody, Reject

if TYPE_CHECKING:
    from harvester.sites import Site

logger = logging.getLogger(__name__)

#: statuses that mean the page is gone for good: the stored record is marked removed
GONE_STATUSES = (404, 410)


def fetched_at(response: Response) -> datetime:
    """When the page was fetched: the server's Date header (so a replayed
    cassette gives the same record every time), else now."""
    date_ = response.headers.get(b"Date")
    if date_:
        try:
            value = parsedate_to_datetime(date_.decode("latin-1"))
            return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        except (TypeError, ValueError):
            pass
    return datetime.now(timezone.utc).replace(microsecond=0)


def split_arg(value: str | None) -> list[str]:
    """`-a nct=NCT1,NCT2` → ["NCT1", "NCT2"] (commas or whitespace)."""
    if not value:
        return []
    return [v for v in value.replace(",", " ").split() if v]


def nct_arg(value: str | None) -> list[str]:
    """`-a nct=nct02186860,NCT04008524` → normalized NCT IDs; a value that is
    not one is a usage error, not a silently empty crawl."""
    from harvester.normalize.ids import normalize_nct

    out: list[str] = []
    for item in split_arg(value):
        nct_id = normalize_nct(item)
        if nct_id is None:
            raise ValueError(f"-a nct: {item!r} is not an NCT ID")
        out.append(nct_id)
    return out


def url_arg(value: str | None) -> list[str]:
    """`-a urls=U1,U2` → the URLs, each checked to be http(s)."""
    urls = split_arg(value)
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"-a urls: {url!r} is not an http(s) URL")
    return urls


def truthy(value) -> bool:
    """`-a incremental=1` / true / yes / on."""
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in ("1", "true", "yes", "on", "y")


def parse_since(value: str | None, arg: str = "since") -> str | None:
    """`-a since=YYYY-MM-DD` → the date, or ValueError."""
    if not value:
        return None
    day = normalize_date(value)
    if day is None or len(day) != 10:
        raise ValueError(f"-a {arg}: {value!r} is not a date (YYYY-MM-DD)")
    return day


def request_meta(response: Response) -> dict:
    """The meta of the request behind a response; {} for a bare response (tests)."""
    request = getattr(response, "request", None)
    return request.meta if request is not None else {}


class HarvestSpider(scrapy.Spider):
    #: the site's registry entry (`harvester.sites.Site`); the spider takes its
    #: name, `site`, origin, allowed domains and politeness settings from it
    site_entry: ClassVar["Site | None"] = None
    #: the `site` value of the records this spider yields
    site: str = ""
    #: the site's own origin (scheme://host); `-a base_url=` replaces it
    default_base: str = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        entry = cls.__dict__.get("site_entry")
        if entry is not None:
            cls.name = cls.site = entry.name
            cls.default_base = entry.base
            cls.allowed_domains = list(entry.domains)
            # the site's politeness, under what the spider class itself sets
            cls.custom_settings = {**dict(entry.politeness), **(cls.__dict__.get("custom_settings") or {})}

    def __init__(self, *args, incremental=None, base_url=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.incremental = truthy(incremental)
        if base_url:
            # user:password@ becomes HTTP basic auth for that host, never part
            # of a URL that is logged or stored (harvester.redact)
            base_url, user, password = split_credentials(base_url)
            if user is not None:  # sent by harvester.redact.BaseUrlAuthMiddleware
                self.base_url_auth = (urlparse(base_url).netloc.lower(), user, password or "")
        self.base = (base_url or self.default_base).rstrip("/")
        if base_url:
            parsed = urlparse(self.base)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise ValueError(f"-a base_url: {base_url!r} is not an http(s) origin")
            domains = list(getattr(self, "allowed_domains", None) or [])
            if domains and parsed.hostname not in domains:
                self.allowed_domains = [*domains, parsed.hostname]
        #: what this run did about the watermark (for the run report)
        self.watermark_result: dict | None = None

    @classmethod
    def update_settings(cls, settings):
        super().update_settings(settings)
        contact = settings.get("HARVEST_CONTACT")
        if contact and settings.get("USER_AGENT") == user_agent():
            # `-s HARVEST_CONTACT=...` arrives after the settings module built
            # USER_AGENT; an explicit USER_AGENT is left alone
            settings.set("USER_AGENT", user_agent(contact), priority="spider")

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        settings = crawler.settings
        if not settings.get("VCR_CASSETTE") and "+" not in (settings.get("USER_AGENT") or "") \
                and not settings.get("HARVEST_CONTACT"):
            # politeness: a site operator must be able to reach whoever runs the crawler
            spider.logger.warning("live crawl with no contact in the User-Agent (%r): set HARVEST_CONTACT "
                                  "(a URL or e-mail address) or USER_AGENT", settings.get("USER_AGENT"))
        return spider

    # -- URLs ---------------------------------------------------------------------
    def canonical_url(self, url: str) -> str:
        """A URL under `-a base_url=` as it would be on the site itself."""
        if self.base != self.default_base.rstrip("/") and url.startswith(self.base + "/"):
            return self.default_base.rstrip("/") + url[len(self.base):]
        return url

    # -- parsing ------------------------------------------------------------------
    def record_or_reject(self, response: Response, page: Callable[[Response], Any] | None = None):
        """The record of a page with its body (`RecordWithBody`), read by the
        site's page object (`page`, by default the registry entry's
        `page.from_response`), or a Reject for a page that cannot be read or a
        body the server cut short."""
        if self.body_cut_short(response):
            return Reject(site=self.site, url=request_meta(response).get("store_url", response.url),
                          stage="download", error=self.cut_short_error(response), payload=response.body)
        if page is None:
            page = self.site_entry.page.from_response
        try:
            return page(response).to_item()
        except Exception as exc:  # a parser bug or an unexpected page must not stop the crawl
            self.crawler.stats.inc_value(f"harvester/parse_error/{self.site}")
            error = parse_error_message(response, exc, self.crawler.stats)
            self.logger.error("cannot parse %s: %s", response.url, error)
            # filed under the study's own URL, as its record would be
            url = study_url(self, response.request) if response.request is not None else response.url
            return Reject(site=self.site, url=url, stage="parse", error=error, payload=response.body)

    def body_cut_short(self, response: Response) -> bool:
        """True (counted `harvester/dataloss`, logged) when the connection
        closed before the body the server announced had arrived, after the
        retries (DOWNLOAD_FAIL_ON_DATALOSS is off so that the partial body
        reaches the spider and is kept as a Reject)."""
        if "dataloss" not in (response.flags or []):
            return False
        self.crawler.stats.inc_value("harvester/dataloss")
        self.crawler.stats.inc_value(f"{self.name}/dataloss")
        self.logger.error("body cut short by the server: %s (%s)", response.url, self.cut_short_error(response))
        return True

    @staticmethod
    def cut_short_error(response: Response) -> str:
        expected = response.headers.get(b"Content-Length")
        what = f"{len(response.body)} bytes received"
        if expected:
            what += f" of the {expected.decode('latin-1')} announced (Content-Length)"
        return f"body cut short by the server (dataloss): {what}"

    # -- faults -------------------------------------------------------------------
    def on_error(self, failure) -> Iterator[Gone]:
        """The errback of every request. Gone pages (404/410) become `Gone`
        items; everything else is counted and logged; the crawl goes on."""
        try:
            yield from self.failure_outcome(failure)
        finally:
            self.request_finished(failure.request)

    def request_finished(self, request) -> None:
        """Tell a crash-safe JOBDIR queue that `request` is fully handled
        (call it last, after yielding whatever follows from the request)."""
        from harvester.frontier import send_request_done

        send_request_done(self.crawler, request)

    def failure_outcome(self, failure) -> Iterator[Gone]:
        from harvester.faults import PageFailed
        from harvester.middlewares import CassetteMiss, NotModified

        request = failure.request
        exc = failure.value
        stats = self.crawler.stats
        response = getattr(exc, "response", None)
        status = getattr(response, "status", None)
        if isinstance(exc, NotModified):
            return  # HTTP 304: counted (and the store touched) by the middleware
        if status in GONE_STATUSES:
            stats.inc_value(f"{self.name}/http_{status}")
            stats.inc_value("harvester/gone")
            url = request.meta.get("store_url", request.url)
            # A page the site does not have is an answer, not a failure.
            self.logger.warning("gone (HTTP %d): %s; its stored record is marked removed", status, url)
            yield Gone(site=self.site, url=url, status=status)
            return
        if isinstance(exc, CassetteMiss):
            stats.inc_value("harvester/failed_pages")  # counted vcr/miss and logged by the middleware
            return
        if isinstance(exc, PageFailed):  # too large, redirected off the site: kept with the reason
            yield page_failed(self, request, exc)
            return
        if isinstance(exc, IgnoreRequest) and status is None:
            # dropped on purpose (robots.txt, offsite): counted where it was decided
            stats.inc_value("harvester/ignored")
            self.logger.info("request dropped %s: %s", request.url, exc)
            return
        key = f"{self.name}/http_{status}" if status else f"{self.name}/error/{type(exc).__name__}"
        stats.inc_value(key)
        stats.inc_value("harvester/failed_pages")
        self.logger.error("request failed %s: %s", request.url, exc)

    # -- incremental runs -----------------------------------------------------------
    def watermark_key(self) -> str:
        """The store watermark this spider's runs read and set."""
        return self.name

    def covers_whole_source(self) -> bool:
        """Did this run ask for everything in its scope (no `-a urls`/`nct`,
        no page limit hit)? Only such a run may move the watermark."""
        return False

    def run_since(self) -> str | None:
        """The lower bound (YYYY-MM-DD) of what this run asked for; None: everything."""
        return getattr(self, "since", None)

    def incremental_since(self) -> str | None:
        """For `-a incremental=1`: the stored watermark minus
        HARVEST_INCREMENTAL_OVERLAP_DAYS (YYYY-MM-DD); None when there is no
        watermark yet (the first run is a full crawl)."""
        from harvester.store import open_store

        key = self.watermark_key()
        with open_store(self.settings) as store:
            mark = store.get_watermark(key)
        stats = self.crawler.stats
        if not mark:
            stats.set_value("harvester/incremental/since", "full")
            self.logger.info("incremental: no watermark %r in the store yet: full crawl", key)
            return None
        overlap = self.settings.getint("HARVEST_INCREMENTAL_OVERLAP_DAYS", 2)
        since = (date.fromisoformat(mark[:10]) - timedelta(days=max(0, overlap))).isoformat()
        stats.set_value("harvester/incremental/watermark", mark)
        stats.set_value("harvester/incremental/since", since)
        self.logger.info("incremental: watermark %r is %s; asking for changes since %s (%d days of overlap)",
                         key, mark, since, overlap)
        return since

    def closed(self, reason: str) -> None:
        self.update_watermark(reason)

    def update_watermark(self, reason: str) -> None:
        """Set the watermark to the run's start date when the run may: it
        covered the whole source, from no later than the stored watermark,
        and finished cleanly (see `harvester.extensions.crawl_problems`)."""
        from harvester.extensions import crawl_problems
        from harvester.store import open_store

        crawler = getattr(self, "crawler", None)
        if crawler is None or not self.settings.get("HARVEST_DB"):
            return
        stats = crawler.stats
        key = self.watermark_key()
        result = {"key": key, "set": False}
        started = stats.get_value("start_time") or datetime.now(timezone.utc)
        value = started.astimezone(timezone.utc).date().isoformat()
        why = None
        if not self.covers_whole_source():
            why = "the run did not cover the whole source"
        elif problems := crawl_problems(stats.get_stats(), reason, self.settings):
            why = "; ".join(problems)
        try:
            with open_store(self.settings) as store:
                old = store.get_watermark(key)
                since = self.run_since()
                if why is None and since is not None and (old is None or since > old[:10]):
                    why = f"the run asked only for changes since {since}, after the watermark {old}"
                if why is None:
                    store.set_watermark(key, value)
                    result.update(set=True, value=value, previous=old)
                    stats.set_value("harvester/watermark", value)
                    self.logger.info("watermark %r set to %s", key, value)
                else:
                    result.update(value=old, why=why)
                    log = self.logger.warning if self.incremental and self.covers_whole_source() else \
                        self.logger.info
                    log("watermark %r left at %s: %s", key, old, why)
        except Exception as exc:  # the store is gone: the run report still gets written
            result.update(why=f"store error: {exc}")
            self.logger.error("cannot update the watermark %r: %s", key, exc)
        self.watermark_result = result


# --- sitemaps (the HTML spiders) ---------------------------------------------------------
def sitemap_entries(response: Response) -> tuple[str | None, list[dict]]:
    """(sitemap type, entries) of a sitemap or sitemap index response, with
    gzip handled; (None, []) when the body is not a sitemap."""
    body = response.body
    if response.url.endswith(".gz") or body[:2] == b"\x1f\x8b":
        try:
            body = gunzip(body, max_size=SITEMAP_MAXSIZE)
        except OSError:
            return None, []
        except ValueError:  # past the limit: a gzip bomb, or not a sitemap of the protocol's size
            raise BodyTooLarge(f"sitemap larger than {SITEMAP_MAXSIZE >> 20} MiB when decompressed; "
                               "not read", response.url) from None
    try:
        sitemap = Sitemap(body)
    except Exception:  # lxml refuses garbage
        return None, []
    if sitemap.type not in ("sitemapindex", "urlset"):
        return None, []
    return sitemap.type, list(sitemap)


class SitemapDiscovery:
    """The one sitemap reader: sitemap index → its shards, one after another →
    study URLs matching `study_url`, each request with the entry's `lastmod`
    in its meta. Mix into a HarvestSpider that defines `sitemap_index`,
    `study_url` (a compiled regex, matched against the URL as it is on the
    site itself) and `parse_study`.

    * Shards are read one at a time: each shard request carries the shards
      still to read (`meta["shards_after"]`), so a crawl resumed from its
      JOBDIR goes on with them, and `max_pages` stops the crawl without
      fetching shards it does not need (`<spider>/stopped_at_max_pages`).
    * `since` (`-a since=`, or from the watermark with `-a incremental=1`):
      entries whose lastmod is older are skipped, counted
      `<spider>/sitemap_not_modified`; entries without a lastmod are fetched.
    * Counted: `<spider>/sitemaps` (documents read), `/sitemap_shards`
      (shards an index lists), `/sitemap_shards_read`, `/sitemap_study_urls`,
      `/sitemap_skipped_url` (not a study page), `/sitemap_unreadable`
      (also a failed page)."""

    sitemap_index: str = ""
    study_url = None
    since: str | None = None
    #: at most this many study pages from the sitemap (None: all)
    max_pages: int | None = None
    #: the URLs / NCT IDs given on the command line (none: the sitemap is read)
    urls: list = []
    ncts: list = []

    def default_sitemap(self) -> str:
        return f"{self.base}/sitemap.xml"

    def sitemap_request(self, url: str, meta: dict | None = None) -> scrapy.Request:
        return scrapy.Request(url, callback=self.parse_sitemap, errback=self.on_shard_error,
                              meta={"download_maxsize": SITEMAP_MAXSIZE, "download_warnsize": SITEMAP_WARNSIZE,
                                    **(meta or {})})

    def begin_sitemap_crawl(self) -> None:
        """At start: with `-a incremental=1` and no `-a since`, the since of the watermark."""
        if self.incremental and self.since is None and not self.urls and not self.ncts:
            self.since = self.incremental_since()

    @property
    def pending_shards(self) -> list:
        if "_pending_shards" not in self.__dict__:
            self._pending_shards = []
        return self._pending_shards

    def parse_sitemap(self, response: Response) -> Iterator[scrapy.Request]:
        stats = self.crawler.stats
        try:
            kind, entries = sitemap_entries(response)
        except BodyTooLarge as exc:
            yield page_failed(self, response.request, exc)
            yield from self.next_shard()
            return
        after = request_meta(response).get("shards_after")
        if after is not None and not self.pending_shards:
            # a shard fetched again after a resume: the shards after it come from its request
            self.pending_shards.extend(tuple(x) for x in after)
        if kind is None:
            stats.inc_value(f"{self.name}/sitemap_unreadable")
            stats.inc_value("harvester/failed_pages")
            self.logger.error("not a sitemap: %s", response.url)
        elif kind == "sitemapindex":
            stats.inc_value(f"{self.name}/sitemaps")
            shards = [((e.get("loc") or "").strip(), e.get("lastmod")) for e in entries]
            shards = [s for s in shards if s[0]]
            self.pending_shards.extend(shards)
            stats.inc_value(f"{self.name}/sitemap_shards", len(shards))
        else:
            stats.inc_value(f"{self.name}/sitemaps")
            stats.inc_value(f"{self.name}/sitemap_shards_read")
            yield from self.study_requests_from(entries, response.url)
        yield from self.next_shard()

    def study_requests_from(self, entries: Iterable[dict], sitemap_url: str) -> Iterator[scrapy.Request]:
        stats = self.crawler.stats
        for entry in entries:
            if self.limit_reached():
                return
            loc = (entry.get("loc") or "").strip()
            if not loc:
                continue
            if not self.study_url.match(self.canonical_url(loc)):
                stats.inc_value(f"{self.name}/sitemap_skipped_url")
                continue
            lastmod = normalize_date(entry.get("lastmod")) if entry.get("lastmod") else None
            if self.since and lastmod and lastmod[:10] < self.since:
                stats.inc_value(f"{self.name}/sitemap_not_modified")
                continue
            stats.inc_value(f"{self.name}/sitemap_study_urls")
            yield scrapy.Request(loc, callback=self.parse_study, errback=self.on_error,
                                 meta={"lastmod": entry.get("lastmod"), "sitemap": sitemap_url})

    def limit_reached(self) -> bool:
        return self.max_pages is not None and \
            self.crawler.stats.get_value(f"{self.name}/sitemap_study_urls", 0) >= self.max_pages

    def next_shard(self) -> Iterator[scrapy.Request]:
        if self.pending_shards and not self.limit_reached():
            loc, lastmod = self.pending_shards.pop(0)
            meta = {"lastmod": lastmod} if lastmod else {}
            meta["shards_after"] = [list(x) for x in self.pending_shards]
            yield self.sitemap_request(loc, meta)
        elif self.pending_shards:
            self.logger.info("stopping after %d study pages (max_pages); %d sitemap shards not read",
                             self.max_pages, len(self.pending_shards))
            self.crawler.stats.set_value(f"{self.name}/stopped_at_max_pages", True)

    def on_shard_error(self, failure):
        """A sitemap that failed: counted like any page, and the next shard is read."""
        try:
            yield from self.failure_outcome(failure)
            after = failure.request.meta.get("shards_after")
            if after is not None and not self.pending_shards:
                self.pending_shards.extend(tuple(x) for x in after)
            yield from self.next_shard()
        finally:
            self.request_finished(failure.request)

    # -- incremental scope -------------------------------------------------------------
    def watermark_key(self) -> str:
        if self.sitemap_index and self.sitemap_index != self.default_sitemap():
            return f"{self.name}?sitemap={self.sitemap_index}"
        return self.name

    def covers_whole_source(self) -> bool:
        return (not self.urls and not self.ncts
                and not self.crawler.stats.get_value(f"{self.name}/stopped_at_max_pages"))


class StudyPageSpider(SitemapDiscovery, HarvestSpider):
    """A site of one HTML page per study. Its module declares the site
    (`harvester.sites.Site`: name, origin, domains, politeness, `study_url`,
    its page object and, when the site's URLs carry the NCT ID, `nct_path`,
    e.g. "/trials/{nct}") and names it as the spider's `site_entry`. Then:

    * `-a urls=U1,U2`: those pages;
    * `-a nct=NCT1,NCT2`: their pages, where `nct_path` is set (a page that
      turns out to be another trial is counted `<spider>/nct_mismatch`);
    * neither: the sitemap (`-a sitemap=URL`, `-a since=DATE`,
      `-a max_pages=N`, `-a incremental=1`).

    A site whose study URL does not follow from an NCT ID may still take
    `-a nct=` by overriding `nct_requests` (Veeva finds the URL from a
    stored title)."""

    nct_path: str = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        entry = cls.__dict__.get("site_entry")
        if entry is not None:
            cls.study_url = entry.study_url
            cls.nct_path = entry.nct_path

    def __init__(self, urls=None, nct=None, sitemap=None, since=None, max_pages=None, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if nct and not self.nct_path and type(self).nct_requests is StudyPageSpider.nct_requests:
            raise ValueError(f"-a nct: {self.name} study URLs do not carry the NCT ID; use -a urls=")
        self.ncts = nct_arg(nct)
        self.urls = [self.check_url(u) for u in url_arg(urls)]
        self.sitemap_index = sitemap or self.default_sitemap()
        self.since = parse_since(since)
        self.max_pages = int(max_pages) if max_pages else None

    def check_url(self, url: str) -> str:
        """A `-a urls=` URL the spider may fetch (a site refuses what its robots.txt forbids)."""
        return url

    def nct_requests(self, ncts: list[str]) -> Iterator[scrapy.Request]:
        """The study page requests of `-a nct=`: by `nct_path`."""
        for nct_id in ncts:
            yield scrapy.Request(self.base + self.nct_path.format(nct=nct_id), callback=self.parse_study,
                                 errback=self.on_error, meta={"nct": nct_id})

    async def start(self):
        self.begin_sitemap_crawl()
        for request in self.nct_requests(self.ncts):
            yield request
        for url in self.urls:
            yield scrapy.Request(url, callback=self.parse_study, errback=self.on_error)
        if not self.ncts and not self.urls:
            yield self.sitemap_request(self.sitemap_index)

    def parse_study(self, response: Response):
        item = self.record_or_reject(response)
        wanted = response.request.meta.get("nct") if response.request is not None else None
        if wanted and isinstance(item, RecordWithBody) and item.record.nct_id != wanted:
            self.crawler.stats.inc_value(f"{self.name}/nct_mismatch")
            self.logger.warning("%s: asked for %s, the page gives %s", response.url, wanted, item.record.nct_id)
        yield item
