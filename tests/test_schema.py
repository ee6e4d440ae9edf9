"""The data contract: published JSON Schemas match the models, and the
models refuse values outside the vocabularies."""
import json
from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from items import ELIGIBILITY_FIELDS, TRIAL_FIELDS, SourceRecord, Sponsor, Trial, TrialEligibility
from items.jsonschema import MODELS, SCHEMA_DIR, render

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_published_schema_is_in_sync(name):
    published = (SCHEMA_DIR / name).read_text(encoding="utf-8")
    assert published == render(MODELS[name]), f"run `python -m items.jsonschema` to refresh {name}"


def test_trial_has_one_sourced_field_per_reconciled_field():
    extra = {"nct_id", "identifiers", "eligibility", "conflicts", "notes", "sources"}
    assert set(Trial.model_fields) == set(TRIAL_FIELDS) | extra
    assert set(TrialEligibility.model_fields) == set(ELIGIBILITY_FIELDS)
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
    assert data["nct_id"] is None and data["start_date"] == "2015-08"


def test_unknown_keys_are_refused_so_a_misspelt_field_cannot_vanish():
    with pytest.raises(ValidationError):
        SourceRecord(**base(lead_sponser={"name": "x"}))
