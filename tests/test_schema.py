"""The data contract: published JSON Schemas match the models, and the
models refuse values outside the vocabularies."""
import json
from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from items import (DESIGN_FIELDS, ELIGIBILITY_FIELDS, TRIAL_FIELDS, SourceRecord, Sponsor, Trial, TrialDate,
                   TrialDesign, TrialEligibility)
from items.jsonschema import MODELS, SCHEMA_DIR, render

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_published_schema_is_in_sync(name):
    published = (SCHEMA_DIR / name).read_text(encoding="utf-8")
    assert published == render(MODELS[name]), f"run `python -m items.jsonschema` to refresh {name}"


def test_trial_has_one_sourced_field_per_reconciled_field():
    extra = {"nct_id", "identifiers", "eligibility", "design", "conflicts", "notes", "sources"}
    assert set(Trial.model_fields) == set(TRIAL_FIELDS) | extra
    assert set(TrialEligibility.model_fields) == set(ELIGIBILITY_FIELDS)
    assert set(TrialDesign.model_fields) == set(DESIGN_FIELDS)
    # every reconciled field exists on the source record too
    assert set(TRIAL_FIELDS) <= set(SourceRecord.model_fields)


def test_sponsor_class_is_written_as_class():
    sponsor = Sponsor.model_validate({"name": "Pfizer", "class": "INDUSTRY"})
    assert sponsor.model_dump(by_alias=True) == {"name": "Pfizer", "class": "INDUSTRY"}


def base(**kw):
    return {"site": "ctgov", "url": "https://example.org/x", "fetched_at": NOW, **kw}


@pytest.mark.parametrize("field,value", [
    ("nct_id", "NCT123"),             # not 8 digits
    ("nct_id", "nct02186860"),        # must be normalized before it gets here
    ("overall_status", "Enrolling"),  # site wording, not the vocabulary
    ("phases", ["Phase 1"]),
    ("start_date", "Jan 25, 2024"),
    ("study_type", "Interventional"),
    ("site", "Veeva"),
])
def test_source_record_rejects_unnormalized_values(field, value):
    with pytest.raises(ValidationError):
        SourceRecord(**base(**{field: value}))


def test_source_record_accepts_partial_dates_and_null_nct():
    rec = SourceRecord(**base(nct_id=None, start_date="2015-08", completion_date="2025",
                              last_update_posted="2023-06-15"))
    data = json.loads(rec.model_dump_json(by_alias=True))
    assert data["nct_id"] is None and data["start_date"] == {"date": "2015-08", "type": None}


def test_a_date_keeps_its_type_and_a_bare_date_reads_as_untyped():
    # records stored before the type was kept, and the HTML sites, give bare dates
    assert TrialDate.model_validate("2020-11") == TrialDate(date="2020-11", type=None)
    rec = SourceRecord(**base(completion_date={"date": "2025-09", "type": "ESTIMATED"}))
    assert rec.completion_date.type == "ESTIMATED"
    with pytest.raises(ValidationError):
        SourceRecord(**base(completion_date={"date": "2025-09", "type": "PLANNED"}))
    with pytest.raises(ValidationError):
        SourceRecord(**base(completion_date={"date": "Sep 2025", "type": "ESTIMATED"}))


@pytest.mark.parametrize("field,value", [
    ("design", {"masking": "Open Label"}),            # site wording, not the vocabulary
    ("design", {"who_masked": ["Participant"]}),
    ("eligibility", {"std_ages": ["Adult"]}),
    ("locations", [{"country": "United States", "country_code": "USA"}]),  # alpha-2 only
    ("locations", [{"city": "Mobile", "geo_point": {"lat": 130.7, "lon": -88.0}}]),
])
def test_new_fields_refuse_values_outside_their_vocabulary(field, value):
    with pytest.raises(ValidationError):
        SourceRecord(**base(**{field: value}))


def test_unknown_keys_are_refused_so_a_misspelt_field_cannot_vanish():
    with pytest.raises(ValidationError):
        SourceRecord(**base(lead_sponser={"name": "x"}))


@pytest.mark.parametrize("field,value", [
    ("lead_sponsor", {"name": "Pfizer", "clas": "INDUSTRY"}),
    ("locations", [{"city": "Mobile", "contry": "United States"}]),
    ("locations", [{"city": "Mobile", "geo_point": {"lat": 30.7, "lng": -88.0}}]),
    ("results", {"outcome_measures": [{"title": "OS", "values": [{"group_id": "OG000", "valeu": "3"}]}]}),
    ("eligibility", {"sex": "ALL", "min_age": 18}),
])
def test_nested_values_refuse_unknown_keys_too(field, value):
    with pytest.raises(ValidationError, match="Unexpected keyword argument|Extra inputs"):
        SourceRecord(**base(**{field: value}))


def test_nested_values_read_and_write_like_the_record():
    # The values a record holds keep BaseModel's reading and writing methods.
    from items import Location

    loc = Location.model_validate({"city": "Mobile", "country": "United States", "country_code": "US",
                                   "geo_point": {"lat": 30.69, "lon": -88.04}})
    assert loc.geo_point.lat == 30.69
    assert loc.model_dump(exclude_none=True, exclude_defaults=True) == {
        "city": "Mobile", "country": "United States", "country_code": "US",
        "geo_point": {"lat": 30.69, "lon": -88.04}}
    assert json.loads(loc.model_dump_json())["geo_point"] == {"lat": 30.69, "lon": -88.04}
    assert list(Location.model_fields)[:2] == ["facility", "city"]
    rec = SourceRecord(**base(locations=[loc]))
    assert rec.locations[0] is loc  # a validated value is taken as it is
    assert SourceRecord.model_validate_json(rec.model_dump_json()).locations == [loc]
