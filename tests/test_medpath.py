"""MedPath: the parser on the real text of NCT04691349 (seed 004) in several
forms, and offline crawls from the cassette.

Every expected value below was read by hand from the page text
(`cassettes/src/medpath/forms/NCT04691349.seed_text.txt`, a copy of seed 004),
never copied from the parser's output.
"""
from __future__ import annotations

import json

import pytest
from scrapy.http import HtmlResponse, TextResponse

from harvester.store import Store
from spiders.medpath import MedpathSpider, parse_medpath
from tests._project import CASSETTES, scrapy

SRC = CASSETTES / "src" / "medpath"
FORMS = SRC / "forms"
URL = ("https://trial.medpath.com/clinical-trial/50b4028075e01462/"
       "chimeric-antigen-receptor-t-cells-therapy-children-tumors")
DATE = "Mon, 23 Nov 2026 09:00:00 GMT"


def response(body: bytes | str, *, html: bool, url: str = URL):
    if isinstance(body, str):
        body = body.encode("utf-8")
    if html:
        return HtmlResponse(url=url, body=body, headers={"Content-Type": "text/html; charset=utf-8", "Date": DATE})
    return TextResponse(url=url, body=body, encoding="utf-8",
                        headers={"Content-Type": "text/plain; charset=utf-8", "Date": DATE})


def parse_file(name: str, **kw):
    path = SRC / name if (SRC / name).exists() else FORMS / name
    return parse_medpath(response(path.read_bytes(), html=path.suffix == ".html", **kw))


@pytest.fixture(scope="module")
def served():
    return parse_file("NCT04691349.html")


INCLUSION = [
    "Age 3-18",
    "Expected survival time ≥ 12weeks",
    "ECOG 0-2",
    "At least second-line or above chemotherapy failed",
    # The paragraph printed under the 5th bullet belongs to it (see spiders/medpath.py).
    "Liver and kidney function, heart and lung function meet the following requirements: "
    "Creatinine is within the normal range; Left ventricular ejection fraction ≥ 45%; "
    "Baseline blood oxygen saturation>91%; Total bilirubin≤1.5×ULN; ALT and AST≤2.5×ULN",
    "Understand the trial and have signed the informed consent",
]
EXCLUSION = [
    "Those who have graft-versus-host disease (GVHD) or need to use immunosuppressive agents",
    "Hepatitis B surface antigen (HBsAg) or hepatitis B core antibody (HBcAb) positive and peripheral "
    "blood HBV DNA titer test is not within the normal reference range; hepatitis C virus (HCV) antibody "
    "positive and peripheral blood HCV RNA positive; human immunodeficiency virus (HIV) Antibody positive; "
    "CMV DNA test positive; Syphilis test positive",
    "Severe heart disease",
    "Systemic diseases judged by the investigator to be unstable: including but not limited to severe "
    "liver, kidney or metabolic diseases that require medication",
    "Within 7 days before screening, there are active infections or uncontrollable infections that require "
    "systemic treatment (except for mild urogenital infections and upper respiratory tract infections)",
    "Those who have received CAR-T therapy or other genetically modified cell therapy before screening",
    "According to the researcher's judgment, it does not meet the situation of cell preparation",
    "Situations that other researchers think are not suitable for inclusion",
]
SUMMARY = ("This study is a clinical study of CAR-T treatment of patients with relapsed/refractory malignant "
           "tumors in children. The purpose is to evaluate the safety and effectiveness of chimeric antigen "
           "receptor T cells in the treatment of relapsed/refractory malignant tumors in children.")


# --- the golden record (the served page) -------------------------------------------
def test_identity(served):
    assert served.site == "medpath" and served.url == URL
    assert served.nct_id == "NCT04691349"
    assert [i.model_dump() for i in served.secondary_ids] == [
        {"id": "50b4028075e01462", "kind": "SITE", "domain": "MedPath"}]
    assert served.brief_title == "CAR-T for r/r Malignant Tumors in Children"
    assert served.official_title is None
    assert served.fetched_at.isoformat() == "2026-11-23T09:00:00+00:00"


def test_design_status_and_enrollment(served):
    assert served.phases == ["EARLY_PHASE1"]  # "Early Phase 1" under the title
    assert served.overall_status == "UNKNOWN"
    assert served.study_type == "INTERVENTIONAL"
    # "Target Recruitment 10": the count; the type is not claimed (judgement call).
    assert served.enrollment.model_dump() == {"count": 10, "type": None}
    assert served.raw["enrollment"] == "10" and served.raw["enrollment_label"] == "Target Recruitment"
    # "Study Design SINGLE_GROUP": CT.gov's intervention model, printed as its enum
    assert served.design.model_dump(exclude_defaults=True) == {"intervention_model": "SINGLE_GROUP"}
    assert served.raw["design.intervention_model"] == "SINGLE_GROUP"
    assert served.raw["phases"] == "Early Phase 1"
    assert served.raw["overall_status"] == "UNKNOWN"


def test_conditions_are_the_three_chips(served):
    assert served.conditions == ["Malignant Tumor", "Child, Only", "CAR-T"]


def test_interventions_sponsor_and_texts(served):
    assert [i.model_dump() for i in served.interventions] == [
        {"type": "DRUG", "name": "CAR-T", "description": None, "other_names": [], "arm_group_labels": []}]
    assert served.lead_sponsor.model_dump(by_alias=True) == {
        "name": "PersonGen BioTherapeutics (Suzhou) Co., Ltd.", "class": None}
    assert served.collaborators == []
    assert served.brief_summary == SUMMARY
    assert served.detailed_description is None  # "Not available"
    assert served.raw["detailed_description"] == "Not available"
    assert served.lay_summary is None


def test_eligibility(served):
    e = served.eligibility
    assert e.sex == "ALL" and served.raw["eligibility.sex"] == "All"
    assert e.inclusion == INCLUSION and len(e.inclusion) == 6
    assert e.exclusion == EXCLUSION and len(e.exclusion) == 8
    assert (e.min_age_years, e.max_age_years) == (3, 18)
    assert e.age_text is None  # nothing is printed as an age
    assert e.healthy_volunteers is None
    assert served.raw["ages_from_criteria"] == "Age 3-18"
    age_notes = {n.field: n for n in served.notes if n.kind == "from_other_section"}
    assert set(age_notes) == {"eligibility.min_age_years", "eligibility.max_age_years"}
    assert "Age 3-18" in age_notes["eligibility.min_age_years"].detail
    assert e.criteria_text.startswith("Inclusion Criteria\nAge 3-18\n")
    assert "\n\nExclusion Criteria\nThose who have graft-versus-host disease" in e.criteria_text


def test_arms_outcomes_and_locations(served):
    assert [o.model_dump() for o in served.primary_outcomes] == [{
        "measure": "ORR3",
        "time_frame": "Three months after CAR T cell infusion",
        "description": "3-month objective response rate",
    }]
    assert served.secondary_outcomes == []  # the table has its header and no row
    # "Arm && Interventions": Group / Intervention / Description, one row; the
    # cell "CAR-T" named as the Interventions list prints it ("Drug: CAR-T")
    [arm] = served.arm_groups
    assert (arm.label, arm.type, arm.intervention_names) == ("Chimeric antigen receptor T cell", None, ["Drug: CAR-T"])
    assert arm.description.startswith("Chimeric antigen receptor T cells (car-t) is one of")
    assert arm.description.endswith("the safety of genetically modified T cells")
    [printed] = served.raw["arm_groups"]
    assert printed["group"] == "Chimeric antigen receptor T cell" and printed["intervention"] == "CAR-T"
    assert [loc.model_dump() for loc in served.locations] == [{
        "facility": "Chilren's Hospital of Soochow University",  # spelled as printed
        "city": "Suzhou", "state": "Jiangsu", "zip": None, "country": "China", "country_code": "CN",
        "status": None, "geo_point": None, "contacts": []}]


def test_nothing_else_is_claimed(served):
    assert served.start_date is served.completion_date is served.primary_completion_date is None
    assert served.last_update_posted is None
    assert [(n.field, n.kind) for n in served.notes] == [
        ("eligibility.min_age_years", "from_other_section"),
        ("eligibility.max_age_years", "from_other_section")]


def test_the_spider_yields_the_record_with_the_page_body(served):
    from scrapy.utils.test import get_crawler

    crawler = get_crawler(MedpathSpider)
    spider = MedpathSpider.from_crawler(crawler, urls=URL)
    crawler.stats.open_spider()
    body = (SRC / "NCT04691349.html").read_bytes()
    [item] = list(spider.parse_study(response(body, html=True)))
    assert item.record == served and item.body == body


# --- the same text in other forms ---------------------------------------------------
def _dump(record):
    return record.model_dump(mode="json", by_alias=True)


@pytest.mark.parametrize("form", ["NCT04691349.dl.html", "NCT04691349.txt"])
def test_three_forms_give_equal_records(served, form):
    """Headings + paragraphs (the served page), a definition list with nested
    divs and <li> chips, and a plain text rendering (one line per block and
    per table cell) give the same record."""
    assert _dump(parse_file(form)) == _dump(served)


def test_seed_text_as_extracted_keeps_joined_table_cells_unsplit(served):
    """Seed 004 exactly as it was extracted: table cells ran together
    ("ORR3Three months after ...") and cannot be split. Everything else is
    equal; the outcomes and arms are not guessed, and say why."""
    seed = parse_file("NCT04691349.seed_text.txt")
    a, b = _dump(seed), _dump(served)
    for key in ("primary_outcomes", "arm_groups", "raw", "notes"):
        a.pop(key), b.pop(key)
    assert a == b
    assert seed.primary_outcomes == [] and seed.secondary_outcomes == []
    assert seed.arm_groups == [] and "arm_groups" not in seed.raw
    assert seed.raw["primary_outcomes_printed"] == [
        "NameTimeMethod", "ORR3Three months after CAR T cell infusion", "3-month objective response rate"]
    kinds = {(n.field, n.kind) for n in seed.notes}
    assert ("primary_outcomes", "unsplit_table") in kinds and ("arm_groups", "unsplit_table") in kinds


def test_list_style_rendering(served):
    """The reference list-style text of the same page: labels and values as
    list items, cut at 2,000 characters, the condition chips joined
    ("Malignant TumorChild, OnlyCAR-T"), the criteria printed with no
    Inclusion/Exclusion labels, and no phase line under the title."""
    listed = parse_file("NCT04691349.list_style.txt")
    for field in ("nct_id", "brief_title", "lead_sponsor", "brief_summary", "detailed_description",
                  "overall_status", "enrollment", "interventions", "secondary_ids"):
        assert getattr(listed, field) == getattr(served, field), field
    assert listed.eligibility.sex == "ALL"
    # The joined chips cannot be split from the text: no conditions are claimed.
    assert listed.conditions == []
    assert listed.raw["conditions_printed"] == ["Malignant TumorChild, OnlyCAR-T"]
    assert any(n.field == "conditions" and n.kind == "unsplit_list" for n in listed.notes)
    # Criteria without their labels are neither inclusion nor exclusion, so no ages either.
    assert listed.eligibility.inclusion == [] and listed.eligibility.exclusion == []
    assert listed.eligibility.min_age_years is None and listed.eligibility.max_age_years is None
    assert listed.raw["unlabelled_lines"][0] == "Age 3-18"
    assert listed.raw["unlabelled_lines"][-1] == "According to t"  # where the text was cut
    assert any(n.kind == "unlabelled_text" for n in listed.notes)
    # Cut before these: nothing is invented.
    assert listed.phases == [] and listed.study_type is None
    assert listed.locations == [] and listed.primary_outcomes == []


def test_chips_with_separators_and_a_single_chip():
    html = (SRC / "NCT04691349.html").read_text(encoding="utf-8")
    one = html.replace('<a href="/search?condition=Child%2C%20Only">Child, Only</a>', "").replace(
        '<a href="/search?condition=CAR-T">CAR-T</a>', "")
    assert parse_medpath(response(one, html=True)).conditions == ["Malignant Tumor"]
    spaced = html.replace("</a><a", "</a>, <a")
    assert parse_medpath(response(spaced, html=True)).conditions == ["Malignant Tumor", "Child, Only", "CAR-T"]


def test_empty_table_cell_does_not_shift_columns():
    html = (SRC / "NCT04691349.html").read_text(encoding="utf-8").replace(
        "<tbody><tr><td>ORR3</td>",
        "<tbody><tr><td>Safety</td><td>28 days</td><td></td></tr><tr><td>ORR3</td>")
    record = parse_medpath(response(html, html=True))
    assert [(o.measure, o.time_frame, o.description) for o in record.primary_outcomes] == [
        ("Safety", "28 days", None),
        ("ORR3", "Three months after CAR T cell infusion", "3-month objective response rate")]


def test_registration_number_that_is_not_an_nct_id():
    html = (SRC / "NCT04691349.html").read_text(encoding="utf-8").replace(
        "<p>NCT04691349</p>", "<p>ChiCTR2000012345</p>")
    record = parse_medpath(response(html, html=True))
    assert record.nct_id is None
    assert [(i.id, i.kind) for i in record.secondary_ids] == [
        ("ChiCTR2000012345", "CHICTR"), ("50b4028075e01462", "SITE")]


def test_a_page_without_the_labels_is_an_error_not_a_record():
    page = "<html><body><h1>Page not found</h1><p>MedPath</p></body></html>"
    with pytest.raises(ValueError, match="not a MedPath study page"):
        parse_medpath(response(page, html=True))


def test_spider_arguments():
    spider = MedpathSpider(urls=f"{URL}, https://trial.medpath.com/clinical-trial/0123456789abcdef/x")
    assert len(spider.urls) == 2 and spider.sitemap_index == "https://trial.medpath.com/sitemap.xml"
    assert MedpathSpider.site_entry.name == MedpathSpider.name == "medpath"
    assert MedpathSpider.allowed_domains == ["trial.medpath.com"]
    assert MedpathSpider.custom_settings["DOWNLOAD_DELAY"] == 2.0
    with pytest.raises(ValueError):
        MedpathSpider(urls="trial.medpath.com/clinical-trial/x")
    with pytest.raises(ValueError):
        MedpathSpider(since="last week")


# --- crawls, offline, through the whole Scrapy stack ----------------------------------
def test_crawl_urls_to_store(tmp_path):
    run = scrapy(["crawl", "medpath", "-a", f"urls={URL}", "-O", "out.jsonl"], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    [line] = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(line)
    assert record["nct_id"] == "NCT04691349" and record["conditions"] == ["Malignant Tumor", "Child, Only", "CAR-T"]
    assert len(record["content_hash"]) == 64
    with Store(tmp_path / "harvest.sqlite3") as store:
        stored = store.get("medpath", URL)
        assert stored.record.nct_id == "NCT04691349" and stored.record.enrollment.count == 10
        assert store.get_body("medpath", URL) == (SRC / "NCT04691349.html").read_bytes()
        assert store.count("rejects") == 0


def test_crawl_discovers_studies_through_the_sitemap(tmp_path):
    run = scrapy(["crawl", "medpath", "-O", "out.jsonl"], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    records = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["url"] for r in records] == [URL]
    stats = run.stats("medpath")
    assert stats["vcr/played"] == 3  # index, shard, study page
    assert stats["medpath/sitemaps"] == 2
    assert stats["medpath/sitemap_study_urls"] == 1
    assert stats["medpath/sitemap_skipped_url"] == 1  # the home page listed in the shard


def test_sitemap_since_skips_older_studies(tmp_path):
    run = scrapy(["crawl", "medpath", "-a", "since=2025-10-16"], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    stats = run.stats("medpath")
    assert stats["medpath/sitemap_not_modified"] == 1 and "harvester/records" not in stats


def test_extract_command_on_a_saved_page(tmp_path):
    run = scrapy(["extract", "medpath", str(SRC / "NCT04691349.html"), "--url", URL], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    record = json.loads(run.stdout)
    assert record["nct_id"] == "NCT04691349" and record["phases"] == ["EARLY_PHASE1"]


def test_sitemap_requests_carry_lastmod():
    from scrapy.utils.test import get_crawler

    crawler = get_crawler(MedpathSpider)
    spider = MedpathSpider.from_crawler(crawler)
    crawler.stats.open_spider()
    index = TextResponse(url="https://trial.medpath.com/sitemap.xml",
                         body=(SRC / "sitemap.xml").read_bytes(), encoding="utf-8")
    [shard] = list(spider.parse_sitemap(index))
    assert shard.url == "https://trial.medpath.com/sitemaps/clinical-trials-0.xml"
    shard_response = TextResponse(url=shard.url, body=(SRC / "clinical-trials-0.xml").read_bytes(),
                                  encoding="utf-8")
    [study] = list(spider.parse_sitemap(shard_response))
    assert study.url == URL and study.meta["lastmod"] == "2025-10-15"
    assert study.callback == spider.parse_study


def test_chips_in_one_element_are_not_guessed_apart():
    """If the markup itself holds the chips as one string, nothing can split them."""
    html = (SRC / "NCT04691349.html").read_text(encoding="utf-8").replace(
        '<a href="/search?condition=Malignant%20Tumor">Malignant Tumor</a>'
        '<a href="/search?condition=Child%2C%20Only">Child, Only</a>'
        '<a href="/search?condition=CAR-T">CAR-T</a>',
        "<span>Malignant TumorChild, OnlyCAR-T</span>")
    record = parse_medpath(response(html, html=True))
    assert record.conditions == []
    assert any(n.field == "conditions" and n.kind == "unsplit_list" for n in record.notes)


def test_location_count_that_disagrees_with_the_list_is_noted():
    html = (SRC / "NCT04691349.html").read_text(encoding="utf-8").replace("Locations (1)", "Locations (2)")
    record = parse_medpath(response(html, html=True))
    assert len(record.locations) == 1
    assert any(n.field == "locations" and n.kind == "in_page_disagreement" for n in record.notes)


def test_spider_turns_an_unreadable_page_into_a_counted_reject():
    from scrapy.utils.test import get_crawler

    from items import Reject

    crawler = get_crawler(MedpathSpider)
    spider = MedpathSpider.from_crawler(crawler)
    crawler.stats.open_spider()
    page = response("<html><body><h1>Page not found</h1></body></html>", html=True)
    [item] = list(spider.parse_study(page))
    assert isinstance(item, Reject) and item.stage == "parse" and "not a MedPath study page" in item.error
    assert crawler.stats.get_value("harvester/parse_error/medpath") == 1


@pytest.mark.parametrize("printed, kept, kind", [
    ("N/A", [], "rejected_identifier"),
    ("ChiCTR2000012345", [("ChiCTR2000012345", "CHICTR")], "identifier_kind_mismatch"),
])
def test_registration_number_that_is_not_an_nct_id(printed, kept, kind):
    html = (SRC / "NCT04691349.html").read_text(encoding="utf-8").replace("NCT04691349", printed)
    record = parse_medpath(response(html, html=True))
    assert record.nct_id is None
    assert [(i.id, i.kind) for i in record.secondary_ids if i.kind != "SITE"] == kept
    assert [n.kind for n in record.notes if n.field == "nct_id"] == [kind]


# --- design, arms and locations: bad forms ----------------------------------------------
def _served_html() -> str:
    return (SRC / "NCT04691349.html").read_text(encoding="utf-8")


def test_unknown_study_design_word_is_no_value_and_noted():
    html = _served_html().replace(">SINGLE_GROUP<", ">ADAPTIVE<")
    assert ">ADAPTIVE<" in html
    record = parse_medpath(response(html, html=True))
    assert record.design.intervention_model is None and record.raw["design.intervention_model"] == "ADAPTIVE"
    [note] = [n for n in record.notes if n.field.startswith("design")]
    assert (note.field, note.kind) == ("design.intervention_model", "unmapped_vocabulary")


def test_observational_study_design_is_the_observational_model():
    html = (_served_html().replace(">SINGLE_GROUP<", ">COHORT<")
            .replace(">INTERVENTIONAL<", ">OBSERVATIONAL<"))
    record = parse_medpath(response(html, html=True))
    assert record.design.model_dump(exclude_defaults=True) == {"observational_model": "COHORT"}
    assert not any(n.field.startswith("design") for n in record.notes)


def test_location_line_with_no_country_gets_no_code_and_a_note():
    html = _served_html().replace("Suzhou, Jiangsu, China", "Suzhou, Jiangsu")
    assert "Suzhou, Jiangsu<" in html
    record = parse_medpath(response(html, html=True))
    [loc] = record.locations
    # two parts read as city and country: "Jiangsu" is no country ISO knows
    assert (loc.city, loc.country, loc.country_code) == ("Suzhou", "Jiangsu", None)
    [note] = [n for n in record.notes if n.field == "locations"]
    assert note.kind == "unmapped_vocabulary" and "Jiangsu" in note.detail


def test_empty_arms_table_and_empty_study_design_give_no_values():
    html = _served_html()
    # the arms block with its label and no table; "Study Design" with no value
    start = html.index('<div class="field"><h3>Arm &amp;&amp; Interventions</h3>')
    end = html.index('<div class="field"><h3>Primary Outcome Measures</h3>')
    emptied = (html[:start] + '<div class="field"><h3>Arm &amp;&amp; Interventions</h3></div>\n' + html[end:]
               ).replace("<p>SINGLE_GROUP</p>", "")
    record = parse_medpath(response(emptied, html=True))
    assert record.arm_groups == [] and record.design.intervention_model is None
    assert "arm_groups" not in record.raw
    assert not any(n.field in ("arm_groups", "design.intervention_model") for n in record.notes)


# --- reconciled with the CT.gov record ----------------------------------------------------
def _ctgov_004():
    from datetime import datetime, timezone

    from spiders.ctgov import CtgovStudyPage
    from tests._project import CASSETTES as cassettes

    study = json.loads((cassettes / "src" / "ctgov" / "assembled_NCT04691349.json").read_text(encoding="utf-8"))
    return CtgovStudyPage(study, fetched=datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)).to_record()


def test_design_arms_and_locations_reconcile_with_the_ctgov_record(served):
    """The page's design, arm group and location agree with the CT.gov
    record's (China = CN on both, the arm by its label); a location in
    another city is a conflict that keeps both pages' values."""
    from tests.test_reconciliation import conflict, one

    trial = one([_ctgov_004(), served])
    assert trial["conflicts"] == []
    assert trial["design"]["intervention_model"]["value"] == "SINGLE_GROUP"
    assert [a["label"] for a in trial["arm_groups"]["value"]] == ["Chimeric antigen receptor T cell"]
    assert trial["locations"]["value"][0]["country_code"] == "CN"
    moved = parse_medpath(response(_served_html().replace("Suzhou, Jiangsu, China", "Wuxi, Jiangsu, China"),
                                   html=True))
    trial = one([_ctgov_004(), moved])
    found = conflict(trial, "locations")
    assert found is not None and found["chosen_site"] == "ctgov"
    assert [(v["site"], v["value"][0]["city"]) for v in found["values"]] == [("ctgov", "Suzhou"), ("medpath", "Wuxi")]
