"""Settings for Daily AI Insights, read from the environment.

Every setting that is not a secret has a working development default: SQLite, Celery tasks run
eagerly when no broker is configured, email written to a local folder. `.env.example` lists every
variable. With DEBUG off, missing secrets stop start-up with a message naming the variable.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false/1/0), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)

SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105 - DEBUG only

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env("SITE_URL", "http://localhost:8000").rstrip("/")

INSTALLED_APPS = [
    "newsletter.apps.NewsletterAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "anymail",
    "digests",
    "subscribers",
    "newsletter.apps.NewsletterConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The admin in the editor's chosen language (the language cookie), else LANGUAGE_CODE.
    "newsletter.middleware.AdminLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "newsletter.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "newsletter.wsgi.application"

# SQLite is the embedded default; DATABASE_URL=postgres://... selects PostgreSQL.
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Concurrent writers (two builds racing) wait for the lock instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "ko"
LANGUAGES = [("ko", "한국어"), ("en", "English"), ("ja", "日本語")]
# One catalogue for the project (pages, emails, the chart, the admin): locale/<lang>/LC_MESSAGES.
# The .mo files are committed (tests/test_locale.py checks they match the .po files).
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(BASE_DIR / "media")))
# In development WhiteNoise serves straight from the apps' static folders; production serves
# what collectstatic put in STATIC_ROOT.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Email -------------------------------------------------------------------------------------
# The embedded default writes every email as a file under EMAIL_FILE_PATH.
EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = Path(env("EMAIL_FILE_PATH", str(BASE_DIR / "var" / "sent-emails")))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Daily AI Insights <digest@localhost>")
# SMTP relay (EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend): Postfix, Amazon SES's
# SMTP endpoint, Haraka, ... EMAIL_USE_TLS is STARTTLS (port 587), EMAIL_USE_SSL implicit TLS
# (port 465); at most one of them.
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30)  # seconds per SMTP command
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Every ANYMAIL_<NAME> environment variable becomes ANYMAIL["<NAME>"].
ANYMAIL = {
    key.removeprefix("ANYMAIL_"): value
    for key, value in os.environ.items()
    if key.startswith("ANYMAIL_")
}

# ESPs whose event webhooks (/anymail/<esp>/tracking/) are routed besides EMAIL_BACKEND's, e.g.
# "amazon_ses" when sending through SES's SMTP endpoint; every other ESP's webhook answers 404.
EMAIL_WEBHOOK_ESPS = env_list("EMAIL_WEBHOOK_ESPS", [])

# --- Readers -----------------------------------------------------------------------------------
# Which wording of the signup page a reader agreed to; bump it when the consent text changes.
CONSENT_WORDING_VERSION = env("CONSENT_WORDING_VERSION", "2026-11-v1")
CONFIRM_TOKEN_MAX_AGE_DAYS = env_int("CONFIRM_TOKEN_MAX_AGE_DAYS", 7)
# Preference and unsubscribe links sit in every email: they stay valid for a long time.
PREFERENCES_TOKEN_MAX_AGE_DAYS = env_int("PREFERENCES_TOKEN_MAX_AGE_DAYS", 365)
PENDING_PURGE_DAYS = env_int("PENDING_PURGE_DAYS", 14)
SIGNUP_RATE_LIMIT_PER_IP = env_int("SIGNUP_RATE_LIMIT_PER_IP", 10)  # per hour
SIGNUP_RATE_LIMIT_PER_EMAIL = env_int("SIGNUP_RATE_LIMIT_PER_EMAIL", 3)  # per hour
SOFT_BOUNCE_LIMIT = env_int("SOFT_BOUNCE_LIMIT", 3)
LIST_ID = env("LIST_ID", "Daily AI Insights <daily-ai-insights.localhost>")

# --- Delivery ----------------------------------------------------------------------------------
# The daily send time an approval defaults to (07:00 in Korea: after the evening announcement).
DIGEST_SEND_TIMEZONE = env("DIGEST_SEND_TIMEZONE", "Asia/Seoul")
DIGEST_SEND_HOUR = env_int("DIGEST_SEND_HOUR", 7)
DIGEST_SEND_MINUTE = env_int("DIGEST_SEND_MINUTE", 0)
# The weekly issue (readers with the weekly cadence): sent on WEEKLY_SEND_DAY (mon..sun) at
# WEEKLY_SEND_TIME (HH:MM, in DIGEST_SEND_TIMEZONE), built from the week's sent daily issues with
# the WEEKLY_TOP_PAPERS most important papers per category.
WEEKLY_SEND_DAY = env("WEEKLY_SEND_DAY", "sat")
WEEKLY_SEND_TIME = env("WEEKLY_SEND_TIME", "09:00")
if WEEKLY_SEND_DAY.strip().lower()[:3] not in {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}:
    raise ImproperlyConfigured(f"WEEKLY_SEND_DAY must be mon..sun, got {WEEKLY_SEND_DAY!r}")
if not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", WEEKLY_SEND_TIME.strip()):
    raise ImproperlyConfigured(f"WEEKLY_SEND_TIME must be HH:MM, got {WEEKLY_SEND_TIME!r}")
WEEKLY_TOP_PAPERS = env_int("WEEKLY_TOP_PAPERS", 5)
# A reader's keyword rules: at most KEYWORDS_MAX lines of each kind, KEYWORD_MAX_CHARS each.
KEYWORDS_MAX = env_int("KEYWORDS_MAX", 20)
KEYWORD_MAX_CHARS = env_int("KEYWORD_MAX_CHARS", 60)
# For lists that trust the pipeline: a draft nobody has touched is approved automatically at
# DIGEST_AUTO_APPROVE_HOUR:MINUTE (in DIGEST_SEND_TIMEZONE) after its build. Off by default.
DIGEST_AUTO_APPROVE = env_bool("DIGEST_AUTO_APPROVE", False)
DIGEST_AUTO_APPROVE_HOUR = env_int("DIGEST_AUTO_APPROVE_HOUR", 6)
DIGEST_AUTO_APPROVE_MINUTE = env_int("DIGEST_AUTO_APPROVE_MINUTE", 30)
# Addresses offered for "send a test" besides the editor's own, comma-separated.
DIGEST_TEST_ADDRESSES = env_list("DIGEST_TEST_ADDRESSES", [])
# Recipients per ESP call where the backend batch-sends with merge_data (Mailgun's limit: 1,000).
DELIVERY_BATCH_SIZE = env_int("DELIVERY_BATCH_SIZE", 1000)
# A reader whose categories have no section that day gets a short note ("note") or nothing ("skip").
DELIVERY_EMPTY_POLICY = env("DELIVERY_EMPTY_POLICY", "note")
# A delivery claimed this long ago and still "sending" belongs to a dead worker: it becomes
# "unknown" (its ESP call may have gone out) and is listed for the editor, never resent blindly.
DELIVERY_STALE_AFTER_SECONDS = env_int("DELIVERY_STALE_AFTER_SECONDS", 600)
DELIVERY_MAX_RETRIES = env_int("DELIVERY_MAX_RETRIES", 6)
# SMTP connections each worker keeps open and sends over in parallel.
DELIVERY_SMTP_CONNECTIONS = env_int("DELIVERY_SMTP_CONNECTIONS", 4)
# Recipients per second across all workers together (a shared limiter in Redis; unset or 0 =
# unlimited). Set it to the ESP's or relay's quota, e.g. 14 for a new Amazon SES account.
DELIVERY_RATE_PER_SECOND = env_int("DELIVERY_RATE_PER_SECOND", 0)
# Where the limiter keeps its window: Redis (default: REDIS_CACHE_URL, else a redis:// broker).
DELIVERY_RATE_REDIS_URL = env("DELIVERY_RATE_REDIS_URL")
# A send that meets this many failed ESP calls or refused readers in a row pauses itself until
# an editor resumes it (admin, or `send_digest --date`). 0 = never pause.
DELIVERY_PAUSE_AFTER_ERRORS = env_int("DELIVERY_PAUSE_AFTER_ERRORS", 25)
# Readers whose deliveries are made before the first emails go out; the rest follow in ranges
# of DELIVERY_PLAN_RANGE while the first chunks are sent.
DELIVERY_PLAN_FIRST = env_int("DELIVERY_PLAN_FIRST", 20000)
DELIVERY_PLAN_RANGE = env_int("DELIVERY_PLAN_RANGE", 150000)

# --- Team chats (subscribers/channels/) ------------------------------------------------------
# Telegram: the bot's token (from @BotFather; empty = no Telegram), the secret Telegram sends in
# the X-Telegram-Bot-Api-Secret-Token header of each update (set with `manage.py
# telegram_webhook`), and the Bot API's address (tests point it at a fake).
TELEGRAM_BOT_TOKEN = env("TELEGRAM_BOT_TOKEN")
TELEGRAM_WEBHOOK_SECRET = env("TELEGRAM_WEBHOOK_SECRET")
TELEGRAM_API_URL = env("TELEGRAM_API_URL", "https://api.telegram.org").rstrip("/")
# Readers may add only Slack (hooks.slack.com) and Discord (discord.com) webhooks over https, so
# that nobody can make this server post elsewhere; `host:port` entries here are let in too
# (over http or https: a self-hosted Slack-compatible service, or a test's fake).
CHANNEL_WEBHOOK_HOSTS_EXTRA = env_list("CHANNEL_WEBHOOK_HOSTS_EXTRA", [])
# Channels one worker posts to at once (threads that only wait on HTTP).
CHANNEL_CONCURRENCY = env_int("CHANNEL_CONCURRENCY", 8)
# Seconds one post to a chat service may take.
CHANNEL_TIMEOUT = env_float("CHANNEL_TIMEOUT", 10.0)
# Channels per send task (each its own message or messages).
CHANNEL_BATCH_SIZE = env_int("CHANNEL_BATCH_SIZE", 50)
# A Retry-After up to this many seconds is waited out in the task; a longer one retries the
# task after it.
CHANNEL_RETRY_AFTER_WAIT = env_float("CHANNEL_RETRY_AFTER_WAIT", 5.0)
# Messages per second to the Telegram Bot API, all workers together (shared in Redis like the
# email rate). Telegram allows a bot about 30 across chats, and 1 per second in one chat, which
# the parts of one issue respect.
TELEGRAM_RATE_PER_SECOND = env_int("TELEGRAM_RATE_PER_SECOND", 25)

# --- Celery ------------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL")
# No broker configured: run tasks inline, so the embedded default needs nothing running.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND") or None
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 30 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 25 * 60)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# --- Cache -------------------------------------------------------------------------------------
REDIS_CACHE_URL = env("REDIS_CACHE_URL")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_CACHE_URL}
        if REDIS_CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Collect (arXiv feeds) ---------------------------------------------------------------------
FEED_USER_AGENT = env(
    "FEED_USER_AGENT",
    "DailyAIInsights/0.1 (self-hosted newsletter; +https://github.com/daily-ai-insights)",
)
# arXiv asks for at most one request every 3 seconds.
ARXIV_MIN_INTERVAL = env_float("ARXIV_MIN_INTERVAL", 3.0)
ARXIV_HOSTS = env_list(
    "ARXIV_HOSTS", ["arxiv.org", "export.arxiv.org", "rss.arxiv.org", "lanl.arxiv.org"]
)
# The contact address in the User-Agent of every request to arXiv (arXiv asks for one).
ARXIV_CONTACT = env("ARXIV_CONTACT")
# Throttling answers (406/429/503) are waited out with back-off for at most this many seconds.
ARXIV_THROTTLE_DEADLINE = env_float("ARXIV_THROTTLE_DEADLINE", 1800.0)
# Without Retry-After, the first wait after a throttling answer; it doubles on each retry.
ARXIV_THROTTLE_BACKOFF = env_float("ARXIV_THROTTLE_BACKOFF", 60.0)
# Read arXiv's listing page of each category (/list/<category>/new: "showing X of Y") and compare
# what it announced with what the feeds gave.
ARXIV_LISTING_CHECK = env_bool("ARXIV_LISTING_CHECK", False)
ARXIV_LISTING_URL = env("ARXIV_LISTING_URL", "https://arxiv.org/list/{category}/new")
# A category is suspect when it gets less than INTEGRITY_SHORT_RATIO of its median over the last
# INTEGRITY_HISTORY_DAYS announcement days, or when at least INTEGRITY_STALE_RATIO of its
# entries were already known (a feed serving an earlier announcement again).
INTEGRITY_HISTORY_DAYS = env_int("INTEGRITY_HISTORY_DAYS", 20)
INTEGRITY_SHORT_RATIO = env_float("INTEGRITY_SHORT_RATIO", 0.5)
INTEGRITY_STALE_RATIO = env_float("INTEGRITY_STALE_RATIO", 0.8)
FEED_TIMEOUT = env_float("FEED_TIMEOUT", 30.0)
FEED_MAX_BYTES = env_int("FEED_MAX_BYTES", 20 * 1024 * 1024)
DIGEST_INCLUDE_CROSSLISTS = env_bool("DIGEST_INCLUDE_CROSSLISTS", True)

# --- Sort and summarise (LLM) ------------------------------------------------------------------
OPENAI_API_KEY = env("OPENAI_API_KEY")
OPENAI_BASE_URL = env("OPENAI_BASE_URL") or None
OPENAI_MODEL = env("OPENAI_MODEL", "gpt-4o-mini")
OPENAI_TIMEOUT = env_float("OPENAI_TIMEOUT", 60.0)
OPENAI_MAX_RETRIES = env_int("OPENAI_MAX_RETRIES", 3)
LLM_CONCURRENCY = env_int("LLM_CONCURRENCY", 4)
LLM_DAILY_TOKEN_BUDGET = env_int("LLM_DAILY_TOKEN_BUDGET", 2_000_000)
# US dollars per million tokens, for the estimated cost shown per digest.
LLM_PRICE_INPUT_PER_MTOK = env_float("LLM_PRICE_INPUT_PER_MTOK", 0.15)
LLM_PRICE_OUTPUT_PER_MTOK = env_float("LLM_PRICE_OUTPUT_PER_MTOK", 0.60)
CLASSIFY_BATCH_SIZE = env_int("CLASSIFY_BATCH_SIZE", 50)
# The server's context window in tokens (prompt + answer): 128000 for gpt-4o-mini; Ollama's
# num_ctx, vLLM's max_model_len, llama.cpp's -c. Prompts are sized to fit it (README).
LLM_CONTEXT_TOKENS = env_int("LLM_CONTEXT_TOKENS", 128_000)
# true for servers that constrain decoding with the whole JSON schema (llama.cpp, vLLM, Ollama):
# each classification batch's answer is then fixed to its ids, in order. Off for OpenAI, whose
# strict mode takes only a subset of JSON Schema.
LLM_GRAMMAR_SCHEMA = env_bool("LLM_GRAMMAR_SCHEMA", False)
# Ceiling of one summary report's answer (max_tokens); a report cut off there is flagged.
LLM_REPORT_MAX_TOKENS = env_int("LLM_REPORT_MAX_TOKENS", 1800)
# false: answers come whole, each call waiting up to OPENAI_TIMEOUT for it (for servers or
# proxies that cannot stream); nothing can be cut off while it is written.
LLM_STREAM = env_bool("LLM_STREAM", True)
# Answers are streamed: a call with no new byte for this long (before the first token, which
# includes the server's prompt processing, or between tokens) is cut off as stalled.
LLM_STALL_SECONDS = env_float("LLM_STALL_SECONDS", 60.0)
# A streamed answer that produces the same sentence or line this many times is cut off as a loop.
LLM_REPEAT_LIMIT = env_int("LLM_REPEAT_LIMIT", 4)

# The languages the newsletter offers (readers choose one); the first is the default, the
# language of the main text. DIGEST_LANGUAGE alone (older setups) offers one language.
DIGEST_LANGUAGES = env_list("DIGEST_LANGUAGES", [env("DIGEST_LANGUAGE", "ko")])
if not DIGEST_LANGUAGES:
    raise ImproperlyConfigured("DIGEST_LANGUAGES must name at least one language, e.g. ko,en")
DIGEST_LANGUAGE = DIGEST_LANGUAGES[0]

# --- Editors told (subscribers/notices.py) ------------------------------------------------------
# Who gets the editors' notices; empty: the active staff in the Editors group.
EDITOR_NOTIFY_EMAILS = env_list("EDITOR_NOTIFY_EMAILS", [])
# A Slack-compatible incoming webhook that gets the same notices; empty: none.
NOTIFY_WEBHOOK_URL = env("NOTIFY_WEBHOOK_URL")
# The editors' language: the notices', and the admin's until an editor chooses another in its
# header (newsletter/middleware.py). One of LANGUAGES.
EDITOR_LANGUAGE = env("EDITOR_LANGUAGE", LANGUAGE_CODE)
# How long before the send time an unapproved draft is called to the editors' attention.
NOTIFY_APPROVAL_LEAD_MINUTES = env_int("NOTIFY_APPROVAL_LEAD_MINUTES", 60)
DIGEST_TOP_PAPERS = env_int("DIGEST_TOP_PAPERS", 5)
DIGEST_TITLE = env("DIGEST_TITLE", "Daily Artificial Intelligence Insights : Papers")

# --- Chart -------------------------------------------------------------------------------------
# A TTF/OTF with Hangul; empty means: look for a system CJK font, then the bundled NanumGothic.
CHART_FONT_PATH = env("CHART_FONT_PATH")

# --- Schedule ----------------------------------------------------------------------------------
# arXiv announces at 20:00 US Eastern, Sunday to Thursday; the daily run starts after it.
DIGEST_SCHEDULE_TIMEZONE = env("DIGEST_SCHEDULE_TIMEZONE", "America/New_York")
DIGEST_SCHEDULE_HOUR = env_int("DIGEST_SCHEDULE_HOUR", 20)
DIGEST_SCHEDULE_MINUTE = env_int("DIGEST_SCHEDULE_MINUTE", 45)
DIGEST_SCHEDULE_DAYS = env("DIGEST_SCHEDULE_DAYS", "sun,mon,tue,wed,thu")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "digests": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
        "subscribers": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    },
}

# --- Security (HTTPS) ---------------------------------------------------------------------------
# In production (DEBUG off) the site sits behind a TLS proxy (load balancer, nginx, Caddy) that
# sets X-Forwarded-Proto: requests it marks https count as secure, plain HTTP is redirected to
# HTTPS, HSTS is sent and cookies go over HTTPS only; `manage.py check --deploy` passes. /healthz
# is never redirected: the load balancer asks it over plain HTTP. Development (DEBUG on) does
# none of this.


def env_proxy_header(name: str, default: str) -> tuple[str, str] | None:
    """The header a TLS proxy marks HTTPS requests with, as `HTTP_<HEADER>,<value>` (Django's
    spelling, e.g. HTTP_X_FORWARDED_PROTO,https), or empty for none. Trust it only behind a proxy
    that always sets it: otherwise a client could send it."""
    parts = [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]
    if not parts:
        return None
    if len(parts) != 2 or not parts[0].startswith("HTTP_"):
        raise ImproperlyConfigured(f"{name} must be HTTP_<HEADER>,<value> or empty, got {parts!r}")
    return (parts[0], parts[1])


SECURE_PROXY_SSL_HEADER = env_proxy_header(
    "SECURE_PROXY_SSL_HEADER", "" if DEBUG else "HTTP_X_FORWARDED_PROTO,https"
)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Seconds browsers remember to use only HTTPS (a year; 0 = no HSTS). Raising it is easy, taking
# it back is not: browsers keep the last value they saw.
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = env_bool("SECURE_CONTENT_TYPE_NOSNIFF", True)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
