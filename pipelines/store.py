"""Storage: upsert validated records, keep rejects, mark gone pages removed
(`items.Gone`, from a 404/410: never a delete). A version the store's
integrity gate holds back is counted (`harvester/quarantined`) and listed
(`harvester/quarantined_pages`: site, url, reason) for the run report. Built from settings
(`HARVEST_DB`: SQLite path or postgresql:// URL, see `harvester.store.open_store`);
counts every outcome in the crawl stats."""
from __future__ import annotations

import logging

from scrapy.exceptions import DropItem

from harvester.store import open_store
from items import Gone, RecordWithBody, Reject, SourceRecord

logger = logging.getLogger(__name__)


class StorePipeline:
    def __init__(self, settings, stats):
        self.settings = settings
        self.stats = stats
        self.store = None  # Store (SQLite) or PgStore

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler.settings, crawler.stats)

    def open_spider(self, spider=None):
        self.store = open_store(self.settings)

    def close_spider(self, spider=None):
        if self.store is not None:
            self.store.close()

    def process_item(self, item, spider=None):
        if isinstance(item, Gone):
            # never a delete: the record stays, marked removed (cleared if the page comes back)
            known = self.store.mark_removed(item.site, item.url)
            self.stats.inc_value("store/marked_removed" if known else "store/gone_not_stored")
            raise DropItem(f"gone (HTTP {item.status}): {item.url}", log_level="DEBUG")
        if isinstance(item, Reject):
            self.store.reject(item.site, item.url, item.stage, item.error, item.payload)
            self.stats.inc_value("harvester/rejects")
            self.stats.inc_value(f"harvester/rejects/{item.stage}")
            raise DropItem(f"rejected {item.url} at {item.stage}: {item.error[:300]}")
        body = None
        if isinstance(item, RecordWithBody):
            item, body = item.record, item.body
        if not isinstance(item, SourceRecord):
            raise TypeError(f"StorePipeline expects RecordWithBody, SourceRecord, Reject or Gone, "
                            f"got {type(item).__name__}")
        outcome = self.store.upsert(item, body)
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
        # Feed exports (-O) receive the record as its JSON form, as stored.
        return item.model_dump(mode="json", by_alias=True)
