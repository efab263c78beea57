"""Fixed-window rate limits kept in Django's cache (locmem in development, Redis in production).

The client IP is REMOTE_ADDR. Behind a reverse proxy, have the proxy set REMOTE_ADDR (gunicorn's
`--forwarded-allow-ips` with uWSGI/nginx `real_ip`), or every reader shares the proxy's limit;
X-Forwarded-For is never trusted here because any client can send it.
"""

from __future__ import annotations

import hashlib
import time

from django.core.cache import cache
from django.http import HttpRequest

HOUR = 60 * 60


def _cache_key(scope: str, key: str, window: int) -> str:
    # Hashed: addresses may hold characters a cache backend refuses in a key.
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"ratelimit:{scope}:{int(time.time() // window)}:{digest}"


def ratelimit_hit(*, scope: str, key: str, limit: int, window: int = HOUR) -> bool:
    """Counts one attempt; True while the count in the current window is within `limit`."""
    cache_key = _cache_key(scope, key, window)
    # add() then incr() is atomic on Redis and locked on locmem, so concurrent hits all count.
    cache.add(cache_key, 0, timeout=window + 5)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # expired between add and incr
        cache.add(cache_key, 1, timeout=window + 5)
        count = 1
    return count <= limit


def client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None
