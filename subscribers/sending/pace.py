"""Pace and errors: a rate shared by every worker, and a send that pauses itself.

Rate (`DELIVERY_RATE_PER_SECOND`, unset = unlimited): before each ESP call or group of SMTP
messages, `Limiter.acquire(n)` waits until n more recipients fit in the window. The window is
a sliding log (not a token bucket, which lets twice the rate through across a second's edge):
the recipients sent in the last WINDOW_SECONDS, kept in one Redis sorted set by a Lua script
with Redis's own clock, so any number of workers share it. WINDOW_SECONDS is a little longer
than one second: a call reaches the ESP some milliseconds after its permit, and that jitter
must not put more than the quota into any one-second window as the ESP counts it. Without
Redis (the embedded default: one process, eager tasks) the same log is kept in the process.

Errors (`DELIVERY_PAUSE_AFTER_ERRORS`): failed ESP calls and refused readers in a row, across
workers, are counted on the digest (`send_errors_in_row`); a success sets it back to 0. At the
threshold the send pauses (sending -> paused, with the reason): the chunks stop before their
next call and give their unattempted rows back to "queued"; nobody is skipped or sent twice.
An editor resumes (admin, or `send_digest --date`), see `recovery.digest_send_resume`.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import uuid
from typing import Any, Protocol

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from digests.models import Digest

from .transports import Outcome

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 1.1
LIMITER_KEY = "delivery:rate"

# KEYS[1] the log; ARGV: window (ms), limit, n, a unique id. Returns 0 when the n permits were
# taken, else the milliseconds to wait before asking again.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local used = 0
for i = 1, #entries, 2 do
  used = used + tonumber(string.match(entries[i], ':(%d+)$'))
end
if used + n <= limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4] .. ':' .. n)
  redis.call('PEXPIRE', KEYS[1], window * 2)
  return 0
end
local need = used + n - limit
local freed = 0
for i = 1, #entries, 2 do
  freed = freed + tonumber(string.match(entries[i], ':(%d+)$'))
  if freed >= need then
    return math.max(1, tonumber(entries[i + 1]) + window - now)
  end
end
return window
"""


class Limiter(Protocol):
    rate: int

    def acquire(self, n: int) -> None: ...

    def try_acquire(self, n: int) -> float:
        """Takes n permits if they fit now (0.0), else the seconds until they might."""
        ...


class LocalLimiter:
    """The sliding log in this process (one process sends: the embedded default)."""

    def __init__(self, rate: int, window: float = WINDOW_SECONDS) -> None:
        self.rate = rate
        self.window = window
        self.log: collections.deque[tuple[float, int]] = collections.deque()
        self.lock = threading.Lock()

    def acquire(self, n: int) -> None:
        while (wait := self.try_acquire(n)) > 0:
            time.sleep(wait)

    def try_acquire(self, n: int) -> float:
        n = min(n, self.rate)
        with self.lock:
            now = time.monotonic()
            while self.log and self.log[0][0] <= now - self.window:
                self.log.popleft()
            used = sum(count for _, count in self.log)
            if used + n <= self.rate:
                self.log.append((now, n))
                return 0.0
            need, freed, wait = used + n - self.rate, 0, self.window
            for when, count in self.log:
                freed += count
                if freed >= need:
                    wait = when + self.window - now
                    break
        return max(wait, 0.001)


class RedisLimiter:
    """The sliding log in Redis, shared by every worker."""

    def __init__(
        self, rate: int, url: str, window: float = WINDOW_SECONDS, key: str = LIMITER_KEY
    ) -> None:
        import redis  # the celery[redis] extra's client

        self.rate = rate
        self.key = key
        self.window_ms = int(window * 1000)
        self.client: Any = redis.Redis.from_url(url)
        self.script = self.client.register_script(_ACQUIRE)

    def acquire(self, n: int) -> None:
        token = uuid.uuid4().hex
        while (wait := self._take(n, token)) > 0:
            time.sleep(wait)

    def try_acquire(self, n: int) -> float:
        return self._take(n, uuid.uuid4().hex)

    def _take(self, n: int, token: str) -> float:
        n = min(n, self.rate)
        wait_ms = int(self.script(keys=[self.key], args=[self.window_ms, self.rate, n, token]))
        return max(wait_ms, 0) / 1000


def limiter_redis_url() -> str:
    if settings.DELIVERY_RATE_REDIS_URL:
        return str(settings.DELIVERY_RATE_REDIS_URL)
    if settings.REDIS_CACHE_URL:
        return str(settings.REDIS_CACHE_URL)
    broker = str(settings.CELERY_BROKER_URL or "")
    return broker if broker.startswith(("redis://", "rediss://")) else ""


_local: dict[int, LocalLimiter] = {}


def limiter_get() -> Limiter | None:
    """The configured limiter, or None for no limit."""
    rate = int(settings.DELIVERY_RATE_PER_SECOND or 0)
    if rate <= 0:
        return None
    url = limiter_redis_url()
    if url:
        return RedisLimiter(rate, url)
    return _local.setdefault(rate, LocalLimiter(rate))


TELEGRAM_LIMITER_KEY = "channels:telegram:rate"
_local_telegram: dict[int, LocalLimiter] = {}


def telegram_limiter() -> Limiter:
    """Telegram's limit for one bot (about 30 messages a second across its chats), shared by
    every worker like the email rate: TELEGRAM_RATE_PER_SECOND."""
    rate = max(1, int(settings.TELEGRAM_RATE_PER_SECOND))
    url = limiter_redis_url()
    if url:
        return RedisLimiter(rate, url, key=TELEGRAM_LIMITER_KEY)
    return _local_telegram.setdefault(rate, LocalLimiter(rate))


# --- errors in a row, and the pause ---------------------------------------------------------------


def digest_state(*, digest_id: int) -> tuple[str, int]:
    """(status, errors in a row): what a chunk reads before each call."""
    row = Digest.objects.filter(pk=digest_id).values_list("status", "send_errors_in_row").first()
    return (str(row[0]), int(row[1])) if row else ("", 0)


def errors_record(*, digest_id: int, outcome: Outcome, errors_before: int) -> bool:
    """Adds an outcome to the digest's run of errors; pauses the send at the threshold.
    Returns True when the send is (now) paused. One UPDATE, and only when something changed."""
    rows = Digest.objects.filter(pk=digest_id)
    if outcome.ok:
        if errors_before or outcome.trailing_errors:
            rows.update(send_errors_in_row=outcome.trailing_errors)
        in_row = outcome.trailing_errors
    elif outcome.errors:
        rows.update(send_errors_in_row=F("send_errors_in_row") + outcome.errors)
        in_row = int(rows.values_list("send_errors_in_row", flat=True).first() or 0)
    else:
        return False
    limit = int(settings.DELIVERY_PAUSE_AFTER_ERRORS or 0)
    if limit and in_row >= limit:
        reason = outcome.retry_reason or next(
            iter([*outcome.failed.values(), *outcome.unknown.values()]), "errors"
        )
        digest_pause(digest_id=digest_id, reason=f"{in_row} errors in a row; the last: {reason}")
        return True
    return False


def digest_pause(*, digest_id: int, reason: str) -> bool:
    """sending -> paused (conditional: once), with the reason for the editor."""
    now = timezone.now()
    paused = Digest.objects.filter(pk=digest_id, status=Digest.Status.SENDING).update(
        status=Digest.Status.PAUSED,
        send_paused_at=now,
        send_paused_reason=reason[:2000],
        updated_at=now,
    )
    if paused:
        logger.warning("digest %s: send paused: %s", digest_id, reason)
    return paused == 1
