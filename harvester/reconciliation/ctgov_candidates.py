"""The CT.gov API v2 candidate lookup that linking uses when
`HARVEST_LINK_ONLINE` is true: studies matching a page's title and sponsor."""
from __future__ import annotations

import re
import urllib.parse
import urllib.request
from typing import Optional

import orjson

from harvester.normalize.ages import parse_age
from harvester.reconciliation.config import API_URL


class CtgovCandidateClient:
    """Asks the CT.gov API v2 for studies matching a title and a sponsor.

    Blocking, one request per call, with a User-Agent that names harvester
    and a timeout. Returns candidate dicts (`nct_id`, `brief_title`,
    `official_title`, `lead_sponsor`, `conditions`, `min_age_years`,
    `max_age_years`)."""

    FIELDS = "NCTId,BriefTitle,OfficialTitle,LeadSponsorName,Condition,MinimumAge,MaximumAge"

    def __init__(self, url: str = API_URL, user_agent: str = "harvester/0.1", timeout: float = 20.0,
                 page_size: int = 10):
        self.url = url
        self.user_agent = user_agent
        self.timeout = timeout
        self.page_size = page_size

    def query_url(self, title: Optional[str], sponsor: Optional[str]) -> str:
        params = {"format": "json", "pageSize": str(self.page_size), "fields": self.FIELDS}
        if title:
            params["query.titles"] = title
        if sponsor:
            params["query.spons"] = sponsor
        return f"{self.url}?{urllib.parse.urlencode(params)}"

    def __call__(self, title: Optional[str], sponsor: Optional[str]) -> list[dict]:
        if not title and not sponsor:
            return []
        request = urllib.request.Request(self.query_url(title, sponsor), headers={
            "User-Agent": self.user_agent, "Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            page = orjson.loads(response.read())
        return [c for c in (self.candidate(s) for s in page.get("studies") or []) if c]

    @staticmethod
    def candidate(study: dict) -> Optional[dict]:
        proto = study.get("protocolSection") or {}
        ident = proto.get("identificationModule") or {}
        nct = ident.get("nctId")
        if not isinstance(nct, str) or not re.fullmatch(r"NCT\d{8}", nct):
            return None
        elig = proto.get("eligibilityModule") or {}
        lead = (proto.get("sponsorCollaboratorsModule") or {}).get("leadSponsor") or {}
        return {
            "nct_id": nct,
            "brief_title": ident.get("briefTitle"),
            "official_title": ident.get("officialTitle"),
            "lead_sponsor": lead.get("name"),
            "conditions": list((proto.get("conditionsModule") or {}).get("conditions") or []),
            "min_age_years": parse_age(elig.get("minimumAge")),
            "max_age_years": parse_age(elig.get("maximumAge")),
        }
