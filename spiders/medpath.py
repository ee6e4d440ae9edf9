"""MedPath (trial.medpath.com): a re-publisher of ClinicalTrials.gov records.

A study page is `https://trial.medpath.com/clinical-trial/<16 hex>/<slug>`;
the URL never carries the NCT ID (the page prints it under "Registration
Number"), and its 16-hex segment is MedPath's own ID, kept as a SITE
identifier.

The page prints a trial as visible labels, each followed by its value:
"Conditions", "Interventions", "Registration Number", "Lead Sponsor",
"Brief Summary", "Detailed Description", "Recruitment & Eligibility" with
"Status" (CT.gov's raw enums such as UNKNOWN), "Sex", "Target Recruitment",
"Inclusion Criteria", "Exclusion Criteria"; "Study & Design" with "Study
Type", "Phase" and "Study Design"; the "Arm && Interventions" table; the
"Primary/Secondary Outcome Measures" tables (Name / Time / Method); "Trial
Locations". The phase is also printed under the title ("Early Phase 1").

`parse_medpath(response)` is pure: the page's lines (`spiders.sections`) are
cut at the labels of `LABELS`, and every record field comes from one row of
`FIELD_MAP` (record field, label, converter). Anchoring is on the label words
and their order only, never on CSS classes or nesting depth, so the same
function reads the served HTML, any re-arrangement of it, and a plain text
rendering of the page. Two things the lines of a page cannot carry are read
from the markup of the label's value, still found by its label:

* condition chips are inline elements with no separator between them (a text
  rendering prints "Malignant TumorChild, OnlyCAR-T"): they are split at
  their elements, never in the joined string. A plain-text rendering where
  the chips already ran together cannot be split: the printed string is kept
  in `raw`, with a note, and no conditions are claimed;
* table rows and cells (outcome measures, arms), so that an empty cell
  cannot shift the columns. In a plain-text rendering a table is read as its
  header words followed by its cells, one per line.

Judgement calls (also in the tests):

* "Target Recruitment" → `enrollment.count`, type None. The label is the
  site's template for every study, completed ones included, so it does not
  say whether CT.gov's figure is planned or actual; the printed label is
  kept in `raw`.
* A paragraph printed between two criteria bullets (the "Creatinine is
  within the normal range; ..." line of NCT04691349, under a bullet that
  ends "meet the following requirements:") belongs to the bullet before it:
  it is appended to that item, after a space.
* MedPath prints no age fields. Ages come from an inclusion criterion
  ("Age 3-18") with a `from_other_section` note on each age field;
  `age_text` stays empty (nothing is printed as an age) and the criterion's
  words go to `raw["ages_from_criteria"]`.
* "Not available" as a description means none.

Discovery: `-a urls=URL1,URL2`, or the sitemap index
`https://trial.medpath.com/sitemap.xml` → shards → study URLs (each request
carries the sitemap's `lastmod` in `meta["lastmod"]`; `-a since=YYYY-MM-DD`
skips studies whose lastmod is older; `-a incremental=1` takes that date from
the store's watermark). The sitemap code is `spiders.base.SitemapDiscovery`.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Callable

from scrapy.http import Response

from harvester.normalize.ages import ages_from_criteria
from harvester.normalize.enrollment import parse_enrollment
from harvester.normalize.ids import normalize_nct, screen_identifier
from harvester.normalize.interventions import parse_intervention
from harvester.normalize.phases import normalize_phases
from harvester.normalize.places import split_place
from harvester.normalize.sex import normalize_sex
from harvester.normalize.status import normalize_status
from harvester.normalize.study_type import normalize_study_type
from harvester.normalize.text import clean_prose, clean_text, unescape_ctgov
from items import Identifier, Note, SourceRecord
from harvester.sites import Site
from spiders.base import StudyPageSpider, fetched_at
from spiders.pages import ParsedByFunction
from spiders.sections import (Line, Markup, criteria_items, html_root, label_key, page_lines, preamble,
                              read_sections, table_rows, value_chips)

logger = logging.getLogger(__name__)

BASE = "https://trial.medpath.com"
SITEMAP_INDEX = f"{BASE}/sitemap.xml"
STUDY_URL = re.compile(
    r"^https?://trial\.medpath\.com/clinical-trial/(?P<id>[0-9a-f]{16})(?:/[^/?#]*)?/?(?:[?#].*)?$", re.I)
BRAND = "MedPath"

# Printed label -> section name. Several printed forms may share a section.
LABELS: dict[str, str] = {
    "Conditions": "conditions",
    "Interventions": "interventions",
    "Registration Number": "registration_number",
    "Lead Sponsor": "lead_sponsor",
    "Brief Summary": "brief_summary",
    "Detailed Description": "detailed_description",
    "Recruitment & Eligibility": "recruitment",
    "Status": "status",
    "Sex": "sex",
    "Target Recruitment": "target_recruitment",
    "Inclusion Criteria": "inclusion",
    "Exclusion Criteria": "exclusion",
    "Study & Design": "design",
    "Study Type": "study_type",
    "Phase": "phase",
    "Study Design": "study_design",
    "Arm && Interventions": "arms",
    "Arms && Interventions": "arms",
    "Arm & Interventions": "arms",
    "Arms & Interventions": "arms",
    "Primary Outcome Measures": "primary_outcomes",
    "Secondary Outcome Measures": "secondary_outcomes",
    "Trial Locations": "locations",
}
_LABEL_KEYS = {label_key(k) for k in LABELS}
# Labels whose value is one line; a further line under them is not theirs.
SINGLE_VALUED = ("registration_number", "lead_sponsor", "status", "sex", "target_recruitment",
                 "study_type", "phase", "study_design")
# Enough of these and the page is a MedPath study page.
KEY_SECTIONS = ("registration_number", "conditions", "lead_sponsor", "status", "inclusion", "study_type")

OUTCOME_HEADER = ("Name", "Time", "Method")
ARM_HEADER = ("Group", "Intervention", "Description")
NOT_AVAILABLE = {"not available", "n/a", "none", "not provided"}


# --- what one page holds -----------------------------------------------------
@dataclass
class Page:
    """A MedPath page cut at its labels."""

    url: str
    lines: list[Line]
    sections: dict[str, list[Line]]
    head: list[Line]  # the lines before the first label: brand, title, phase
    tables: dict[str, list[list[str]]]  # section -> rows of cells, read from the markup
    chips: dict[str, list[str]]  # section -> inline items, read from the markup
    is_html: bool
    extra: list[tuple[str, str]]  # (section, line) printed under a single-valued label after its value

    def first(self, name: str) -> str | None:
        lines = self.sections.get(name)
        return lines[0].text if lines else None

    def texts(self, name: str) -> list[str]:
        return [ln.text for ln in self.sections.get(name) or []]


@dataclass(frozen=True)
class Unmapped:
    """A printed value outside the vocabulary: stored as `value`, noted."""

    value: Any
    detail: str


@dataclass(frozen=True)
class Derived:
    """A value taken from elsewhere than its own label: stored, noted."""

    value: Any
    kind: str
    detail: str


# --- converters: page -> field value ------------------------------------------
def _title(page: Page):
    for line in page.head:
        text = clean_text(line.text)
        if not text or text.casefold() == BRAND.casefold() or _phase_line(text):
            continue
        return text
    return None


def _phase_line(text: str) -> list[str]:
    phases, unknown = normalize_phases(text)
    return phases if phases and not unknown else []


def _phases(page: Page):
    near_title = next((p for p in (_phase_line(ln.text) for ln in page.head) if p), [])
    printed = page.first("phase")
    if printed is None:
        return near_title
    phases, unknown = normalize_phases(printed)
    if unknown:
        return Unmapped(phases or near_title, f"phase {printed!r} not recognised")
    if near_title and phases != near_title:
        return Derived(phases, "in_page_disagreement",
                       f"the phase under the title gives {near_title}, the Phase label {phases}")
    return phases


def _status(page: Page):
    printed = page.first("status")
    status, known = normalize_status(printed)
    return status if known else Unmapped(status, f"status {printed!r} is not in the CT.gov vocabulary")


def _sex(page: Page):
    printed = page.first("sex")
    sex = normalize_sex(printed)
    if printed and sex is None:
        return Unmapped(None, f"sex {printed!r} not recognised")
    return sex


def _study_type(page: Page):
    printed = page.first("study_type")
    value = normalize_study_type(printed)
    if printed and value is None:
        return Unmapped(None, f"study type {printed!r} not recognised")
    return value


def _enrollment(page: Page):
    printed = page.first("target_recruitment")
    count, _type = parse_enrollment(printed)
    # The printed number only: "Target Recruitment" is the label of every
    # study, so it says nothing about whether the figure is planned or actual.
    return {"count": count, "type": None} if count is not None else None


def _sponsor(page: Page):
    name = clean_text(page.first("lead_sponsor"))
    return {"name": name} if name else None


def _nct(page: Page):
    return normalize_nct(page.first("registration_number"))


def _conditions(page: Page):
    chips = page.chips.get("conditions")
    if chips:
        return chips
    items = [t for t in (clean_text(x) for x in page.texts("conditions")) if t]
    joined = [t for t in items if _RUN_TOGETHER.search(t)]
    if len(items) == 1 and joined:
        # One line that reads like several chips run together ("Malignant
        # TumorChild, OnlyCAR-T"), and no markup to split it at.
        return Derived([], "unsplit_list",
                       f"conditions printed run together ({joined[0]!r}) with no markup to split them "
                       "at: their boundaries are lost, so none are claimed")
    return items


# "TumorChild", "OnlyCAR": a lower-case letter straight before an upper-case
# one, the mark of chips whose text rendering lost the separators.
_RUN_TOGETHER = re.compile(r"[a-z][A-Z]")


def _interventions(page: Page):
    out = []
    for text in page.chips.get("interventions") or page.texts("interventions"):
        parsed = parse_intervention(text)
        if parsed:
            out.append(parsed)
    return out


def _prose(name: str) -> Callable[[Page], Any]:
    def convert(page: Page):
        texts = page.texts(name)
        if len(texts) == 1 and texts[0].strip().casefold() in NOT_AVAILABLE:
            return None
        return clean_prose(unescape_ctgov("\n\n".join(texts))) if texts else None
    return convert


def _criteria(name: str) -> Callable[[Page], list[str]]:
    def convert(page: Page):
        return criteria_items(page.sections.get(name) or [])
    return convert


def _ages(page: Page, record: dict, raw: dict, notes: list[Note]) -> None:
    """MedPath prints no age fields: ages come from an inclusion criterion
    ("Age 3-18"), noted on each age field; the criterion goes to raw."""
    found = ages_from_criteria(record["eligibility"].get("inclusion") or [])
    if found is None or found[0].empty:
        return
    rng, matched = found
    raw["ages_from_criteria"] = matched
    for field, value in (("min_age_years", rng.min_years), ("max_age_years", rng.max_years)):
        if value is not None:
            record["eligibility"][field] = value
            notes.append(Note(field=f"eligibility.{field}", kind="from_other_section",
                              detail=f"MedPath prints no ages; {value:g} years taken from the "
                                     f"inclusion criterion {matched!r}"))


def _criteria_text(page: Page) -> str | None:
    """The criteria as printed: each criteria label followed by its lines."""
    parts = []
    for name, label in (("inclusion", "Inclusion Criteria"), ("exclusion", "Exclusion Criteria")):
        texts = page.texts(name)
        if texts:
            parts.append("\n".join([label, *texts]))
    return clean_prose("\n\n".join(parts)) if parts else None


def _outcomes(name: str) -> Callable[[Page], Any]:
    def convert(page: Page):
        rows, problem = _table(page, name, OUTCOME_HEADER)
        out = []
        for cells in rows:
            measure, time_frame, method = (cells + [None, None, None])[:3]
            measure = clean_text(measure)
            if measure:
                out.append({"measure": measure, "time_frame": clean_text(time_frame),
                            "description": clean_prose(unescape_ctgov(method))})
        return Derived(out, "unsplit_table", problem) if problem else out
    return convert


def _locations(page: Page):
    locations = locations_from_lines(page.texts("locations"))
    counts = [int(m.group(1)) for m in (_LOCATIONS_COUNT.match(t) for t in page.texts("locations")) if m]
    if counts and counts[0] != len(locations):
        return Derived(locations, "in_page_disagreement",
                       f"the page says Locations ({counts[0]}) and lists {len(locations)}")
    return locations


_LOCATIONS_COUNT = re.compile(r"^Locations\s*\((\d+)\)$", re.I)


def _is_flag(text: str) -> bool:
    """A line of emoji only (the country flag before an address)."""
    return all(not ch.isalnum() or 0x1F1E6 <= ord(ch) <= 0x1F1FF for ch in text.replace(" ", "")) \
        and any(ord(ch) > 0x2000 for ch in text)


def locations_from_lines(texts: list[str]) -> list[dict]:
    """MedPath's location list: "Locations (N)", then per site its facility,
    a flag, and "City, State, Country". The footer ends the list."""
    lines: list[str] = []
    for text in texts:
        if text.startswith("©"):
            break
        if _LOCATIONS_COUNT.match(text):
            continue
        lines.append(text)
    out: list[dict] = []
    has_flags = any(_is_flag(t) for t in lines)
    i = 0
    while i < len(lines):
        if has_flags:
            # facility line(s) up to a flag, then the address
            j = i
            while j < len(lines) and not _is_flag(lines[j]):
                j += 1
            if j >= len(lines):
                break
            facility = clean_text(" ".join(lines[i:j])) if j > i else None
            address = lines[j + 1] if j + 1 < len(lines) else None
            i = j + 2
        else:
            facility = lines[i]
            address = lines[i + 1] if i + 1 < len(lines) else None
            i += 2
        out.append({"facility": facility, **split_place(address), "status": None})
    return out


@dataclass(frozen=True)
class F:
    field: str  # record field; "eligibility.sex" for a sub-field
    label: str | None  # the section it is read from (None: the title area)
    convert: Callable[[Page], Any]
    keep_raw: bool = False  # the printed value differs from the normalized one


FIELD_MAP: tuple[F, ...] = (
    F("nct_id", "registration_number", _nct, keep_raw=True),
    F("brief_title", None, _title),
    F("phases", "phase", _phases, keep_raw=True),
    F("conditions", "conditions", _conditions),
    F("interventions", "interventions", _interventions),
    F("lead_sponsor", "lead_sponsor", _sponsor),
    F("brief_summary", "brief_summary", _prose("brief_summary")),
    F("detailed_description", "detailed_description", _prose("detailed_description"), keep_raw=True),
    F("overall_status", "status", _status, keep_raw=True),
    F("eligibility.sex", "sex", _sex, keep_raw=True),
    F("enrollment", "target_recruitment", _enrollment, keep_raw=True),
    F("eligibility.inclusion", "inclusion", _criteria("inclusion")),
    F("eligibility.exclusion", "exclusion", _criteria("exclusion")),
    F("eligibility.criteria_text", "inclusion", _criteria_text),
    F("study_type", "study_type", _study_type, keep_raw=True),
    F("primary_outcomes", "primary_outcomes", _outcomes("primary_outcomes")),
    F("secondary_outcomes", "secondary_outcomes", _outcomes("secondary_outcomes")),
    F("locations", "locations", _locations),
)
# Printed values kept in `raw` as they are (no record field holds them).
RAW_ONLY = ("study_design",)


# --- tables --------------------------------------------------------------------
def _table(page: Page, name: str, header: tuple[str, ...]) -> tuple[list[list[str]], str | None]:
    """Rows (header removed) of the table under `name`, and a problem, if any.
    From the markup when the page has it; else from lines: the header words
    one per line, then the cells, one per line, row by row."""
    if name in page.tables:
        rows = page.tables[name]
        if rows and [label_key(c) for c in rows[0]] == [label_key(h) for h in header]:
            rows = rows[1:]
        return rows, None
    texts = page.texts(name)
    if not texts:
        return [], None
    n = len(header)
    keys = [label_key(t) for t in texts[:n]]
    if keys == [label_key(h) for h in header]:
        cells = texts[n:]
        if len(cells) % n:
            return [], (f"{len(cells)} cells under {name} do not fill rows of {n} "
                        f"({', '.join(header)}): not split; printed lines kept in raw")
        return [cells[i:i + n] for i in range(0, len(cells), n)], None
    if keys and keys[0] == label_key("".join(header)):
        if len(texts) == 1:
            return [], None  # a header and no rows
        return [], (f"the {name} table is printed with its cells run together "
                    f"({texts[1][:60]!r}): not split; printed lines kept in raw")
    return [], f"the {name} table has no recognisable header ({texts[0][:60]!r}); printed lines kept in raw"


def _arms(page: Page) -> tuple[list[dict], str | None]:
    rows, problem = _table(page, "arms", ARM_HEADER)
    arms = []
    for cells in rows:
        group, intervention, description = (cells + [None, None, None])[:3]
        if clean_text(group):
            arms.append({"group": clean_text(group), "intervention": clean_text(intervention),
                         "description": clean_prose(description)})
    return arms, problem


def _markup_values(body: bytes | str, encoding: str | None) -> tuple[dict, dict]:
    """Chips and tables of a MedPath page, each found by its label."""
    root = html_root(body, encoding)
    if root is None:
        return {}, {}
    markup = Markup(root)
    chips: dict[str, list[str]] = {}
    tables: dict[str, list[list[str]]] = {}
    for label, name in (("Conditions", "conditions"), ("Interventions", "interventions")):
        found = value_chips(markup.value_elements(label, _LABEL_KEYS))
        if found:
            chips[name] = found
    for name in ("arms", "primary_outcomes", "secondary_outcomes"):
        for label in (k for k, v in LABELS.items() if v == name):
            elements = markup.value_elements(label, _LABEL_KEYS)
            if elements:
                rows = table_rows(elements)
                if rows is not None:
                    tables[name] = rows
                break
    return chips, tables


# --- the parse -----------------------------------------------------------------------
def _site_id(url: str) -> str | None:
    m = STUDY_URL.match(url or "")
    return m.group("id").lower() if m else None


def _is_html_response(response: Response) -> bool:
    ctype = (response.headers.get(b"Content-Type") or b"").decode("latin-1").lower()
    if "html" in ctype or "xml" in ctype:
        return True
    if ctype.startswith("text/plain"):
        return False
    return bool(re.search(rb"<(?:!doctype|html|body|div|p|h[1-6]|dl|table)\b", response.body[:5000], re.I))


def read_page(response: Response) -> Page:
    is_html = _is_html_response(response)
    lines = page_lines(response, is_html=is_html)
    cut = read_sections(lines, LABELS)
    sections = {name: list(s.lines) for name, s in cut.items()}
    extra: list[tuple[str, str]] = []
    for name in SINGLE_VALUED:
        if len(sections.get(name) or []) > 1:
            extra.extend((name, ln.text) for ln in sections[name][1:])
            sections[name] = sections[name][:1]
    chips, tables = _markup_values(response.body, getattr(response, "encoding", None)) if is_html else ({}, {})
    # Chips are used only when they are exactly the pieces of the printed
    # value (separators between them aside).
    for name, items in list(chips.items()):
        printed = "".join(ln.text for ln in sections.get(name) or [])
        if _SEPARATORS.sub("", "".join(items)) != _SEPARATORS.sub("", printed):
            del chips[name]
    return Page(url=response.url, lines=lines, sections=sections, head=preamble(lines, LABELS),
                tables=tables, chips=chips, is_html=is_html, extra=extra)


_SEPARATORS = re.compile(r"[\s,;|\u00b7\u2022]+")


def parse_medpath(response: Response) -> SourceRecord:
    """A MedPath study page -> SourceRecord. Pure."""
    page = read_page(response)
    found = [name for name in KEY_SECTIONS if name in page.sections]
    if len(found) < 2:
        raise ValueError(f"not a MedPath study page: labels found {sorted(page.sections) or 'none'}; "
                         f"expected several of {', '.join(k for k, v in LABELS.items() if v in KEY_SECTIONS)}")
    record: dict[str, Any] = {"eligibility": {}}
    raw: dict[str, Any] = {}
    notes: list[Note] = []
    for row in FIELD_MAP:
        value = row.convert(page)
        if isinstance(value, Unmapped):
            notes.append(Note(field=row.field, kind="unmapped_vocabulary", detail=value.detail))
            value = value.value
        elif isinstance(value, Derived):
            notes.append(Note(field=row.field, kind=value.kind, detail=value.detail))
            value = value.value
        if row.keep_raw and row.label and page.sections.get(row.label):
            raw[row.field] = "\n".join(page.texts(row.label))
        target, _, sub = row.field.partition(".")
        if sub:
            record[target][sub] = value
        else:
            record[target] = value
    _ages(page, record, raw, notes)
    # printed values no field holds
    for name in RAW_ONLY:
        if page.sections.get(name):
            raw[name] = "\n".join(page.texts(name))
    if "phases" not in raw:
        near_title = [ln.text for ln in page.head if _phase_line(ln.text)]
        if near_title:
            raw["phases"] = near_title[0]
    if page.sections.get("target_recruitment"):
        raw["enrollment_label"] = "Target Recruitment"
    arms, arms_problem = _arms(page)
    if arms:
        raw["arms"] = arms
    if arms_problem:
        notes.append(Note(field="raw.arms", kind="unsplit_table", detail=arms_problem))
    for note in notes:
        if note.kind == "unsplit_table" and note.field != "raw.arms":
            raw[f"{note.field}_printed"] = page.texts(note.field)
        if note.kind == "unsplit_list":
            raw[f"{note.field}_printed"] = page.texts(note.field)
    if page.extra:
        raw["unlabelled_lines"] = [text for _, text in page.extra]
        notes.append(Note(field="raw.unlabelled_lines", kind="unlabelled_text",
                          detail=f"{len(page.extra)} line(s) printed after the single value of "
                                 f"{', '.join(sorted({n for n, _ in page.extra}))}, under no label of "
                                 "their own: kept in raw, not read as any field"))
    printed_reg = page.first("registration_number")
    secondary: list[Identifier] = []
    if printed_reg and record["nct_id"] is None:
        # not an NCT ID: another registry's number is kept with its kind, a
        # placeholder ("N/A") is dropped; both noted
        value, kind, problem = screen_identifier(printed_reg)
        if value is None:
            notes.append(Note(field="nct_id", kind="rejected_identifier", detail=problem))
        else:
            secondary.append(Identifier(id=value, kind=kind))
            notes.append(Note(field="nct_id", kind="identifier_kind_mismatch",
                              detail=f"Registration Number {printed_reg!r} is not an NCT ID; kept as {kind}"))
    site_id = _site_id(response.url)
    if site_id:
        secondary.append(Identifier(id=site_id, kind="SITE", domain="MedPath"))
    rec = SourceRecord(site=SITE.name, url=response.url, fetched_at=fetched_at(response),
                       secondary_ids=secondary, raw=raw, notes=notes, **record)
    return rec


class MedpathPage(ParsedByFunction):
    parse = staticmethod(parse_medpath)


SITE = Site(
    name="medpath",
    page=MedpathPage,
    base=BASE,
    domains=("trial.medpath.com",),
    politeness={"CONCURRENT_REQUESTS_PER_DOMAIN": 1, "DOWNLOAD_DELAY": 2.0,
                # HTML study pages are tens of KB; a page of megabytes is not one
                "DOWNLOAD_MAXSIZE": 16 * 1024 * 1024, "DOWNLOAD_WARNSIZE": 2 * 1024 * 1024},
    study_url=STUDY_URL,
    #: what `scrapy harvest --offline` crawls: the study pages of the bundled
    #: cassette (not its deliberately broken pages, which the tests crawl)
    offline={"urls": ",".join([
        "https://trial.medpath.com/clinical-trial/50b4028075e01462/chimeric-antigen-receptor-t-cells-therapy-children-tumors",
    ])},
    rank=20,
)


class MedpathSpider(StudyPageSpider):
    """`scrapy crawl medpath -a urls=URL1,URL2`, or with no argument the
    sitemap (`-a sitemap=URL` for another index or shard, `-a since=DATE`
    for studies modified since; `-a incremental=1`: since the watermark, with
    conditional requests)."""

    site_entry = SITE
