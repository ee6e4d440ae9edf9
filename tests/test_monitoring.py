"""Monitoring: the run report after every crawl, field fill rates against a
baseline, the layout-drift alarm, progress lines, and `run_failed`."""
from __future__ import annotations

import json

import pytest
from _fakesite import FakeSite, Reply, crawl, medpath_page, medpath_path, sitemap_index, sitemap_urlset

from harvester.extensions import crawl_problems, run_failed, summary
from harvester.monitoring import FIELDS, detect_drift, filled

HTML = "text/html; charset=utf-8"
N = 6


@pytest.fixture
def site():
    s = FakeSite()
    yield s
    s.close()


def publish(site, renames=None) -> None:
    site.script("/sitemap.xml", Reply(body=sitemap_index(site.url("/sitemaps/trials-0.xml")),
                                      content_type="application/xml"))
    site.script("/sitemaps/trials-0.xml", Reply(
        body=sitemap_urlset([(site.url(medpath_path(i)), "2026-01-05") for i in range(N)]),
        content_type="application/xml"))
    for i in range(N):
        site.script(medpath_path(i), Reply(body=medpath_page(f"NCT0820000{i}", i, renames=renames),
                                           content_type=HTML))


def test_renamed_labels_raise_the_layout_drift_alarm(site, tmp_path):
    args = ("-a", f"base_url={site.base}")
    settings = {"HARVEST_DRIFT_MIN_ITEMS": "5", "LOGSTATS_INTERVAL": "0.2"}
    publish(site)
    first = crawl("medpath", tmp_path, *args, settings=settings)
    assert first.returncode == 0, first.stderr[-3000:]
    report = first.report
    assert report["items"] == N and report["drift"] == [] and not report["failed"] and not run_failed(report)
    assert report["fill_rates"]["conditions"] == 1.0 and report["fill_rates"]["lay_summary"] == 0.0
    baseline = json.loads((tmp_path / "baselines" / "medpath.json").read_text())
    assert baseline["items"] == N and baseline["rates"]["lead_sponsor"] == 1.0
    assert "fill-rate baseline for medpath written" in first.stderr
    assert "progress: " in first.stderr and "items (" in first.stderr  # long crawls show progress

    # the site renames two labels on every page: the pages still parse, two fields go empty
    publish(site, renames={"Conditions": "Diseases", "Lead Sponsor": "Organised by"})
    second = crawl("medpath", tmp_path, *args, settings=settings)
    assert second.returncode == 1, second.stderr[-3000:]  # the drift alarm fails the run
    report = second.report
    assert report["items"] == N and report["parse_errors"] == 0
    assert [d["field"] for d in report["drift"]] == ["conditions", "lead_sponsor"]
    assert report["drift"][0] == {"field": "conditions", "baseline": 1.0, "current": 0.0, "drop": 1.0}
    assert report["stats"]["harvester/drift"] == 2
    assert report["failed"] and run_failed(report)
    assert "layout drift: conditions, lead_sponsor" in report["failure_reasons"]
    assert "ERROR: layout drift on medpath: conditions is filled in 0% of 6 records, 100% in the baseline" \
        in second.stderr
    assert "layout drift: conditions filled 0% (baseline 100%)" in second.stderr  # the printed summary
    # the baseline is the first good run's, kept
    assert json.loads((tmp_path / "baselines" / "medpath.json").read_text()) == baseline


def test_a_small_run_is_neither_compared_nor_a_baseline(site, tmp_path):
    publish(site, renames={"Conditions": "Diseases"})
    run = crawl("medpath", tmp_path, "-a", f"base_url={site.base}", "-a", f"urls={site.url(medpath_path(0))}")
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.report["drift"] == [] and not (tmp_path / "baselines" / "medpath.json").exists()
    assert "fewer than HARVEST_DRIFT_MIN_ITEMS=20" in run.stderr


def test_the_run_report_is_written_even_when_nothing_could_be_fetched(site, tmp_path):
    site.script("/sitemap.xml", Reply(status=503, body=b"down", content_type="text/plain"))
    run = crawl("medpath", tmp_path, "-a", f"base_url={site.base}")
    assert run.returncode == 1, run.stderr[-3000:]
    report = run.report
    assert report["spider"] == "medpath" and report["items"] == 0 and report["duration_s"] is not None
    assert report["failed"] and report["failed_pages"] == 1 and report["retries"] == 2
    for key in ("items", "rejects", "parse_errors", "failed_pages", "gone", "not_modified", "cassette_misses",
                "unmatched_requests", "duration_s", "drift", "failed", "failure_reasons", "watermark", "stats"):
        assert key in report
    assert "run report medpath: FAILED" in run.stderr


def test_run_failed_and_crawl_problems():
    clean = {"finish_reason": "finished", "stats": {"item_scraped_count": 5, "harvester/gone": 2,
                                                    "harvester/not_modified": 7}, "drift": []}
    assert not run_failed(clean)
    assert run_failed({**clean, "drift": [{"field": "conditions", "baseline": 1.0, "current": 0.1}]})
    assert run_failed({**clean, "finish_reason": "shutdown"})
    assert not run_failed({**clean, "finish_reason": "closespider_itemcount"})
    for key in ("harvester/failed_pages", "harvester/parse_error/veeva", "retry/max_reached", "vcr/miss",
                "harvester/dataloss", "spider_exceptions/count"):
        assert run_failed({**clean, "stats": {key: 1}}), key
    assert run_failed({})  # no report: the spider did not run
    assert crawl_problems({"harvester/failed_pages": 3}, "finished") == ["3 failed pages"]
    text = summary({**clean, "spider": "x", "items": 5, "rejects": 0, "parse_errors": 0, "cassette_misses": 0,
                    "errors": 0, "duration_s": 1.0, "failed": False})
    assert text.startswith("run report x: ok, finished in 1.0s")


def test_fill_rates_and_drift_rules():
    assert "eligibility.min_age_years" in FIELDS and "conditions" in FIELDS and "raw" not in FIELDS
    assert filled("x") and filled([1]) and filled({"a": None, "b": 0}) and filled(0) and filled(False)
    assert not filled(None) and not filled(" ") and not filled([]) and not filled({"a": None})
    baseline = {"a": 0.9, "b": 0.9, "c": 0.3, "d": 1.0}
    drift = detect_drift({"a": 0.55, "b": 0.7, "c": 0.0, "d": 1.0}, baseline, threshold=0.3, min_baseline=0.5)
    assert [d["field"] for d in drift] == ["a"]  # b fell less; c was never well filled


def test_one_outcome_rule_for_the_report_the_watermark_and_harvest(tmp_path):
    # a run whose only problem is one a 403 nothing handled, and one with
    # layout drift: the report, the watermark and harvest all call it failed
    from scrapy.utils.test import get_crawler

    from harvester.commands.harvest import crawl_failures
    from harvester.extensions import failure_reasons
    from harvester.store import Store
    from spiders.base import HarvestSpider

    class Whole(HarvestSpider):
        name = site = "whole"

        def covers_whole_source(self) -> bool:
            return True

    drift = [{"field": "conditions", "baseline": 1.0, "current": 0.1}]
    for extra, why in (({"downloader/response_status_count/403": 1}, "1 responses with status 403"),
                       ({"harvester/drift_fields": drift}, "layout drift: conditions")):
        stats = {"finish_reason": "finished", "item_scraped_count": 5, **extra}
        assert crawl_problems(stats, "finished") == [why]
        assert failure_reasons({"finish_reason": "finished", "stats": stats}) == [why]
        assert crawl_failures(stats, None) == [why]
        db = tmp_path / f"{len(why)}.sqlite3"
        crawler = get_crawler(Whole, {"HARVEST_DB": str(db)})
        spider = Whole.from_crawler(crawler)
        crawler.stats.open_spider()
        for key, value in extra.items():
            crawler.stats.set_value(key, value)
        spider.update_watermark("finished")
        assert spider.watermark_result["set"] is False and why in spider.watermark_result["why"]
        with Store(db) as store:
            assert store.get_watermark("whole") is None
