"""A throwaway fifth site, defined entirely inside tests/: ClinicalTrials.gov's
classic study page (seed 001, `seed001.txt`, its real page text), read by a
page object and crawled by a spider declared here and nowhere else.

`tests/test_fifth_site.py` runs `scrapy extract` and the offline harvest
with `-s SPIDER_MODULES=spiders,fifth_site`: the proof that a new site is its
own module, its cassette and its test, and touches nothing else."""
from __future__ import annotations

import re

from harvester.normalize.dates import normalize_date
from harvester.normalize.ids import normalize_nct
from harvester.normalize.sex import normalize_sex
from harvester.normalize.status import normalize_status
from harvester.normalize.study_type import normalize_study_type
from harvester.normalize.text import clean_text
from harvester.sites import Site
from items import Identifier, Sex, Status, StudyType
from spiders.base import StudyPageSpider
from spiders.pages import CriteriaSections, field
from spiders.sections import Line

LABELS = {
    "ClinicalTrials.gov Identifier": "nct",
    "Expanded Access Status": "status",
    "Recruitment Status": "status",
    "Study Type": "study_type",
    "Official Title": "official_title",
    "Sexes Eligible for Study": "sex",
    "Ages Eligible for Study": "ages",
    "Inclusion Criteria": "inclusion",
    "Exclusion Criteria": "exclusion",
    "Last Update Posted": "last_update",
    "First Posted": "first_posted",
    "Other Study ID Numbers": "other_ids",
    "Responsible Party": "responsible_party",
}
# the classic page prints its tables as "Label : | value |"
_CELL = re.compile(r"\s*\|\s*")


class ClassicStudyPage(CriteriaSections):
    LABELS = LABELS
    KEY_SECTIONS = ("nct", "status", "study_type", "inclusion", "sex")
    BRAND = "ClinicalTrials.gov"
    CRITERIA_HEADINGS = ("Inclusion Criteria:", "Exclusion Criteria:")

    def keep_lines(self, lines: list[Line]) -> list[Line]:
        out = []
        for ln in lines:
            text = _CELL.sub(" | ", ln.text).strip(" |")
            text = re.sub(r"\s*:\s*\|\s*|\s+:(?=\s|$)", ":", text, count=1)
            if text:
                out.append(Line(text, ln.bullet, ln.depth))
        return out

    @field
    def nct_id(self) -> str | None:
        """ClinicalTrials.gov Identifier."""
        return normalize_nct(self.first("nct"))

    @field
    def brief_title(self) -> str | None:
        """The first line of the page."""
        return clean_text(self.head[0].text) if self.head else None

    @field
    def official_title(self) -> str | None:
        """Official Title."""
        return clean_text(self.first("official_title"))

    @field
    def overall_status(self) -> Status | None:
        """Expanded Access Status (or Recruitment Status)."""
        printed = self.first("status")
        self.printed(printed)
        status, known = normalize_status(printed)
        return status if known else self.unmapped(status, f"status {printed!r} is not in the vocabulary")

    @field
    def study_type(self) -> StudyType | None:
        """Study Type."""
        return normalize_study_type(self.first("study_type"))

    @field
    def sex(self) -> Sex | None:
        """Sexes Eligible for Study."""
        return normalize_sex(self.first("sex"))

    @field
    def last_update_posted(self) -> str | None:
        """Last Update Posted."""
        return normalize_date(self.first("last_update"))

    @field
    def secondary_ids(self) -> list[Identifier]:
        """Other Study ID Numbers, screened."""
        return self.screened([(self.first("other_ids"), "ORG", None)])


SITE = Site(
    name="ctgov_classic",
    page=ClassicStudyPage,
    base="https://classic.clinicaltrials.gov",
    domains=("classic.clinicaltrials.gov",),
    politeness={"CONCURRENT_REQUESTS_PER_DOMAIN": 1, "DOWNLOAD_DELAY": 2.0},
    study_url=re.compile(r"^https?://classic\.clinicaltrials\.gov/ct2/show/NCT\d{8}$"),
    nct_path="/ct2/show/{nct}",
    offline={"nct": "NCT04008524"},
    rank=40,
)


class ClassicSpider(StudyPageSpider):
    site_entry = SITE
