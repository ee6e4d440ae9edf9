"""`scrapy enqueue <spider> NCT...|URL...`: push work for the workers of a
distributed crawl to the spider's Redis key (`<spider>:start_urls`).

    scrapy enqueue ctgov NCT02513394 NCT04008524       # the studies' API requests
    scrapy enqueue veeva https://ctv.veeva.com/study/...
    scrapy enqueue ctgov -a cond="breast cancer"        # what `crawl -a` would start with
    scrapy enqueue ctgov NCT02513394 -a base_url=http://127.0.0.1:8080   # -a applies to each
    cut -f1 ids.txt | scrapy enqueue ctgov -            # one NCT ID or URL per line
    scrapy enqueue ctgov --reset NCT02513394            # a new crawl: forget what was fetched

Each NCT ID or URL is turned into the request(s) the spider itself would make
(`harvester.distributed.requests_for_nct` / `requests_for_url`): an NCT ID for
ctgov becomes `GET /api/v2/studies/<NCT>` with its callback, as for
`-a nct=`; spiders whose URLs do not follow from the ID (veeva, medpath)
refuse NCT IDs. `-a` arguments are given to the spider for each of them;
with no NCT ID or URL, what the spider starts with for the `-a` arguments
alone is pushed. Duplicates are pushed once, and everything is checked
before anything is pushed. The Redis server is `REDIS_URL`; workers are
`HARVEST_BACKEND=redis scrapy crawl <spider>`.
"""
from __future__ import annotations

import json
import sys

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError
from scrapy.spiderloader import get_spider_loader
from scrapy.utils.conf import arglist_to_dict



class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "<spider> [NCT...|URL...|-] [-a NAME=VALUE ...] [--reset]"

    def short_desc(self) -> str:
        return "Push NCT IDs or URLs to a spider's Redis queue for distributed workers"

    def long_desc(self) -> str:
        return __doc__

    def add_options(self, parser) -> None:
        super().add_options(parser)
        parser.add_argument("-a", dest="spargs", action="append", default=[], metavar="NAME=VALUE",
                            help="spider argument, for each NCT ID/URL (alone: push what the spider "
                                 "starts with for these)")
        parser.add_argument("--reset", action="store_true",
                            help="clear the spider's shared request queue and dupefilter first (a new crawl)")
        parser.add_argument("--dry-run", action="store_true", help="print the requests, push nothing")

    def process_options(self, args, opts) -> None:
        super().process_options(args, opts)
        try:
            opts.spargs = arglist_to_dict(opts.spargs)
        except ValueError:
            raise UsageError("Invalid -a value, use -a NAME=VALUE", print_help=False) from None

    def run(self, args, opts) -> None:
        if not args:
            raise UsageError("name a spider, then NCT IDs or URLs (or - to read them from stdin)")
        try:  # here, not at the top: Scrapy loads every command, and the core install has no Redis
            from harvester.distributed import (
                crawl_keys,
                redis_client,
                requests_for_entry,
                spider_start_requests,
                start_key,
            )
        except ImportError as exc:
            raise UsageError(str(exc), print_help=False) from None
        name, entries = args[0], args[1:]
        try:
            spidercls = get_spider_loader(self.settings).load(name)
        except KeyError:
            raise UsageError(f"no spider {name!r}", print_help=False) from None
        if entries == ["-"]:
            entries = [line.strip() for line in sys.stdin if line.strip() and not line.startswith("#")]
        elif "-" in entries:
            raise UsageError("'-' (read stdin) cannot be mixed with other arguments", print_help=False)
        if not entries and not opts.spargs and not opts.reset:
            raise UsageError("nothing to push: give NCT IDs, URLs, '-' or -a arguments", print_help=False)

        requests: list[dict] = []
        errors: list[str] = []
        if opts.spargs and not entries:
            try:
                requests += spider_start_requests(spidercls, self.settings, **opts.spargs)
            except Exception as exc:  # the spider's own argument checks, or a bug: report, push nothing
                errors.append(f"-a {' '.join(f'{k}={v}' for k, v in opts.spargs.items())}: {_why(exc)}")
        for entry in entries:
            try:
                requests += requests_for_entry(spidercls, entry, self.settings, spargs=opts.spargs)
            except Exception as exc:
                errors.append(f"{entry}: {_why(exc)}")
        if errors:
            shown = "\n  ".join(errors[:20]) + (f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else "")
            print(f"enqueue {name}: nothing pushed, {len(errors)} argument(s) refused:\n  {shown}",
                  file=sys.stderr)
            self.exitcode = 2
            return

        key = start_key(self.settings, name)
        lines = list(dict.fromkeys(json.dumps(r, sort_keys=True, separators=(",", ":")) for r in requests))
        if opts.dry_run:
            print("\n".join(lines))
            return
        server = redis_client(self.settings)
        try:
            if opts.reset:
                server.delete(*crawl_keys(self.settings, name))
            for i in range(0, len(lines), 1000):
                server.rpush(key, *lines[i:i + 1000]) if lines[i:i + 1000] else None
            waiting = server.llen(key)
        except Exception as exc:  # redis.exceptions.ConnectionError and kin
            print(f"enqueue {name}: Redis at {_safe(self.settings.get('REDIS_URL'))}: {exc}", file=sys.stderr)
            self.exitcode = 1
            return
        finally:
            server.close()
        reset = " (queue and dupefilter reset)" if opts.reset else ""
        print(f"pushed {len(lines)} request(s) to {key}{reset}; {waiting} waiting")


def _why(exc: Exception) -> str:
    from harvester.distributed import EntryError

    return str(exc) if isinstance(exc, (EntryError, ValueError)) else f"{type(exc).__name__}: {exc}"


def _safe(url: str | None) -> str:
    """The Redis URL without its password."""
    if not url or "@" not in url:
        return str(url)
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"
