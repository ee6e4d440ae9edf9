"""ClinConnect (clinconnect.io): a patient-facing re-publisher of
ClinicalTrials.gov records, and the only source of a plain-language summary.

A study page is `https://clinconnect.io/trials/<NCT ID>` (breadcrumb
"Search / Trial NCT…"). The page prints, in order: the title; "Launched by
<SPONSOR> · <Mon DD, YYYY>"; "Trial Information" with "Current as of <date>"
and the status; "Keywords"; "ClinConnect Summary"; "Gender"; "Eligibility
criteria" (bullets, with CT.gov's markdown escapes such as `\\<` left in);
"About <Sponsor>"; "Contacts"; "Locations"; "Patients applied"; "Trial
Officials"; "Timeline".

`parse_clinconnect(response)` is pure: the page's lines (`spiders.sections`)
are cut at the labels of `LABELS` (plus "About <sponsor>", whose words depend
on the sponsor the page names), and every record field comes from one row of
`FIELD_MAP`. Anchoring is on label words and their order only.

Judgement calls:

* "Launched by <SPONSOR>" → `lead_sponsor.name` as printed. Its date is
  *not* put in `start_date`: the page's timeline lists "First submit" and
  "Trial launched" as different events and prints no value for either, so
  whether the date is CT.gov's first-submitted, first-posted or start date
  cannot be told from the page. It is kept as `raw["launch_date"]` (ISO)
  with a note.
* "Current as of <date>" is kept as `raw["current_as_of"]` with a note, not
  as `last_update_posted`: it may be the date ClinConnect last synced the
  record rather than CT.gov's last update.
* "ClinConnect Summary" → `lay_summary` (no other source has one); "About
  <Sponsor>" → `raw["about_sponsor"]`; "Trial Officials" → `raw`.
* The "Contacts" block is not read into any field: on real pages it can
  name a person with no relation to the trial (seed 000).
* NCT ID: printed in the body if it is; else from the URL
  (`/trials/NCT…`); else from the breadcrumb; else None, and the record is
  kept for linking by other means. Where it came from: `raw["nct_id_from"]`.
* No age field is printed: ages come from an inclusion criterion with a
  `from_other_section` note, as on MedPath.

Discovery: `-a nct=NCT1,NCT2` builds the study URLs directly; `-a urls=`;
or the sitemap index `https://clinconnect.io/sitemap.xml` (`-a sitemap=`,
`-a since=`; each request carries the sitemap's `lastmod`).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Callable

from scrapy.http import Response

from harvester.normalize.ages import ages_from_criteria
from harvester.normalize.dates import normalize_date
from harvester.normalize.ids import normalize_nct
from harvester.normalize.places import split_place
from harvester.normalize.sex import normalize_sex
from harvester.normalize.status import normalize_status
from harvester.normalize.text import clean_prose, clean_text, unescape_ctgov
from items import Note, SourceRecord
from harvester.sites import Site
from spiders.base import StudyPageSpider, fetched_at
from spiders.pages import ParsedByFunction
from spiders.sections import Line, criteria_items, label_key, page_lines, preamble, read_sections

logger = logging.getLogger(__name__)

BASE = "https://clinconnect.io"
SITEMAP_INDEX = f"{BASE}/sitemap.xml"
STUDY_URL = re.compile(r"^https?://(?:www\.)?clinconnect\.io/trials/(?P<key>[^/?#]+)/?(?:[?#].*)?$", re.I)
URL_NCT = re.compile(r"/trials/(NCT\d{8})(?:[/?#]|$)", re.I)


def study_url(nct_id: str) -> str:
    return f"{BASE}/trials/{nct_id}"


LABELS: dict[str, str] = {
    "Trial Information": "trial_information",
    "Keywords": "keywords",
    "ClinConnect Summary": "summary",
    "Gender": "gender",
    "Sex": "gender",
    "Eligibility criteria": "eligibility",
    "Inclusion Criteria": "inclusion",
    "Exclusion Criteria": "exclusion",
    "Contacts": "contacts",
    "Locations": "locations",
    "Patients applied": "patients_applied",
    "Trial Officials": "officials",
    "Timeline": "timeline",
}
ABOUT = "about_sponsor"
KEY_SECTIONS = ("trial_information", "summary", "eligibility", "inclusion", "gender", "locations")
TIMELINE = ("First submit", "Trial launched", "Trial updated", "Estimated completion")
_TIMELINE_KEYS = {label_key(t): t for t in TIMELINE}
OFFICIAL_ROLES = ("principal investigator", "study director", "study chair", "sub-investigator",
                  "study principal investigator")
NOT_REPORTED = {"not reported", "n/a", "not available", "-"}

_LAUNCHED = re.compile(r"^Launched by\s+(?P<sponsor>.+?)(?:\s*[·•|]\s*(?P<date>[^·•|]+))?$", re.I)
_AS_OF = re.compile(r"^Current as of\s+(?P<date>.+)$", re.I)
_BREADCRUMB = re.compile(r"^Search\s*/\s*Trial\s+(?P<nct>NCT\d{8})\b", re.I)
_NCT = re.compile(r"\bNCT\d{8}\b")


@dataclass
class Page:
    url: str
    lines: list[Line]
    sections: dict[str, list[Line]]
    head: list[Line]
    launched: re.Match | None

    def texts(self, name: str) -> list[str]:
        return [ln.text for ln in self.sections.get(name) or []]

    def first(self, name: str) -> str | None:
        texts = self.texts(name)
        return texts[0] if texts else None


@dataclass(frozen=True)
class Unmapped:
    value: Any
    detail: str


def _launched(lines: list[Line]) -> re.Match | None:
    for line in lines:
        m = _LAUNCHED.match(line.text)
        if m:
            return m
    return None


def read_page(response: Response) -> Page:
    lines = page_lines(response)
    head_lines = preamble(lines, LABELS)
    launched = _launched(head_lines) or _launched(lines[:20])
    labels = dict(LABELS)
    if launched:
        labels[f"About {launched.group('sponsor')}"] = ABOUT
    cut = read_sections(lines, labels)
    sections = {name: list(s.lines) for name, s in cut.items()}
    if ABOUT not in sections:
        # A sponsor blurb whose heading names the sponsor differently.
        sections.update(_about_by_shape(lines, labels))
    return Page(url=response.url, lines=lines, sections=sections, head=head_lines, launched=launched)


def _about_by_shape(lines: list[Line], labels: dict[str, str]) -> dict[str, list[Line]]:
    keys = {label_key(k) for k in labels}
    for i, line in enumerate(lines):
        if line.text.startswith("About ") and len(line.text) <= 120 and not line.bullet:
            out = []
            for nxt in lines[i + 1:]:
                if label_key(nxt.text) in keys:
                    break
                out.append(nxt)
            return {ABOUT: out}
    return {}


# --- converters ------------------------------------------------------------------
def _title(page: Page):
    head = page.head
    for i, line in enumerate(head):
        if _LAUNCHED.match(line.text):
            return clean_text(head[i - 1].text) if i else None
    for line in head:
        if not _BREADCRUMB.match(line.text):
            return clean_text(line.text)
    return None


def _sponsor(page: Page):
    if not page.launched:
        return None
    name = clean_text(page.launched.group("sponsor"))
    return {"name": name} if name else None


def _status(page: Page):
    printed = [t for t in page.texts("trial_information") if not _AS_OF.match(t)]
    for text in printed:
        status, known = normalize_status(text)
        if known and status:
            return status
    if printed:
        return Unmapped(None, f"no status word recognised in {printed!r}")
    return None


def _sex(page: Page):
    printed = page.first("gender")
    sex = normalize_sex(printed)
    if printed and sex is None:
        return Unmapped(None, f"gender {printed!r} not recognised")
    return sex


def _lay_summary(page: Page):
    texts = page.texts("summary")
    return clean_prose("\n\n".join(texts)) if texts else None


def _criteria(name: str) -> Callable[[Page], list[str]]:
    def convert(page: Page):
        return criteria_items(page.sections.get(name) or [])
    return convert


# A bullet glyph printed inside a list item's text ("• 1. ..."): a text
# rendering of the page loses it with the list marker, so it is not kept.
_GLYPH = re.compile(r"^[\u2022\u25e6\u25aa\u25cf\u2023\u2043\u2219]\s+")


def _criteria_text(page: Page):
    """The criteria as printed, each criteria label followed by its lines
    (bullet glyphs dropped, CT.gov escapes undone)."""
    parts = []
    for name, label in (("inclusion", "Inclusion Criteria:"), ("exclusion", "Exclusion Criteria:")):
        texts = [_GLYPH.sub("", t) for t in page.texts(name)]
        if texts:
            parts.append("\n".join([label, *texts]))
    if not parts and page.texts("eligibility"):
        parts.append("\n".join(page.texts("eligibility")))
    return clean_prose(unescape_ctgov("\n\n".join(parts))) if parts else None


def _locations(page: Page):
    """"City, State, Country" lines; a line without a comma just before one
    is that place's facility."""
    texts = page.texts("locations")
    out = []
    facility = None
    for i, text in enumerate(texts):
        if "," not in text and i + 1 < len(texts) and "," in texts[i + 1]:
            facility = clean_text(text)
            continue
        out.append({"facility": facility, **split_place(text), "status": None})
        facility = None
    return out


@dataclass(frozen=True)
class F:
    field: str
    label: str | None
    convert: Callable[[Page], Any]
    keep_raw: bool = False


FIELD_MAP: tuple[F, ...] = (
    F("brief_title", None, _title),
    F("lead_sponsor", None, _sponsor),
    F("overall_status", "trial_information", _status),
    F("lay_summary", "summary", _lay_summary),
    F("eligibility.sex", "gender", _sex, keep_raw=True),
    F("eligibility.inclusion", "inclusion", _criteria("inclusion")),
    F("eligibility.exclusion", "exclusion", _criteria("exclusion")),
    F("eligibility.criteria_text", "inclusion", _criteria_text),
    F("locations", "locations", _locations),
)


# --- the NCT ID ---------------------------------------------------------------------
def _nct(page: Page, url: str, raw: dict, notes: list[Note]) -> str | None:
    breadcrumb = None
    printed = None
    for line in [*page.head, *page.sections.get("trial_information", [])]:
        m = _BREADCRUMB.match(line.text)
        if m:
            breadcrumb = breadcrumb or normalize_nct(m.group("nct"))
            continue
        if printed is None:
            m = _NCT.search(line.text)
            if m:
                printed = normalize_nct(m.group(0))
    m = URL_NCT.search(url or "")
    from_url = normalize_nct(m.group(1)) if m else None
    for source, value in (("page", printed), ("url", from_url), ("breadcrumb", breadcrumb)):
        if value:
            raw["nct_id_from"] = source
            others = {v for v in (printed, from_url, breadcrumb) if v and v != value}
            if others:
                notes.append(Note(field="nct_id", kind="in_page_disagreement",
                                  detail=f"the {source} gives {value}, elsewhere {sorted(others)}"))
            return value
    return None


def _officials(page: Page) -> list[dict]:
    texts = page.texts("officials")
    out = []
    for i, text in enumerate(texts):
        if text.casefold() in OFFICIAL_ROLES:
            out.append({"name": texts[i - 1] if i else None, "role": text,
                        "affiliation": texts[i + 1] if i + 1 < len(texts)
                        and texts[i + 1].casefold() not in OFFICIAL_ROLES else None})
    return out


def _timeline(page: Page) -> dict[str, str]:
    """Timeline events with the date printed after them, when one is."""
    out: dict[str, str] = {}
    current = None
    for text in page.texts("timeline"):
        key = label_key(text)
        if key in _TIMELINE_KEYS:
            current = _TIMELINE_KEYS[key]
            continue
        if current and text.strip().casefold() not in NOT_REPORTED:
            date = normalize_date(text)
            if date:
                out[current] = date
        current = None
    return out


def parse_clinconnect(response: Response) -> SourceRecord:
    """A ClinConnect trial page -> SourceRecord. Pure."""
    page = read_page(response)
    found = [name for name in KEY_SECTIONS if name in page.sections]
    if len(found) < 2 and not page.launched:
        raise ValueError(f"not a ClinConnect trial page: labels found {sorted(page.sections) or 'none'}; "
                         f"expected 'Launched by …' and several of "
                         f"{', '.join(k for k, v in LABELS.items() if v in KEY_SECTIONS)}")
    record: dict[str, Any] = {"eligibility": {}}
    raw: dict[str, Any] = {}
    notes: list[Note] = []
    for row in FIELD_MAP:
        value = row.convert(page)
        if isinstance(value, Unmapped):
            notes.append(Note(field=row.field, kind="unmapped_vocabulary", detail=value.detail))
            value = value.value
        if row.keep_raw and row.label and page.sections.get(row.label):
            raw[row.field] = "\n".join(page.texts(row.label))
        target, _, sub = row.field.partition(".")
        if sub:
            record[target][sub] = value
        else:
            record[target] = value
    record["nct_id"] = _nct(page, response.url, raw, notes)
    _ages(record, raw, notes)
    # printed values no record field is sure to mean
    if page.launched:
        raw["launched"] = page.launched.group(0)
        date = normalize_date(page.launched.group("date")) if page.launched.group("date") else None
        if date:
            raw["launch_date"] = date
            notes.append(Note(field="start_date", kind="ambiguous_meaning",
                              detail=f"'Launched … {page.launched.group('date')}' kept in raw.launch_date: "
                                     "the page does not say whether it is CT.gov's first-submitted, "
                                     "first-posted or start date"))
    for text in page.texts("trial_information"):
        m = _AS_OF.match(text)
        if m and normalize_date(m.group("date")):
            raw["current_as_of"] = normalize_date(m.group("date"))
            notes.append(Note(field="last_update_posted", kind="ambiguous_meaning",
                              detail=f"'{text}' kept in raw.current_as_of: it may be when ClinConnect "
                                     "last synced the record, not CT.gov's last update"))
            break
    status_printed = [t for t in page.texts("trial_information") if not _AS_OF.match(t)]
    if status_printed:
        raw["overall_status"] = "\n".join(status_printed)
    if page.texts("keywords"):
        raw["keywords"] = page.texts("keywords")
    if page.texts(ABOUT):
        raw["about_sponsor"] = clean_prose("\n\n".join(page.texts(ABOUT)))
    officials = _officials(page)
    if officials:
        raw["trial_officials"] = officials
    timeline = _timeline(page)
    if timeline:
        raw["timeline"] = timeline
    rec = SourceRecord(site=SITE.name, url=response.url, fetched_at=fetched_at(response),
                       raw=raw, notes=notes, **record)
    return rec


def _ages(record: dict, raw: dict, notes: list[Note]) -> None:
    found = ages_from_criteria(record["eligibility"].get("inclusion") or [])
    if found is None or found[0].empty:
        return
    rng, matched = found
    raw["ages_from_criteria"] = matched
    for field, value in (("min_age_years", rng.min_years), ("max_age_years", rng.max_years)):
        if value is not None:
            record["eligibility"][field] = value
            notes.append(Note(field=f"eligibility.{field}", kind="from_other_section",
                              detail=f"ClinConnect prints no ages; {value:g} years taken from the "
                                     f"inclusion criterion {matched!r}"))


class ClinconnectPage(ParsedByFunction):
    parse = staticmethod(parse_clinconnect)


SITE = Site(
    name="clinconnect",
    page=ClinconnectPage,
    base=BASE,
    domains=("clinconnect.io",),
    politeness={"CONCURRENT_REQUESTS_PER_DOMAIN": 1, "DOWNLOAD_DELAY": 2.0,
                # HTML study pages are tens of KB; a page of megabytes is not one
                "DOWNLOAD_MAXSIZE": 16 * 1024 * 1024, "DOWNLOAD_WARNSIZE": 2 * 1024 * 1024},
    study_url=STUDY_URL,
    nct_path="/trials/{nct}",
    #: what `scrapy harvest --offline` crawls: the study pages of the bundled
    #: cassette (not its deliberately broken pages, which the tests crawl)
    offline={"urls": ",".join([
        "https://clinconnect.io/trials/seed-000",
    ])},
    rank=30,
    # its plain-language summary, written for patients, is the one to show
    first_for=("lay_summary",),
)


class ClinconnectSpider(StudyPageSpider):
    """`scrapy crawl clinconnect -a nct=NCT1,NCT2` (URLs built directly),
    `-a urls=URL1,URL2`, or with neither the sitemap (`-a sitemap=URL`,
    `-a since=DATE`, or `-a incremental=1`: since the watermark, with
    conditional requests)."""

    site_entry = SITE
