"""ClinConnect: the parser on the real text of seed 000 (a page that never
prints its NCT ID) in three forms, the NCT ID fallbacks, and offline crawls.

Expected values were read by hand from `cassettes/src/clinconnect/forms/seed-000.txt`
(seed 000 with the two person names replaced by placeholders), never copied
from the parser's output.
"""
from __future__ import annotations

import json

import pytest
from scrapy.http import HtmlResponse, TextResponse

from harvester.store import Store
from spiders.clinconnect import ClinconnectSpider, parse_clinconnect, study_url
from tests._project import CASSETTES, scrapy
from tests._padding import assert_padding_noted_and_counted

SRC = CASSETTES / "src" / "clinconnect"
FORMS = SRC / "forms"
URL = "https://clinconnect.io/trials/seed-000"
DATE = "Mon, 23 Nov 2026 09:00:00 GMT"
CONTACT = "[contact name withheld]"
CONTACT_AFFILIATION = "Immunology at National Institute of Allergy and Infectious Diseases (NIAID)"


def response(body: bytes | str, *, html: bool, url: str = URL):
    if isinstance(body, str):
        body = body.encode("utf-8")
    if html:
        return HtmlResponse(url=url, body=body, headers={"Content-Type": "text/html; charset=utf-8", "Date": DATE})
    return TextResponse(url=url, body=body, encoding="utf-8",
                        headers={"Content-Type": "text/plain; charset=utf-8", "Date": DATE})


def parse_file(name: str, **kw):
    path = SRC / name if (SRC / name).exists() else FORMS / name
    return parse_clinconnect(response(path.read_bytes(), html=path.suffix == ".html", **kw))


@pytest.fixture(scope="module")
def served():
    return parse_file("seed-000.html")


TITLE = ("Clinical Study of CAR-T Technology for the Treatment of Relapsed Refractory Malignant "
         "Haematological Tumours")
LAY_SUMMARY = (
    "This clinical trial is studying a new treatment called CAR-T technology for patients with certain types "
    "of blood cancers that have not responded to previous treatments. The goal is to see how safe and "
    "effective this therapy is for individuals aged 14 to 70 who have been diagnosed with a malignant "
    "hematological tumor, which means their cancer is in the blood or bone marrow. To participate, patients "
    "need to have measurable cancer lesions and good overall health, including properly functioning organs."
    "\n\n"
    "Participants in the trial can expect to go through several stages: first, there will be a screening to "
    "see if they qualify; then, they will receive a special treatment to prepare their body for CAR-T "
    "therapy; after that, there will be short- and mid-term follow-ups to monitor their progress. It's "
    "important to know that not everyone can join; for example, those who are pregnant or have certain "
    "infections or serious health conditions may be excluded. If you or a loved one is considering this "
    "trial, it\u2019s an opportunity to help researchers learn more about CAR-T therapy and its potential "
    "benefits for treating challenging blood cancers."
)
# Bullets as printed, markers ("• 1.") removed, escapes undone; the run-on
# "(1) ...; (2) ... (6) ...; 7. ..." bullet is split into its criteria, as the
# CT.gov parser splits the same text.
INCLUSION = [
    "patients or their legal guardians voluntarily participate and sign an informed consent form;",
    "male or female patients aged 14 to 70 years (inclusive);",
    "be diagnosed as malignant haematological tumour by pathological and histological examination;",
    "have a measurable or evaluable lesion;",
    "the patient has good function of major tissues and organs:",
    "Liver function: ALT/AST <3 times upper limit of normal (ULN) and total bilirubin ≤34.2 μmol/L;",
    "Renal function: creatinine <220 μmol/L;",
    "Lung function: room oxygen saturation ≥95%;",
    "Cardiac function: left ventricular ejection fraction (LVEF) ≥40%.",
    "Patient's peripheral superficial venous blood flow is smooth and can meet the demand of intravenous drip;",
    "patients with ECOG score ≤2 and expected survival time ≥3 months.",
]
EXCLUSION = [
    "Women who are pregnant (positive urine/blood pregnancy test) or breastfeeding;",
    "men or women who are planning to conceive within the last 1 year;",
    "patients who cannot guarantee effective contraception (condoms or birth control pills, etc.) within 1 "
    "year of enrolment;",
    "patients with uncontrolled infections within 4 weeks prior to enrolment;",
    "active viral hepatitis B/C;",
    "patients with HIV infection;",
    "patients with severe autoimmune diseases or immunodeficiency diseases;",
    "patients who are allergic to large molecule biopharmaceuticals such as antibodies or cytokines;",
    "patients who have participated in other clinical trials within 6 weeks prior to enrolment;",
    "the patient has used hormones systematically within 4 weeks prior to enrolment (except for patients "
    "using inhaled hormones);",
    "the patient has a psychiatric disorder",
    "the patient has substance abuse/addiction;",
    "other conditions that, in the judgement of the investigator, make the patient unsuitable for enrolment.",
]


# --- the golden record (seed 000) ----------------------------------------------------
def test_identity_without_an_nct_id(served):
    assert served.site == "clinconnect" and served.url == URL
    assert served.nct_id is None  # printed nowhere; kept for linking
    assert "nct_id_from" not in served.raw
    assert served.secondary_ids == []
    assert served.brief_title == TITLE and served.official_title is None
    assert served.fetched_at.isoformat() == "2026-11-23T09:00:00+00:00"


def test_sponsor_status_and_dates(served):
    assert served.lead_sponsor.model_dump(by_alias=True) == {"name": "SHANXI BETHUNE HOSPITAL", "class": None}
    assert served.overall_status == "RECRUITING" and served.raw["overall_status"] == "Recruiting"
    # "Launched by … · Jan 25, 2024": kept, but not as a CT.gov date it may not be.
    assert served.raw["launched"] == "Launched by SHANXI BETHUNE HOSPITAL · Jan 25, 2024"
    assert served.raw["launch_date"] == "2024-01-25"
    assert served.start_date is None
    # "Current as of June 26, 2025": kept, not claimed as last_update_posted.
    assert served.raw["current_as_of"] == "2025-06-26"
    assert served.last_update_posted is None
    notes = {n.field: n.kind for n in served.notes}
    assert notes["start_date"] == "ambiguous_meaning" and notes["last_update_posted"] == "ambiguous_meaning"
    assert served.primary_completion_date is None and served.completion_date is None  # "Not reported"


def test_lay_summary_has_both_paragraphs(served):
    assert served.lay_summary == LAY_SUMMARY
    assert served.brief_summary is None and served.detailed_description is None


def test_eligibility(served):
    e = served.eligibility
    assert e.sex == "ALL" and served.raw["eligibility.sex"] == "ALL"
    assert e.inclusion == INCLUSION
    assert e.exclusion == EXCLUSION and len(e.exclusion) == 13
    assert any("ALT/AST <3 times upper limit of normal" in item for item in e.inclusion)
    assert (e.min_age_years, e.max_age_years) == (14, 70)
    assert e.age_text is None
    assert served.raw["ages_from_criteria"] == "aged 14 to 70 years (inclusive)"
    age_notes = [n for n in served.notes if n.kind == "from_other_section"]
    assert {n.field for n in age_notes} == {"eligibility.min_age_years", "eligibility.max_age_years"}
    assert e.criteria_text.startswith(
        "Inclusion Criteria:\n1. patients or their legal guardians voluntarily participate")
    assert "\\<" not in e.criteria_text and "ALT/AST <3 times" in e.criteria_text
    assert "\n\nExclusion Criteria:\n1. Women who are pregnant" in e.criteria_text


def test_locations_officials_and_sponsor_blurb(served):
    assert [loc.model_dump() for loc in served.locations] == [
        {"facility": None, "city": "Taiyuan", "state": "Shanxi", "zip": None, "country": "China",
         "country_code": "CN", "status": None, "geo_point": None, "contacts": []}]
    # "Trial Officials": name, "Principal Investigator", "Shanxi Bethune Hospital".
    # The assembled page prints a stand-in for the name (cassettes/README.md):
    # no name is claimed, and that is noted.
    assert [o.model_dump() for o in served.overall_officials] == [{
        "name": None, "role": "PRINCIPAL_INVESTIGATOR", "affiliation": "Shanxi Bethune Hospital",
        "phone": None, "phone_ext": None, "email": None}]
    [note] = [n for n in served.notes if n.field == "overall_officials"]
    assert note.kind == "missing_value" and "[investigator name withheld]" in note.detail
    assert "trial_officials" not in served.raw
    assert served.central_contacts == []  # the "Contacts" block is not the trial's (see the module doc)
    assert served.raw["about_sponsor"].startswith("Shanxi Bethune Hospital is a leading healthcare institution")
    assert served.raw["about_sponsor"].endswith("contribute to the global medical community.")


def test_contacts_are_in_no_field(served):
    text = json.dumps(served.model_dump(mode="json"), ensure_ascii=False)
    assert CONTACT not in text and CONTACT_AFFILIATION not in text


def test_nothing_else_is_claimed(served):
    assert served.phases == [] and served.study_type is None and served.enrollment is None
    assert served.conditions == [] and served.interventions == [] and served.collaborators == []
    assert served.primary_outcomes == [] and served.secondary_outcomes == []
    assert sorted((n.field, n.kind) for n in served.notes) == [
        ("eligibility.max_age_years", "from_other_section"),
        ("eligibility.min_age_years", "from_other_section"),
        ("last_update_posted", "ambiguous_meaning"),
        ("overall_officials", "missing_value"),
        ("start_date", "ambiguous_meaning"),
    ]
    # the timeline's four events printed with no dates, the last "Not reported"
    assert "timeline" not in served.raw


# --- the same text in other forms ---------------------------------------------------
def _dump(record):
    return record.model_dump(mode="json", by_alias=True)


@pytest.mark.parametrize("form", ["seed-000.dl.html", "seed-000.txt"])
def test_three_forms_give_equal_records(served, form):
    """Headings + paragraphs (the served page), a definition list with nested
    divs and nested criteria lists, and the plain text (seed 000 as
    extracted) give the same record."""
    assert _dump(parse_file(form)) == _dump(served)


# --- where the NCT ID comes from ----------------------------------------------------------
SEED_TEXT = (FORMS / "seed-000.txt").read_text(encoding="utf-8")


def test_nct_id_from_the_url():
    record = parse_clinconnect(response(SEED_TEXT, html=False, url="https://clinconnect.io/trials/NCT99999999"))
    assert record.nct_id == "NCT99999999" and record.raw["nct_id_from"] == "url"


def test_nct_id_from_the_breadcrumb():
    text = "Search / Trial NCT99999998\n" + SEED_TEXT
    record = parse_clinconnect(response(text, html=False))
    assert record.nct_id == "NCT99999998" and record.raw["nct_id_from"] == "breadcrumb"
    assert record.brief_title == TITLE  # the breadcrumb is not the title


def test_nct_id_printed_in_the_body_wins_and_a_disagreement_is_noted():
    text = SEED_TEXT.replace("Trial Information\n", "Trial Information\nNCT99999997\n")
    record = parse_clinconnect(response(text, html=False, url="https://clinconnect.io/trials/NCT99999999"))
    assert record.nct_id == "NCT99999997" and record.raw["nct_id_from"] == "page"
    assert any(n.field == "nct_id" and n.kind == "in_page_disagreement" for n in record.notes)
    assert record.overall_status == "RECRUITING"


def test_timeline_dates_are_read_as_printed():
    """The seed prints no timeline dates; this form prints one per event (the
    dates are the seed's own "Launched by" and "Current as of" dates)."""
    text = (SEED_TEXT.replace("First submit\n", "First submit\nJan 20, 2024\n")
            .replace("Trial launched\n", "Trial launched\nJan 25, 2024\n")
            .replace("Trial updated\n", "Trial updated\nJune 26, 2025\n")
            .replace("Estimated completion\nNot reported", "Estimated completion\nDecember 2026"))
    record = parse_clinconnect(response(text, html=False))
    assert record.raw["timeline"] == {"First submit": "Jan 20, 2024", "Trial launched": "Jan 25, 2024",
                                      "Trial updated": "June 26, 2025", "Estimated completion": "December 2026"}
    assert record.start_date.model_dump() == {"date": "2024-01-25", "type": None}
    assert record.completion_date.model_dump() == {"date": "2026-12", "type": "ESTIMATED"}
    assert record.last_update_posted == "2025-06-26"
    assert record.study_first_posted is None  # "First submit" is not CT.gov's first posted date
    assert not any(n.kind == "unmapped_vocabulary" for n in record.notes)


def test_timeline_value_that_is_no_date_is_noted_not_claimed():
    text = SEED_TEXT.replace("Trial launched\n", "Trial launched\nSoon\n")
    record = parse_clinconnect(response(text, html=False))
    assert record.start_date is None and record.raw["timeline"] == {"Trial launched": "Soon"}
    [note] = [n for n in record.notes if n.kind == "unmapped_vocabulary"]
    assert note.field == "start_date" and "Soon" in note.detail


def test_two_officials_one_without_affiliation_and_a_location_with_no_country():
    text = SEED_TEXT.replace(
        "Trial Officials\n[investigator name withheld]\nPrincipal Investigator\nShanxi Bethune Hospital\n",
        "Trial Officials\nA. Name\nStudy Chair\nB. Name\nPrincipal Investigator\nShanxi Bethune Hospital\n"
    ).replace("Taiyuan, Shanxi, China", "Taiyuan")
    assert "Study Chair" in text
    record = parse_clinconnect(response(text, html=False))
    assert [(o.name, o.role, o.affiliation) for o in record.overall_officials] == [
        ("A. Name", "STUDY_CHAIR", None), ("B. Name", "PRINCIPAL_INVESTIGATOR", "Shanxi Bethune Hospital")]
    [loc] = record.locations
    assert (loc.city, loc.country, loc.country_code) == (None, "Taiyuan", None)
    [note] = [n for n in record.notes if n.field == "locations"]
    assert note.kind == "unmapped_vocabulary" and "Taiyuan" in note.detail


def test_a_page_without_the_labels_is_an_error_not_a_record():
    with pytest.raises(ValueError, match="not a ClinConnect trial page"):
        parse_clinconnect(response("<html><body><h1>404</h1><p>This page could not be found.</p></body></html>",
                                   html=True))


def test_spider_arguments_build_urls_from_nct_ids():
    spider = ClinconnectSpider(nct="nct04691349, NCT99999999")
    assert spider.ncts == ["NCT04691349", "NCT99999999"]
    assert study_url("NCT04691349") == "https://clinconnect.io/trials/NCT04691349"
    assert ClinconnectSpider.site_entry.name == ClinconnectSpider.name == "clinconnect"
    assert ClinconnectSpider.site_entry.nct_url("NCT04691349") == "https://clinconnect.io/trials/NCT04691349"
    with pytest.raises(ValueError):
        ClinconnectSpider(nct="N/A")


# --- crawls, offline, through the whole Scrapy stack ----------------------------------
def test_crawl_nct_404_is_counted_and_the_crawl_goes_on(tmp_path):
    run = scrapy(["crawl", "clinconnect", "-a", "nct=NCT99999999", "-a", f"urls={URL}", "-O", "out.jsonl"],
                 tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    records = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["url"], r["nct_id"]) for r in records] == [(URL, None)]
    stats = run.stats("clinconnect")
    assert stats["clinconnect/http_404"] == 1
    assert stats["harvester/records_without_nct"] == 1
    with Store(tmp_path / "harvest.sqlite3") as store:
        stored = store.get("clinconnect", URL)
        assert stored.record.nct_id is None and stored.record.lay_summary == LAY_SUMMARY
        assert store.get("clinconnect", study_url("NCT99999999")) is None


def test_crawl_discovers_trials_through_the_sitemap(tmp_path):
    run = scrapy(["crawl", "clinconnect", "-O", "out.jsonl"], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    records = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["url"] for r in records] == [URL]
    stats = run.stats("clinconnect")
    assert stats["vcr/played"] == 3
    assert stats["clinconnect/sitemaps"] == 2
    assert stats["clinconnect/sitemap_study_urls"] == 1
    assert stats["clinconnect/sitemap_skipped_url"] == 1  # /about


def test_sitemap_requests_carry_lastmod():
    from scrapy.utils.test import get_crawler

    crawler = get_crawler(ClinconnectSpider)
    spider = ClinconnectSpider.from_crawler(crawler)
    crawler.stats.open_spider()
    index = TextResponse(url="https://clinconnect.io/sitemap.xml", body=(SRC / "sitemap.xml").read_bytes(),
                         encoding="utf-8")
    [shard] = list(spider.parse_sitemap(index))
    shard_response = TextResponse(url=shard.url, body=(SRC / "trials-0.xml").read_bytes(), encoding="utf-8")
    [study] = list(spider.parse_sitemap(shard_response))
    assert study.url == URL and study.meta["lastmod"] == "2025-06-26"


def test_extract_command_on_a_saved_page(tmp_path):
    run = scrapy(["extract", "clinconnect", str(FORMS / "seed-000.txt")], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    record = json.loads(run.stdout)
    assert record["nct_id"] is None and record["lead_sponsor"]["name"] == "SHANXI BETHUNE HOSPITAL"


def test_location_with_a_facility_line():
    text = SEED_TEXT.replace("Locations\nTaiyuan, Shanxi, China\n",
                             "Locations\nShanxi Bethune Hospital\nTaiyuan, Shanxi, China\nBeijing, China\n")
    record = parse_clinconnect(response(text, html=False))
    assert [(loc.facility, loc.city, loc.state, loc.country) for loc in record.locations] == [
        ("Shanxi Bethune Hospital", "Taiyuan", "Shanxi", "China"), (None, "Beijing", None, "China")]


def test_spider_turns_an_unreadable_page_into_a_counted_reject():
    from scrapy.utils.test import get_crawler

    from items import Reject

    crawler = get_crawler(ClinconnectSpider)
    spider = ClinconnectSpider.from_crawler(crawler)
    crawler.stats.open_spider()
    page = response("<html><body><h1>Something went wrong</h1></body></html>", html=True)
    [item] = list(spider.parse_study(page))
    assert isinstance(item, Reject) and "not a ClinConnect trial page" in item.error
    assert crawler.stats.get_value("harvester/parse_error/clinconnect") == 1


def test_a_seven_digit_nct_id_is_zero_padded_with_a_note_counted_in_crawl_stats():
    # seed 000's real text never prints an NCT ID: the only alteration is one
    # printed under "Trial Information" with 7 digits, NCT0400852 (NCT04008524
    # with its last digit dropped), as the existing printed-ID test inserts one.
    text = SEED_TEXT.replace("Trial Information\n", "Trial Information\nNCT0400852\n")
    assert text != SEED_TEXT
    record = parse_clinconnect(response(text, html=False))
    assert record.nct_id == "NCT00400852" and record.raw["nct_id_from"] == "page"
    assert record.raw["nct_id"] == "NCT0400852"
    assert_padding_noted_and_counted(ClinconnectSpider, record, "NCT0400852", "NCT00400852")


def test_an_eight_digit_nct_id_printed_in_the_body_gets_no_padding_note():
    text = SEED_TEXT.replace("Trial Information\n", "Trial Information\nNCT99999997\n")
    record = parse_clinconnect(response(text, html=False))
    assert record.nct_id == "NCT99999997" and "nct_id" not in record.raw
    assert all(n.kind != "nct_zero_padded" for n in record.notes)


def test_officials_with_a_role_ctgov_does_not_know_are_kept_in_raw_and_noted():
    text = SEED_TEXT.replace("\nPrincipal Investigator\n", "\nLead Doctor\n")
    record = parse_clinconnect(response(text, html=False))
    assert record.overall_officials == []
    assert record.raw["officials_printed"] == ["[investigator name withheld]", "Lead Doctor",
                                               "Shanxi Bethune Hospital"]
    [note] = [n for n in record.notes if n.field == "overall_officials"]
    assert note.kind == "unmapped_vocabulary" and "Lead Doctor" in note.detail
