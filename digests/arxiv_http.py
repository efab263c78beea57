"""Talking to arXiv politely: one pace per process, a descriptive User-Agent, throttling waited out.

arXiv asks for a User-Agent with a way to reach the operator, at most one request every three
seconds and one connection at a time, and it throttles with 429 or 503 (and, on some hosts,
406) answers. Every HTTP request of ``digests`` goes through ``http_get``:

* it sends ``FEED_USER_AGENT`` with ``ARXIV_CONTACT`` added (``user_agent``) and an ``Accept``
  header;
* requests to an arXiv host (``ARXIV_HOSTS``) take their turn on the process's one ``Pace``: a
  lock held for the whole request, and ``ARXIV_MIN_INTERVAL`` seconds from the end of one request
  to the start of the next, for RSS, the API and the listing pages alike;
* 429 and 503 from any host, and 406 from an arXiv host, are throttling: the request waits (the
  ``Retry-After`` header in seconds or as an HTTP date, else an exponential back-off from
  ``ARXIV_THROTTLE_BACKOFF`` seconds) and is sent again, until ``ARXIV_THROTTLE_DEADLINE``
  seconds would be exceeded; then ``FetchError`` says which status and how long it waited.
  While an arXiv host throttles, every arXiv request of the process waits too.

``listing_parse`` reads arXiv's listing page ``/list/<category>/new``: its "showing X of Y
entries" headings for new, cross and replacement submissions, and the day it lists.
"""

from __future__ import annotations

import email.utils
import http.client
import itertools
import logging
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from urllib.parse import urlsplit

from django.conf import settings

logger = logging.getLogger(__name__)

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
)
HTML_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"
THROTTLE_BACKOFF_MAX = 900.0
THROTTLE_WAIT_MIN = 1.0  # "Retry-After: 0" again and again must not spin until the deadline
ERROR_BODY_BYTES = 64 * 1024
_THROTTLING = {429, 503}
_ARXIV_THROTTLING = {406, 429, 503}


class FetchError(Exception):
    """A request failed for good (network, throttled past the deadline); the message says why."""


@dataclass
class HttpAnswer:
    """The final answer to a request: any status but a throttling one."""

    url: str
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    throttled_for: float = 0.0  # seconds spent waiting out throttling before this answer

    @property
    def status_line(self) -> str:
        return f"HTTP {self.status} {self.reason}".rstrip()


# --- The pace ----------------------------------------------------------------------------------


class Pace:
    """One connection to arXiv at a time, ``ARXIV_MIN_INTERVAL`` seconds apart.

    ``sleep`` and ``clock`` are injectable so tests can see the waits without waiting.
    """

    def __init__(
        self,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sleep = sleep
        self.clock = clock
        self._connection = threading.Lock()  # held for the whole request
        self._state = threading.Lock()
        self._next_at = float("-inf")

    @contextmanager
    def turn(self) -> Iterator[float]:
        """Hold the one connection: wait for the slot, yield the wait, set the next slot."""
        with self._connection:
            wait = max(0.0, self._next_at - self.clock())
            if wait:
                self.sleep(wait)
            try:
                yield wait
            finally:
                self.defer(float(settings.ARXIV_MIN_INTERVAL))

    def defer(self, seconds: float) -> None:
        """No request of this pace starts within ``seconds`` from now (throttled: all wait)."""
        with self._state:
            self._next_at = max(self._next_at, self.clock() + seconds)


PACE = Pace()  # every arXiv request of the process


def is_arxiv_host(host: str) -> bool:
    host = host.lower()
    return any(host == known or host.endswith(f".{known}") for known in settings.ARXIV_HOSTS)


def user_agent() -> str:
    """``FEED_USER_AGENT`` with the ``ARXIV_CONTACT`` address added, as arXiv asks."""
    base = settings.FEED_USER_AGENT.strip()
    contact = settings.ARXIV_CONTACT.strip()
    if not contact:
        return base
    if base.endswith(")"):
        return f"{base[:-1]}; mailto:{contact})"
    return f"{base} (mailto:{contact})"


# --- Requests ----------------------------------------------------------------------------------


def http_get(
    *,
    url: str,
    accept: str = FEED_ACCEPT,
    headers: dict[str, str] | None = None,
    limit: int | None = None,
    pace: Pace | None = None,
) -> HttpAnswer:
    """GET ``url`` politely (module docstring); throttling is waited out, any other answer is
    returned. ``limit``: read at most this many bytes of a 2xx body. Raises ``FetchError``."""
    pace = pace or PACE
    arxiv = is_arxiv_host(urlsplit(url).hostname or "")
    throttling = _ARXIV_THROTTLING if arxiv else _THROTTLING
    sent = {"User-Agent": user_agent(), "Accept": accept} | (headers or {})
    started = pace.clock()
    waited = 0.0
    for attempt in itertools.count():
        answer = _request_send(url=url, headers=sent, limit=limit, pace=pace if arxiv else None)
        if answer.status not in throttling:
            answer.throttled_for = waited
            return answer
        wait = throttle_wait(answer.headers.get("Retry-After"), attempt=attempt)
        _deadline_check(answer, wait=wait, waited=waited, elapsed=pace.clock() - started)
        logger.warning("%s: %s, waiting %s s (throttled)", url, answer.status_line, _secs(wait))
        if arxiv:
            pace.defer(wait)
        pace.sleep(wait)
        waited += wait
    raise AssertionError("unreachable: the deadline ends the loop")


def throttle_wait(retry_after: str | None, *, attempt: int) -> float:
    """Seconds to wait after the ``attempt``-th throttled answer (0-based)."""
    asked = retry_after_seconds(retry_after)
    if asked is None:
        base = float(settings.ARXIV_THROTTLE_BACKOFF)
        asked = min(base * 2**attempt, max(base, THROTTLE_BACKOFF_MAX))
    return max(asked, THROTTLE_WAIT_MIN)


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` header (delay-seconds or an HTTP date) in seconds; None if unreadable."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def _deadline_check(answer: HttpAnswer, *, wait: float, waited: float, elapsed: float) -> None:
    deadline = float(settings.ARXIV_THROTTLE_DEADLINE)
    if elapsed + wait <= deadline:
        return
    raise FetchError(
        f"throttled: {answer.status_line} after waiting {_secs(waited)} s in all; the next wait "
        f"({_secs(wait)} s) would pass ARXIV_THROTTLE_DEADLINE ({_secs(deadline)} s), gave up"
    )


def _secs(seconds: float) -> str:
    return f"{seconds:.0f}" if seconds >= 10 else f"{seconds:.3g}"


def _request_send(
    *, url: str, headers: dict[str, str], limit: int | None, pace: Pace | None
) -> HttpAnswer:
    if pace is None:
        return _request_once(url=url, headers=headers, limit=limit)
    with pace.turn():
        return _request_once(url=url, headers=headers, limit=limit)


def _request_once(*, url: str, headers: dict[str, str], limit: int | None) -> HttpAnswer:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (http/https only)
    try:
        with urllib.request.urlopen(request, timeout=settings.FEED_TIMEOUT) as response:  # noqa: S310
            body = response.read(-1 if limit is None else limit)
            return HttpAnswer(url, response.status, response.reason, dict(response.headers), body)
    except urllib.error.HTTPError as exc:
        with exc:
            return HttpAnswer(url, exc.code, str(exc.reason), dict(exc.headers), _error_body(exc))
    except urllib.error.URLError as exc:
        raise FetchError(f"network error: {exc.reason}") from exc
    except (OSError, http.client.HTTPException) as exc:  # timeouts, resets mid-body
        raise FetchError(f"network error: {exc or type(exc).__name__}") from exc


def _error_body(error: urllib.error.HTTPError) -> bytes:
    try:
        return error.read(ERROR_BODY_BYTES)
    except (OSError, http.client.HTTPException):
        return b""


# --- The listing page --------------------------------------------------------------------------

# arXiv's headings, current ("Cross submissions", "Replacement submissions") and older
# ("Cross-lists", "Replacements"): "New submissions (showing 92 of 92 entries)".
_LISTING_SECTION = re.compile(
    r"(New submissions|Cross submissions|Cross-lists|Replacement submissions|Replacements)"
    r"\s*\(\s*showing\s+(?:first\s+)?\d+\s+of\s+(\d+)\s+entries\s*\)",
    re.IGNORECASE,
)
_LISTING_DAY = re.compile(r"Showing new listings for\s+\w+,\s+(\d{1,2}\s+\w+\s+\d{4})", re.I)
_SECTION_KIND = {
    "new submissions": "new",
    "cross submissions": "cross",
    "cross-lists": "cross",
    "replacement submissions": "replaced",
    "replacements": "replaced",
}


class ListingError(Exception):
    """A listing page could not be read; the message says why."""


@dataclass
class ListingCounts:
    """What arXiv's listing page of one category says it lists (the Y of "showing X of Y")."""

    new: int = 0
    cross: int = 0
    replaced: int = 0
    day: date | None = None  # "Showing new listings for Thursday, 13 August 2026"
    sections: list[str] = field(default_factory=list)


def listing_parse(markup: str) -> ListingCounts:
    """The totals of a ``/list/<category>/new`` page; a section not shown has no entries."""
    found = _LISTING_SECTION.findall(markup)
    if not found:
        raise ListingError("no 'New submissions (showing X of Y entries)' heading on the page")
    counts = ListingCounts(day=_listing_day(markup))
    for heading, total in found:
        kind = _SECTION_KIND[heading.lower()]
        setattr(counts, kind, int(total))
        counts.sections.append(heading)
    return counts


def _listing_day(markup: str) -> date | None:
    found = _LISTING_DAY.search(markup)
    if found is None:
        return None
    try:
        return datetime.strptime(" ".join(found.group(1).split()), "%d %B %Y").date()
    except ValueError:
        return None


def listing_fetch(*, category: str, pace: Pace | None = None) -> ListingCounts:
    """Read ``ARXIV_LISTING_URL`` for ``category``. Raises ``ListingError`` with the reason."""
    url = settings.ARXIV_LISTING_URL.format(category=category)
    try:
        answer = http_get(url=url, accept=HTML_ACCEPT, limit=settings.FEED_MAX_BYTES, pace=pace)
    except FetchError as exc:
        raise ListingError(f"{url}: {exc}") from exc
    if answer.status != 200:
        raise ListingError(f"{url}: {answer.status_line}")
    try:
        return listing_parse(answer.body.decode("utf-8", errors="replace"))
    except ListingError as exc:
        raise ListingError(f"{url}: {exc}") from exc
