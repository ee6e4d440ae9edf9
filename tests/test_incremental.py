"""Incremental refresh (`-a incremental=1`) against a fake site on 127.0.0.1.

CT.gov: the first run (no watermark) fetches everything and sets the
watermark; the next asks only for studies updated since the watermark minus
the overlap, so it fetches only what changed (request counts asserted); a
run that failed leaves the watermark where it was.

HTML (MedPath): sitemap entries whose lastmod is older than the watermark
(minus the overlap) are not fetched; the others are fetched with
If-None-Match / If-Modified-Since from the ETag / Last-Modified stored with
the record, and a 304 leaves the stored record untouched but for
`last_seen_at`."""
from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
from _fakesite import (FakeSite, Reply, crawl, ctgov_json, ctgov_study, medpath_page, medpath_path,
                       sitemap_index, sitemap_urlset)
from _servers import postgres_server  # noqa: F401  (fixture)

from harvester.store import Store, open_store
from items import SourceRecord
from pipelines.validate import content_hash

TODAY = datetime.now(timezone.utc).date().isoformat()
LISTING = "/api/v2/studies?"


@pytest.fixture
def site():
    s = FakeSite()
    yield s
    s.close()


def listings(site) -> list[dict]:
    """The search pages asked for (not the pages of a whole-registry ID listing, `fields=NCTId`)."""
    queries = [parse_qs(urlsplit(h.path).query) for h in site.requests_for(lambda p: p.startswith(LISTING))]
    return [q for q in queries if "fields" not in q]


class Registry:
    """A CT.gov search API over 20 studies, 5 per page; `changed` are the
    studies updated lately (returned for an updated-since filter)."""

    def __init__(self, site, n=20, per_page=5):
        self.studies = [ctgov_study(f"NCT080000{i:02d}", i) for i in range(n)]
        self.changed: set[int] = set()
        self.per_page = per_page
        self.fail = False
        site.handler = self

    def __call__(self, path: str, headers: dict):
        if not path.startswith(LISTING):
            return None
        if self.fail:
            return Reply(status=500, body=b"down")
        q = parse_qs(urlsplit(path).query)
        pool = [s for i, s in enumerate(self.studies) if "filter.advanced" not in q or i in self.changed]
        start = int(q.get("pageToken", ["0"])[0])
        page = {"studies": pool[start:start + self.per_page]}
        if start + self.per_page < len(pool):
            page["nextPageToken"] = str(start + self.per_page)
        return Reply(body=ctgov_json(page))


def test_ctgov_second_run_fetches_only_what_changed(site, tmp_path):
    registry = Registry(site)
    args = ("-a", f"base_url={site.base}", "-a", "incremental=1", "-a", "page_size=5")
    db = tmp_path / "harvest.sqlite3"

    first = crawl("ctgov", tmp_path, *args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert len(listings(site)) == 4 and all("filter.advanced" not in q for q in listings(site))
    assert first.report["items"] == 20 and first.stats["store/inserted"] == 20
    assert "no watermark" in first.stderr  # the first run is a full crawl
    assert first.report["watermark"] == {"key": "ctgov", "set": True, "value": TODAY, "previous": None}
    with Store(db) as store:
        assert store.get_watermark("ctgov") == TODAY

    # two studies change; pretend the last run was on 2026-01-10
    for i in (3, 17):
        registry.studies[i]["protocolSection"]["identificationModule"]["briefTitle"] += " (amended)"
    registry.changed = {3, 17}
    with Store(db) as store:
        store.set_watermark("ctgov", "2026-01-10")
    site.clear_log()
    second = crawl("ctgov", tmp_path, *args)
    assert second.returncode == 0, second.stderr[-3000:]
    [query] = listings(site)  # one page instead of four
    assert query["filter.advanced"] == ["AREA[LastUpdatePostDate]RANGE[2026-01-08,MAX]"]  # 2 days of overlap
    # robots.txt, /api/v2/version (this API has none: the run searches anyway) and that page
    assert second.stats["downloader/request_count"] == 3
    assert second.stats["ctgov/version_unavailable"] == 1
    assert second.report["items"] == 2 and second.stats["store/updated"] == 2
    assert second.stats["harvester/incremental/since"] == "2026-01-08"
    with Store(db) as store:
        assert store.get_watermark("ctgov") == TODAY
        assert store.count() == 20

    # a run that fails leaves the watermark alone
    with Store(db) as store:
        store.set_watermark("ctgov", "2026-01-10")
    registry.fail = True
    third = crawl("ctgov", tmp_path, *args)
    assert third.returncode == 1, third.stderr[-3000:]  # the failed run exits non-zero
    assert third.report["failed"] and third.report["watermark"]["set"] is False
    assert "failed pages" in third.report["watermark"]["why"]
    with Store(db) as store:
        assert store.get_watermark("ctgov") == "2026-01-10"


def test_ctgov_overlap_is_a_setting_and_an_explicit_date_wins(site, tmp_path):
    # Only the search's dates are under test here: the periodic ID listing
    # (its own tests are in test_ctgov_refresh.py) is turned off.
    Registry(site)
    with Store(tmp_path / "harvest.sqlite3") as store:
        store.set_watermark("ctgov", "2026-03-01")
    run = crawl("ctgov", tmp_path, "-a", f"base_url={site.base}", "-a", "incremental=1", "-a", "page_size=5",
                "-a", "id_listing=0", settings={"HARVEST_INCREMENTAL_OVERLAP_DAYS": "7"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert listings(site)[0]["filter.advanced"] == ["AREA[LastUpdatePostDate]RANGE[2026-02-22,MAX]"]
    site.clear_log()
    with Store(tmp_path / "harvest.sqlite3") as store:
        store.set_watermark("ctgov", "2026-03-01")
    # asked explicitly for a later start than the watermark: fetched, but the watermark is not moved
    run = crawl("ctgov", tmp_path, "-a", f"base_url={site.base}", "-a", "incremental=1",
                "-a", "updated_since=2026-10-01", "-a", "page_size=5", "-a", "id_listing=0")
    assert listings(site)[0]["filter.advanced"] == ["AREA[LastUpdatePostDate]RANGE[2026-10-01,MAX]"]
    assert run.report["watermark"]["set"] is False and "after the watermark" in run.report["watermark"]["why"]


HTML = "text/html; charset=utf-8"


def test_html_sitemap_lastmod_and_conditional_requests(site, tmp_path):
    pages = {i: medpath_page(f"NCT0810000{i}", i) for i in range(6)}
    etags = {i: f'"v1-{i}"' for i in pages}
    modified = "Tue, 06 Jan 2026 10:00:00 GMT"

    def publish(lastmods: dict[int, str | None]) -> None:
        site.script("/sitemap.xml", Reply(body=sitemap_index(site.url("/sitemaps/trials-0.xml")),
                                          content_type="application/xml"))
        site.script("/sitemaps/trials-0.xml", Reply(
            body=sitemap_urlset([(site.url(medpath_path(i)), lastmods[i]) for i in pages]),
            content_type="application/xml"))
        for i, body in pages.items():
            site.script(medpath_path(i), Reply(body=body, content_type=HTML, etag=etags[i],
                                               last_modified=modified))

    args = ("-a", f"base_url={site.base}", "-a", "incremental=1")
    db = tmp_path / "harvest.sqlite3"
    publish({i: "2026-01-05" for i in pages})
    first = crawl("medpath", tmp_path, *args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.report["items"] == 6 and first.report["watermark"]["set"] is True
    study_hits = site.requests_for(lambda p: p.startswith("/clinical-trial/"))
    assert len(study_hits) == 6 and not any("if-none-match" in h.headers for h in study_hits)
    with Store(db) as store:
        assert store.get_validators("medpath", site.url(medpath_path(0))) == ('"v1-0"', modified)
        store.set_watermark("medpath", "2026-01-10")  # pretend the last run was then

    con = sqlite3.connect(db)
    seen_before = dict(con.execute("SELECT url, last_seen_at FROM sources"))
    updated_before = dict(con.execute("SELECT url, updated_at FROM sources"))
    con.close()
    # 0, 1: not modified since long before the watermark; 2, 3: lately, but unchanged;
    # 4: changed; 5: no lastmod in the sitemap
    pages[4] = medpath_page("NCT08100004", 4, title="CAR-T for r/r Malignant Tumors, amended")
    etags[4] = '"v2-4"'
    site.clear_log()
    publish({0: "2025-12-01", 1: "2026-01-07", 2: "2026-01-09", 3: "2026-01-12", 4: "2026-01-12", 5: None})
    second = crawl("medpath", tmp_path, *args)
    assert second.returncode == 0, second.stderr[-3000:]
    report, stats = second.report, second.stats

    fetched = {h.path: h for h in site.requests_for(lambda p: p.startswith("/clinical-trial/"))}
    assert sorted(fetched) == sorted(medpath_path(i) for i in (2, 3, 4, 5))  # 0 and 1 skipped by lastmod
    assert stats["medpath/sitemap_not_modified"] == 2 and report["sitemap_skipped"] == 2
    for i in (2, 3, 4, 5):
        assert fetched[medpath_path(i)].headers["if-none-match"] == f'"v1-{i}"'
        assert fetched[medpath_path(i)].headers["if-modified-since"] == modified
    assert [fetched[medpath_path(i)].status for i in (2, 3, 4, 5)] == [304, 304, 200, 304]
    assert report["not_modified"] == 3 and stats["harvester/conditional_requests"] == 4
    assert report["items"] == 1 and stats["store/updated"] == 1 and not report["failed"]
    con = sqlite3.connect(db)
    seen_after = dict(con.execute("SELECT url, last_seen_at FROM sources"))
    updated_after = dict(con.execute("SELECT url, updated_at FROM sources"))
    con.close()
    for i in (2, 3, 5):  # 304: seen, not rewritten
        url = site.url(medpath_path(i))
        assert seen_after[url] >= seen_before[url] and updated_after[url] == updated_before[url]
    with Store(db) as store:
        assert store.get_validators("medpath", site.url(medpath_path(4)))[0] == '"v2-4"'
        assert store.get_watermark("medpath") == TODAY
        assert store.count() == 6


def _record(url: str) -> SourceRecord:
    r = SourceRecord(site="veeva", url=url, fetched_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
                     nct_id="NCT00000001")
    r.content_hash = content_hash(r)
    return r


def _store_api(store) -> None:
    url = "https://ctv.veeva.com/study/x"
    assert store.get_validators("veeva", url) is None
    assert store.touch("veeva", url) is False
    store.upsert(_record(url))
    store.mark_removed("veeva", url)
    assert store.touch("veeva", url) is True and store.get("veeva", url).removed_at is None
    store.set_validators("veeva", url, '"e1"', None)
    store.set_validators("veeva", url, '"e2"', "Mon, 23 Nov 2026 09:00:00 GMT")
    assert store.get_validators("veeva", url) == ('"e2"', "Mon, 23 Nov 2026 09:00:00 GMT")
    store.set_validators("veeva", url, None, None)
    assert store.get_validators("veeva", url) is None


def test_store_validators_and_touch_sqlite(tmp_path):
    with open_store(str(tmp_path / "s.sqlite3")) as store:
        _store_api(store)


def test_store_validators_and_touch_postgres(postgres_server):  # noqa: F811
    with open_store(postgres_server.new_database("inc")) as store:
        _store_api(store)
