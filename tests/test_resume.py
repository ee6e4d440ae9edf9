"""JOBDIR resume after SIGKILL, on a fake CT.gov on 127.0.0.1.

A crawl of 220 pages (200 named studies and a search of 20 pages, each page
naming the next), served slowly enough that the kill lands mid-crawl, is
killed with SIGKILL and started again with the same JOBDIR: it goes on from
where it was (it does not fetch everything again), and ends with exactly
the store an uninterrupted crawl gives. Pages whose items were stored just
before the kill are fetched again and upserted idempotently."""
from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
import zlib
from urllib.parse import parse_qs, urlsplit

import pytest
from _fakesite import FakeSite, Reply, crawl, ctgov_json, ctgov_study, env_for, scrapy_cmd

NAMED = [f"NCT0900{i:04d}" for i in range(200)]
PAGES, PER_PAGE = 20, 5
TOTAL = len(NAMED) + PAGES


@pytest.fixture
def site():
    s = FakeSite()

    def registry(path: str, headers: dict):
        if path.startswith("/api/v2/studies/"):
            nct = path.rsplit("/", 1)[1]
            return Reply(body=ctgov_json(ctgov_study(nct, int(nct[-4:]))), delay=0.02)
        if path.startswith("/api/v2/studies?"):
            page = int(parse_qs(urlsplit(path).query).get("pageToken", ["0"])[0])
            listed = [ctgov_study(f"NCT0910{page:02d}{k:02d}", k) for k in range(PER_PAGE)]
            body = {"studies": listed, **({"nextPageToken": str(page + 1)} if page + 1 < PAGES else {})}
            return Reply(body=ctgov_json(body), delay=0.02)
        return None

    s.handler = registry
    yield s
    s.close()


def fetched(site) -> list[str]:
    return [h.path for h in site.requests_for(lambda p: p.startswith("/api/"))]


def snapshot(db) -> dict:
    """Everything a crawl decides about a stored page (not when it wrote it)."""
    con = sqlite3.connect(db)
    try:
        # the record of each page's current version (kept once, in `versions`)
        out = {(site, url): (nct, h, removed, json.loads(zlib.decompress(rec)))
               for site, url, nct, h, removed, rec in con.execute(
                   "SELECT s.site, s.url, s.nct_id, s.content_hash, s.removed_at, v.record FROM sources s"
                   " JOIN versions v ON v.site = s.site AND v.url = s.url AND v.seq = s.version")}
        rejects = con.execute("SELECT COUNT(*) FROM rejects").fetchone()[0]
    finally:
        con.close()
    return {"sources": out, "rejects": rejects}


ARGS = ["-a", "nct=" + ",".join(NAMED), "-a", "cond=resume", "-a", f"page_size={PER_PAGE}"]
SETTINGS = {"CONCURRENT_REQUESTS_PER_DOMAIN": "2", "CONCURRENT_REQUESTS": "2"}


def test_sigkill_then_resume_ends_with_the_same_store_as_an_uninterrupted_crawl(site, tmp_path):
    args = ["-a", f"base_url={site.base}", *ARGS]
    reference = crawl("ctgov", tmp_path / "ref", *args, settings=SETTINGS, timeout=90)
    assert reference.returncode == 0, reference.stderr[-3000:]
    assert reference.report["items"] == len(NAMED) + PAGES * PER_PAGE
    assert len(fetched(site)) == TOTAL
    expected = snapshot(tmp_path / "ref" / "harvest.sqlite3")

    site.clear_log()
    job = tmp_path / "job"
    job.mkdir()
    settings = {**SETTINGS, "JOBDIR": str(job / "jobdir")}
    proc = subprocess.Popen(scrapy_cmd("ctgov", job, *args, settings=settings), cwd=job, env=env_for(job),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(fetched(site)) < 70:
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "the crawl did not start"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    before_kill = len(fetched(site))
    assert before_kill < TOTAL - 50, "the kill came too late to prove anything"
    partial = snapshot(job / "harvest.sqlite3")
    assert 0 < len(partial["sources"]) < len(expected["sources"])
    assert not (job / "reports" / "ctgov-latest.json").exists()  # killed: no report

    site.clear_log()
    resumed = crawl("ctgov", job, *args, settings=settings, timeout=90)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    again = fetched(site)
    # it went on from where it was: not everything again, nothing missing
    assert len(again) < TOTAL - 40
    assert resumed.stats["frontier/resumed_pending"] > 0
    assert "requests pending" in resumed.stderr
    assert resumed.report["finish_reason"] == "finished" and not resumed.report["failed"]
    # items stored before the kill came again, and changed nothing
    assert resumed.stats.get("store/unchanged", 0) + resumed.stats.get("store/inserted", 0) \
        == resumed.report["items"]
    assert snapshot(job / "harvest.sqlite3") == expected


def test_without_jobdir_nothing_is_kept(site, tmp_path):
    run = crawl("ctgov", tmp_path, "-a", f"base_url={site.base}", "-a", "nct=NCT09000001",
                settings=SETTINGS)
    assert run.returncode == 0, run.stderr[-3000:]
    assert not list(tmp_path.rglob("frontier.sqlite3"))
    assert run.report["items"] == 1


# --- the queue itself, and spider state that must survive a resume ------------------------------
def test_frontier_queue_states(tmp_path):
    from scrapy import Request, Spider
    from scrapy.utils.test import get_crawler

    from harvester.frontier import FRONTIER_ID, FrontierQueue, send_request_done

    class S(Spider):
        name = "s"

        def parse(self, response):
            pass

    crawler = get_crawler(S)
    crawler.spider = S.from_crawler(crawler)
    crawler.stats.open_spider()
    q = FrontierQueue.from_crawler(crawler, None, str(tmp_path / "q"))
    q.push(Request("http://127.0.0.1/a", callback=crawler.spider.parse))
    q.push(Request("http://127.0.0.1/b", priority=5))
    assert len(q) == 2
    b = q.pop()
    assert b.url.endswith("/b") and FRONTIER_ID in b.meta  # priority first
    a = q.pop()
    assert a.callback == crawler.spider.parse and q.pop() is None and len(q) == 0
    retry = b.replace(dont_filter=True)  # a retry keeps the meta: it takes b's place
    q.push(retry)
    assert len(q) == 1
    send_request_done(crawler, a)
    q.close()
    # reopened (as after a kill): b is pending again, a is done, nothing else
    q = FrontierQueue.from_crawler(crawler, None, str(tmp_path / "q"))
    assert len(q) == 1 and q.pop().url.endswith("/b") and q.pop() is None
    assert crawler.stats.get_value("frontier/resumed_pending") == 1
    q.close()
    q = FrontierQueue.from_crawler(crawler, None, str(tmp_path / "q"))
    assert len(q) == 1  # b was in flight when "killed" again
    q.close()
    with pytest.raises(ValueError):  # not serializable: Scrapy's scheduler keeps it in memory instead
        FrontierQueue.from_crawler(crawler, None, str(tmp_path / "q2")).push(
            Request("http://127.0.0.1/c", callback=lambda r: None))


def test_veeva_shards_still_to_read_travel_with_the_shard_request():
    from scrapy.http import XmlResponse
    from scrapy.utils.test import get_crawler

    from spiders.veeva import VeevaSpider

    crawler = get_crawler(VeevaSpider)
    spider = VeevaSpider.from_crawler(crawler)
    crawler.stats.open_spider()
    index = (b'<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
             + b"".join(b"<sitemap><loc>https://ctv.veeva.com/s%d.xml</loc></sitemap>" % i for i in (1, 2, 3))
             + b"</sitemapindex>")
    [first] = spider.parse_sitemap(XmlResponse("https://ctv.veeva.com/sitemap.xml", body=index))
    assert first.url.endswith("/s1.xml")
    assert first.meta["shards_after"] == [["https://ctv.veeva.com/s2.xml", None],
                                          ["https://ctv.veeva.com/s3.xml", None]]
    # a resumed crawl: a fresh spider (no shard list) reads that shard again
    crawler = get_crawler(VeevaSpider)
    fresh = VeevaSpider.from_crawler(crawler)
    crawler.stats.open_spider()
    shard = (b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
             b"<url><loc>https://ctv.veeva.com/study/a</loc></url></urlset>")
    out = list(fresh.parse_sitemap(XmlResponse(first.url, body=shard, request=first)))
    assert [r.url for r in out] == ["https://ctv.veeva.com/study/a", "https://ctv.veeva.com/s2.xml"]
    assert out[1].meta["shards_after"] == [["https://ctv.veeva.com/s3.xml", None]]
