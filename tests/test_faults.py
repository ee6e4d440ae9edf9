"""Fault injection: the real spiders against a fake site on 127.0.0.1.

404, 410, 429 with Retry-After, 500 then 200, a timeout, a truncated JSON
body, a body cut short by the server and a page whose labels were renamed:
each is counted in the crawl stats and the run report and shows in the log,
the crawl goes on, and nothing already in the store is lost (gone pages are
marked `removed_at`, never deleted; unreadable pages leave the stored record
as it was and are kept as rejects)."""
from __future__ import annotations

import sqlite3
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

import pytest
from _fakesite import (FakeSite, Reply, crawl, ctgov_json, ctgov_study, medpath_page, medpath_path)

from harvester.extensions import run_failed
from harvester.middlewares import parse_retry_after
from harvester.store import Store

NCTS = [f"NCT0700000{i}" for i in range(8)]
STUDY_URL = "https://clinicaltrials.gov/api/v2/studies/{}"


@pytest.fixture
def site():
    s = FakeSite()
    yield s
    s.close()


def rows(db) -> dict[str, tuple]:
    con = sqlite3.connect(db)
    try:
        return {url: (h, removed, updated) for url, h, removed, updated in con.execute(
            "SELECT url, content_hash, removed_at, updated_at FROM sources")}
    finally:
        con.close()


def test_every_fault_is_counted_the_crawl_goes_on_and_nothing_stored_is_lost(site, tmp_path):
    api = "/api/v2/studies/"
    for i, nct in enumerate(NCTS):
        site.script(api + nct, Reply(body=ctgov_json(ctgov_study(nct, i))))
    args = ("-a", f"base_url={site.base}", "-a", f"nct={','.join(NCTS)}")
    first = crawl("ctgov", tmp_path, *args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.report["items"] == 8 and not first.report["failed"]
    db = tmp_path / "harvest.sqlite3"
    before = rows(db)
    assert set(before) == {STUDY_URL.format(n) for n in NCTS}  # stored under CT.gov's URL

    a, b, c, d, e, f, g, h = NCTS
    body = {n: ctgov_json(ctgov_study(n, i)) for i, n in enumerate(NCTS)}
    site.clear_log()
    site.script(api + a, Reply(status=404, body=b'{"message": "not found"}'))
    site.script(api + b, Reply(status=410, body=b'{"message": "withdrawn"}'))
    site.script(api + c, Reply(status=500, body=b"oops"), Reply(body=body[c]))
    site.script(api + d, Reply(status=429, headers={"Retry-After": "1"}, body=b"slow down"), Reply(body=body[d]))
    # the first answer times out; the timeout leaves a loaded machine's
    # ordinary answers (well under a second on loopback) a wide margin
    site.script(api + e, Reply(body=body[e], delay=7), Reply(body=body[e]))
    site.script(api + f, Reply(body=body[f][: len(body[f]) // 2]))  # truncated JSON, with a matching length
    site.script(api + g, Reply(body=body[g], cut=300))  # the server closes before the announced length
    def in_two_seconds():  # an HTTP date, computed when the server answers
        return format_datetime(datetime.now(timezone.utc) + timedelta(seconds=2), usegmt=True)
    site.script(api + h, Reply(status=503, headers={"Retry-After": in_two_seconds}), Reply(body=body[h]))

    run = crawl("ctgov", tmp_path, *args, settings={"DOWNLOAD_TIMEOUT": "4"})
    assert run.returncode == 1, run.stderr[-3000:]  # a failed run: scrapy crawl says so in its exit status
    report, stats = run.report, run.stats
    assert report["finish_reason"] == "finished"

    # 404 / 410: counted, the stored records marked removed, not deleted
    assert report["gone"] == 2 and stats["ctgov/http_404"] == 1 and stats["ctgov/http_410"] == 1
    assert stats["store/marked_removed"] == 2
    after = rows(db)
    assert set(after) == set(before)  # nothing deleted
    for n in (a, b):
        assert after[STUDY_URL.format(n)][1] is not None
        assert after[STUDY_URL.format(n)][0] == before[STUDY_URL.format(n)][0]
    # 429 and 503 with Retry-After (seconds, HTTP date): waited for, then fetched
    assert report["retry_after"] == 2
    for n in (d, h):
        first_try, retry = site.requests_for(api + n)
        assert retry.at - first_try.at >= 0.9, "Retry-After not honoured"
        assert retry.status == 200
    # 500 then 200, and a timeout then 200: retried with backoff, stored
    assert stats["retry/reason_count/500 Internal Server Error"] == 1
    assert stats["retry/reason_count/scrapy.exceptions.DownloadTimeoutError"] == 1
    assert stats["harvester/retry_backoff"] >= 2
    assert [x.status for x in site.requests_for(api + c)] == [500, 200]
    assert len(site.requests_for(api + e)) == 2
    for n in (c, d, e, h):
        assert after[STUDY_URL.format(n)][1] is None
    assert stats["store/unchanged"] == 4
    # truncated JSON: a counted parse reject; the stored record untouched
    assert report["parse_errors"] == 1
    # a body cut short: retried, then a counted reject with its partial body; the stored record untouched
    assert report["dataloss"] == 1 and len(site.requests_for(api + g)) == 3
    for n in (f, g):
        assert after[STUDY_URL.format(n)] == before[STUDY_URL.format(n)]
    with Store(db) as store:
        rejects = {(r["url"].rsplit("/", 1)[-1], r["stage"]) for r in store.rejects()}
    assert rejects == {(f, "parse"), (g, "download")}
    assert report["rejects"] == 2 and report["items"] == 4
    # the run is reported as failed (unreadable pages), and why
    assert report["failed"] and run_failed(report)
    assert any("parse errors" in r for r in report["failure_reasons"])
    assert any("cut short" in r for r in report["failure_reasons"])
    # and every fault shows in the log
    log = run.stderr
    assert f"gone (HTTP 404): {STUDY_URL.format(a)}" in log and f"gone (HTTP 410): {STUDY_URL.format(b)}" in log
    assert "HTTP 429 with Retry-After 1" in log and "HTTP 503 with Retry-After" in log
    assert f"cannot parse {site.base}{api}{f}" in log
    assert "body cut short by the server" in log
    assert "run report ctgov: FAILED" in log


def test_a_page_that_keeps_failing_is_counted_and_the_crawl_goes_on(site, tmp_path):
    api = "/api/v2/studies/"
    ok, broken = "NCT07100001", "NCT07100002"
    site.script(api + ok, Reply(body=ctgov_json(ctgov_study(ok))))
    site.script(api + broken, Reply(status=502, body=b"bad gateway"))
    run = crawl("ctgov", tmp_path, "-a", f"base_url={site.base}", "-a", f"nct={ok},{broken}")
    assert run.returncode == 1, run.stderr[-3000:]  # the run failed, and its exit status says so
    assert len(site.requests_for(api + broken)) == 3  # RETRY_TIMES=2
    assert run.stats["retry/max_reached"] == 1 and run.report["failed_pages"] == 1
    assert run.report["items"] == 1 and run.report["failed"]
    assert f"request failed {site.base}{api}{broken}" in run.stderr


def test_html_page_with_renamed_labels_is_a_counted_reject_and_the_stored_record_stays(site, tmp_path):
    paths = [medpath_path(i) for i in range(3)]
    for i, p in enumerate(paths):
        site.script(p, Reply(body=medpath_page(f"NCT0720000{i}", i), content_type="text/html; charset=utf-8"))
    args = ("-a", f"base_url={site.base}", "-a", "urls=" + ",".join(site.url(p) for p in paths))
    first = crawl("medpath", tmp_path, *args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.report["items"] == 3
    db = tmp_path / "harvest.sqlite3"
    before = rows(db)

    # the site renames its labels on one page: the page no longer reads as a study
    renamed = {"Conditions": "Diseases", "Registration Number": "Trial ID", "Lead Sponsor": "Sponsor",
               "Status": "State", "Inclusion Criteria": "Who can join", "Study Type": "Kind"}
    site.script(paths[1], Reply(body=medpath_page("NCT07200001", 1, renames=renamed),
                                content_type="text/html; charset=utf-8"))
    site.script(paths[2], Reply(status=404, body=b"gone", content_type="text/html"))
    run = crawl("medpath", tmp_path, *args)
    assert run.returncode == 1, run.stderr[-3000:]  # a page could not be read: a failed run
    assert run.stats["harvester/parse_error/medpath"] == 1 and run.report["rejects"] == 1
    assert run.report["gone"] == 1 and run.report["items"] == 1
    assert "not a MedPath study page" in run.stderr
    after = rows(db)
    assert after[site.url(paths[1])] == before[site.url(paths[1])]  # the good record is kept as it was
    assert after[site.url(paths[2])][1] is not None  # gone: marked, still there
    with Store(db) as store:
        [reject] = store.rejects()
    assert reject["url"] == site.url(paths[1]) and reject["stage"] == "parse"


def test_retry_after_values():
    assert parse_retry_after(b"120") == 120
    assert parse_retry_after("0") == 0
    now = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc).timestamp()
    assert parse_retry_after("Mon, 23 Nov 2026 09:00:30 GMT", now=now) == 30
    assert parse_retry_after("Mon, 23 Nov 2026 08:00:00 GMT", now=now) == 0  # in the past: now
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None and parse_retry_after("") is None


def test_contact_given_with_dash_s_reaches_the_user_agent():
    from scrapy.utils.test import get_crawler

    from harvester.settings import user_agent
    from spiders.ctgov import CtgovSpider

    crawler = get_crawler(CtgovSpider, {"HARVEST_CONTACT": "data-team@example.org", "USER_AGENT": user_agent()})
    assert crawler.settings["USER_AGENT"] == "harvester/0.1 (clinical-trials crawler; +data-team@example.org)"
    # a User-Agent the user wrote is theirs
    crawler = get_crawler(CtgovSpider, {"HARVEST_CONTACT": "x@example.org", "USER_AGENT": "acme-bot/2"})
    assert crawler.settings["USER_AGENT"] == "acme-bot/2"
