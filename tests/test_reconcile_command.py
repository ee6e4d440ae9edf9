"""`scrapy reconcile` and `scrapy harvest` as a user runs them (subprocess,
offline), and the rule that decides a harvest's exit status."""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from scrapy.settings import Settings

from harvester.commands.harvest import crawl_failures
from harvester.store import Store
from items import NESTED_FIELDS, SourceRecord, Trial
from pipelines.validate import content_hash
from tests._project import scrapy

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
TITLE_003 = ("Chimeric Antigen Receptor (CAR)-Modified T Cell Therapy in Treating Patients With "
             "Acute Lymphoblastic Leukemia")


def rec(site, url, **fields) -> SourceRecord:
    r = SourceRecord(site=site, url=url, fetched_at=T0, **fields)
    r.content_hash = content_hash(r)
    return r


def fill_store(tmp: Path) -> None:
    tmp.mkdir(parents=True, exist_ok=True)
    with Store(tmp / "harvest.sqlite3") as store:
        for r in [
            rec("veeva", "https://ctv.veeva.com/study/car-t-all", nct_id="NCT02186860", brief_title=TITLE_003,
                phases=["PHASE1"], lead_sponsor={"name": "Affiliated Hospital to Academy of Military Medical Sciences"}),
            rec("ctgov", "https://clinicaltrials.gov/api/v2/studies/NCT02186860", nct_id="NCT02186860",
                brief_title=TITLE_003, phases=["PHASE1"],
                lead_sponsor={"name": "Affiliated Hospital to Academy of Military Medical Sciences"}),
            rec("medpath", "https://trial.medpath.com/clinical-trial/50b4028075e01462/x", nct_id="NCT04691349",
                brief_title="CAR-T for r/r Malignant Tumors in Children", phases=["EARLY_PHASE1"]),
            rec("clinconnect", "https://clinconnect.io/trials/seed-000",
                brief_title="Clinical Study of CAR-T Technology for the Treatment of Relapsed Refractory "
                            "Malignant Haematological Tumours", lead_sponsor={"name": "SHANXI BETHUNE HOSPITAL"}),
        ]:
            store.upsert(r)


def lines(data: bytes | str) -> list[dict]:
    if isinstance(data, str):
        data = data.encode()
    return [json.loads(x) for x in data.splitlines()]


def test_reconcile_writes_sorted_trials_and_unlinked_beside_them(tmp_path):
    fill_store(tmp_path)
    run = scrapy(["reconcile", "-O", "out/canonical.jsonl"], tmp_path, offline=False)
    assert run.returncode == 0, run.stderr
    trials = lines((tmp_path / "out" / "canonical.jsonl").read_bytes())
    assert [t["nct_id"] for t in trials] == ["NCT02186860", "NCT04691349"]
    assert [s["site"] for s in trials[0]["sources"]] == ["ctgov", "veeva"]
    (unlinked,) = lines((tmp_path / "out" / "unlinked.jsonl").read_bytes())
    assert unlinked["url"] == "https://clinconnect.io/trials/seed-000"
    assert "'reconcile/trials': 2" in run.stderr and "'reconcile/unlinked': 1" in run.stderr
    assert not list((tmp_path / "out").glob(".*.tmp"))  # no temporary files left


def test_reconcile_to_stdout_is_byte_identical_to_the_file_and_reruns(tmp_path):
    fill_store(tmp_path)
    a = scrapy(["reconcile", "-O", "a.jsonl"], tmp_path, offline=False)
    b = scrapy(["reconcile", "-O", "b.jsonl", "--unlinked", "elsewhere/u.jsonl"], tmp_path, offline=False)
    c = scrapy(["reconcile", "-O", "-", "--unlinked", "c-unlinked.jsonl"], tmp_path, offline=False)
    assert a.returncode == b.returncode == c.returncode == 0, (a.stderr, b.stderr, c.stderr)
    first = (tmp_path / "a.jsonl").read_bytes()
    assert first and (tmp_path / "b.jsonl").read_bytes() == first
    assert c.stdout.encode() == first  # nothing but the trials on stdout
    assert (tmp_path / "elsewhere" / "u.jsonl").read_bytes() == (tmp_path / "unlinked.jsonl").read_bytes()
    assert (tmp_path / "c-unlinked.jsonl").read_bytes() == (tmp_path / "unlinked.jsonl").read_bytes()


def test_reconcile_refuses_a_missing_store_and_a_missing_output(tmp_path):
    run = scrapy(["reconcile", "-O", "x.jsonl"], tmp_path, offline=False)
    assert run.returncode != 0 and "no store at" in run.stderr
    assert not (tmp_path / "x.jsonl").exists() and not (tmp_path / "harvest.sqlite3").exists()
    fill_store(tmp_path)
    run = scrapy(["reconcile"], tmp_path, offline=False)
    assert run.returncode == 2 and "-O FILE is required" in run.stderr


# --- harvest -----------------------------------------------------------------------

DEMO_SPIDERS = r'''
import re
from datetime import datetime, timezone
from harvester.sites import Site
from spiders.base import HarvestSpider
from spiders.pages import StudyPage
from items import SourceRecord

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


def event(text):
    with open("events.log", "a") as fh:
        fh.write(text + "\n")


class DemoPage(StudyPage):
    pass


class BrokenPage(StudyPage):
    pass


DEMO = Site(name="demo", page=DemoPage, base="https://demo.example", domains=("demo.example",),
            study_url=re.compile(r"^https://demo\.example/"), offline={"nct": "NCT02186860", "title": "offline title"})
BROKEN = Site(name="broken", page=BrokenPage, base="https://broken.example", domains=("broken.example",),
              study_url=re.compile(r"^https://broken\.example/"), offline={"nct": "NCT04691349"})


class DemoSpider(HarvestSpider):
    name = site = "demo"

    def __init__(self, nct=None, title="live title", incremental=None, *a, **kw):
        super().__init__(*a, **kw)
        self.nct, self.title, self.incremental = nct, title, incremental

    async def start(self):
        event(f"start {self.name}")
        yield SourceRecord(site=self.site, url=f"https://demo.example/{self.nct}", fetched_at=T0,
                           nct_id=self.nct, brief_title=f"{self.title} incremental={self.incremental}")

    def closed(self, reason):
        event(f"closed {self.name}")


class BrokenSpider(HarvestSpider):
    name = site = "broken"

    def __init__(self, nct=None, *a, **kw):
        super().__init__(*a, **kw)
        self.nct = nct

    def closed(self, reason):
        event(f"closed {self.name}")

    async def start(self):
        event(f"start {self.name}")
        self.crawler.stats.inc_value("harvester/parse_error/broken")
        yield SourceRecord(site=self.site, url=f"https://broken.example/{self.nct}", fetched_at=T0,
                           nct_id=self.nct, brief_title="what could be read")
'''


def harvest(tmp: Path, *args: str):
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "demo_spiders.py").write_text(DEMO_SPIDERS)
    return scrapy(["harvest", *args, "-s", "SPIDER_MODULES=demo_spiders"], tmp, offline=False)


def test_harvest_offline_passes_each_spiders_offline_args_and_reconciles(tmp_path):
    run = harvest(tmp_path, "--offline", "--spiders", "demo", "-a", "incremental=1", "-O", "canonical.jsonl")
    assert run.returncode == 0, run.stderr
    (trial,) = lines((tmp_path / "canonical.jsonl").read_bytes())
    assert trial["nct_id"] == "NCT02186860"
    assert trial["brief_title"]["value"] == "offline title incremental=1"
    assert (tmp_path / "unlinked.jsonl").read_bytes() == b""
    assert "'reconcile/trials': 1" in run.stderr


def test_harvest_live_arguments_and_all_spiders_by_default(tmp_path):
    # no --offline: the offline arguments are not used, -a goes to every spider
    run = harvest(tmp_path, "-a", "nct=NCT09990001", "-O", "-")
    trials = lines(run.stdout)
    assert [t["nct_id"] for t in trials] == ["NCT09990001"]
    assert {s["site"] for s in trials[0]["sources"]} == {"demo", "broken"}
    # neither site is in the precedence: alphabetical, "broken" first
    assert trials[0]["brief_title"]["site"] == "broken"
    (c,) = trials[0]["conflicts"]
    assert [v["value"] for v in c["values"]] == ["what could be read", "live title incremental=None"]
    assert run.returncode == 1  # "broken" counts a parse error


def test_harvest_exits_non_zero_when_a_spider_failed_and_still_writes(tmp_path):
    run = harvest(tmp_path, "--offline", "-O", "canonical.jsonl")
    assert run.returncode == 1
    # one after another, in alphabetical order by default
    assert (tmp_path / "events.log").read_text().split("\n") == [
        "start broken", "closed broken", "start demo", "closed demo", ""]
    assert "spider broken failed: 1 parse errors" in run.stderr
    assert "spider demo failed" not in run.stderr
    assert [t["nct_id"] for t in lines((tmp_path / "canonical.jsonl").read_bytes())] == ["NCT02186860",
                                                                                         "NCT04691349"]


def test_harvest_runs_spiders_in_the_order_given_or_together(tmp_path):
    run = harvest(tmp_path / "a", "--offline", "--spiders", "demo,broken", "-O", "c.jsonl")
    assert run.returncode == 1
    assert (tmp_path / "a" / "events.log").read_text().split("\n")[:3] == ["start demo", "closed demo",
                                                                          "start broken"]
    run = harvest(tmp_path / "b", "--offline", "--together", "-O", "c.jsonl")
    assert run.returncode == 1
    events = (tmp_path / "b" / "events.log").read_text().split("\n")
    assert events[:2] == ["start broken", "start demo"] or events[:2] == ["start demo", "start broken"]
    assert (tmp_path / "b" / "c.jsonl").read_bytes() == (tmp_path / "a" / "c.jsonl").read_bytes()


def test_harvest_rejects_unknown_spiders(tmp_path):
    run = harvest(tmp_path, "--spiders", "demo,nope", "-O", "x.jsonl")
    assert run.returncode == 2 and "unknown spiders: nope" in run.stderr


# --- the exit-status rule ----------------------------------------------------------------

SETTINGS = Settings({"RETRY_ENABLED": True, "RETRY_HTTP_CODES": [500, 502, 503, 504, 522, 524, 408, 429],
                     "RETRY_EXCEPTIONS": ["scrapy.exceptions.DownloadTimeoutError",
                                          "twisted.internet.error.ConnectError", OSError]})
CLEAN = {"finish_reason": "finished", "log_count/ERROR": 3,  # errors logged about handled things
         "downloader/response_status_count/200": 40,
         "downloader/response_status_count/404": 2,  # pages gone: marked removed in the store
         "downloader/response_status_count/503": 1,  # retried, then fine
         "retry/count": 1,
         "downloader/exception_type_count/scrapy.exceptions.DownloadTimeoutError": 1,  # retried
         "downloader/exception_type_count/scrapy.exceptions.IgnoreRequest": 1}  # robots.txt


@pytest.mark.parametrize("extra, reason", [
    ({}, None),
    ({"finish_reason": "closespider_itemcount"}, None),
    ({"finish_reason": "shutdown"}, "finish_reason=shutdown"),
    ({"harvester/parse_error/veeva": 2}, "2 parse errors"),
    ({"spider_exceptions/count": 1}, "1 spider exceptions"),
    ({"retry/max_reached": 1}, "1 requests failed after their retries"),
    ({"harvester/failed_pages": 2}, "2 failed pages"),
    ({"harvester/drift": 1, "harvester/drift_fields": [{"field": "conditions", "baseline": 1.0, "current": 0.1}]},
     "layout drift: conditions"),
    ({"vcr/miss": 4}, "4 requests missing from the cassette"),
    ({"downloader/response_status_count/403": 5}, "5 responses with status 403"),
    ({"downloader/exception_type_count/scrapy.exceptions.NotSupported": 1},
     "1 download errors scrapy.exceptions.NotSupported"),
    # a cassette miss is an IgnoreRequest, and counted by vcr/miss
    ({"downloader/exception_type_count/harvester.middlewares.CassetteMiss": 1, "vcr/miss": 1},
     "1 requests missing from the cassette"),
])
def test_crawl_failure_rule(extra, reason):
    reasons = crawl_failures({**CLEAN, **extra}, SETTINGS)
    assert reasons == ([reason] if reason else [])


def test_expected_statuses_are_a_setting():
    stats = {**CLEAN, "downloader/response_status_count/403": 1}
    settings = Settings({**SETTINGS.copy_to_dict(), "HARVEST_EXPECTED_HTTP_STATUSES": [403, 404, 410]})
    assert crawl_failures(stats, settings) == []


# --- golden records of the offline demo -------------------------------------------------

GOLDEN = Path(__file__).resolve().parent / "golden"
GOLDEN_TRIALS = sorted(p.stem for p in GOLDEN.glob("NCT*.json"))
HASH = re.compile(r"[0-9a-f]{64}")


@pytest.fixture(scope="module")
def offline_demo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("offline-demo")
    run = scrapy(["harvest", "--offline", "-O", "canonical.jsonl"], tmp, offline=False, timeout=300)
    assert (tmp / "canonical.jsonl").exists(), run.stderr
    trials = {t["nct_id"]: t for t in lines((tmp / "canonical.jsonl").read_bytes())}
    unlinked = lines((tmp / "unlinked.jsonl").read_bytes())
    with Store(tmp / "harvest.sqlite3") as store:
        nctless = [s.record for s in store.iter_sources() if s.record.nct_id is None]
    return trials, unlinked, nctless


def test_golden_files_cover_the_demo_trials():
    assert GOLDEN_TRIALS == ["NCT02186860", "NCT02513394", "NCT04008524", "NCT04691349"]


@pytest.mark.parametrize("nct", GOLDEN_TRIALS)
def test_offline_demo_trial_matches_its_golden_record_field_by_field(offline_demo, nct):
    trials, _, _ = offline_demo
    golden = json.loads((GOLDEN / f"{nct}.json").read_text(encoding="utf-8"))
    actual = json.loads(json.dumps(trials[nct]))
    for source in actual["sources"]:
        assert HASH.fullmatch(source["content_hash"]), source
        source["content_hash"] = "<sha256>"
    assert list(actual) == list(golden) == list(Trial.model_fields)
    for field in Trial.model_fields:
        if field in NESTED_FIELDS:
            assert list(actual[field]) == list(NESTED_FIELDS[field])
            for sub in NESTED_FIELDS[field]:
                assert actual[field][sub] == golden[field][sub], f"{nct} {field}.{sub}"
        else:
            assert actual[field] == golden[field], f"{nct} {field}"


def test_offline_demo_has_the_issue_trials_and_every_nct_less_page(offline_demo):
    trials, unlinked, nctless = offline_demo
    sites = {nct: {s["site"] for s in trials[nct]["sources"]} for nct in trials}
    assert {"ctgov", "medpath"} <= sites["NCT04691349"]
    assert {"ctgov", "veeva"} <= sites["NCT02186860"]
    assert "ctgov" in sites["NCT04008524"]
    # seed 000 (ClinConnect) and seed 002 (Veeva): linked with method and score, or unlinked
    assert {r.site for r in nctless} >= {"clinconnect", "veeva"}
    unlinked_urls = {u["url"] for u in unlinked}
    linked = {s["url"]: s["link"] for t in trials.values() for s in t["sources"]
              if s["link"]["method"].startswith("fuzzy")}
    for record in nctless:
        if record.url in linked:
            assert linked[record.url]["score"] is not None and linked[record.url]["evidence"]
        else:
            assert record.url in unlinked_urls
    assert len(unlinked) + len(linked) == len(nctless)


# --- harvest and the layout-drift alarm, end to end ----------------------------------------

def test_harvest_exits_non_zero_when_layout_drift_fires(tmp_path):
    small = ["-s", "HARVEST_DRIFT_MIN_ITEMS=1"]
    first = scrapy(["harvest", "--offline", "--spiders", "veeva", "-O", "c.jsonl", *small], tmp_path, offline=False)
    assert first.returncode == 0, first.stderr[-3000:]
    baseline = json.loads((tmp_path / "baselines" / "veeva.json").read_text())
    assert baseline["rates"]["nct_id"] == 0.75  # 3 of the 4 demo pages print their NCT ID
    # The same pages against their own baseline: no drift.
    again = scrapy(["harvest", "--offline", "--spiders", "veeva", "-O", "c.jsonl", *small], tmp_path, offline=False)
    assert again.returncode == 0, again.stderr[-3000:]
    # A baseline in which every page had a filled lay_summary, as if the site
    # had since renamed that section's label: the same crawl now fails.
    baseline["rates"]["lay_summary"] = 1.0
    (tmp_path / "baselines" / "veeva.json").write_text(json.dumps(baseline))
    drifted = scrapy(["harvest", "--offline", "--spiders", "veeva", "-O", "c.jsonl", *small], tmp_path, offline=False)
    assert drifted.returncode == 1
    assert "layout drift: lay_summary" in drifted.stderr
    assert drifted.report("veeva")["drift"][0]["field"] == "lay_summary"
    # the output is still written from what the store holds
    assert len(lines((tmp_path / "c.jsonl").read_bytes())) == 3
