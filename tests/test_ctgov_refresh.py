"""A whole-registry refresh of CT.gov, against a fake API v2 on 127.0.0.1:
1,000-study pages by default, one request at a time."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from _fakesite import FakeSite, Reply, crawl, ctgov_json, ctgov_study

from harvester.store import Store

LISTING = "/api/v2/studies?"


class Registry:
    """CT.gov's search API over `studies` (NCT ID -> study): `pageSize`
    honoured up to the API's 1,000, `pageToken` an offset, `countTotal=true`
    adds `totalCount` to the first page (`total` overrides the true count, to
    play a registry whose count and pages disagree)."""

    def __init__(self, site: FakeSite, studies: dict[str, dict]):
        self.studies = studies
        self.total: int | None = None
        site.handler = self

    def __call__(self, path: str, headers: dict):
        if not path.startswith(LISTING):
            return None
        q = parse_qs(urlsplit(path).query)
        size = min(1000, int(q.get("pageSize", ["10"])[0]))
        start = int(q.get("pageToken", ["0"])[0])
        listed = [self.studies[k] for k in sorted(self.studies)]
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


def listings(site) -> list[dict]:
    return [parse_qs(urlsplit(h.path).query) for h in site.requests_for(lambda p: p.startswith(LISTING))]


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
