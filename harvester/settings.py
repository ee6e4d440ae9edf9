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


def user_agent(contact: str = "") -> str:
    """The crawler's User-Agent, with the operator's contact when given."""
    return "harvester/0.1 (clinical-trials crawler" + (f"; +{contact})" if contact else ")")


USER_AGENT = user_agent(HARVEST_CONTACT)

# --- politeness (live crawls) ----------------------------------------------
# The policy per site is in README ("Running it in production"); the spiders'
# custom_settings lower the per-domain concurrency and raise the delay.
ROBOTSTXT_OBEY = True
ROBOTSTXT_PARSER = "scrapy.robotstxt.ProtegoRobotParser"
CONCURRENT_REQUESTS = 8
CONCURRENT_REQUESTS_PER_DOMAIN = 2
DOWNLOAD_DELAY = 1.0  # the floor; AutoThrottle only ever raises it
DOWNLOAD_DELAY_JITTER = 0.5  # each wait is 0.5-1.5 x the delay
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 60.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0
DOWNLOAD_TIMEOUT = 60
COOKIES_ENABLED = False  # no site needs a session; also keeps tldextract out of the path

# --- faults ------------------------------------------------------------------
# Retries: Scrapy's RetryMiddleware with backoff and Retry-After
# (harvester.middlewares.BackoffRetryMiddleware, in its place at 550).
RETRY_ENABLED = True
RETRY_TIMES = 3
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
HARVEST_RETRY_AFTER_MAX = 120.0  # seconds: a longer Retry-After is capped to this
HARVEST_RETRY_BACKOFF_BASE = 2.0  # seconds before the 1st retry, doubling after
HARVEST_RETRY_BACKOFF_MAX = 60.0
# A body cut short by the server reaches the spider (flag "dataloss") after
# its retries, and is kept as a counted Reject instead of vanishing.
DOWNLOAD_FAIL_ON_DATALOSS = False
# Largest body read (compressed as sent, and again once decompressed: a
# gzip bomb stops inflating here), and the size that logs a warning. Scrapy's
# 1 GiB would let one page hold a gigabyte of memory; each spider sets what
# fits its pages (custom_settings), this is for anything else.
DOWNLOAD_MAXSIZE = 32 * 1024 * 1024
DOWNLOAD_WARNSIZE = 8 * 1024 * 1024
# 404/410 mark the stored record removed; `scrapy harvest` does not count them as failures.
HARVEST_EXPECTED_HTTP_STATUSES = [404, 410]

# --- incremental runs (-a incremental=1) ----------------------------------------
# Ask for changes since the store's watermark minus this many days.
HARVEST_INCREMENTAL_OVERLAP_DAYS = 2
# CT.gov completeness: an incremental run lists every NCT ID (fields=NCTId)
# when the last listing is this many days old; studies the store has and
# the listing lacks are fetched by ID (a 404 marks them removed), at most
# this many (more is taken for a broken listing and refused); studies the
# listing names and the store lacks are fetched, at most this many.
HARVEST_CTGOV_ID_LISTING_DAYS = 7
HARVEST_CTGOV_MAX_REMOVALS = 5000
HARVEST_CTGOV_MAX_MISSING_FETCHES = 5000
HARVEST_REPORT_MAX_IDS = 1000  # NCT IDs a run report lists per kind (missing, removed, ...)

# --- storage -----------------------------------------------------------------
HARVEST_DB = os.environ.get("HARVEST_DB", "harvest.sqlite3")
# Records written per store transaction (pipelines.store.StorePipeline); a
# JOBDIR request's records are written before the request counts as done.
HARVEST_STORE_BATCH_SIZE = 500

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
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "harvester.middlewares.BackoffRetryMiddleware": 550,
    # If-None-Match / If-Modified-Since and 304s for incremental runs
    "harvester.middlewares.ConditionalRequestMiddleware": 560,
    # Above every built-in middleware so it sees the bytes the server sent
    # (before decompression) and redirects as they happened.
    "harvester.middlewares.VcrCassetteMiddleware": 950,
    # Pages Scrapy would drop quietly become failed pages with their reason
    # (harvester/faults.py): redirects off the site, bodies too large.
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
    "harvester.faults.OffsiteRedirects": 50,
    "harvester.redact.BaseUrlAuthMiddleware": 310,
    "harvester.faults.DownloadSizeLimit": 580,
    "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware": None,
    "harvester.faults.BoundedDecompression": 590,
}

# --- resume (JOBDIR) -------------------------------------------------------------
# With -s JOBDIR=dir the request queue lives in dir/requests.queue/frontier.sqlite3,
# committed at every step, so a crawl killed even with SIGKILL resumes where it
# was (harvester/frontier.py). Without JOBDIR, Scrapy's memory queue.
SCHEDULER_PRIORITY_QUEUE = "harvester.frontier.FrontierQueue"
SPIDER_MIDDLEWARES = {
    "harvester.frontier.FrontierAck": 5,
}

# --- run report and monitoring ----------------------------------------------------
HARVEST_REPORT_DIR = "reports"
# Fill rate of every field against the first good run's (harvester/monitoring.py).
HARVEST_BASELINE_DIR = "baselines"
HARVEST_DRIFT_THRESHOLD = 0.3  # a drop of 30 points in a field's fill rate ...
HARVEST_DRIFT_MIN_BASELINE = 0.5  # ... that was filled in at least half the records
HARVEST_DRIFT_MIN_ITEMS = 20  # smaller runs are not compared
LOGSTATS_INTERVAL = 60.0  # a progress line every minute
EXTENSIONS = {
    "scrapy.extensions.logstats.LogStats": None,
    "harvester.monitoring.ProgressLog": 0,
    "harvester.monitoring.FieldFillMonitor": 400,  # before RunReport: the report carries its drift
    "harvester.extensions.RunReport": 500,
    "harvester.extensions.GcTuning": 0,
}
# Cyclic-GC thresholds for crawls (harvester.extensions.GcTuning): CPython's
# default (700, 10, 10) walks each 1,000-study page's objects over and over.
HARVEST_GC_THRESHOLD = [50000, 20, 100]

# --- misc --------------------------------------------------------------------
# No code-execution consoles in unattended crawls (telnet, and the local HTTP
# remote-control server Scrapy 2.19 starts by default).
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
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
