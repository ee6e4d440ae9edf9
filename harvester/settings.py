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

# --- distributed (issue 8) -----------------------------------------------------
# With HARVEST_BACKEND=redis in the environment this process is one worker of a
# distributed crawl: the request queue and the dupefilter live in Redis
# (REDIS_URL), shared by every worker of the same spider on any machine, and
# the spider also takes requests pushed to its key `<spider>:start_urls`
# (`scrapy enqueue`). Without it a crawl runs alone, as configured above.
# Details and the other settings: harvester/distributed.py.
HARVEST_BACKEND = os.environ.get("HARVEST_BACKEND", "local").strip().lower() or "local"
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
if HARVEST_BACKEND == "redis":
    SCHEDULER = "harvester.distributed.RedisScheduler"
    DUPEFILTER_CLASS = "scrapy_redis.dupefilter.RFPDupeFilter"
    SCHEDULER_QUEUE_CLASS = "scrapy_redis.queue.PriorityQueue"
    # One worker stopping must not wipe the queue and dupefilter the others
    # still use; `scrapy enqueue --reset` starts a new crawl instead.
    SCHEDULER_PERSIST = True
    SPIDER_MIDDLEWARES = {
        **globals().get("SPIDER_MIDDLEWARES", {}),
        "harvester.distributed.RedisFeed": 10,
    }
    # Seconds a worker with nothing left to do waits for more before it stops
    # (0: wait for ever, a long-running worker).
    MAX_IDLE_TIME_BEFORE_CLOSE = 0
elif HARVEST_BACKEND != "local":
    raise ValueError(f"HARVEST_BACKEND={HARVEST_BACKEND!r}: expected 'local' or 'redis'")
# --- end distributed (issue 8) -------------------------------------------------
