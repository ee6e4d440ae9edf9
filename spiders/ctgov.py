"""ClinicalTrials.gov, the registry of record, through its public REST API v2.

The modern clinicaltrials.gov site is a JavaScript application whose HTML
holds no study data, so this spider reads only the API:

* `GET /api/v2/studies/{NCT}` for named studies (`-a nct=NCT1,NCT2`);
* `GET /api/v2/studies?...` for searches (`-a query=`, `-a cond=`,
  `-a updated_since=YYYY-MM-DD`), paged with `nextPageToken`
  (`-a page_size=`, 1000 by default, the API's maximum; `-a max_pages=`);
* `-a incremental=1`: a search for what changed since the store's watermark
  minus `HARVEST_INCREMENTAL_OVERLAP_DAYS` (the `updated_since` filter);
  with no watermark yet, everything. A clean run of a whole search sets the
  watermark (key `ctgov`, or `ctgov?cond=...&query=...` for a narrowed
  search) to the date it started.

Every SourceRecord field comes from one row of `FIELD_MAP` below: the record
field, the path in the study object (`protocolSection`, `derivedSection`,
`resultsSection`), and the normalizer. Fields
whose printed value differs from the normalized one keep it in `raw`.
The full study JSON goes to the store with the record.

Politeness: the API is a public service of the U.S. National Library of
Medicine; harvester asks it for at most one request at a time per domain at
about one per second (DOWNLOAD_DELAY=1, AutoThrottle on), pages of 1,000
studies (the most the API gives per request), and obeys robots.txt, so a full
refresh of the registry (about 570,000 studies) is about 570 requests, one at
a time.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any, Callable, Iterator, get_args
from urllib.parse import urlencode

import orjson
import scrapy
from scrapy import signals
from scrapy.exceptions import DontCloseSpider
from scrapy.http import Response
from w3lib.url import add_or_replace_parameter, url_query_cleaner

from harvester.ledger import RunLedger
from harvester.normalize.ages import parse_age
from harvester.normalize.countries import country_code
from harvester.normalize.criteria import split_criteria
from harvester.normalize.dates import normalize_date
from harvester.normalize.ids import normalize_nct, screen_identifier
from harvester.normalize.phases import normalize_phases
from harvester.normalize.sex import normalize_sex
from harvester.normalize.status import normalize_status
from harvester.normalize.study_type import normalize_study_type
from harvester.normalize.text import clean_prose, clean_text, unescape_ctgov
from harvester.store import open_store
from items import Identifier, Note, RecordWithBody, Reject, SourceRecord
from items.records import (Allocation, InterventionModel, Masking, ObservationalModel, PrimaryPurpose, StdAge,
                           TimePerspective, WhoMasked)
from spiders.base import GONE_STATUSES, HarvestSpider, fetched_at, nct_arg, truthy

logger = logging.getLogger(__name__)

ORIGIN = "https://clinicaltrials.gov"
API = f"{ORIGIN}/api/v2/studies"
SITE = "ctgov"
#: the largest page the API gives (it coerces a larger pageSize down to this)
MAX_PAGE_SIZE = 1000


def study_url(nct_id: str) -> str:
    """The one URL a CT.gov record is stored under, however it was fetched."""
    return f"{API}/{nct_id}"


# --- converters: printed value -> normalized value (or Unmapped) ------------------
@dataclass(frozen=True)
class Unmapped:
    """A value outside the vocabulary: stored as `value`, noted on the record."""

    value: Any
    detail: str


@lru_cache(maxsize=200_000)
def _clean_str(v: str) -> str | None:
    return clean_text(v)


def _text(v):
    """clean_text, remembered for strings: site names, cities, countries,
    roles and statuses repeat across locations and studies."""
    if v is None:
        return None
    return _clean_str(v) if type(v) is str else clean_text(v)


def _status(v):
    status, known = normalize_status(v)
    return status if known else Unmapped(status, f"status {v!r} is not in the CT.gov vocabulary")


def _known_status(v):
    status, known = normalize_status(v)
    return status if known else Unmapped(None, f"last known status {v!r} is not in the CT.gov vocabulary")


def _phases(v):
    phases, unknown = normalize_phases(v)
    return Unmapped(phases, f"phase value(s) {unknown!r} not recognised") if unknown else phases


def _enum(vocab_type, what: str):
    """Converter for a CT.gov enum: the value when it is in the data
    contract's vocabulary, else None with an `unmapped_vocabulary` note."""
    vocab = frozenset(get_args(vocab_type))

    def convert(v):
        if v is None:
            return None
        if v in vocab:
            return v
        return Unmapped(None, f"{what} {v!r} is not in the CT.gov vocabulary")
    return convert


def _enum_list(vocab_type, what: str):
    vocab = frozenset(get_args(vocab_type))

    def convert(v):
        if not v:
            return []
        values = v if isinstance(v, list) else [v]
        unknown = [x for x in values if x not in vocab]
        known = [x for x in values if x in vocab]
        return Unmapped(known, f"{what} {unknown!r} not in the CT.gov vocabulary") if unknown else known
    return convert


def _text_list(v):
    return [t for t in (clean_text(x) for x in v or []) if t]


def _int(v):
    """Counts are numbers in some modules and strings ("2896") in others."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v if v >= 0 else None
    if isinstance(v, str) and v.strip().isdigit():
        return int(v)
    return None


def _date(v):
    """A CT.gov date struct -> {date, type}: the type (ACTUAL / ESTIMATED)
    stays with its date."""
    if not isinstance(v, dict):
        return None
    date = normalize_date(v.get("date"))
    if date is None:
        return None
    kind = v.get("type")
    return {"date": date, "type": kind if kind in ("ACTUAL", "ESTIMATED") else None}


def _enrollment(v):
    if not isinstance(v, dict) or v.get("count") is None and v.get("type") is None:
        return None
    return {"count": v.get("count"), "type": v.get("type") if v.get("type") in ("ACTUAL", "ESTIMATED") else None}


def _sponsor(v):
    if not isinstance(v, dict) or not clean_text(v.get("name")):
        return None
    return {"name": clean_text(v["name"]), "class": v.get("class")}


def _sponsors(v):
    return [s for s in (_sponsor(x) for x in v or []) if s]


def _interventions(v):
    return [{"type": x.get("type"), "name": clean_text(x["name"]),
             "description": _prose(x.get("description")),
             "other_names": _text_list(x.get("otherNames")),
             "arm_group_labels": _text_list(x.get("armGroupLabels"))}
            for x in v or [] if isinstance(x, dict) and clean_text(x.get("name"))]


def _arm_groups(v):
    return [{"label": clean_text(x["label"]), "type": x.get("type"),
             "description": _prose(x.get("description")),
             "intervention_names": _text_list(x.get("interventionNames"))}
            for x in v or [] if isinstance(x, dict) and clean_text(x.get("label"))]


@lru_cache(maxsize=4096)
def _country_code(country: str) -> str | None:
    return country_code(country)


def _contact(x: dict) -> dict:
    return {"name": _text(x.get("name")), "role": x.get("role"), "affiliation": _text(x.get("affiliation")),
            "phone": _text(x.get("phone")), "phone_ext": _text(x.get("phoneExt")), "email": _text(x.get("email"))}


def _contacts(v):
    return [_contact(x) for x in v or [] if isinstance(x, dict)]


def _geo(v):
    if not isinstance(v, dict):
        return None
    lat, lon = v.get("lat"), v.get("lon")
    if isinstance(lat, (int, float)) and isinstance(lon, (int, float)) and -90 <= lat <= 90 and -180 <= lon <= 180:
        return {"lat": lat, "lon": lon}
    return None


def _locations(v):
    out = []
    for x in v or []:
        if not isinstance(x, dict):
            continue
        country = _text(x.get("country"))
        contacts = x.get("contacts")
        out.append({"facility": _text(x.get("facility")), "city": _text(x.get("city")),
                    "state": _text(x.get("state")), "zip": _text(x.get("zip")),
                    "country": country, "country_code": _country_code(country) if country else None,
                    "status": _text(x.get("status")), "geo_point": _geo(x.get("geoPoint")),
                    "contacts": _contacts(contacts) if contacts else []})
    return out


def _outcomes(v):
    return [{"measure": clean_text(x["measure"]),
             "time_frame": clean_text(x.get("timeFrame")),
             "description": clean_prose(unescape_ctgov(x.get("description")))}
            for x in v or [] if isinstance(x, dict) and clean_text(x.get("measure"))]


def _responsible_party(v):
    if not isinstance(v, dict):
        return None
    out = {"type": v.get("type"), "investigator_name": _text(v.get("investigatorFullName")),
           "investigator_title": _text(v.get("investigatorTitle")),
           "investigator_affiliation": _text(v.get("investigatorAffiliation")),
           "old_name_title": _text(v.get("oldNameTitle")), "old_organization": _text(v.get("oldOrganization"))}
    return out if any(out.values()) else None


def _oversight(v):
    if not isinstance(v, dict):
        return None
    out = {"has_dmc": _bool(v.get("oversightHasDmc")), "fda_regulated_drug": _bool(v.get("isFdaRegulatedDrug")),
           "fda_regulated_device": _bool(v.get("isFdaRegulatedDevice")),
           "unapproved_device": _bool(v.get("isUnapprovedDevice")), "us_export": _bool(v.get("isUsExport"))}
    return out if any(x is not None for x in out.values()) else None


def _references(v):
    out = []
    for x in v or []:
        if not isinstance(x, dict):
            continue
        ref = {"pmid": _text(x.get("pmid")), "type": x.get("type"), "citation": clean_text(x.get("citation"))}
        if ref["pmid"] or ref["citation"]:
            out.append(ref)
    return out


def _ipd(v):
    if not isinstance(v, dict):
        return None
    out = {"sharing": v.get("ipdSharing"), "description": _prose(v.get("description")),
           "info_types": [t for t in v.get("infoTypes") or [] if isinstance(t, str)],
           "time_frame": _prose(v.get("timeFrame")), "access_criteria": _prose(v.get("accessCriteria")),
           "url": clean_text(v.get("url"))}
    return out if out["sharing"] or out["description"] else None


def _mesh(v):
    return [{"id": x["id"], "term": _text(x.get("term"))}
            for x in v or [] if isinstance(x, dict) and isinstance(x.get("id"), str) and x["id"]]


def _ncts(v):
    return [n for n in (normalize_nct(x) for x in v or []) if n]


def _bool(v):
    return v if isinstance(v, bool) else None


def _prose(v):
    return clean_prose(unescape_ctgov(v))


# --- the results section: a summary per group, pure ------------------------------
def _flow(pf: Any) -> list[dict]:
    """Per participant-flow group: how many started (the STARTED milestone of
    the first period the group has participants in) and completed (the
    COMPLETED milestone of its last such period). Groups of a crossover or a
    later phase start in a later period, not in the first."""
    if not isinstance(pf, dict):
        return []

    def milestone(period: dict, kind: str) -> dict[str, int | None]:
        for m in period.get("milestones") or []:
            if isinstance(m, dict) and m.get("type") == kind:
                return {a.get("groupId"): _int(a.get("numSubjects"))
                        for a in m.get("achievements") or [] if isinstance(a, dict)}
        return {}
    periods = [(milestone(p, "STARTED"), milestone(p, "COMPLETED"))
               for p in pf.get("periods") or [] if isinstance(p, dict)]
    out = []
    for g in pf.get("groups") or []:
        if not isinstance(g, dict) or not g.get("id"):
            continue
        gid = g["id"]
        active = [p for p in periods if p[0].get(gid)] or periods
        out.append({"group_id": gid, "title": _text(g.get("title")),
                    "started": active[0][0].get(gid) if active else None,
                    "completed": active[-1][1].get(gid) if active else None})
    return out


def _adverse_events(ae: Any) -> list[dict]:
    if not isinstance(ae, dict):
        return []
    return [{"group_id": g["id"], "title": _text(g.get("title")),
             "serious_affected": _int(g.get("seriousNumAffected")),
             "serious_at_risk": _int(g.get("seriousNumAtRisk")),
             "other_affected": _int(g.get("otherNumAffected")),
             "other_at_risk": _int(g.get("otherNumAtRisk")),
             "deaths_affected": _int(g.get("deathsNumAffected")),
             "deaths_at_risk": _int(g.get("deathsNumAtRisk"))}
            for g in ae.get("eventGroups") or [] if isinstance(g, dict) and g.get("id")]


def _measure_values(m: dict) -> list[dict]:
    titles = {g.get("id"): _text(g.get("title")) for g in m.get("groups") or [] if isinstance(g, dict)}
    out = []
    for cls in m.get("classes") or []:
        if not isinstance(cls, dict):
            continue
        class_title = _text(cls.get("title"))
        for cat in cls.get("categories") or []:
            if not isinstance(cat, dict):
                continue
            category = _text(cat.get("title"))
            for x in cat.get("measurements") or []:
                if not isinstance(x, dict) or not x.get("groupId"):
                    continue
                gid = x["groupId"]
                out.append({"group_id": gid, "group_title": titles.get(gid), "class_title": class_title,
                            "category": category, "value": _text(x.get("value")),
                            "spread": _text(x.get("spread")), "lower_limit": _text(x.get("lowerLimit")),
                            "upper_limit": _text(x.get("upperLimit")), "comment": _text(x.get("comment"))})
    return out


def _measures(om: Any) -> list[dict]:
    if not isinstance(om, dict):
        return []
    return [{"type": m.get("type"), "title": clean_text(m["title"]), "unit": _text(m.get("unitOfMeasure")),
             "time_frame": clean_text(m.get("timeFrame")), "param_type": m.get("paramType"),
             "dispersion_type": m.get("dispersionType"), "reporting_status": m.get("reportingStatus"),
             "values": _measure_values(m)}
            for m in om.get("outcomeMeasures") or [] if isinstance(m, dict) and clean_text(m.get("title"))]


def results_summary(rs: Any) -> dict | None:
    """The results section -> participant flow, adverse-event totals and
    outcome measures per group (`items.ResultsSummary`). Pure."""
    if not isinstance(rs, dict):
        return None
    ae = rs.get("adverseEventsModule")
    return {"participant_flow": _flow(rs.get("participantFlowModule")),
            "adverse_events": _adverse_events(ae),
            "adverse_events_time_frame": clean_text(ae.get("timeFrame")) if isinstance(ae, dict) else None,
            "outcome_measures": _measures(rs.get("outcomeMeasuresModule"))}


@dataclass(frozen=True)
class F:
    field: str  # record field; "eligibility.sex" for a sub-field
    path: str  # dotted path inside the study object
    convert: Callable[[Any], Any]
    keep_raw: bool = False  # the printed value differs from the normalized one
    keys: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "keys", tuple(self.path.split(".")))


P = "protocolSection."
FIELD_MAP: tuple[F, ...] = (
    F("nct_id", P + "identificationModule.nctId", normalize_nct, keep_raw=True),
    F("nct_id_aliases", P + "identificationModule.nctIdAliases", _ncts),
    F("brief_title", P + "identificationModule.briefTitle", clean_text),
    F("official_title", P + "identificationModule.officialTitle", clean_text),
    F("acronym", P + "identificationModule.acronym", clean_text),
    F("overall_status", P + "statusModule.overallStatus", _status, keep_raw=True),
    F("last_known_status", P + "statusModule.lastKnownStatus", _known_status),
    F("why_stopped", P + "statusModule.whyStopped", clean_text),
    F("status_verified_date", P + "statusModule.statusVerifiedDate", normalize_date),
    F("phases", P + "designModule.phases", _phases, keep_raw=True),
    F("study_type", P + "designModule.studyType", normalize_study_type, keep_raw=True),
    F("design.allocation", P + "designModule.designInfo.allocation", _enum(Allocation, "allocation")),
    F("design.intervention_model", P + "designModule.designInfo.interventionModel",
      _enum(InterventionModel, "intervention model")),
    F("design.intervention_model_description", P + "designModule.designInfo.interventionModelDescription", _prose),
    F("design.primary_purpose", P + "designModule.designInfo.primaryPurpose", _enum(PrimaryPurpose, "primary purpose")),
    F("design.masking", P + "designModule.designInfo.maskingInfo.masking", _enum(Masking, "masking")),
    F("design.who_masked", P + "designModule.designInfo.maskingInfo.whoMasked", _enum_list(WhoMasked, "who masked")),
    F("design.masking_description", P + "designModule.designInfo.maskingInfo.maskingDescription", _prose),
    F("design.observational_model", P + "designModule.designInfo.observationalModel",
      _enum(ObservationalModel, "observational model")),
    F("design.time_perspective", P + "designModule.designInfo.timePerspective",
      _enum(TimePerspective, "time perspective")),
    F("design.target_duration", P + "designModule.targetDuration", clean_text),
    F("design.bio_spec_retention", P + "designModule.bioSpec.retention", clean_text),
    F("design.bio_spec_description", P + "designModule.bioSpec.description", _prose),
    F("enrollment", P + "designModule.enrollmentInfo", _enrollment),
    F("conditions", P + "conditionsModule.conditions", _text_list),
    F("keywords", P + "conditionsModule.keywords", _text_list),
    F("condition_mesh", "derivedSection.conditionBrowseModule.meshes", _mesh),
    F("condition_mesh_ancestors", "derivedSection.conditionBrowseModule.ancestors", _mesh),
    F("arm_groups", P + "armsInterventionsModule.armGroups", _arm_groups),
    F("interventions", P + "armsInterventionsModule.interventions", _interventions),
    F("intervention_mesh", "derivedSection.interventionBrowseModule.meshes", _mesh),
    F("intervention_mesh_ancestors", "derivedSection.interventionBrowseModule.ancestors", _mesh),
    F("lead_sponsor", P + "sponsorCollaboratorsModule.leadSponsor", _sponsor),
    F("collaborators", P + "sponsorCollaboratorsModule.collaborators", _sponsors),
    F("responsible_party", P + "sponsorCollaboratorsModule.responsibleParty", _responsible_party),
    F("oversight", P + "oversightModule", _oversight),
    F("start_date", P + "statusModule.startDateStruct", _date, keep_raw=True),
    F("primary_completion_date", P + "statusModule.primaryCompletionDateStruct", _date, keep_raw=True),
    F("completion_date", P + "statusModule.completionDateStruct", _date, keep_raw=True),
    F("study_first_posted", P + "statusModule.studyFirstPostDateStruct", _date),
    F("results_first_posted", P + "statusModule.resultsFirstPostDateStruct", _date),
    F("last_update_posted", P + "statusModule.lastUpdatePostDateStruct.date", normalize_date, keep_raw=True),
    F("brief_summary", P + "descriptionModule.briefSummary", _prose),
    F("detailed_description", P + "descriptionModule.detailedDescription", _prose),
    F("central_contacts", P + "contactsLocationsModule.centralContacts", _contacts),
    F("overall_officials", P + "contactsLocationsModule.overallOfficials", _contacts),
    F("locations", P + "contactsLocationsModule.locations", _locations),
    F("primary_outcomes", P + "outcomesModule.primaryOutcomes", _outcomes),
    F("secondary_outcomes", P + "outcomesModule.secondaryOutcomes", _outcomes),
    F("other_outcomes", P + "outcomesModule.otherOutcomes", _outcomes),
    F("references", P + "referencesModule.references", _references),
    F("ipd_sharing", P + "ipdSharingStatementModule", _ipd),
    F("has_results", "hasResults", _bool),
    F("results", "resultsSection", results_summary),
    F("eligibility.sex", P + "eligibilityModule.sex", normalize_sex, keep_raw=True),
    F("eligibility.min_age_years", P + "eligibilityModule.minimumAge", parse_age, keep_raw=True),
    F("eligibility.max_age_years", P + "eligibilityModule.maximumAge", parse_age, keep_raw=True),
    F("eligibility.healthy_volunteers", P + "eligibilityModule.healthyVolunteers", _bool),
    F("eligibility.criteria_text", P + "eligibilityModule.eligibilityCriteria", _prose, keep_raw=True),
    F("eligibility.std_ages", P + "eligibilityModule.stdAges", _enum_list(StdAge, "standard age")),
    F("eligibility.gender_based", P + "eligibilityModule.genderBased", _bool),
    F("eligibility.gender_description", P + "eligibilityModule.genderDescription", _prose),
    F("eligibility.study_population", P + "eligibilityModule.studyPopulation", _prose),
    F("eligibility.sampling_method", P + "eligibilityModule.samplingMethod", clean_text),
)


def _get(obj: Any, path: str | tuple[str, ...]) -> Any:
    try:
        for key in path.split(".") if isinstance(path, str) else path:
            obj = obj.get(key)
    except AttributeError:  # a missing module (None), or a value that is not an object
        return None
    return obj


_SECONDARY_TYPES = {"EUDRACT_NUMBER": "EUDRACT", "CTIS": "CTIS"}


def _secondary_ids(ident: dict, notes: list[Note]) -> list[Identifier]:
    """The sponsor's own study ID (ORG) and the other IDs the record lists,
    each screened: placeholders are dropped and a kind the ID's form
    contradicts is corrected, both with a note."""
    out: list[Identifier] = []
    entries = [(_get(ident, "orgStudyIdInfo.id"), "ORG", _get(ident, "organization.fullName"))]
    for info in ident.get("secondaryIdInfos") or []:
        # The registry's own type where it has one; an organisation's number
        # that is not the sponsor's own is OTHER.
        entries.append((info.get("id"), _SECONDARY_TYPES.get(info.get("type"), "OTHER"), info.get("domain")))
    for printed, declared, domain in entries:
        if printed is None or not clean_text(printed):
            continue
        value, kind, problem = screen_identifier(printed, declared)
        if problem:
            notes.append(Note(field="secondary_ids", kind="rejected_identifier" if value is None
                              else "identifier_kind_mismatch", detail=problem))
        if value is not None:
            out.append(Identifier(id=value, kind=kind, domain=clean_text(domain)))
    return out


def _age_text(elig: dict) -> str | None:
    lo, hi = elig.get("minimumAge"), elig.get("maximumAge")
    if not lo and not hi:
        return None
    return f"{lo or 'N/A'} to {hi or 'N/A'}"


def parse_study(study: dict, url: str | None = None, fetched=None) -> SourceRecord:
    """One API v2 study object -> SourceRecord. Pure."""
    proto = study.get("protocolSection")
    if not isinstance(proto, dict):
        raise ValueError("study has no protocolSection")
    record: dict[str, Any] = {"eligibility": {}, "design": {}}
    raw: dict[str, Any] = {}
    notes: list[Note] = []
    for row in FIELD_MAP:
        printed = _get(study, row.keys)
        value = row.convert(printed)
        if isinstance(value, Unmapped):
            notes.append(Note(field=row.field, kind="unmapped_vocabulary", detail=value.detail))
            value = value.value
        if row.keep_raw and printed is not None:
            raw[row.field] = printed
        target, _, sub = row.field.partition(".")
        if sub:
            record[target][sub] = value
        else:
            record[target] = value
    if record["nct_id"] is None:
        raise ValueError(f"study without a valid nctId ({raw.get('nct_id')!r})")
    elig = proto.get("eligibilityModule") or {}
    criteria = elig.get("eligibilityCriteria")  # split_criteria undoes the markdown escapes
    inclusion, exclusion = split_criteria(criteria) if criteria else ([], [])
    record["eligibility"].update(inclusion=inclusion, exclusion=exclusion, age_text=_age_text(elig))
    return SourceRecord(
        site=SITE,
        url=url or study_url(record["nct_id"]),
        fetched_at=fetched,
        secondary_ids=_secondary_ids(proto.get("identificationModule") or {}, notes),
        raw=raw,
        notes=notes,
        **record,
    )


def parse_study_response(response: Response) -> SourceRecord:
    """A `/api/v2/studies/{NCT}` response -> SourceRecord. Pure."""
    study = json.loads(response.text)
    if not isinstance(study, dict) or not isinstance(study.get("protocolSection"), dict):
        raise ValueError(study_shape_error(study))
    return parse_study(study, fetched=fetched_at(response))


def study_shape_error(obj) -> str:
    """Why a JSON body is not one CT.gov API v2 study."""
    want = "expected one CT.gov API v2 study: a JSON object with a \"protocolSection\" object " \
           "(the body of GET /api/v2/studies/NCT...)"
    if isinstance(obj, dict) and isinstance(obj.get("studies"), list):
        return f"{want}, got a search page of {len(obj['studies'])} studies"
    if isinstance(obj, dict):
        got = "protocolSection " + ("missing" if "protocolSection" not in obj
                                    else f"a JSON {_json_kind(obj['protocolSection'])}")
        return f"{want}, got an object with {got}"
    return f"{want}, got a JSON {_json_kind(obj)}"


def _json_kind(value) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


def salvage_studies(text: str) -> tuple[list[dict], bool]:
    """Read the study objects of a (possibly truncated) listing page one by
    one. Returns the complete ones and whether the page was whole."""
    decoder = json.JSONDecoder()
    start = text.find('"studies"')
    if start < 0:
        return [], False
    pos = text.find("[", start)
    if pos < 0:
        return [], False
    pos += 1
    studies: list[dict] = []
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text):
            return studies, False
        if text[pos] == "]":
            return studies, True
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return studies, False
        if isinstance(obj, dict):
            studies.append(obj)


class CtgovSpider(HarvestSpider):
    name = "ctgov"
    site = SITE
    default_base = ORIGIN
    allowed_domains = ["clinicaltrials.gov"]
    custom_settings = {
        "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
        "DOWNLOAD_DELAY": 1.0,
        # A search page of 1,000 studies: ~37 KB a study on average (the
        # real bodies of the reference set), 1.5 MB for one with results.
        "DOWNLOAD_MAXSIZE": 256 * 1024 * 1024,
        "DOWNLOAD_WARNSIZE": 128 * 1024 * 1024,
    }
    #: the pure parser `scrapy extract ctgov <saved study JSON>` runs
    parse_page_fn = staticmethod(parse_study_response)
    #: what `scrapy harvest --offline` asks for: the studies in the bundled cassette, and
    #: what changed since 2026-06-01 (which brings NCT04637503 in its newer real version)
    offline_args = {"nct": "NCT02513394,NCT04008524,NCT02186860,NCT04691349,NCT04637503",
                    "updated_since": "2026-06-01"}

    def __init__(self, nct=None, query=None, cond=None, updated_since=None,
                 max_pages=None, page_size=None, id_listing=None, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ncts = nct_arg(nct)
        self.query = query
        self.cond = cond
        if updated_since and normalize_date(updated_since) is None:
            raise ValueError(f"-a updated_since: {updated_since!r} is not a date (YYYY-MM-DD)")
        self.updated_since = normalize_date(updated_since) if updated_since else None
        self.max_pages = int(max_pages) if max_pages else None
        # fewest requests for the same studies: the largest page the API gives
        self.page_size = max(1, min(MAX_PAGE_SIZE, int(page_size or MAX_PAGE_SIZE)))
        #: `-a id_listing=1` / `=0`: list every NCT ID this run, or never; unset: when due
        self.id_listing = None if id_listing is None else truthy(id_listing)
        self.api = f"{self.base}/api/v2/studies"
        self.searched = False
        self.ledger: RunLedger | None = None
        #: the registry's data version (`/version` dataTimestamp) this run read
        self.data_timestamp: str | None = None
        #: why the run ended at once (nothing changed in the registry), or None
        self.skipped: str | None = None
        self.registry_check: dict | None = None  # what the ID comparison with the store found
        #: expected vs stored, for the run report
        self.completeness_result: dict | None = None

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.ledger = RunLedger.for_crawler(crawler, spider.name)
        crawler.signals.connect(spider.item_stored, signal=signals.item_scraped)
        crawler.signals.connect(spider.on_idle, signal=signals.spider_idle)
        return spider

    # -- requests ---------------------------------------------------------------
    @property
    def whole_registry(self) -> bool:
        """A search of every study (perhaps only those changed since a date)."""
        return not self.ncts and not self.query and not self.cond

    def search_params(self, page_token: str | None = None) -> dict[str, str]:
        params = {"format": "json", "pageSize": str(self.page_size)}
        if self.query:
            params["query.term"] = self.query
        if self.cond:
            params["query.cond"] = self.cond
        if self.updated_since:
            params["filter.advanced"] = f"AREA[LastUpdatePostDate]RANGE[{self.updated_since},MAX]"
        if page_token:
            params["pageToken"] = page_token
        else:
            params["countTotal"] = "true"  # the API counts on the first page only
        return params

    def search_url(self, page_token: str | None = None) -> str:
        return f"{self.api}?{urlencode(self.search_params(page_token))}"

    def id_listing_url(self) -> str:
        return f"{self.api}?" + urlencode({"format": "json", "fields": "NCTId", "pageSize": str(MAX_PAGE_SIZE),
                                            "countTotal": "true"})

    def study_request(self, nct_id: str, **meta) -> scrapy.Request:
        url = f"{self.api}/{nct_id}"
        # the record is stored under the site's own URL, wherever it was fetched
        if url != study_url(nct_id):
            meta["store_url"] = study_url(nct_id)
        return scrapy.Request(url, callback=self.parse_one, errback=self.on_error, cb_kwargs={}, meta=meta)

    async def start(self):
        if self.incremental and not self.updated_since and (not self.ncts or self.query or self.cond):
            self.updated_since = self.incremental_since()
        for nct_id in self.ncts:
            yield self.study_request(nct_id)
        if not self.ncts or self.query or self.cond or self.updated_since:
            self.searched = True
            if self.incremental or self.whole_registry:
                # the registry's data version first: unchanged since the last
                # good run, an incremental run has nothing to ask for
                yield scrapy.Request(f"{self.base}/api/v2/version", callback=self.parse_version,
                                     errback=self.version_failed, meta={"ctgov_kind": "version"})
            else:
                for request in self.search_requests():
                    yield request

    def search_requests(self) -> Iterator[scrapy.Request]:
        yield scrapy.Request(self.search_url(), callback=self.parse_page, errback=self.on_error,
                             meta={"ctgov_kind": "search"})
        if self.id_listing_due():
            logger.info("listing every NCT ID of the registry (fields=NCTId, %d a page)", MAX_PAGE_SIZE)
            yield scrapy.Request(self.id_listing_url(), callback=self.parse_ids, errback=self.on_error,
                                 meta={"ctgov_kind": "ids"})

    def id_listing_due(self) -> bool:
        """An incremental search of the whole registry never sees a study that
        left it: every HARVEST_CTGOV_ID_LISTING_DAYS days (or `-a
        id_listing=1`) the run also lists every NCT ID. A full search lists
        them itself."""
        if not self.whole_registry or not self.updated_since or self.id_listing is False:
            return False
        if self.id_listing:
            return True
        days = self.settings.getfloat("HARVEST_CTGOV_ID_LISTING_DAYS", 7)
        with open_store(self.settings) as store:
            last = store.get_watermark(self.id_listing_key())
        if not last:
            return True
        age = date.today() - date.fromisoformat(last[:10])
        return age.days >= days

    # -- keys in the store's watermarks table -------------------------------------
    def watermark_key(self) -> str:
        narrowed = {k: v for k, v in (("cond", self.cond), ("query", self.query)) if v}
        return f"{self.name}?{urlencode(narrowed)}" if narrowed else self.name

    def data_timestamp_key(self) -> str:
        return f"{self.watermark_key()} dataTimestamp"

    def id_listing_key(self) -> str:
        return f"{self.name} id listing"

    def covers_whole_source(self) -> bool:
        return self.searched and not self.crawler.stats.get_value("ctgov/stopped_at_max_pages")

    def run_since(self) -> str | None:
        return self.updated_since

    # -- callbacks --------------------------------------------------------------
    def parse_version(self, response: Response):
        stats = self.crawler.stats
        try:
            stamp = orjson.loads(response.body).get("dataTimestamp")
        except (orjson.JSONDecodeError, AttributeError):
            stamp = None
        if not isinstance(stamp, str) or not stamp.strip():
            stats.inc_value("ctgov/version_unreadable")
            logger.warning("%s gives no dataTimestamp: cannot tell whether the registry changed", response.url)
        else:
            self.data_timestamp = stamp.strip()
            stats.set_value("ctgov/data_timestamp", self.data_timestamp)
            if self.incremental:
                with open_store(self.settings) as store:
                    last = store.get_watermark(self.data_timestamp_key())
                if last == self.data_timestamp:
                    self.skipped = (f"the registry's data (dataTimestamp {last}) has not changed since the "
                                    "last good run")
                    self.searched = False
                    stats.set_value("ctgov/skipped_unchanged", True)
                    logger.info("nothing to do: %s", self.skipped)
                    return
        yield from self.search_requests()

    def version_failed(self, failure):
        """No data version: the run cannot tell, so it searches."""
        try:
            self.crawler.stats.inc_value("ctgov/version_unavailable")
            logger.warning("cannot read the registry's data version (%s): searching anyway", failure.value)
            yield from self.search_requests()
        finally:
            self.request_finished(failure.request)

    def parse_one(self, response: Response):
        yield self.record_or_reject(response, parse_study_response)

    def parse_page(self, response: Response) -> Iterator:
        stats = self.crawler.stats
        stats.inc_value("ctgov/pages")
        fetched = fetched_at(response)
        self.body_cut_short(response)  # counted; the complete studies are still read below
        number = response.meta.get("ctgov_page", 1)
        try:
            page = orjson.loads(response.body)
            studies, whole = page.get("studies") or [], True
        except orjson.JSONDecodeError as exc:
            studies, whole = salvage_studies(response.text)
            page = None
            stats.inc_value("ctgov/truncated_pages")
            stats.inc_value("harvester/truncated_pages")
            logger.error("truncated or malformed page %s (%s): kept %d complete studies",
                         response.url, exc, len(studies))
            yield Reject(site=SITE, url=response.url, stage="parse",
                         error=f"malformed JSON page: {exc}; {len(studies)} complete studies kept",
                         payload=response.body)
        if page is not None and number == 1 and isinstance(page.get("totalCount"), int):
            self.ledger.set("search_expected", page["totalCount"])
        listed = [n for n in (normalize_nct(_get(s, "protocolSection.identificationModule.nctId"))
                              for s in studies) if n]
        self.ledger.add("listed", listed)  # before the page counts as done (JOBDIR)
        stats.inc_value("ctgov/search/listed", len(listed))
        for i, study in enumerate(studies):
            studies[i] = None  # let each study's objects go once it is read: a page holds a thousand
            try:
                record = parse_study(study, fetched=fetched)
            except Exception as exc:
                stats.inc_value(f"harvester/parse_error/{SITE}")
                nct = _get(study, "protocolSection.identificationModule.nctId")
                yield Reject(site=SITE, url=study_url(nct) if nct else response.url, stage="parse",
                             error=f"{type(exc).__name__}: {exc}", payload=orjson.dumps(study))
                continue
            yield RecordWithBody(record, orjson.dumps(study))
        token = page.get("nextPageToken") if page else None
        # The page number travels with the request, and the next URL is this
        # page's URL with the new token: a resumed crawl (JOBDIR) or another
        # worker on a shared queue continues the same search, whatever its
        # own arguments.
        if token and (self.max_pages is None or number < self.max_pages):
            yield scrapy.Request(next_page_url(response.url, token), callback=self.parse_page,
                                 errback=self.on_error, meta={"ctgov_page": number + 1, "ctgov_kind": "search"})
        elif token:
            logger.info("stopping after %d pages (max_pages); more results remain", number)
            stats.set_value("ctgov/stopped_at_max_pages", True)
        elif page is not None:
            self.ledger.set("search_complete", 1)  # the last page, read whole

    def parse_ids(self, response: Response) -> Iterator:
        """A page of the ID listing (`fields=NCTId`): its NCT IDs go to the ledger."""
        stats = self.crawler.stats
        stats.inc_value("ctgov/id_listing/pages")
        number = response.meta.get("ctgov_page", 1)
        try:
            page = orjson.loads(response.body)
            studies = page["studies"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            # the listing cannot be trusted whole: no removal is decided from it
            stats.inc_value("ctgov/id_listing/unreadable")
            stats.inc_value("harvester/truncated_pages")
            logger.error("unreadable ID listing page %s (%s): no removals this run", response.url, exc)
            return
        if number == 1 and isinstance(page.get("totalCount"), int):
            self.ledger.set("ids_expected", page["totalCount"])
        ids = [n for n in (normalize_nct(_get(s, "protocolSection.identificationModule.nctId"))
                           for s in studies or []) if n]
        self.ledger.add("ids", ids)
        stats.inc_value("ctgov/id_listing/ids", len(ids))
        token = page.get("nextPageToken")
        if token:
            yield scrapy.Request(next_page_url(response.url, token), callback=self.parse_ids,
                                 errback=self.on_error, meta={"ctgov_page": number + 1, "ctgov_kind": "ids"})
        else:
            self.ledger.set("ids_complete", 1)

    def parse_check(self, response: Response):
        """A study the registry's listing did not name, or one it named that
        the store lacked: fetched by its ID to decide."""
        check = response.meta.get("ctgov_check")
        item = self.record_or_reject(response, parse_study_response)
        if isinstance(item, RecordWithBody):
            self.ledger.add("still_served" if check == "unlisted" else "fetched", [item.record.nct_id])
        yield item

    def check_failed(self, failure):
        status = getattr(getattr(failure.value, "response", None), "status", None)
        if status in GONE_STATUSES and failure.request.meta.get("ctgov_check") == "unlisted":
            self.ledger.add("removed", [failure.request.meta["ctgov_nct"]])
        yield from self.on_error(failure)

    # -- completeness -------------------------------------------------------------
    def item_stored(self, item, response=None, spider=None):
        """A record from a search page passed the pipelines (it is stored)."""
        if response is not None and response.meta.get("ctgov_kind") == "search":
            nct = item.get("nct_id") if isinstance(item, dict) else getattr(item, "nct_id", None)
            if nct:
                self.ledger.add("stored", [nct])

    def on_idle(self, spider=None):
        """Once the search and the ID listing are done: compare the registry's
        IDs with the store's, and fetch by ID each study to decide (a 404
        marks it removed; never deleted)."""
        if self.registry_check is not None or self.skipped or self.ledger is None:
            return
        from pipelines.store import flush_store

        self.crawler.signals.send_catch_log(signal=flush_store)  # the store as the crawl left it
        requests = self.check_registry()
        if requests:
            for request in requests:
                self.crawler.engine.crawl(request)
            raise DontCloseSpider

    def registry_listing(self) -> tuple[str, set[str], int | None] | None:
        """(what listed them, the registry's NCT IDs, the count it announced),
        when this run read a whole listing of the registry."""
        ledger = self.ledger
        if self.whole_registry and self.searched and not self.updated_since and ledger.value("search_complete") \
                and not self.crawler.stats.get_value("ctgov/stopped_at_max_pages"):
            expected = ledger.value("search_expected")
            return "search", ledger.get("listed"), int(expected) if expected is not None else None
        if ledger.value("ids_complete"):
            expected = ledger.value("ids_expected")
            return "id listing", ledger.get("ids"), int(expected) if expected is not None else None
        return None

    def check_registry(self) -> list[scrapy.Request]:
        found = self.registry_listing()
        if found is None:
            self.registry_check = {}
            return []
        source, listing, expected = found
        stats = self.crawler.stats
        check = self.registry_check = {"listed_by": source, "listed": len(listing), "expected": expected}
        if expected is not None and len(listing) < expected:
            check["refused"] = (f"the {source} named {len(listing)} of the {expected} studies the registry "
                                "counted: no removals decided from it")
            stats.set_value("harvester/listing_refused", 1)
            logger.error("%s", check["refused"])
            return []
        with open_store(self.settings) as store:
            live = store.live_nct_ids(SITE)
        unlisted, missing = sorted(live - listing), sorted(listing - live)
        check.update(store_before=len(live), unlisted=len(unlisted), missing_before=len(missing))
        stats.set_value("ctgov/registry/unlisted", len(unlisted))
        stats.set_value("ctgov/registry/missing", len(missing))
        most = self.settings.getint("HARVEST_CTGOV_MAX_REMOVALS", 5000)
        if len(unlisted) > most:
            check["refused"] = (f"{len(unlisted)} stored studies are not in the {source}, more than "
                                f"HARVEST_CTGOV_MAX_REMOVALS ({most}): none marked removed")
            stats.set_value("harvester/listing_refused", 1)
            logger.error("%s", check["refused"])
            unlisted = []
        fetch_max = self.settings.getint("HARVEST_CTGOV_MAX_MISSING_FETCHES", 5000)
        if len(missing) > fetch_max:
            check["missing_not_fetched"] = (f"{len(missing)} listed studies are not in the store, more than "
                                            f"HARVEST_CTGOV_MAX_MISSING_FETCHES ({fetch_max}): run a full search")
            logger.warning("%s", check["missing_not_fetched"])
            missing = []
        if unlisted or missing:
            logger.info("the %s names %d studies; the store has %d of them and %d others: fetching those %d "
                        "and the %d missing by ID", source, len(listing), len(live) - len(unlisted),
                        len(unlisted), len(unlisted), len(missing))
        requests = []
        for nct, kind in [(n, "unlisted") for n in unlisted] + [(n, "missing") for n in missing]:
            request = self.study_request(nct, ctgov_check=kind, ctgov_nct=nct)
            requests.append(request.replace(callback=self.parse_check, errback=self.check_failed))
        return requests

    def completeness(self) -> dict | None:
        """Expected vs stored, with the missing NCT IDs; sets
        `harvester/incomplete` (a failure reason) when studies are missing."""
        if self.skipped:
            return {"skipped": self.skipped, "data_timestamp": self.data_timestamp}
        if not self.searched:
            return None
        ledger, stats = self.ledger, self.crawler.stats
        most = self.settings.getint("HARVEST_REPORT_MAX_IDS", 1000)
        expected = ledger.value("search_expected")
        expected = int(expected) if expected is not None else None
        listed, stored = ledger.get("listed"), ledger.get("stored")
        missing = sorted(listed - stored)
        result = {"expected": expected, "listed": len(listed), "stored": len(stored & listed),
                  "missing": missing[:most], "missing_count": len(missing),
                  "data_timestamp": self.data_timestamp}
        problems = []
        if missing:
            problems.append(f"{len(missing)} listed studies not stored")
        if expected is None:
            result["note"] = "the API gave no totalCount: expected unknown"
        elif stats.get_value("ctgov/stopped_at_max_pages"):
            result["note"] = "stopped at max_pages: only part of the search was asked for"
        elif expected > len(listed):
            result["unlisted"] = expected - len(listed)
            problems.append(f"the registry counted {expected} studies, its pages listed {len(listed)}")
        check = self.registry_check
        if check:
            registry = dict(check)
            for kind in ("removed", "still_served", "fetched"):
                ids = sorted(ledger.get(kind))
                registry[kind] = ids[:most]
                registry[f"{kind}_count"] = len(ids)
            if "refused" not in check:
                with open_store(self.settings) as store:
                    live = store.live_nct_ids(SITE)
                listing = self.registry_listing()[1]
                still_missing = sorted(listing - live)
                registry.update(stored=len(live & listing), missing=still_missing[:most],
                                missing_count=len(still_missing), extra=len(live - listing))
                if still_missing:
                    problems.append(f"{len(still_missing)} studies of the registry not in the store")
            else:
                problems.append(check["refused"])
            result["registry"] = registry
        shortfall = max(result.get("unlisted", 0) + len(missing),
                        (result.get("registry") or {}).get("missing_count", 0))
        if shortfall:
            stats.set_value("harvester/incomplete", shortfall)
        result["complete"] = not problems
        result["problems"] = problems
        return result

    def closed(self, reason: str) -> None:
        try:
            self.completeness_result = self.completeness()
        except Exception as exc:  # the store is gone: the run report still gets written
            logger.error("cannot judge completeness: %s", exc)
            self.completeness_result = {"error": str(exc), "complete": False}
            self.crawler.stats.set_value("harvester/incomplete", -1)
        super().closed(reason)
        if self.ledger is not None:
            self.ledger.close()

    def update_watermark(self, reason: str) -> None:
        if self.skipped:
            key = self.watermark_key()
            with open_store(self.settings) as store:
                old = store.get_watermark(key)
            self.watermark_result = {"key": key, "set": False, "value": old, "why": self.skipped}
            return
        super().update_watermark(reason)
        if not (self.watermark_result or {}).get("set"):
            return
        with open_store(self.settings) as store:
            if self.data_timestamp:
                store.set_watermark(self.data_timestamp_key(), self.data_timestamp)
            if self.registry_check and "refused" not in self.registry_check:
                store.set_watermark(self.id_listing_key(), self.watermark_result["value"])


def next_page_url(url: str, token: str) -> str:
    """The next page of a search: the same URL with the new token (countTotal
    is only for the first page)."""
    return url_query_cleaner(add_or_replace_parameter(url, "pageToken", token), ["countTotal"], remove=True)
