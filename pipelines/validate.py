"""Validation: every item (a `RecordWithBody`, a bare SourceRecord or a dict)
becomes a checked SourceRecord with a content hash, passed on with its body
as a `RecordWithBody`, or a Reject that says why. Nothing leaves this pipeline unaccounted for."""
from __future__ import annotations

import hashlib
import logging

import orjson
from pydantic import ValidationError

from items import Gone, RecordWithBody, Reject, SourceRecord

logger = logging.getLogger(__name__)

# What a page says, without when we happened to read it.
_HASH_EXCLUDE = {"fetched_at", "content_hash"}


def content_hash(record: SourceRecord) -> str:
    return json_content_hash(record.model_dump(mode="json", by_alias=True))


def json_content_hash(data: dict) -> str:
    """`content_hash` of a record from its JSON form (`model_dump(mode="json", by_alias=True)`)."""
    kept = {k: v for k, v in data.items() if k not in _HASH_EXCLUDE}
    return hashlib.sha256(orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)).hexdigest()


class ValidationPipeline:
    def __init__(self, stats):
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler.stats)

    def process_item(self, item, spider=None):
        if isinstance(item, (Reject, Gone)):
            return item
        body = content_type = None
        if isinstance(item, RecordWithBody):
            item, body, content_type = item.record, item.body, item.content_type
        try:
            # A record is checked from its JSON form, the form the store keeps:
            # what is stored is what validates, and the one serialization
            # serves the check, the content hash and the store.
            data = item.model_dump(mode="json", by_alias=True) if isinstance(item, SourceRecord) else dict(item)
            record = SourceRecord.model_validate(data)
        except (ValidationError, TypeError, ValueError) as exc:
            site = getattr(item, "site", None) or (item.get("site") if isinstance(item, dict) else None)
            url = getattr(item, "url", None) or (item.get("url") if isinstance(item, dict) else None)
            logger.warning("invalid record from %s: %s", url, exc)
            return Reject(site=site or "unknown", url=url or "unknown", stage="validate",
                          error=str(exc), payload=body)
        if note_zero_padding(record):
            self.stats.inc_value("harvester/nct_zero_padded")
            logger.warning("%s: %s", record.url, record.notes[-1].detail)
            data = record.model_dump(mode="json", by_alias=True)
        elif not isinstance(item, SourceRecord):
            data = record.model_dump(mode="json", by_alias=True)
        record.content_hash = data["content_hash"] = json_content_hash(data)
        self.stats.inc_value("harvester/records")
        self.stats.inc_value(f"harvester/records/{record.site}")
        if record.nct_id is None:
            self.stats.inc_value("harvester/records_without_nct")
        for note in record.notes:
            self.stats.inc_value(f"harvester/notes/{note.kind}")
            if note.kind == "unmapped_vocabulary":
                logger.warning("%s: %s %s", record.url, note.field, note.detail)
        return RecordWithBody(record, body, content_type, record_json=orjson.dumps(data))


NCT_ZERO_PADDED = "nct_zero_padded"


def note_zero_padding(record: SourceRecord) -> bool:
    """A page that printed its NCT ID with fewer than 8 digits (some sites drop
    a zero) was read as the zero-padded ID, which may be another trial: say
    so on the record (a `nct_zero_padded` note, which reconciliation checks
    before linking). True when the note was added."""
    from harvester.normalize.ids import normalize_nct, padded_nct

    if record.nct_id is None or any(n.kind == NCT_ZERO_PADDED for n in record.notes):
        return False
    printed = record.raw.get("nct_id")
    values = printed if isinstance(printed, list) else [printed]
    for value in values:
        short = padded_nct(value) if isinstance(value, str) else None
        if short and normalize_nct(short) == record.nct_id:
            from items import Note

            record.notes.append(Note(field="nct_id", kind=NCT_ZERO_PADDED,
                                     detail=f"printed {short!r} ({len(short) - 3} digits), read as {record.nct_id}"
                                            " by zero-padding: linked only if its title and sponsor agree"))
            return True
    return False
