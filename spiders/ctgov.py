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
field, the path in the study's `protocolSection`, and the normalizer. Fields
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
from dataclasses import dataclass
from typing import Any, Callable, Iterator
from urllib.parse import urlencode

import orjson
import scrapy
from w3lib.url import add_or_replace_parameter
from scrapy.http import Response

from harvester.normalize.ages import parse_age
from harvester.normalize.criteria import split_criteria
from harvester.normalize.dates import normalize_date
from harvester.normalize.ids import normalize_nct, screen_identifier
from harvester.normalize.phases import normalize_phases
from harvester.normalize.sex import normalize_sex
from harvester.normalize.status import normalize_status
from harvester.normalize.study_type import normalize_study_type
from harvester.normalize.text import clean_prose, clean_text, unescape_ctgov
from items import Identifier, Note, RecordWithBody, Reject, SourceRecord
from spiders.base import HarvestSpider, fetched_at, nct_arg

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


def _status(v):
    status, known = normalize_status(v)
    return status if known else Unmapped(status, f"status {v!r} is not in the CT.gov vocabulary")


def _phases(v):
    phases, unknown = normalize_phases(v)
    return Unmapped(phases, f"phase value(s) {unknown!r} not recognised") if unknown else phases


def _text_list(v):
    return [t for t in (clean_text(x) for x in v or []) if t]


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
    return [{"type": x.get("type"), "name": clean_text(x["name"])}
            for x in v or [] if clean_text(x.get("name"))]


def _locations(v):
    keys = ("facility", "city", "state", "country", "status")
    return [{k: clean_text(x.get(k)) for k in keys} for x in v or []]


def _outcomes(v):
    return [{"measure": clean_text(x["measure"]),
             "time_frame": clean_text(x.get("timeFrame")),
             "description": clean_prose(unescape_ctgov(x.get("description")))}
            for x in v or [] if clean_text(x.get("measure"))]


def _bool(v):
    return v if isinstance(v, bool) else None


def _prose(v):
    return clean_prose(unescape_ctgov(v))


@dataclass(frozen=True)
class F:
    field: str  # record field; "eligibility.sex" for a sub-field
    path: str  # dotted path inside protocolSection
    convert: Callable[[Any], Any]
    keep_raw: bool = False  # the printed value differs from the normalized one


FIELD_MAP: tuple[F, ...] = (
    F("nct_id", "identificationModule.nctId", normalize_nct, keep_raw=True),
    F("brief_title", "identificationModule.briefTitle", clean_text),
    F("official_title", "identificationModule.officialTitle", clean_text),
    F("overall_status", "statusModule.overallStatus", _status, keep_raw=True),
    F("phases", "designModule.phases", _phases, keep_raw=True),
    F("study_type", "designModule.studyType", normalize_study_type, keep_raw=True),
    F("enrollment", "designModule.enrollmentInfo", _enrollment),
    F("conditions", "conditionsModule.conditions", _text_list),
    F("interventions", "armsInterventionsModule.interventions", _interventions),
    F("lead_sponsor", "sponsorCollaboratorsModule.leadSponsor", _sponsor),
    F("collaborators", "sponsorCollaboratorsModule.collaborators", _sponsors),
    F("start_date", "statusModule.startDateStruct.date", normalize_date, keep_raw=True),
    F("primary_completion_date", "statusModule.primaryCompletionDateStruct.date", normalize_date, keep_raw=True),
    F("completion_date", "statusModule.completionDateStruct.date", normalize_date, keep_raw=True),
    F("last_update_posted", "statusModule.lastUpdatePostDateStruct.date", normalize_date, keep_raw=True),
    F("brief_summary", "descriptionModule.briefSummary", _prose),
    F("detailed_description", "descriptionModule.detailedDescription", _prose),
    F("locations", "contactsLocationsModule.locations", _locations),
    F("primary_outcomes", "outcomesModule.primaryOutcomes", _outcomes),
    F("secondary_outcomes", "outcomesModule.secondaryOutcomes", _outcomes),
    F("eligibility.sex", "eligibilityModule.sex", normalize_sex, keep_raw=True),
    F("eligibility.min_age_years", "eligibilityModule.minimumAge", parse_age, keep_raw=True),
    F("eligibility.max_age_years", "eligibilityModule.maximumAge", parse_age, keep_raw=True),
    F("eligibility.healthy_volunteers", "eligibilityModule.healthyVolunteers", _bool),
    F("eligibility.criteria_text", "eligibilityModule.eligibilityCriteria", _prose, keep_raw=True),
)


def _get(obj: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
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
    record: dict[str, Any] = {"eligibility": {}}
    raw: dict[str, Any] = {}
    notes: list[Note] = []
    for row in FIELD_MAP:
        printed = _get(proto, row.path)
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
    return parse_study(study, fetched=fetched_at(response))


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
    }
    #: the pure parser `scrapy extract ctgov <saved study JSON>` runs
    parse_page_fn = staticmethod(parse_study_response)
    #: what `scrapy harvest --offline` asks for: the studies in the bundled cassette
    offline_args = {"nct": "NCT02513394,NCT04008524,NCT02186860,NCT04691349"}

    def __init__(self, nct=None, query=None, cond=None, updated_since=None,
                 max_pages=None, page_size=None, *args, **kwargs):
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
        self.api = f"{self.base}/api/v2/studies"
        self.searched = False

    # -- requests ---------------------------------------------------------------
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
        return params

    def search_url(self, page_token: str | None = None) -> str:
        return f"{self.api}?{urlencode(self.search_params(page_token))}"

    def study_request(self, nct_id: str) -> scrapy.Request:
        url = f"{self.api}/{nct_id}"
        # the record is stored under the site's own URL, wherever it was fetched
        meta = {"store_url": study_url(nct_id)} if url != study_url(nct_id) else {}
        return scrapy.Request(url, callback=self.parse_one, errback=self.on_error, cb_kwargs={}, meta=meta)

    async def start(self):
        if self.incremental and not self.updated_since and (not self.ncts or self.query or self.cond):
            self.updated_since = self.incremental_since()
        for nct_id in self.ncts:
            yield self.study_request(nct_id)
        if not self.ncts or self.query or self.cond or self.updated_since:
            self.searched = True
            yield scrapy.Request(self.search_url(), callback=self.parse_page, errback=self.on_error)

    # -- incremental scope ------------------------------------------------------
    def watermark_key(self) -> str:
        narrowed = {k: v for k, v in (("cond", self.cond), ("query", self.query)) if v}
        return f"{self.name}?{urlencode(narrowed)}" if narrowed else self.name

    def covers_whole_source(self) -> bool:
        return self.searched and not self.crawler.stats.get_value("ctgov/stopped_at_max_pages")

    def run_since(self) -> str | None:
        return self.updated_since

    # -- callbacks --------------------------------------------------------------
    def parse_one(self, response: Response):
        yield self.record_or_reject(response, parse_study_response)

    def parse_page(self, response: Response) -> Iterator:
        self.crawler.stats.inc_value("ctgov/pages")
        fetched = fetched_at(response)
        self.body_cut_short(response)  # counted; the complete studies are still read below
        try:
            page = orjson.loads(response.body)
            studies, whole = page.get("studies") or [], True
        except orjson.JSONDecodeError as exc:
            studies, whole = salvage_studies(response.text)
            page = None
            self.crawler.stats.inc_value("ctgov/truncated_pages")
            self.crawler.stats.inc_value("harvester/truncated_pages")
            logger.error("truncated or malformed page %s (%s): kept %d complete studies",
                         response.url, exc, len(studies))
            yield Reject(site=SITE, url=response.url, stage="parse",
                         error=f"malformed JSON page: {exc}; {len(studies)} complete studies kept",
                         payload=response.body)
        for study in studies:
            try:
                record = parse_study(study, fetched=fetched)
            except Exception as exc:
                self.crawler.stats.inc_value(f"harvester/parse_error/{SITE}")
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
        number = response.meta.get("ctgov_page", 1)
        if token and (self.max_pages is None or number < self.max_pages):
            yield scrapy.Request(add_or_replace_parameter(response.url, "pageToken", token),
                                 callback=self.parse_page, errback=self.on_error,
                                 meta={"ctgov_page": number + 1})
        elif token:
            logger.info("stopping after %d pages (max_pages); more results remain", number)
            self.crawler.stats.set_value("ctgov/stopped_at_max_pages", True)
