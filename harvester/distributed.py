"""Distributed crawling on Redis: N worker processes, on any machines, share
one spider's request queue and dupefilter, and take work pushed to a Redis key.

Switched on by the environment (see the `distributed` block at the end of
`harvester/settings.py`): `HARVEST_BACKEND=redis` and `REDIS_URL`. Spider code
does not change; `scrapy crawl <spider>` becomes one worker:

* **scheduler and dupefilter**: scrapy-redis's, through `RedisScheduler`
  (below): the queue is `<spider>:requests` and the fingerprints
  `<spider>:dupefilter`, so a request any worker schedules (a start request,
  a next page) is fetched once, by whichever worker pops it. They persist
  when a worker stops (`SCHEDULER_PERSIST`); `scrapy enqueue --reset` clears
  them to start a new crawl.
* **start key**: `RedisFeed` (a spider middleware) reads `<spider>:start_urls`
  (scrapy-redis's convention; `REDIS_START_URLS_KEY`) while the worker runs.
  An entry is one of
    - a JSON request, as `scrapy enqueue` writes it: `{"url": ..., "callback":
      "<spider method>", "errback": ..., "cb_kwargs": {...}, "meta": {...},
      "method": ..., "headers": {...}, "body_b64": ..., "priority": ...,
      "dont_filter": ...}` (only `url` is required; scrapy-redis's own
      `{"url", "meta", "method"}` entries are a subset);
    - an NCT ID, e.g. pushed with `redis-cli rpush ctgov:start_urls NCT02513394`;
    - a URL.
  NCT IDs and URLs become requests exactly as in `scrapy enqueue` (see
  `requests_for_nct` and `requests_for_url`).
* **idle and stop**: with nothing in the start key, nothing queued and nothing
  in flight, the worker waits (polling every `HARVEST_REDIS_POLL_INTERVAL`
  seconds, default 0.5) and stops after `MAX_IDLE_TIME_BEFORE_CLOSE` seconds
  of that (scrapy-redis's setting; 0, the default, waits for ever).
* `HARVEST_REDIS_SPIDER_START` (default False): also run the spider's own
  `start()` (its `-a` arguments) before reading the key. Off by default
  because a bare `scrapy crawl ctgov` worker would otherwise seed a search of
  the whole registry; seed crawls with `scrapy enqueue` instead.
* `REDIS_START_URLS_BATCH_SIZE` (default `CONCURRENT_REQUESTS`): entries taken
  from the start key at a time, and only while the shared queue holds fewer
  than that, so the key stays the backlog every worker draws from.

Items still go through the item pipelines of each worker: with
`HARVEST_DB=postgresql://...` all workers write to one store.

scrapy-redis 0.9.1 with Scrapy 2.19
-----------------------------------
Its scheduler and dupefilter work, with these differences, which
`RedisScheduler` shims (nothing else is replaced):

* `Scheduler.enqueue_request`/`next_request` pass `spider=` to
  `StatsCollector.inc_value()`: a ScrapyDeprecationWarning on every request
  (twice), and a TypeError once Scrapy removes the argument.
* `Scheduler.open` logs "Resuming crawl" through `Spider.log()`, deprecated.
* With `SCHEDULER_PERSIST=False` (its default) the first worker to finish
  deletes the shared queue and dupefilter while the others still use them:
  requests are lost and pages fetched again. The settings block sets it True.

Its spiders (`RedisSpider`, `RedisMixin`) are not used, and would not work
as documented: they read the start key in `start_requests()`, which Scrapy
2.13+ no longer calls (the default `Spider.start()` reads only `start_urls`),
so the key is read only from `spider_idle`, at the engine's 5-second idle
heartbeat. `RedisFeed` reads it from the start of the crawl without
touching the spider class.
"""
from __future__ import annotations

import base64
import inspect
import json
import logging
import re
import time
from typing import Any, AsyncIterator, Iterable

from scrapy import Request, signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.misc import load_object

try:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from scrapy_redis import defaults as redis_defaults
    from scrapy_redis.connection import get_redis_from_settings
    from scrapy_redis.scheduler import Scheduler as _ScrapyRedisScheduler
except ImportError as exc:  # the core install has no Redis client
    raise ImportError(f"the distributed crawl needs the [redis] extra ({exc}): "
                      "pip install -c constraints.txt -e '.[redis]'") from exc

logger = logging.getLogger(__name__)

#: Spiders whose `-a nct=` builds its requests from the NCT ID alone (no store
#: lookup), used when a spider class has no `requests_for_nct` hook.
def default_nct_spiders(settings=None) -> list[str]:
    """The sites whose study URL follows from an NCT ID (their registry entry's `nct_path`)."""
    from harvester.sites import sites

    return [s.name for s in sites(settings).values() if s.nct_path]
START_KEY = redis_defaults.START_URLS_KEY  # "%(name)s:start_urls"
NCT_RE = re.compile(r"^NCT\d{8}$", re.IGNORECASE)
_REQUEST_KEYS = {"method", "headers", "meta", "cb_kwargs", "priority", "dont_filter", "flags",
                 "encoding", "cookies"}


class EntryError(ValueError):
    """An NCT ID, URL or pushed entry that a spider cannot turn into requests."""


# ----------------------------------------------------------------------- scheduler
class RedisScheduler(_ScrapyRedisScheduler):
    """scrapy-redis's scheduler without the calls Scrapy 2.19 deprecates."""

    def open(self, spider):
        # As the parent's, but without the deprecated Spider.log().
        self.spider = spider
        try:
            self.queue = load_object(self.queue_cls)(
                server=self.server, spider=spider, key=self.queue_key % {"spider": spider.name},
                serializer=self.serializer,
            )
        except TypeError as exc:
            raise ValueError(f"Failed to instantiate queue class '{self.queue_cls}': {exc}") from exc
        if not self.df:
            self.df = load_object(self.dupefilter_cls).from_spider(spider)
        if self.flush_on_start:
            self.flush()
        if len(self.queue):
            logger.info("Resuming crawl (%d requests scheduled in %s)", len(self.queue), self.queue.key)

    def enqueue_request(self, request):
        if not request.dont_filter and self.df.request_seen(request):
            self.df.log(request, self.spider)
            return False
        if self.stats:
            self.stats.inc_value("scheduler/enqueued/redis")
        self.queue.push(request)
        return True

    def next_request(self):
        request = self.queue.pop(self.idle_before_close)
        if request and self.stats:
            self.stats.inc_value("scheduler/dequeued/redis")
        return request


# ------------------------------------------------------- NCT IDs and URLs -> requests
def _drain(agen) -> list:
    """Everything a `start()` async generator yields, when it never awaits
    (spiders' start() built from their arguments do not)."""
    out = []
    while True:
        step = agen.__anext__()
        try:
            step.send(None)
        except StopIteration as done:
            out.append(done.value)
            continue
        except StopAsyncIteration:
            return out
        step.close()
        raise EntryError("the spider's start() waits on I/O; it cannot be turned into queued requests")


def _accepts(spidercls, arg: str) -> bool:
    try:
        return arg in inspect.signature(spidercls.__init__).parameters
    except (TypeError, ValueError):
        return False


def _hook(spidercls, name: str):
    """A classmethod/staticmethod hook of the spider class, else None."""
    for klass in inspect.getmro(spidercls):
        attr = klass.__dict__.get(name)
        if attr is not None:
            return getattr(spidercls, name) if isinstance(attr, (classmethod, staticmethod)) else None
    return None


def spider_start_requests(spidercls, settings=None, crawler=None, **spargs) -> list[dict]:
    """The requests `scrapy crawl <spider> -a k=v ...` would start with, as
    JSON-able dicts (see `request_to_json`)."""
    spider = spidercls(**spargs)
    if crawler is not None:
        spider.crawler = crawler
    if settings is not None or crawler is not None:
        spider.settings = crawler.settings if crawler is not None else settings
    out = []
    for obj in _drain(spider.start()):
        if not isinstance(obj, Request):
            raise EntryError(f"{spidercls.name}.start() yielded {type(obj).__name__}, not a request")
        out.append(request_to_json(obj, spidercls))
    return out


def requests_for_nct(spidercls, nct: str, settings=None, crawler=None, spargs=None) -> list[dict]:
    """What spider `spidercls` requests for one NCT ID, as JSON-able dicts.

    1. the spider class's own hook, `requests_for_nct(nct)` (a classmethod
       or staticmethod returning requests, URLs or dicts), if it has one;
    2. else, for the spiders of `HARVEST_NCT_SPIDERS` (default: the sites
       whose registry entry has an `nct_path`, whose `-a nct=` needs nothing
       but the ID): what the spider
       starts with for `-a nct=<nct>` (and `spargs`, its other arguments);
    3. else EntryError: the site's URLs do not follow from an NCT ID.
    """
    nct = nct.strip().upper()
    if not NCT_RE.match(nct):
        raise EntryError(f"{nct!r} is not an NCT ID (NCT followed by 8 digits)")
    hook = _hook(spidercls, "requests_for_nct")
    if hook is not None:
        return [_as_json(r, spidercls) for r in hook(nct)]
    nct_spiders = settings.getlist("HARVEST_NCT_SPIDERS") if settings is not None else []
    nct_spiders = nct_spiders or default_nct_spiders(settings)
    if spidercls.name in nct_spiders and _accepts(spidercls, "nct"):
        return spider_start_requests(spidercls, settings, crawler, **{**(spargs or {}), "nct": nct})
    raise EntryError(
        f"spider {spidercls.name!r} cannot build a request from an NCT ID ({nct}): its page URLs do "
        f"not follow from the ID. Push the page URLs instead, or NCT IDs to "
        f"{' or '.join(sorted(set(nct_spiders)))}."
    )


def requests_for_url(spidercls, url: str, settings=None, crawler=None, spargs=None) -> list[dict]:
    """What spider `spidercls` requests for one page URL, as JSON-able dicts.

    1. the spider class's hook `requests_for_url(url)`, if it has one;
    2. else, if the spider takes `-a urls=`: what it starts with for it
       (and `spargs`);
    3. else, if the URL holds an NCT ID and the spider's request for that ID
       is for this very URL (a CT.gov study URL): that request;
    4. else, if the spider has its own `parse`: a plain request to it;
    5. else EntryError.
    """
    url = url.strip()
    if not url.startswith(("http://", "https://")):
        raise EntryError(f"{url!r} is neither an NCT ID nor an http(s) URL")
    hook = _hook(spidercls, "requests_for_url")
    if hook is not None:
        return [_as_json(r, spidercls) for r in hook(url)]
    if _accepts(spidercls, "urls"):
        try:
            return spider_start_requests(spidercls, settings, crawler, **{**(spargs or {}), "urls": url})
        except ValueError as exc:  # the spider's own argument check
            raise EntryError(f"spider {spidercls.name!r} refuses {url!r}: {exc}") from None
    match = re.search(r"NCT\d{8}", url, re.IGNORECASE)
    if match:
        try:
            for req in requests_for_nct(spidercls, match.group(0), settings, crawler, spargs):
                if req["url"] == url:
                    return [req]
        except EntryError:
            pass
    from scrapy import Spider

    if getattr(spidercls, "parse", Spider.parse) is not Spider.parse:
        return [{"url": url}]
    raise EntryError(
        f"spider {spidercls.name!r} does not know which callback reads {url!r}: push NCT IDs, or a JSON "
        f"request naming its callback"
    )


def requests_for_entry(spidercls, entry: str, settings=None, crawler=None, spargs=None) -> list[dict]:
    """One command-line argument or start-key entry -> JSON-able request dicts."""
    entry = entry.strip()
    if entry.startswith("{"):
        try:
            data = json.loads(entry)
        except json.JSONDecodeError as exc:
            raise EntryError(f"not valid JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("url"), str):
            raise EntryError("a JSON entry must be an object with a 'url'")
        return [data]
    if NCT_RE.match(entry):
        return requests_for_nct(spidercls, entry, settings, crawler, spargs)
    return requests_for_url(spidercls, entry, settings, crawler, spargs)


# ---------------------------------------------------------- request <-> JSON entry
def _callback_name(func, spidercls) -> str | None:
    if func is None:
        return None
    if isinstance(func, str):
        return func
    name = getattr(func, "__name__", None)
    target = getattr(func, "__func__", func)
    own = getattr(spidercls, name, None) if name else None
    if own is None or getattr(own, "__func__", own) is not target:
        raise EntryError(f"callback {func!r} is not a method of {spidercls.__name__}; it cannot be queued")
    return name


def request_to_json(request: Request, spidercls) -> dict:
    """A request as the JSON object pushed to the start key: callbacks by
    method name, body in base64; only what differs from the defaults."""
    d: dict[str, Any] = {"url": request.url}
    if request.method != "GET":
        d["method"] = request.method
    for key, func in (("callback", request.callback), ("errback", request.errback)):
        name = _callback_name(func, spidercls)
        if name and not (key == "callback" and name == "parse"):
            d[key] = name
    if request.headers:
        d["headers"] = {k.decode("latin-1"): [v.decode("latin-1") for v in vs]
                        for k, vs in request.headers.items()}
    if request.body:
        d["body_b64"] = base64.b64encode(request.body).decode("ascii")
    for key, value, default in (("meta", request.meta, {}), ("cb_kwargs", request.cb_kwargs, {}),
                                ("priority", request.priority, 0), ("dont_filter", request.dont_filter, False),
                                ("flags", request.flags, [])):
        if value != default:
            d[key] = value
    try:
        json.dumps(d)
    except (TypeError, ValueError) as exc:
        raise EntryError(f"request for {request.url} cannot be queued as JSON: {exc}") from None
    return d


def _as_json(obj, spidercls) -> dict:
    if isinstance(obj, Request):
        return request_to_json(obj, spidercls)
    if isinstance(obj, str):
        return {"url": obj}
    if isinstance(obj, dict) and isinstance(obj.get("url"), str):
        return obj
    raise EntryError(f"{spidercls.__name__} hook returned {obj!r}, not a request, URL or dict")


def request_from_json(data: dict, spider) -> Request:
    """The inverse of `request_to_json`, callbacks bound to the running spider."""
    data = dict(data)
    url = data.pop("url")
    callbacks = {}
    for key in ("callback", "errback"):
        name = data.pop(key, None)
        if name is not None:
            method = getattr(spider, name, None)
            if not callable(method):
                raise EntryError(f"spider {spider.name!r} has no method {name!r} for {url}")
            callbacks[key] = method
    body = base64.b64decode(data.pop("body_b64")) if "body_b64" in data else None
    unknown = set(data) - _REQUEST_KEYS
    if unknown:
        raise EntryError(f"unknown key(s) {sorted(unknown)} in the entry for {url}")
    if "method" in data:
        data["method"] = str(data["method"]).upper()
    return Request(url, body=body, **callbacks, **data)


# ------------------------------------------------------------------------- the feed
class RedisFeed:
    """Spider middleware: a worker's requests come from the spider's Redis
    start key for as long as it runs (see the module docstring)."""

    def __init__(self, crawler):
        settings = crawler.settings
        self.crawler = crawler
        self.settings = settings
        self.key_template = settings.get("REDIS_START_URLS_KEY", START_KEY)
        self.batch = max(1, settings.getint("REDIS_START_URLS_BATCH_SIZE",
                                            settings.getint("CONCURRENT_REQUESTS", 16)))
        self.idle_timeout = settings.getfloat("MAX_IDLE_TIME_BEFORE_CLOSE", 0)
        self.poll = max(0.01, settings.getfloat("HARVEST_REDIS_POLL_INTERVAL", 0.5))
        self.spider_start = settings.getbool("HARVEST_REDIS_SPIDER_START", False)
        self.server = get_redis_from_settings(settings)
        self.key = None
        self._wake = None
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(self.scheduler_empty, signal=signals.scheduler_empty)

    @classmethod
    def from_crawler(cls, crawler):
        if not crawler.settings.get("REDIS_URL") and not crawler.settings.get("REDIS_HOST"):
            raise NotConfigured("no REDIS_URL")
        return cls(crawler)

    def spider_closed(self, spider, reason):
        self.server.close()

    def scheduler_empty(self):
        # The engine found nothing to download: refill now, not at the next poll.
        if self._wake is not None and not self._wake.called:
            self._wake.callback(None)

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        spider = self.crawler.spider
        self.key = self.key_template % {"name": spider.name}
        if self.spider_start:
            async for item_or_request in start:
                yield item_or_request
        else:
            logger.info("redis backend: %s's own start requests (its -a arguments) are not used; "
                        "it reads %r (HARVEST_REDIS_SPIDER_START=1 to use both)", spider.name, self.key)
        logger.info("reading requests from redis key %r (batch %d, idle timeout %s)", self.key, self.batch,
                    f"{self.idle_timeout:g}s" if self.idle_timeout else "none")
        stats = self.crawler.stats
        last_busy = time.monotonic()
        while self.crawler.engine.running:
            try:
                queued = len(self._scheduler())
                entries = self.server.lpop(self.key, self.batch) if queued < self.batch else None
            except (RedisConnectionError, RedisTimeoutError) as exc:
                # Redis restarting or unreachable for a moment: keep the worker, try again
                stats.inc_value("redis/connection_errors")
                logger.warning("redis unreachable (%s); retrying in %gs", exc, max(self.poll, 1.0))
                last_busy = time.monotonic()
                await self._wait(max(self.poll, 1.0))
                continue
            if entries:
                last_busy = time.monotonic()
                stats.inc_value("redis/start_entries", len(entries))
                for raw in entries:
                    for request in self._requests(spider, raw):
                        stats.inc_value("redis/start_requests")
                        yield request
                continue
            if queued or not self._locally_idle():
                last_busy = time.monotonic()
            elif self.idle_timeout and time.monotonic() - last_busy >= self.idle_timeout:
                logger.info("redis key %r drained and nothing to do for %gs: stopping", self.key,
                            self.idle_timeout)
                return
            await self._wait(self.poll)

    async def _wait(self, seconds: float) -> None:
        """Sleep `seconds`, or less if the engine runs out of requests."""
        from twisted.internet import reactor
        from twisted.internet.defer import Deferred

        self._wake = wake = Deferred()
        call = reactor.callLater(seconds, lambda: wake.called or wake.callback(None))
        try:
            await maybe_deferred_to_future(wake)
        finally:
            self._wake = None
            if call.active():
                call.cancel()

    def _requests(self, spider, raw: bytes | str) -> Iterable[Request]:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        try:
            dicts = requests_for_entry(type(spider), text, self.settings, self.crawler)
            requests = [request_from_json(d, spider) for d in dicts]
        except Exception as exc:  # one bad entry must not stop the worker reading the key
            self.crawler.stats.inc_value("redis/bad_entries")
            detail = str(exc) if isinstance(exc, EntryError) else f"{type(exc).__name__}: {exc}"
            logger.error("dropping entry %r from %r: %s", text[:300], self.key, detail)
            return []
        return requests

    def _scheduler(self):
        engine = self.crawler.engine
        return getattr(engine, "scheduler", None) or engine._slot.scheduler

    def _locally_idle(self) -> bool:
        engine = self.crawler.engine
        slot = engine.scraper.slot
        return not engine.downloader.active and (slot is None or slot.is_idle()) \
            and not self._scheduler().has_pending_requests()



# ------------------------------------------------------------- used by `scrapy enqueue`
def start_key(settings, spider_name: str) -> str:
    return settings.get("REDIS_START_URLS_KEY", START_KEY) % {"name": spider_name}


def crawl_keys(settings, spider_name: str) -> list[str]:
    """The shared queue and dupefilter keys of a spider's crawl."""
    return [settings.get("SCHEDULER_QUEUE_KEY", redis_defaults.SCHEDULER_QUEUE_KEY) % {"spider": spider_name},
            settings.get("SCHEDULER_DUPEFILTER_KEY", redis_defaults.SCHEDULER_DUPEFILTER_KEY)
            % {"spider": spider_name}]


def redis_client(settings):
    return get_redis_from_settings(settings)
