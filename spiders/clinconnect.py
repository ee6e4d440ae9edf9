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
  <Sponsor>" → `raw["about_sponsor"]`.
* "Trial Officials" → `overall_officials` (name, role as CT.gov's
  OfficialRole, affiliation); "Locations" → `locations` with the country's
  ISO code.
* "Timeline": "Trial launched" → `start_date` (type not stated), "Trial
  updated" → `last_update_posted`, "Estimated completion" →
  `completion_date`, ESTIMATED as the label says; "First submit" has no
  record field (CT.gov's first-submitted date is not kept) and stays in
  `raw["timeline"]` with the others, as printed. An event printed with no
  value or "Not reported" gives nothing; a value that is no date is noted.
  The one real page prints no timeline date, so this mapping rests on the
  events' words.
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

from scrapy.http import Response

from harvester.normalize.dates import normalize_date
from harvester.normalize.ids import normalize_nct
from harvester.normalize.contacts import is_withheld_name, normalize_official_role
from harvester.normalize.places import place_fields
from harvester.normalize.sex import normalize_sex
from harvester.normalize.status import normalize_status
from harvester.normalize.text import clean_prose, clean_text
from harvester.sites import Site
from items import Contact, Location, Sex, SourceRecord, Sponsor, Status, TrialDate
from spiders.base import StudyPageSpider
from spiders.pages import AgesFromInclusion, NotAStudyPage, field
from spiders.sections import Line, label_key, preamble

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
NOT_REPORTED = {"not reported", "n/a", "not available", "-"}

_LAUNCHED = re.compile(r"^Launched by\s+(?P<sponsor>.+?)(?:\s*[·•|]\s*(?P<date>[^·•|]+))?$", re.I)
_AS_OF = re.compile(r"^Current as of\s+(?P<date>.+)$", re.I)
_BREADCRUMB = re.compile(r"^Search\s*/\s*Trial\s+(?P<nct>NCT\d{7,8})\b", re.I)
_NCT = re.compile(r"\bNCT\d{7,8}\b")  # 7 digits too: read, zero-padded and noted


def _launched(lines: list[Line]) -> re.Match | None:
    for line in lines:
        m = _LAUNCHED.match(line.text)
        if m:
            return m
    return None


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


# A bullet glyph printed inside a list item's text ("• 1. ..."): a text
# rendering of the page loses it with the list marker, so it is not kept.
_GLYPH = re.compile(r"^[\u2022\u25e6\u25aa\u25cf\u2023\u2043\u2219]\s+")


class ClinconnectPage(AgesFromInclusion):
    """A ClinConnect trial page: each field below names the label it reads."""

    LABELS = LABELS
    KEY_SECTIONS = KEY_SECTIONS
    BRAND = "ClinConnect"
    AGES_NOT_PRINTED = "ClinConnect prints no ages"
    CRITERIA_HEADINGS = ("Inclusion Criteria:", "Exclusion Criteria:")

    def criteria_line(self, text: str) -> str:
        return _GLYPH.sub("", text)  # bullet glyphs dropped

    def criteria_fallback(self) -> str | None:
        return self.criteria_text_of((("eligibility", ""),))  # "Eligibility criteria" with no labels

    def __init__(self, response: Response):
        super().__init__(response)
        if ABOUT not in self.sections:
            # A sponsor blurb whose heading names the sponsor differently.
            self.sections.update({k: list(v) for k, v in _about_by_shape(self.lines, self.labels()).items()})

    def labels(self) -> dict[str, str]:
        # "About <sponsor>": its words are the sponsor's the page names
        labels = dict(LABELS)
        launched = self.launched
        if launched:
            labels[f"About {launched.group('sponsor')}"] = ABOUT
        return labels

    @property
    def launched(self) -> re.Match | None:
        """The "Launched by <SPONSOR> · <date>" line."""
        if not hasattr(self, "_launched"):
            self._launched = _launched(preamble(self.lines, LABELS)) or _launched(self.lines[:20])
        return self._launched

    def check(self) -> None:
        found = [name for name in KEY_SECTIONS if name in self.sections]
        if len(found) < 2 and not self.launched:
            raise NotAStudyPage(f"not a ClinConnect trial page: labels found {sorted(self.sections) or 'none'}; "
                                f"expected 'Launched by …' and several of "
                                f"{', '.join(k for k, v in LABELS.items() if v in KEY_SECTIONS)}")

    # -- fields ---------------------------------------------------------------------------
    @field
    def brief_title(self) -> str | None:
        """The line before "Launched by", else the first line that is not the breadcrumb."""
        head = self.head
        for i, line in enumerate(head):
            if _LAUNCHED.match(line.text):
                return clean_text(head[i - 1].text) if i else None
        for line in head:
            if not _BREADCRUMB.match(line.text):
                return clean_text(line.text)
        return None

    @field
    def lead_sponsor(self) -> Sponsor | None:
        """"Launched by <SPONSOR>", as printed."""
        if not self.launched:
            return None
        name = clean_text(self.launched.group("sponsor"))
        return Sponsor(name=name) if name else None

    @field
    def overall_status(self) -> Status | None:
        """The status word under "Trial Information"."""
        printed = [t for t in self.texts("trial_information") if not _AS_OF.match(t)]
        if printed:
            self.printed("\n".join(printed))
        for text in printed:
            status, known = normalize_status(text)
            if known and status:
                return status
        if printed:
            return self.unmapped(None, f"no status word recognised in {printed!r}")
        return None

    @field
    def lay_summary(self) -> str | None:
        """"ClinConnect Summary": written for patients; no other source has one."""
        texts = self.texts("summary")
        return clean_prose("\n\n".join(texts)) if texts else None

    @field
    def sex(self) -> Sex | None:
        """Gender."""
        self.printed_section("gender")
        printed = self.first("gender")
        sex = normalize_sex(printed)
        if printed and sex is None:
            return self.unmapped(None, f"gender {printed!r} not recognised")
        return sex

    @field
    def locations(self) -> list[Location]:
        """"City, State, Country" lines, the country's ISO code beside it (a
        country ISO does not know is noted); a line without a comma just
        before one is that place's facility."""
        texts = self.texts("locations")
        out = []
        facility = None
        for i, text in enumerate(texts):
            if "," not in text and i + 1 < len(texts) and "," in texts[i + 1]:
                facility = clean_text(text)
                continue
            location = Location(facility=facility, **place_fields(text), status=None)
            self.check_country(location)
            out.append(location)
            facility = None
        return out

    @field
    def overall_officials(self) -> list[Contact]:
        """Trial Officials: per official its name, its role ("Principal
        Investigator" -> CT.gov's PRINCIPAL_INVESTIGATOR) and affiliation,
        found around the role line. A name printed as a stand-in ("[... name
        withheld]") is no name: left empty, noted."""
        out = []
        officials = self.officials()
        if not officials and self.texts("officials"):
            self.keep_raw("officials_printed", self.texts("officials"))
            self.note("unmapped_vocabulary", f"Trial Officials prints {self.texts('officials')!r} with no role "
                                             "CT.gov knows (Principal Investigator, Study Director, ...): none read")
        for official in officials:
            name = official["name"]
            if name is not None and is_withheld_name(name):
                self.note("missing_value", f"the {official['role']!r} official's name is printed as {name!r}")
                name = None
            out.append(Contact(name=clean_text(name), role=normalize_official_role(official["role"]),
                               affiliation=clean_text(official["affiliation"])))
        return out

    @field
    def nct_id(self) -> str | None:
        """Printed in the body if it is; else from the URL (/trials/NCT…); else
        from the breadcrumb ("Search / Trial NCT…"); where: raw["nct_id_from"]."""
        breadcrumb = None
        printed = None
        for line in [*self.chrome, *self.head, *self.sections.get("trial_information", [])]:
            m = _BREADCRUMB.match(line.text)
            if m:
                breadcrumb = breadcrumb or normalize_nct(m.group("nct"))
                continue
            if printed is None and line not in self.chrome:
                m = _NCT.search(line.text)
                if m:
                    printed = normalize_nct(m.group(0))
        m = URL_NCT.search(self.url or "")
        from_url = normalize_nct(m.group(1)) if m else None
        for source, value in (("page", printed), ("url", from_url), ("breadcrumb", breadcrumb)):
            if value:
                self.keep_raw("nct_id_from", source)
                others = {v for v in (printed, from_url, breadcrumb) if v and v != value}
                if others:
                    self.note("in_page_disagreement", f"the {source} gives {value}, elsewhere {sorted(others)}")
                return value
        return None

    @field
    def start_date(self) -> TrialDate | None:
        """Timeline: "Trial launched", type not stated. The date of "Launched
        by … · <date>" is not taken: it may be CT.gov's first-submitted,
        first-posted or start date (the timeline lists "First submit" and
        "Trial launched" as different events); it is kept as
        raw["launch_date"], noted."""
        self._launch_date()
        date = self.timeline_date("Trial launched")
        return TrialDate(date=date, type=None) if date else None

    @field
    def completion_date(self) -> TrialDate | None:
        """Timeline: "Estimated completion", ESTIMATED as the label says."""
        date = self.timeline_date("Estimated completion")
        return TrialDate(date=date, type="ESTIMATED") if date else None

    def timeline_date(self, event: str) -> str | None:
        """The ISO date printed after a timeline event; a printed value that is
        no date is noted on the field being read (and kept in raw["timeline"])."""
        printed = self.timeline().get(event)
        if printed is None:
            return None
        date = normalize_date(printed)
        if date is None:
            self.note("unmapped_vocabulary", f"timeline {event!r}: {printed!r} is not a date")
        return date

    def _launch_date(self) -> None:
        if self.launched:
            self.keep_raw("launched", self.launched.group(0))
            printed = self.launched.group("date")
            date = normalize_date(printed) if printed else None
            if date:
                self.keep_raw("launch_date", date)
                self.note("ambiguous_meaning",
                          f"'Launched … {printed}' kept in raw.launch_date: the page does not say whether it "
                          "is CT.gov's first-submitted, first-posted or start date")
        return None

    @field
    def last_update_posted(self) -> str | None:
        """Timeline: "Trial updated". "Current as of <date>" is not taken: it
        may be when ClinConnect last synced the record; kept as
        raw["current_as_of"], noted."""
        for text in self.texts("trial_information"):
            m = _AS_OF.match(text)
            if m and normalize_date(m.group("date")):
                self.keep_raw("current_as_of", normalize_date(m.group("date")))
                self.note("ambiguous_meaning",
                          f"'{text}' kept in raw.current_as_of: it may be when ClinConnect "
                          "last synced the record, not CT.gov's last update")
                break
        return self.timeline_date("Trial updated")

    # -- printed values no field holds ------------------------------------------------------
    def cross_checks(self) -> None:
        super().cross_checks()
        if self.texts("keywords"):
            self.keep_raw("keywords", self.texts("keywords"))
        if self.texts(ABOUT):
            self.keep_raw("about_sponsor", clean_prose("\n\n".join(self.texts(ABOUT))))
        self.keep_raw("timeline", self.timeline() or None)

    def officials(self) -> list[dict]:
        """Trial Officials as printed: a role line, the name on the line before
        it, the affiliation on the line after it (unless that line is the next
        official's name, the line before the next role)."""
        texts = self.texts("officials")
        is_role = [normalize_official_role(t) is not None for t in texts]
        out = []
        for i, text in enumerate(texts):
            if not is_role[i]:
                continue
            name = texts[i - 1] if i and not is_role[i - 1] else None
            after = i + 1 < len(texts) and not is_role[i + 1] and not (i + 2 < len(texts) and is_role[i + 2])
            out.append({"name": name, "role": text, "affiliation": texts[i + 1] if after else None})
        return out

    def timeline(self) -> dict[str, str]:
        """Timeline events with the value printed after them, as printed;
        none for an event printed with no value or "Not reported"."""
        out: dict[str, str] = {}
        current = None
        for text in self.texts("timeline"):
            key = label_key(text)
            if key in _TIMELINE_KEYS:
                current = _TIMELINE_KEYS[key]
                continue
            if current and clean_text(text) and text.strip().casefold() not in NOT_REPORTED:
                out[current] = clean_text(text)
            current = None
        return out


def parse_clinconnect(response: Response) -> SourceRecord:
    """A ClinConnect trial page -> SourceRecord. Pure."""
    return ClinconnectPage(response).to_record()


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
    first_for=(ClinconnectPage.lay_summary,),
)


class ClinconnectSpider(StudyPageSpider):
    """`scrapy crawl clinconnect -a nct=NCT1,NCT2` (URLs built directly),
    `-a urls=URL1,URL2`, or with neither the sitemap (`-a sitemap=URL`,
    `-a since=DATE`, or `-a incremental=1`: since the watermark, with
    conditional requests)."""

    site_entry = SITE
