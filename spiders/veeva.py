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
* trial design: "Primary purpose", "Allocation", "Interventional model"
  (or "Observational model", "Time perspective"), "Masking" → `design`
  through `harvester.normalize.design`; then "N participants in M patient
  groups" and the groups (`arm_groups_from_lines`) → `arm_groups`. A design
  label whose next line is already the participants line printed no value
  (seed 002's blank template): nothing is read, noted.
* "Central trial contact" → `central_contacts` (role CONTACT). Locations
  are not readable: the page prints their number, and fills them in by
  script ("Loading..."); no location is claimed, the number is kept in
  `raw["locations_count"]`.
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
from typing import Iterator
from urllib.parse import urlparse

import scrapy
from scrapy.http import Response

from harvester.normalize.ages import ages_from_criteria, parse_age_range
from harvester.normalize.contacts import is_withheld_name
from harvester.normalize.criteria import split_criteria, split_items
from harvester.normalize.design import (normalize_allocation, normalize_arm_group_type, normalize_intervention_model,
                                        normalize_masking, normalize_observational_model, normalize_primary_purpose,
                                        normalize_time_perspective)
from harvester.normalize.enrollment import find_planned_enrollment, parse_enrollment
from harvester.normalize.ids import screen_identifier
from harvester.normalize.interventions import parse_intervention
from harvester.normalize.phases import normalize_phases
from harvester.normalize.sex import normalize_sex
from harvester.normalize.status import normalize_status
from harvester.normalize.study_type import normalize_study_type
from harvester.normalize.text import clean_prose, clean_text, clean_texts
from harvester.sites import Site
from items import (ArmGroup, Contact, Enrollment, Identifier, Intervention, Location, Note, Phase, Sex, SourceRecord,
                   Sponsor, Status, StudyType)
from items.records import (Allocation, InterventionModel, Masking, ObservationalModel, PrimaryPurpose,
                           TimePerspective, WhoMasked)
from spiders.base import StudyPageSpider
from spiders.pages import HtmlStudyPage, NotAStudyPage, field
from spiders.sections import Line

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
GROUPS = re.compile(r"\bin\s+(\d+)\s+(?:patient\s+)?groups?$", re.I)
# Inside an arm group: "Description:" and "Treatment:" head their lines (or
# carry them after the colon).
ARM_DESCRIPTION = re.compile(r"^Description\s*:\s*(.*)$", re.I)
ARM_TREATMENT = re.compile(r"^Treatments?\s*:\s*(.*)$", re.I)
LOCATIONS_COUNT = re.compile(r"^\d[\d,]*$")
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


CONTENT_LABELS = frozenset({
    "Status and phase", "Conditions", "Treatments", "Study type", "Funder types", "Identifiers", "About",
    "Full description", "Enrollment", "Sex", "Ages", "Volunteers", "Inclusion criteria", "Exclusion criteria",
    "Inclusion and exclusion criteria"})


# --- the page object ------------------------------------------------------------------
def _is_phase(text: str) -> bool:
    if PHASE_LINE.match(text):
        return True
    phases, unknown = normalize_phases(text)
    return bool(phases) and not unknown


def _phase_lines(lines: list[str]) -> list[str]:
    """The "Phase N" lines under "Status and phase" (the rest is the status)."""
    return [t for t in lines if _is_phase(t)]


def _status_words(lines: list[str]) -> str | None:
    phase_lines = _phase_lines(lines)
    return " ".join(t for t in lines if t not in phase_lines) or None


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


def _is_arm_type(text: str) -> bool:
    value, known = normalize_arm_group_type(text)
    return bool(value) and known


def arm_groups_from_lines(texts: list[str]) -> list[dict]:
    """The patient groups printed after "N participants in M patient groups":
    per group its label, then its type ("Experimental group"), "Description:"
    and its lines, "Treatment:" and the interventions ("Biological: CAR-T
    cells"), each part but the label optional. A line starts a new group
    when the line after it is a group type, or when it follows a group's
    interventions and is not one ("<Type>: <name>"). The type as printed is
    kept under "printed_type"."""
    groups: list[dict] = []
    part = None  # what the lines belong to: None (just after the label), "description", "treatment"
    for i, text in enumerate(texts):
        nxt = texts[i + 1] if i + 1 < len(texts) else None
        desc, treat = ARM_DESCRIPTION.match(text), ARM_TREATMENT.match(text)
        group = groups[-1] if groups else None
        if group is not None and desc:
            part = "description"
            if desc.group(1):
                group["description"].append(desc.group(1))
        elif group is not None and treat:
            part = "treatment"
            if treat.group(1):
                group["intervention_names"].append(treat.group(1))
        elif (group is not None and part is None and group["printed_type"] is None
              and text.casefold().endswith(("group", "arm")) and not (nxt is not None and _is_arm_type(nxt))):
            group["printed_type"] = text  # the line after the label
        elif (group is None or (nxt is not None and _is_arm_type(nxt))
              or (part == "treatment" and not (parse_intervention(text) or {}).get("type"))):
            groups.append({"label": text, "printed_type": None, "description": [], "intervention_names": []})
            part = None
        elif part == "treatment":
            group["intervention_names"].append(text)
        else:  # a line after the label with no "Description:" before it
            part = "description"
            group["description"].append(text)
    return groups


def study_slug(title: str) -> str:
    """Veeva's slug of a brief title: lowercased, each run of characters
    other than ASCII letters and digits -> one hyphen, hyphens stripped."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def study_url(title: str) -> str:
    return f"{BASE}/study/{study_slug(title)}"


class VeevaPage(HtmlStudyPage):
    """A Veeva study page: each field below names the label it reads."""

    LABELS = LABELS
    KEY_SECTIONS = CONTENT_LABELS
    MIN_KEY_SECTIONS = MIN_LABELS
    BRAND = "ClinicalTrials.Veeva"

    def keep_lines(self, lines: list[Line]) -> list[Line]:
        return [ln for ln in lines if ln.text.casefold() not in PLACEHOLDERS]

    # The cross-checks of enrollment and ages are noted after every label's
    # own notes, enrollment's first: the order records have always had (a
    # record's content hash covers its notes).
    def note_after_fields(self, kind: str, detail: str, on=None) -> None:
        path = on.path if on is not None else self.current_path
        self.__dict__.setdefault("_after", []).append((path, kind, detail))

    def cross_checks(self) -> None:
        self.enrollment(), self.ages()  # both cross-checks made, whatever the fields' order
        after = self.__dict__.get("_after", [])
        after.sort(key=lambda n: n[0] != "enrollment")  # stable: enrollment's, then the ages'
        self._notes.extend(Note(field=path, kind=kind, detail=detail) for path, kind, detail in after)
        super().cross_checks()

    def check(self) -> None:
        found = CONTENT_LABELS & self.sections.keys()
        if len(found) < MIN_LABELS:
            raise NotAStudyPage(
                f"not a Veeva study page: {len(found)} of its labels found ({sorted(found)}), "
                f"at least {MIN_LABELS} needed (a page of another kind, or Veeva changed its labels)")

    def value(self, label: str, note: bool = True) -> list[str] | None:
        """The lines under `label`; None when it is not printed or printed empty
        (then noted on the field being read, as "missing_value")."""
        lines = self.sections.get(label)
        if lines is None:
            return None
        if not lines:
            if note:
                self.note("missing_value", f"nothing is printed under the {label!r} label")
            return None
        return [ln.text for ln in lines]

    def header(self) -> tuple[str | None, str | None]:
        """(brief title, sponsor name): the lines before the first label, after
        the site's own chrome: the title, then the sponsor name, after a
        one-letter logo placeholder when there is one."""
        texts = [ln.text for ln in self.head if ln.text.casefold() not in SITE_CHROME]
        if not texts:
            return None, None
        title, rest = texts[0], texts[1:]
        if rest and len(rest[0]) == 1 and rest[0].isalpha():  # the logo placeholder
            rest = rest[1:]
        return clean_text(title), clean_text(rest[0]) if rest else None

    # -- fields ---------------------------------------------------------------------------
    @field
    def brief_title(self) -> str | None:
        """The first line of the header."""
        return self.header()[0]

    @field
    def overall_status(self) -> Status | None:
        """"Status and phase", the lines that are not a phase."""
        texts = self.value("Status and phase")
        if texts is None:
            return None
        words = _status_words(texts)
        self.printed(words)
        if not words:
            return None
        status, known = normalize_status(words)
        return status if known else self.unmapped(status, f"status {words!r} is not in the CT.gov vocabulary")

    @field
    def phases(self) -> list[Phase]:
        """"Status and phase", the "Phase N" lines."""
        texts = self.value("Status and phase", note=False)  # one note per label: status carries it
        if texts is None:
            return []
        printed = _phase_lines(texts)
        self.printed(printed or None)
        phases, unknown = normalize_phases(printed)
        return self.unmapped(phases, f"phase value(s) {unknown!r} not recognised") if unknown else phases

    @field
    def conditions(self) -> list[str]:
        """Conditions."""
        return clean_texts(self.value("Conditions") or [])

    @field
    def interventions(self) -> list[Intervention]:
        """Treatments ("Biological: CAR-T cells")."""
        texts = self.value("Treatments")
        if texts is None:
            return []
        self.printed(list(texts))
        return [Intervention(**i) for i in (parse_intervention(x) for x in texts) if i]

    @field
    def study_type(self) -> StudyType | None:
        """Study type."""
        texts = self.value("Study type")
        if texts is None:
            return None
        printed = " ".join(texts)
        self.printed(printed)
        value = normalize_study_type(printed)
        return value if value else self.unmapped(None, f"study type {printed!r} is not in the CT.gov vocabulary")

    @field
    def lead_sponsor(self) -> Sponsor | None:
        """The second line of the header; its class from "Funder types" only when
        that lists exactly one class (`FUNDER_CLASSES`)."""
        name = self.header()[1]
        lines = self.sections.get("Funder types")
        sponsor_class = None
        if lines is not None and not lines:
            self.note("missing_value", "nothing is printed under the 'Funder types' label", part="class")
        elif lines:
            types = clean_texts([ln.text for ln in lines])
            self.keep_raw("funder_types", list(ln.text for ln in lines))
            classes = [FUNDER_CLASSES.get(t.casefold()) for t in types]
            if any(c is None for c in classes):
                unknown = [t for t, c in zip(types, classes) if c is None]
                self.note("unmapped_vocabulary", f"funder type(s) {unknown!r} not mapped to a CT.gov agency class",
                          part="class")
            elif len(set(classes)) > 1:
                self.note("ambiguous", f"funder types {types!r}: the page does not say which is the lead "
                                       "sponsor's", part="class")
            elif classes:
                sponsor_class = classes[0]
        return Sponsor(name=name, class_=sponsor_class) if name else None

    def identifiers(self) -> tuple[str | None, list[Identifier], list[str]]:
        """The first NCT ID under "Identifiers" is the trial's; the other lines
        are its other IDs (org study IDs, Veeva's UTN IDs, registry IDs),
        screened; placeholders ("N/A") dropped."""
        if not hasattr(self, "_identifiers"):
            nct_id, others, problems = None, [], []
            for text in clean_texts(self.texts("Identifiers")):
                value, kind, problem = screen_identifier(text)
                if problem:
                    problems.append(problem)
                if value is None:
                    continue
                if kind == "NCT" and nct_id is None:
                    nct_id = value
                    continue
                others.append(Identifier(id=value, kind=kind))
            self._identifiers = (nct_id, others, problems)
        return self._identifiers

    @field
    def nct_id(self) -> str | None:
        """Identifiers: the first NCT ID."""
        if self.value("Identifiers") is None:
            return None
        return self.identifiers()[0]

    @field
    def secondary_ids(self) -> list[Identifier]:
        """Identifiers: the other IDs."""
        if not self.texts("Identifiers"):
            return []
        _, others, problems = self.identifiers()
        if problems:
            self.note("rejected_identifier", "; ".join(problems))
        return others

    @field
    def brief_summary(self) -> str | None:
        """About."""
        texts = self.value("About")
        return clean_prose("\n\n".join(texts)) if texts else None

    @field
    def detailed_description(self) -> str | None:
        """Full description."""
        texts = self.value("Full description")
        return clean_prose("\n\n".join(texts)) if texts else None

    @field
    def enrollment(self) -> Enrollment | None:
        """Enrollment ("5 estimated patients"); when it is empty, the trial-design
        figure ("28 participants in 1 patient group"), noted. Every figure the
        page prints goes to raw["enrollment_figures"]; figures that disagree
        are noted."""
        texts = self.value("Enrollment")
        enrollment = None
        if texts is not None:
            printed = " ".join(texts)
            self.printed(printed)
            count, kind = parse_enrollment(printed)
            if count is None:
                self.unmapped(None, f"enrollment {printed!r} has no number")
            else:
                enrollment = Enrollment(count=count, type=kind)
        return self._cross_check_enrollment(enrollment, texts)

    def _cross_check_enrollment(self, enrollment: Enrollment | None, texts: list[str] | None) -> Enrollment | None:
        figures: list[dict] = []
        if texts and enrollment is not None:
            figures.append({"count": enrollment.count, "where": "Enrollment", "text": " ".join(texts)})
        for label in DESIGN_LABELS:
            for text in self.texts(label):
                if PARTICIPANTS.match(text):
                    count, _ = parse_enrollment(text)
                    if count is not None:
                        figures.append({"count": count, "where": "Trial design", "text": text})
        for label in ("About", "Full description"):
            found = find_planned_enrollment(" ".join(self.texts(label))) if self.texts(label) else None
            if found:
                figures.append({"count": found[0], "where": label, "text": found[1]})
        if not figures:
            return enrollment
        self.keep_raw("enrollment_figures", figures)
        if enrollment is None:
            design = next((f for f in figures if f["where"] == "Trial design"), None)
            if design is not None:
                enrollment = Enrollment(count=design["count"], type=None)
                section = self.sections.get("Enrollment")
                why = ("not printed" if section is None else
                       "printed with no value" if not section else "printed without a number")
                self.note_after_fields("from_other_section",
                          f"Enrollment {why}; count {design['count']} taken from the trial "
                          f"design ({design['text']!r}); planned or actual not stated")
        if len({f["count"] for f in figures}) > 1:
            kept = enrollment.count if enrollment is not None else None
            listed = "; ".join(f"{f['where']}: {f['count']} ({f['text']!r})" for f in figures)
            self.note_after_fields("in_page_disagreement", f"the page gives different enrollment figures: {listed}; "
                                              f"the record keeps {kept}")
        return enrollment

    @field
    def sex(self) -> Sex | None:
        """Sex."""
        texts = self.value("Sex")
        if texts is None:
            return None
        printed = " ".join(texts)
        self.printed(printed)
        value = normalize_sex(printed)
        return value if value else self.unmapped(None, f"sex {printed!r} is not ALL, FEMALE or MALE")

    def ages(self) -> tuple[str | None, float | None, float | None]:
        """(age_text, min, max): Ages; when empty or absent, the limits stated in
        an inclusion criterion (noted, age_text left empty); when both differ,
        noted."""
        if hasattr(self, "_ages"):
            return self._ages
        age_text = lo = hi = None
        texts = self.value("Ages")
        if texts is not None:
            printed = clean_text(" ".join(texts))
            rng = parse_age_range(printed)
            if rng.min_years is None and rng.max_years is None:
                age_text = self.unmapped(printed, f"ages {printed!r} give no age limits")
            else:
                age_text, lo, hi = printed, rng.min_years, rng.max_years
        inclusion = self.inclusion()
        found = ages_from_criteria(inclusion) if inclusion else None
        if found is not None and not found[0].empty:
            rng, matched = found
            self.keep_raw("ages_from_criteria", matched)
            if lo is None and hi is None:
                why = "printed with no value" if self.sections.get("Ages") == [] else "not printed"
                for f, value in ((VeevaPage.min_age_years, rng.min_years), (VeevaPage.max_age_years, rng.max_years)):
                    if value is not None:
                        self.note_after_fields("from_other_section", f"Ages {why}; {value:g} years taken from "
                                                                    f"the inclusion criterion {matched!r}", on=f)
                age_text, lo, hi = None, rng.min_years, rng.max_years
            elif (lo, hi) != (rng.min_years, rng.max_years):
                self.note_after_fields("in_page_disagreement", f"Ages {age_text!r} vs inclusion criterion "
                                                               f"{matched!r}; the record keeps the Ages value",
                                       on=VeevaPage.age_text)
        self._ages = (age_text, lo, hi)
        return self._ages

    @field
    def age_text(self) -> str | None:
        """Ages, as printed."""
        return self.ages()[0]

    @field
    def min_age_years(self) -> float | None:
        """Ages (or an inclusion criterion)."""
        return self.ages()[1]

    @field
    def max_age_years(self) -> float | None:
        """Ages (or an inclusion criterion)."""
        return self.ages()[2]

    @field
    def healthy_volunteers(self) -> bool | None:
        """Volunteers ("No Healthy Volunteers")."""
        texts = self.value("Volunteers")
        if texts is None:
            return None
        printed = clean_text(" ".join(texts))
        self.printed(printed)
        value = VOLUNTEERS.get(printed.casefold()) if printed else None
        return value if value is not None else self.unmapped(None, f"volunteers {printed!r} not understood")

    def _criteria(self, label: str, both_index: int) -> list[str]:
        lines = self.sections.get(label)
        if lines is not None and not lines:
            self.note("missing_value", f"nothing is printed under the {label!r} label")
        items = split_items(_marked(lines)) if lines else []
        if not items and self.sections.get("Inclusion and exclusion criteria"):
            items = split_criteria("\n".join(_marked(self.sections["Inclusion and exclusion criteria"])))[both_index]
        return items

    @field
    def inclusion(self) -> list[str]:
        """Inclusion criteria (or the first half of "Inclusion and exclusion criteria")."""
        return self._criteria("Inclusion criteria", 0)

    @field
    def exclusion(self) -> list[str]:
        """Exclusion criteria (or the second half of "Inclusion and exclusion criteria")."""
        return self._criteria("Exclusion criteria", 1)

    @field
    def criteria_text(self) -> str | None:
        """The criteria as printed, each under its label."""
        return self.criteria_text_of([(label, label) for label in (
            "Inclusion and exclusion criteria", "Inclusion criteria", "Exclusion criteria")])

    # -- the trial design block -----------------------------------------------------------
    def design_value(self, label: str, note: bool = True) -> str | None:
        """A trial-design label's value: its first line, unless that is the
        "N participants in M patient groups" line already (the label printed
        with no value, as on a blank template: noted as missing)."""
        lines = self.sections.get(label)
        if lines is None:
            return None
        printed = clean_text(lines[0].text) if lines and not PARTICIPANTS.match(lines[0].text) else None
        if note:
            if printed is None:
                self.note("missing_value", f"nothing is printed under the {label!r} label")
            self.printed(printed)
        return printed

    def _design(self, label: str, normalize, what: str):
        printed = self.design_value(label)
        if printed is None:
            return None
        value, known = normalize(printed)
        return value if known else self.unmapped(None, f"{what} {printed!r} is not in the CT.gov vocabulary")

    @field
    def primary_purpose(self) -> PrimaryPurpose | None:
        """Trial design: Primary purpose ("Treatment")."""
        return self._design("Primary purpose", normalize_primary_purpose, "primary purpose")

    @field
    def allocation(self) -> Allocation | None:
        """Trial design: Allocation ("N/A")."""
        return self._design("Allocation", normalize_allocation, "allocation")

    @field
    def intervention_model(self) -> InterventionModel | None:
        """Trial design: Interventional model ("Single Group Assignment")."""
        return self._design("Interventional model", normalize_intervention_model, "interventional model")

    @field
    def observational_model(self) -> ObservationalModel | None:
        """Trial design: Observational model."""
        return self._design("Observational model", normalize_observational_model, "observational model")

    @field
    def time_perspective(self) -> TimePerspective | None:
        """Trial design: Time perspective."""
        return self._design("Time perspective", normalize_time_perspective, "time perspective")

    @field
    def masking(self) -> Masking | None:
        """Trial design: Masking ("None (Open label)")."""
        printed = self.design_value("Masking")
        if printed is None:
            return None
        level, _who, known = normalize_masking(printed)
        return level if known else self.unmapped(None, f"masking {printed!r} is not in the CT.gov vocabulary")

    @field
    def who_masked(self) -> list[WhoMasked]:
        """Trial design: Masking, the parenthesis ("Double (Participant, Investigator)")."""
        printed = self.design_value("Masking", note=False)  # one note per label: masking carries it
        if printed is None:
            return []
        _level, who, known = normalize_masking(printed)
        return who if known else []

    def participants(self) -> tuple[str, list[str]] | None:
        """The "N participants in M patient groups" line of the trial-design
        block, and the lines after it there (the patient groups)."""
        for label in DESIGN_LABELS:
            texts = self.texts(label)
            for i, text in enumerate(texts):
                if PARTICIPANTS.match(text):
                    return text, texts[i + 1:]
        return None

    @field
    def arm_groups(self) -> list[ArmGroup]:
        """Trial design: the patient groups after "N participants in M patient
        groups": label, type ("Experimental group"), "Description:",
        "Treatment:" interventions (`arm_groups_from_lines`). A count of
        groups that differs from the groups listed is noted."""
        found = self.participants()
        if found is None:
            # no "N participants in M patient groups" line to start the groups
            # at: lines after a design label's value are kept, not guessed at
            extra = [t for label in DESIGN_LABELS for t in self.texts(label)[0 if label == "Trial design" else 1:]]
            if extra:
                self.keep_raw("trial_design_unread", extra)
                self.note("unlabelled_text", f"{len(extra)} line(s) in the trial design after its values and no "
                                             "'N participants in M patient groups' line: kept in raw, not read "
                                             "as groups")
            return []
        line, texts = found
        out = []
        for group in arm_groups_from_lines(texts):
            kind = None
            if group["printed_type"]:
                kind, known = normalize_arm_group_type(group["printed_type"])
                if not known:
                    self.note("unmapped_vocabulary", f"group type {group['printed_type']!r} of "
                                                     f"{group['label']!r} is not in the CT.gov vocabulary")
            label = clean_text(group["label"])
            if label:
                out.append(ArmGroup(label=label, type=kind,
                                    description=clean_prose("\n\n".join(group["description"])) or None,
                                    intervention_names=clean_texts(group["intervention_names"])))
        self.printed(list(texts) or None)
        m = GROUPS.search(line)
        if m and int(m.group(1)) != len(out):
            self.note("in_page_disagreement" if out else "missing_value",
                      f"the trial design says {line!r} and lists {len(out)} group(s)")
        return out

    # -- contacts and locations ---------------------------------------------------------------
    @field
    def central_contacts(self) -> list[Contact]:
        """Central trial contact: names separated by ";" ("Yao Sun, M.D., Ph.D.;
        Liangding Hu, M.D."), each with CT.gov's role of a central contact,
        CONTACT."""
        texts = self.value("Central trial contact")
        if texts is None:
            return []
        names = [clean_text(part) for text in texts for part in text.split(";")]
        return [Contact(name=name, role="CONTACT") for name in names if name and not is_withheld_name(name)]

    @field
    def locations(self) -> list[Location]:
        """Not readable: "Trial contacts and locations" prints the number of
        sites, and the sites are filled in by script after the page loads
        ("Loading..."), so the served page holds none: no location is
        claimed, on every Veeva page (not noted page by page: it is the site's
        design, see the README). The number goes to raw["locations_count"]."""
        counts = [t for t in self.texts("Trial contacts and locations") if LOCATIONS_COUNT.match(t)]
        if counts:
            self.keep_raw("locations_count", int(counts[0].replace(",", "")))
        return []


def parse_veeva(response: Response) -> SourceRecord:
    """A Veeva study page (HTML, or text extracted from one) -> SourceRecord. Pure."""
    return VeevaPage(response).to_record()


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


class VeevaSpider(StudyPageSpider):
    """Crawl ClinicalTrials.Veeva study pages.

    -a urls=U1,U2        these study pages
    -a nct=NCT1,NCT2     the page of each trial whose brief title is in the
                         store (HARVEST_DB; crawl ctgov first): Veeva's URL is
                         the slug of the title
    (neither)            discover studies through the sitemap index
    -a max_pages=N       at most N study pages from the sitemap
    -a since=YYYY-MM-DD  only sitemap entries whose lastmod is on or after it
    -a incremental=1     since the store's watermark, with conditional requests
    """

    site_entry = SITE

    def check_url(self, url: str) -> str:
        return _check_url(url, urlparse(self.base).hostname)

    def nct_requests(self, ncts: list[str]) -> Iterator[scrapy.Request]:
        urls = self.urls_for_ncts(ncts) if ncts else {}
        for nct_id in ncts:
            url = urls.get(nct_id)
            if url is None:
                self.crawler.stats.inc_value("veeva/nct_without_title")
                logger.error("%s: no brief title in the store; crawl ctgov for it first", nct_id)
                continue
            yield scrapy.Request(url, callback=self.parse_study, errback=self.on_error, meta={"nct": nct_id})

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
