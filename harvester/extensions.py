"""Crawl-level extensions.

`RunReport` writes the run report after every crawl: a JSON file with the
spider, how it finished, its duration and every crawl-stats counter
(items, rejects, parse errors, cassette misses, HTTP errors ...), and logs a
one-line summary. Downstream jobs and `scrapy harvest` read it to decide
whether a run can be trusted.

Settings: `HARVEST_REPORT_DIR` (default `reports`; empty disables). Files:
`<dir>/<spider>-latest.json` and `<dir>/<spider>-<UTC start time>.json`.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path

from scrapy import signals
from scrapy.exceptions import NotConfigured

logger = logging.getLogger(__name__)


def _jsonable(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return str(value)


class RunReport:
    def __init__(self, crawler, directory: Path):
        self.crawler = crawler
        self.directory = directory

    @classmethod
    def from_crawler(cls, crawler):
        directory = crawler.settings.get("HARVEST_REPORT_DIR")
        if not directory:
            raise NotConfigured
        ext = cls(crawler, Path(directory))
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def build(self, spider, reason: str) -> dict:
        stats = {k: _jsonable(v) for k, v in sorted(self.crawler.stats.get_stats().items())}
        start = self.crawler.stats.get_value("start_time")
        finish = self.crawler.stats.get_value("finish_time") or datetime.now(timezone.utc)
        return {
            "spider": spider.name,
            "finish_reason": reason,
            "started_at": _jsonable(start),
            "duration_s": round((finish - start).total_seconds(), 3) if start else None,
            "items": stats.get("item_scraped_count", 0),
            "rejects": stats.get("harvester/rejects", 0),
            "parse_errors": sum(v for k, v in stats.items() if k.startswith("harvester/parse_error/")),
            "cassette_misses": stats.get("vcr/miss", 0),
            "errors": stats.get("log_count/ERROR", 0),
            "stats": stats,
        }

    def spider_closed(self, spider, reason):
        report = self.build(spider, reason)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            stamp = (report["started_at"] or "").replace(":", "").replace("-", "")[:15] or "run"
            text = json.dumps(report, indent=2, sort_keys=True)
            (self.directory / f"{spider.name}-{stamp}.json").write_text(text, encoding="utf-8")
            (self.directory / f"{spider.name}-latest.json").write_text(text, encoding="utf-8")
        except OSError as exc:
            logger.error("cannot write run report to %s: %s", self.directory, exc)
        logger.info(
            "run report %s: %s, %d items, %d rejects, %d parse errors, %d cassette misses, %d errors",
            spider.name, reason, report["items"], report["rejects"], report["parse_errors"],
            report["cassette_misses"], report["errors"],
        )
