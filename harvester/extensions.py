"""Crawl-level extensions and the run report.

`RunReport` writes the run report after every crawl: a JSON file with the
spider, how it finished, its duration, the counts a data team looks at
(items, rejects, parse errors, failed pages, gone pages, not-modified pages,
retries and Retry-After waits, truncated bodies, cassette misses, versions
the integrity gate quarantined: `quarantined` lists URL and reason), the
watermark it set or why not, the layout-drift alarms of
`harvester.monitoring.FieldFillMonitor`, `failed` with its reasons, and
every crawl-stats counter; and logs a summary. Downstream jobs and `scrapy
harvest` read it to decide whether a run can be trusted: `run_failed(report)`.

Settings: `HARVEST_REPORT_DIR` (default `reports`; empty disables). Files:
`<dir>/<spider>-latest.json` and `<dir>/<spider>-<UTC start time>.json`.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from scrapy import signals
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.utils.misc import load_object

from harvester.faults import PageFailed

logger = logging.getLogger(__name__)


def _jsonable(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def _sum_prefix(stats: dict, prefix: str) -> int:
    return sum(v for k, v in stats.items() if k.startswith(prefix) and isinstance(v, (int, float)))


def _sum_suffix(stats: dict, suffix: str) -> int:
    return sum(v for k, v in stats.items() if k.endswith(suffix) and isinstance(v, (int, float)))


def crawl_problems(stats: dict, reason: str | None = None, settings: Any = None) -> list[str]:
    """Why a crawl failed (empty: it did not): the one rule the run report's
    `failed`, the incremental watermark, the fill-rate baseline, `scrapy
    crawl`'s and `scrapy harvest`'s exit status all use. Besides the checks
    below: a layout-drift alarm (`harvester/drift_fields`), and what only
    Scrapy's own counters show, by `settings` (default: the project's):
    responses with a status >= 400 neither retried nor expected, and download
    errors of requests that had no errback to count them.

    * it did not finish (`finish_reason` other than "finished"; a
      `closespider_*` reason is a limit the user asked for and counts as
      finished);
    * pages that failed after their retries (`harvester/failed_pages`: HTTP
      errors other than 404/410, timeouts, refused connections, cassette
      misses, unreadable sitemaps), `retry/max_reached`, `vcr/miss`;
    * pages that could not be read whole: parse errors, bodies cut short by
      the server (`harvester/dataloss`), truncated listing pages;
    * exceptions in spider callbacks;
    * new versions the store's integrity gate quarantined (a page that lost
      its NCT ID or emptied core fields: kept, not made current);
    * records the store refused (`store/errors`);
    * an incomplete run: the source counted or listed more than was stored
      (`harvester/incomplete`, set by a spider that checks, see the report's
      `completeness`), or a listing of the source that could not be trusted
      (`harvester/listing_refused`).

    Gone pages (404/410), 304s and requests dropped on purpose (robots.txt)
    are answers, not problems.
    """
    reason = reason if reason is not None else stats.get("finish_reason")
    out: list[str] = []
    if reason != "finished" and not str(reason or "").startswith("closespider_"):
        out.append(f"finish_reason={reason}")
    checks = (
        (_sum_prefix(stats, "harvester/parse_error/"), "parse errors"),
        (stats.get("harvester/failed_pages", 0), "failed pages"),
        (stats.get("retry/max_reached", 0), "requests failed after their retries"),
        (stats.get("vcr/miss", 0), "requests missing from the cassette"),
        (stats.get("harvester/dataloss", 0), "bodies cut short by the server"),
        (stats.get("harvester/truncated_pages", 0), "truncated listing pages"),
        (stats.get("spider_exceptions/count", 0), "spider exceptions"),
        (stats.get("harvester/quarantined", 0), "pages quarantined by the integrity gate"),
        (stats.get("store/errors", 0), "records the store could not write"),
        (stats.get("harvester/incomplete", 0), "studies the source listed or counted and the store lacks"),
        (stats.get("harvester/listing_refused", 0), "listing of the source refused (see completeness)"),
    )
    out.extend(f"{n} {what}" for n, what in checks if n)
    drift = stats.get("harvester/drift_fields") or []
    if drift:
        out.append("layout drift: " + ", ".join(d.get("field", "?") for d in drift))
    out.extend(_scrapy_counter_problems(stats, _settings(settings)))
    return out


def _settings(settings: Any):
    if settings is not None and hasattr(settings, "getlist"):
        return settings
    from scrapy.settings import Settings

    from harvester import settings as project

    merged = Settings()
    merged.setmodule(project, priority="project")
    for key, value in dict(settings or {}).items():
        merged.set(key, value)
    return merged


DEFAULT_EXPECTED_STATUSES = (404, 410)


def _retry_exceptions(settings) -> tuple[type, ...]:
    out = []
    for obj in settings.getlist("RETRY_EXCEPTIONS"):
        try:
            out.append(load_object(obj) if isinstance(obj, str) else obj)
        except (ImportError, NameError, ValueError, AttributeError):
            continue
    return tuple(c for c in out if isinstance(c, type))


def _exception_expected(name: str, retried: tuple[type, ...], retry_enabled: bool) -> bool:
    try:
        cls = load_object(name if "." in name else f"builtins.{name}")
    except (ImportError, NameError, ValueError, AttributeError):
        return False
    if not isinstance(cls, type):
        return False
    if issubclass(cls, (IgnoreRequest, PageFailed)):  # a PageFailed is counted a failed page
        return True
    return retry_enabled and issubclass(cls, retried)


def crawl_failures(stats: dict, settings) -> list[str]:
    """`crawl_problems` of a finished crawl's stats (its finish_reason in them)."""
    return crawl_problems(stats, stats.get("finish_reason"), settings)


def _scrapy_counter_problems(stats: dict, settings) -> list[str]:
    reasons: list[str] = []
    retry_enabled = settings.getbool("RETRY_ENABLED")
    retry_codes = {int(c) for c in settings.getlist("RETRY_HTTP_CODES")} if retry_enabled else set()
    expected = {int(c) for c in settings.getlist("HARVEST_EXPECTED_HTTP_STATUSES", DEFAULT_EXPECTED_STATUSES)}
    prefix = "downloader/response_status_count/"
    for key, count in sorted(stats.items()):
        if key.startswith(prefix) and count:
            try:
                status = int(key[len(prefix):])
            except ValueError:
                continue
            if status >= 400 and status not in retry_codes and status not in expected:
                reasons.append(f"{count} responses with status {status}")
    retried = _retry_exceptions(settings)
    prefix = "downloader/exception_type_count/"
    for key, count in sorted(stats.items()):
        if key.startswith(prefix) and count and not _exception_expected(key[len(prefix):], retried, retry_enabled):
            reasons.append(f"{count} download errors {key[len(prefix):]}")
    return reasons


def failure_reasons(report: dict, settings: Any = None) -> list[str]:
    """Why a run failed, from its report: `crawl_problems` of its stats (and
    its drift, for a report whose stats lack it)."""
    stats = dict(report.get("stats") or {})
    reasons = crawl_problems(stats, report.get("finish_reason"), settings)
    drift = report.get("drift") or []
    if drift and not stats.get("harvester/drift_fields"):
        reasons.append("layout drift: " + ", ".join(d.get("field", "?") for d in drift))
    return reasons


def run_failed(report: dict) -> bool:
    """True when a spider's run failed: it did not finish, pages failed or
    could not be read whole, or a layout-drift alarm fired. `report` is the
    dict of the run report (`<HARVEST_REPORT_DIR>/<spider>-latest.json`)."""
    if not report:
        return True
    return bool(report.get("failed")) or bool(failure_reasons(report))


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
        raw = self.crawler.stats.get_stats()
        stats = {k: _jsonable(v) for k, v in sorted(raw.items())}
        start = raw.get("start_time")
        finish = raw.get("finish_time") or datetime.now(timezone.utc)
        report = {
            "spider": spider.name,
            "finish_reason": reason,
            "started_at": _jsonable(start),
            "finished_at": _jsonable(finish),
            "duration_s": round((finish - start).total_seconds(), 3) if start else None,
            "incremental": bool(getattr(spider, "incremental", False)),
            "items": stats.get("item_scraped_count", 0),
            "rejects": stats.get("harvester/rejects", 0),
            "parse_errors": _sum_prefix(stats, "harvester/parse_error/"),
            "failed_pages": stats.get("harvester/failed_pages", 0),
            "gone": stats.get("harvester/gone", 0),
            "not_modified": stats.get("harvester/not_modified", 0),
            "sitemap_skipped": _sum_suffix(stats, "/sitemap_not_modified"),
            "retries": stats.get("retry/count", 0),
            "retry_after": stats.get("harvester/retry_after", 0),
            "dataloss": stats.get("harvester/dataloss", 0),
            "truncated_pages": stats.get("harvester/truncated_pages", 0),
            "cassette_misses": stats.get("vcr/miss", 0),
            "unmatched_requests": stats.get("vcr/miss", 0),
            "robots_forbidden": stats.get("robotstxt/forbidden", 0),
            "errors": stats.get("log_count/ERROR", 0),
            "quarantined": _jsonable(raw.get("harvester/quarantined_pages") or []),
            "quarantined_count": stats.get("harvester/quarantined", 0),
            "store": {k.split("/", 1)[1]: v for k, v in stats.items() if k.startswith("store/")},
            "watermark": getattr(spider, "watermark_result", None),
            "completeness": _jsonable(getattr(spider, "completeness_result", None)),
            "drift": _jsonable(raw.get("harvester/drift_fields") or []),
            "fill_rates": _jsonable(raw.get("harvester/fill_rates") or {}),
            "stats": stats,
        }
        reasons = crawl_failures({**raw, "finish_reason": reason}, self.crawler.settings)
        report["failed"] = bool(reasons)
        report["failure_reasons"] = reasons
        return report

    def spider_closed(self, spider, reason):
        report = self.build(spider, reason)
        path = self.directory / f"{spider.name}-latest.json"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            stamp = (report["started_at"] or "").replace(":", "").replace("-", "")[:15] or "run"
            text = json.dumps(report, indent=2, sort_keys=True)
            (self.directory / f"{spider.name}-{stamp}.json").write_text(text, encoding="utf-8")
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            logger.error("cannot write run report to %s: %s", self.directory, exc)
        log = logger.warning if report["failed"] else logger.info
        log("%s", summary(report, path))


def completeness_lines(found: dict | None) -> list[str]:
    """The report's `completeness` as summary lines (none when the spider does not check)."""
    if not found:
        return []
    if found.get("skipped"):
        return [f"  skipped: {found['skipped']}"]
    if "error" in found:
        return [f"  completeness: cannot tell ({found['error']})"]
    missing = found.get("missing") or []
    line = (f"  completeness: expected {found.get('expected', '?')}, listed {found.get('listed')}, "
            f"stored {found.get('stored')}")
    if missing:
        line += f"; missing {found.get('missing_count', len(missing))}: " + ", ".join(missing[:10]) \
            + (" ..." if len(missing) > 10 else "")
    lines = [line]
    registry = found.get("registry")
    if registry:
        if registry.get("refused"):
            lines.append(f"  registry check ({registry.get('listed_by')}): {registry['refused']}")
        else:
            lines.append(
                f"  registry check ({registry.get('listed_by')}): {registry.get('listed')} listed, "
                f"{registry.get('stored')} of them stored, {registry.get('removed_count', 0)} marked removed, "
                f"{registry.get('fetched_count', 0)} missing fetched, still missing {registry.get('missing_count', 0)}")
    return lines


def summary(report: dict, path: Path | str | None = None) -> str:
    """The run report as a few human lines."""
    mark = report.get("watermark") or {}
    if mark.get("set"):
        watermark = f"{mark.get('key')} set to {mark.get('value')}"
    elif mark:
        watermark = f"{mark.get('key')} not moved ({mark.get('why')}), stays {mark.get('value')}"
    else:
        watermark = "-"
    drift = report.get("drift") or []
    lines = [
        f"run report {report['spider']}: {'FAILED' if report.get('failed') else 'ok'}, "
        f"{report['finish_reason']} in {report.get('duration_s')}s"
        + (" (incremental)" if report.get("incremental") else ""),
        f"  items {report['items']}, rejects {report['rejects']} (parse errors {report['parse_errors']}, "
        f"cut short {report.get('dataloss', 0)}, truncated pages {report.get('truncated_pages', 0)})",
        f"  failed pages {report.get('failed_pages', 0)}, gone {report.get('gone', 0)}, "
        f"not modified {report.get('not_modified', 0)}, skipped by sitemap lastmod "
        f"{report.get('sitemap_skipped', 0)}, retries {report.get('retries', 0)} "
        f"({report.get('retry_after', 0)} after Retry-After), cassette misses {report['cassette_misses']}, "
        f"errors logged {report['errors']}",
        f"  store {report.get('store') or {}}; watermark {watermark}",
        *completeness_lines(report.get("completeness")),
        "  layout drift: " + ("; ".join(
            f"{d['field']} filled {d['current']:.0%} (baseline {d['baseline']:.0%})" for d in drift)
            if drift else "none"),
    ]
    for q in report.get("quarantined") or []:
        lines.append(f"  quarantined {q.get('url')}: {q.get('reason')}")
    if report.get("failure_reasons"):
        lines.append("  failed because: " + "; ".join(report["failure_reasons"]))
    if path:
        lines.append(f"  report: {path}")
    return "\n".join(lines)


def _libc_malloc_trim():
    """glibc's malloc_trim, or None (another C library, another system)."""
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_malloc_trim = _libc_malloc_trim()


class GcTuning:
    """Fewer garbage-collector passes in a long crawl. A 1,000-study API page
    becomes millions of Python objects at once; at CPython's default
    thresholds the cyclic collector walks them again and again while the
    page is read and parsed, though almost nothing in it is cyclic garbage
    (reference counting frees it). At engine start this freezes what start-up
    allocated (never collected again) and raises the collection thresholds
    to `HARVEST_GC_THRESHOLD`. Cycles are still collected, less often.
    `HARVEST_GC_THRESHOLD = []` leaves the interpreter's defaults (and
    turns this off). Also, before each response of at least
    `HARVEST_MALLOC_TRIM_FROM` bytes (1 MB), glibc's `malloc_trim`."""

    def __init__(self, threshold: list[int]):
        self.threshold = threshold

    @classmethod
    def from_crawler(cls, crawler):
        threshold = [int(v) for v in crawler.settings.getlist("HARVEST_GC_THRESHOLD")]
        if not threshold:
            raise NotConfigured
        ext = cls(threshold)
        ext.trim_from = crawler.settings.getint("HARVEST_MALLOC_TRIM_FROM", 1024 * 1024)
        crawler.signals.connect(ext.engine_started, signal=signals.engine_started)
        crawler.signals.connect(ext.response_received, signal=signals.response_received)
        return ext

    def engine_started(self):
        import gc

        gc.collect()
        gc.freeze()
        gc.set_threshold(*self.threshold)
        logger.debug("gc: start-up objects frozen, thresholds %s", self.threshold)

    def response_received(self, response, request=None, spider=None):
        """Before a large page is read, hand the memory the previous one freed
        back to the system: glibc keeps freed heap memory, and page after page
        of millions of objects left it scattered, so the process grew by tens
        of MB a page though it held no more."""
        if len(response.body) >= self.trim_from and _malloc_trim is not None:
            _malloc_trim(0)
