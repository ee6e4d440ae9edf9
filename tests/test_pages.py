"""The page-object base and the site registry: fields checked when a class is
defined, notes and printed values tied to the field being read, identifier
screening, the study-page check, the body carried with the record, and
every site declared once in its own module."""
from __future__ import annotations

import gc
import re

import pytest

from harvester.sites import Site, default_precedence, site, sites
from items import Identifier, RecordWithBody, Sex, SourceRecord, Status
from spiders.pages import FIELD_TYPES, NotAStudyPage, StudyPage, field

URL = "https://example.org/trials/1"
FETCHED = "2026-11-23T09:00:00Z"


def make_site(page: type, name: str = "example", **kw) -> Site:
    return Site(name=name, page=page, base="https://example.org", domains=("example.org",),
                study_url=re.compile(r"^https://example\.org/trials/\d+$"), **kw)


class ExamplePage(StudyPage):
    def __init__(self, data: dict, body: bytes = b"<html>the page</html>"):
        super().__init__(URL, FETCHED, body)
        self.data = data

    def check(self) -> None:
        if "status" not in self.data:
            raise NotAStudyPage("not an example.org study page: no Status")

    @field
    def nct_id(self) -> str | None:
        return self.data.get("nct")

    @field
    def overall_status(self) -> Status | None:
        printed = self.data["status"]
        self.printed(printed)
        if printed == "Recruiting":
            return "RECRUITING"
        return self.unmapped("UNKNOWN", f"status {printed!r} is not in the vocabulary")

    @field
    def inclusion(self) -> list[str]:
        return list(self.data.get("inclusion", []))

    @field
    def min_age_years(self) -> float | None:
        # from another field's value, noted on this one
        for item in self.inclusion():
            if item.startswith("Aged "):
                self.note("from_other_section", f"taken from the inclusion criterion {item!r}")
                return float(item.split()[1])
        return None

    @field
    def sex(self) -> Sex | None:
        return "ALL"

    @field
    def secondary_ids(self) -> list[Identifier]:
        return self.screened([(i, "ORG", None) for i in self.data.get("ids", [])])


EXAMPLE = make_site(ExamplePage)


def test_a_page_object_gives_its_record_with_notes_and_printed_values():
    page = ExamplePage({"nct": "NCT01234567", "status": "Paused", "inclusion": ["Aged 18 or over"]})
    r = page.to_record()
    assert isinstance(r, SourceRecord)
    assert (r.site, r.url, r.nct_id) == ("example", URL, "NCT01234567")
    assert r.overall_status == "UNKNOWN"
    assert r.eligibility.min_age_years == 18.0 and r.eligibility.sex == "ALL"
    assert r.eligibility.inclusion == ["Aged 18 or over"]
    assert r.raw == {"overall_status": "Paused"}
    assert [(n.field, n.kind) for n in r.notes] == [
        ("overall_status", "unmapped_vocabulary"),
        ("eligibility.min_age_years", "from_other_section")]
    # fields the class does not define are empty
    assert r.brief_title is None and r.conditions == [] and r.lay_summary is None


def test_a_field_is_computed_once_even_when_another_field_reads_it():
    calls = []

    class Counting(ExamplePage):
        @field
        def inclusion(self) -> list[str]:
            calls.append(1)
            return ["Aged 30 or over"]

    make_site(Counting, name="counting")
    r = Counting({"status": "Recruiting"}).to_record()
    assert r.eligibility.min_age_years == 30.0 and len(calls) == 1
    # an override keeps the field's place; the others stay in definition order
    assert [f.name for f in Counting.fields] == [
        "nct_id", "overall_status", "inclusion", "min_age_years", "sex", "secondary_ids"]


def test_one_field_can_be_read_alone():
    page = ExamplePage({"status": "Recruiting"})
    assert page.overall_status() == "RECRUITING"
    assert page.min_age_years() is None


def test_identifiers_are_screened_and_noted():
    r = ExamplePage({"status": "Recruiting", "ids": ["N/A", "NCT02186860", "ABC-123"]}).to_record()
    assert [(i.id, i.kind) for i in r.secondary_ids] == [("NCT02186860", "NCT"), ("ABC-123", "ORG")]
    assert [(n.field, n.kind) for n in r.notes] == [
        ("secondary_ids", "rejected_identifier"), ("secondary_ids", "identifier_kind_mismatch")]


def test_the_study_page_check_refuses_other_pages():
    with pytest.raises(NotAStudyPage, match="no Status"):
        ExamplePage({"nct": "NCT01234567"}).to_record()
    assert issubclass(NotAStudyPage, ValueError)  # what spiders turn into a Reject


def test_to_item_carries_the_body():
    item = ExamplePage({"status": "Recruiting"}, body=b"<html>bytes as served</html>").to_item()
    assert isinstance(item, RecordWithBody)
    assert item.body == b"<html>bytes as served</html>" and item.record.overall_status == "RECRUITING"


def test_the_collector_is_paused_while_a_page_is_read_and_resumed_after():
    seen = []

    class Watching(ExamplePage):
        @field
        def sex(self) -> Sex | None:
            seen.append(gc.isenabled())
            return self.data.get("sex", "ALL")

    make_site(Watching, name="watching")
    assert gc.isenabled()
    Watching({"status": "Recruiting"}).to_record()
    assert seen == [False] and gc.isenabled()
    # resumed after a page that is refused, and after one that fails validation
    with pytest.raises(NotAStudyPage):
        Watching({}).to_record()
    assert gc.isenabled()
    with pytest.raises(ValueError, match="sex"):
        Watching({"status": "Recruiting", "sex": "EVERYONE"}).to_record()
    assert seen == [False, False] and gc.isenabled()
    # a caller that paused it itself finds it still paused
    gc.disable()
    try:
        Watching({"status": "Recruiting"}).to_record()
        assert not gc.isenabled()
    finally:
        gc.enable()


# --- checked when the class is defined -----------------------------------------------------
def test_a_misspelt_field_is_an_error_when_the_class_is_defined():
    with pytest.raises(TypeError, match="overal_status"):
        class Misspelt(StudyPage):
            @field
            def overal_status(self) -> Status | None:
                return None


def test_a_field_of_the_wrong_type_is_an_error_when_the_class_is_defined():
    with pytest.raises(TypeError, match=r"phases returns str.*list\[Literal"):
        class WrongType(StudyPage):
            @field
            def phases(self) -> str:
                return "PHASE1"


def test_an_unannotated_field_is_an_error_when_the_class_is_defined():
    with pytest.raises(TypeError, match="annotate the return type"):
        class Unannotated(StudyPage):
            @field
            def brief_title(self):
                return None


def test_the_base_fills_site_url_raw_and_notes_itself():
    for name in ("site", "url", "fetched_at", "raw", "notes", "content_hash", "eligibility"):
        assert name not in FIELD_TYPES
    assert FIELD_TYPES["sex"][0] == "eligibility.sex"
    assert FIELD_TYPES["brief_title"][0] == "brief_title"


def test_printed_values_belong_to_a_field():
    page = ExamplePage({"status": "Recruiting"})
    with pytest.raises(RuntimeError, match="inside a @field method"):
        page.printed("x")


# --- the registry ----------------------------------------------------------------------------
def test_the_registry_holds_every_site_declared_in_the_spider_modules():
    registry = sites()
    assert list(registry) == ["ctgov", "veeva", "medpath", "clinconnect"]  # by rank
    for name, entry in registry.items():
        assert entry.page.site == name
        assert entry.study_url.pattern
        assert entry.offline, f"{name} has no offline demo"
    assert site("ctgov").nct_url("NCT02513394") == "https://clinicaltrials.gov/api/v2/studies/NCT02513394"
    assert site("medpath").nct_url("NCT02513394") is None  # MedPath URLs do not carry the ID
    with pytest.raises(KeyError, match="unknown site 'nope'"):
        site("nope")


def test_default_precedence_comes_from_the_sites_ranks_and_claims():
    assert default_precedence(sites()) == {
        "*": ["ctgov", "veeva", "medpath", "clinconnect"],
        "lay_summary": ["clinconnect", "ctgov", "veeva", "medpath"],
    }


def test_each_spider_takes_its_name_domains_and_politeness_from_its_site():
    from scrapy.spiderloader import SpiderLoader
    from scrapy.settings import Settings

    loader = SpiderLoader.from_settings(Settings({"SPIDER_MODULES": ["spiders"]}))
    assert sorted(loader.list()) == sorted(sites())
    for name, entry in sites().items():
        spidercls = loader.load(name)
        assert spidercls.site_entry is entry
        assert (spidercls.name, spidercls.site) == (name, name)
        assert spidercls.allowed_domains == list(entry.domains)
        for key, value in entry.politeness.items():
            assert spidercls.custom_settings[key] == value


def test_a_page_object_belongs_to_one_site():
    class Shared(StudyPage):
        pass

    make_site(Shared, name="first")
    with pytest.raises(ValueError, match="already the page object of site 'first'"):
        make_site(Shared, name="second")


def test_first_for_names_fields_only():
    class Claims(StudyPage):
        pass

    with pytest.raises(TypeError, match="not a SourceRecord field"):
        make_site(Claims, name="claims", first_for=("lay_sumary",))
