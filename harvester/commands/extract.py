"""`scrapy extract <site> <file> [--url URL]`: run a site's parser on a saved page.

For users repairing a parser after a site changed its pages, and for checks:
no network, no store, no pipelines. The record is printed as JSON (field
names by alias, indent 2) on stdout; logs go to stderr. A page the parser
cannot read exits with status 1 and says why.

The page object is the site's, from the site registry (`harvester.sites`:
every site module declares its `Site`, with its page object), so a new site
needs no change here.

The file is served to the parser as the response of `--url` (default: the
file's own file:// URL) with a Content-Type taken from its extension (.html,
.htm -> text/html; .txt -> text/plain; .json -> application/json) and a Date
header of the file's modification time, which becomes the record's
`fetched_at`. The page is decoded by what it says (a byte-order mark, its
<meta charset>; else detected), or by `--encoding`, the charset of the HTTP
header it was served with. For ctgov the file is a saved API v2 study body
(`GET /api/v2/studies/NCT...`).
"""
from __future__ import annotations

import argparse
import codecs
import logging
import sys
from email.utils import formatdate
from pathlib import Path

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError
from scrapy.http import HtmlResponse, TextResponse
from scrapy.utils.log import configure_logging

from harvester.sites import sites

logger = logging.getLogger(__name__)

# No charset here: a saved page says its own (a byte-order mark, <meta
# charset>), and Scrapy's decoding reads it, else detects it.
CONTENT_TYPES = {
    ".html": "text/html",
    ".htm": "text/html",
    ".xhtml": "text/html",
    ".txt": "text/plain",
    ".text": "text/plain",
    ".json": "application/json",
}


def saved_response(path: Path, url: str | None = None, encoding: str | None = None) -> TextResponse:
    """A saved file as the response a spider would have received. `encoding`
    (`--encoding`) stands for the charset of the HTTP header the page was
    served with, which a saved file has lost."""
    body = path.read_bytes()
    headers = {"Date": formatdate(path.stat().st_mtime, usegmt=True)}
    ctype = CONTENT_TYPES.get(path.suffix.lower())
    if ctype:
        headers["Content-Type"] = f"{ctype}; charset={encoding}" if encoding else ctype
    url = url or path.resolve().as_uri()
    if ctype and ctype.startswith("text/html"):
        return HtmlResponse(url=url, body=body, headers=headers)
    return TextResponse(url=url, body=body, headers=headers, encoding=encoding)


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings = {"LOG_LEVEL": "INFO"}

    def syntax(self) -> str:
        return "<site> <file> [--url URL]"

    def short_desc(self) -> str:
        return "Run a site's parser on a saved page offline and print the record as JSON"

    def long_desc(self) -> str:
        known = ", ".join(sites(getattr(self, "settings", None)))
        return (f"Run the page object of <site> (a site of the registry: {known}) on <file> (a saved "
                "HTML page or its extracted text; for an API site the saved study body) and print the "
                "SourceRecord as JSON on stdout. Logs go to stderr; a parse error exits with status 1.")

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--url", metavar="URL", default=None,
                            help="the URL the page was fetched from (default: the file's file:// URL)")
        parser.add_argument("--encoding", metavar="CHARSET", default=None,
                            help="the charset the page was served with (default: what the file says: "
                                 "a byte-order mark or <meta charset>, else detected)")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 2:
            raise UsageError("expected <site> <file>")
        site, file_name = args
        configure_logging(self.settings)  # to stderr unless LOG_FILE
        registry = sites(self.settings)
        if site not in registry:
            return self.fail(f"unknown site {site!r}; known: {', '.join(sorted(registry))}")
        page = registry[site].page
        path = Path(file_name)
        if not path.is_file():
            return self.fail(f"no such file: {file_name}")
        if opts.encoding:
            try:
                codecs.lookup(opts.encoding)
            except LookupError:
                return self.fail(f"unknown encoding {opts.encoding!r}")
        response = saved_response(path, opts.url, opts.encoding)
        try:
            record = page.from_response(response).to_record()
        except Exception as exc:  # a parse error is the answer, not a crash
            logger.debug("parse error", exc_info=True)
            from harvester.faults import parse_error_message

            return self.fail(f"cannot parse {file_name} as a {site} page: {parse_error_message(response, exc)}")
        logger.info("parsed %s as %s: nct_id=%s, %d note(s)", file_name, site,
                    getattr(record, "nct_id", None), len(getattr(record, "notes", []) or []))
        sys.stdout.write(record.model_dump_json(by_alias=True, indent=2) + "\n")
        sys.stdout.flush()

    def fail(self, message: str) -> None:
        print(f"extract: error: {message}", file=sys.stderr)
        self.exitcode = 1
