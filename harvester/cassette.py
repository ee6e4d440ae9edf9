"""vcrpy cassettes for Scrapy: conversions and an O(1) interaction index.

Used by :class:`harvester.middlewares.VcrCassetteMiddleware`. vcrpy does the
loading, header filtering and saving (its file format, YAML); this module turns
Scrapy requests/responses into vcrpy's shapes and back, and finds the recorded
interaction for a request without vcrpy's linear scan of the whole cassette.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from scrapy.http import Headers, Request, Response
from scrapy.responsetypes import responsetypes
from vcr.matchers import requests_match
from vcr.persisters.filesystem import CassetteDecodeError, CassetteNotFoundError
from vcr.request import Request as VcrRequest
from vcr.serialize import deserialize, serialize

from harvester.cassette_filter import scrub_url

_DEFAULT_PORTS = {"http": 80, "https": 443}


def strip_fragment(url: str) -> str:
    """``url`` without its ``#fragment`` (servers never see it; Scrapy keeps it)."""
    return url.split("#", 1)[0]


def normalize_uri(uri: str) -> str:
    """The URI used as a lookup key: no fragment, scheme and host lower-cased,
    default port dropped, empty path as ``/``. Path and query stay as they are."""
    parts = urlsplit(strip_fragment(uri))
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    if parts.username is not None:
        userinfo = parts.username + (f":{parts.password}" if parts.password is not None else "")
        netloc = f"{userinfo}@{netloc}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


# Matchers whose result can be part of a hash key. Any other vcrpy matcher
# (body, raw_body, headers) is checked with vcrpy's own function among the
# few interactions that share a key.
# URIs are compared as recorded: with credential-like query values redacted
# (harvester.cassette_filter), so a live request matches its recording.
KEY_FUNCTIONS: dict[str, Callable[[VcrRequest], Any]] = {
    "method": lambda r: r.method.upper(),
    "uri": lambda r: normalize_uri(scrub_url(r.uri)),
    "url": lambda r: normalize_uri(scrub_url(r.uri)),
    "scheme": lambda r: r.scheme.lower(),
    "host": lambda r: (r.host or "").lower(),
    "port": lambda r: r.port,
    "path": lambda r: r.path or "/",
    "query": lambda r: tuple(VcrRequest(r.method, scrub_url(r.uri), None, {}).query),
}


# --------------------------------------------------------------------------
# Scrapy <-> vcrpy


def _str(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _bytes(value: bytes | str) -> bytes:
    if isinstance(value, bytes):
        return value
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:  # a cassette written by a tool that decoded UTF-8
        return value.encode("utf-8")


def to_vcr_request(request: Request, *, full: bool = True) -> VcrRequest:
    """vcrpy's view of a Scrapy request: fragment stripped, headers as text.

    With ``full=False`` only method and URI are filled in (enough for a key
    lookup, and cheaper on the replay hot path)."""
    if not full:
        return VcrRequest(request.method, strip_fragment(request.url), None, {})
    headers = {_str(name): ", ".join(_str(v) for v in values) for name, values in request.headers.items()}
    return VcrRequest(request.method, strip_fragment(request.url), request.body or None, headers)


def to_vcr_response(response: Response) -> dict[str, Any]:
    """vcrpy's response dict for a response as the server sent it."""
    try:
        message = HTTPStatus(response.status).phrase
    except ValueError:
        message = ""
    return {
        "status": {"code": response.status, "message": message},
        "headers": {_str(name): [_str(v) for v in values] for name, values in response.headers.items()},
        "body": {"string": response.body},
    }


def header_filter(names: Iterable[str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A vcrpy ``before_record_response`` hook dropping ``names`` (any case)."""
    drop = {n.lower() for n in names}

    def filter_response_headers(response: dict[str, Any]) -> dict[str, Any]:
        headers = response.get("headers") or {}
        response["headers"] = {k: v for k, v in headers.items() if k.lower() not in drop}
        return response

    return filter_response_headers


def response_headers(recorded: dict[str, Any]) -> dict[bytes, list[bytes]]:
    """A recorded response's headers as bytes, ready for :class:`Headers`."""
    headers: dict[bytes, list[bytes]] = {}
    for name, values in (recorded.get("headers") or {}).items():
        if not isinstance(values, (list, tuple)):
            values = [values]
        headers.setdefault(_bytes(name), []).extend(_bytes(v) for v in values)
    return headers


def to_scrapy_response(
    recorded: dict[str, Any],
    request: Request,
    flags: Sequence[str],
    headers: dict[bytes, list[bytes]] | None = None,
) -> Response:
    """A new Scrapy response from a recorded vcrpy response dict
    (``headers``: its :func:`response_headers`, if already converted)."""
    headers = Headers(response_headers(recorded) if headers is None else headers)
    body = (recorded.get("body") or {}).get("string") or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    url = strip_fragment(request.url)
    respcls = responsetypes.from_args(headers=headers, url=url, body=body)
    return respcls(
        url=url,
        status=int(recorded["status"]["code"]),
        headers=headers,
        body=body,
        request=request,
        flags=list(flags),
    )


# --------------------------------------------------------------------------
# Index


class Lookup:
    """Outcome of :meth:`CassetteIndex.take`."""

    __slots__ = ("index", "repeated", "recorded")

    def __init__(self, index: int | None, repeated: bool = False, recorded: int = 0):
        self.index = index  # position in the cassette, None if nothing to play
        self.repeated = repeated  # an already-played interaction replayed again
        self.recorded = recorded  # interactions recorded for this request


class CassetteIndex:
    """Recorded interactions by key, each played once and in recorded order.

    ``key_matchers`` are names from :data:`KEY_FUNCTIONS`; ``other_matchers``
    are vcrpy matcher functions checked within a key's bucket (usually one or
    two interactions). With ``allow_repeats``, a request whose interactions have
    all been played gets the last of them again.
    """

    def __init__(
        self,
        requests: Sequence[VcrRequest],
        key_matchers: Sequence[str],
        other_matchers: Sequence[Callable[[VcrRequest, VcrRequest], Any]] = (),
        allow_repeats: bool = False,
    ):
        self._key_functions = [KEY_FUNCTIONS[name] for name in key_matchers]
        self._other = list(other_matchers)
        self._allow_repeats = allow_repeats
        self._requests = list(requests)
        #: Whether lookups need the request's headers and body (else method and URI do).
        self.needs_full_request = bool(self._other)
        self._played = bytearray(len(self._requests))
        self._buckets: dict[tuple, list[int]] = {}
        for position, request in enumerate(self._requests):
            self._buckets.setdefault(self.key(request), []).append(position)
        # First position in each bucket that may still be unplayed.
        self._cursor: dict[tuple, int] = {}

    def __len__(self) -> int:
        return len(self._requests)

    def key(self, request: VcrRequest) -> tuple:
        return tuple(fn(request) for fn in self._key_functions)

    def take(self, request: VcrRequest) -> Lookup:
        """The next unplayed interaction matching ``request``, marked played."""
        key = self.key(request)
        bucket = self._buckets.get(key)
        if not bucket:
            return Lookup(None)
        if not self._other:
            start = self._cursor.get(key, 0)
            if start < len(bucket):
                self._cursor[key] = start + 1
                position = bucket[start]
                self._played[position] = 1
                return Lookup(position, recorded=len(bucket))
            if self._allow_repeats:
                return Lookup(bucket[-1], repeated=True, recorded=len(bucket))
            return Lookup(None, recorded=len(bucket))
        matching = [p for p in bucket if requests_match(request, self._requests[p], self._other)]
        for position in matching:
            if not self._played[position]:
                self._played[position] = 1
                return Lookup(position, recorded=len(matching))
        if matching and self._allow_repeats:
            return Lookup(matching[-1], repeated=True, recorded=len(matching))
        return Lookup(None, recorded=len(matching))

    def closest_uris(self, uri: str, limit: int = 3) -> list[str]:
        """Recorded URIs most like ``uri`` (for error messages)."""
        candidates = sorted({normalize_uri(r.uri) for r in self._requests})
        if len(candidates) > 20_000:  # keep a miss cheap on huge cassettes
            return []
        return difflib.get_close_matches(normalize_uri(uri), candidates, n=limit, cutoff=0.5)


# --------------------------------------------------------------------------
# Persister


class AtomicFilesystemPersister:
    """vcrpy's filesystem persister, but saves through a temporary file and
    ``os.replace`` so a crash mid-save never leaves half a cassette, and
    reads/writes UTF-8 whatever the locale."""

    @classmethod
    def load_cassette(cls, cassette_path, serializer):
        path = Path(cassette_path)
        if not path.is_file():
            raise CassetteNotFoundError()
        try:
            data = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise CassetteDecodeError("Can't read cassette, encoding is broken") from err
        if not data.strip():
            raise CassetteNotFoundError()
        return deserialize(data, serializer)

    @staticmethod
    def save_cassette(cassette_path, cassette_dict, serializer):
        from harvester.atomic import atomic_write

        data = serialize(cassette_dict, serializer)
        with atomic_write(cassette_path, "w", encoding="utf-8") as f:
            f.write(data)
