"""What a spider yields, besides nothing: a record with the body it was read
from, a page that could not become a record, a page the site says is gone.

The pipelines take these three and nothing else from the spiders.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from pydantic import Field

from items.records import SourceRecord, _Model


@dataclass(frozen=True)
class RecordWithBody:
    """A SourceRecord and the bytes it was read from (an HTML page; for the
    CT.gov API, the study's JSON). The store keeps the body next to the
    record, so a record can be parsed again when the parser improves."""

    record: SourceRecord
    body: Optional[bytes] = None
    #: the Content-Type header the body was served with, as served (e.g.
    #: "text/html; charset=windows-1252"; "" when the server sent none; None
    #: when unknown): stored with the body, so a re-parse decodes it (its
    #: charset, HTML or text) as the crawl did
    content_type: Optional[str] = None
    #: the record's JSON as the store keeps it, once the validation pipeline
    #: has made it (so it is serialized once, not again by the store)
    record_json: Optional[bytes] = field(default=None, repr=False, compare=False)

    @property
    def site(self) -> str:
        return self.record.site

    @property
    def url(self) -> str:
        return self.record.url


class Reject(_Model):
    """A page that could not become a SourceRecord. Spiders yield it instead
    of dropping the page; the store keeps it and the stats count it."""

    site: str
    url: str
    stage: Literal["parse", "validate", "download"]
    error: str
    # the body that could not be read, kept in the store, never in logs
    payload: Optional[bytes] = Field(default=None, exclude=True, repr=False)


@dataclass(frozen=True)
class Gone:
    """A page the site says is gone (HTTP 404/410). Not a record: the store
    pipeline marks the stored record of (site, url) removed and drops this."""

    site: str
    url: str
    status: int
