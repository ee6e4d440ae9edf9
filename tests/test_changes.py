"""The change feed, time travel and history, on both stores: a real pair of
versions gives the changes read off the two bodies (golden file), list
items matched by identity, provenance-only and derived-only changes left
out, 404 then back, `reconcile --as-of` before and after a change, and the
offline demo's harvest writing the changes of its two real versions."""
from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from _servers import postgres_server  # noqa: F401  (fixture)

from _project import scrapy
from harvester.changes import iter_changes, skip_path
from harvester.commands.changes import write_changes
from harvester.diff import diff
from harvester.store import Store
from harvester.store_pg import PgStore
from items import Location, SourceRecord, Sponsor
from pipelines.validate import content_hash
from spiders.ctgov import parse_study

REPO = Path(__file__).resolve().parents[1]
CTGOV = REPO / "cassettes" / "src" / "ctgov"
GOLDEN = REPO / "tests" / "golden" / "changes"
FETCHED = datetime(2026, 11, 23, 9, tzinfo=timezone.utc)


class Clock:
    def __init__(self):
        self.now = "2026-11-01T00:00:00.000000+00:00"

    def set(self, day: int) -> None:
        self.now = f"2026-11-{day:02d}T00:00:00.000000+00:00"

    def __call__(self) -> str:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = Store(tmp_path / "h.sqlite3")
    else:
        s = PgStore(request.getfixturevalue("postgres_server").new_database("changes"))
    s.clock = Clock()
    yield s
    s.close()


def ctgov(path: Path) -> tuple[SourceRecord, bytes]:
    body = path.read_bytes()
    record = parse_study(json.loads(body), fetched=FETCHED)
    record.content_hash = content_hash(record)
    return record, body


def page(url="https://ctv.veeva.com/study/a", nct="NCT07400001", site="veeva", **fields):
    fields.setdefault("brief_title", "A study of something specific enough")
    r = SourceRecord(site=site, url=url, fetched_at=FETCHED, nct_id=nct, **fields)
    r.content_hash = content_hash(r)
    return r


def feed(store, since, until) -> bytes:
    out = io.BytesIO()
    write_changes(store, out, since, until, None)
    return out.getvalue()


def changes(store, since, until) -> list[dict]:
    return [json.loads(line) for line in feed(store, since, until).splitlines()]


def test_a_real_pair_of_versions_gives_the_changes_read_off_the_two_bodies(store):
    store.clock.set(10)
    store.upsert(*ctgov(CTGOV / "real_NCT04637503_2020-11-19.json"))
    store.clock.set(20)
    assert store.upsert(*ctgov(CTGOV / "real_NCT04637503_2026-06-22.json")) == "updated"
    assert feed(store, "2026-11-15", "2026-11-25") == (GOLDEN / "NCT04637503.jsonl").read_bytes()
    # the window decides: nothing changed before the 20th, nor after it
    assert feed(store, "2026-11-10", "2026-11-19") == b""
    assert feed(store, "2026-11-20", "2026-11-30") == b""


def test_sqlite_and_postgresql_give_byte_identical_changes(tmp_path, postgres_server):  # noqa: F811
    outputs = []
    for s in (Store(tmp_path / "h.sqlite3"), PgStore(postgres_server.new_database("same"))):
        with s:
            s.clock = Clock()
            s.clock.set(10)
            s.upsert(*ctgov(CTGOV / "real_NCT04637503_2020-11-19.json"))
            s.upsert(page(brief_title="Étude ß", conditions=["b", "A", "é"]))
            s.upsert(page(url="https://ctv.veeva.com/study/Z", nct="NCT07400002"))
            s.clock.set(20)
            s.upsert(*ctgov(CTGOV / "real_NCT04637503_2026-06-22.json"))
            s.upsert(page(brief_title="Étude ß", conditions=["a", "B", "é", "ä"]))
            s.mark_removed("veeva", "https://ctv.veeva.com/study/Z")
            s.upsert(page(url="https://ctv.veeva.com/study/new", nct="NCT07400003"))
            outputs.append(feed(s, "2026-11-15", "2026-11-25"))
    assert outputs[0] == outputs[1]
    kinds = [(c["nct_id"], c["change"]) for c in map(json.loads, outputs[0].splitlines())]
    assert ("NCT07400002", "trial_gone") in kinds and ("NCT07400003", "trial_appeared") in kinds


def test_derived_only_changes_are_no_change_of_the_trial(store):
    # NCT01483820: between the two real copies only dates moved and CT.gov's
    # derived section (MeSH leaves renumbered, bmiLimits dropped) changed
    store.clock.set(10)
    store.upsert(*ctgov(REPO / "tests" / "data" / "NCT01483820_2023-09-28.json"))
    store.clock.set(20)
    store.upsert(*ctgov(REPO / "tests" / "data" / "NCT01483820_2024-04-03.json"))
    got = [(c["field"], c["old"], c["new"]) for c in changes(store, "2026-11-15", "2026-11-25")]
    # (the record keeps MeSH descriptors, whose ids did not move; the renumbered
    # browse leaves are not read)
    assert got == [("last_update_posted", "2023-09-28", "2024-04-03"), ("status_verified_date", "2023-09", "2024-04")]
    # and a derived field, whatever its content, is never diffed
    assert skip_path("condition_mesh") and skip_path("intervention_mesh_ancestors") and skip_path("sources")
    assert list(diff({"condition_mesh": {"value": [{"id": "M14540"}], "site": "c", "url": "u", "fetched_at": "t"}},
                     {"condition_mesh": {"value": [{"id": "M14850"}], "site": "c", "url": "u", "fetched_at": "t"}},
                     skip=skip_path)) == []


def loc(facility, city, status, country="Australia"):
    return Location(facility=facility, city=city, country=country, status=status)


def test_list_items_are_matched_by_identity_not_position(store):
    brisbane = loc("Queensland Children's Hospital", "South Brisbane", "WITHDRAWN")
    perth = loc("Perth Children's Hospital", "Perth", "RECRUITING")
    store.clock.set(10)
    store.upsert(page(locations=[perth, brisbane], conditions=["Leukemia", "Lymphoma"]))
    store.clock.set(20)
    # re-ordered, one site's status changed, and at index 1 another site replaces Brisbane in place
    taichung = loc("China Medical University Hospital", "Taichung", "NOT_YET_RECRUITING", country="Taiwan")
    store.upsert(page(locations=[taichung, loc("Perth Children's Hospital", "Perth", "COMPLETED")],
                      conditions=["Lymphoma", "Leukemia"]))
    got = [(c["field"], c["change"], c["key"], c["old"], c["new"]) for c in changes(store, "2026-11-15", "2026-11-25")]
    assert got == [
        ("locations", "removed", {"facility": "Queensland Children's Hospital", "city": "South Brisbane"},
         brisbane.model_dump(), None),
        ("locations", "added", {"facility": "China Medical University Hospital", "city": "Taichung"},
         None, taichung.model_dump()),
        ("locations.status", "changed", {"facility": "Perth Children's Hospital", "city": "Perth"},
         "RECRUITING", "COMPLETED"),
    ]  # the conditions only changed order: nothing


def test_a_change_of_provenance_only_is_no_change(store):
    ct = "https://clinicaltrials.gov/api/v2/studies/NCT07400001"
    store.clock.set(10)
    store.upsert(page(url=ct, site="ctgov", overall_status="RECRUITING", conditions=["Leukemia"]))
    store.upsert(page(overall_status="RECRUITING"))
    store.clock.set(20)
    store.mark_removed("ctgov", ct)  # the registry page goes: the mirror gives the same title and status
    got = [(c["field"], c["change"], c["old"], c["new"], c["site"]) for c in changes(store, "2026-11-15", "2026-11-25")]
    assert got == [("conditions", "removed", "Leukemia", None, "ctgov")]  # only what the mirror does not print


def test_gone_then_back(store):
    store.clock.set(10)
    store.upsert(page(overall_status="RECRUITING"))
    store.clock.set(20)
    store.mark_removed("veeva", "https://ctv.veeva.com/study/a")
    store.clock.set(25)
    assert store.upsert(page(overall_status="RECRUITING")) == "unchanged"
    gone = changes(store, "2026-11-15", "2026-11-22")
    assert [(c["change"], c["observed_at"]) for c in gone] == [("trial_gone", "2026-11-20T00:00:00.000000+00:00")]
    back = changes(store, "2026-11-22", "2026-11-28")
    assert [(c["change"], c["site"]) for c in back] == [("trial_appeared", "veeva")]
    assert changes(store, "2026-11-15", "2026-11-28") == []  # over the whole window: as it was


def test_an_unchanged_refresh_adds_no_version_and_no_change(store):
    store.clock.set(10)
    record, body = ctgov(CTGOV / "real_NCT04637503_2026-06-22.json")
    store.upsert(record, body)
    store.clock.set(20)
    again, body = ctgov(CTGOV / "real_NCT04637503_2026-06-22.json")
    assert store.upsert(again, body) == "unchanged"
    assert store.count("versions") == 1 and changes(store, "2026-11-15", "2026-11-25") == []


def test_changes_stream_in_nct_order_across_chunks(store):
    store.clock.set(10)
    ncts = [f"NCT074{i:05d}" for i in (7, 3, 11, 1, 5)]
    for n in ncts:
        store.upsert(page(url=f"https://ctv.veeva.com/study/{n}", nct=n, overall_status="RECRUITING"))
    store.clock.set(20)
    for n in ncts:
        store.upsert(page(url=f"https://ctv.veeva.com/study/{n}", nct=n, overall_status="COMPLETED"))
    got = list(iter_changes(store, "2026-11-15", "2026-11-25", chunk=2))
    assert [c["nct_id"] for c in got] == sorted(ncts)
    assert {(c["field"], c["old"], c["new"]) for c in got} == {("overall_status", "RECRUITING", "COMPLETED")}


# ------------------------------------------------------------------ commands
def test_reconcile_as_of_before_and_after_a_change_is_byte_identical_whenever_run(tmp_path):
    db = tmp_path / "harvest.sqlite3"
    with Store(db) as s:
        s.clock = Clock()
        s.clock.set(10)
        s.upsert(*ctgov(CTGOV / "real_NCT04637503_2020-11-19.json"))
        s.clock.set(20)
        s.upsert(*ctgov(CTGOV / "real_NCT04637503_2026-06-22.json"))
    outs = {}
    for name, when in (("before", "2026-11-15"), ("after", "2026-11-21T00:00:00Z"), ("again", "2026-11-15")):
        run = scrapy(["reconcile", "--as-of", when, "-O", f"{name}.jsonl"], tmp_path, offline=False)
        assert run.returncode == 0, run.stderr[-2000:]
        outs[name] = (tmp_path / f"{name}.jsonl").read_bytes()
    assert outs["before"] == outs["again"]
    (before,), (after,) = (list(map(json.loads, outs[k].splitlines())) for k in ("before", "after"))
    assert before["overall_status"]["value"] == "UNKNOWN" and len(before["locations"]["value"]) == 4
    assert after["overall_status"]["value"] == "RECRUITING" and len(after["locations"]["value"]) == 1
    run = scrapy(["reconcile", "-O", "now.jsonl"], tmp_path, offline=False)
    assert (tmp_path / "now.jsonl").read_bytes() == outs["after"]
    bad = scrapy(["reconcile", "--as-of", "yesterday", "-O", "x.jsonl"], tmp_path, offline=False)
    assert bad.returncode != 0 and "not an ISO-8601" in bad.stderr


def test_the_offline_demo_writes_the_changes_of_its_two_real_versions(tmp_path):
    first = scrapy(["harvest", "--offline", "-O", "canonical.jsonl"], tmp_path, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    lines = [json.loads(line) for line in (tmp_path / "changes.jsonl").read_text().splitlines()]
    # the first harvest of a store: every trial appeared, and the study read in two versions shows their changes
    appeared = sorted(c["nct_id"] for c in lines if c["change"] == "trial_appeared")
    canonical = [json.loads(line)["nct_id"] for line in (tmp_path / "canonical.jsonl").read_text().splitlines()]
    assert appeared == canonical and "NCT04637503" in canonical
    strip = lambda c: {k: v for k, v in c.items() if k != "observed_at"}  # noqa: E731
    golden = [strip(json.loads(line)) for line in (GOLDEN / "NCT04637503.jsonl").read_text().splitlines()]
    assert [strip(c) for c in lines if c["change"] != "trial_appeared"] == golden
    # the next harvest replays the same pages: nothing changed since the previous one
    second = scrapy(["harvest", "--offline", "-O", "canonical.jsonl"], tmp_path, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert (tmp_path / "changes.jsonl").read_bytes() == b""
    assert "changes since the previous harvest" in second.stderr
    hist = scrapy(["history", "NCT04637503"], tmp_path, offline=False)
    assert hist.returncode == 0, hist.stderr[-2000:]
    text = hist.stdout
    assert "version 1:" in text and "version 2:" in text
    assert "overall_status: UNKNOWN -> RECRUITING" in text
    assert "locations removed:" in text and "Shandong Cancer Hospital" in text
    js = [json.loads(line) for line in scrapy(["history", "NCT04637503", "--json"], tmp_path,
                                              offline=False).stdout.splitlines()]
    # the replay serves the old version, then the new one, again: the store keeps what it saw
    # (back to the old content is a version too, then the new again); the canonical record
    # ended where it was, so the feed between the two harvests is empty
    assert [[(v["seq"], v["changes"] != []) for v in p["versions"]] for p in js] == [
        [(1, False), (2, True), (3, True), (4, True)]]
    # scrapy changes since the beginning: the trials as they are, appeared, with the changes of
    # the study read in several versions
    run = scrapy(["changes", "--since", "2000-01-01", "-O", "-"], tmp_path, offline=False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert [strip(json.loads(line)) for line in run.stdout.splitlines()] == [strip(c) for c in lines]


def test_a_page_without_nct_id_counts_for_the_trial_it_links_to(store):
    ct = "https://clinicaltrials.gov/api/v2/studies/NCT07400001"
    title = "Anti-CD19 Chimeric Antigen Receptor T Cells for Relapsed Pediatric Leukemia"
    fields = dict(brief_title=title, lead_sponsor=Sponsor(name="Shenzhen Geno-Immune Medical Institute"),
                  conditions=["Acute Lymphoblastic Leukemia"])
    store.clock.set(10)
    store.upsert(page(url=ct, site="ctgov", overall_status="RECRUITING", **fields))
    for i in range(3):  # other trials, so linking has an index to choose from
        store.upsert(page(url=f"https://clinicaltrials.gov/api/v2/studies/NCT0740010{i}", site="ctgov",
                          nct=f"NCT0740010{i}", brief_title=f"Unrelated Study Number {i} of Something Else",
                          lead_sponsor=Sponsor(name=f"Other Sponsor {i}")))
    lay = "https://clinconnect.io/trials/cd19-kids"
    store.upsert(page(url=lay, site="clinconnect", nct=None, lay_summary="Version one.", **fields))
    store.clock.set(20)
    store.upsert(page(url=ct, site="ctgov", overall_status="COMPLETED", **fields))
    store.upsert(page(url=lay, site="clinconnect", nct=None, lay_summary="Version two.", **fields))
    got = [(c["nct_id"], c["field"], c["old"], c["new"], c["site"]) for c in changes(store, "2026-11-15", "2026-11-25")]
    assert got == [("NCT07400001", "lay_summary", "Version one.", "Version two.", "clinconnect"),
                   ("NCT07400001", "overall_status", "RECRUITING", "COMPLETED", "ctgov")]
    # the trial's title changes so much that the page no longer links: its summary goes with it
    store.clock.set(27)
    store.upsert(page(url=ct, site="ctgov", overall_status="COMPLETED",
                      **dict(fields, brief_title="Metformin in Type 2 Diabetes of Adults, a Registry",
                             lead_sponsor=Sponsor(name="Another Institute"), conditions=["Diabetes"])))
    got = [(c["field"], c["change"], c["old"]) for c in changes(store, "2026-11-25", "2026-11-28")]
    assert ("lay_summary", "changed", "Version two.") in got
    assert ("conditions", "removed", "Acute Lymphoblastic Leukemia") in got
