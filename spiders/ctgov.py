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

Every SourceRecord field comes from one method of `CtgovStudyPage` below,
named after the field: where in the study object it reads
(`protocolSection`, `derivedSection`, `resultsSection`) and its converter.
Fields whose printed value differs from the normalized one keep it in
`raw`. The full study JSON goes to the store with the record. A new field is
one method there and its test.

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
import re
from datetime import date
from typing import Any, Iterator, get_args
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
from harvester.normalize.ids import normalize_nct
from harvester.normalize.phases import normalize_phases
from harvester.normalize.sex import normalize_sex
from harvester.normalize.status import normalize_status
from harvester.normalize.study_type import normalize_study_type
from harvester.normalize.text import clean_prose, clean_text, clean_texts, unescape_ctgov
from harvester.sites import Site
from harvester.store import open_store
from items import (ArmGroup, Contact, Enrollment, Identifier, Intervention, IpdSharing, Location, MeshTerm, Outcome,
                   Oversight, Phase, RecordWithBody, Reference, Reject, ResponsibleParty, ResultsSummary, Sex,
                   SourceRecord, Sponsor, Status, StudyType, TrialDate)
from items.records import (Allocation, InterventionModel, Masking, ObservationalModel, PrimaryPurpose, StdAge,
                           TimePerspective, WhoMasked)
from spiders.base import GONE_STATUSES, HarvestSpider, fetched_at, nct_arg, request_meta, truthy
from spiders.pages import NotAStudyPage, StudyPage, Unmapped, field, served_content_type

logger = logging.getLogger(__name__)

ORIGIN = "https://clinicaltrials.gov"
API = f"{ORIGIN}/api/v2/studies"
#: the largest page the API gives (it coerces a larger pageSize down to this)
MAX_PAGE_SIZE = 1000


def study_url(nct_id: str) -> str:
    """The one URL a CT.gov record is stored under, however it was fetched."""
    return f"{API}/{nct_id}"


# --- converters: printed value -> normalized value (or Unmapped) ------------------
class _Remembered(dict):
    """`fn(key)`, remembered (emptied when it holds `most`): a hit is a
    plain dict lookup, cheaper than `lru_cache`'s call and reordering."""

    __slots__ = ("fn", "most")

    def __init__(self, fn, most: int):
        super().__init__()
        self.fn, self.most = fn, most

    cache_clear = dict.clear  # what lru_cache calls it

    def __missing__(self, key):
        if len(self) >= self.most:
            self.clear()
        value = self[key] = self.fn(key)
        return value


#: clean_text of a string, remembered: site names, cities, countries, roles,
#: statuses and MeSH terms repeat across locations and studies
_CLEAN = _Remembered(clean_text, 200_000)


def _text(v):
    """clean_text, remembered for strings (`_CLEAN`)."""
    if type(v) is str:
        return _CLEAN[v]
    return None if v is None else clean_text(v)


# Dates ("2015-08-27") and ages ("18 Years") are a few thousand printed
# forms across the registry, each read several times a study.
_DATES = _Remembered(normalize_date, 20_000)
_AGES = _Remembered(parse_age, 2_000)


def _date_text(v):
    """normalize_date, remembered for strings."""
    return _DATES[v] if type(v) is str else normalize_date(v)


def _age(v):
    """parse_age, remembered for strings."""
    return _AGES[v] if type(v) is str else parse_age(v)


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
        if type(v) is list and vocab.issuperset(v):
            return v[:]  # what CT.gov prints: each value in the vocabulary
        values = v if isinstance(v, list) else [v]
        unknown = [x for x in values if x not in vocab]
        known = [x for x in values if x in vocab]
        return Unmapped(known, f"{what} {unknown!r} not in the CT.gov vocabulary") if unknown else known
    return convert


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
    date = _date_text(v.get("date"))
    if date is None:
        return None
    kind = v.get("type")
    return {"date": date, "type": kind if kind in ("ACTUAL", "ESTIMATED") else None}


def _enrollment(v):
    if not isinstance(v, dict) or v.get("count") is None and v.get("type") is None:
        return None
    return {"count": v.get("count"), "type": v.get("type") if v.get("type") in ("ACTUAL", "ESTIMATED") else None}


def _sponsor(v):
    name = clean_text(v.get("name")) if isinstance(v, dict) else None
    return {"name": name, "class": v.get("class")} if name else None


def _sponsors(v):
    out = []
    for x in v or ():
        sponsor = _sponsor(x)
        if sponsor:
            out.append(sponsor)
    return out


def _interventions(v):
    out = []
    for x in v or ():
        name = clean_text(x.get("name")) if isinstance(x, dict) else None
        if name:
            out.append({"type": x.get("type"), "name": name, "description": _prose(x.get("description")),
                        "other_names": clean_texts(x.get("otherNames")),
                        "arm_group_labels": clean_texts(x.get("armGroupLabels"))})
    return out


def _arm_groups(v):
    out = []
    for x in v or ():
        label = clean_text(x.get("label")) if isinstance(x, dict) else None
        if label:
            out.append({"label": label, "type": x.get("type"), "description": _prose(x.get("description")),
                        "intervention_names": clean_texts(x.get("interventionNames"))})
    return out


_COUNTRY_CODES = _Remembered(country_code, 4096)  # a printed country name -> its ISO code


def _contact(x: dict) -> dict:
    g = x.get
    return {"name": _text(g("name")), "role": g("role"), "affiliation": _text(g("affiliation")),
            "phone": _text(g("phone")), "phone_ext": _text(g("phoneExt")), "email": _text(g("email"))}


def _contacts(v):
    return [_contact(x) for x in v or () if isinstance(x, dict)]


def _geo(v):
    if not isinstance(v, dict):
        return None
    lat, lon = v.get("lat"), v.get("lon")
    if type(lat) is float and type(lon) is float:  # what the API prints, tested without a tuple of types
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            return None
        # The API's own {"lat", "lon"} is what validation reads: no copy of
        # it for each of the thousands of sites (a key it may add one day is
        # left out by the copy, as before)
        return v if len(v) == 2 else {"lat": lat, "lon": lon}
    if isinstance(lat, (int, float)) and isinstance(lon, (int, float)) and -90 <= lat <= 90 and -180 <= lon <= 180:
        return {"lat": lat, "lon": lon}
    return None


def _locations(v):
    # The largest list of most records (hundreds of sites): `_text` inlined
    # for the strings it nearly always gets, and None (state, zip and status
    # are absent from many sites) tested first.
    out = []
    clean, codes = _CLEAN, _COUNTRY_CODES
    for x in v or ():
        if not isinstance(x, dict):
            continue
        g = x.get
        facility, city, state, zip_, country, status, geo, contacts = (
            g("facility"), g("city"), g("state"), g("zip"), g("country"), g("status"), g("geoPoint"), g("contacts"))
        country = clean[country] if type(country) is str else _text(country)
        out.append({"facility": clean[facility] if type(facility) is str else _text(facility),
                    "city": clean[city] if type(city) is str else _text(city),
                    "state": None if state is None else clean[state] if type(state) is str else clean_text(state),
                    "zip": None if zip_ is None else clean[zip_] if type(zip_) is str else clean_text(zip_),
                    "country": country, "country_code": codes[country] if country else None,
                    "status": None if status is None else clean[status] if type(status) is str else clean_text(status),
                    "geo_point": _geo(geo) if geo is not None else None,
                    "contacts": _contacts(contacts) if contacts else ()})
    return out


def _outcomes(v):
    out = []
    for x in v or ():
        if isinstance(x, dict):
            measure = clean_text(x.get("measure"))
            if measure:
                out.append({"measure": measure, "time_frame": clean_text(x.get("timeFrame")),
                            "description": clean_prose(unescape_ctgov(x.get("description")))})
    return out


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
    for x in v or ():
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
           "info_types": [t for t in v.get("infoTypes") or () if isinstance(t, str)],
           "time_frame": _prose(v.get("timeFrame")), "access_criteria": _prose(v.get("accessCriteria")),
           "url": clean_text(v.get("url"))}
    return out if out["sharing"] or out["description"] else None


def _mesh(v):
    # ~13 terms a study with their ancestors: `_text` inlined
    out = []
    clean = _CLEAN
    for x in v or ():
        if isinstance(x, dict):
            mesh_id, term = x.get("id"), x.get("term")
            if mesh_id and isinstance(mesh_id, str):
                out.append({"id": mesh_id, "term": clean[term] if type(term) is str else _text(term)})
    return out


def _ncts(v):
    return [n for n in (normalize_nct(x) for x in v or ()) if n]


def _bool(v):
    return v if isinstance(v, bool) else None


def _prose(v):
    # half the calls are for a text the study does not have: None at once
    return None if v is None else clean_prose(unescape_ctgov(v))


# --- the results section: a summary per group, pure ------------------------------
def _flow(pf: Any) -> list[dict]:
    """Per participant-flow group: how many started (the STARTED milestone of
    the first period the group has participants in) and completed (the
    COMPLETED milestone of its last such period). Groups of a crossover or a
    later phase start in a later period, not in the first."""
    if not isinstance(pf, dict):
        return []

    def milestone(period: dict, kind: str) -> dict[str, int | None]:
        for m in period.get("milestones") or ():
            if isinstance(m, dict) and m.get("type") == kind:
                return {a.get("groupId"): _int(a.get("numSubjects"))
                        for a in m.get("achievements") or () if isinstance(a, dict)}
        return {}
    periods = [(milestone(p, "STARTED"), milestone(p, "COMPLETED"))
               for p in pf.get("periods") or () if isinstance(p, dict)]
    out = []
    for g in pf.get("groups") or ():
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
            for g in ae.get("eventGroups") or () if isinstance(g, dict) and g.get("id")]


def _measure_values(m: dict) -> list[dict]:
    titles = {g.get("id"): _text(g.get("title")) for g in m.get("groups") or () if isinstance(g, dict)}
    out = []
    clean = _CLEAN
    for cls in m.get("classes") or ():
        if not isinstance(cls, dict):
            continue
        class_title = _text(cls.get("title"))
        for cat in cls.get("categories") or ():
            if not isinstance(cat, dict):
                continue
            category = _text(cat.get("title"))
            for x in cat.get("measurements") or ():
                if not isinstance(x, dict):
                    continue
                g = x.get
                gid = g("groupId")
                if not gid:
                    continue
                # the most numerous objects of a record with results: `_text`
                # inlined, and the parts most measurements lack (None) tested first
                value, spread, lower, upper, comment = (
                    g("value"), g("spread"), g("lowerLimit"), g("upperLimit"), g("comment"))
                out.append({"group_id": gid, "group_title": titles.get(gid), "class_title": class_title,
                            "category": category,
                            "value": clean[value] if type(value) is str else _text(value),
                            "spread": None if spread is None else clean[spread] if type(spread) is str
                            else clean_text(spread),
                            "lower_limit": None if lower is None else clean[lower] if type(lower) is str
                            else clean_text(lower),
                            "upper_limit": None if upper is None else clean[upper] if type(upper) is str
                            else clean_text(upper),
                            "comment": None if comment is None else clean[comment] if type(comment) is str
                            else clean_text(comment)})
    return out


def _measures(om: Any) -> list[dict]:
    if not isinstance(om, dict):
        return []
    out = []
    for m in om.get("outcomeMeasures") or ():
        title = clean_text(m.get("title")) if isinstance(m, dict) else None
        if title:
            out.append({"type": m.get("type"), "title": title, "unit": _text(m.get("unitOfMeasure")),
                        "time_frame": clean_text(m.get("timeFrame")), "param_type": m.get("paramType"),
                        "dispersion_type": m.get("dispersionType"), "reporting_status": m.get("reportingStatus"),
                        "values": _measure_values(m)})
    return out


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


# --- the page object -----------------------------------------------------------------
_ALLOCATION = _enum(Allocation, "allocation")
_INTERVENTION_MODEL = _enum(InterventionModel, "intervention model")
_PRIMARY_PURPOSE = _enum(PrimaryPurpose, "primary purpose")
_MASKING = _enum(Masking, "masking")
_WHO_MASKED = _enum_list(WhoMasked, "who masked")
_OBSERVATIONAL_MODEL = _enum(ObservationalModel, "observational model")
_TIME_PERSPECTIVE = _enum(TimePerspective, "time perspective")
_STD_AGES = _enum_list(StdAge, "standard age")

_SECONDARY_TYPES = {"EUDRACT_NUMBER": "EUDRACT", "CTIS": "CTIS"}


def _get(obj: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(obj, dict):  # a missing module (None), or a value that is not an object
            return None
        obj = obj.get(key)
    return obj


_NO_OBJECT: dict = {}  # read only


def _object(value: Any) -> dict:
    """`value` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else _NO_OBJECT


def _study_nct(study: Any) -> Any:
    """The nctId a study object prints (unchecked), for listings."""
    return _get(study, ("protocolSection", "identificationModule", "nctId"))


class CtgovStudyPage(StudyPage):
    """One API v2 study object (`GET /api/v2/studies/{NCT}`, or one entry of a
    search page). Each field method names where in the study it reads (its
    docstring the whole path; its code the module, e.g. `self.status_module`
    for protocolSection.statusModule, and the key) and its converter; printed
    values that differ from the normalized ones are kept in raw."""

    def __init__(self, study: dict, url: str | None = None, fetched=None, body: bytes | None = None,
                 content_type: str | None = "application/json"):
        self.study = study if isinstance(study, dict) else {}
        # the body is the study's JSON: as served (`from_response`), or one
        # study of a search page serialized on its own (UTF-8 JSON)
        self.content_type = content_type
        # The modules the fields read, looked up once per study rather than
        # walked from the root by each of ~70 fields; {} where the study has
        # none (or a value that is not an object), so a field reads None.
        protocol = self.protocol_section = _object(self.study.get("protocolSection"))
        self.identification_module = _object(protocol.get("identificationModule"))
        self.status_module = _object(protocol.get("statusModule"))
        self.sponsor_collaborators_module = _object(protocol.get("sponsorCollaboratorsModule"))
        self.description_module = _object(protocol.get("descriptionModule"))
        self.conditions_module = _object(protocol.get("conditionsModule"))
        self.design_module = design = _object(protocol.get("designModule"))
        self.design_info = info = _object(design.get("designInfo"))  # protocolSection.designModule.designInfo
        self.masking_info = _object(info.get("maskingInfo"))  # ... .designInfo.maskingInfo
        self.bio_spec = _object(design.get("bioSpec"))  # protocolSection.designModule.bioSpec
        self.arms_interventions_module = _object(protocol.get("armsInterventionsModule"))
        self.outcomes_module = _object(protocol.get("outcomesModule"))
        self.eligibility_module = _object(protocol.get("eligibilityModule"))
        self.contacts_locations_module = _object(protocol.get("contactsLocationsModule"))
        self.references_module = _object(protocol.get("referencesModule"))
        derived = _object(self.study.get("derivedSection"))
        self.condition_browse_module = _object(derived.get("conditionBrowseModule"))
        self.intervention_browse_module = _object(derived.get("interventionBrowseModule"))
        nct = normalize_nct(self.identification_module.get("nctId"))
        super().__init__(url or (study_url(nct) if nct else None), fetched, body)

    @classmethod
    def from_response(cls, response: Response) -> "CtgovStudyPage":
        study = json.loads(response.text)
        if not isinstance(study, dict) or not isinstance(study.get("protocolSection"), dict):
            raise NotAStudyPage(study_shape_error(study))
        url = request_meta(response).get("store_url")
        return cls(study, url=url, fetched=fetched_at(response), body=response.body,
                   content_type=served_content_type(response))

    def check(self) -> None:
        if not isinstance(self.study.get("protocolSection"), dict):
            raise NotAStudyPage("study has no protocolSection")

    @field
    def nct_id(self) -> str | None:
        """protocolSection.identificationModule.nctId"""
        printed = self.identification_module.get("nctId")
        nct = self.read(normalize_nct, printed, keep_printed=True)
        if nct is None:
            raise NotAStudyPage(f"study without a valid nctId ({printed!r})")
        return nct

    @field
    def nct_id_aliases(self) -> list[str]:
        """protocolSection.identificationModule.nctIdAliases"""
        return _ncts(self.identification_module.get("nctIdAliases"))

    @field
    def brief_title(self) -> str | None:
        """protocolSection.identificationModule.briefTitle"""
        return clean_text(self.identification_module.get("briefTitle"))

    @field
    def official_title(self) -> str | None:
        """protocolSection.identificationModule.officialTitle"""
        return clean_text(self.identification_module.get("officialTitle"))

    @field
    def acronym(self) -> str | None:
        """protocolSection.identificationModule.acronym"""
        return clean_text(self.identification_module.get("acronym"))

    @field
    def overall_status(self) -> Status | None:
        """protocolSection.statusModule.overallStatus"""
        return self.read(_status, self.status_module.get("overallStatus"), keep_printed=True)

    @field
    def last_known_status(self) -> Status | None:
        """protocolSection.statusModule.lastKnownStatus"""
        return self.read(_known_status, self.status_module.get("lastKnownStatus"))

    @field
    def why_stopped(self) -> str | None:
        """protocolSection.statusModule.whyStopped"""
        return clean_text(self.status_module.get("whyStopped"))

    @field
    def status_verified_date(self) -> str | None:
        """protocolSection.statusModule.statusVerifiedDate"""
        return _date_text(self.status_module.get("statusVerifiedDate"))

    @field
    def phases(self) -> list[Phase]:
        """protocolSection.designModule.phases"""
        return self.read(_phases, self.design_module.get("phases"), keep_printed=True)

    @field
    def study_type(self) -> StudyType | None:
        """protocolSection.designModule.studyType"""
        return self.read(normalize_study_type, self.design_module.get("studyType"), keep_printed=True)

    @field
    def allocation(self) -> Allocation | None:
        """protocolSection.designModule.designInfo.allocation"""
        return self.read(_ALLOCATION, self.design_info.get("allocation"))

    @field
    def intervention_model(self) -> InterventionModel | None:
        """protocolSection.designModule.designInfo.interventionModel"""
        return self.read(_INTERVENTION_MODEL, self.design_info.get("interventionModel"))

    @field
    def intervention_model_description(self) -> str | None:
        """protocolSection.designModule.designInfo.interventionModelDescription"""
        return _prose(self.design_info.get("interventionModelDescription"))

    @field
    def primary_purpose(self) -> PrimaryPurpose | None:
        """protocolSection.designModule.designInfo.primaryPurpose"""
        return self.read(_PRIMARY_PURPOSE, self.design_info.get("primaryPurpose"))

    @field
    def masking(self) -> Masking | None:
        """protocolSection.designModule.designInfo.maskingInfo.masking"""
        return self.read(_MASKING, self.masking_info.get("masking"))

    @field
    def who_masked(self) -> list[WhoMasked]:
        """protocolSection.designModule.designInfo.maskingInfo.whoMasked"""
        return self.read(_WHO_MASKED, self.masking_info.get("whoMasked"))

    @field
    def masking_description(self) -> str | None:
        """protocolSection.designModule.designInfo.maskingInfo.maskingDescription"""
        return _prose(self.masking_info.get("maskingDescription"))

    @field
    def observational_model(self) -> ObservationalModel | None:
        """protocolSection.designModule.designInfo.observationalModel"""
        return self.read(_OBSERVATIONAL_MODEL, self.design_info.get("observationalModel"))

    @field
    def time_perspective(self) -> TimePerspective | None:
        """protocolSection.designModule.designInfo.timePerspective"""
        return self.read(_TIME_PERSPECTIVE, self.design_info.get("timePerspective"))

    @field
    def target_duration(self) -> str | None:
        """protocolSection.designModule.targetDuration"""
        return clean_text(self.design_module.get("targetDuration"))

    @field
    def bio_spec_retention(self) -> str | None:
        """protocolSection.designModule.bioSpec.retention"""
        return clean_text(self.bio_spec.get("retention"))

    @field
    def bio_spec_description(self) -> str | None:
        """protocolSection.designModule.bioSpec.description"""
        return _prose(self.bio_spec.get("description"))

    @field
    def enrollment(self) -> Enrollment | None:
        """protocolSection.designModule.enrollmentInfo"""
        return _enrollment(self.design_module.get("enrollmentInfo"))

    @field
    def conditions(self) -> list[str]:
        """protocolSection.conditionsModule.conditions"""
        return clean_texts(self.conditions_module.get("conditions"))

    @field
    def keywords(self) -> list[str]:
        """protocolSection.conditionsModule.keywords"""
        return clean_texts(self.conditions_module.get("keywords"))

    @field
    def condition_mesh(self) -> list[MeshTerm]:
        """derivedSection.conditionBrowseModule.meshes"""
        return _mesh(self.condition_browse_module.get("meshes"))

    @field
    def condition_mesh_ancestors(self) -> list[MeshTerm]:
        """derivedSection.conditionBrowseModule.ancestors"""
        return _mesh(self.condition_browse_module.get("ancestors"))

    @field
    def arm_groups(self) -> list[ArmGroup]:
        """protocolSection.armsInterventionsModule.armGroups"""
        return _arm_groups(self.arms_interventions_module.get("armGroups"))

    @field
    def interventions(self) -> list[Intervention]:
        """protocolSection.armsInterventionsModule.interventions"""
        return _interventions(self.arms_interventions_module.get("interventions"))

    @field
    def intervention_mesh(self) -> list[MeshTerm]:
        """derivedSection.interventionBrowseModule.meshes"""
        return _mesh(self.intervention_browse_module.get("meshes"))

    @field
    def intervention_mesh_ancestors(self) -> list[MeshTerm]:
        """derivedSection.interventionBrowseModule.ancestors"""
        return _mesh(self.intervention_browse_module.get("ancestors"))

    @field
    def lead_sponsor(self) -> Sponsor | None:
        """protocolSection.sponsorCollaboratorsModule.leadSponsor"""
        return _sponsor(self.sponsor_collaborators_module.get("leadSponsor"))

    @field
    def collaborators(self) -> list[Sponsor]:
        """protocolSection.sponsorCollaboratorsModule.collaborators"""
        return _sponsors(self.sponsor_collaborators_module.get("collaborators"))

    @field
    def responsible_party(self) -> ResponsibleParty | None:
        """protocolSection.sponsorCollaboratorsModule.responsibleParty"""
        return _responsible_party(self.sponsor_collaborators_module.get("responsibleParty"))

    @field
    def oversight(self) -> Oversight | None:
        """protocolSection.oversightModule"""
        return _oversight(self.protocol_section.get("oversightModule"))

    @field
    def start_date(self) -> TrialDate | None:
        """protocolSection.statusModule.startDateStruct"""
        return self.read(_date, self.status_module.get("startDateStruct"), keep_printed=True)

    @field
    def primary_completion_date(self) -> TrialDate | None:
        """protocolSection.statusModule.primaryCompletionDateStruct"""
        return self.read(_date, self.status_module.get("primaryCompletionDateStruct"), keep_printed=True)

    @field
    def completion_date(self) -> TrialDate | None:
        """protocolSection.statusModule.completionDateStruct"""
        return self.read(_date, self.status_module.get("completionDateStruct"), keep_printed=True)

    @field
    def study_first_posted(self) -> TrialDate | None:
        """protocolSection.statusModule.studyFirstPostDateStruct"""
        return _date(self.status_module.get("studyFirstPostDateStruct"))

    @field
    def results_first_posted(self) -> TrialDate | None:
        """protocolSection.statusModule.resultsFirstPostDateStruct"""
        return _date(self.status_module.get("resultsFirstPostDateStruct"))

    @field
    def last_update_posted(self) -> str | None:
        """protocolSection.statusModule.lastUpdatePostDateStruct.date"""
        return self.read(_date_text, _get(self.status_module, ("lastUpdatePostDateStruct", "date")), keep_printed=True)

    @field
    def brief_summary(self) -> str | None:
        """protocolSection.descriptionModule.briefSummary"""
        return _prose(self.description_module.get("briefSummary"))

    @field
    def detailed_description(self) -> str | None:
        """protocolSection.descriptionModule.detailedDescription"""
        return _prose(self.description_module.get("detailedDescription"))

    @field
    def central_contacts(self) -> list[Contact]:
        """protocolSection.contactsLocationsModule.centralContacts"""
        return _contacts(self.contacts_locations_module.get("centralContacts"))

    @field
    def overall_officials(self) -> list[Contact]:
        """protocolSection.contactsLocationsModule.overallOfficials"""
        return _contacts(self.contacts_locations_module.get("overallOfficials"))

    @field
    def locations(self) -> list[Location]:
        """protocolSection.contactsLocationsModule.locations"""
        return _locations(self.contacts_locations_module.get("locations"))

    @field
    def primary_outcomes(self) -> list[Outcome]:
        """protocolSection.outcomesModule.primaryOutcomes"""
        return _outcomes(self.outcomes_module.get("primaryOutcomes"))

    @field
    def secondary_outcomes(self) -> list[Outcome]:
        """protocolSection.outcomesModule.secondaryOutcomes"""
        return _outcomes(self.outcomes_module.get("secondaryOutcomes"))

    @field
    def other_outcomes(self) -> list[Outcome]:
        """protocolSection.outcomesModule.otherOutcomes"""
        return _outcomes(self.outcomes_module.get("otherOutcomes"))

    @field
    def references(self) -> list[Reference]:
        """protocolSection.referencesModule.references"""
        return _references(self.references_module.get("references"))

    @field
    def ipd_sharing(self) -> IpdSharing | None:
        """protocolSection.ipdSharingStatementModule"""
        return _ipd(self.protocol_section.get("ipdSharingStatementModule"))

    @field
    def has_results(self) -> bool | None:
        """hasResults"""
        return _bool(self.study.get("hasResults"))

    @field
    def results(self) -> ResultsSummary | None:
        """resultsSection"""
        return results_summary(self.study.get("resultsSection"))

    @field
    def sex(self) -> Sex | None:
        """protocolSection.eligibilityModule.sex"""
        return self.read(normalize_sex, self.eligibility_module.get("sex"), keep_printed=True)

    @field
    def min_age_years(self) -> float | None:
        """protocolSection.eligibilityModule.minimumAge"""
        return self.read(_age, self.eligibility_module.get("minimumAge"), keep_printed=True)

    @field
    def max_age_years(self) -> float | None:
        """protocolSection.eligibilityModule.maximumAge"""
        return self.read(_age, self.eligibility_module.get("maximumAge"), keep_printed=True)

    @field
    def healthy_volunteers(self) -> bool | None:
        """protocolSection.eligibilityModule.healthyVolunteers"""
        return _bool(self.eligibility_module.get("healthyVolunteers"))

    @field
    def criteria_text(self) -> str | None:
        """protocolSection.eligibilityModule.eligibilityCriteria"""
        return self.read(_prose, self.eligibility_module.get("eligibilityCriteria"), keep_printed=True)

    @field
    def std_ages(self) -> list[StdAge]:
        """protocolSection.eligibilityModule.stdAges"""
        return self.read(_STD_AGES, self.eligibility_module.get("stdAges"))

    @field
    def gender_based(self) -> bool | None:
        """protocolSection.eligibilityModule.genderBased"""
        return _bool(self.eligibility_module.get("genderBased"))

    @field
    def gender_description(self) -> str | None:
        """protocolSection.eligibilityModule.genderDescription"""
        return _prose(self.eligibility_module.get("genderDescription"))

    @field
    def study_population(self) -> str | None:
        """protocolSection.eligibilityModule.studyPopulation"""
        return _prose(self.eligibility_module.get("studyPopulation"))

    @field
    def sampling_method(self) -> str | None:
        """protocolSection.eligibilityModule.samplingMethod"""
        return clean_text(self.eligibility_module.get("samplingMethod"))

    @field
    def inclusion(self) -> list[str]:
        """protocolSection.eligibilityModule.eligibilityCriteria, the inclusion part
        (split_criteria undoes the markdown escapes)."""
        return self._criteria()[0]

    @field
    def exclusion(self) -> list[str]:
        """protocolSection.eligibilityModule.eligibilityCriteria, the exclusion part."""
        return self._criteria()[1]

    def _criteria(self) -> tuple[list[str], list[str]]:
        if not hasattr(self, "_split"):  # one split for both fields
            criteria = self.eligibility_module.get("eligibilityCriteria")
            self._split = split_criteria(criteria) if criteria else ([], [])
        return self._split

    @field
    def age_text(self) -> str | None:
        """protocolSection.eligibilityModule.minimumAge / maximumAge, as printed."""
        lo = self.eligibility_module.get("minimumAge")
        hi = self.eligibility_module.get("maximumAge")
        if not lo and not hi:
            return None
        return f"{lo or 'N/A'} to {hi or 'N/A'}"

    @field
    def secondary_ids(self) -> list[Identifier]:
        """protocolSection.identificationModule: the sponsor's own study ID (ORG)
        and the other IDs the record lists, each screened (placeholders
        dropped, contradicted kinds corrected, both noted)."""
        ident = self.identification_module
        entries = [(_get(ident, ("orgStudyIdInfo", "id")), "ORG", _get(ident, ("organization", "fullName")))]
        for info in ident.get("secondaryIdInfos") or ():
            if isinstance(info, dict):
                # The registry's own type where it has one; an organisation's
                # number that is not the sponsor's own is OTHER.
                entries.append((info.get("id"), _SECONDARY_TYPES.get(info.get("type"), "OTHER"), info.get("domain")))
        return self.screened(entries)


def parse_study(study: dict, url: str | None = None, fetched=None) -> SourceRecord:
    """One API v2 study object -> SourceRecord. Pure."""
    return CtgovStudyPage(study, url=url, fetched=fetched).to_record()


def parse_study_response(response: Response) -> SourceRecord:
    """A `/api/v2/studies/{NCT}` response -> SourceRecord. Pure."""
    return CtgovStudyPage.from_response(response).to_record()


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


SITE = Site(
    name="ctgov",
    page=CtgovStudyPage,
    base=ORIGIN,
    domains=("clinicaltrials.gov",),
    # one request at a time, about one a second: a public service of the NLM
    politeness={"CONCURRENT_REQUESTS_PER_DOMAIN": 1, "DOWNLOAD_DELAY": 1.0,
                # A search page of 1,000 studies: ~37 KB a study on average (the
                # real bodies of the reference set), 1.5 MB for one with results.
                "DOWNLOAD_MAXSIZE": 256 * 1024 * 1024, "DOWNLOAD_WARNSIZE": 128 * 1024 * 1024},
    study_url=re.compile(r"^https?://clinicaltrials\.gov/api/v2/studies/NCT\d{8}$"),
    nct_path="/api/v2/studies/{nct}",
    #: what `scrapy harvest --offline` asks for: the studies in the bundled cassette, and
    #: what changed since 2026-06-01 (which brings NCT04637503 in its newer real version)
    offline={"nct": "NCT02513394,NCT04008524,NCT02186860,NCT04691349,NCT04637503",
             "updated_since": "2026-06-01"},
    rank=0,  # the registry of record comes first
)


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
    """The requests (named studies, searches, paging, listings); what a study
    gives is `CtgovStudyPage`'s, and the name, domains and politeness are
    `SITE`'s."""

    site_entry = SITE

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
        yield self.record_or_reject(response)

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
            yield Reject(site=self.site, url=response.url, stage="parse",
                         error=f"malformed JSON page: {exc}; {len(studies)} complete studies kept",
                         payload=response.body)
        if page is not None and number == 1 and isinstance(page.get("totalCount"), int):
            self.ledger.set("search_expected", page["totalCount"])
        listed = [n for n in (normalize_nct(_study_nct(s))
                              for s in studies) if n]
        self.ledger.add("listed", listed)  # before the page counts as done (JOBDIR)
        stats.inc_value("ctgov/search/listed", len(listed))
        for i, study in enumerate(studies):
            studies[i] = None  # let each study's objects go once it is read: a page holds a thousand
            page_object = CtgovStudyPage(study, fetched=fetched, body=orjson.dumps(study))
            try:
                item = page_object.to_item()
            except Exception as exc:
                stats.inc_value(f"harvester/parse_error/{self.site}")
                yield Reject(site=self.site, url=page_object.url or response.url, stage="parse",
                             error=f"{type(exc).__name__}: {exc}", payload=page_object.body)
                continue
            yield item
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
        ids = [n for n in (normalize_nct(_study_nct(s))
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
        item = self.record_or_reject(response)
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
            live = store.live_nct_ids(self.site)
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
                    live = store.live_nct_ids(self.site)
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
