"""The data contract: what one page says (`SourceRecord`) and what harvester
concludes per trial (`Trial`).

Everything downstream reads these models, serialized with `by_alias=True`
(so `Sponsor.class_` is written as `class`). Their JSON Schemas live in
`items/schema/` and a test keeps them in sync with this module
(`python -m items.schema` regenerates them).

Vocabularies are ClinicalTrials.gov's (API v2 enums). A site's own wording
is normalized by `harvester.normalize` before it reaches these models, and
the printed form is kept in `SourceRecord.raw`.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, Optional, TypeVar

from pydantic import BaseModel, ConfigDict, Field

Status = Literal[
    "RECRUITING",
    "NOT_YET_RECRUITING",
    "ACTIVE_NOT_RECRUITING",
    "ENROLLING_BY_INVITATION",
    "COMPLETED",
    "SUSPENDED",
    "TERMINATED",
    "WITHDRAWN",
    "AVAILABLE",
    "NO_LONGER_AVAILABLE",
    "TEMPORARILY_NOT_AVAILABLE",
    "APPROVED_FOR_MARKETING",
    "WITHHELD",
    "UNKNOWN",
]
Phase = Literal["NA", "EARLY_PHASE1", "PHASE1", "PHASE2", "PHASE3", "PHASE4"]
StudyType = Literal["INTERVENTIONAL", "OBSERVATIONAL", "EXPANDED_ACCESS"]
EnrollmentType = Literal["ACTUAL", "ESTIMATED"]
Sex = Literal["ALL", "FEMALE", "MALE"]
IdentifierKind = Literal["NCT", "ORG", "UTN", "EUDRACT", "CTIS", "ISRCTN", "CHICTR", "SITE", "OTHER"]

# Full dates or the partial dates registries print ("2015-08", "2019").
PARTIAL_DATE = r"^\d{4}(-\d{2}(-\d{2})?)?$"
NCT_ID = r"^NCT\d{8}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Identifier(_Model):
    id: str = Field(min_length=1)
    kind: IdentifierKind
    domain: Optional[str] = None  # issuing organisation, where the page names it


class Enrollment(_Model):
    count: Optional[int] = Field(default=None, ge=0)
    type: Optional[EnrollmentType] = None  # None: the page does not say planned or actual


class Intervention(_Model):
    type: Optional[str] = None  # CT.gov InterventionType, e.g. DRUG, BIOLOGICAL
    name: str


class Sponsor(_Model):
    name: str
    class_: Optional[str] = Field(default=None, alias="class")  # CT.gov AgencyClass


class Eligibility(_Model):
    sex: Optional[Sex] = None
    min_age_years: Optional[float] = Field(default=None, ge=0)
    max_age_years: Optional[float] = Field(default=None, ge=0)
    age_text: Optional[str] = None  # as printed
    healthy_volunteers: Optional[bool] = None
    inclusion: list[str] = Field(default_factory=list)
    exclusion: list[str] = Field(default_factory=list)
    criteria_text: Optional[str] = None


class Location(_Model):
    facility: Optional[str] = None
    city: Optional[str] = None
    state: Optional[str] = None
    country: Optional[str] = None
    status: Optional[str] = None


class Outcome(_Model):
    measure: str
    time_frame: Optional[str] = None
    description: Optional[str] = None


class Note(_Model):
    """Something the parser noticed and did not silently resolve."""

    field: str
    kind: str  # e.g. "from_other_section", "in_page_disagreement", "unmapped_vocabulary", "missing_value"
    detail: str


class SourceRecord(_Model):
    """What one page of one site says about one trial."""

    site: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    url: str
    fetched_at: datetime
    nct_id: Optional[str] = Field(default=None, pattern=NCT_ID)
    secondary_ids: list[Identifier] = Field(default_factory=list)
    brief_title: Optional[str] = None
    official_title: Optional[str] = None
    overall_status: Optional[Status] = None
    phases: list[Phase] = Field(default_factory=list)
    study_type: Optional[StudyType] = None
    enrollment: Optional[Enrollment] = None
    conditions: list[str] = Field(default_factory=list)
    interventions: list[Intervention] = Field(default_factory=list)
    lead_sponsor: Optional[Sponsor] = None
    collaborators: list[Sponsor] = Field(default_factory=list)
    start_date: Optional[str] = Field(default=None, pattern=PARTIAL_DATE)
    primary_completion_date: Optional[str] = Field(default=None, pattern=PARTIAL_DATE)
    completion_date: Optional[str] = Field(default=None, pattern=PARTIAL_DATE)
    eligibility: Eligibility = Field(default_factory=Eligibility)
    locations: list[Location] = Field(default_factory=list)
    brief_summary: Optional[str] = None
    detailed_description: Optional[str] = None
    lay_summary: Optional[str] = None
    primary_outcomes: list[Outcome] = Field(default_factory=list)
    secondary_outcomes: list[Outcome] = Field(default_factory=list)
    last_update_posted: Optional[str] = Field(default=None, pattern=PARTIAL_DATE)
    raw: dict[str, Any] = Field(default_factory=dict)
    notes: list[Note] = Field(default_factory=list)
    content_hash: Optional[str] = None


# Fields of a SourceRecord that describe the trial and are reconciled one by
# one into a Trial. `eligibility` is reconciled per sub-field.
TRIAL_FIELDS: tuple[str, ...] = (
    "brief_title",
    "official_title",
    "overall_status",
    "phases",
    "study_type",
    "enrollment",
    "conditions",
    "interventions",
    "lead_sponsor",
    "collaborators",
    "start_date",
    "primary_completion_date",
    "completion_date",
    "locations",
    "brief_summary",
    "detailed_description",
    "lay_summary",
    "primary_outcomes",
    "secondary_outcomes",
    "last_update_posted",
)
ELIGIBILITY_FIELDS: tuple[str, ...] = tuple(Eligibility.model_fields)

T = TypeVar("T")


class Sourced(_Model, Generic[T]):
    """A reconciled value and the page it was taken from."""

    value: T
    site: str
    url: str
    fetched_at: datetime


class ConflictValue(_Model):
    value: Any
    site: str
    url: str
    fetched_at: datetime


class Conflict(_Model):
    """Sources that still disagree after normalization. The chosen value is
    the Trial field's; every source's value is kept here."""

    field: str
    chosen_site: str
    values: list[ConflictValue]


class Link(_Model):
    """How a page was tied to its trial."""

    method: Literal["nct_id", "nct_id_from_url", "fuzzy_store", "fuzzy_api"]
    score: Optional[float] = None
    evidence: dict[str, Any] = Field(default_factory=dict)


class SourceRef(_Model):
    site: str
    url: str
    fetched_at: datetime
    content_hash: Optional[str] = None
    link: Link


class TrialIdentifier(_Model):
    id: str
    kind: IdentifierKind
    domain: Optional[str] = None
    site: str
    url: str


class TrialNote(_Model):
    field: str
    kind: str
    detail: str
    site: str
    url: str


class TrialEligibility(_Model):
    sex: Optional[Sourced[Sex]] = None
    min_age_years: Optional[Sourced[float]] = None
    max_age_years: Optional[Sourced[float]] = None
    age_text: Optional[Sourced[str]] = None
    healthy_volunteers: Optional[Sourced[bool]] = None
    inclusion: Optional[Sourced[list[str]]] = None
    exclusion: Optional[Sourced[list[str]]] = None
    criteria_text: Optional[Sourced[str]] = None


class Trial(_Model):
    """The canonical record per NCT ID: each field's chosen value with its
    provenance, every disagreement in `conflicts`, every page in `sources`."""

    nct_id: str = Field(pattern=NCT_ID)
    identifiers: list[TrialIdentifier] = Field(default_factory=list)
    brief_title: Optional[Sourced[str]] = None
    official_title: Optional[Sourced[str]] = None
    overall_status: Optional[Sourced[Status]] = None
    phases: Optional[Sourced[list[Phase]]] = None
    study_type: Optional[Sourced[StudyType]] = None
    enrollment: Optional[Sourced[Enrollment]] = None
    conditions: Optional[Sourced[list[str]]] = None
    interventions: Optional[Sourced[list[Intervention]]] = None
    lead_sponsor: Optional[Sourced[Sponsor]] = None
    collaborators: Optional[Sourced[list[Sponsor]]] = None
    start_date: Optional[Sourced[str]] = None
    primary_completion_date: Optional[Sourced[str]] = None
    completion_date: Optional[Sourced[str]] = None
    eligibility: TrialEligibility = Field(default_factory=TrialEligibility)
    locations: Optional[Sourced[list[Location]]] = None
    brief_summary: Optional[Sourced[str]] = None
    detailed_description: Optional[Sourced[str]] = None
    lay_summary: Optional[Sourced[str]] = None
    primary_outcomes: Optional[Sourced[list[Outcome]]] = None
    secondary_outcomes: Optional[Sourced[list[Outcome]]] = None
    last_update_posted: Optional[Sourced[str]] = None
    conflicts: list[Conflict] = Field(default_factory=list)
    notes: list[TrialNote] = Field(default_factory=list)
    sources: list[SourceRef] = Field(default_factory=list)
