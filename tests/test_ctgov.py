"""ClinicalTrials.gov API v2 spider.

Golden values below were read by hand from the real API body
(`cassettes/src/ctgov/study_NCT02513394.json`, PALLAS) and from the seed page
texts the assembled records were carried over from.
"""
import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from scrapy.http import Request, TextResponse

from harvester.store import Store
from spiders.ctgov import CtgovSpider, parse_study, parse_study_response, salvage_studies
from tests._project import CASSETTES, scrapy

SRC = CASSETTES / "src" / "ctgov"
DATE = b"Mon, 23 Nov 2026 09:00:00 GMT"


def response_for(path: Path, url: str) -> TextResponse:
    return TextResponse(url=url, body=path.read_bytes(), headers={"Date": DATE},
                        encoding="utf-8", request=Request(url))


@pytest.fixture(scope="module")
def pallas():
    url = "https://clinicaltrials.gov/api/v2/studies/NCT02513394"
    return parse_study_response(response_for(SRC / "study_NCT02513394.json", url))


def test_pallas_identity_and_design(pallas):
    assert pallas.site == "ctgov"
    assert pallas.url == "https://clinicaltrials.gov/api/v2/studies/NCT02513394"
    assert pallas.fetched_at.isoformat() == "2026-11-23T09:00:00+00:00"  # the recorded Date header
    assert pallas.nct_id == "NCT02513394"
    assert pallas.brief_title == "PALbociclib CoLlaborative Adjuvant Study"
    assert pallas.official_title.startswith(
        "PALbociclib CoLlaborative Adjuvant Study: A Randomized Phase III Trial of Palbociclib")
    assert pallas.overall_status == "ACTIVE_NOT_RECRUITING"
    assert pallas.phases == ["PHASE3"]
    assert pallas.study_type == "INTERVENTIONAL"
    assert pallas.enrollment.model_dump() == {"count": 5796, "type": "ACTUAL"}
    assert pallas.conditions == ["Breast Cancer"]


def test_pallas_identifiers(pallas):
    ids = [(i.id, i.kind, i.domain) for i in pallas.secondary_ids]
    assert ids == [
        ("AFT-05", "ORG", "Alliance Foundation Trials, LLC."),
        ("ABCSG 42", "OTHER", "ABCSG GmbH"),
        ("BIG 14-03", "OTHER", "Breast International Group"),
        ("2014-005181-30", "EUDRACT", None),
    ]


def test_pallas_sponsors_and_interventions(pallas):
    assert pallas.lead_sponsor.model_dump(by_alias=True) == {
        "name": "Alliance Foundation Trials, LLC.", "class": "OTHER"}
    assert [c.name for c in pallas.collaborators] == [
        "Austrian Breast & Colorectal Cancer Study Group", "NSABP Foundation Inc", "PrECOG, LLC.",
        "Breast International Group", "Pfizer"]
    assert [c.class_ for c in pallas.collaborators] == ["NETWORK", "NETWORK", "OTHER", "OTHER", "INDUSTRY"]
    assert [(i.type, i.name) for i in pallas.interventions] == [
        ("DRUG", "Palbociclib"), ("DRUG", "Standard Adjuvant Endocrine Therapy")]


def test_one_field_of_the_page_object_reads_alone():
    # a field is one method of CtgovStudyPage; a test of a new field needs only the study
    from spiders.ctgov import CtgovStudyPage

    page = CtgovStudyPage(json.loads((SRC / "study_NCT02513394.json").read_text()))
    assert page.url == "https://clinicaltrials.gov/api/v2/studies/NCT02513394"
    assert page.completion_date() == {"date": "2025-09", "type": "ESTIMATED"}  # completionDateStruct
    assert page.min_age_years() == 18.0
    assert [c["name"] for c in page.collaborators()][-1] == "Pfizer"


def test_the_ctgov_page_object_names_every_field_it_gives():
    from spiders.ctgov import CtgovStudyPage

    given = {f.name for f in CtgovStudyPage.fields}
    # what the registry record has that a CT.gov study does not print: the
    # plain-language summary (a ClinConnect addition)
    from spiders.pages import FIELD_TYPES
    assert set(FIELD_TYPES) - given == {"lay_summary"}


def test_pallas_dates_are_not_mixed_up(pallas):
    # each from its own struct, with its type: start 2015-08 (the struct has
    # no type), primary completion 2020-11 ACTUAL, completion 2025-09
    # ESTIMATED, last update posted 2023-06-15
    assert pallas.start_date.model_dump() == {"date": "2015-08", "type": None}
    assert pallas.primary_completion_date.model_dump() == {"date": "2020-11", "type": "ACTUAL"}
    assert pallas.completion_date.model_dump() == {"date": "2025-09", "type": "ESTIMATED"}
    assert pallas.last_update_posted == "2023-06-15"


def test_pallas_eligibility(pallas):
    e = pallas.eligibility
    assert e.sex == "ALL"
    assert e.min_age_years == 18.0 and e.max_age_years is None
    assert e.age_text == "18 Years to N/A"
    assert e.healthy_volunteers is False
    assert e.inclusion[0] == "Signed informed consent prior to study specific procedures."
    assert e.inclusion[1] == "Age ≥18 years (or per national guidelines)."
    assert e.inclusion[-1].startswith("Serum creatinine below the upper limit")
    # 19 bullets plus two free paragraphs the registry prints between them
    # ("FFPE tumor tissue block ..." and "-Patients must either ... -"), each
    # kept as its own criterion in printed order
    assert len(e.inclusion) == 21
    assert e.inclusion[6] == ("FFPE tumor tissue block must be confirmed to be received at the central "
                              "sample repository prior to randomization.")
    assert e.inclusion[13] == "Patients must either be initiating or have already started adjuvant hormonal treatment."
    assert "ECOG performance status 0-1." in e.inclusion
    assert "Absolute neutrophil count ≥ 1,500/µL" in e.inclusion
    # 13 bullets under "Exclusion Criteria:", kept as printed (even the one
    # the registry split in two mid-sentence)
    assert len(e.exclusion) == 13
    assert e.exclusion[0] == "Concurrent therapy with other Investigational Products."
    assert e.exclusion[4] == "Patients receiving any medications or substances that are potent inhibitors or inducers of"
    assert e.exclusion[-1] == "Patients receiving concurrent exogenous hormone therapy (topical vaginal estrogen therapy is allowable)."
    assert not any(item in e.exclusion for item in e.inclusion)
    assert e.criteria_text.startswith("Inclusion Criteria:")


def test_pallas_locations_outcomes_summary(pallas):
    assert len(pallas.locations) == 437
    assert pallas.locations[0].model_dump() == {
        "facility": "University of South Alabama Mitchell Cancer Institute", "city": "Mobile",
        "state": "Alabama", "zip": "36604", "country": "United States", "country_code": "US", "status": None,
        "geo_point": {"lat": 30.69436, "lon": -88.04305}, "contacts": []}
    assert pallas.locations[-1].city == "Truro" and pallas.locations[-1].state is None
    assert [o.measure for o in pallas.primary_outcomes] == ["Invasive Disease Free Survival (iDFS)"]
    assert pallas.primary_outcomes[0].time_frame == "4 years"
    assert [o.measure for o in pallas.secondary_outcomes] == [
        "Invasive Disease Free Survival (iDFS) Excluding Second Primary Invasive Cancers of Non-breast Origin.",
        "Distant Recurrence-free Survival (DRFS)", "Overall Survival (OS)",
        "Locoregional Recurrences-free Survival (LRRFS)"]
    # outcomes are not swapped: secondary ones are not in the primary list
    assert not set(o.measure for o in pallas.primary_outcomes) & set(o.measure for o in pallas.secondary_outcomes)
    assert pallas.brief_summary.startswith("This is a prospective, two arm, international")
    assert "\n\nThe purpose of the PALLAS study" in pallas.brief_summary  # paragraphs kept
    assert pallas.detailed_description is None
    assert pallas.lay_summary is None


def test_pallas_raw_keeps_printed_values_and_body(pallas):
    assert pallas.raw["overall_status"] == "ACTIVE_NOT_RECRUITING"
    assert pallas.raw["eligibility.min_age_years"] == "18 Years"
    assert pallas.raw["start_date"] == {"date": "2015-08"}
    assert pallas.notes == []


def test_the_spider_yields_the_record_with_the_study_body_it_was_read_from():
    from scrapy.utils.test import get_crawler

    from items import RecordWithBody

    crawler = get_crawler(CtgovSpider)
    spider = CtgovSpider.from_crawler(crawler, nct="NCT02513394")
    crawler.stats.open_spider()
    url = "https://clinicaltrials.gov/api/v2/studies/NCT02513394"
    [item] = list(spider.parse_one(response_for(SRC / "study_NCT02513394.json", url)))
    assert isinstance(item, RecordWithBody)
    assert item.record.nct_id == "NCT02513394"
    assert item.body == (SRC / "study_NCT02513394.json").read_bytes()


def test_assembled_nct02186860_matches_seed_003():
    study = json.loads((SRC / "assembled_NCT02186860.json").read_text())
    r = parse_study(study, fetched="2026-11-23T09:00:00Z")
    assert r.nct_id == "NCT02186860"
    assert r.overall_status == "UNKNOWN" and r.phases == ["PHASE1"]
    assert r.enrollment.model_dump() == {"count": 5, "type": "ESTIMATED"}
    assert (r.eligibility.min_age_years, r.eligibility.max_age_years) == (18.0, 65.0)
    assert r.lead_sponsor.name == "Affiliated Hospital to Academy of Military Medical Sciences"
    assert [(i.id, i.kind) for i in r.secondary_ids] == [("307-CTC-CAR T", "ORG")]
    # seed 003 prints 12 inclusion and 7 exclusion bullets; escapes undone
    assert len(r.eligibility.inclusion) == 12 and len(r.eligibility.exclusion) == 7
    assert "Creatinine < 2.5 mg/dl" in r.eligibility.inclusion
    assert "Karnofsky performance status >= 60" in r.eligibility.inclusion


def test_unknown_status_word_is_noted_not_fatal():
    study = {"protocolSection": {"identificationModule": {"nctId": "NCT00001715"},
                                 "statusModule": {"overallStatus": "PAUSED_FOR_REVIEW"}}}
    r = parse_study(study, fetched="2026-11-23T09:00:00Z")
    assert r.overall_status == "UNKNOWN"
    assert [(n.field, n.kind) for n in r.notes] == [("overall_status", "unmapped_vocabulary")]
    assert r.raw["overall_status"] == "PAUSED_FOR_REVIEW"


def test_study_without_nct_id_is_an_error():
    with pytest.raises(ValueError):
        parse_study({"protocolSection": {"identificationModule": {"nctId": "N/A"}}}, fetched="2026-11-23T09:00:00Z")


def test_updated_since_builds_the_advanced_filter():
    spider = CtgovSpider(updated_since="2026-11-01", page_size="1000")
    query = parse_qs(urlsplit(spider.search_url()).query)
    assert query["filter.advanced"] == ["AREA[LastUpdatePostDate]RANGE[2026-11-01,MAX]"]
    assert query["pageSize"] == ["1000"] and query["format"] == ["json"]
    assert "pageToken" not in query
    assert parse_qs(urlsplit(spider.search_url("TOKEN")).query)["pageToken"] == ["TOKEN"]


def test_arguments_are_checked():
    assert CtgovSpider(nct="nct02186860, NCT04008524").ncts == ["NCT02186860", "NCT04008524"]
    with pytest.raises(ValueError):
        CtgovSpider(nct="N/A")
    with pytest.raises(ValueError):
        CtgovSpider(updated_since="last tuesday")
    assert CtgovSpider(page_size="5000").page_size == 1000


def test_salvage_keeps_complete_studies_of_a_truncated_page():
    page = (SRC / "studies_page1.json").read_text()
    cut = page[: page.index('"NCT06461156"')]  # inside the third study
    studies, whole = salvage_studies(cut)
    assert not whole
    assert [s["protocolSection"]["identificationModule"]["nctId"] for s in studies] == [
        "NCT05363319", "NCT05403554"]
    assert salvage_studies(page)[1] is True


# --- crawls, offline, through the whole Scrapy stack -----------------------------
def test_crawl_one_study_to_jsonl(tmp_path):
    run = scrapy(["crawl", "ctgov", "-a", "nct=NCT02513394", "-O", "out.jsonl"], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["nct_id"] == "NCT02513394" and record["lead_sponsor"]["class"] == "OTHER"
    assert len(record["content_hash"]) == 64
    stats = run.stats("ctgov")
    assert stats["vcr/played"] == 1 and stats["store/inserted"] == 1
    with Store(tmp_path / "harvest.sqlite3") as store:
        assert store.count() == 1
        body = store.get_body("ctgov", "https://clinicaltrials.gov/api/v2/studies/NCT02513394")
        assert json.loads(body)["hasResults"] is True  # the full study JSON is kept


def test_crawl_follows_next_page_token(tmp_path):
    run = scrapy(["crawl", "ctgov", "-a", "cond=cancer", "-a", "page_size=3"], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    stats = run.stats("ctgov")
    assert stats["ctgov/pages"] == 2
    assert stats["store/inserted"] == 4
    with Store(tmp_path / "harvest.sqlite3") as store:
        assert sorted(s.record.nct_id for s in store.iter_sources()) == [
            "NCT02513394", "NCT05363319", "NCT05403554", "NCT06461156"]


def test_max_pages_stops_paging(tmp_path):
    run = scrapy(["crawl", "ctgov", "-a", "cond=cancer", "-a", "page_size=3", "-a", "max_pages=1"], tmp_path)
    assert run.returncode == 0
    stats = run.stats("ctgov")
    assert stats["ctgov/pages"] == 1 and stats["store/inserted"] == 3
    assert stats["ctgov/stopped_at_max_pages"] is True


def test_unrecorded_request_fails_clearly_and_crawl_goes_on(tmp_path):
    run = scrapy(["crawl", "ctgov", "-a", "nct=NCT02513394,NCT09999999"], tmp_path)
    assert run.returncode == 1  # a cassette miss fails the run
    stats = run.stats("ctgov")
    assert stats["vcr/miss"] == 1
    assert stats["store/inserted"] == 1
    assert "https://clinicaltrials.gov/api/v2/studies/NCT09999999" in run.stderr
    assert "ctgov.yaml" in run.stderr


def write_cassette(tmp_path: Path, entries: list[tuple[str, bytes]]) -> Path:
    from vcr.persisters.filesystem import FilesystemPersister
    from vcr.request import Request as VcrRequest
    from vcr.serializers import yamlserializer

    reqs = [VcrRequest("GET", url, None, {}) for url, _ in entries]
    resps = [{"status": {"code": 200, "message": "OK"},
              "headers": {"Content-Type": ["application/json"], "Date": [DATE.decode()]},
              "body": {"string": body}} for _, body in entries]
    path = tmp_path / "cassettes" / "ctgov.yaml"
    FilesystemPersister.save_cassette(path, {"requests": reqs, "responses": resps}, yamlserializer)
    return path.parent


def test_truncated_and_malformed_bodies_are_counted_rejects(tmp_path):
    good = (SRC / "assembled_NCT04008524.json").read_bytes()
    page = (SRC / "studies_page1.json").read_bytes()
    cassettes = write_cassette(tmp_path, [
        ("https://clinicaltrials.gov/api/v2/studies/NCT02186860", good[: len(good) // 2]),
        ("https://clinicaltrials.gov/api/v2/studies/NCT04008524", good),
        ("https://clinicaltrials.gov/api/v2/studies?format=json&pageSize=3&query.cond=cancer&countTotal=true",
         page[: page.index(b'"NCT06461156"')]),
    ])
    run = scrapy(["crawl", "ctgov", "-a", "nct=NCT02186860,NCT04008524", "-a", "cond=cancer",
                  "-a", "page_size=3"], tmp_path / "run", cassettes=cassettes)
    assert run.returncode == 1, run.stderr[-3000:]  # unreadable bodies: a failed run
    stats = run.stats("ctgov")
    assert stats["harvester/parse_error/ctgov"] == 1      # the truncated study
    assert stats["ctgov/truncated_pages"] == 1            # the truncated page
    assert stats["harvester/rejects"] == 2
    assert stats["store/inserted"] == 3                   # NCT04008524 + 2 salvaged studies
    with Store(tmp_path / "run" / "harvest.sqlite3") as store:
        stages = sorted((r["url"].rsplit("/", 1)[-1][:11], r["stage"]) for r in store.rejects())
        assert stages == [("NCT02186860", "parse"), ("studies?for", "parse")]


def test_placeholder_and_mislabelled_identifiers_are_screened_and_noted():
    study = {"protocolSection": {"identificationModule": {
        "nctId": "NCT00001715",
        "orgStudyIdInfo": {"id": "Not Applicable"},
        "secondaryIdInfos": [
            {"id": "N/A", "type": "OTHER"},
            {"id": "NCT00000000", "type": "OTHER"},
            {"id": "2023-501234-12-00", "type": "EUDRACT_NUMBER"},  # a CTIS number in the EudraCT slot
            {"id": "2014-005181-30", "type": "EUDRACT_NUMBER"},
        ]}}}
    r = parse_study(study, fetched="2026-11-23T09:00:00Z")
    assert [(i.id, i.kind) for i in r.secondary_ids] == [("2023-501234-12-00", "CTIS"), ("2014-005181-30", "EUDRACT")]
    assert [(n.field, n.kind) for n in r.notes] == [
        ("secondary_ids", "rejected_identifier"), ("secondary_ids", "rejected_identifier"),
        ("secondary_ids", "rejected_identifier"), ("secondary_ids", "identifier_kind_mismatch")]


def test_screened_identifiers_are_counted_in_crawl_stats():
    from scrapy.utils.test import get_crawler

    from pipelines.validate import ValidationPipeline

    crawler = get_crawler(CtgovSpider)
    crawler.stats.open_spider()
    pipeline = ValidationPipeline.from_crawler(crawler)
    study = {"protocolSection": {"identificationModule": {"nctId": "NCT00001715", "orgStudyIdInfo": {"id": "N/A"}}}}
    pipeline.process_item(parse_study(study, fetched="2026-11-23T09:00:00Z"))
    assert crawler.stats.get_value("harvester/notes/rejected_identifier") == 1


def test_modules_that_are_not_objects_read_as_absent():
    # Each field reads its module once per study: a module printed as
    # something other than a JSON object is no module, never an error.
    study = {"protocolSection": {"identificationModule": {"nctId": "NCT02186860", "briefTitle": "A title"},
                                 "statusModule": ["COMPLETED"], "designModule": "PHASE2",
                                 "eligibilityModule": {"sex": "ALL", "minimumAge": "18 Years"},
                                 "contactsLocationsModule": None},
             "derivedSection": 7}
    r = parse_study(study, fetched="2026-11-23T09:00:00Z")
    assert (r.nct_id, r.brief_title) == ("NCT02186860", "A title")
    assert (r.eligibility.sex, r.eligibility.min_age_years) == ("ALL", 18.0)
    assert r.overall_status is None and r.start_date is None
    assert r.phases == [] and r.design.allocation is None and r.design.masking is None
    assert r.locations == [] and r.condition_mesh == []
    assert r.notes == []


def test_remembered_converters_answer_as_the_function_and_empty_when_full():
    from harvester.normalize.text import clean_text
    from spiders.ctgov import _Remembered

    calls = []

    def clean(v):
        calls.append(v)
        return clean_text(v)

    remembered = _Remembered(clean, 2)
    assert remembered["  Boston "] == "Boston" and remembered["  Boston "] == "Boston"
    assert calls == ["  Boston "]  # asked once
    assert remembered[""] is None and remembered["Lyon\u00a0 "] == "Lyon"
    assert len(remembered) == 1  # full at two: emptied before the third was kept
