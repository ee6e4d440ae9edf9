"""The integrity gate end to end, as the issue found it on a 127.0.0.1
server: a MedPath page served with the site's template and every value
blank, and a CT.gov body reduced to its NCT ID, are kept but quarantined
(reason in the run report, the run failed), the trials stay whole in
canonical.jsonl, and `scrapy accept` makes a checked version current."""
from __future__ import annotations

import json

import lxml.html
import pytest
from _fakesite import MEDPATH_TEMPLATE, FakeSite, Reply, crawl, ctgov_json, ctgov_study, medpath_page, medpath_path

from _project import scrapy
from harvester.commands.harvest import crawl_failures
from harvester.extensions import run_failed
from harvester.store import Store

HTML = "text/html; charset=utf-8"
FULL, REDUCED, MEDPATH_ONLY = "NCT07300001", "NCT07300002", "NCT07300003"


@pytest.fixture
def site():
    s = FakeSite()
    yield s
    s.close()


def blank_template() -> bytes:
    """MedPath's page with its labels and markup but every value blank."""
    doc = lxml.html.fromstring(MEDPATH_TEMPLATE.read_bytes())
    for el in doc.find(".//main").iter():
        if el.tag not in ("h2", "h3"):
            el.text = None
        el.tail = None
    return lxml.html.tostring(doc)


def trials(tmp, name="canonical.jsonl") -> dict:
    run = scrapy(["reconcile", "-O", name], tmp, offline=False)
    assert run.returncode == 0, run.stderr[-2000:]
    return {t["nct_id"]: t for t in map(json.loads, (tmp / name).read_text().splitlines())}


def test_degraded_pages_are_quarantined_and_the_trials_stay_whole(site, tmp_path):
    page = medpath_path(3)
    site.script(f"/api/v2/studies/{FULL}", Reply(body=ctgov_json(ctgov_study(FULL, 1))))
    site.script(f"/api/v2/studies/{REDUCED}", Reply(body=ctgov_json(ctgov_study(REDUCED, 2))))
    site.script(page, Reply(body=medpath_page(MEDPATH_ONLY, 3), content_type=HTML))
    ctgov_args = ("-a", f"base_url={site.base}", "-a", f"nct={FULL},{REDUCED}")
    medpath_args = ("-a", f"base_url={site.base}", "-a", f"urls={site.url(page)}")
    assert crawl("ctgov", tmp_path, *ctgov_args).returncode == 0
    assert crawl("medpath", tmp_path, *medpath_args).returncode == 0
    before = trials(tmp_path, "before.jsonl")
    assert sorted(before) == [FULL, REDUCED, MEDPATH_ONLY]
    assert before[REDUCED]["brief_title"]["value"].endswith("(copy 2)")

    # the site degrades: a CT.gov body with nothing but the NCT ID, a MedPath template left blank
    site.script(f"/api/v2/studies/{REDUCED}", Reply(body=ctgov_json(
        {"protocolSection": {"identificationModule": {"nctId": REDUCED}}})))
    site.script(page, Reply(body=blank_template(), content_type=HTML))
    ctgov = crawl("ctgov", tmp_path, *ctgov_args)
    medpath = crawl("medpath", tmp_path, *medpath_args)

    # each run lists the page with its reason, counts it, and failed
    assert ctgov.report["quarantined"] == [{
        "site": "ctgov", "url": f"https://clinicaltrials.gov/api/v2/studies/{REDUCED}",
        # (the bundled study this one copies names no sponsor, so none was filled)
        "reason": "empties core fields that were filled: brief_title, overall_status, conditions, eligibility"}]
    assert medpath.report["quarantined"] == [{
        "site": "medpath", "url": site.url(page),
        "reason": f"loses its NCT ID (current version: {MEDPATH_ONLY})"}]
    for run in (ctgov, medpath):
        assert run.report["quarantined_count"] == 1 and run.report["store"]["quarantined"] == 1
        assert run_failed(run.report)
        assert "1 pages quarantined by the integrity gate" in run.report["failure_reasons"]
        assert "quarantined" in run.stderr
        # scrapy harvest exits 1 on the same rule
        assert crawl_failures(run.stats, _Settings()) != []
    assert ctgov.report["store"].get("unchanged") == 1  # the other study, served as before

    # nothing lost, nothing replaced: the canonical records are the same bytes as before
    after = trials(tmp_path, "after.jsonl")
    assert (tmp_path / "after.jsonl").read_bytes() == (tmp_path / "before.jsonl").read_bytes()
    assert sorted(after) == [FULL, REDUCED, MEDPATH_ONLY]
    with Store(tmp_path / "harvest.sqlite3") as store:
        assert store.count("versions") == 5  # both degraded versions kept
        held = {(q["site"], q["seq"]) for q in store.quarantined()}
    assert held == {("ctgov", 2), ("medpath", 2)}

    # the same degraded page again: still quarantined, still failing, no third version
    again = crawl("medpath", tmp_path, *medpath_args)
    assert again.report["quarantined_count"] == 1 and run_failed(again.report)

    # a person checked: MedPath really blanked the page; accept it
    listed = scrapy(["accept", "--list"], tmp_path, offline=False)
    assert [json.loads(line)["url"] for line in listed.stdout.splitlines()] == [
        f"https://clinicaltrials.gov/api/v2/studies/{REDUCED}", site.url(page)]
    run = scrapy(["accept", site.url(page)], tmp_path, offline=False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "accepted medpath" in run.stderr and "version 2" in run.stderr
    accepted = trials(tmp_path, "accepted.jsonl")
    assert sorted(accepted) == [FULL, REDUCED]  # the page says nothing now: its trial is gone
    assert accepted[REDUCED] == before[REDUCED]  # the CT.gov one is still held back
    unlinked = [json.loads(line) for line in (tmp_path / "unlinked.jsonl").read_text().splitlines()]
    assert [u["url"] for u in unlinked] == [site.url(page)]
    assert scrapy(["accept", site.url(page)], tmp_path, offline=False).returncode == 1  # nothing left to accept
    with Store(tmp_path / "harvest.sqlite3") as store:
        assert store.count("versions") == 5


class _Settings(dict):
    def getbool(self, name, default=False):
        return {"RETRY_ENABLED": True}.get(name, default)

    def getlist(self, name, default=None):
        return {"RETRY_HTTP_CODES": [500, 502, 503, 504, 429], "RETRY_EXCEPTIONS": []}.get(name, default or [])
