"""The data contract a stored record was written under, and what readers may
skip because of it.

The store keeps, beside each record it writes, the contract of the code that
wrote it (`record_contract()`). Reconciliation uses the JSON of a record
stored under today's contract as it is (no pydantic validation, no
model_dump); any other record (stored before contracts were kept, or under
another one) is validated, which upgrades it. These tests hold the premise
(a stored record of today's contract is what validating it gives, for every
real CT.gov body the project has) and the consequence (the same canonical
bytes either way, on SQLite and PostgreSQL, from an old-shaped record too).
"""
from __future__ import annotations

import io
import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest
from _servers import postgres_server  # noqa: F401  (fixture)

from harvester.reconciliation import reconcile
from harvester.store import Store
from harvester.store_base import compress, link_fields_json, record_contract, record_json
from harvester.store_pg import PgStore
from items import SourceRecord
from pipelines.validate import ValidationPipeline, content_hash
from spiders.ctgov import parse_study

REPO = Path(__file__).resolve().parents[1]
BODIES = sorted((REPO / "tests" / "data" / "ctgov_real").glob("NCT*.json")) + \
    [REPO / "cassettes" / "src" / "ctgov" / "study_NCT02513394.json"]
FETCHED = "2026-11-23T09:00:00Z"
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)


class _Stats:
    def inc_value(self, *_):
        pass


def real_records() -> list[SourceRecord]:
    return [parse_study(json.loads(p.read_bytes()), fetched=FETCHED) for p in BODIES]


def test_the_json_the_store_is_given_is_what_validating_it_gives():
    # the premise of trusting a stored record: its JSON (what the validation
    # pipeline hands the store, and record_json) is a fixed point of validation
    pipeline = ValidationPipeline(_Stats())
    records = real_records()
    assert len(records) == 117
    for record in records:
        stored = pipeline.process_item(record).record_json
        data = orjson.loads(stored)
        assert SourceRecord.model_validate(data).model_dump(mode="json", by_alias=True) == data, record.url
        assert orjson.loads(record_json(SourceRecord.model_validate(data))) == data


def test_contract_changes_with_the_schema_and_the_revision(monkeypatch):
    import harvester.store_base as sb

    now = record_contract()
    assert len(now) == 16 and now == record_contract()
    monkeypatch.setattr(sb, "CONTRACT_REVISION", sb.CONTRACT_REVISION + 1)
    sb.record_contract.cache_clear()
    try:
        assert sb.record_contract() != now
    finally:
        monkeypatch.undo()
        sb.record_contract.cache_clear()
    assert record_contract() == now


def _rec(**fields) -> SourceRecord:
    r = SourceRecord(site="veeva", url="https://ctv.veeva.com/study/a", fetched_at=T0, nct_id="NCT02186860",
                     **fields)
    r.content_hash = content_hash(r)
    return r


def test_a_written_record_is_read_back_under_todays_contract(tmp_path):
    with Store(tmp_path / "h.sqlite3") as store:
        record = _rec(brief_title="A", start_date={"date": "2015-08", "type": None})
        store.upsert(record)
        (raw,) = store.iter_sources(raw=True)
        assert raw.contract == record_contract() and raw.current
        assert raw.data == record.model_dump(mode="json", by_alias=True)
        (as_of,) = store.iter_sources_as_of(datetime.now(timezone.utc), raw=True)
        assert as_of.current and as_of.data == raw.data
        assert raw.record == record


# A record as a release before TrialDate stored it: bare date strings, an
# integer age, fields that release did not have absent. Validating it is the
# upgrade; reading its JSON as it is would write "2015-08" where the
# canonical output has {"date": "2015-08", "type": null}.
OLD_SHAPE = {
    "site": "ctgov", "url": "https://clinicaltrials.gov/api/v2/studies/NCT02186860",
    "fetched_at": "2026-11-20T08:00:00Z", "nct_id": "NCT02186860", "secondary_ids": [],
    "brief_title": "CAR-T for ALL", "official_title": None, "overall_status": "UNKNOWN", "phases": ["PHASE1"],
    "study_type": "INTERVENTIONAL", "enrollment": {"count": 5, "type": "ESTIMATED"},
    "conditions": ["Acute Lymphoblastic Leukemia"], "interventions": [], "lead_sponsor": {"name": "X", "class": None},
    "collaborators": [], "start_date": "2015-08", "primary_completion_date": None, "completion_date": "2017-12",
    "eligibility": {"sex": "ALL", "min_age_years": 18, "max_age_years": 65, "age_text": None,
                    "healthy_volunteers": None, "inclusion": [], "exclusion": [], "criteria_text": None},
    "locations": [], "brief_summary": None, "detailed_description": None, "lay_summary": None,
    "primary_outcomes": [], "secondary_outcomes": [], "last_update_posted": None, "raw": {}, "notes": [],
    "content_hash": "0" * 64,
}


def _reconciled(store) -> tuple[bytes, bytes]:
    out, unlinked = io.BytesIO(), io.BytesIO()
    reconcile(store, out, unlinked)
    return out.getvalue(), unlinked.getvalue()


def _write_raw(path, data: dict, contract) -> None:
    """A page row as an older writer left it (no version, the given contract)."""
    with Store(path):
        pass
    con = sqlite3.connect(path)
    con.execute("INSERT INTO sources (site, url, nct_id, fetched_at, content_hash, record, first_seen_at,"
                " last_seen_at, updated_at, contract) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (data["site"], data["url"], data["nct_id"], data["fetched_at"], data["content_hash"],
                 compress(orjson.dumps(data)), "2026-11-20", "2026-11-20", "2026-11-20", contract))
    con.commit()
    con.close()


@pytest.mark.parametrize("contract", [None, "0123456789abcdef"])
def test_a_record_of_another_contract_is_validated_when_reconciled(tmp_path, contract):
    old, new = tmp_path / "old.sqlite3", tmp_path / "new.sqlite3"
    _write_raw(old, OLD_SHAPE, contract)
    validated = SourceRecord.model_validate(OLD_SHAPE)
    with Store(new) as store:
        store.upsert(validated)
    with Store(old) as a, Store(new) as b:
        (raw,) = a.iter_sources(raw=True)
        assert not raw.current and raw.data["start_date"] == "2015-08"
        assert (b_raw := next(b.iter_sources(raw=True))).current
        assert b_raw.data["start_date"] == {"date": "2015-08", "type": None}
        lines, _ = _reconciled(a)
        assert lines == _reconciled(b)[0] == _reconciled(Validated(b))[0]
    trial = orjson.loads(lines)
    assert trial["start_date"]["value"] == {"date": "2015-08", "type": None}
    assert trial["eligibility"]["min_age_years"]["value"] == 18.0
    assert b"\"min_age_years\":{\"value\":18.0" in lines


def test_upgrade_to_schema_4_keeps_records_and_marks_none_current(tmp_path):
    # a schema-2 store (no contract, no link fields) opened by today's code
    path = tmp_path / "v2.sqlite3"
    nctless = SourceRecord(site="clinconnect", url="https://clinconnect.io/trials/x", fetched_at=T0,
                           brief_title="CAR-T for ALL", lead_sponsor={"name": "X"})
    nctless.content_hash = content_hash(nctless)
    with Store(path) as store:
        store.upsert(_rec(brief_title="A", conditions=["Leukemia"]))
        store.upsert(nctless)
        before = _reconciled(store)
    con = sqlite3.connect(path)
    for table in ("sources", "versions"):
        con.execute(f"ALTER TABLE {table} DROP COLUMN contract")
        con.execute(f"ALTER TABLE {table} DROP COLUMN link_fields")
    con.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
    con.commit()
    con.close()
    with Store(path) as store:
        raw, _ = store.iter_sources(raw=True)
        assert raw.contract is None and not raw.current
        assert raw.record.brief_title == "A"
        assert store.get_meta("schema_version") == "5"  # through schema 4 (contract, link fields) to today's
        linked, _ = store.iter_sources(raw=True, link=True)
        assert linked.link_fields is None and orjson.loads(linked.json)["brief_title"] == "A"
        assert _reconciled(store) == before  # read from the records, validated
        store.upsert(_rec(brief_title="B", conditions=["Leukemia"]))  # written under today's contract
        raw, _ = store.iter_sources(raw=True)
        assert raw.current and raw.data["brief_title"] == "B"


def test_the_first_pass_reads_the_link_fields_and_the_records_of_nctless_pages(tmp_path):
    nctless = SourceRecord(site="clinconnect", url="https://clinconnect.io/trials/x", fetched_at=T0,
                           brief_title="CAR-T for ALL")
    nctless.content_hash = content_hash(nctless)
    record = _rec(brief_title="A", conditions=["Leukemia"], lead_sponsor={"name": "Sponsor X", "class": "OTHER"},
                  eligibility={"min_age_years": 18.0}, nct_id_aliases=["NCT01734031"])
    with Store(tmp_path / "h.sqlite3") as store:
        store.upsert(record)
        store.upsert(nctless)
        for rows in (list(store.iter_sources(raw=True, link=True)),
                     list(store.iter_sources_as_of(datetime.now(timezone.utc), raw=True, link=True)),
                     list(store.iter_sources_as_of("2026-12-31T00:00:00Z", raw=True, link=True))):
            page, other = rows
            assert page.json is None and page.nct_id == "NCT02186860"
            assert orjson.loads(page.link_fields) == {
                "nct_id_aliases": ["NCT01734031"], "brief_title": "A", "official_title": None,
                "lead_sponsor": {"name": "Sponsor X"}, "conditions": ["Leukemia"],
                "eligibility": {"min_age_years": 18.0, "max_age_years": None}}
            assert other.nct_id is None and orjson.loads(other.json)["url"] == nctless.url


def test_postgresql_gives_the_same_raw_records_and_bytes_as_sqlite(tmp_path, postgres_server):  # noqa: F811
    records = real_records()[:20]
    for r in records:
        r.content_hash = content_hash(r)
    with Store(tmp_path / "h.sqlite3") as lite, PgStore(postgres_server.new_database("contract")) as pg:
        for store in (lite, pg):
            store.upsert_many([(r, None) for r in records])
        a, b = list(lite.iter_sources(raw=True)), list(pg.iter_sources(raw=True))
        assert [(x.data, x.contract) for x in a] == [(x.data, x.contract) for x in b]
        assert all(x.current for x in a)
        assert _reconciled(lite) == _reconciled(pg)
        # and the validated path (a store that only gives validated records) the same bytes
        assert _reconciled(Validated(lite)) == _reconciled(lite)


class Validated:
    """A store seen only through validated records (no raw reads)."""

    def __init__(self, store):
        self.store = store

    def iter_sources(self):
        return self.store.iter_sources()


def test_linking_reads_the_same_keys_from_stored_json_as_from_validated_records():
    from harvester.reconciliation.index import data_keys, link_fields, record_keys

    old = dict(OLD_SHAPE, conditions=None, nct_id_aliases=["NCT01734031"])  # a null list: read from the dict
    records = real_records() + [SourceRecord.model_validate(dict(old, conditions=[]))]
    for record, data in zip(records, [r.model_dump(mode="json", by_alias=True) for r in records[:-1]] + [old]):
        json = orjson.dumps(data)
        expected = record_keys([record])
        assert record_keys([link_fields(json)]) == expected == data_keys([data]), record.url
        assert link_fields(link_fields_json(record)) == link_fields(json)
        assert link_fields(json).nct_id_aliases == record.nct_id_aliases
    # an integer age in the JSON is the validated record's float
    assert record_keys([link_fields(orjson.dumps(OLD_SHAPE))]).min_ages == (18.0,)
    assert isinstance(record_keys([link_fields(orjson.dumps(OLD_SHAPE))]).min_ages[0], float)
