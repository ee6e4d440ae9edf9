"""Storage: upsert validated records, keep rejects, mark gone pages removed
(`items.Gone`, from a 404/410: never a delete). A version the store's
integrity gate holds back is counted (`harvester/quarantined`) and listed
(`harvester/quarantined_pages`: site, url, reason) for the run report. Built from settings
(`HARVEST_DB`: SQLite path or postgresql:// URL, see `harvester.store.open_store`);
counts every outcome in the crawl stats.

Records are written in batches, one transaction each (`SqlStore.upsert_many`),
of at most `HARVEST_STORE_BATCH_SIZE` records (500; 1 writes each record at
once). A batch is written when it is full, before a request counts as done
in a JOBDIR queue (`harvester.frontier.before_request_done`: what a page
yielded is in the store before the page is marked done, so `kill -9` loses
nothing a resumed crawl would not fetch again), before a gone page is
marked, when the crawl is idle or asks for it (`flush_store`), and at the
end. A batch the store refuses is written again record by record, so one
bad record costs only itself (counted `store/errors`, logged).
"""
from __future__ import annotations

import logging

import orjson
from scrapy import signals
from scrapy.exceptions import DropItem

from harvester.frontier import before_request_done
from harvester.store import open_store
from items import Gone, RecordWithBody, Reject, SourceRecord

logger = logging.getLogger(__name__)

#: signal: write the records still waiting in the batch now (sent by a
#: spider before it reads the store, for example to compare it with a listing)
flush_store = object()


class StorePipeline:
    def __init__(self, settings, stats):
        self.settings = settings
        self.stats = stats
        self.store = None  # Store (SQLite) or PgStore
        self.batch_size = max(1, settings.getint("HARVEST_STORE_BATCH_SIZE", 500))
        # record, body, its JSON, the body's Content-Type
        self.pending: list[tuple[SourceRecord, bytes | None, bytes | None, str | None]] = []

    @classmethod
    def from_crawler(cls, crawler):
        pipeline = cls(crawler.settings, crawler.stats)
        for signal in (before_request_done, flush_store, signals.spider_idle):
            crawler.signals.connect(pipeline.flush, signal=signal)
        return pipeline

    def open_spider(self, spider=None):
        self.store = open_store(self.settings)

    def close_spider(self, spider=None):
        if self.store is not None:
            try:
                self.flush()
            finally:
                self.store.close()
                self.store = None

    def process_item(self, item, spider=None):
        if isinstance(item, Gone):
            self.flush()  # in the order the crawl saw them
            # never a delete: the record stays, marked removed (cleared if the page comes back)
            known = self.store.mark_removed(item.site, item.url)
            self.stats.inc_value("store/marked_removed" if known else "store/gone_not_stored")
            raise DropItem(f"gone (HTTP {item.status}): {item.url}", log_level="DEBUG")
        if isinstance(item, Reject):
            self.store.reject(item.site, item.url, item.stage, item.error, item.payload)
            self.stats.inc_value("harvester/rejects")
            self.stats.inc_value(f"harvester/rejects/{item.stage}")
            raise DropItem(f"rejected {item.url} at {item.stage}: {item.error[:300]}")
        body = data = content_type = None
        if isinstance(item, RecordWithBody):
            item, body, data, content_type = item.record, item.body, item.record_json, item.content_type
        if not isinstance(item, SourceRecord):
            raise TypeError(f"StorePipeline expects RecordWithBody, SourceRecord, Reject or Gone, "
                            f"got {type(item).__name__}")
        self.pending.append((item, body, data, content_type))
        if len(self.pending) >= self.batch_size:
            self.flush()
        # Feed exports (-O) receive the record as its JSON form, as stored.
        return orjson.loads(data) if data is not None else item.model_dump(mode="json", by_alias=True)

    def flush(self, *args, **kwargs) -> None:
        """Write the records waiting in the batch (a signal handler too)."""
        if not self.pending or self.store is None:
            return
        batch, self.pending = self.pending, []
        try:
            outcomes = self.store.upsert_many(batch)
        except Exception as exc:  # one bad record must not cost the batch
            logger.warning("a batch of %d records failed (%s: %s): writing them one by one",
                           len(batch), type(exc).__name__, exc)
            outcomes = []
            for record, body, _, content_type in batch:
                try:
                    outcomes.append(self.store.upsert(record, body, content_type))
                except Exception as one:
                    logger.error("cannot store %s: %s: %s", record.url, type(one).__name__, one)
                    self.stats.inc_value("store/errors")
                    outcomes.append(None)
        for (record, *_), outcome in zip(batch, outcomes):
            if outcome is not None:
                self.count(record, outcome)

    def count(self, item: SourceRecord, outcome: str) -> None:
        self.stats.inc_value(f"store/{outcome}")
        if outcome == "quarantined":
            # kept, but not current: the run report lists it and the run fails
            reason = self.store.quarantine_reason(item.site, item.url) or "held back"
            logger.error("quarantined %s: %s (the current version stays; `scrapy accept` after checking)",
                         item.url, reason)
            self.stats.inc_value("harvester/quarantined")
            pages = list(self.stats.get_value("harvester/quarantined_pages") or [])
            pages.append({"site": item.site, "url": item.url, "reason": reason})
            self.stats.set_value("harvester/quarantined_pages", pages)
