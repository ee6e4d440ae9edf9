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
* "Study Design" prints CT.gov's enum ("SINGLE_GROUP") → `intervention_model`
  (on an observational study, `observational_model`); the "Arm &&
  Interventions" table → `arm_groups` (MedPath prints no group type), the
  Intervention cell named as the Interventions list prints it ("Drug:
  CAR-T", CT.gov's form of an arm's intervention names) when one listed
  intervention has that name; "Trial Locations" → `locations` with the
  country's ISO code beside the printed name.

Discovery: `-a urls=URL1,URL2`, or the sitemap index
`https://trial.medpath.com/sitemap.xml` → shards → study URLs (each request
carries the sitemap's `lastmod` in `meta["lastmod"]`; `-a since=YYYY-MM-DD`
skips studies whose lastmod is older; `-a incremental=1` takes that date from
the store's watermark). The sitemap code is `spiders.base.SitemapDiscovery`.
"""
from __future__ import annotations

import logging
import re

from scrapy.http import Response

from harvester.normalize.design import normalize_intervention_model, normalize_observational_model
from harvester.normalize.enrollment import parse_enrollment
from harvester.normalize.ids import normalize_nct, screen_identifier
from harvester.normalize.interventions import parse_intervention
from harvester.normalize.phases import normalize_phases
from harvester.normalize.places import place_fields
from harvester.normalize.sex import normalize_sex
from harvester.normalize.status import normalize_status
from harvester.normalize.study_type import normalize_study_type
from harvester.normalize.text import clean_prose, clean_text, clean_texts, unescape_ctgov
from harvester.sites import Site
from items import (ArmGroup, Enrollment, Identifier, Intervention, Location, Outcome, Phase, Sex, SourceRecord,
                   Sponsor, Status, StudyType)
from items.records import InterventionModel, ObservationalModel
from spiders.base import StudyPageSpider
from spiders.pages import AgesFromInclusion, field
from spiders.sections import Markup, label_key, table_rows, value_chips

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


# --- the page object ------------------------------------------------------------
def _phase_line(text: str) -> list[str]:
    phases, unknown = normalize_phases(text)
    return phases if phases and not unknown else []


# "TumorChild", "OnlyCAR": a lower-case letter straight before an upper-case
# one, the mark of chips whose text rendering lost the separators.
_RUN_TOGETHER = re.compile(r"[a-z][A-Z]")
_LOCATIONS_COUNT = re.compile(r"^Locations\s*\((\d+)\)$", re.I)
_SEPARATORS = re.compile(r"[\s,;|\u00b7\u2022]+")


class MedpathPage(AgesFromInclusion):
    """A MedPath study page: each field below names the label it reads."""

    LABELS = LABELS
    KEY_SECTIONS = KEY_SECTIONS
    BRAND = BRAND
    AGES_NOT_PRINTED = "MedPath prints no ages"

    def __init__(self, response: Response):
        super().__init__(response)
        # Labels whose value is one line; a further line under them is not theirs.
        self.extra: list[tuple[str, str]] = []
        for name in SINGLE_VALUED:
            if len(self.sections.get(name) or []) > 1:
                self.extra.extend((name, ln.text) for ln in self.sections[name][1:])
                self.sections[name] = self.sections[name][:1]
        self.chips, self.tables = _markup_values(self.content.root) if self.content.is_html else ({}, {})
        # Chips are used only when they are exactly the pieces of the printed
        # value (separators between them aside).
        for name, items in list(self.chips.items()):
            printed = "".join(ln.text for ln in self.sections.get(name) or [])
            if _SEPARATORS.sub("", "".join(items)) != _SEPARATORS.sub("", printed):
                del self.chips[name]

    @staticmethod
    def is_html(response: Response) -> bool:
        ctype = (response.headers.get(b"Content-Type") or b"").decode("latin-1").lower()
        if "html" in ctype or "xml" in ctype:
            return True
        if ctype.startswith("text/plain"):
            return False
        return bool(re.search(rb"<(?:!doctype|html|body|div|p|h[1-6]|dl|table)\b", response.body[:5000], re.I))

    # -- fields ---------------------------------------------------------------------------
    @field
    def nct_id(self) -> str | None:
        """Registration Number."""
        self.printed_section("registration_number")
        return normalize_nct(self.first("registration_number"))

    @field
    def brief_title(self) -> str | None:
        """The first line of the title area that is neither the brand nor a phase."""
        for line in self.head:
            text = clean_text(line.text)
            if not text or text.casefold() == BRAND.casefold() or _phase_line(text):
                continue
            return text
        return None

    @field
    def phases(self) -> list[Phase]:
        """Phase, cross-checked with the phase printed under the title."""
        self.printed_section("phase")
        near_title = next((p for p in (_phase_line(ln.text) for ln in self.head) if p), [])
        printed = self.first("phase")
        if printed is None:
            if near_title:
                self.printed(next(ln.text for ln in self.head if _phase_line(ln.text)))
            return near_title
        phases, unknown = normalize_phases(printed)
        if unknown:
            return self.unmapped(phases or near_title, f"phase {printed!r} not recognised")
        if near_title and phases != near_title:
            self.note("in_page_disagreement",
                      f"the phase under the title gives {near_title}, the Phase label {phases}")
        return phases

    @field
    def conditions(self) -> list[str]:
        """Conditions: chips split at their elements, never in the joined string."""
        chips = self.chips.get("conditions")
        if chips:
            return chips
        items = clean_texts(self.texts("conditions"))
        joined = [t for t in items if _RUN_TOGETHER.search(t)]
        if len(items) == 1 and joined:
            # One line that reads like several chips run together ("Malignant
            # TumorChild, OnlyCAR-T"), and no markup to split it at.
            self.keep_raw("conditions_printed", self.texts("conditions"))
            self.note("unsplit_list", f"conditions printed run together ({joined[0]!r}) with no markup to "
                                      "split them at: their boundaries are lost, so none are claimed")
            return []
        return items

    @field
    def interventions(self) -> list[Intervention]:
        """Interventions ("Drug: CAR-T")."""
        return [Intervention(**p) for p in (parse_intervention(t) for t in
                self.chips.get("interventions") or self.texts("interventions")) if p]

    @field
    def lead_sponsor(self) -> Sponsor | None:
        """Lead Sponsor."""
        name = clean_text(self.first("lead_sponsor"))
        return Sponsor(name=name) if name else None

    def _prose(self, name: str) -> str | None:
        texts = self.texts(name)
        if len(texts) == 1 and texts[0].strip().casefold() in NOT_AVAILABLE:
            return None
        return clean_prose(unescape_ctgov("\n\n".join(texts))) if texts else None

    @field
    def brief_summary(self) -> str | None:
        """Brief Summary."""
        return self._prose("brief_summary")

    @field
    def detailed_description(self) -> str | None:
        """Detailed Description ("Not available" means none)."""
        self.printed_section("detailed_description")
        return self._prose("detailed_description")

    @field
    def overall_status(self) -> Status | None:
        """Status (CT.gov's raw enums)."""
        self.printed_section("status")
        printed = self.first("status")
        status, known = normalize_status(printed)
        return status if known else self.unmapped(status, f"status {printed!r} is not in the CT.gov vocabulary")

    @field
    def sex(self) -> Sex | None:
        """Sex."""
        self.printed_section("sex")
        printed = self.first("sex")
        sex = normalize_sex(printed)
        if printed and sex is None:
            return self.unmapped(None, f"sex {printed!r} not recognised")
        return sex

    @field
    def enrollment(self) -> Enrollment | None:
        """Target Recruitment: the count only. The label is the site's template
        for every study, so it says nothing about planned or actual."""
        self.printed_section("target_recruitment")
        count, _type = parse_enrollment(self.first("target_recruitment"))
        if self.sections.get("target_recruitment"):
            self.keep_raw("enrollment_label", "Target Recruitment")
        return Enrollment(count=count, type=None) if count is not None else None

    @field
    def study_type(self) -> StudyType | None:
        """Study Type."""
        self.printed_section("study_type")
        printed = self.first("study_type")
        value = normalize_study_type(printed)
        if printed and value is None:
            return self.unmapped(None, f"study type {printed!r} not recognised")
        return value

    @field
    def intervention_model(self) -> InterventionModel | None:
        """Study Design: CT.gov's enum as printed ("SINGLE_GROUP")."""
        self.printed_section("study_design")
        printed = self.first("study_design")
        value, known = normalize_intervention_model(printed)
        if known:
            return value
        if self.study_type() == "OBSERVATIONAL" and normalize_observational_model(printed)[1]:
            return None  # an observational study's model (observational_model reads it)
        return self.unmapped(None, f"study design {printed!r} is not an intervention model in the CT.gov vocabulary")

    @field
    def observational_model(self) -> ObservationalModel | None:
        """Study Design, on an observational study ("COHORT")."""
        if self.study_type() != "OBSERVATIONAL":
            return None
        value, known = normalize_observational_model(self.first("study_design"))
        return value if known else None

    @field
    def arm_groups(self) -> list[ArmGroup]:
        """Arm && Interventions (Group / Intervention / Description): one group
        per Group label (its rows merged), its description, and its
        intervention named as the page's Interventions list prints it ("CAR-T"
        -> "Drug: CAR-T", as CT.gov's arm groups name them) when exactly one
        listed intervention has that name; else as printed in the cell."""
        arms, problem = self.arms()
        if problem:
            self.keep_raw("arms_printed", self.texts("arms"))
            self.note("unsplit_table", problem)
        self.printed(arms or None)
        listed: dict[str, list[str]] = {}
        for text in self.chips.get("interventions") or self.texts("interventions"):
            parsed = parse_intervention(text)
            if parsed:
                listed.setdefault(parsed["name"].casefold(), []).append(clean_text(text))
        groups: dict[str, dict] = {}
        for arm in arms:
            group = groups.setdefault(arm["group"].casefold(), {"label": arm["group"], "description": None,
                                                                "intervention_names": []})
            group["description"] = group["description"] or arm["description"]
            name = arm["intervention"]
            if name:
                same = listed.get(name.casefold(), [])
                name = same[0] if len(same) == 1 else name
                if name not in group["intervention_names"]:
                    group["intervention_names"].append(name)
        return [ArmGroup(**g) for g in groups.values()]

    def _outcomes(self, name: str) -> list[Outcome]:
        rows, problem = self.table(name, OUTCOME_HEADER)
        out = []
        for cells in rows:
            measure, time_frame, method = (cells + [None, None, None])[:3]
            measure = clean_text(measure)
            if measure:
                out.append(Outcome(measure=measure, time_frame=clean_text(time_frame),
                                   description=clean_prose(unescape_ctgov(method))))
        if problem:
            self.keep_raw(f"{name}_printed", self.texts(name))
            self.note("unsplit_table", problem)
        return out

    @field
    def primary_outcomes(self) -> list[Outcome]:
        """Primary Outcome Measures (Name / Time / Method)."""
        return self._outcomes("primary_outcomes")

    @field
    def secondary_outcomes(self) -> list[Outcome]:
        """Secondary Outcome Measures (Name / Time / Method)."""
        return self._outcomes("secondary_outcomes")

    @field
    def locations(self) -> list[Location]:
        """Trial Locations: facility, flag, "City, State, Country"; the
        country's ISO code beside it (a country ISO does not know is noted)."""
        locations = [Location(**loc) for loc in locations_from_lines(self.texts("locations"))]
        for loc in locations:
            self.check_country(loc)
        counts = [int(m.group(1)) for m in (_LOCATIONS_COUNT.match(t) for t in self.texts("locations")) if m]
        if counts and counts[0] != len(locations):
            self.note("in_page_disagreement", f"the page says Locations ({counts[0]}) and lists {len(locations)}")
        return locations

    @field
    def secondary_ids(self) -> list[Identifier]:
        """A Registration Number that is not an NCT ID (another registry's,
        screened), and MedPath's own ID from the URL (SITE)."""
        out: list[Identifier] = []
        printed = self.first("registration_number")
        if printed and self.nct_id() is None:
            # not an NCT ID: another registry's number is kept with its kind, a
            # placeholder ("N/A") is dropped; both noted
            value, kind, problem = screen_identifier(printed)
            if value is None:
                self.note("rejected_identifier", problem, on=MedpathPage.nct_id)
            else:
                out.append(Identifier(id=value, kind=kind))
                self.note("identifier_kind_mismatch",
                          f"Registration Number {printed!r} is not an NCT ID; kept as {kind}", on=MedpathPage.nct_id)
        m = STUDY_URL.match(self.url or "")
        if m:
            out.append(Identifier(id=m.group("id").lower(), kind="SITE", domain="MedPath"))
        return out

    # -- printed values no field holds ------------------------------------------------------
    def cross_checks(self) -> None:
        super().cross_checks()
        if self.extra:
            self.keep_raw("unlabelled_lines", [text for _, text in self.extra])
            self.note_raw("unlabelled_lines", "unlabelled_text",
                          f"{len(self.extra)} line(s) printed after the single value of "
                          f"{', '.join(sorted({n for n, _ in self.extra}))}, under no label of "
                          "their own: kept in raw, not read as any field")

    # -- tables -------------------------------------------------------------------------------
    def table(self, name: str, header: tuple[str, ...]) -> tuple[list[list[str]], str | None]:
        """Rows (header removed) of the table under `name`, and a problem, if any.
        From the markup when the page has it; else from lines: the header words
        one per line, then the cells, one per line, row by row."""
        if name in self.tables:
            rows = self.tables[name]
            if rows and [label_key(c) for c in rows[0]] == [label_key(h) for h in header]:
                rows = rows[1:]
            return rows, None
        texts = self.texts(name)
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

    def arms(self) -> tuple[list[dict], str | None]:
        rows, problem = self.table("arms", ARM_HEADER)
        arms = []
        for cells in rows:
            group, intervention, description = (cells + [None, None, None])[:3]
            if clean_text(group):
                arms.append({"group": clean_text(group), "intervention": clean_text(intervention),
                             "description": clean_prose(description)})
        return arms, problem


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
        out.append({"facility": facility, **place_fields(address), "status": None})
    return out


def _markup_values(root) -> tuple[dict, dict]:
    """Chips and tables of a MedPath page's content, each found by its label."""
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


def parse_medpath(response: Response) -> SourceRecord:
    """A MedPath study page -> SourceRecord. Pure."""
    return MedpathPage(response).to_record()


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
