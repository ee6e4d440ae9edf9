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
from functools import cache
from typing import Any, ClassVar, Generic, Literal, Optional, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass
from pydantic.fields import FieldInfo

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
DateType = Literal["ACTUAL", "ESTIMATED"]
Allocation = Literal["RANDOMIZED", "NON_RANDOMIZED", "NA"]
InterventionModel = Literal["SINGLE_GROUP", "PARALLEL", "CROSSOVER", "FACTORIAL", "SEQUENTIAL"]
PrimaryPurpose = Literal["TREATMENT", "PREVENTION", "DIAGNOSTIC", "ECT", "SUPPORTIVE_CARE", "SCREENING",
                         "HEALTH_SERVICES_RESEARCH", "BASIC_SCIENCE", "DEVICE_FEASIBILITY", "OTHER"]
Masking = Literal["NONE", "SINGLE", "DOUBLE", "TRIPLE", "QUADRUPLE"]
WhoMasked = Literal["PARTICIPANT", "CARE_PROVIDER", "INVESTIGATOR", "OUTCOMES_ASSESSOR"]
ObservationalModel = Literal["COHORT", "CASE_CONTROL", "CASE_ONLY", "CASE_CROSSOVER", "ECOLOGIC_OR_COMMUNITY",
                             "FAMILY_BASED", "DEFINED_POPULATION", "NATURAL_HISTORY", "OTHER"]
TimePerspective = Literal["RETROSPECTIVE", "PROSPECTIVE", "CROSS_SECTIONAL", "OTHER"]
StdAge = Literal["CHILD", "ADULT", "OLDER_ADULT"]

# Full dates or the partial dates registries print ("2015-08", "2019").
PARTIAL_DATE = r"^\d{4}(-\d{2}(-\d{2})?)?$"
NCT_ID = r"^NCT\d{8}$"


_CONFIG = ConfigDict(extra="forbid", populate_by_name=True)


class _Model(BaseModel):
    model_config = _CONFIG


class _Value:
    """Base of the values a record holds (a location, a sponsor, a date...).

    They are pydantic dataclasses with slots, not BaseModels: a record of the
    whole CT.gov study holds about 90 of them on average (thousands for a
    study with hundreds of sites), and pydantic builds a slotted dataclass in
    about two thirds of a BaseModel's time, validated the same way and
    serialized to the same JSON. BaseModel's `model_dump`, `model_dump_json`,
    `model_validate` and `model_fields` are kept, so code that reads the
    contract need not know which kind a value is."""

    __slots__ = ()
    #: name -> FieldInfo, like BaseModel.model_fields (set by `_value`)
    model_fields: ClassVar[dict[str, FieldInfo]]

    def model_dump(self, **kwargs: Any) -> Any:
        return _adapter(type(self)).dump_python(self, **kwargs)

    def model_dump_json(self, **kwargs: Any) -> str:
        return _adapter(type(self)).dump_json(self, **kwargs).decode()

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Any:
        return _adapter(cls).validate_python(obj, **kwargs)


def _value(cls: type) -> type:
    out = pydantic_dataclass(cls, slots=True, kw_only=True, config=_CONFIG)
    out.model_fields = out.__pydantic_fields__
    return out


@cache
def _adapter(cls: type) -> TypeAdapter:
    return TypeAdapter(cls)


def is_model(annotation: Any) -> bool:
    """Whether a type is one of the contract's models (a record, a trial, or a value they hold)."""
    return isinstance(annotation, type) and (issubclass(annotation, (BaseModel, _Value)))


@_value
class Identifier(_Value):
    id: str = Field(min_length=1)
    kind: IdentifierKind
    domain: Optional[str] = None  # issuing organisation, where the page names it


@_value
class Enrollment(_Value):
    count: Optional[int] = Field(default=None, ge=0)
    type: Optional[EnrollmentType] = None  # None: the page does not say planned or actual


@_value
class TrialDate(_Value):
    """A date and whether it has happened: CT.gov's date struct. A bare date
    string (what the HTML sites and records stored before the type was kept
    give) reads as a date whose type the page does not say."""

    date: str = Field(pattern=PARTIAL_DATE)
    type: Optional[DateType] = None  # None: the page does not say planned or actual

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"date": value} if isinstance(value, str) else value


@_value
class Intervention(_Value):
    """Key: name."""

    type: Optional[str] = None  # CT.gov InterventionType, e.g. DRUG, BIOLOGICAL
    name: str
    description: Optional[str] = None
    other_names: list[str] = Field(default_factory=list)  # drug codes and synonyms
    arm_group_labels: list[str] = Field(default_factory=list)


@_value
class ArmGroup(_Value):
    """Key: label."""

    label: str
    type: Optional[str] = None  # CT.gov ArmGroupType, e.g. EXPERIMENTAL, PLACEBO_COMPARATOR
    description: Optional[str] = None
    intervention_names: list[str] = Field(default_factory=list)  # as printed: "Drug: Palbociclib"


@_value
class Design(_Value):
    """How the study is built (CT.gov designModule). Reconciled per sub-field."""

    allocation: Optional[Allocation] = None
    intervention_model: Optional[InterventionModel] = None
    intervention_model_description: Optional[str] = None
    primary_purpose: Optional[PrimaryPurpose] = None
    masking: Optional[Masking] = None
    who_masked: list[WhoMasked] = Field(default_factory=list)
    masking_description: Optional[str] = None
    observational_model: Optional[ObservationalModel] = None
    time_perspective: Optional[TimePerspective] = None
    target_duration: Optional[str] = None  # as printed, e.g. "3 Years"
    bio_spec_retention: Optional[str] = None  # CT.gov BioSpecRetention, e.g. SAMPLES_WITH_DNA
    bio_spec_description: Optional[str] = None


@_value
class Contact(_Value):
    """A person or office to contact, or a study official. Personal data:
    `HARVEST_CANONICAL_CONTACTS=False` leaves every Contact out of the
    canonical output. Key: name + role."""

    name: Optional[str] = None
    role: Optional[str] = None  # CT.gov ContactRole / OfficialRole, e.g. PRINCIPAL_INVESTIGATOR, CONTACT
    affiliation: Optional[str] = None
    phone: Optional[str] = None
    phone_ext: Optional[str] = None
    email: Optional[str] = None


@_value
class GeoPoint(_Value):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


@_value
class ResponsibleParty(_Value):
    type: Optional[str] = None  # SPONSOR, PRINCIPAL_INVESTIGATOR, SPONSOR_INVESTIGATOR
    investigator_name: Optional[str] = None  # personal data, like Contact
    investigator_title: Optional[str] = None
    investigator_affiliation: Optional[str] = None
    old_name_title: Optional[str] = None  # records from before 2017 name a person or office here
    old_organization: Optional[str] = None


@_value
class Oversight(_Value):
    has_dmc: Optional[bool] = None  # a data monitoring committee
    fda_regulated_drug: Optional[bool] = None
    fda_regulated_device: Optional[bool] = None
    unapproved_device: Optional[bool] = None
    us_export: Optional[bool] = None


@_value
class Reference(_Value):
    """A publication. Key: pmid (or the citation when there is none) + type."""

    pmid: Optional[str] = None
    type: Optional[str] = None  # CT.gov ReferenceType: BACKGROUND, RESULT, DERIVED
    citation: Optional[str] = None


@_value
class IpdSharing(_Value):
    sharing: Optional[str] = None  # YES, NO, UNDECIDED
    description: Optional[str] = None
    info_types: list[str] = Field(default_factory=list)  # STUDY_PROTOCOL, SAP, ICF, CSR, ANALYTIC_CODE
    time_frame: Optional[str] = None
    access_criteria: Optional[str] = None
    url: Optional[str] = None


@_value
class MeshTerm(_Value):
    """A MeSH descriptor CT.gov derived from the record. Key: id."""

    id: str
    term: Optional[str] = None


@_value
class FlowGroup(_Value):
    """Participant flow of one group: how many started (the STARTED milestone
    of the first period the group has participants in) and completed (the
    COMPLETED milestone of its last such period). Key: group_id."""

    group_id: str
    title: Optional[str] = None
    started: Optional[int] = Field(default=None, ge=0)
    completed: Optional[int] = Field(default=None, ge=0)


@_value
class AdverseEventGroup(_Value):
    """Adverse-event totals of one group. Key: group_id."""

    group_id: str
    title: Optional[str] = None
    serious_affected: Optional[int] = Field(default=None, ge=0)
    serious_at_risk: Optional[int] = Field(default=None, ge=0)
    other_affected: Optional[int] = Field(default=None, ge=0)
    other_at_risk: Optional[int] = Field(default=None, ge=0)
    deaths_affected: Optional[int] = Field(default=None, ge=0)
    deaths_at_risk: Optional[int] = Field(default=None, ge=0)


@_value
class MeasureValue(_Value):
    """One reported value of an outcome measure: a group, and where the
    measure splits its values, the class and category it belongs to.
    Values are as printed ("84.2", "NA"). Key: group_id + class + category."""

    group_id: str
    group_title: Optional[str] = None
    class_title: Optional[str] = None
    category: Optional[str] = None
    value: Optional[str] = None
    spread: Optional[str] = None
    lower_limit: Optional[str] = None
    upper_limit: Optional[str] = None
    comment: Optional[str] = None


@_value
class OutcomeMeasure(_Value):
    """A reported outcome measure. Key: title + type."""

    type: Optional[str] = None  # PRIMARY, SECONDARY, OTHER_PRE_SPECIFIED, POST_HOC
    title: str
    unit: Optional[str] = None
    time_frame: Optional[str] = None
    param_type: Optional[str] = None  # MEAN, MEDIAN, NUMBER, COUNT_OF_PARTICIPANTS, ...
    dispersion_type: Optional[str] = None
    reporting_status: Optional[str] = None
    values: list[MeasureValue] = Field(default_factory=list)


@_value
class ResultsSummary(_Value):
    """What a study with posted results reports, summarised per group."""

    participant_flow: list[FlowGroup] = Field(default_factory=list)
    adverse_events: list[AdverseEventGroup] = Field(default_factory=list)
    adverse_events_time_frame: Optional[str] = None
    outcome_measures: list[OutcomeMeasure] = Field(default_factory=list)


@_value
class Sponsor(_Value):
    name: str
    class_: Optional[str] = Field(default=None, alias="class")  # CT.gov AgencyClass


@_value
class Eligibility(_Value):
    sex: Optional[Sex] = None
    min_age_years: Optional[float] = Field(default=None, ge=0)
    max_age_years: Optional[float] = Field(default=None, ge=0)
    age_text: Optional[str] = None  # as printed
    healthy_volunteers: Optional[bool] = None
    inclusion: list[str] = Field(default_factory=list)
    exclusion: list[str] = Field(default_factory=list)
    criteria_text: Optional[str] = None
    std_ages: list[StdAge] = Field(default_factory=list)
    gender_based: Optional[bool] = None
    gender_description: Optional[str] = None
    study_population: Optional[str] = None  # observational studies
    sampling_method: Optional[str] = None  # PROBABILITY_SAMPLE, NON_PROBABILITY_SAMPLE


@_value
class Location(_Value):
    """A site. Key: facility + city (never the position in the list)."""

    facility: Optional[str] = None
    city: Optional[str] = None
    state: Optional[str] = None
    zip: Optional[str] = None
    country: Optional[str] = None  # as printed
    country_code: Optional[str] = Field(default=None, pattern=r"^[A-Z]{2}$")  # ISO 3166-1 alpha-2
    status: Optional[str] = None  # the site's recruitment status (CT.gov RecruitmentStatus)
    geo_point: Optional[GeoPoint] = None
    contacts: list[Contact] = Field(default_factory=list)


@_value
class Outcome(_Value):
    """A registered outcome. Key: measure."""

    measure: str
    time_frame: Optional[str] = None
    description: Optional[str] = None


@_value
class Note(_Value):
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
    nct_id_aliases: list[str] = Field(default_factory=list)  # older NCT IDs of the same trial
    secondary_ids: list[Identifier] = Field(default_factory=list)
    brief_title: Optional[str] = None
    official_title: Optional[str] = None
    acronym: Optional[str] = None
    overall_status: Optional[Status] = None
    last_known_status: Optional[Status] = None  # what the status was before it became UNKNOWN
    why_stopped: Optional[str] = None
    status_verified_date: Optional[str] = Field(default=None, pattern=PARTIAL_DATE)
    phases: list[Phase] = Field(default_factory=list)
    study_type: Optional[StudyType] = None
    design: Design = Field(default_factory=Design)
    enrollment: Optional[Enrollment] = None
    conditions: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    condition_mesh: list[MeshTerm] = Field(default_factory=list)
    condition_mesh_ancestors: list[MeshTerm] = Field(default_factory=list)
    arm_groups: list[ArmGroup] = Field(default_factory=list)
    interventions: list[Intervention] = Field(default_factory=list)
    intervention_mesh: list[MeshTerm] = Field(default_factory=list)
    intervention_mesh_ancestors: list[MeshTerm] = Field(default_factory=list)
    lead_sponsor: Optional[Sponsor] = None
    collaborators: list[Sponsor] = Field(default_factory=list)
    responsible_party: Optional[ResponsibleParty] = None
    oversight: Optional[Oversight] = None
    start_date: Optional[TrialDate] = None
    primary_completion_date: Optional[TrialDate] = None
    completion_date: Optional[TrialDate] = None
    study_first_posted: Optional[TrialDate] = None
    results_first_posted: Optional[TrialDate] = None
    eligibility: Eligibility = Field(default_factory=Eligibility)
    central_contacts: list[Contact] = Field(default_factory=list)
    overall_officials: list[Contact] = Field(default_factory=list)
    locations: list[Location] = Field(default_factory=list)
    brief_summary: Optional[str] = None
    detailed_description: Optional[str] = None
    lay_summary: Optional[str] = None
    primary_outcomes: list[Outcome] = Field(default_factory=list)
    secondary_outcomes: list[Outcome] = Field(default_factory=list)
    other_outcomes: list[Outcome] = Field(default_factory=list)
    references: list[Reference] = Field(default_factory=list)
    ipd_sharing: Optional[IpdSharing] = None
    has_results: Optional[bool] = None
    results: Optional[ResultsSummary] = None
    last_update_posted: Optional[str] = Field(default=None, pattern=PARTIAL_DATE)
    raw: dict[str, Any] = Field(default_factory=dict)
    notes: list[Note] = Field(default_factory=list)
    content_hash: Optional[str] = None


# Fields of a SourceRecord that describe the trial and are reconciled one by
# one into a Trial. `eligibility` is reconciled per sub-field.
TRIAL_FIELDS: tuple[str, ...] = (
    "nct_id_aliases",
    "brief_title",
    "official_title",
    "acronym",
    "overall_status",
    "last_known_status",
    "why_stopped",
    "status_verified_date",
    "phases",
    "study_type",
    "enrollment",
    "conditions",
    "keywords",
    "condition_mesh",
    "condition_mesh_ancestors",
    "arm_groups",
    "interventions",
    "intervention_mesh",
    "intervention_mesh_ancestors",
    "lead_sponsor",
    "collaborators",
    "responsible_party",
    "oversight",
    "start_date",
    "primary_completion_date",
    "completion_date",
    "study_first_posted",
    "results_first_posted",
    "central_contacts",
    "overall_officials",
    "locations",
    "brief_summary",
    "detailed_description",
    "lay_summary",
    "primary_outcomes",
    "secondary_outcomes",
    "other_outcomes",
    "references",
    "ipd_sharing",
    "has_results",
    "results",
    "last_update_posted",
)
ELIGIBILITY_FIELDS: tuple[str, ...] = tuple(Eligibility.model_fields)
DESIGN_FIELDS: tuple[str, ...] = tuple(Design.model_fields)
# Fields reconciled sub-field by sub-field: the record field -> its sub-fields.
NESTED_FIELDS: dict[str, tuple[str, ...]] = {"eligibility": ELIGIBILITY_FIELDS, "design": DESIGN_FIELDS}
# Fields that name people (contacts, officials, an investigator): left out of
# the canonical output with HARVEST_CANONICAL_CONTACTS=False.
PERSONAL_FIELDS: tuple[str, ...] = ("central_contacts", "overall_officials", "locations.contacts",
                                    "responsible_party.investigator_name")

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

    # nct_id_alias: the page names an older NCT ID of the trial (`nct_id_aliases` of its CT.gov record)
    method: Literal["nct_id", "nct_id_alias", "nct_id_from_url", "fuzzy_store", "fuzzy_api"]
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
    std_ages: Optional[Sourced[list[StdAge]]] = None
    gender_based: Optional[Sourced[bool]] = None
    gender_description: Optional[Sourced[str]] = None
    study_population: Optional[Sourced[str]] = None
    sampling_method: Optional[Sourced[str]] = None


class TrialDesign(_Model):
    allocation: Optional[Sourced[Allocation]] = None
    intervention_model: Optional[Sourced[InterventionModel]] = None
    intervention_model_description: Optional[Sourced[str]] = None
    primary_purpose: Optional[Sourced[PrimaryPurpose]] = None
    masking: Optional[Sourced[Masking]] = None
    who_masked: Optional[Sourced[list[WhoMasked]]] = None
    masking_description: Optional[Sourced[str]] = None
    observational_model: Optional[Sourced[ObservationalModel]] = None
    time_perspective: Optional[Sourced[TimePerspective]] = None
    target_duration: Optional[Sourced[str]] = None
    bio_spec_retention: Optional[Sourced[str]] = None
    bio_spec_description: Optional[Sourced[str]] = None


class Trial(_Model):
    """The canonical record per NCT ID: each field's chosen value with its
    provenance, every disagreement in `conflicts`, every page in `sources`."""

    nct_id: str = Field(pattern=NCT_ID)
    identifiers: list[TrialIdentifier] = Field(default_factory=list)
    nct_id_aliases: Optional[Sourced[list[str]]] = None
    brief_title: Optional[Sourced[str]] = None
    official_title: Optional[Sourced[str]] = None
    acronym: Optional[Sourced[str]] = None
    overall_status: Optional[Sourced[Status]] = None
    last_known_status: Optional[Sourced[Status]] = None
    why_stopped: Optional[Sourced[str]] = None
    status_verified_date: Optional[Sourced[str]] = None
    phases: Optional[Sourced[list[Phase]]] = None
    study_type: Optional[Sourced[StudyType]] = None
    design: TrialDesign = Field(default_factory=TrialDesign)
    enrollment: Optional[Sourced[Enrollment]] = None
    conditions: Optional[Sourced[list[str]]] = None
    keywords: Optional[Sourced[list[str]]] = None
    condition_mesh: Optional[Sourced[list[MeshTerm]]] = None
    condition_mesh_ancestors: Optional[Sourced[list[MeshTerm]]] = None
    arm_groups: Optional[Sourced[list[ArmGroup]]] = None
    interventions: Optional[Sourced[list[Intervention]]] = None
    intervention_mesh: Optional[Sourced[list[MeshTerm]]] = None
    intervention_mesh_ancestors: Optional[Sourced[list[MeshTerm]]] = None
    lead_sponsor: Optional[Sourced[Sponsor]] = None
    collaborators: Optional[Sourced[list[Sponsor]]] = None
    responsible_party: Optional[Sourced[ResponsibleParty]] = None
    oversight: Optional[Sourced[Oversight]] = None
    start_date: Optional[Sourced[TrialDate]] = None
    primary_completion_date: Optional[Sourced[TrialDate]] = None
    completion_date: Optional[Sourced[TrialDate]] = None
    study_first_posted: Optional[Sourced[TrialDate]] = None
    results_first_posted: Optional[Sourced[TrialDate]] = None
    eligibility: TrialEligibility = Field(default_factory=TrialEligibility)
    central_contacts: Optional[Sourced[list[Contact]]] = None
    overall_officials: Optional[Sourced[list[Contact]]] = None
    locations: Optional[Sourced[list[Location]]] = None
    brief_summary: Optional[Sourced[str]] = None
    detailed_description: Optional[Sourced[str]] = None
    lay_summary: Optional[Sourced[str]] = None
    primary_outcomes: Optional[Sourced[list[Outcome]]] = None
    secondary_outcomes: Optional[Sourced[list[Outcome]]] = None
    other_outcomes: Optional[Sourced[list[Outcome]]] = None
    references: Optional[Sourced[list[Reference]]] = None
    ipd_sharing: Optional[Sourced[IpdSharing]] = None
    has_results: Optional[Sourced[bool]] = None
    results: Optional[Sourced[ResultsSummary]] = None
    last_update_posted: Optional[Sourced[str]] = None
    conflicts: list[Conflict] = Field(default_factory=list)
    notes: list[TrialNote] = Field(default_factory=list)
    sources: list[SourceRef] = Field(default_factory=list)
