"""The CT.gov API v2 candidate lookup that linking uses when
`HARVEST_LINK_ONLINE` is true: studies matching a page's title and sponsor.

`candidate_source(settings)` builds it from the settings:

* **offline** (a cassette is set: `VCR_CASSETTE`, as `scrapy harvest
  --offline` sets it, or `HARVEST_LINK_CASSETTE`): lookups are answered from
  the cassette, `<VCR_CASSETTE dir>/ctgov.yaml` (the CT.gov API's) unless
  `HARVEST_LINK_CASSETTE` names another file. With `VCR_RECORD_MODE=none` a
  lookup that is not recorded is a `LookupMiss` (the page stays unlinked,
  with that reason): no request leaves the process. In a recording mode a
  missing lookup is asked live and recorded (scrubbed like the crawl's
  recordings, `harvester.cassette_filter`).
* **live**: one GET per distinct (title, sponsor), at least
  `HARVEST_LINK_DELAY` seconds apart (default 1), with the crawler's
  User-Agent and `HARVEST_LINK_TIMEOUT`. A 429 or 503 waits the Retry-After
  it gives (at most `HARVEST_RETRY_AFTER_MAX`), other 5xx, timeouts and
  refused connections back off (`HARVEST_RETRY_BACKOFF_BASE` doubling, at
  most `HARVEST_RETRY_BACKOFF_MAX`), up to `RETRY_TIMES` retries.
"""
from __future__ import annotations

import logging
import random
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Optional

import orjson

from harvester.normalize.ages import parse_age
from harvester.reconciliation.config import API_URL

logger = logging.getLogger(__name__)

RETRY_STATUSES = (429, 500, 502, 503, 504)


class LookupMiss(LookupError):
    """A lookup the cassette does not hold, while recording is off."""


class CtgovCandidateClient:
    """Asks the CT.gov API v2 for studies matching a title and a sponsor.

    Blocking, one request per call, with a User-Agent that names harvester
    and a timeout. Returns candidate dicts (`nct_id`, `brief_title`,
    `official_title`, `lead_sponsor`, `conditions`, `min_age_years`,
    `max_age_years`). `get` (url -> body bytes) replaces the HTTP fetch:
    a cassette's replay."""

    FIELDS = "NCTId,BriefTitle,OfficialTitle,LeadSponsorName,Condition,MinimumAge,MaximumAge"

    def __init__(self, url: str = API_URL, user_agent: str = "harvester/0.1", timeout: float = 20.0,
                 page_size: int = 10, *, retries: int = 3, delay: float = 0.0, backoff_base: float = 2.0,
                 backoff_max: float = 60.0, retry_after_max: float = 120.0,
                 get: Optional[Callable[[str], bytes]] = None, sleep: Callable[[float], None] = time.sleep):
        self.url = url
        self.user_agent = user_agent
        self.timeout = timeout
        self.page_size = page_size
        self.retries = max(0, retries)
        self.delay = max(0.0, delay)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_after_max = retry_after_max
        self.get = get or self.fetch
        self.sleep = sleep
        self._last: float | None = None
        self.requests = 0  # HTTP requests sent (retries included)

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
        page = orjson.loads(self.get(self.query_url(title, sponsor)))
        if not isinstance(page, dict):
            raise ValueError(f"CT.gov answered a {type(page).__name__}, not a page of studies")
        return [c for c in (self.candidate(s) for s in page.get("studies") or [] if isinstance(s, dict)) if c]

    # -- live -------------------------------------------------------------------------
    def _wait_turn(self) -> None:
        if self.delay and self._last is not None:
            wait = self._last + self.delay - time.monotonic()
            if wait > 0:
                self.sleep(wait)
        self._last = time.monotonic()

    def backoff(self, attempt: int) -> float:
        delay = min(self.backoff_max, self.backoff_base * (2 ** max(0, attempt - 1)))
        return max(0.0, delay * random.uniform(0.75, 1.25))  # noqa: S311 - jitter, not crypto

    def fetch(self, url: str) -> bytes:
        """GET `url` with retries: Retry-After on 429/503, backoff otherwise."""
        from harvester.middlewares import parse_retry_after

        attempt = 0
        while True:
            self._wait_turn()
            self.requests += 1
            request = urllib.request.Request(url, headers={"User-Agent": self.user_agent,
                                                           "Accept": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return response.read()
            except urllib.error.HTTPError as exc:
                if exc.code not in RETRY_STATUSES or attempt >= self.retries:
                    raise
                after = parse_retry_after(exc.headers.get("Retry-After")) if exc.code in (429, 503) else None
                wait = min(after, self.retry_after_max) if after is not None else self.backoff(attempt + 1)
                why = f"HTTP {exc.code}" + (f" with Retry-After {exc.headers.get('Retry-After')}"
                                            if after is not None else "")
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                if attempt >= self.retries:
                    raise
                wait, why = self.backoff(attempt + 1), f"{type(exc).__name__}: {exc}"
            attempt += 1
            logger.info("CT.gov candidate lookup: %s; retry %d of %d in %.1fs", why, attempt, self.retries, wait)
            self.sleep(wait)

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


class CassetteLookups:
    """Lookups answered from a vcrpy cassette (method and URI match, as the
    crawl's replay). `record_mode` "none": a miss raises LookupMiss; any
    other mode asks `live` and records the answer, saved by `close()`."""

    def __init__(self, path: Path, record_mode: str = "none", live: Optional[Callable[[str], bytes]] = None):
        from vcr.persisters.filesystem import CassetteNotFoundError
        from vcr.serializers import yamlserializer

        from harvester.cassette import AtomicFilesystemPersister, CassetteIndex

        self.path = Path(path)
        self.record_mode = (record_mode or "none").lower()
        self.live = live
        self.serializer = yamlserializer
        try:
            self.requests, self.responses = AtomicFilesystemPersister.load_cassette(self.path, yamlserializer)[:2]
        except CassetteNotFoundError:
            self.requests, self.responses = [], []
        self.index = CassetteIndex(self.requests, ["method", "uri"], allow_repeats=True)
        self.recorded = 0
        self.played = 0

    def __call__(self, url: str) -> bytes:
        from vcr.request import Request as VcrRequest

        from harvester.cassette_filter import scrub_request, scrub_response

        request = VcrRequest("GET", url, None, {})
        found = self.index.take(request)
        if found.index is not None and self.record_mode != "all":
            self.played += 1
            response = self.responses[found.index]
            status = int(response["status"]["code"])
            if status != 200:
                raise LookupMiss(f"the cassette's answer to the lookup is HTTP {status}")
            body = (response.get("body") or {}).get("string") or b""
            return body.encode("utf-8") if isinstance(body, str) else body
        if self.record_mode == "none" or self.live is None:
            raise LookupMiss(f"the candidate lookup is not in the cassette {self.path} (record mode none)")
        body = self.live(url)
        self.requests.append(scrub_request(request))
        self.responses.append(scrub_response({"status": {"code": 200, "message": "OK"},
                                              "headers": {"Content-Type": ["application/json"]},
                                              "body": {"string": body}}))
        self.recorded += 1
        return body

    def close(self) -> None:
        if not self.recorded:
            return
        from harvester.cassette import AtomicFilesystemPersister

        AtomicFilesystemPersister.save_cassette(self.path, {"requests": self.requests, "responses": self.responses},
                                                self.serializer)
        logger.info("cassette %s saved with %d new candidate lookups", self.path, self.recorded)


def lookup_cassette(settings: Any) -> Optional[Path]:
    """The cassette linking replays from, or None (live)."""
    if settings is None:
        return None
    explicit = settings.get("HARVEST_LINK_CASSETTE", None)
    if explicit:
        return Path(str(explicit))
    cassette = str(settings.get("VCR_CASSETTE", None) or "").strip()
    if not cassette:
        return None
    path = Path(cassette)
    if path.is_dir() or cassette.endswith(("/", "\\")):
        return path / "ctgov.yaml"
    return path


def candidate_source(settings: Any, config) -> CtgovCandidateClient:
    """The lookup for `reconcile`: replayed from a cassette when one is set
    (offline), else live with retries. See the module doc."""

    def number(name: str, default: float) -> float:
        value = settings.get(name, None) if settings is not None else None
        return float(default if value is None or value == "" else value)

    live = CtgovCandidateClient(
        config.link_api_url, config.user_agent, config.link_timeout,
        retries=int(number("RETRY_TIMES", 3)), delay=number("HARVEST_LINK_DELAY", 1.0),
        backoff_base=number("HARVEST_RETRY_BACKOFF_BASE", 2.0), backoff_max=number("HARVEST_RETRY_BACKOFF_MAX", 60.0),
        retry_after_max=number("HARVEST_RETRY_AFTER_MAX", 120.0))
    path = lookup_cassette(settings)
    if path is None:
        return live
    mode = settings.get("VCR_RECORD_MODE", None) or "none"
    mode = str(getattr(mode, "value", mode)).lower()
    if mode == "once" and path.exists():
        mode = "none"  # vcrpy's "once": record only into a cassette that does not exist yet
    replay = CassetteLookups(path, mode, live.fetch)
    client = CtgovCandidateClient(config.link_api_url, config.user_agent, config.link_timeout, get=replay)
    client.cassette = replay
    logger.info("candidate lookups replayed from %s (record mode %s)", path, mode)
    return client
