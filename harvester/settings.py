"""Scrapy settings for harvester.

Defaults are for a polite live crawl. `scrapy harvest --offline` (or
`-s VCR_CASSETTE=cassettes`) replays the bundled cassettes instead; see
README for the politeness policy per site.
"""
import os

BOT_NAME = "harvester"
SPIDER_MODULES = ["spiders"]
NEWSPIDER_MODULE = "spiders"
COMMANDS_MODULE = "harvester.commands"

# Identify the crawler honestly; users set their own contact in HARVEST_CONTACT
# or override USER_AGENT entirely.
HARVEST_CONTACT = os.environ.get("HARVEST_CONTACT", "")
USER_AGENT = "harvester/0.1 (clinical-trials crawler" + (
    f"; +{HARVEST_CONTACT})" if HARVEST_CONTACT else ")"
)

# --- politeness (live crawls) ----------------------------------------------
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 8
CONCURRENT_REQUESTS_PER_DOMAIN = 2
DOWNLOAD_DELAY = 1.0
RANDOMIZE_DOWNLOAD_DELAY = True
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 60.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0
DOWNLOAD_TIMEOUT = 60
RETRY_ENABLED = True
RETRY_TIMES = 3
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
COOKIES_ENABLED = False  # no site needs a session; also keeps tldextract out of the path

# --- storage -----------------------------------------------------------------
HARVEST_DB = os.environ.get("HARVEST_DB", "harvest.sqlite3")

ITEM_PIPELINES = {
    "pipelines.validate.ValidationPipeline": 100,
    "pipelines.store.StorePipeline": 800,
}

# --- cassettes (vcrpy) ---------------------------------------------------------
# Empty: live. A file or a directory of <spider>.yaml replays/records.
VCR_CASSETTE = ""
VCR_RECORD_MODE = "none"
VCR_MATCH_ON = ["method", "uri"]
DOWNLOADER_MIDDLEWARES = {
    # Above every built-in middleware so it sees the bytes the server sent
    # (before decompression) and redirects as they happened.
    "harvester.middlewares.VcrCassetteMiddleware": 950,
}

# --- run report ----------------------------------------------------------------
HARVEST_REPORT_DIR = "reports"
EXTENSIONS = {
    "harvester.extensions.RunReport": 500,
}

# --- misc --------------------------------------------------------------------
TELNETCONSOLE_ENABLED = False
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = "INFO"
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
