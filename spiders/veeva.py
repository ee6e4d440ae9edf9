"""ClinicalTrials.Veeva (ctv.veeva.com): one study page -> one SourceRecord.

Veeva republishes CT.gov studies ("Data sourced from clinicaltrials.gov") at
`https://ctv.veeva.com/study/<slug>`, the slug being the brief title
lowercased with each run of non-alphanumerics turned into one hyphen. The URL
never carries the NCT ID; the page prints it under "Identifiers".

Parsing (`parse_veeva`) is pure and anchored on the page's visible labels and
their order, never on CSS classes or nesting: `spiders.sections` turns the
page (HTML, or text extracted from it) into lines and cuts them at the labels
of `LABELS`; each row of `FIELD_MAP` then maps one label's lines to one or
more record fields through a normalizer from `harvester.normalize`. The pages
this was written against carry no JSON-LD or embedded JSON state; if Veeva
adds some, read it first and keep this as the fallback.

What no single label gives, and how it is decided (never silently):

* title and sponsor: the lines before the first label, after the site's
  own chrome ("ClinicalTrials.Veeva", "Menu"): the title, then the sponsor
  name, after a one-letter logo placeholder when there is one. A page whose
  header is missing gets no title and no sponsor (nothing is invented).
* sponsor class: "Funder types" lists the classes of all funders; it gives
  the lead sponsor's class only when it lists exactly one
  (`FUNDER_CLASSES`); with several, the class is left empty and noted.
* a label printed with no value ("Enrollment" followed directly by "Sex")
  leaves its fields empty with a Note of kind "missing_value".
* enrollment: the "Enrollment" value ("5 estimated patients"); when it is
  empty, the trial-design figure ("28 participants in 1 patient group",
  type not stated, Note "from_other_section"). Every figure the page prints
  (Enrollment, Trial design, a "plans to enroll N" sentence in About or Full
  description) goes to `raw["enrollment_figures"]` with where it was read,
  and figures that disagree give a Note "in_page_disagreement".
* ages: the "Ages" value; when it is empty or absent, the age limits stated
  in an inclusion criterion ("Aged 18-85 years (inclusive)"), with a Note
  "from_other_section" and `age_text` left empty (nothing was printed under
  Ages). When both exist and differ, a Note "in_page_disagreement".
* a page on which fewer than `MIN_LABELS` of the content labels are found
  is not a Veeva study page (or the site changed its words): it raises, so
  the spider yields a Reject with the reason and counts it.

Politeness: robots.txt forbids `/study-search`, which this spider never
requests; studies are found through the sitemap index or named on the
command line, one request at a time per domain.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import urlparse

import scrapy
from scrapy.http import Response
from scrapy.utils.gz import gunzip, gzip_magic_number
from scrapy.utils.sitemap import Sitemap

from harvester.normalize.ages import ages_from_criteria, parse_age_range
from harvester.normalize.criteria import split_criteria, split_items
from harvester.normalize.enrollment import find_planned_enrollment, parse_enrollment
from harvester.normalize.ids import screen_identifier
from harvester.normalize.interventions import parse_intervention
from harvester.normalize.phases import normalize_phases
from harvester.normalize.sex import normalize_sex
from harvester.normalize.status import normalize_status
from harvester.normalize.study_type import normalize_study_type
from harvester.normalize.text import clean_prose, clean_text
from items import Note, RecordWithBody, SourceRecord
from harvester.sites import Site
from spiders.base import HarvestSpider, fetched_at, nct_arg, request_meta, split_arg
from spiders.pages import ParsedByFunction
from spiders.sections import Line, page_lines, preamble, read_sections

logger = logging.getLogger(__name__)

BASE = "https://ctv.veeva.com"
SITEMAP_URL = f"{BASE}/sitemap.xml"
FORBIDDEN_PATH = "/study-search"  # robots.txt: Disallow

# --- labels ------------------------------------------------------------------------
# Printed label -> canonical label (Veeva's current wording). Labels that feed
# no field still belong here: they end the section before them.
LABELS: dict[str, str] = {
    "Status and phase": "Status and phase",
    "Status": "Status and phase",
    "Conditions": "Conditions",
    "Treatments": "Treatments",
    "Study type": "Study type",
    "Funder types": "Funder types",
    "Identifiers": "Identifiers",
    "Details and patient eligibility": "Details and patient eligibility",
    "About": "About",
    "Full description": "Full description",
    "Enrollment": "Enrollment",
    "Sex": "Sex",
    "Ages": "Ages",
    "Volunteers": "Volunteers",
    "Inclusion criteria": "Inclusion criteria",
    "Exclusion criteria": "Exclusion criteria",
    "Inclusion and exclusion criteria": "Inclusion and exclusion criteria",
    "Trial design": "Trial design",
    "Primary purpose": "Primary purpose",
    "Allocation": "Allocation",
    "Interventional model": "Interventional model",
    "Observational model": "Observational model",
    "Time perspective": "Time perspective",
    "Masking": "Masking",
    "Trial contacts and locations": "Trial contacts and locations",
    "Central trial contact": "Central trial contact",
    "Data sourced from clinicaltrials.gov": "Data sourced from clinicaltrials.gov",
}
# The trial-design block, where "N participants in M patient group(s)" is printed.
DESIGN_LABELS = ("Trial design", "Primary purpose", "Allocation", "Interventional model",
                 "Observational model", "Time perspective", "Masking")
SITE_CHROME = {"clinicaltrials.veeva", "menu"}
PLACEHOLDERS = {"loading...", "loading\u2026", "loading"}  # filled in by script later
PARTICIPANTS = re.compile(r"^\d[\d,]*\s+participants?\s+in\s+\d+\s+(?:patient\s+)?groups?$", re.I)
PHASE_LINE = re.compile(r"^(?:early\s+)?phase\b|^n/?a$|^not applicable$", re.I)

# "Funder types" word -> CT.gov AgencyClass. Only words with an unambiguous
# counterpart; anything else is kept in raw and noted.
FUNDER_CLASSES: dict[str, str] = {
    "other": "OTHER",
    "industry": "INDUSTRY",
    "nih": "NIH",
    "u.s. fed": "FED",
    "other u.s. federal agency": "FED",
    "network": "NETWORK",
    "individual": "INDIV",
}
# "Volunteers" value -> healthy_volunteers.
VOLUNTEERS: dict[str, bool] = {
    "no healthy volunteers": False,
    "accepts healthy volunteers": True,
    "healthy volunteers accepted": True,
}
# Fewer content labels than this: not a study page (or the labels changed).
MIN_LABELS = 3


# --- converters: the lines under a label -> normalized value(s) ----------------------
@dataclass(frozen=True)
class Unmapped:
    """A value outside the vocabulary: stored as `value`, noted on the record."""

    value: Any
    detail: str
    kind: str = "unmapped_vocabulary"  # the Note kind
    field: str | None = None  # the Note's field, when not the row's first


def _is_phase(text: str) -> bool:
    if PHASE_LINE.match(text):
        return True
    phases, unknown = normalize_phases(text)
    return bool(phases) and not unknown


def _phase_lines(lines: list[str]) -> list[str]:
    """The "Phase N" lines under "Status and phase" (the rest is the status)."""
    return [t for t in lines if _is_phase(t)]


def _status(lines: list[str]):
    words = _status_words(lines)
    if not words:
        return None
    status, known = normalize_status(words)
    return status if known else Unmapped(status, f"status {words!r} is not in the CT.gov vocabulary")


def _phases(lines: list[str]):
    printed = _phase_lines(lines)
    phases, unknown = normalize_phases(printed)
    return Unmapped(phases, f"phase value(s) {unknown!r} not recognised") if unknown else phases


def _text_list(lines: list[str]):
    return [t for t in (clean_text(x) for x in lines) if t]


def _interventions(lines: list[str]):
    return [i for i in (parse_intervention(x) for x in lines) if i]


def _study_type(lines: list[str]):
    printed = " ".join(lines)
    value = normalize_study_type(printed)
    return value if value else Unmapped(None, f"study type {printed!r} is not in the CT.gov vocabulary")


def _funder_class(lines: list[str]):
    types = _text_list(lines)
    classes = [FUNDER_CLASSES.get(t.casefold()) for t in types]
    if any(c is None for c in classes):
        unknown = [t for t, c in zip(types, classes) if c is None]
        return Unmapped(None, f"funder type(s) {unknown!r} not mapped to a CT.gov agency class")
    if len(set(classes)) > 1:
        return Unmapped(None, f"funder types {types!r}: the page does not say which is the lead sponsor's",
                        kind="ambiguous")
    return classes[0] if classes else None


def _identifiers(lines: list[str]):
    """The first NCT ID is the trial's; the other lines are its other IDs:
    org study IDs (the CT.gov record's own), Veeva's UTN IDs, registry IDs.
    Placeholders ("N/A") are dropped, and noted."""
    nct_id, others, problems = None, [], []
    for text in _text_list(lines):
        value, kind, problem = screen_identifier(text)
        if problem:
            problems.append(problem)
        if value is None:
            continue
        if kind == "NCT" and nct_id is None:
            nct_id = value
            continue
        others.append({"id": value, "kind": kind})
    if problems:
        return Unmapped((nct_id, others), "; ".join(problems), kind="rejected_identifier",
                        field="secondary_ids")
    return nct_id, others


def _prose(lines: list[str]):
    return clean_prose("\n\n".join(lines))


def _enrollment(lines: list[str]):
    printed = " ".join(lines)
    count, kind = parse_enrollment(printed)
    if count is None:
        return Unmapped(None, f"enrollment {printed!r} has no number")
    return {"count": count, "type": kind}


def _sex(lines: list[str]):
    printed = " ".join(lines)
    value = normalize_sex(printed)
    return value if value else Unmapped(None, f"sex {printed!r} is not ALL, FEMALE or MALE")


def _ages(lines: list[str]):
    printed = clean_text(" ".join(lines))
    rng = parse_age_range(printed)
    if rng.min_years is None and rng.max_years is None:
        return Unmapped((printed, None, None), f"ages {printed!r} give no age limits")
    return printed, rng.min_years, rng.max_years


def _volunteers(lines: list[str]):
    printed = clean_text(" ".join(lines))
    value = VOLUNTEERS.get(printed.casefold()) if printed else None
    return value if value is not None else Unmapped(None, f"volunteers {printed!r} not understood")


def _items(section_lines: list[Line]):
    return split_items(_marked(section_lines))


def _both_criteria(section_lines: list[Line]):
    return split_criteria("\n".join(_marked(section_lines)))


def _marked(lines: list[Line]) -> list[str]:
    """Lines as the criteria splitter reads them: list items with a marker,
    indented by depth; a continuation line inside a list item deeper still."""
    out = []
    for line in lines:
        if line.bullet:
            out.append("  " * max(0, line.depth - 1) + "- " + line.text)
        elif line.depth:
            out.append("  " * line.depth + line.text)
        else:
            out.append(line.text)
    return out


def _one(lines: list[str]) -> str:
    return " ".join(lines)


def _status_words(lines: list[str]) -> str | None:
    phase_lines = _phase_lines(lines)
    return " ".join(t for t in lines if t not in phase_lines) or None


@dataclass(frozen=True)
class V:
    label: str  # canonical label (LABELS)
    field: str | tuple[str, ...]  # record field(s); "eligibility.sex" for a sub-field
    convert: Callable[[Any], Any]  # the label's value lines (texts) -> value (a tuple for several fields)
    # The printed value goes to raw[raw_key] (default: the first field) when
    # it differs from the normalized one: `printed(texts)`.
    printed: Callable[[list[str]], Any] | None = None
    raw_key: str | None = None
    lines: bool = False  # convert takes Line objects (bullets, depth) instead of texts


FIELD_MAP: tuple[V, ...] = (
    V("Status and phase", "overall_status", _status, printed=_status_words),
    V("Status and phase", "phases", _phases, printed=_phase_lines),
    V("Conditions", "conditions", _text_list),
    V("Treatments", "interventions", _interventions, printed=list),
    V("Study type", "study_type", _study_type, printed=_one),
    V("Funder types", "lead_sponsor.class", _funder_class, printed=list, raw_key="funder_types"),
    V("Identifiers", ("nct_id", "secondary_ids"), _identifiers),
    V("About", "brief_summary", _prose),
    V("Full description", "detailed_description", _prose),
    V("Enrollment", "enrollment", _enrollment, printed=_one),
    V("Sex", "eligibility.sex", _sex, printed=_one),
    V("Ages", ("eligibility.age_text", "eligibility.min_age_years", "eligibility.max_age_years"), _ages),
    V("Volunteers", "eligibility.healthy_volunteers", _volunteers, printed=_one),
    V("Inclusion criteria", "eligibility.inclusion", _items, lines=True),
    V("Exclusion criteria", "eligibility.exclusion", _items, lines=True),
    V("Inclusion and exclusion criteria", ("eligibility.inclusion", "eligibility.exclusion"),
      _both_criteria, lines=True),
)
CONTENT_LABELS = frozenset(row.label for row in FIELD_MAP)


# --- the parse ---------------------------------------------------------------------
def study_slug(title: str) -> str:
    """Veeva's slug of a brief title: lowercased, each run of characters
    other than ASCII letters and digits -> one hyphen, hyphens stripped."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def study_url(title: str) -> str:
    return f"{BASE}/study/{study_slug(title)}"


def _header(lines: list[Line]) -> tuple[str | None, str | None]:
    """(brief title, sponsor name) from the lines before the first label."""
    texts = [ln.text for ln in lines if ln.text.casefold() not in SITE_CHROME]
    if not texts:
        return None, None
    title, rest = texts[0], texts[1:]
    if rest and len(rest[0]) == 1 and rest[0].isalpha():  # the logo placeholder
        rest = rest[1:]
    return clean_text(title), clean_text(rest[0]) if rest else None


def _set(record: dict, field: str, value: Any) -> None:
    target, _, sub = field.partition(".")
    if sub:
        record.setdefault(target, {})[sub] = value
    else:
        record[target] = value


def _get(record: dict, field: str) -> Any:
    target, _, sub = field.partition(".")
    value = record.get(target)
    return value.get(sub) if sub and isinstance(value, dict) else value


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == ""


def parse_veeva(response: Response) -> SourceRecord:
    """A Veeva study page (HTML, or text extracted from one) -> SourceRecord. Pure."""
    lines = [ln for ln in page_lines(response) if ln.text.casefold() not in PLACEHOLDERS]
    sections = read_sections(lines, LABELS)
    found = CONTENT_LABELS & sections.keys()
    if len(found) < MIN_LABELS:
        raise ValueError(
            f"not a Veeva study page: {len(found)} of its labels found ({sorted(found)}), "
            f"at least {MIN_LABELS} needed (a page of another kind, or Veeva changed its labels)"
        )
    record: dict[str, Any] = {"eligibility": {}}
    raw: dict[str, Any] = {}
    notes: list[Note] = []

    for row in FIELD_MAP:
        section = sections.get(row.label)
        if section is None:
            continue
        fields = row.field if isinstance(row.field, tuple) else (row.field,)
        if not section.lines:
            if fields[0] != "phases":  # one note per label: status carries it
                notes.append(Note(field=fields[0], kind="missing_value",
                                  detail=f"nothing is printed under the {row.label!r} label"))
            continue
        texts = section.texts
        value = row.convert(section.lines if row.lines else texts)
        if isinstance(value, Unmapped):
            notes.append(Note(field=value.field or fields[0], kind=value.kind, detail=value.detail))
            value = value.value
        if row.printed is not None:
            printed = row.printed(texts)
            if printed not in (None, []):
                raw[row.raw_key or fields[0]] = printed
        values = value if len(fields) > 1 else (value,)
        for field, v in zip(fields, values or (None,) * len(fields)):
            if _empty(_get(record, field)):
                _set(record, field, v)

    title, sponsor = _header(preamble(lines, LABELS))
    record["brief_title"] = title
    sponsor_class = (record.pop("lead_sponsor", None) or {}).get("class")
    record["lead_sponsor"] = {"name": sponsor, "class": sponsor_class} if sponsor else None

    _cross_check_enrollment(sections, record, raw, notes)
    _cross_check_ages(sections, record, raw, notes)
    record["eligibility"]["criteria_text"] = _criteria_text(sections)

    record.setdefault("secondary_ids", [])
    out = SourceRecord(
        site=SITE.name,
        url=response.url,
        fetched_at=fetched_at(response),
        raw=raw,
        notes=notes,
        **record,
    )
    return out


def _cross_check_enrollment(sections, record: dict, raw: dict, notes: list[Note]) -> None:
    """Collect every enrollment figure the page prints; fill an empty
    Enrollment from the trial design; flag figures that disagree."""
    figures: list[dict] = []
    section = sections.get("Enrollment")
    if section is not None and section.lines and record.get("enrollment"):
        figures.append({"count": record["enrollment"]["count"], "where": "Enrollment",
                        "text": " ".join(section.texts)})
    for label in DESIGN_LABELS:
        design = sections.get(label)
        for text in design.texts if design else ():
            if PARTICIPANTS.match(text):
                count, _ = parse_enrollment(text)
                if count is not None:
                    figures.append({"count": count, "where": "Trial design", "text": text})
    for label in ("About", "Full description"):
        prose = sections.get(label)
        found = find_planned_enrollment(" ".join(prose.texts)) if prose else None
        if found:
            figures.append({"count": found[0], "where": label, "text": found[1]})
    if not figures:
        return
    raw["enrollment_figures"] = figures
    if record.get("enrollment") is None:
        design = next((f for f in figures if f["where"] == "Trial design"), None)
        if design is not None:
            record["enrollment"] = {"count": design["count"], "type": None}
            why = ("not printed" if section is None else
                   "printed with no value" if not section.lines else "printed without a number")
            notes.append(Note(field="enrollment", kind="from_other_section",
                              detail=f"Enrollment {why}; count {design['count']} taken from the trial "
                                     f"design ({design['text']!r}); planned or actual not stated"))
    if len({f["count"] for f in figures}) > 1:
        kept = record["enrollment"]["count"] if record.get("enrollment") else None
        listed = "; ".join(f"{f['where']}: {f['count']} ({f['text']!r})" for f in figures)
        notes.append(Note(field="enrollment", kind="in_page_disagreement",
                          detail=f"the page gives different enrollment figures: {listed}; "
                                 f"the record keeps {kept}"))


def _cross_check_ages(sections, record: dict, raw: dict, notes: list[Note]) -> None:
    """Ages printed under "Ages" vs stated in an inclusion criterion."""
    elig = record["eligibility"]
    inclusion = elig.get("inclusion") or []
    found = ages_from_criteria(inclusion) if inclusion else None
    if found is None or found[0].empty:
        return
    rng, matched = found
    raw["ages_from_criteria"] = matched
    printed = elig.get("min_age_years") is not None or elig.get("max_age_years") is not None
    if not printed:
        ages = sections.get("Ages")
        why = "printed with no value" if ages is not None and not ages.lines else "not printed"
        for field, value in (("min_age_years", rng.min_years), ("max_age_years", rng.max_years)):
            if value is not None:
                elig[field] = value
                notes.append(Note(field=f"eligibility.{field}", kind="from_other_section",
                                  detail=f"Ages {why}; {value:g} years taken from the inclusion "
                                         f"criterion {matched!r}"))
        elig["age_text"] = None
    elif (elig.get("min_age_years"), elig.get("max_age_years")) != (rng.min_years, rng.max_years):
        notes.append(Note(field="eligibility.age_text", kind="in_page_disagreement",
                          detail=f"Ages {elig.get('age_text')!r} vs inclusion criterion {matched!r}; "
                                 f"the record keeps the Ages value"))


def _criteria_text(sections) -> str | None:
    """The criteria as printed: each criteria label followed by its lines."""
    parts: list[str] = []
    for label in ("Inclusion and exclusion criteria", "Inclusion criteria", "Exclusion criteria"):
        section = sections.get(label)
        if section is not None and section.lines:
            parts.append("\n".join([label, *section.texts]))
    return clean_prose("\n\n".join(parts)) if parts else None


class VeevaPage(ParsedByFunction):
    parse = staticmethod(parse_veeva)


SITE = Site(
    name="veeva",
    page=VeevaPage,
    base=BASE,
    domains=("ctv.veeva.com",),
    politeness={"CONCURRENT_REQUESTS_PER_DOMAIN": 1,
                # HTML study pages are tens of KB; a page of megabytes is not one
                "DOWNLOAD_MAXSIZE": 16 * 1024 * 1024, "DOWNLOAD_WARNSIZE": 2 * 1024 * 1024},
    study_url=re.compile(r"^https?://ctv\.veeva\.com/study/[^/?#]+/?(?:[?#].*)?$", re.I),
    #: what `scrapy harvest --offline` crawls: the study pages of the bundled
    #: cassette (not its deliberately broken pages, which the tests crawl)
    offline={"urls": ",".join([
        "https://ctv.veeva.com/study/chimeric-antigen-receptor-car-modified-t-cell-therapy-in-treating-patients-with-acute-lymphoblastic-leukemia",
        "https://ctv.veeva.com/study/car-t-19-cells-for-patients-with-cd19-relapse-refractory-b-all",
        "https://ctv.veeva.com/study/cd19-car-t-cells-for-patients-with-relapse-and-refractory-cd19-b-all",
        "https://ctv.veeva.com/study/seed-002-cd7-car-t",
    ])},
    rank=10,
)


# --- the spider ----------------------------------------------------------------------
def _check_url(url: str, host: str = "ctv.veeva.com") -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or parsed.hostname != host:
        raise ValueError(f"-a urls: {url!r} is not a {host} page")
    if parsed.path.startswith(FORBIDDEN_PATH):
        raise ValueError(f"-a urls: {url!r}: robots.txt forbids {FORBIDDEN_PATH}")
    return url


class VeevaSpider(HarvestSpider):
    """Crawl ClinicalTrials.Veeva study pages.

    -a urls=U1,U2        these study pages
    -a nct=NCT1,NCT2     the page of each trial whose brief title is in the
                         store (HARVEST_DB; crawl ctgov first)
    (neither)            discover studies through the sitemap index
    -a max_pages=N       at most N study pages from the sitemap
    -a since=YYYY-MM-DD  only sitemap entries whose lastmod is on or after it
    -a incremental=1     since the store's watermark, with conditional requests

    Sitemap entries' `lastmod` is kept in `request.meta["lastmod"]`. Shards
    are read one after another; each shard request carries the shards still
    to read (`meta["shards_after"]`), so a crawl resumed from its JOBDIR
    after a kill goes on with them.
    """

    site_entry = SITE

    def __init__(self, urls=None, nct=None, max_pages=None, since=None, *args, **kwargs):
        super().__init__(*args, **kwargs)
        host = urlparse(self.base).hostname
        self.urls = [_check_url(u, host) for u in split_arg(urls)]
        self.ncts = nct_arg(nct)
        self.max_pages = int(max_pages) if max_pages else None
        if since and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", since):
            raise ValueError(f"-a since: {since!r} is not a date (YYYY-MM-DD)")
        self.since = since
        self.study_requests = 0
        self.pending_shards: list[tuple[str, str | None]] = []

    # -- requests ---------------------------------------------------------------
    async def start(self):
        if self.incremental and self.since is None and not self.urls and not self.ncts:
            self.since = self.incremental_since()
        for url in self.urls:
            yield self.study_request(url)
        urls = self.urls_for_ncts(self.ncts) if self.ncts else {}
        for nct_id in self.ncts:
            url = urls.get(nct_id)
            if url is None:
                self.crawler.stats.inc_value("veeva/nct_without_title")
                logger.error("%s: no brief title in the store; crawl ctgov for it first", nct_id)
                continue
            yield self.study_request(url, nct=nct_id)
        if not self.urls and not self.ncts:
            yield scrapy.Request(f"{self.base}/sitemap.xml", callback=self.parse_sitemap, errback=self.on_error)

    def study_request(self, url: str, nct: str | None = None, lastmod: str | None = None) -> scrapy.Request:
        meta = {}
        if nct:
            meta["nct"] = nct
        if lastmod:
            meta["lastmod"] = lastmod
        return scrapy.Request(url, callback=self.parse_study, errback=self.on_error, meta=meta)

    def urls_for_ncts(self, ncts: list[str]) -> dict[str, str]:
        """NCT ID -> study URL, from a brief title already in the store
        (HARVEST_DB): the CT.gov record's title first, else any other site's."""
        from harvester.store import open_store

        titles: dict[str, dict[str, str]] = {}
        with open_store(self.settings) as store:
            for stored in store.sources_for(ncts):
                if stored.record.brief_title:
                    titles.setdefault(stored.record.nct_id, {}).setdefault(stored.record.site, stored.record.brief_title)
        return {nct_id: self.base + study_url(by_site.get("ctgov") or next(iter(by_site.values())))[len(BASE):]
                for nct_id, by_site in titles.items()}

    # -- callbacks --------------------------------------------------------------
    def parse_study(self, response: Response):
        item = self.record_or_reject(response)
        wanted = response.meta.get("nct")
        if wanted and isinstance(item, RecordWithBody) and item.record.nct_id != wanted:
            self.crawler.stats.inc_value("veeva/nct_mismatch")
            logger.warning("%s: asked for %s, the page is %s", response.url, wanted, item.record.nct_id)
        yield item

    def parse_sitemap(self, response: Response) -> Iterator[scrapy.Request]:
        body = self.sitemap_body(response)
        if body is None:
            self.crawler.stats.inc_value("veeva/invalid_sitemap")
            logger.error("not a sitemap: %s", response.url)
            return
        sitemap = Sitemap(body)
        after = request_meta(response).get("shards_after")
        if after is not None and not self.pending_shards:
            # a shard fetched again after a resume: the shards after it come from its request
            self.pending_shards = [tuple(x) for x in after]
        if sitemap.type == "sitemapindex":
            # Shards are read one after another, so a max_pages limit stops
            # the crawl without fetching shards it does not need.
            self.pending_shards.extend((e["loc"], e.get("lastmod")) for e in sitemap if e.get("loc"))
            self.crawler.stats.inc_value("veeva/sitemap_shards", len(self.pending_shards))
        elif sitemap.type == "urlset":
            self.crawler.stats.inc_value("veeva/sitemap_shards_read")
            yield from self.study_requests_from(sitemap)
        else:
            self.crawler.stats.inc_value("veeva/invalid_sitemap")
            logger.error("unknown sitemap type %r: %s", sitemap.type, response.url)
        yield from self.next_shard()

    def study_requests_from(self, entries: Iterable[dict]) -> Iterator[scrapy.Request]:
        for entry in entries:
            if self.limit_reached():
                return
            loc = entry.get("loc") or ""
            path = urlparse(loc).path
            if not path.startswith("/study/") or path.startswith(FORBIDDEN_PATH):
                continue
            lastmod = entry.get("lastmod")
            if self.since and lastmod and lastmod[:10] < self.since:
                self.crawler.stats.inc_value("veeva/sitemap_not_modified")
                continue
            self.study_requests += 1
            yield self.study_request(loc, lastmod=lastmod)

    def next_shard(self) -> Iterator[scrapy.Request]:
        if self.pending_shards and not self.limit_reached():
            loc, lastmod = self.pending_shards.pop(0)
            meta = {"lastmod": lastmod} if lastmod else {}
            meta["shards_after"] = [list(x) for x in self.pending_shards]
            yield scrapy.Request(loc, callback=self.parse_sitemap, errback=self.on_shard_error, meta=meta)
        elif self.pending_shards:
            logger.info("stopping after %d study pages (max_pages); %d sitemap shards not read",
                        self.study_requests, len(self.pending_shards))
            self.crawler.stats.set_value("veeva/stopped_at_max_pages", True)

    def limit_reached(self) -> bool:
        return self.max_pages is not None and self.study_requests >= self.max_pages

    def sitemap_body(self, response: Response) -> bytes | None:
        if gzip_magic_number(response):
            try:
                return gunzip(response.body, max_size=self.settings.getint("DOWNLOAD_MAXSIZE"))
            except Exception:  # oversized or corrupt
                return None
        head = response.body[:512].lstrip()
        return response.body if head.startswith(b"<?xml") or b"<urlset" in head or b"<sitemapindex" in head \
            else None

    def on_shard_error(self, failure):
        try:
            yield from self.failure_outcome(failure)
            after = failure.request.meta.get("shards_after")
            if after is not None and not self.pending_shards:
                self.pending_shards = [tuple(x) for x in after]
            yield from self.next_shard()
        finally:
            self.request_finished(failure.request)

    # -- incremental scope -------------------------------------------------------------
    def covers_whole_source(self) -> bool:
        return (not self.urls and not self.ncts
                and not self.crawler.stats.get_value("veeva/stopped_at_max_pages"))
