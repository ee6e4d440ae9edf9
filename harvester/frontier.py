"""A JOBDIR request queue that survives `kill -9`.

Scrapy's own JOBDIR queues save their state (which priorities hold requests,
how many) when the crawl closes: after SIGKILL (the OOM killer, a lost
machine, a scheduler's hard timeout) the restarted crawl does not find the
requests that were queued, while its dupefilter remembers them, so pages are
silently skipped. `FrontierQueue` replaces the disk queue (it is the
`SCHEDULER_PRIORITY_QUEUE`; Scrapy's scheduler and dupefilter stay) with one
SQLite file, `<JOBDIR>/requests.queue/frontier.sqlite3`, committed at every
step:

* a request enters as *pending*, becomes *in flight* when the engine takes
  it, and *done* only when everything that follows from it has been handled:
  its callback's items went through the pipelines and the requests it yielded
  were queued (`FrontierAck`, a spider middleware, for callbacks;
  `HarvestSpider.on_error` for errbacks; both send `request_done`, after
  `before_request_done`, on which the store pipeline writes its batch);
* a retry or a redirect of an in-flight request takes its place (same row,
  pending again); one the dupefilter drops (a redirect to a page already
  crawled) is done;
* on open, requests still *in flight* (the crawl was killed while they were
  downloading or being processed) go back to *pending* and are fetched
  again. Their items may already be in the store: the store's upsert makes
  that a no-op ("unchanged"), which is why a killed and resumed crawl ends
  with the same store as an uninterrupted one.

Without JOBDIR Scrapy uses its memory queue, untouched. Use a new JOBDIR per
crawl (for example dated): a JOBDIR whose crawl finished remembers every
request it made (Scrapy's `requests.seen`), so a second crawl with it
fetches nothing new, as with Scrapy's own queues.

Limits: not persisted (a resumed run starts them over) are spider
attributes such as page counters for `-a max_pages`, and the run's stats.
Scrapy's dupefilter appends to `requests.seen` through a buffer, so a kill
may lose its last fingerprints: those pages, if met again, are fetched
again (harmless, the store is idempotent). A kill in the microseconds
between that buffer reaching the disk and the queue's commit could leave a
fingerprint without its request; nothing here can close that window short of
replacing Scrapy's dupefilter.
"""
from __future__ import annotations

import logging
import pickle
import sqlite3
from pathlib import Path
from typing import Any, AsyncIterator, Iterable

from scrapy import Request, signals
from scrapy.pqueues import ScrapyPriorityQueue
from scrapy.utils.request import request_from_dict

logger = logging.getLogger(__name__)

#: signal sent (with `request=`) when a request and all that follows from it is handled
request_done = object()
#: signal sent (with `request=`) just before `request_done`: whoever holds
#: writes back (the store pipeline's batch) writes them now
before_request_done = object()

#: request meta key: the row of the request in the frontier
FRONTIER_ID = "harvester_frontier_id"

PENDING, IN_FLIGHT, DONE = 0, 1, 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    priority INTEGER NOT NULL,
    state    INTEGER NOT NULL,
    data     BLOB
);
CREATE INDEX IF NOT EXISTS requests_next ON requests (state, priority DESC, id);
"""


def send_request_done(crawler, request: Request) -> None:
    """Tell the frontier (if any) that `request` is fully handled."""
    if crawler is not None and request is not None and FRONTIER_ID in request.meta:
        crawler.signals.send_catch_log(signal=before_request_done, request=request)
        crawler.signals.send_catch_log(signal=request_done, request=request)


class FrontierQueue:
    """The scheduler's disk queue (SCHEDULER_PRIORITY_QUEUE): see the module
    docstring. For the memory queue (no JOBDIR, or a request that cannot be
    serialized) it is Scrapy's ScrapyPriorityQueue."""

    @classmethod
    def from_crawler(cls, crawler, downstream_queue_cls, key: str, startprios: Iterable = (), *,
                     start_queue_cls=None):
        if not key:  # the memory queue
            return ScrapyPriorityQueue.from_crawler(crawler, downstream_queue_cls, key, startprios,
                                                    start_queue_cls=start_queue_cls)
        return cls(crawler, Path(key))

    def __init__(self, crawler, directory: Path):
        self.crawler = crawler
        self.stats = crawler.stats
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "frontier.sqlite3"
        self.db = sqlite3.connect(str(self.path), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        # A killed process loses nothing committed (the WAL is in the OS's
        # hands); only a power cut could lose the last transactions.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        back = self.db.execute("UPDATE requests SET state=? WHERE state=?", (PENDING, IN_FLIGHT)).rowcount
        pending, done = self._count(PENDING), self._count(DONE)
        if pending or done:
            logger.info("JOBDIR queue %s: %d requests pending (%d of them were in flight when the crawl "
                        "stopped and are fetched again), %d done", self.path, pending, back, done)
            self.stats.set_value("frontier/resumed_in_flight", back)
            self.stats.set_value("frontier/resumed_pending", pending)
        crawler.signals.connect(self._done, signal=request_done)
        crawler.signals.connect(self._dropped, signal=signals.request_dropped)

    # -- the queue interface ---------------------------------------------------------------
    def push(self, request: Request) -> None:
        try:
            data = pickle.dumps(request.to_dict(spider=self.crawler.spider), protocol=4)
        except (TypeError, AttributeError, pickle.PicklingError) as exc:
            raise ValueError(f"cannot serialize {request}: {exc}") from exc
        row = request.meta.get(FRONTIER_ID)
        updated = 0
        if row is not None:
            # a retry or a redirect of a request in flight takes its place
            updated = self.db.execute(
                "UPDATE requests SET priority=?, state=?, data=? WHERE id=? AND state=?",
                (request.priority, PENDING, data, row, IN_FLIGHT)).rowcount
        if not updated:
            self.db.execute("INSERT INTO requests (priority, state, data) VALUES (?,?,?)",
                            (request.priority, PENDING, data))

    def pop(self) -> Request | None:
        found = self.db.execute(
            "SELECT id, data FROM requests WHERE state=? ORDER BY priority DESC, id LIMIT 1", (PENDING,)
        ).fetchone()
        if found is None:
            return None
        row, data = found
        self.db.execute("UPDATE requests SET state=? WHERE id=?", (IN_FLIGHT, row))
        request = request_from_dict(pickle.loads(data), spider=self.crawler.spider)
        request.meta[FRONTIER_ID] = row
        return request

    def peek(self) -> Request | None:
        found = self.db.execute(
            "SELECT data FROM requests WHERE state=? ORDER BY priority DESC, id LIMIT 1", (PENDING,)
        ).fetchone()
        return request_from_dict(pickle.loads(found[0]), spider=self.crawler.spider) if found else None

    def close(self) -> list[int]:
        left = self._count(PENDING) + self._count(IN_FLIGHT)
        if left:
            logger.info("%d requests left in %s; run again with the same JOBDIR to resume", left, self.path)
        self.db.close()
        return []  # Scrapy's active.json: nothing to say, the state is in the database

    def __len__(self) -> int:
        return self._count(PENDING)

    # -- internals ------------------------------------------------------------------------
    def _done(self, request: Request) -> None:
        row = request.meta.get(FRONTIER_ID)
        if row is not None:
            self.db.execute("UPDATE requests SET state=?, data=NULL WHERE id=? AND state=?",
                            (DONE, row, IN_FLIGHT))

    def _dropped(self, request: Request, spider=None) -> None:
        self._done(request)  # the dupefilter dropped a redirect or retry of a request in flight

    def _count(self, state: int) -> int:
        return self.db.execute("SELECT COUNT(*) FROM requests WHERE state=?", (state,)).fetchone()[0]


class FrontierAck:
    """Spider middleware: a request is done once its callback's output has
    been consumed (its requests queued) and every item it yielded has been
    through the pipelines (`item_scraped`, `item_dropped` or `item_error`).
    Scrapy hands a callback's items to the pipelines through a queue, so the
    output can be consumed while items still wait in it: counting them keeps
    a kill at that moment from losing them."""

    def __init__(self, crawler):
        self.crawler = crawler
        #: id(request) -> [request, items not yet through the pipelines, output consumed]
        self.open: dict[int, list] = {}
        for signal in (signals.item_scraped, signals.item_dropped, signals.item_error):
            crawler.signals.connect(self._item_done, signal=signal)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def _start(self, response) -> list | None:
        request = getattr(response, "request", None)
        if request is None or FRONTIER_ID not in request.meta:
            return None  # not from the JOBDIR queue: nothing to acknowledge
        state = self.open[id(request)] = [request, 0, False]
        return state

    def _count(self, state: list | None, output) -> None:
        if state is not None and output is not None and not isinstance(output, Request):
            state[1] += 1

    def _finish(self, state: list | None) -> None:
        if state is None:
            return
        state[2] = True
        if state[1] <= 0:
            self._done(state)

    def _done(self, state: list) -> None:
        self.open.pop(id(state[0]), None)
        send_request_done(self.crawler, state[0])

    def _item_done(self, response=None, **kwargs) -> None:
        request = getattr(response, "request", None)
        state = self.open.get(id(request)) if request is not None else None
        if state is None or state[0] is not request:
            return
        state[1] -= 1
        if state[2] and state[1] <= 0:
            self._done(state)

    def process_spider_output(self, response, result: Iterable[Any]):
        state = self._start(response)
        try:
            for output in result:
                self._count(state, output)
                yield output
        finally:
            self._finish(state)

    async def process_spider_output_async(self, response, result: AsyncIterator[Any]):
        state = self._start(response)
        try:
            async for output in result:
                self._count(state, output)
                yield output
        finally:
            self._finish(state)
