"""Secrets out of URLs before anything prints them.

`split_credentials(url)` takes `user:password@` out of a URL (for
`-a base_url=`, whose credentials become HTTP basic auth instead of part of
every logged URL); `redact_url(url)` shows a URL with its password as `***`;
`redact_text(text, url)` removes a URL's password, and every piece of it,
from a message (libpq may echo a fragment of a malformed URL in its error).
"""
from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """(url without user:password@, user, password)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    return (urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)),
            unquote(user) or None, unquote(password) if password else None)


def redact_url(url: str | None) -> str:
    if not url or "@" not in url:
        return str(url)
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    userinfo, at, host = rest.partition("/")[0].rpartition("@")
    if not at:
        return url
    user = userinfo.partition(":")[0]
    tail = rest[len(rest.partition("/")[0]):]
    return f"{scheme}://{user + ':***' if ':' in userinfo else user}@{host}{tail}"


def _secrets(url: str) -> list[str]:
    scheme, sep, rest = url.partition("://")
    netloc = rest.partition("/")[0] if sep else ""
    userinfo = netloc.rpartition("@")[0]
    password = userinfo.partition(":")[2]
    if not password:
        return []
    pieces = {password, unquote(password)}
    for p in list(pieces):
        pieces.update(s for s in p.split("@") if len(s) >= 3)
    return sorted(pieces, key=len, reverse=True)


def redact_text(text: str, url: str | None) -> str:
    if not url:
        return text
    text = text.replace(url, redact_url(url))
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return text


class BaseUrlAuthMiddleware:
    """HTTP basic auth for the origin of `-a base_url=http://user:password@host`:
    the spider keeps the credentials apart (`base_url_auth`: netloc, user,
    password) and this adds the Authorization header to requests for that
    origin only, so the password is in no URL."""

    def __init__(self, crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_request(self, request, spider=None):
        from urllib.parse import urlsplit

        from w3lib.http import basic_auth_header

        auth = getattr(self.crawler.spider, "base_url_auth", None)
        if auth and b"Authorization" not in request.headers and urlsplit(request.url).netloc.lower() == auth[0]:
            request.headers[b"Authorization"] = basic_auth_header(auth[1], auth[2])
        return None
