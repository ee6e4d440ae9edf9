"""A page's record with a zero-padded NCT ID through a crawl's validation
pipeline: the one check the HTML sites' padding tests share."""
from __future__ import annotations

from scrapy.utils.test import get_crawler

from pipelines.validate import ValidationPipeline


def assert_padding_noted_and_counted(spider_cls, record, printed: str, padded: str) -> None:
    """`record` (read from a page printing `printed`, 7 digits) through the
    validation pipeline of a `spider_cls` crawl: counted in its stats, and
    the note says what was printed and what it was read as."""
    crawler = get_crawler(spider_cls)
    crawler.stats.open_spider()
    stored = ValidationPipeline.from_crawler(crawler).process_item(record).record
    assert crawler.stats.get_value("harvester/nct_zero_padded") == 1
    assert crawler.stats.get_value("harvester/notes/nct_zero_padded") == 1
    [note] = [n for n in stored.notes if n.kind == "nct_zero_padded"]
    assert note.detail.startswith(f"printed {printed!r} (7 digits), read as {padded} by zero-padding")
