"""A whole-registry refresh of CT.gov, against a fake API v2 on 127.0.0.1:
1,000-study pages by default, one request at a time."""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
from _fakesite import FakeSite, Reply, crawl, ctgov_json, ctgov_study
from _project import scrapy

from harvester.store import Store, as_timestamp

LISTING = "/api/v2/studies?"
TODAY = datetime.now(timezone.utc).date().isoformat()


class Registry:
    """CT.gov's API v2 over `studies` (NCT ID -> study), as the spider uses it:

    * `/api/v2/studies?...`: `pageSize` honoured up to the API's 1,000,
      `pageToken` an offset, `countTotal=true` adds `totalCount` to the first
      page (`total` overrides the true count, to play a registry whose count
      and pages disagree), `fields=NCTId` gives only the IDs, an updated-since
      filter (`filter.advanced`) only the studies in `changed`; `unlisted`
      studies are left off every page (a registry whose pages skip some);
    * `/api/v2/studies/<NCT>`: the study, or 404 (gone);
    * `/api/v2/version`: `{"apiVersion", "dataTimestamp": stamp}` (404 when
      `stamp` is None)."""

    def __init__(self, site: FakeSite, studies: dict[str, dict]):
        self.studies = studies
        self.total: int | None = None
        self.changed: set[str] = set()
        self.unlisted: set[str] = set()
        self.stamp: str | None = "2026-11-23T09:00:00"
        site.handler = self

    def __call__(self, path: str, headers: dict):
        if path == "/api/v2/version":
            if self.stamp is None:
                return None
            return Reply(body=ctgov_json({"apiVersion": "2.0.0", "dataTimestamp": self.stamp}))
        if path.startswith("/api/v2/studies/"):
            study = self.studies.get(path.rsplit("/", 1)[1])
            return Reply(body=ctgov_json(study)) if study else None
        if not path.startswith(LISTING):
            return None
        q = parse_qs(urlsplit(path).query)
        size = min(1000, int(q.get("pageSize", ["10"])[0]))
        start = int(q.get("pageToken", ["0"])[0])
        keys = [k for k in sorted(self.studies) if k not in self.unlisted
                and ("filter.advanced" not in q or k in self.changed)]
        if q.get("fields") == ["NCTId"]:
            listed = [{"protocolSection": {"identificationModule": {"nctId": k}}} for k in keys]
        else:
            listed = [self.studies[k] for k in keys]
        page = {"studies": listed[start:start + size]}
        if start + size < len(listed):
            page["nextPageToken"] = str(start + size)
        if q.get("countTotal") == ["true"] and "pageToken" not in q:
            page["totalCount"] = len(listed) if self.total is None else self.total
        return Reply(body=ctgov_json(page))


@pytest.fixture
def site():
    s = FakeSite()
    yield s
    s.close()


def listings(site, ids: bool = False) -> list[dict]:
    """The search pages asked for (`ids`: the pages of the ID listing instead)."""
    queries = [parse_qs(urlsplit(h.path).query) for h in site.requests_for(lambda p: p.startswith(LISTING))]
    return [q for q in queries if ("fields" in q) == ids]


def registry_of(site, n: int, prefix: str = "NCT0810") -> Registry:
    return Registry(site, {f"{prefix}{i:04d}": ctgov_study(f"{prefix}{i:04d}", i) for i in range(n)})


def test_a_search_asks_for_pages_of_1000_studies_by_default(site, tmp_path):
    registry_of(site, 1001)
    run = crawl("ctgov", tmp_path, "-a", f"base_url={site.base}", "-a", "cond=refresh", timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    pages = listings(site)
    assert [q["pageSize"] for q in pages] == [["1000"], ["1000"]]
    assert [q.get("pageToken") for q in pages] == [None, ["1000"]]
    assert run.report["items"] == 1001 and run.stats["ctgov/pages"] == 2
    with Store(tmp_path / "harvest.sqlite3") as store:
        assert store.count() == 1001


def test_one_request_at_a_time_stays_the_rule():
    from scrapy.settings import Settings

    from harvester import settings as project_settings
    from spiders.ctgov import CtgovSpider

    settings = Settings()
    settings.setmodule(project_settings)
    CtgovSpider.update_settings(settings)
    assert settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN") == 1
    assert settings.getfloat("DOWNLOAD_DELAY") >= 1.0


# --- completeness: expected (countTotal) vs stored ------------------------------------------------
def removed_marks(db) -> dict[str, str | None]:
    con = sqlite3.connect(db)
    try:
        return dict(con.execute("SELECT nct_id, removed_at FROM sources WHERE site='ctgov'"))
    finally:
        con.close()


def test_count_total_higher_than_stored_names_the_missing_and_fails_the_run(site, tmp_path):
    registry = registry_of(site, 30)
    # one study the parser cannot take (a negative enrollment count), three the pages never list
    registry.studies["NCT08100007"]["protocolSection"]["designModule"]["enrollmentInfo"] = {"count": -5}
    registry.total = 33
    run = crawl("ctgov", tmp_path, "-a", f"base_url={site.base}", "-a", "page_size=10")
    assert run.returncode == 1, run.stderr[-3000:]  # the failed run says so in its exit status
    assert listings(site)[0]["countTotal"] == ["true"]
    assert all("countTotal" not in q for q in listings(site)[1:])  # the API counts on the first page only
    found = run.report["completeness"]
    assert found["expected"] == 33 and found["listed"] == 30 and found["stored"] == 29
    assert found["missing"] == ["NCT08100007"] and found["unlisted"] == 3
    assert found["complete"] is False
    assert run.stats["harvester/incomplete"] == 4
    assert run.report["failed"]
    assert any("store lacks" in r for r in run.report["failure_reasons"])
    assert run.report["watermark"]["set"] is False  # the next run asks again
    assert "completeness: expected 33, listed 30, stored 29; missing 1: NCT08100007" in run.stderr


def test_count_total_lower_than_stored_the_studies_gone_are_marked_removed_not_deleted(site, tmp_path):
    registry = registry_of(site, 20)
    first = crawl("ctgov", tmp_path, "-a", f"base_url={site.base}", "-a", "page_size=10")
    assert first.returncode == 0 and first.report["completeness"]["complete"], first.stderr[-3000:]
    assert first.report["completeness"]["expected"] == 20
    # two studies leave the registry's listing: one is gone (404 by ID), one is
    # still served by ID (a listing that skipped it must not remove it)
    gone, skipped = "NCT08100004", "NCT08100011"
    del registry.studies[gone]
    registry.unlisted = {skipped}
    site.clear_log()
    second = crawl("ctgov", tmp_path, "-a", f"base_url={site.base}", "-a", "page_size=10")
    assert second.returncode == 0, second.stderr[-3000:]
    found = second.report["completeness"]
    assert found["expected"] == 18 and found["stored"] == 18 and found["missing"] == []
    registry_check = found["registry"]
    assert registry_check["listed_by"] == "search" and registry_check["store_before"] == 20
    assert registry_check["unlisted"] == 2
    assert registry_check["removed"] == [gone] and registry_check["still_served"] == [skipped]
    assert site.count(lambda p: p == f"/api/v2/studies/{gone}") == 1
    assert site.count(lambda p: p == f"/api/v2/studies/{skipped}") == 1
    assert found["complete"] and not second.report["failed"]
    marks = removed_marks(tmp_path / "harvest.sqlite3")
    assert len(marks) == 20  # never deleted
    assert marks[gone] is not None and marks[skipped] is None
    assert [n for n, when in marks.items() if when] == [gone]


def test_the_id_listing_of_an_incremental_run_finds_a_study_that_left_the_registry(site, tmp_path):
    registry = registry_of(site, 25)
    db = tmp_path / "harvest.sqlite3"
    first = crawl("ctgov", tmp_path, "-a", f"base_url={site.base}", "-a", "incremental=1", "-a", "page_size=10")
    assert first.returncode == 0 and not first.report["failed"], first.stderr[-3000:]
    assert listings(site, ids=True) == []  # a full search lists every ID itself
    with Store(db) as store:
        assert store.get_watermark("ctgov id listing") == TODAY
        # a week later: the listing is due again; the last run was on 2026-01-10
        store.set_watermark("ctgov id listing", "2026-01-01")
        store.set_watermark("ctgov", "2026-01-10")
    gone = "NCT08100013"
    del registry.studies[gone]  # not in any search, not by ID either
    registry.changed = {"NCT08100002"}
    registry.stamp = "2026-11-24T09:00:00"
    site.clear_log()
    run = crawl("ctgov", tmp_path, "-a", f"base_url={site.base}", "-a", "incremental=1", "-a", "page_size=10")
    assert run.returncode == 0, run.stderr[-3000:]
    [search] = listings(site)
    assert search["filter.advanced"] == ["AREA[LastUpdatePostDate]RANGE[2026-01-08,MAX]"]
    pages = listings(site, ids=True)
    assert [(q["fields"], q["pageSize"], q.get("countTotal"), q.get("pageToken")) for q in pages] == [
        (["NCTId"], ["1000"], ["true"], None)]  # 24 IDs: one light page
    found = run.report["completeness"]
    assert found["expected"] == 1 and found["stored"] == 1
    check = found["registry"]
    assert check["listed_by"] == "id listing" and check["listed"] == 24 and check["expected"] == 24
    assert check["removed"] == [gone] and check["missing"] == [] and check["stored"] == 24
    assert not run.report["failed"], run.report["failure_reasons"]
    assert removed_marks(db)[gone] is not None
    assert run.stats["store/marked_removed"] == 1
    with Store(db) as store:
        assert store.get_watermark("ctgov id listing") == TODAY
        assert store.count() == 25


def test_a_study_the_id_listing_found_gone_is_a_trial_gone_line_in_the_change_feed(site, tmp_path):
    registry = registry_of(site, 5)
    db = tmp_path / "harvest.sqlite3"
    first = crawl("ctgov", tmp_path, "-a", f"base_url={site.base}", "-a", "incremental=1")
    assert first.returncode == 0 and not first.report["failed"], first.stderr[-3000:]
    with Store(db) as store:
        store.set_watermark("ctgov id listing", "2026-01-01")  # the listing is due
        store.set_watermark("ctgov", "2026-01-10")
    gone = "NCT08100003"
    del registry.studies[gone]  # off the ID listing, and 404 by its ID
    registry.changed = {"NCT08100001"}  # the search sees one study, unchanged: no change of its own
    registry.stamp = "2026-11-24T09:00:00"
    site.clear_log()
    since = datetime.now(timezone.utc).isoformat()
    run = crawl("ctgov", tmp_path, "-a", f"base_url={site.base}", "-a", "incremental=1")
    until = datetime.now(timezone.utc).isoformat()
    assert run.returncode == 0 and not run.report["failed"], run.stderr[-3000:]
    assert listings(site, ids=True) and site.count(lambda p: p == f"/api/v2/studies/{gone}") == 1
    assert run.report["completeness"]["registry"]["removed"] == [gone]
    feed = scrapy(["changes", "--since", since, "--until", until, "-O", "changes.jsonl"], tmp_path, offline=False)
    assert feed.returncode == 0, feed.stderr[-3000:]
    url = f"https://clinicaltrials.gov/api/v2/studies/{gone}"  # the URL a CT.gov study is stored under
    with Store(db) as store:
        [interval] = store.gone_intervals("ctgov", url)
        versions = store.versions(nct_ids=[gone])
        assert store.count() == 5  # never deleted
    assert interval["back_at"] is None and as_timestamp(since) < interval["gone_at"] < as_timestamp(until)
    lines = [json.loads(line) for line in (tmp_path / "changes.jsonl").read_text().splitlines()]
    assert lines == [{"nct_id": gone, "field": None, "change": "trial_gone", "key": None, "old": None,
                      "new": None, "site": "ctgov", "url": url, "observed_at": interval["gone_at"]}]
    assert "1 (trial_gone 1)" in feed.stderr
    # its one version is still in the store, as it was read
    assert [(v["seq"], v["nct_id"], v["url"]) for v in versions] == [(1, gone, url)]
    with Store(db) as store:
        kept = store.get("ctgov", url)
        body = json.loads(store.get_body("ctgov", url, seq=1))
    assert kept.record.nct_id == gone and kept.removed_at == interval["gone_at"]
    assert body["protocolSection"]["identificationModule"]["nctId"] == gone


def test_a_listing_shorter_than_its_own_count_removes_nothing(site, tmp_path):
    registry = registry_of(site, 12)
    first = crawl("ctgov", tmp_path, "-a", f"base_url={site.base}", "-a", "page_size=5")
    assert first.returncode == 0, first.stderr[-3000:]
    registry.unlisted = {"NCT08100003"}
    registry.total = 12  # the count still has it: the listing lost one on the way
    del registry.studies["NCT08100003"]
    run = crawl("ctgov", tmp_path, "-a", f"base_url={site.base}", "-a", "page_size=5")
    check = run.report["completeness"]["registry"]
    assert "named 11 of the 12 studies" in check["refused"]
    assert site.count(lambda p: p == "/api/v2/studies/NCT08100003") == 0
    assert all(when is None for when in removed_marks(tmp_path / "harvest.sqlite3").values())
    assert run.report["failed"] and run.stats["harvester/listing_refused"] == 1


def test_an_incremental_run_ends_at_once_when_the_data_timestamp_has_not_moved(site, tmp_path):
    registry = registry_of(site, 8)
    db = tmp_path / "harvest.sqlite3"
    first = crawl("ctgov", tmp_path, "-a", f"base_url={site.base}", "-a", "incremental=1")
    assert first.returncode == 0 and not first.report["failed"], first.stderr[-3000:]
    with Store(db) as store:
        assert store.get_watermark("ctgov dataTimestamp") == "2026-11-23T09:00:00"
        store.set_watermark("ctgov", "2026-01-10")
    site.clear_log()
    same = crawl("ctgov", tmp_path, "-a", f"base_url={site.base}", "-a", "incremental=1")
    assert same.returncode == 0, same.stderr[-3000:]
    assert [h.path for h in site.requests_for(lambda p: p.startswith("/api/"))] == ["/api/v2/version"]
    assert same.report["completeness"]["skipped"].startswith(
        "the registry's data (dataTimestamp 2026-11-23T09:00:00) has not changed")
    assert not same.report["failed"] and same.report["items"] == 0
    assert same.report["watermark"] == {"key": "ctgov", "set": False, "value": "2026-01-10",
                                        "why": same.report["completeness"]["skipped"]}
    assert "skipped: the registry's data" in same.stderr
    # the registry moves on: the next run searches
    registry.stamp, registry.changed = "2026-11-24T09:00:00", {"NCT08100001"}
    site.clear_log()
    moved = crawl("ctgov", tmp_path, "-a", f"base_url={site.base}", "-a", "incremental=1")
    assert moved.returncode == 0 and moved.report["items"] == 1, moved.stderr[-3000:]
    assert len(listings(site)) == 1
    with Store(db) as store:
        assert store.get_watermark("ctgov dataTimestamp") == "2026-11-24T09:00:00"
