"""The whole CT.gov record, checked against real API v2 bodies.

Every expected value below was read off the body it is tested on (PALLAS in
`cassettes/src/ctgov/`, the others in `tests/data/ctgov_real/`, copied byte
for byte from the reference set, whose README says where each comes from),
not from the parser's output.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from spiders.ctgov import parse_study

REPO = Path(__file__).resolve().parents[1]
REAL = REPO / "tests" / "data" / "ctgov_real"
PALLAS = REPO / "cassettes" / "src" / "ctgov" / "study_NCT02513394.json"


def parse(path: Path):
    return parse_study(json.loads(path.read_bytes()), fetched="2026-11-23T09:00:00Z")


def real(nct: str):
    return parse(REAL / f"{nct}.json")


@pytest.fixture(scope="module")
def pallas():
    return parse(PALLAS)


# --- PALLAS: with results ----------------------------------------------------------

def test_pallas_status_dates_keep_their_type(pallas):
    assert pallas.acronym == "PALLAS"
    assert pallas.status_verified_date == "2023-04"
    assert pallas.start_date.model_dump() == {"date": "2015-08", "type": None}  # printed without a type
    assert pallas.primary_completion_date.model_dump() == {"date": "2020-11", "type": "ACTUAL"}
    assert pallas.completion_date.model_dump() == {"date": "2025-09", "type": "ESTIMATED"}
    assert pallas.study_first_posted.model_dump() == {"date": "2015-07-31", "type": "ESTIMATED"}
    assert pallas.results_first_posted.model_dump() == {"date": "2022-04-13", "type": "ACTUAL"}
    assert pallas.why_stopped is None and pallas.last_known_status is None


def test_pallas_design_arms_and_interventions(pallas):
    d = pallas.design
    assert (d.allocation, d.intervention_model, d.primary_purpose, d.masking) == (
        "RANDOMIZED", "PARALLEL", "TREATMENT", "NONE")
    assert d.who_masked == [] and d.observational_model is None
    assert [(a.label, a.type, a.intervention_names) for a in pallas.arm_groups] == [
        ("Arm A", "EXPERIMENTAL", ["Drug: Palbociclib", "Drug: Standard Adjuvant Endocrine Therapy"]),
        ("Arm B", "OTHER", ["Drug: Standard Adjuvant Endocrine Therapy"])]
    assert pallas.arm_groups[1].description == "Standard adjuvant endocrine therapy for a duration of at least 5 years."
    assert [(i.name, i.arm_group_labels) for i in pallas.interventions] == [
        ("Palbociclib", ["Arm A"]), ("Standard Adjuvant Endocrine Therapy", ["Arm A", "Arm B"])]


def test_pallas_terms_sponsor_oversight_references(pallas):
    assert pallas.keywords == ["HR+/HER2- breast cancer", "Palbociclib"]
    assert [(m.id, m.term) for m in pallas.condition_mesh] == [("D000001943", "Breast Neoplasms")]
    assert [m.term for m in pallas.condition_mesh_ancestors] == [
        "Neoplasms by Site", "Neoplasms", "Breast Diseases", "Skin Diseases"]
    assert [(m.id, m.term) for m in pallas.intervention_mesh] == [("C000500026", "Palbociclib")]
    assert pallas.intervention_mesh_ancestors[0].term == "Antineoplastic Agents"
    assert pallas.responsible_party.type == "SPONSOR" and pallas.responsible_party.investigator_name is None
    assert pallas.oversight.has_dmc is True and pallas.oversight.fda_regulated_drug is None
    assert [(r.pmid, r.type) for r in pallas.references] == [
        ("34995105", "DERIVED"), ("34874182", "DERIVED"), ("33460574", "DERIVED"), ("30032196", "DERIVED")]
    assert pallas.references[0].citation.startswith("Mayer EL, Fesl C, Hlauschek D")
    assert pallas.ipd_sharing is None and pallas.other_outcomes == []
    assert pallas.eligibility.std_ages == ["ADULT", "OLDER_ADULT"]


def test_pallas_officials_and_sites_with_coordinates(pallas):
    assert [(o.name, o.role, o.affiliation) for o in pallas.overall_officials] == [
        ("Suzanne George, MD", "PRINCIPAL_INVESTIGATOR", "Alliance Foundation Trials, LLC."),
        ("Erica Mayer, MD", "PRINCIPAL_INVESTIGATOR", "Dana-Farber Cancer Institute"),
        ("Angela DeMichele, MD", "PRINCIPAL_INVESTIGATOR", "University of Pennsylvania"),
        ("Michael Gnant, MD", "PRINCIPAL_INVESTIGATOR", "ABCSG, Medical University Vienna")]
    assert pallas.central_contacts == []
    assert len(pallas.locations) == 437
    assert sum(loc.geo_point is not None for loc in pallas.locations) == 435
    first = pallas.locations[0]
    assert (first.zip, first.geo_point.lat, first.geo_point.lon) == ("36604", 30.69436, -88.04305)
    codes = {loc.country: loc.country_code for loc in pallas.locations}
    assert codes["United States"] == "US" and codes["Korea, Republic of"] == "KR" and codes["Taiwan"] == "TW"
    assert sum(loc.country_code == "US" for loc in pallas.locations) == 192
    assert all(loc.country_code for loc in pallas.locations)


def test_pallas_results_summary(pallas):
    assert pallas.has_results is True
    r = pallas.results
    assert [(g.group_id, g.title, g.started, g.completed) for g in r.participant_flow] == [
        ("FG000", "Palbociclib Plus Endocrine Therapy (Arm A)", 2896, 2884),
        ("FG001", "Endocrine Therapy Alone (Arm B)", 2900, 2877)]
    assert [(g.group_id, g.serious_affected, g.serious_at_risk, g.other_affected, g.other_at_risk,
             g.deaths_affected, g.deaths_at_risk) for g in r.adverse_events] == [
        ("EG000", 369, 2841, 2824, 2841, 99, 2841), ("EG001", 229, 2902, 2600, 2902, 76, 2902)]
    assert r.adverse_events_time_frame == "4 years"
    assert [(m.type, m.title, m.unit, m.time_frame, m.param_type) for m in r.outcome_measures] == [
        ("PRIMARY", "Invasive Disease Free Survival (iDFS)", "percentage of participants", "4 years", "NUMBER"),
        ("SECONDARY", "Invasive Disease Free Survival (iDFS) Excluding Second Primary Invasive Cancers of "
         "Non-breast Origin.", "percentage of patients", "4 years", "NUMBER"),
        ("SECONDARY", "Distant Recurrence-free Survival (DRFS)", "percentage of patients", "4 years", "NUMBER"),
        ("SECONDARY", "Overall Survival (OS)", "percentage of patients", "4 years", "NUMBER"),
        ("SECONDARY", "Locoregional Recurrences-free Survival (LRRFS)", "percentage of patients", "4 years",
         "NUMBER")]
    assert [[(v.group_id, v.value) for v in m.values] for m in r.outcome_measures] == [
        [("OG000", "84.2"), ("OG001", "84.5")], [("OG000", "85.4"), ("OG001", "86.0")],
        [("OG000", "86.2"), ("OG001", "87.8")], [("OG000", "93.8"), ("OG001", "95.2")],
        [("OG000", "96.8"), ("OG001", "95.4")]]
    assert r.outcome_measures[0].values[0].group_title == "Palbociclib Plus Endocrine Therapy (Arm A)"


# --- real studies ------------------------------------------------------------------

def test_results_with_three_flow_periods_and_a_dispersion():
    # NCT02438826 (galcanezumab, cluster headache): three periods; the post-
    # treatment groups FG002/FG003 have participants only in the third
    r = real("NCT02438826")
    assert r.has_results is True and r.overall_status == "COMPLETED"
    assert r.start_date.model_dump() == {"date": "2015-06-18", "type": "ACTUAL"}
    assert r.completion_date.model_dump() == {"date": "2019-08-14", "type": "ACTUAL"}
    assert [(g.group_id, g.started, g.completed) for g in r.results.participant_flow] == [
        ("FG000", 123, 84), ("FG001", 117, 92), ("FG002", 2, 2), ("FG003", 4, 4)]
    ae = r.results.adverse_events
    assert (ae[0].title, ae[0].serious_affected, ae[0].serious_at_risk, ae[0].other_affected) == (
        "Placebo (Double-Blind Treatment Phase)", 3, 120, 60)
    assert (ae[1].serious_affected, ae[1].serious_at_risk, ae[1].other_affected, ae[1].other_at_risk) == (
        2, 117, 68, 117)
    assert len(r.results.outcome_measures) == 14
    m = r.results.outcome_measures[0]
    assert (m.type, m.param_type, m.dispersion_type, m.unit, m.time_frame) == (
        "PRIMARY", "LEAST_SQUARES_MEAN", "Standard Error", "cluster headache attacks per week",
        "Baseline, Week 1 through Week 12")
    assert [(v.group_title, v.value, v.spread) for v in m.values] == [
        ("Placebo", "-4.59", "0.79"), ("Galcanezumab 300 mg", "-5.38", "0.81")]
    assert len(r.locations) == 48 and all(loc.geo_point for loc in r.locations)


def test_results_of_a_two_period_study_count_each_group_where_it_started():
    # NCT02619617: FG000 is in period 1 only (28 started, 28 completed),
    # FG001 in period 2 only (28 started, 24 completed)
    r = real("NCT02619617")
    assert [(g.group_id, g.started, g.completed) for g in r.results.participant_flow] == [
        ("FG000", 28, 28), ("FG001", 28, 24)]


def test_withdrawn_study_without_sites():
    r = real("NCT02795884")
    assert r.overall_status == "WITHDRAWN"
    assert r.why_stopped == "Because of reconsideration of using erlotinib(EGFR Tyrosine kinase inhibitor) as adjuvant aim"
    assert r.enrollment.model_dump() == {"count": 0, "type": "ACTUAL"}
    assert r.start_date.model_dump() == {"date": "2016-06", "type": None}
    assert r.primary_completion_date.model_dump() == {"date": "2020-11", "type": "ESTIMATED"}
    assert r.study_first_posted.model_dump() == {"date": "2016-06-10", "type": "ESTIMATED"}
    assert r.locations == [] and r.central_contacts == [] and r.overall_officials == []
    assert [(a.label, a.type) for a in r.arm_groups] == [
        ("Intercalation arm", "EXPERIMENTAL"), ("Chemotherapy alone arm", "ACTIVE_COMPARATOR")]
    assert r.arm_groups[0].description.startswith("* Intercalation phase (Duration: 3wks x 4 cycles = 12 wks)")
    assert r.has_results is False and r.results is None


def test_observational_registry_with_many_sites():
    # NCT01892319: Levemir pregnancy registry, 93 sites, 89 with a geoPoint
    r = real("NCT01892319")
    assert r.study_type == "OBSERVATIONAL"
    assert (r.design.observational_model, r.design.time_perspective) == ("COHORT", "PROSPECTIVE")
    assert r.design.allocation is None and r.design.masking is None
    assert r.eligibility.sampling_method == "NON_PROBABILITY_SAMPLE"
    assert r.eligibility.study_population.startswith("Women with diabetes mellitus, who are pregnant")
    assert r.eligibility.min_age_years is None and r.eligibility.max_age_years is None
    assert len(r.locations) == 93 and sum(loc.geo_point is not None for loc in r.locations) == 89
    first = r.locations[0]
    assert (first.facility, first.city, first.zip, first.country, first.country_code) == (
        "Novo Nordisk Investigational Site", "Zagreb", "10000", "Croatia", "HR")
    assert (first.geo_point.lat, first.geo_point.lon) == (45.81444, 15.97798)
    assert sum(loc.country_code == "MY" for loc in r.locations) == 12  # Malaysia


def test_ages_in_days_and_months_and_full_masking():
    r = real("NCT00841061")  # "28 Days" to "1 Year", quadruple masking
    assert r.eligibility.min_age_years == pytest.approx(28 / 365.25)
    assert r.eligibility.max_age_years == 1.0
    assert r.eligibility.std_ages == ["CHILD"]
    assert r.design.masking == "QUADRUPLE"
    assert r.design.who_masked == ["PARTICIPANT", "CARE_PROVIDER", "INVESTIGATOR", "OUTCOMES_ASSESSOR"]
    assert r.design.primary_purpose == "PREVENTION"
    assert real("NCT04856215").eligibility.min_age_years == 0.5  # "6 Months"
    assert real("NCT05521087").eligibility.min_age_years == pytest.approx(30 / 365.25)  # "30 Days"


def test_an_old_nct_id_is_kept_as_an_alias():
    r = real("NCT01788527")  # CONCEPTT, registered again under NCT01734031
    assert r.nct_id == "NCT01788527" and r.nct_id_aliases == ["NCT01734031"]
    assert r.acronym == "CONCEPTT"
    assert r.completion_date.model_dump() == {"date": "2016-03", "type": "ACTUAL"}


def test_unknown_status_keeps_the_last_known_one_and_site_contacts():
    r = real("NCT00399243")
    assert (r.overall_status, r.last_known_status) == ("UNKNOWN", "RECRUITING")
    assert [(c.name, c.role, c.phone, c.email) for c in r.central_contacts] == [
        ("Fred G Freitag, DO", "CONTACT", "773 388 6390", "research@diamondheadache.com"),
        ("George Nissan, DO", "CONTACT", "773 388 6390", "research@diamondheadache.com")]
    assert [(o.name, o.role) for o in r.overall_officials] == [("Seymour Diamond, MD", "PRINCIPAL_INVESTIGATOR")]
    (site,) = r.locations
    assert (site.facility, site.status, site.zip, site.country_code) == (
        "Diamond Headache Clinic", "RECRUITING", "60614", "US")
    assert [(c.name, c.role) for c in site.contacts][:2] == [
        ("Nancy Caldwell, RN", "CONTACT"), ("Fred G Freitag, DO", "SUB_INVESTIGATOR")]
    assert len(site.contacts) == 6


def test_drug_codes_fda_flags_and_ipd_sharing():
    r = real("NCT00663260")
    assert [(i.name, i.other_names, i.description) for i in r.interventions][:2] == [
        ("Dapagliflozin", ["BMS-512148"], "Tablets, Oral, 10 mg, Once Daily, 104 weeks"),
        ("Dapagliflozin", ["BMS-512148"], "Tablets, Oral, 5 mg, Once Daily, 104 weeks")]
    assert [(ref.pmid, ref.type) for ref in r.references] == [("27306615", "DERIVED"), ("24067431", "DERIVED")]
    m = real("NCT02691897")
    assert m.oversight.model_dump() == {"has_dmc": True, "fda_regulated_drug": False, "fda_regulated_device": False,
                                        "unapproved_device": None, "us_export": None}
    assert m.ipd_sharing.sharing == "NO"


def test_every_real_study_parses_and_every_printed_country_has_its_code():
    for path in sorted(REAL.glob("NCT*.json")):
        record = parse(path)
        assert [n for n in record.notes if n.kind == "unmapped_vocabulary"] == [], path.name
        for loc in record.locations:
            assert loc.country is None or loc.country_code, (path.name, loc.country)
