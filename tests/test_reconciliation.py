"""Reconciliation: precedence, field-by-field choice, conflicts, notes,
identifiers, determinism and streaming.

Records are built directly, with values printed on the seed pages (seed 003:
the Veeva page of NCT02186860; seed 004: the MedPath page of NCT04691349;
seed 002: a Veeva page without an NCT ID whose text says 20 subjects and
whose design says 28 participants) and the CT.gov records assembled from them.
"""
from __future__ import annotations

import io
import tempfile
import weakref
from datetime import datetime, timezone

import orjson
import pytest

from harvester.reconciliation import Precedence, ReconcileConfig, dates_agree, reconcile
from harvester.store import Store, StoredSource
from items import SourceRecord, Trial
from pipelines.validate import content_hash

T_CTGOV = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
T_VEEVA = datetime(2026, 11, 21, 9, 30, tzinfo=timezone.utc)
T_MEDPATH = datetime(2026, 11, 19, 14, 0, tzinfo=timezone.utc)

NCT_VEEVA = "NCT02186860"
NCT_MEDPATH = "NCT04691349"
CTGOV = "https://clinicaltrials.gov/api/v2/studies/"
VEEVA_URL = ("https://ctv.veeva.com/study/chimeric-antigen-receptor-car-modified-t-cell-therapy-"
             "in-treating-patients-with-acute-lymphoblastic-leukemia")
MEDPATH_URL = "https://trial.medpath.com/clinical-trial/50b4028075e01462/car-t-for-rr-malignant-tumors-in-children"
TITLE_003 = ("Chimeric Antigen Receptor (CAR)-Modified T Cell Therapy in Treating Patients With "
             "Acute Lymphoblastic Leukemia")
SUMMARY_003 = ("Traditional standard treatments of B cell acute lymphoblastic leukemia is not perfect for "
               "fighting cancer. Many people do not respond to the standard treatments of ALL.")
SPONSOR_003 = "Affiliated Hospital to Academy of Military Medical Sciences"


def rec(site: str, url: str, fetched: datetime, **fields) -> SourceRecord:
    r = SourceRecord(site=site, url=url, fetched_at=fetched, **fields)
    r.content_hash = content_hash(r)
    return r


def ctgov_003(**over) -> SourceRecord:
    fields = dict(
        nct_id=NCT_VEEVA, brief_title=TITLE_003, overall_status="UNKNOWN", phases=["PHASE1"],
        study_type="INTERVENTIONAL", enrollment={"count": 5, "type": "ESTIMATED"},
        conditions=["Acute Lymphoblastic Leukemia"],
        interventions=[{"type": "BIOLOGICAL", "name": "CAR-T cells"}],
        lead_sponsor={"name": SPONSOR_003, "class": "OTHER"},
        secondary_ids=[{"id": "307-CTC-CAR T", "kind": "ORG"}],
        eligibility={"sex": "ALL", "min_age_years": 18.0, "max_age_years": 65.0,
                     "age_text": "18 Years to 65 Years", "healthy_volunteers": False},
        brief_summary=SUMMARY_003,
    )
    fields.update(over)
    return rec("ctgov", CTGOV + NCT_VEEVA, T_CTGOV, **fields)


def veeva_003(url: str = VEEVA_URL, fetched: datetime = T_VEEVA, **over) -> SourceRecord:
    fields = dict(
        nct_id=NCT_VEEVA, brief_title=TITLE_003, overall_status="UNKNOWN", phases=["PHASE1"],
        study_type="INTERVENTIONAL", enrollment={"count": 5, "type": "ESTIMATED"},
        conditions=["Acute Lymphoblastic Leukemia"],
        interventions=[{"type": "BIOLOGICAL", "name": "CAR-T cells"}],
        lead_sponsor={"name": SPONSOR_003},
        secondary_ids=[{"id": NCT_VEEVA, "kind": "NCT"}, {"id": "307-CTC-CAR T", "kind": "ORG"}],
        eligibility={"sex": "ALL", "min_age_years": 18.0, "max_age_years": 65.0,
                     "age_text": "18 to 65 years old", "healthy_volunteers": False},
        brief_summary=SUMMARY_003,
    )
    fields.update(over)
    return rec("veeva", url, fetched, **fields)


def ctgov_004(**over) -> SourceRecord:
    fields = dict(
        nct_id=NCT_MEDPATH, brief_title="CAR-T for r/r Malignant Tumors in Children", overall_status="UNKNOWN",
        phases=["EARLY_PHASE1"], study_type="INTERVENTIONAL", enrollment={"count": 10, "type": None},
        conditions=["Malignant Tumor", "Child, Only", "CAR-T"],
        lead_sponsor={"name": "PersonGen BioTherapeutics (Suzhou) Co., Ltd.", "class": "INDUSTRY"},
    )
    fields.update(over)
    return rec("ctgov", CTGOV + NCT_MEDPATH, T_CTGOV, **fields)


def medpath_004(**over) -> SourceRecord:
    fields = dict(
        nct_id=NCT_MEDPATH, brief_title="CAR-T for r/r Malignant Tumors in Children", overall_status="UNKNOWN",
        phases=["EARLY_PHASE1"], study_type="INTERVENTIONAL", enrollment={"count": 10, "type": "ESTIMATED"},
        conditions=["Malignant Tumor", "Child, Only", "CAR-T"],
        lead_sponsor={"name": "PersonGen BioTherapeutics (Suzhou) Co., Ltd."},
        eligibility={"min_age_years": 3.0, "max_age_years": 18.0, "age_text": "Age 3-18"},
    )
    fields.update(over)
    return rec("medpath", MEDPATH_URL, T_MEDPATH, **fields)


class ListStore:
    """A store over a list, in the order Store.iter_sources promises."""

    def __init__(self, records, removed=()):
        self.records = sorted(records, key=lambda r: (r.nct_id is None, r.nct_id or "", r.site, r.url))
        self.removed = set(removed)

    def iter_sources(self):
        for r in self.records:
            yield StoredSource(r, "2026-11-22T00:00:00+00:00" if r.url in self.removed else None)


def run(records, settings=None, **kw):
    out, unlinked = io.BytesIO(), io.BytesIO()
    summary = reconcile(ListStore(records, **kw), out, unlinked, settings)
    if len({(r.site, r.url) for r in records}) == len(records):
        # the same pages in a SQLite store, read as stored JSON: the same bytes
        _same_through_store(records, settings, **kw)
    trials = [orjson.loads(line) for line in out.getvalue().splitlines()]
    return {t["nct_id"]: t for t in trials}, [orjson.loads(x) for x in unlinked.getvalue().splitlines()], summary


def _same_through_store(records, settings=None, removed=()) -> None:
    # the store keeps only hashed records: both sides get the hash
    hashed = [r if r.content_hash else r.model_copy(update={"content_hash": content_hash(r)}) for r in records]
    with tempfile.TemporaryDirectory() as tmp, Store(f"{tmp}/h.sqlite3") as store:
        for r in hashed:
            store.upsert(r)
            if r.url in removed:
                store.mark_removed(r.site, r.url, "2026-11-22T00:00:00+00:00")
        outputs = []
        for source in (ListStore(hashed, removed), store):
            out, unlinked = io.BytesIO(), io.BytesIO()
            reconcile(source, out, unlinked, settings)
            outputs.append((out.getvalue(), unlinked.getvalue()))
    assert outputs[0] == outputs[1]


def one(records, settings=None, **kw) -> dict:
    trials, _, _ = run(records, settings, **kw)
    assert len(trials) == 1
    return next(iter(trials.values()))


def conflict(trial: dict, field: str) -> dict | None:
    return next((c for c in trial["conflicts"] if c["field"] == field), None)


# --- precedence ----------------------------------------------------------------

def test_default_precedence_takes_ctgov_and_keeps_the_other_value_as_conflict():
    other = SUMMARY_003 + " This study has ended."
    t = one([veeva_003(brief_summary=other), ctgov_003()])
    assert t["brief_summary"] == {"value": SUMMARY_003, "site": "ctgov", "url": CTGOV + NCT_VEEVA,
                                  "fetched_at": "2026-11-20T08:00:00Z"}
    c = conflict(t, "brief_summary")
    assert c["chosen_site"] == "ctgov"
    assert [(v["site"], v["value"]) for v in c["values"]] == [("ctgov", SUMMARY_003), ("veeva", other)]
    assert c["values"][1]["url"] == VEEVA_URL and c["values"][1]["fetched_at"] == "2026-11-21T09:30:00Z"


def test_lay_summary_prefers_clinconnect_by_default():
    cc = rec("clinconnect", "https://clinconnect.io/trials/NCT02186860", T_VEEVA, nct_id=NCT_VEEVA,
             lay_summary="This clinical trial is studying a new treatment called CAR-T technology.")
    t = one([ctgov_003(lay_summary="Plain language summary from the registry."), cc])
    assert t["lay_summary"]["site"] == "clinconnect"
    assert t["brief_summary"]["site"] == "ctgov"  # every other field keeps the "*" order


def test_precedence_setting_changes_the_choice_per_field():
    records = [ctgov_003(brief_summary="CT.gov text."), veeva_003(brief_summary="Veeva text.")]
    t = one(records, {"HARVEST_PRECEDENCE": {"brief_summary": ["veeva", "ctgov"]}})
    assert t["brief_summary"]["site"] == "veeva"
    assert t["brief_title"]["site"] == "ctgov"
    # the whole default, as a JSON string (what `-s HARVEST_PRECEDENCE=...` gives)
    t = one(records, {"HARVEST_PRECEDENCE": '{"*": ["veeva", "ctgov"]}'})
    assert t["brief_summary"]["site"] == "veeva" and t["brief_title"]["site"] == "veeva"
    # eligibility sub-fields follow "eligibility" unless named one by one
    t = one(records, {"HARVEST_PRECEDENCE": {"eligibility": ["veeva"]}})
    assert t["eligibility"]["age_text"]["value"] == "18 to 65 years old"
    assert t["brief_title"]["site"] == "ctgov"


def test_unknown_precedence_field_is_an_error():
    with pytest.raises(ValueError, match="brief_titel"):
        ReconcileConfig.from_settings({"HARVEST_PRECEDENCE": {"brief_titel": ["veeva"]}})


def test_unlisted_sites_rank_after_listed_ones_alphabetically():
    sites = Precedence().sites_for("brief_title")
    ranked = sorted(["zsite", "asite", "clinconnect", "ctgov"], key=lambda s: Precedence.rank(sites, s))
    assert ranked == ["ctgov", "clinconnect", "asite", "zsite"]
    a = rec("asite", "https://a.example/1", T_CTGOV, nct_id=NCT_VEEVA, brief_title="From a")
    z = rec("zsite", "https://z.example/1", T_VEEVA, nct_id=NCT_VEEVA, brief_title="From z")
    assert one([z, a])["brief_title"]["site"] == "asite"


def test_newest_fetch_wins_within_one_site():
    older = veeva_003(url=VEEVA_URL + "-old", fetched=datetime(2026, 10, 1, tzinfo=timezone.utc),
                      overall_status="RECRUITING")
    newer = veeva_003(overall_status="COMPLETED")
    t = one([older, newer])
    assert t["overall_status"]["value"] == "COMPLETED" and t["overall_status"]["url"] == VEEVA_URL
    # the same, whatever order the store gives them in
    assert one([newer, older])["overall_status"]["url"] == VEEVA_URL


# --- field by field ---------------------------------------------------------------

def test_field_missing_in_ctgov_is_taken_from_veeva_with_veeva_provenance():
    t = one([ctgov_003(phases=[], detailed_description=None),
             veeva_003(detailed_description="CAR-T has stronger effect of anti-tumor capacity.")])
    assert t["phases"] == {"value": ["PHASE1"], "site": "veeva", "url": VEEVA_URL,
                           "fetched_at": "2026-11-21T09:30:00Z"}
    assert t["detailed_description"]["site"] == "veeva"
    assert t["brief_title"]["site"] == "ctgov"  # not the whole Veeva record
    assert t["conflicts"] == []


def test_eligibility_is_reconciled_per_sub_field():
    t = one([ctgov_004(), medpath_004()])
    elig = t["eligibility"]
    # CT.gov gives no ages for this trial (seed 004 prints them only inside a criterion)
    assert elig["min_age_years"]["value"] == 3.0 and elig["min_age_years"]["site"] == "medpath"
    assert elig["age_text"]["value"] == "Age 3-18"
    assert elig["sex"] is None


def test_every_field_names_its_source_and_lines_are_valid_trials():
    trials, _, _ = run([ctgov_003(), veeva_003(), ctgov_004(), medpath_004()])
    for t in trials.values():
        assert Trial.model_validate(t).model_dump(mode="json", by_alias=True, exclude_none=False) == t
        assert t["sources"] and all(s["content_hash"] for s in t["sources"])
    t = trials[NCT_VEEVA]
    assert [(s["site"], s["link"]["method"]) for s in t["sources"]] == [("ctgov", "nct_id"), ("veeva", "nct_id")]


# --- conflicts ----------------------------------------------------------------------

def test_sponsor_spelled_differently_with_the_same_key_is_agreement():
    t = one([ctgov_004(lead_sponsor={"name": "PersonGen BioTherapeutics"}), medpath_004()])
    assert t["lead_sponsor"]["value"] == {"name": "PersonGen BioTherapeutics", "class": None}
    assert conflict(t, "lead_sponsor") is None
    t = one([ctgov_004(lead_sponsor={"name": "Henan Cancer Hospital"}),
             medpath_004(lead_sponsor={"name": "Hunan Cancer Hospital"})])
    assert conflict(t, "lead_sponsor")["values"][1]["value"] == {"name": "Hunan Cancer Hospital", "class": None}


def test_different_phases_are_a_conflict_with_every_value():
    cc = rec("clinconnect", "https://clinconnect.io/trials/NCT04691349", T_VEEVA, nct_id=NCT_MEDPATH,
             phases=["PHASE1"])
    t = one([ctgov_004(), medpath_004(phases=["PHASE1", "PHASE2"]), cc])
    c = conflict(t, "phases")
    assert c["chosen_site"] == "ctgov" and t["phases"]["value"] == ["EARLY_PHASE1"]
    assert [(v["site"], v["value"], v["url"]) for v in c["values"]] == [
        ("ctgov", ["EARLY_PHASE1"], CTGOV + NCT_MEDPATH),
        ("medpath", ["PHASE1", "PHASE2"], MEDPATH_URL),
        ("clinconnect", ["PHASE1"], "https://clinconnect.io/trials/NCT04691349"),
    ]


def test_enrollment_actual_and_estimated_are_different_facts():
    t = one([ctgov_003(enrollment={"count": 6, "type": "ACTUAL"}), veeva_003()])  # Veeva: 5 estimated
    assert conflict(t, "enrollment") is None
    assert t["enrollment"]["value"] == {"count": 6, "type": "ACTUAL"}
    t = one([ctgov_003(enrollment={"count": 6, "type": "ESTIMATED"}), veeva_003()])
    assert [v["value"]["count"] for v in conflict(t, "enrollment")["values"]] == [6, 5]


def test_enrollment_without_type_compares_on_count_only():
    # seed 004: MedPath prints "Target Recruitment 10"; the assembled CT.gov record has no type
    assert conflict(one([ctgov_004(), medpath_004()]), "enrollment") is None
    t = one([ctgov_004(enrollment={"count": 12, "type": None}), medpath_004()])
    assert conflict(t, "enrollment") is not None


def test_dates_are_compared_at_the_precision_both_give():
    assert dates_agree("2015-08", "2015-08-01") and dates_agree("2015", "2015-08-01")
    assert not dates_agree("2015-08", "2015-09-01")
    t = one([ctgov_003(start_date="2015-08-01"), veeva_003(start_date="2015-08")])
    assert t["start_date"]["value"] == {"date": "2015-08-01", "type": None} and conflict(t, "start_date") is None
    t = one([ctgov_003(start_date="2015-08-01"), veeva_003(start_date="2015-09")])
    assert conflict(t, "start_date") is not None


def test_an_estimated_date_never_conflicts_with_an_actual_one():
    # PALLAS: completion 2025-09 ESTIMATED; a page that says the study
    # actually completed in another month states a different fact, not a
    # disagreement, and the chosen value keeps its own type
    planned = {"date": "2025-09", "type": "ESTIMATED"}
    t = one([ctgov_003(completion_date=planned), veeva_003(completion_date={"date": "2025-11", "type": "ACTUAL"})])
    assert t["completion_date"]["value"] == planned and conflict(t, "completion_date") is None
    # like with like: two estimates (or an estimate and an untyped date) are compared on the date
    t = one([ctgov_003(completion_date=planned), veeva_003(completion_date={"date": "2025-11", "type": "ESTIMATED"})])
    assert [v["value"] for v in conflict(t, "completion_date")["values"]] == [
        planned, {"date": "2025-11", "type": "ESTIMATED"}]
    t = one([ctgov_003(completion_date=planned), veeva_003(completion_date="2025-11")])
    assert conflict(t, "completion_date") is not None
    t = one([ctgov_003(completion_date=planned), veeva_003(completion_date="2025-09")])
    assert conflict(t, "completion_date") is None


def test_design_is_reconciled_sub_field_by_sub_field():
    # seed 003's Veeva trial design block: Treatment, N/A, Single Group
    # Assignment, None (Open label). Here the CT.gov record lacks the
    # allocation (so Veeva's is chosen, with its provenance) and a masking
    # printed differently ("Single") is a conflict of that sub-field only
    ctgov = ctgov_003(design={"primary_purpose": "TREATMENT", "masking": "NONE",
                              "intervention_model": "SINGLE_GROUP", "target_duration": None})
    veeva = veeva_003(design={"primary_purpose": "TREATMENT", "masking": "SINGLE", "allocation": "NA",
                              "intervention_model": "SINGLE_GROUP"})
    t = one([ctgov, veeva])
    assert t["design"]["primary_purpose"]["value"] == "TREATMENT" and t["design"]["primary_purpose"]["site"] == "ctgov"
    assert t["design"]["allocation"] == {"value": "NA", "site": "veeva", "url": VEEVA_URL,
                                         "fetched_at": "2026-11-21T09:30:00Z"}
    assert [c["field"] for c in t["conflicts"]] == ["design.masking"]
    assert Trial.model_validate(t).design.masking.value == "NONE"


def test_locations_agree_by_country_code_whatever_the_printed_name():
    usa = [{"city": "Mobile", "country": "USA"}]
    t = one([ctgov_003(locations=[{"city": "Mobile", "country": "United States", "country_code": "US"}]),
             veeva_003(locations=usa)])
    assert conflict(t, "locations") is None
    t = one([ctgov_003(locations=[{"city": "Mobile", "country": "United States", "country_code": "US"}]),
             veeva_003(locations=[{"city": "Mobile", "country": "United States of America"}])])
    assert conflict(t, "locations") is None
    t = one([ctgov_003(locations=[{"city": "Mobile", "country": "United States", "country_code": "US"}]),
             veeva_003(locations=[{"city": "Mobile", "country": "Canada"}])])
    assert conflict(t, "locations") is not None


def test_ages_are_equal_within_tolerance():
    # "6 Months" = 0.5 years; "26 Weeks" = 0.5 years to a week; 1 year is not
    elig = {"min_age_years": 0.5, "max_age_years": 65.0}
    t = one([ctgov_003(eligibility=elig), veeva_003(eligibility={"min_age_years": 26 / 52, "max_age_years": 65.0})])
    assert conflict(t, "eligibility.min_age_years") is None
    t = one([ctgov_003(eligibility=elig), veeva_003(eligibility={"min_age_years": 1.0, "max_age_years": 65.0})])
    assert conflict(t, "eligibility.min_age_years")["values"][1]["value"] == 1.0


def test_text_and_list_normalization_is_agreement():
    t = one([ctgov_003(), veeva_003(brief_title=TITLE_003.upper().replace(" ", "  "),
                                    conditions=["acute lymphoblastic leukemia"],
                                    eligibility={"age_text": "18 to 65 years old", "min_age_years": 18.0,
                                                 "max_age_years": 65.0, "sex": "ALL"})])
    assert t["conflicts"] == []  # the printed age texts differ, and are not compared


def test_unmapped_vocabulary_value_never_wins_nor_conflicts():
    # the Veeva page printed a status word the normalizer did not know
    veeva = veeva_003(overall_status="UNKNOWN",
                      notes=[{"field": "overall_status", "kind": "unmapped_vocabulary",
                              "detail": "status 'On hold (sponsor)' is not in the CT.gov vocabulary"}])
    t = one([veeva, medpath_004(nct_id=NCT_VEEVA, overall_status="RECRUITING")])
    assert t["overall_status"]["value"] == "RECRUITING" and t["overall_status"]["site"] == "medpath"
    assert conflict(t, "overall_status") is None
    assert t["notes"][0]["kind"] == "unmapped_vocabulary" and t["notes"][0]["site"] == "veeva"


def test_parser_notes_carry_through_with_site_and_url():
    # seed 002: "The study plans to enroll 20 subjects" vs "28 participants in 1 patient group"
    note = {"field": "enrollment", "kind": "in_page_disagreement",
            "detail": "28 participants in the design, 20 subjects planned in the text"}
    t = one([ctgov_003(), veeva_003(notes=[note])])
    assert t["notes"] == [{**note, "site": "veeva", "url": VEEVA_URL}]


# --- identifiers and trials -------------------------------------------------------

def test_identifiers_are_kept_with_kind_and_page():
    t = one([ctgov_003(), veeva_003()])
    ids = [(i["id"], i["kind"], i["site"]) for i in t["identifiers"]]
    assert ids == [
        (NCT_VEEVA, "NCT", "ctgov"), (NCT_VEEVA, "NCT", "veeva"),
        ("307-CTC-CAR T", "ORG", "ctgov"), ("307-CTC-CAR T", "ORG", "veeva"),
    ]  # Veeva lists the NCT ID among its identifiers too: deduplicated per page
    assert t["identifiers"][3]["url"] == VEEVA_URL


def test_two_nct_ids_sharing_a_secondary_id_stay_two_trials():
    shared = {"id": "2014-005181-30", "kind": "EUDRACT"}
    a = ctgov_003(secondary_ids=[shared])
    b = ctgov_004(secondary_ids=[shared])
    trials, unlinked, summary = run([a, b])
    assert sorted(trials) == [NCT_VEEVA, NCT_MEDPATH]
    for nct in trials:
        assert any(i["id"] == "2014-005181-30" for i in trials[nct]["identifiers"])
        assert len(trials[nct]["sources"]) == 1
    assert summary.trials == 2 and unlinked == []


def test_output_is_sorted_by_nct_id_and_removed_pages_are_left_out():
    trials, _, summary = run([ctgov_004(), medpath_004(), ctgov_003(), veeva_003()], removed=[MEDPATH_URL])
    assert list(trials) == [NCT_VEEVA, NCT_MEDPATH]
    assert [s["site"] for s in trials[NCT_MEDPATH]["sources"]] == ["ctgov"]
    assert summary.removed_skipped == 1 and summary.sources == 3


def test_summary_counts():
    _, _, summary = run([ctgov_003(), veeva_003(phases=["PHASE2"]), ctgov_004(), medpath_004()])
    stats = summary.as_stats()
    assert stats["reconcile/trials"] == 2 and stats["reconcile/sources"] == 4
    assert stats["reconcile/conflicts"] == 1 and stats["reconcile/linked/nct_id"] == 4
    assert stats["reconcile/unlinked"] == 0


def test_out_of_order_store_is_refused():
    class Backwards(ListStore):
        def iter_sources(self):
            yield from reversed(list(super().iter_sources()))

    with pytest.raises(ValueError, match="ordered by nct_id"):
        reconcile(Backwards([ctgov_003(), ctgov_004()]), io.BytesIO(), io.BytesIO())


# --- determinism --------------------------------------------------------------------

def _fill(store: Store, records) -> None:
    for r in records:
        store.upsert(r)


def test_same_store_gives_byte_identical_output(tmp_path):
    records = [ctgov_003(), veeva_003(phases=["PHASE2"]), ctgov_004(), medpath_004(),
               rec("clinconnect", "https://clinconnect.io/trials/x", T_VEEVA, brief_title="A Study of CAR-T")]
    outputs = []
    for name, order in (("a", records), ("b", list(reversed(records)))):
        with Store(tmp_path / f"{name}.sqlite3") as store:
            _fill(store, order)
            for _ in range(2):
                out, unlinked = io.BytesIO(), io.BytesIO()
                reconcile(store, out, unlinked)
                outputs.append((out.getvalue(), unlinked.getvalue()))
    assert outputs[0][0].count(b"\n") == 2 and outputs[0][1].count(b"\n") == 1
    assert all(o == outputs[0] for o in outputs)


# --- streaming ----------------------------------------------------------------------

class GeneratorStore:
    """Generates `n` trials of `per` pages each on every pass; never a list."""

    def __init__(self, n: int, per: int = 3):
        self.n, self.per = n, per
        self.passes = 0
        self.yielded = 0
        self.alive = 0  # records yielded and not yet garbage

    def _gone(self):
        self.alive -= 1

    def iter_sources(self):
        self.passes += 1
        self.yielded = 0
        sites = ["ctgov", "veeva", "medpath", "clinconnect"][: self.per]
        for i in range(self.n):
            nct = f"NCT{10_000_000 + i:08d}"
            for k, site in enumerate(sites):
                r = SourceRecord(site=site, url=f"https://{site}.example/{nct}", fetched_at=T_CTGOV, nct_id=nct,
                                 brief_title=f"Trial number {i} of the generator",
                                 phases=["PHASE1"] if k else ["PHASE2"],
                                 lead_sponsor={"name": "Sponsor Co., Ltd." if k else "SPONSOR"})
                self.yielded += 1
                self.alive += 1
                weakref.finalize(r, self._gone)
                yield StoredSource(r, None)


class WatchingWriter:
    """Binary sink that checks, at each line, how much of the store is in memory."""

    def __init__(self, store: GeneratorStore):
        self.store = store
        self.lines = 0
        self.max_alive = 0
        self.max_ahead = 0
        self.last = b""

    def write(self, data: bytes) -> int:
        assert self.store.passes == 2  # nothing is written before the index is complete
        self.lines += 1
        # pages read so far in this pass, beyond those of the trials written
        self.max_ahead = max(self.max_ahead, self.store.yielded - self.lines * self.store.per)
        self.max_alive = max(self.max_alive, self.store.alive)
        assert data > self.last  # sorted by NCT ID
        self.last = data
        return len(data)


def test_reconcile_streams_one_group_at_a_time():
    store = GeneratorStore(3000)
    writer = WatchingWriter(store)
    summary = reconcile(store, writer, io.BytesIO())
    assert writer.lines == summary.trials == 3000
    assert summary.conflicts == 3000  # PHASE2 vs PHASE1 on every trial; sponsors agree
    # the writer never ran more than one page ahead of the trial it wrote ...
    assert writer.max_ahead <= 1
    # ... and no more than one group of records was alive at any write
    assert writer.max_alive <= store.per + 1


def test_one_setting_leaves_contacts_and_officials_out_of_the_canonical_output():
    # PALLAS's first overall official, and a site contact as CT.gov prints one
    official = {"name": "Suzanne George, MD", "role": "PRINCIPAL_INVESTIGATOR",
                "affiliation": "Alliance Foundation Trials, LLC."}
    site_contact = {"name": "Jane Roe", "role": "CONTACT", "phone": "555-0100"}
    record = ctgov_003(overall_officials=[official], central_contacts=[site_contact],
                       locations=[{"facility": "University of South Alabama Mitchell Cancer Institute",
                                   "city": "Mobile", "country": "United States", "contacts": [site_contact]}],
                       responsible_party={"type": "PRINCIPAL_INVESTIGATOR", "investigator_name": "Suzanne George",
                                          "investigator_affiliation": "Alliance Foundation Trials, LLC."})
    kept = one([record])
    assert kept["overall_officials"]["value"][0]["name"] == "Suzanne George, MD"
    assert kept["locations"]["value"][0]["contacts"][0]["name"] == "Jane Roe"
    left_out = one([record], {"HARVEST_CANONICAL_CONTACTS": "False"})
    assert left_out["overall_officials"] is None and left_out["central_contacts"] is None
    assert left_out["locations"]["value"][0]["contacts"] == []
    assert left_out["locations"]["value"][0]["city"] == "Mobile"  # the site itself stays
    assert left_out["responsible_party"]["value"]["investigator_name"] is None
    assert left_out["responsible_party"]["value"]["investigator_affiliation"] == "Alliance Foundation Trials, LLC."
    assert "Suzanne George" not in orjson.dumps(left_out).decode()
    assert "Jane Roe" not in orjson.dumps(left_out).decode()
    Trial.model_validate(left_out)


def test_a_page_that_prints_a_retired_nct_id_joins_the_trial_that_lists_it():
    # NCT01788527 (CONCEPTT) lists NCT01734031 in nctIdAliases; a mirror
    # page still under the old ID (constructed here: no such page is in the
    # reference set) joins that trial instead of making a second one
    title = "Continuous Glucose Monitoring in Women With Type 1 Diabetes in Pregnancy Trial"
    ctgov = rec("ctgov", CTGOV + "NCT01788527", T_CTGOV, nct_id="NCT01788527", nct_id_aliases=["NCT01734031"],
                brief_title=title, acronym="CONCEPTT", overall_status="COMPLETED")
    old = rec("veeva", "https://ctv.veeva.com/study/conceptt", T_VEEVA, nct_id="NCT01734031",
              brief_title=title, overall_status="COMPLETED")
    other = ctgov_003()
    trials, unlinked, summary = run([ctgov, old, other])
    assert sorted(trials) == ["NCT01788527", NCT_VEEVA]
    t = trials["NCT01788527"]
    assert [(s["site"], s["link"]["method"]) for s in t["sources"]] == [("ctgov", "nct_id"), ("veeva", "nct_id_alias")]
    assert t["sources"][1]["link"]["evidence"] == {"alias": "NCT01734031"}
    assert ("NCT01734031", "NCT", "veeva") in {(i["id"], i["kind"], i["site"]) for i in t["identifiers"]}
    assert t["conflicts"] == [] and unlinked == []
    assert summary.as_stats()["reconcile/linked/nct_id_alias"] == 1
    Trial.model_validate(t)
