"""ClinicalTrials.Veeva: golden records from the real page texts, the same
text in three forms, the reject rule, and offline crawls from the cassette.

Every expected value below was read by hand from the page text in
`cassettes/src/veeva/text/` (seeds 002 and 003, the two reference texts).
"""
from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
import scrapy
from scrapy.http import HtmlResponse, TextResponse, XmlResponse
from scrapy.utils.test import get_crawler

from _loopback import offline_env
from harvester.store import Store
from items import Reject, SourceRecord
from pipelines.validate import content_hash
from spiders.veeva import VeevaSpider, parse_veeva, study_slug, study_url
from tests._padding import assert_padding_noted_and_counted

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "cassettes" / "src" / "veeva"
DATE = "Mon, 23 Nov 2026 09:00:00 GMT"
FETCHED = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)

URL_003 = ("https://ctv.veeva.com/study/chimeric-antigen-receptor-car-modified-t-cell-therapy-in-"
           "treating-patients-with-acute-lymphoblastic-leukemia")
URL_05270772 = "https://ctv.veeva.com/study/car-t-19-cells-for-patients-with-cd19-relapse-refractory-b-all"
URL_03263208 = "https://ctv.veeva.com/study/cd19-car-t-cells-for-patients-with-relapse-and-refractory-cd19-b-all"
URL_002 = "https://ctv.veeva.com/study/seed-002-cd7-car-t"  # assembled: seed 002's text has no title
PAGES = {"seed003": URL_003, "seed002": URL_002,
         "ref_NCT05270772": URL_05270772, "ref_NCT03263208": URL_03263208}


def html_response(body: str | bytes, url: str) -> HtmlResponse:
    body = body.encode("utf-8") if isinstance(body, str) else body
    return HtmlResponse(url=url, body=body, headers={"Date": DATE, "Content-Type": "text/html; charset=utf-8"})


def text_response(text: str, url: str) -> TextResponse:
    return TextResponse(url=url, body=text.encode("utf-8"), encoding="utf-8",
                        headers={"Date": DATE, "Content-Type": "text/plain; charset=utf-8"})


def page_text(name: str) -> str:
    return (SRC / "text" / f"{name}.txt").read_text(encoding="utf-8")


def parse_page(name: str) -> SourceRecord:
    """The cassette page (headings + paragraphs HTML)."""
    return parse_veeva(html_response((SRC / f"{name}.html").read_bytes(), PAGES[name]))


def note_kinds(record):
    return sorted((n.field, n.kind) for n in record.notes)


def unmark(item: str) -> str:
    """An item split from a run-on "a) ... b) ..." enumeration, without its marker."""
    return re.sub(r"^[a-z]\)\s*", "", item)


# --- seed 003 ------------------------------------------------------------------------

INCLUSION_003 = [
    "Age: 18-65 years",
    "Patients with Cluster of Differentiation 19 (CD19) positive B cell malignancies as confirmed by flow cytometry",
    "Refractory or relapsed B cell-acute lymphoblastic leukemia",
    "No available curative treatment options (such as hematopoietic stem cell transplantation)",
    "Stage III-IV disease",
    "Creatinine < 2.5 mg/dl",
    "Aspartate transaminase-alanine transaminase ratio < 3x normal",
    "Bilirubin < 2.0 mg/dl",
    "Karnofsky performance status >= 60",
    "Expected survival time > 3 months",
    "Adequate venous access for apheresis",
    "Ability to understand and provide informed consent",
]
EXCLUSION_003 = [
    "Pregnant or lactating women",
    "Patients requiring T cell immunosuppressive therapy",
    "Active central nervous system leukemia",
    "Any concurrent active malignancies",
    "Patients with a history of a seizure disorder or cardiac disorder",
    "Patients with human immunodeficiency virus, hepatitis B or C infection",
    "Uncontrolled active infection",
]


def test_seed003_every_field():
    r = parse_page("seed003")
    assert r.site == "veeva"
    assert r.url == URL_003
    assert r.fetched_at == FETCHED
    assert r.nct_id == "NCT02186860"
    assert [(i.id, i.kind, i.domain) for i in r.secondary_ids] == [("307-CTC-CAR T", "ORG", None)]
    assert r.brief_title == ("Chimeric Antigen Receptor (CAR)-Modified T Cell Therapy in Treating Patients "
                             "With Acute Lymphoblastic Leukemia")
    assert r.official_title is None
    assert r.overall_status == "UNKNOWN"
    assert r.phases == ["PHASE1"]
    assert r.study_type == "INTERVENTIONAL"
    assert (r.enrollment.count, r.enrollment.type) == (5, "ESTIMATED")
    assert r.conditions == ["Acute Lymphoblastic Leukemia"]
    assert [(i.type, i.name) for i in r.interventions] == [("BIOLOGICAL", "CAR-T cells")]
    # after the one-letter logo placeholder "A"; "Funder types: Other" -> AgencyClass OTHER
    assert r.lead_sponsor.name == "Affiliated Hospital to Academy of Military Medical Sciences"
    assert r.lead_sponsor.class_ == "OTHER"
    assert r.collaborators == []
    e = r.eligibility
    assert e.sex == "ALL"
    assert (e.min_age_years, e.max_age_years) == (18, 65)
    assert e.age_text == "18 to 65 years old"
    assert e.healthy_volunteers is False
    assert e.inclusion == INCLUSION_003
    assert e.exclusion == EXCLUSION_003
    assert e.criteria_text == "\n".join(["Inclusion criteria", *INCLUSION_003, "",
                                         "Exclusion criteria", *EXCLUSION_003])
    assert r.brief_summary == (
        "Traditional standard treatments of B cell acute lymphoblastic leukemia is not perfect for fighting "
        "cancer. Many people do not respond to the standard treatments of ALL. One possible treatment is "
        "chimeric antigen receptor (CAR) modified T cell infusions. This study aims to evaluate the safety and "
        "efficacy of novel CARTs (targeting CD19) in the treatment of refractory or recurrent ALL.The "
        "investigators start Phase I study aimed to chemotherapy resistant or refractory acute lymphoblastic "
        "leukemia patients. The purpose of this study is to assess the safety and effectiveness of CAR-T cells "
        "in patients.")
    assert r.detailed_description == (
        "CAR-T has stronger effect of anti-tumor capacity. While people have been able to control the clinical "
        "complications now, so conducting CAR-T clinical trials has a strong demand and value. This study aims "
        "to evaluate the safety and efficacy of CD19-CART in treating refractory or recurrent ALL.")
    assert r.primary_outcomes == [] and r.start_date is None
    # "Trial design": Primary purpose Treatment, Allocation N/A, Interventional
    # model Single Group Assignment, Masking None (Open label)
    assert r.design.model_dump(exclude_defaults=True) == {
        "primary_purpose": "TREATMENT", "allocation": "NA", "intervention_model": "SINGLE_GROUP", "masking": "NONE"}
    assert r.design.who_masked == []
    assert (r.raw["design.primary_purpose"], r.raw["design.allocation"], r.raw["design.intervention_model"],
            r.raw["design.masking"]) == ("Treatment", "N/A", "Single Group Assignment", "None (Open label)")
    # "5 participants in 1 patient group", then the group: label, type, Description:, Treatment:
    assert [a.model_dump() for a in r.arm_groups] == [{
        "label": "CAR-T cells", "type": "EXPERIMENTAL", "description": "Targeting CD19",
        "intervention_names": ["Biological: CAR-T cells"]}]
    assert r.raw["arm_groups"] == ["CAR-T cells", "Experimental group", "Description:", "Targeting CD19",
                                   "Treatment:", "Biological: CAR-T cells"]
    # "Central trial contact": two names separated by ";"
    assert [(c.name, c.role) for c in r.central_contacts] == [
        ("Yao Sun, M.D., Ph.D.", "CONTACT"), ("Liangding Hu, M.D.", "CONTACT")]
    assert r.overall_officials == []
    # "Trial contacts and locations": "1", then "Loading...": the site is filled
    # in by script, not in the page; the count is kept, no location claimed
    assert r.locations == [] and r.raw["locations_count"] == 1
    # printed values kept where they differ from the normalized ones
    assert r.raw["overall_status"] == "Unknown"
    assert r.raw["phases"] == ["Phase 1"]
    assert r.raw["study_type"] == "Interventional"
    assert r.raw["funder_types"] == ["Other"]
    assert r.raw["enrollment"] == "5 estimated patients"
    assert r.raw["eligibility.sex"] == "All"
    assert r.raw["eligibility.healthy_volunteers"] == "No Healthy Volunteers"
    # Enrollment and the trial design agree (5 and 5): both kept, no disagreement
    assert r.raw["enrollment_figures"] == [
        {"count": 5, "where": "Enrollment", "text": "5 estimated patients"},
        {"count": 5, "where": "Trial design", "text": "5 participants in 1 patient group"},
    ]
    assert r.notes == []


def test_seed003_record_validates_and_keeps_its_body():
    r = parse_page("seed003")
    again = SourceRecord.model_validate(r.model_dump(by_alias=True))
    assert content_hash(again) == content_hash(r)
    crawler = get_crawler(VeevaSpider)
    spider = VeevaSpider.from_crawler(crawler, urls=URL_003)
    crawler.stats.open_spider()
    body = (SRC / "seed003.html").read_bytes()
    page = html_response(body, URL_003).replace(request=scrapy.Request(URL_003))
    [item] = list(spider.parse_study(page))
    assert item.record == r and item.body == body


# --- seed 002 ------------------------------------------------------------------------

def test_seed002_no_nct_id_is_kept_with_nothing_invented():
    r = parse_page("seed002")
    assert r.nct_id is None
    assert r.secondary_ids == []
    # the saved text starts at "Status": no title, no sponsor on the page
    assert r.brief_title is None and r.lead_sponsor is None
    # "Status", "Conditions", "Treatments" printed with no value; no "Study type" label at all
    assert r.overall_status is None and r.phases == []
    assert r.conditions == [] and r.interventions == []
    assert r.study_type is None
    assert r.eligibility.sex is None
    assert r.eligibility.healthy_volunteers is None
    assert r.brief_summary.startswith("This study is a single-arm, multicenter Investigator-Initiated Trial (IIT)")
    assert r.brief_summary.endswith("with the actual sample size to be determined based on real-world occurrence.")
    assert r.detailed_description is None


def test_seed002_labels_printed_with_no_value_are_noted():
    r = parse_page("seed002")
    missing = sorted(n.field for n in r.notes if n.kind == "missing_value")
    assert missing == sorted(["overall_status", "conditions", "interventions", "enrollment",
                              "eligibility.sex", "eligibility.age_text", "eligibility.healthy_volunteers",
                              "design.primary_purpose", "design.allocation", "design.intervention_model",
                              "design.masking", "arm_groups"])


def test_seed002_blank_trial_design_gives_no_values():
    """Seed 002 prints the trial-design labels with no value under them, then
    "28 participants in 1 patient group" and no group: nothing is read from
    the blank block (the participants line is no masking), and the missing
    group is noted."""
    r = parse_page("seed002")
    assert r.design.model_dump(exclude_defaults=True) == {}
    assert r.arm_groups == [] and r.central_contacts == [] and r.locations == []
    assert not any(k.startswith("design.") or k in ("arm_groups", "locations_count") for k in r.raw)
    [groups] = [n for n in r.notes if n.field == "arm_groups"]
    assert groups.kind == "missing_value" and "28 participants in 1 patient group" in groups.detail


def test_seed002_enrollment_disagreement_is_kept_not_resolved():
    r = parse_page("seed002")
    # the trial design's figure is the structured one; planned/actual is not printed there
    assert (r.enrollment.count, r.enrollment.type) == (28, None)
    assert r.raw["enrollment_figures"] == [
        {"count": 28, "where": "Trial design", "text": "28 participants in 1 patient group"},
        {"count": 20, "where": "About", "text": "plans to enroll 20 subjects"},
    ]
    disagreement = [n for n in r.notes if n.kind == "in_page_disagreement"]
    assert [n.field for n in disagreement] == ["enrollment"]
    assert "28" in disagreement[0].detail and "20" in disagreement[0].detail
    assert "Trial design" in disagreement[0].detail and "About" in disagreement[0].detail
    moved = [n for n in r.notes if n.kind == "from_other_section" and n.field == "enrollment"]
    assert len(moved) == 1 and "28 participants in 1 patient group" in moved[0].detail


def test_seed002_ages_from_the_inclusion_criterion():
    r = parse_page("seed002")
    e = r.eligibility
    assert (e.min_age_years, e.max_age_years) == (18, 85)
    assert e.age_text is None  # nothing printed under "Ages"
    assert r.raw["ages_from_criteria"] == "Aged 18-85 years (inclusive)"
    moved = sorted(n.field for n in r.notes if n.kind == "from_other_section" and n.field != "enrollment")
    assert moved == ["eligibility.max_age_years", "eligibility.min_age_years"]
    assert all("Aged 18-85 years (inclusive)" in n.detail for n in r.notes
               if n.kind == "from_other_section" and n.field.startswith("eligibility."))


def test_seed002_run_on_criteria_are_split():
    e = parse_page("seed002").eligibility
    inc = [unmark(i) for i in e.inclusion]
    # 9 printed paragraphs; the first two each carry a run-on "a) ... b) ..." -> 2 + 2 more items
    assert len(inc) == 13
    assert inc[0] == (
        "Aged 18-85 years (inclusive), gender not restricted. Subjects diagnosed according to WHO 2016 criteria "
        "with relapsed/refractory acute T-lymphoblastic leukemia/lymphoma (including early T-precursor "
        "lymphoblastic leukemia) who have failed standard treatment or lack effective treatment options, "
        "meeting any of the following criteria:")
    assert inc[1].startswith("Relapsed: Previously received at least two treatment regimens")
    assert inc[1].endswith("followed by disease recurrence.")
    assert inc[2].startswith("Refractory: Previously received at least two treatment regimens")
    assert inc[2].endswith("experienced disease progression after stem cell transplantation.")
    assert inc[3].startswith("Diagnosed with AML according to the 2016 WHO classification")
    assert inc[3].endswith("(2017 Edition):")
    assert inc[4].startswith("Diagnostic criteria for relapsed AML:")
    assert inc[5].startswith("Diagnostic criteria for refractory AML:")
    assert inc[5].endswith("Persistent extramedullary leukemia.")
    assert inc[6].endswith("with tumor positivity rate \u226570%.")
    assert inc[9] == "ECOG performance status score 0-2 and life expectancy >3 months."
    assert inc[10] == "Appropriate organ function:"
    assert inc[12].endswith("Patients failing to meet any of the above criteria will not be enrolled as subjects.")
    # the exclusion list ends at "Primary purpose" (there is no "Trial design" heading in this text)
    assert len(e.exclusion) == 12
    assert e.exclusion[0].startswith("Patients with clinically symptomatic central nervous system leukemia.")
    assert e.exclusion[-1] == ("Patients with contraindications to any study procedures or other medical "
                               "conditions that may put them at unacceptable risk according to investigator "
                               "judgment and/or clinical standards.")


# --- the reference texts (cut at about 2,000 characters) ---------------------------------

def test_reference_NCT05270772():
    r = parse_page("ref_NCT05270772")
    assert r.nct_id == "NCT05270772"
    assert [(i.id, i.kind) for i in r.secondary_ids] == [("CT19-ALL-02", "ORG")]
    assert r.brief_title == "CAR-T-19 Cells for Patients With CD19+ Relapse/Refractory B-ALL"
    assert (r.lead_sponsor.name, r.lead_sponsor.class_) == ("Chinese PLA General Hospital (301 Hospital)", "OTHER")
    assert r.overall_status == "RECRUITING" and r.raw["overall_status"] == "Enrolling"
    assert r.phases == ["PHASE1"]
    assert r.study_type == "INTERVENTIONAL"
    assert r.conditions == ["CD19+ Relapse/Refractory B-ALL"]
    assert [(i.type, i.name) for i in r.interventions] == [("BIOLOGICAL", "CAR-T-19 Cells")]
    assert (r.enrollment.count, r.enrollment.type) == (9, "ESTIMATED")
    e = r.eligibility
    assert e.sex == "ALL" and e.healthy_volunteers is False
    assert (e.min_age_years, e.max_age_years, e.age_text) == (None, 25, "Under 25 years old")
    assert e.inclusion == [
        "Patients with relapse/refractory B-ALL.",
        "Tumor cells from bone marrow or peripheral blood are measured CD19+ with 3 months before enrollment.",
        "Karnofsky Score \u2265 70 or Lansky Score \u2265 50.",
        "Patients who have a life expectancy of at least 12 weeks.",
        "Understand and voluntarily sign informed consent and are willing to comply with laboratory tests and "
        "other research procedures.",
    ]
    assert e.exclusion == [  # the saved text ends after the third
        "Patients with extramedullary relapse (EMR).",
        "Patients with genetic diseases, Burkitt lymphoma and leukemia or other malignancies.",
        "Patients positive for any of the following: HbsAg, HBV-DNA, HCV-Ab, HCV-RNA, HIV-Ab, TP-Ab, EBV-DNA "
        "or CMV-DNA.",
    ]
    assert r.detailed_description.split("\n\n") == [
        "B-cell acute lymphoblastic leukemia (B-ALL) accounting for 85% of all ALL cases, is a common "
        "hematological malignancy in children and adults. CD19 is a widely expressed antigen in both normal B "
        "cells and B cells-derived leukemia and lymphomas. This is a single-arm, open-label phase I study of "
        "CAR-T-19 (anti CD19 scFv chimeric antigen receptor T) cells for patients with CD19-positive "
        "relapse/refractory B-ALL under the age of 25.",
        "Primary endpoint is to determine the safety, tolerability, and recommended dose (RD) of CAR-T-19. "
        "Secondary endpoints measure ORR, OS and others.",
    ]
    assert r.notes == []


def test_reference_NCT03263208_two_phases_two_funder_types_cut_criteria():
    r = parse_page("ref_NCT03263208")
    assert r.nct_id == "NCT03263208"
    assert [(i.id, i.kind) for i in r.secondary_ids] == [("HenanCH152", "ORG")]
    assert r.brief_title == "CD19 CAR-T Cells for Patients With Relapse and Refractory CD19+ B-ALL."
    assert r.overall_status == "UNKNOWN"
    assert r.phases == ["PHASE1", "PHASE2"]  # printed "Phase 2" then "Phase 1"
    assert r.raw["phases"] == ["Phase 2", "Phase 1"]
    assert r.conditions == ["B-cell Acute Lymphocytic Leukemia"]
    assert [(i.type, i.name) for i in r.interventions] == [
        ("DRUG", "Fludarabine"), ("BIOLOGICAL", "CD19 CAR-T"), ("DRUG", "Cyclophosphamide")]
    # two funder types: which one is the lead sponsor's is not printed
    assert r.raw["funder_types"] == ["Other", "Industry"]
    assert (r.lead_sponsor.name, r.lead_sponsor.class_) == ("Henan Cancer Hospital", None)
    assert note_kinds(r) == [("lead_sponsor.class", "ambiguous")]
    assert (r.enrollment.count, r.enrollment.type) == (20, "ESTIMATED")
    e = r.eligibility
    assert (e.min_age_years, e.max_age_years, e.age_text) == (2, 70, "2 to 70 years old")
    assert e.sex == "ALL" and e.healthy_volunteers is False
    # the saved text ends in the middle of the third criterion; no exclusion list
    assert e.inclusion == ["2 years to 70 years, expected survival > 3 months;",
                           "CD19 positive B-cell acute lymphoblastic leukemia;",
                           "ECOG <"]
    assert e.exclusion == []
    assert len(r.detailed_description.split("\n\n")) == 3


# --- the same text in three forms ---------------------------------------------------

# Veeva's visible labels, as a reader of the pages sees them (for building the
# other forms; the parser has its own table).
HEADINGS = {"Status and phase", "Status", "Conditions", "Treatments", "Study type", "Funder types",
            "Identifiers", "Details and patient eligibility", "About", "Full description", "Enrollment",
            "Sex", "Ages", "Volunteers", "Inclusion criteria", "Exclusion criteria", "Trial design",
            "Primary purpose", "Allocation", "Interventional model", "Masking", "Trial contacts and locations",
            "Central trial contact", "Data sourced from clinicaltrials.gov"}
ITEM = re.compile(r"^\s+(?:\u2022|\d+\.)\s+(.*)$")


def _blocks(text: str):
    """(header lines, [(label, [(is_item, text)])]) of a saved page text."""
    header, blocks = [], []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        if raw.strip() in HEADINGS:
            blocks.append((raw.strip(), []))
        elif blocks:
            m = ITEM.match(raw)
            blocks[-1][1].append((bool(m), (m.group(1) if m else raw).strip()))
        else:
            header.append(raw.strip())
    return header, blocks


def definition_list_form(text: str) -> str:
    """Form 2a: each label a <dt>, its value a <dd> (list items as <ul><li>)."""
    esc = html.escape
    header, blocks = _blocks(text)
    out = ["<html><body><div id='app'>"]
    out += [f"<div class='hdr'><span>{esc(h)}</span></div>" for h in header]
    out.append("<dl class='study'>")
    for label, values in blocks:
        out.append(f"<dt>{esc(label)}</dt>")
        if values:
            out.append("<dd>")
            in_list = False
            for is_item, value in values:
                if is_item and not in_list:
                    out.append("<ul class='criteria'>")
                    in_list = True
                elif not is_item and in_list:
                    out.append("</ul>")
                    in_list = False
                out.append(f"<li>{esc(value)}</li>" if is_item else f"<div>{esc(value)}</div>")
            out.append("</ul></dd>" if in_list else "</dd>")
    out.append("</dl></div></body></html>")
    return "\n".join(out)


def nested_div_form(text: str) -> str:
    """Form 2b: a redesign with nothing but nested <div>/<span>s and new class
    names; list items are plain divs."""
    esc = html.escape
    header, blocks = _blocks(text)
    out = ["<html><body><div class='x1'><div class='x2'>"]
    out += [f"<div class='t{i}'><div><span>{esc(h)}</span></div></div>" for i, h in enumerate(header)]
    for label, values in blocks:
        out.append(f"<div class='field'><div class='field__label'><span>{esc(label)}</span></div>"
                   "<div class='field__body'>")
        out += [f"<div class='row'><span class='v'>{esc(v)}</span></div>" for _, v in values]
        out.append("</div></div>")
    out.append("</div></div></body></html>")
    return "\n".join(out)


@pytest.mark.parametrize("name", list(PAGES))
def test_three_forms_give_the_same_record(name):
    url, text = PAGES[name], page_text(name)
    headings_and_paragraphs = parse_page(name)  # the cassette page
    definition_list = parse_veeva(html_response(definition_list_form(text), url))
    nested_divs = parse_veeva(html_response(nested_div_form(text), url))
    plain_text = parse_veeva(text_response(text, url))
    expected = headings_and_paragraphs.model_dump()
    assert definition_list.model_dump() == expected
    assert nested_divs.model_dump() == expected
    assert plain_text.model_dump() == expected


def test_the_other_forms_really_differ_in_markup():
    text = page_text("seed003")
    assert "<dt>Sex</dt>" in definition_list_form(text)
    assert "<h2>" not in nested_div_form(text) and "<li>" not in nested_div_form(text)


# --- vocabulary, rejects ---------------------------------------------------------------

def test_unknown_status_word_is_unknown_and_noted():
    text = page_text("seed003").replace("\nUnknown\nPhase 1", "\nPaused for review\nPhase 1")
    assert "Paused for review" in text
    r = parse_veeva(text_response(text, URL_003))
    assert r.overall_status == "UNKNOWN"
    assert r.raw["overall_status"] == "Paused for review"
    assert r.phases == ["PHASE1"]
    [note] = r.notes
    assert (note.field, note.kind) == ("overall_status", "unmapped_vocabulary")
    assert "Paused for review" in note.detail


def test_other_status_words():
    for printed, expected in [("Not yet enrolling", "NOT_YET_RECRUITING"), ("Completed", "COMPLETED"),
                              ("Active, not recruiting", "ACTIVE_NOT_RECRUITING"), ("Terminated", "TERMINATED")]:
        text = page_text("seed003").replace("\nUnknown\nPhase 1", f"\n{printed}\nPhase 1")
        r = parse_veeva(text_response(text, URL_003))
        assert (r.overall_status, r.notes) == (expected, []), printed


def test_unknown_design_word_is_no_value_and_noted():
    text = page_text("seed003").replace("\nSingle Group Assignment\n", "\nAdaptive Platform\n")
    r = parse_veeva(text_response(text, URL_003))
    assert r.design.intervention_model is None
    assert r.raw["design.intervention_model"] == "Adaptive Platform"
    assert r.design.allocation == "NA" and r.design.masking == "NONE"  # the other labels still read
    [note] = r.notes
    assert (note.field, note.kind) == ("design.intervention_model", "unmapped_vocabulary")
    assert "Adaptive Platform" in note.detail


def test_observational_design_labels():
    text = (page_text("seed003").replace("Interventional model\n\nSingle Group Assignment",
                                         "Observational model\n\nCohort\n\nTime perspective\n\nProspective")
            .replace("Allocation\n\nN/A\n\n", "").replace("Masking\n\nNone (Open label)\n\n", ""))
    assert "Time perspective" in text and "Masking" not in text
    r = parse_veeva(text_response(text, URL_003))
    assert r.design.model_dump(exclude_defaults=True) == {
        "primary_purpose": "TREATMENT", "observational_model": "COHORT", "time_perspective": "PROSPECTIVE"}
    assert [a.label for a in r.arm_groups] == ["CAR-T cells"]  # the groups follow "Time perspective" now
    assert r.notes == []


def test_groups_without_the_participants_line_are_kept_in_raw_not_guessed():
    text = page_text("seed003").replace("5 participants in 1 patient group\n", "")
    r = parse_veeva(text_response(text, URL_003))
    assert r.arm_groups == [] and r.design.masking == "NONE"
    assert r.raw["trial_design_unread"] == ["CAR-T cells", "Experimental group", "Description:", "Targeting CD19",
                                            "Treatment:", "Biological: CAR-T cells"]
    assert [(n.field, n.kind) for n in r.notes] == [("arm_groups", "unlabelled_text")]


def test_masking_with_who_is_masked():
    text = page_text("seed003").replace("None (Open label)", "Double (Participant, Investigator)")
    r = parse_veeva(text_response(text, URL_003))
    assert (r.design.masking, r.design.who_masked) == ("DOUBLE", ["PARTICIPANT", "INVESTIGATOR"])
    assert r.notes == []


def test_two_patient_groups_with_and_without_parts():
    """Groups are told apart by their type line and by the end of their
    interventions; a group may print no description or no treatment."""
    text = page_text("seed003").replace(
        "5 participants in 1 patient group\n\nCAR-T cells\nExperimental group\nDescription:\nTargeting CD19\n"
        "Treatment:\nBiological: CAR-T cells\n",
        "5 participants in 2 patient groups\n\nCAR-T cells\nExperimental group\nDescription:\nTargeting CD19\n"
        "Treatment:\nBiological: CAR-T cells\nDrug: Fludarabine\nObservation\nNo Intervention group\n"
        "Description:\nStandard follow-up\n")
    assert "2 patient groups" in text
    r = parse_veeva(text_response(text, URL_003))
    assert [a.model_dump() for a in r.arm_groups] == [
        {"label": "CAR-T cells", "type": "EXPERIMENTAL", "description": "Targeting CD19",
         "intervention_names": ["Biological: CAR-T cells", "Drug: Fludarabine"]},
        {"label": "Observation", "type": "NO_INTERVENTION", "description": "Standard follow-up",
         "intervention_names": []}]
    assert not any(n.field == "arm_groups" for n in r.notes)


def test_group_count_that_disagrees_with_the_groups_listed_is_noted():
    text = page_text("seed003").replace("5 participants in 1 patient group", "5 participants in 2 patient groups")
    r = parse_veeva(text_response(text, URL_003))
    assert [a.label for a in r.arm_groups] == ["CAR-T cells"]
    [note] = [n for n in r.notes if n.field == "arm_groups"]
    assert note.kind == "in_page_disagreement" and "2 patient groups" in note.detail


def test_unknown_group_type_is_kept_in_raw_and_noted():
    text = page_text("seed003").replace("Experimental group", "Investigational group")
    r = parse_veeva(text_response(text, URL_003))
    [arm] = r.arm_groups
    assert (arm.label, arm.type, arm.description) == ("CAR-T cells", None, "Targeting CD19")
    assert "Investigational group" in r.raw["arm_groups"]
    [note] = r.notes
    assert (note.field, note.kind) == ("arm_groups", "unmapped_vocabulary")


def test_contact_label_with_no_value_gives_no_contact():
    text = page_text("seed003").replace("Yao Sun, M.D., Ph.D.; Liangding Hu, M.D.\n", "")
    r = parse_veeva(text_response(text, URL_003))
    assert r.central_contacts == []
    [note] = r.notes
    assert (note.field, note.kind) == ("central_contacts", "missing_value")
    assert all("Data sourced" not in str(v) and "Copyright" not in str(v) for v in r.raw.values())


def test_a_page_without_the_labels_is_rejected_with_a_reason():
    body = (SRC / "not-a-study-page.html").read_bytes()
    with pytest.raises(ValueError, match="not a Veeva study page"):
        parse_veeva(html_response(body, "https://ctv.veeva.com/study/not-a-study-page"))
    crawler = get_crawler(VeevaSpider)
    spider = VeevaSpider.from_crawler(crawler, urls=URL_003)
    crawler.stats.open_spider()
    out = spider.record_or_reject(html_response(body, "https://ctv.veeva.com/study/not-a-study-page"))
    assert isinstance(out, Reject)
    assert out.stage == "parse" and "labels" in out.error
    assert crawler.stats.get_value("harvester/parse_error/veeva") == 1


def test_a_header_only_page_is_rejected():
    text = "ClinicalTrials.Veeva\nMenu\nSome title\nA\nA sponsor\nSex\nAll\n"
    with pytest.raises(ValueError, match="1 of its labels"):
        parse_veeva(text_response(text, URL_003))


# --- URLs and spider arguments ----------------------------------------------------------

def test_slug_from_brief_title():
    assert study_url("Chimeric Antigen Receptor (CAR)-Modified T Cell Therapy in Treating Patients With "
                     "Acute Lymphoblastic Leukemia") == URL_003
    assert study_url("CAR-T-19 Cells for Patients With CD19+ Relapse/Refractory B-ALL") == URL_05270772
    assert study_url("CD19 CAR-T Cells for Patients With Relapse and Refractory CD19+ B-ALL.") == URL_03263208
    assert study_slug("  --A  b__C--  ") == "a-b-c"


def test_urls_argument_refuses_other_hosts_and_study_search():
    with pytest.raises(ValueError, match="robots.txt"):
        VeevaSpider(urls="https://ctv.veeva.com/study-search?q=car-t")
    with pytest.raises(ValueError, match="not a ctv.veeva.com page"):
        VeevaSpider(urls="https://example.org/study/x")
    with pytest.raises(ValueError, match="not an NCT ID"):
        VeevaSpider(nct="12345")
    assert VeevaSpider(urls=f"{URL_003}, {URL_002}").urls == [URL_003, URL_002]


def _store_title(db: Path, nct_id: str, title: str, site="ctgov", url=None):
    record = SourceRecord(site=site, url=url or f"https://clinicaltrials.gov/api/v2/studies/{nct_id}",
                          fetched_at=FETCHED, nct_id=nct_id, brief_title=title)
    record.content_hash = content_hash(record)
    with Store(db) as store:
        store.upsert(record)


def test_nct_argument_takes_the_slug_from_a_stored_title(tmp_path):
    db = tmp_path / "h.sqlite3"
    _store_title(db, "NCT02186860", "Chimeric Antigen Receptor (CAR)-Modified T Cell Therapy in Treating "
                                    "Patients With Acute Lymphoblastic Leukemia")
    crawler = get_crawler(VeevaSpider, {"HARVEST_DB": str(db)})
    spider = VeevaSpider.from_crawler(crawler, nct="nct02186860")
    assert spider.ncts == ["NCT02186860"]
    assert spider.urls_for_ncts(["NCT02186860", "NCT05270772"]) == {"NCT02186860": URL_003}


def test_nct_argument_prefers_the_ctgov_title(tmp_path):
    db = tmp_path / "h.sqlite3"
    _store_title(db, "NCT05270772", "A Republisher's Own Title", site="clinconnect",
                 url="https://clinconnect.io/trials/NCT05270772")
    _store_title(db, "NCT05270772", "CAR-T-19 Cells for Patients With CD19+ Relapse/Refractory B-ALL")
    _store_title(db, "NCT09999998", "Another trial")
    crawler = get_crawler(VeevaSpider, {"HARVEST_DB": str(db)})
    spider = VeevaSpider.from_crawler(crawler, nct="NCT05270772")
    assert spider.urls_for_ncts(["NCT05270772"]) == {"NCT05270772": URL_05270772}


def _sitemap_spider(**kwargs):
    crawler = get_crawler(VeevaSpider)
    spider = VeevaSpider.from_crawler(crawler, **kwargs)
    crawler.stats.open_spider()
    return spider


def _xml(name: str, url: str) -> XmlResponse:
    return XmlResponse(url=url, body=(SRC / name).read_bytes())


def test_sitemap_index_then_shards_one_at_a_time_with_lastmod_in_meta():
    spider = _sitemap_spider()
    [shard1] = list(spider.parse_sitemap(_xml("sitemap.xml", "https://ctv.veeva.com/sitemap.xml")))
    assert shard1.url == "https://ctv.veeva.com/sitemaps/study-sitemap-1.xml"
    out = list(spider.parse_sitemap(_xml("study-sitemap-1.xml", shard1.url)))
    studies, shards = out[:-1], out[-1:]
    assert [(r.url, r.meta["lastmod"]) for r in studies] == [
        (URL_003, "2026-10-02"), (URL_05270772, "2026-11-18"), (URL_03263208, "2026-09-14")]
    assert all(r.callback == spider.parse_study for r in studies)
    assert [r.url for r in shards] == ["https://ctv.veeva.com/sitemaps/study-sitemap-2.xml"]
    last = list(spider.parse_sitemap(_xml("study-sitemap-2.xml", shards[0].url)))
    assert [r.url for r in last] == [URL_002, "https://ctv.veeva.com/study/not-a-study-page"]


def test_sitemap_max_pages_and_since():
    spider = _sitemap_spider(max_pages="2")
    list(spider.parse_sitemap(_xml("sitemap.xml", "https://ctv.veeva.com/sitemap.xml")))
    out = list(spider.parse_sitemap(_xml("study-sitemap-1.xml", "https://ctv.veeva.com/sitemaps/study-sitemap-1.xml")))
    assert [r.url for r in out] == [URL_003, URL_05270772]  # and the second shard is never requested
    spider = _sitemap_spider(since="2026-11-01")
    out = list(spider.parse_sitemap(_xml("study-sitemap-1.xml", "https://ctv.veeva.com/sitemaps/study-sitemap-1.xml")))
    assert [r.url for r in out] == [URL_05270772]


def test_sitemap_never_yields_study_search_or_other_pages():
    spider = _sitemap_spider()
    body = b"""<?xml version="1.0" encoding="UTF-8"?>
    <urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
      <url><loc>https://ctv.veeva.com/study-search?condition=x</loc></url>
      <url><loc>https://ctv.veeva.com/about</loc></url>
      <url><loc>https://ctv.veeva.com/study/a-b</loc></url>
    </urlset>"""
    out = list(spider.parse_sitemap(XmlResponse(url="https://ctv.veeva.com/s.xml", body=body)))
    assert [r.url for r in out] == ["https://ctv.veeva.com/study/a-b"]


# --- offline crawls (scrapy crawl in a subprocess, from cassettes/veeva.yaml) ----------------

def crawl(tmp_path: Path, *args: str, failed: bool = False) -> tuple[subprocess.CompletedProcess, dict, Path]:
    db = tmp_path / "harvest.sqlite3"
    reports = tmp_path / "reports"
    env = offline_env(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "scrapy", "crawl", "veeva", *args,
           "-s", "VCR_CASSETTE=cassettes", "-s", "VCR_RECORD_MODE=none", "-s", "ROBOTSTXT_OBEY=False",
           "-s", f"HARVEST_DB={db}", "-s", f"HARVEST_REPORT_DIR={reports}",
           "-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=False"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == (1 if failed else 0), proc.stderr[-3000:]
    stats = json.loads((reports / "veeva-latest.json").read_text(encoding="utf-8"))["stats"]
    assert not stats.get("vcr/miss"), proc.stderr[-3000:]
    return proc, stats, db


def stored(db: Path) -> dict[str, SourceRecord]:
    with Store(db) as store:
        return {s.record.url: s.record for s in store.iter_sources()}


def test_crawl_urls_offline(tmp_path):
    _, stats, db = crawl(tmp_path, "-a", f"urls={URL_003},{URL_03263208}")
    records = stored(db)
    assert sorted(records) == sorted([URL_003, URL_03263208])
    assert records[URL_003].nct_id == "NCT02186860"
    assert records[URL_03263208].nct_id == "NCT03263208"
    assert all(r.content_hash and r.site == "veeva" for r in records.values())
    expected = parse_page("seed003")
    assert records[URL_003].content_hash == content_hash(expected)
    assert records[URL_003].model_dump(exclude={"content_hash"}) == expected.model_dump(exclude={"content_hash"})
    assert stats["harvester/records/veeva"] == 2
    with Store(db) as store:
        assert store.get_body("veeva", URL_003) == (SRC / "seed003.html").read_bytes()


def test_crawl_sitemap_discovery_offline(tmp_path):
    _, stats, db = crawl(tmp_path, failed=True)  # the cassette's page with none of the labels
    records = stored(db)
    assert sorted(records) == sorted([URL_003, URL_05270772, URL_03263208, URL_002])
    assert records[URL_002].nct_id is None  # kept, not dropped
    assert {r.nct_id for r in records.values()} == {"NCT02186860", "NCT05270772", "NCT03263208", None}
    assert stats["harvester/records_without_nct"] == 1
    assert stats["harvester/notes/in_page_disagreement"] == 1
    # the page with none of the labels: a reject with its reason, counted
    with Store(db) as store:
        [reject] = store.rejects()
    assert reject["url"] == "https://ctv.veeva.com/study/not-a-study-page"
    assert reject["stage"] == "parse" and "not a Veeva study page" in reject["error"]
    assert stats["harvester/parse_error/veeva"] == 1
    assert stats["veeva/sitemap_shards_read"] == 2


def test_crawl_sitemap_max_pages_offline(tmp_path):
    _, stats, db = crawl(tmp_path, "-a", "max_pages=2")
    assert sorted(stored(db)) == sorted([URL_003, URL_05270772])
    assert stats["veeva/sitemap_shards_read"] == 1  # the second shard was not fetched
    assert stats["veeva/stopped_at_max_pages"] is True


def test_crawl_nct_from_stored_title_offline(tmp_path):
    db = tmp_path / "harvest.sqlite3"
    _store_title(db, "NCT05270772", "CAR-T-19 Cells for Patients With CD19+ Relapse/Refractory B-ALL")
    _, stats, _ = crawl(tmp_path, "-a", "nct=NCT05270772,NCT09999999")
    records = {u: r for u, r in stored(db).items() if r.site == "veeva"}
    assert list(records) == [URL_05270772]
    assert records[URL_05270772].nct_id == "NCT05270772"
    assert stats["veeva/nct_without_title"] == 1


def test_crawl_gone_page_is_counted(tmp_path):
    _, stats, db = crawl(tmp_path, "-a", "urls=https://ctv.veeva.com/study/a-withdrawn-study")
    assert stored(db) == {}
    assert stats["veeva/http_404"] == 1


# --- other shapes the site prints ---------------------------------------------------------

def test_veeva_id_without_nct_id():
    # some trials carry only a Veeva ID such as UTN000468416
    text = page_text("seed003").replace("\nNCT02186860\n", "\nUTN000468416\n")
    r = parse_veeva(text_response(text, URL_003))
    assert r.nct_id is None
    assert [(i.id, i.kind) for i in r.secondary_ids] == [("UTN000468416", "UTN"), ("307-CTC-CAR T", "ORG")]


def test_combined_criteria_label_with_numbered_items():
    text = (page_text("ref_NCT05270772").split("Inclusion criteria")[0]
            + "Inclusion and exclusion criteria\n\nInclusion Criteria:\n\n  1. Aged 3 to 18 years\n"
              "  2. Signed consent\n\nExclusion Criteria:\n\n  1. Pregnancy\n\nTrial design\n\n"
              "9 participants in 1 patient group\n")
    r = parse_veeva(text_response(text, URL_05270772))
    assert r.eligibility.inclusion == ["Aged 3 to 18 years", "Signed consent"]
    assert r.eligibility.exclusion == ["Pregnancy"]


def test_enrollment_printed_and_trial_design_disagree():
    text = page_text("seed003").replace("5 participants in 1 patient group", "7 participants in 1 patient group")
    r = parse_veeva(text_response(text, URL_003))
    assert (r.enrollment.count, r.enrollment.type) == (5, "ESTIMATED")  # the Enrollment value stays
    [note] = r.notes
    assert (note.field, note.kind) == ("enrollment", "in_page_disagreement")
    assert "5 estimated patients" in note.detail and "7 participants in 1 patient group" in note.detail


def test_ages_printed_and_criterion_disagree():
    text = page_text("seed003").replace("18 to 65 years old", "18 to 70 years old")
    r = parse_veeva(text_response(text, URL_003))
    assert (r.eligibility.min_age_years, r.eligibility.max_age_years) == (18, 70)  # the Ages value stays
    [note] = r.notes
    assert (note.field, note.kind) == ("eligibility.age_text", "in_page_disagreement")
    assert "Age: 18-65 years" in note.detail


def test_placeholder_identifier_is_dropped_and_noted():
    # seed 003's text with its org study ID line replaced by a placeholder
    text = page_text("seed003").replace("307-CTC-CAR T", "N/A")
    record = parse_veeva(text_response(text, URL_003))
    assert record.nct_id == "NCT02186860"
    assert record.secondary_ids == []
    assert [(n.field, n.kind) for n in record.notes if n.kind == "rejected_identifier"] == [
        ("secondary_ids", "rejected_identifier")]


def test_a_seven_digit_nct_id_is_zero_padded_with_a_note_counted_in_crawl_stats():
    # seed 003's real cassette page with only its NCT ID altered: NCT02186860
    # printed with its last digit dropped, as NCT0218686 (7 digits).
    body = (SRC / "seed003.html").read_text(encoding="utf-8").replace("<p>NCT02186860</p>", "<p>NCT0218686</p>")
    assert "NCT0218686<" in body
    record = parse_veeva(html_response(body, URL_003))
    assert record.nct_id == "NCT00218686"
    assert record.raw["nct_id"] == "NCT0218686"
    assert_padding_noted_and_counted(VeevaSpider, record, "NCT0218686", "NCT00218686")


def test_an_eight_digit_nct_id_gets_no_padding_note():
    record = parse_page("seed003")
    assert "nct_id" not in record.raw
    assert "nct_zero_padded" not in note_kinds(record)
