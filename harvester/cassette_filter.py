"""What a recorded cassette keeps: only what replay needs, by rule.

A cassette is a file people share and commit, so recording keeps:

* of a request: its method, its URL with every credential-like query
  parameter's value replaced by `REDACTED`, its body, and only the request
  headers in `KEEP_REQUEST_HEADERS` (content negotiation and validators). No
  User-Agent (it carries the operator's contact), no cookies, no tokens.
* of a response: status and body, and only the headers the spiders and
  middlewares read (`KEEP_RESPONSE_HEADERS`: content type, encoding and
  length, Date, the validators ETag/Last-Modified, Retry-After, and Location
  with its credential-like query parameters redacted).

Everything else is dropped, whatever its name: a new `X-Whatever-Token`
never reaches the file. Replay matches on the redacted URL (the index keys
redact the live request's URL the same way), so a recording made with a
token replays with any token or with the same one.

Credential-like query parameters: names containing token, secret, passw,
pwd, apikey/api_key/api-key, auth, session, signature, credential, or equal
to key, sig, code; pagination cursors (`pageToken`, `nextPageToken`,
`cursor...`) are not credentials and are kept, since replay needs them.
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

REDACTED = "REDACTED"

KEEP_REQUEST_HEADERS = frozenset(h.lower() for h in (
    "Accept", "Accept-Language", "Content-Type", "If-None-Match", "If-Modified-Since",
))
KEEP_RESPONSE_HEADERS = frozenset(h.lower() for h in (
    "Content-Type", "Content-Encoding", "Content-Length", "Content-Language", "Date",
    "ETag", "Last-Modified", "Retry-After", "Location",
))

_CREDENTIAL = re.compile(r"token|secret|passw|pwd|api[-_]?key|auth|session|signature|credential", re.I)
_EXACT = frozenset(("key", "sig", "code", "jwt"))
_CURSOR = re.compile(r"^(page|next|next_?page|continuation|cursor)[-_]?token$|^cursor", re.I)


def credential_param(name: str) -> bool:
    name = name.strip()
    if _CURSOR.search(name):
        return False
    return name.lower() in _EXACT or bool(_CREDENTIAL.search(name))


def scrub_url(url: str) -> str:
    """`url` with the values of credential-like query parameters redacted
    (and any user:password@ dropped). Unchanged when it has none."""
    if not url or ("?" not in url and "@" not in url):
        return url
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2] if "@" in parts.netloc else parts.netloc
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(credential_param(k) for k, _ in pairs):
            query = "&".join(f"{quote(k, safe='')}={REDACTED if credential_param(k) else quote(v, safe='')}"
                             for k, v in pairs)
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def scrub_request(request):
    """vcrpy's `before_record_request`: the recorded request, scrubbed."""
    request.uri = scrub_url(request.uri)
    for name in list(request.headers):
        if name.lower() not in KEEP_REQUEST_HEADERS:
            del request.headers[name]
    return request


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """vcrpy's `before_record_response`: the recorded response, scrubbed."""
    kept = {}
    for name, values in (response.get("headers") or {}).items():
        if name.lower() not in KEEP_RESPONSE_HEADERS:
            continue
        if name.lower() == "location":
            values = [scrub_url(v if isinstance(v, str) else v.decode("latin-1"))
                      for v in (values if isinstance(values, (list, tuple)) else [values])]
        kept[name] = values
    response["headers"] = kept
    return response
