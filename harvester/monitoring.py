"""Monitoring with Scrapy's own extension and stats API: field fill rates
against a baseline (layout drift), and progress lines for long crawls.

`FieldFillMonitor` counts, for every record a spider stores, which
SourceRecord fields are filled (not None, not empty; eligibility per
sub-field): stats `fill/items` and `fill/<field>`. When the spider closes it
compares each field's fill rate (filled / items) with the spider's baseline,
a JSON file `<HARVEST_BASELINE_DIR>/<spider>.json` written by the first
successful run with enough items (see below). A field that was well filled
in the baseline (rate ≥ `HARVEST_DRIFT_MIN_BASELINE`, default 0.5) and whose
rate fell by `HARVEST_DRIFT_THRESHOLD` or more (default 0.3, absolute: 0.95
→ 0.60 fires) raises a layout-drift alarm: logged at ERROR, stats
`harvester/drift` (number of fields) and `harvester/drift/<field>`, the list
in `harvester/drift_fields`, which the run report carries as `drift` and
which makes the run failed. A label renamed on the site, a section moved, a
template change: the parser still runs but a field goes empty everywhere.

Runs with fewer than `HARVEST_DRIFT_MIN_ITEMS` records (default 20) are
neither compared nor used as a baseline: a handful of pages says nothing
about a site's layout (an incremental run that found 3 changed pages, say).
The baseline is kept until deleted (delete the file to take a new one, for
instance after a deliberate parser change); `HARVEST_BASELINE_DIR` empty
turns the monitor off.

`ProgressLog` replaces Scrapy's LogStats (same `LOGSTATS_INTERVAL`, default
60 s): the pages/min and items/min line, plus rejects, failed and gone
pages, 304s, retries and the requests still queued.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.extensions.logstats import LogStats

from items import ELIGIBILITY_FIELDS, TRIAL_FIELDS

logger = logging.getLogger(__name__)

#: the SourceRecord fields whose fill rate is watched
FIELDS: tuple[str, ...] = (
    "nct_id",
    "secondary_ids",
    *TRIAL_FIELDS,
    *(f"eligibility.{f}" for f in ELIGIBILITY_FIELDS),
)


def filled(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, (list, tuple, set)):
        return len(value) > 0
    if isinstance(value, dict):
        return any(filled(v) for v in value.values())
    return True


def _field(record: dict, name: str) -> Any:
    head, _, sub = name.partition(".")
    value = record.get(head)
    if sub:
        value = value.get(sub) if isinstance(value, dict) else None
    return value


def detect_drift(rates: dict[str, float], baseline: dict[str, float], threshold: float,
                 min_baseline: float) -> list[dict]:
    """Fields well filled in the baseline whose rate dropped by `threshold` or more."""
    out = []
    for field, before in sorted(baseline.items()):
        now = rates.get(field, 0.0)
        if before >= min_baseline and before - now >= threshold - 1e-9:
            out.append({"field": field, "baseline": round(before, 4), "current": round(now, 4),
                        "drop": round(before - now, 4)})
    return out


class FieldFillMonitor:
    def __init__(self, crawler, directory: Path):
        self.crawler = crawler
        self.stats = crawler.stats
        self.directory = directory
        settings = crawler.settings
        self.threshold = settings.getfloat("HARVEST_DRIFT_THRESHOLD", 0.3)
        self.min_baseline = settings.getfloat("HARVEST_DRIFT_MIN_BASELINE", 0.5)
        self.min_items = settings.getint("HARVEST_DRIFT_MIN_ITEMS", 20)

    @classmethod
    def from_crawler(cls, crawler):
        directory = crawler.settings.get("HARVEST_BASELINE_DIR")
        if not directory:
            raise NotConfigured
        ext = cls(crawler, Path(directory))
        crawler.signals.connect(ext.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def item_scraped(self, item, response=None, spider=None) -> None:
        record = item if isinstance(item, dict) else getattr(item, "model_dump", lambda **_: None)(
            mode="json", by_alias=True)
        if not isinstance(record, dict) or "site" not in record:
            return
        self.stats.inc_value("fill/items")
        for name in FIELDS:
            if filled(_field(record, name)):
                self.stats.inc_value(f"fill/{name}")

    def rates(self) -> tuple[int, dict[str, float]]:
        items = self.stats.get_value("fill/items", 0)
        if not items:
            return 0, {}
        return items, {name: round(self.stats.get_value(f"fill/{name}", 0) / items, 4) for name in FIELDS}

    def baseline_path(self, spider) -> Path:
        return self.directory / f"{spider.name}.json"

    def spider_closed(self, spider, reason: str) -> None:
        from harvester.extensions import crawl_problems

        items, rates = self.rates()
        self.stats.set_value("harvester/fill_rates", rates)
        self.stats.set_value("harvester/drift", 0)
        if items < self.min_items:
            if items:
                logger.info("fill rates not checked: %d records, fewer than HARVEST_DRIFT_MIN_ITEMS=%d",
                            items, self.min_items)
            return
        path = self.baseline_path(spider)
        baseline = None
        if path.exists():
            try:
                baseline = json.loads(path.read_text(encoding="utf-8"))["rates"]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                logger.error("unreadable fill-rate baseline %s (%s): not compared", path, exc)
                return
        if baseline is None:
            if crawl_problems(self.stats.get_stats(), reason, getattr(spider, "settings", None)):
                return  # only a clean run may become the baseline
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps({
                    "spider": spider.name, "items": items, "rates": rates,
                    "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                }, indent=2, sort_keys=True), encoding="utf-8")
                logger.info("fill-rate baseline for %s written to %s (%d records)", spider.name, path, items)
            except OSError as exc:
                logger.error("cannot write the fill-rate baseline %s: %s", path, exc)
            return
        drift = detect_drift(rates, baseline, self.threshold, self.min_baseline)
        self.stats.set_value("harvester/drift", len(drift))
        self.stats.set_value("harvester/drift_fields", drift)
        for d in drift:
            self.stats.set_value(f"harvester/drift/{d['field']}", d["current"])
            logger.error("layout drift on %s: %s is filled in %.0f%% of %d records, %.0f%% in the baseline "
                         "(%s); has the site renamed a label or changed its layout?",
                         spider.name, d["field"], 100 * d["current"], items, 100 * d["baseline"], path)


class ProgressLog(LogStats):
    """Scrapy's LogStats line, with the counts that matter for a long crawl."""

    @classmethod
    def from_crawler(cls, crawler):
        ext = super().from_crawler(crawler)
        ext.crawler = crawler
        return ext

    def log(self, spider) -> None:
        self.calculate_stats()
        get = self.stats.get_value
        queued = (get("scheduler/enqueued", 0) or 0) - (get("scheduler/dequeued", 0) or 0)
        logger.info(
            "progress: %(pages)d pages (%(prate)d/min), %(items)d items (%(irate)d/min); "
            "rejects %(rejects)d, failed %(failed)d, gone %(gone)d, not modified %(nm)d, "
            "retries %(retries)d, queued %(queued)d",
            {"pages": self.pages, "prate": self.prate, "items": self.items, "irate": self.irate,
             "rejects": get("harvester/rejects", 0), "failed": get("harvester/failed_pages", 0),
             "gone": get("harvester/gone", 0), "nm": get("harvester/not_modified", 0),
             "retries": get("retry/count", 0), "queued": max(0, queued)},
            extra={"spider": spider},
        )
