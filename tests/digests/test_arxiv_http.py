"""arXiv's manners: the User-Agent and Accept headers, one pace, throttling waited out, the
listing page read. Throttling is shown against a local HTTP server; the waits are asked of an
injected clock, so no test sleeps for the minutes a real back-off takes."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from digests.arxiv_http import (
    HTML_ACCEPT,
    ListingError,
    Pace,
    http_get,
    listing_fetch,
    listing_parse,
    retry_after_seconds,
    throttle_wait,
    user_agent,
)
from digests.ingest import feed_fetch
from digests.models import Feed
from tests.digests.test_ingest import Answer, FeedServer, feed_server_started

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EMPTY_API = (FIXTURES / "feeds" / "arxiv_api_empty.xml").read_bytes()
LISTING = (FIXTURES / "listings" / "cs.CL_new_2026-08-13.html").read_text()


class FakeTime:
    """A clock that moves only when asked to sleep, and remembers every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def pace(self) -> Pace:
        return Pace(sleep=self.sleep, clock=self.clock)


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server_started() as started:
        yield started


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def scripted(*answers: Answer) -> Callable[[dict[str, str]], Answer]:
    """Answer with ``answers`` in order, then the last one again and again."""
    queue = list(answers)

    def answer(headers: dict[str, str]) -> Answer:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return answer


OK = Answer(200, EMPTY_API)


# --- Headers -----------------------------------------------------------------------------------


def test_the_user_agent_carries_the_contact_address_inside_its_comment(settings) -> None:  # type: ignore[no-untyped-def]
    settings.FEED_USER_AGENT = "DailyAIInsights/0.1 (self-hosted newsletter)"
    settings.ARXIV_CONTACT = "editors@example.com"

    assert (
        user_agent() == "DailyAIInsights/0.1 (self-hosted newsletter; mailto:editors@example.com)"
    )


def test_without_a_contact_the_user_agent_is_the_configured_one(settings) -> None:  # type: ignore[no-untyped-def]
    settings.FEED_USER_AGENT = "DailyAIInsights-test/1.0"
    settings.ARXIV_CONTACT = ""

    assert user_agent() == "DailyAIInsights-test/1.0"


@pytest.mark.django_db
def test_a_feed_request_sends_the_contact_in_the_user_agent_and_an_accept_header(
    server: FeedServer,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.FEED_USER_AGENT = "DailyAIInsights-test/1.0"
    settings.ARXIV_CONTACT = "editors@example.com"
    feed = Feed.objects.create(url=server.serve("/api/query?search_query=cat:cs.CL", OK))

    assert feed_fetch(feed=feed).ok

    sent = server.received[0].headers
    assert sent["User-Agent"] == "DailyAIInsights-test/1.0 (mailto:editors@example.com)"
    assert "application/rss+xml" in sent["Accept"] and "application/atom+xml" in sent["Accept"]


# --- Throttling --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_429_with_retry_after_in_seconds_is_waited_out_and_the_feed_fetched(
    server: FeedServer, fake_time: FakeTime
) -> None:
    throttled = Answer(429, b"slow down", {"Retry-After": "2"})
    feed = Feed.objects.create(url=server.serve("/rss/cs.CL", scripted(throttled, OK)))

    result = feed_fetch(feed=feed, pace=fake_time.pace())

    assert result.ok, result.error
    assert fake_time.sleeps == [2.0]
    assert len(server.received) == 2
    assert result.throttled_for == 2.0
    assert "waited 2 s for throttling" in result.describe()


@pytest.mark.django_db
def test_a_503_without_retry_after_backs_off_exponentially_from_the_configured_base(
    server: FeedServer,
    fake_time: FakeTime,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.ARXIV_THROTTLE_BACKOFF = 60.0
    busy = Answer(503, b"busy")
    feed = Feed.objects.create(url=server.serve("/rss/cs.CL", scripted(busy, busy, busy, OK)))

    result = feed_fetch(feed=feed, pace=fake_time.pace())

    assert result.ok, result.error
    assert fake_time.sleeps == [60.0, 120.0, 240.0]
    assert len(server.received) == 4


@pytest.mark.django_db
def test_a_retry_after_given_as_an_http_date_is_waited_until_that_moment(
    server: FeedServer, fake_time: FakeTime
) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    throttled = Answer(503, b"", {"Retry-After": later})
    feed = Feed.objects.create(url=server.serve("/rss/cs.CL", scripted(throttled, OK)))

    result = feed_fetch(feed=feed, pace=fake_time.pace())

    assert result.ok
    assert len(fake_time.sleeps) == 1 and 115 <= fake_time.sleeps[0] <= 120


@pytest.mark.django_db
def test_a_406_from_an_arxiv_host_is_throttling_and_is_retried(
    server: FeedServer,
    fake_time: FakeTime,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.ARXIV_HOSTS = ["127.0.0.1"]
    settings.ARXIV_MIN_INTERVAL = 0.0
    refused = Answer(406, b"", {"Retry-After": "5"})
    feed = Feed.objects.create(url=server.serve("/rss/cs.CL", scripted(refused, OK)))

    result = feed_fetch(feed=feed, pace=fake_time.pace())

    assert result.ok, result.error
    assert fake_time.sleeps == [5.0]


@pytest.mark.django_db
def test_a_406_from_another_host_is_a_plain_failure(
    server: FeedServer,
    fake_time: FakeTime,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.ARXIV_HOSTS = ["arxiv.org"]
    refused = Answer(406, b"", {"Retry-After": "5"})
    feed = Feed.objects.create(url=server.serve("/feed", scripted(refused, OK)))

    result = feed_fetch(feed=feed, pace=fake_time.pace())

    assert (result.ok, result.error) == (False, "HTTP 406 Not Acceptable")
    assert fake_time.sleeps == [] and len(server.received) == 1


@pytest.mark.django_db
def test_throttling_past_the_deadline_gives_up_naming_the_status_and_the_wait(
    server: FeedServer,
    fake_time: FakeTime,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.ARXIV_THROTTLE_DEADLINE = 10.0
    busy = Answer(503, b"busy", {"Retry-After": "4"})
    feed = Feed.objects.create(url=server.serve("/rss/cs.CL", busy))

    result = feed_fetch(feed=feed, pace=fake_time.pace())

    feed.refresh_from_db()
    assert not result.ok
    assert fake_time.sleeps == [4.0, 4.0] and len(server.received) == 3
    assert result.error == (
        "throttled: HTTP 503 Service Unavailable after waiting 8 s in all; the next wait (4 s) "
        "would pass ARXIV_THROTTLE_DEADLINE (10 s), gave up"
    )
    assert (feed.last_status, feed.last_error) == ("error", result.error)


@pytest.mark.django_db
def test_exponential_back_off_gives_up_at_the_deadline_too(
    server: FeedServer,
    fake_time: FakeTime,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.ARXIV_THROTTLE_BACKOFF = 60.0
    settings.ARXIV_THROTTLE_DEADLINE = 1800.0
    feed = Feed.objects.create(url=server.serve("/rss/cs.CL", Answer(429, b"")))

    result = feed_fetch(feed=feed, pace=fake_time.pace())

    assert fake_time.sleeps == [60.0, 120.0, 240.0, 480.0, 900.0]
    assert result.error.startswith("throttled: HTTP 429 Too Many Requests after waiting 1800 s")


@pytest.mark.django_db
def test_a_retry_after_beyond_the_deadline_gives_up_at_once(
    server: FeedServer,
    fake_time: FakeTime,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.ARXIV_THROTTLE_DEADLINE = 600.0
    feed = Feed.objects.create(
        url=server.serve("/rss/cs.CL", Answer(503, b"", {"Retry-After": "3600"}))
    )

    result = feed_fetch(feed=feed, pace=fake_time.pace())

    assert fake_time.sleeps == []
    assert "after waiting 0 s in all; the next wait (3600 s)" in result.error


def test_retry_after_reads_seconds_and_http_dates_and_ignores_nonsense() -> None:
    now = datetime(2026, 8, 14, 0, 0, tzinfo=UTC)

    assert retry_after_seconds("120", now=now) == 120.0
    assert retry_after_seconds("Fri, 14 Aug 2026 00:02:30 GMT", now=now) == 150.0
    assert retry_after_seconds("Thu, 13 Aug 2026 23:00:00 GMT", now=now) == 0.0
    assert retry_after_seconds("soon", now=now) is None
    assert retry_after_seconds(None, now=now) is None


def test_a_zero_retry_after_still_waits_a_second(settings) -> None:  # type: ignore[no-untyped-def]
    settings.ARXIV_THROTTLE_BACKOFF = 60.0

    assert throttle_wait("0", attempt=0) == 1.0
    assert throttle_wait(None, attempt=2) == 240.0


# --- The pace ----------------------------------------------------------------------------------


def test_threads_taking_turns_wait_the_interval_after_each_other_and_never_overlap(
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.ARXIV_MIN_INTERVAL = 10.0
    fake = FakeTime()
    pace = fake.pace()
    waits: list[float] = []
    inside = 0
    most_inside = 0
    lock = threading.Lock()

    def request() -> None:
        nonlocal inside, most_inside
        with pace.turn() as waited:
            with lock:
                inside += 1
                most_inside = max(most_inside, inside)
                waits.append(waited)
            time.sleep(0.01)  # a request in flight while the others queue
            with lock:
                inside -= 1

    threads = [threading.Thread(target=request) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(waits) == [0.0, 10.0, 10.0]
    assert most_inside == 1


@pytest.mark.django_db
def test_feeds_and_listing_pages_of_arxiv_share_one_connection_from_many_threads(
    server: FeedServer,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.ARXIV_HOSTS = ["127.0.0.1"]
    settings.ARXIV_MIN_INTERVAL = 0.02
    settings.ARXIV_LISTING_URL = server.base_url + "/list/{category}/new"
    inside = 0
    most_inside = 0
    lock = threading.Lock()

    def slow(body: bytes) -> Callable[[dict[str, str]], Answer]:
        def answer(headers: dict[str, str]) -> Answer:
            nonlocal inside, most_inside
            with lock:
                inside += 1
                most_inside = max(most_inside, inside)
            time.sleep(0.03)
            with lock:
                inside -= 1
            return Answer(200, body)

        return answer

    feed_url = server.serve("/rss/cs.CL", slow(EMPTY_API))
    server.serve("/list/cs.CL/new", slow(LISTING.encode()))
    pace = Pace()
    jobs = [lambda: http_get(url=feed_url, pace=pace)] * 3
    jobs += [lambda: listing_fetch(category="cs.CL", pace=pace)] * 3
    threads = [threading.Thread(target=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(server.received) == 6
    assert most_inside == 1
    starts = sorted(request.at for request in server.received)
    assert all(later - earlier >= 0.04 for earlier, later in itertools.pairwise(starts))


# --- The listing page --------------------------------------------------------------------------


def test_the_current_listing_page_gives_the_totals_of_its_three_sections() -> None:
    counts = listing_parse(LISTING)

    assert (counts.new, counts.cross, counts.replaced) == (56, 36, 47)
    assert counts.day == date(2026, 8, 13)
    assert counts.sections == ["New submissions", "Cross submissions", "Replacement submissions"]


def test_the_older_wording_and_a_first_page_of_a_longer_list_are_read_too() -> None:
    page = """<h3>New submissions (showing first 25 of 92 entries)</h3>
    <h3>Cross-lists (showing 45 of 45 entries)</h3>
    <h3>Replacements (showing 60 of 60 entries)</h3>"""

    counts = listing_parse(page)

    assert (counts.new, counts.cross, counts.replaced, counts.day) == (92, 45, 60, None)


def test_a_section_missing_from_the_page_has_no_entries() -> None:
    counts = listing_parse(LISTING.replace("Replacement submissions (showing 47 of 47", "x"))

    assert (counts.new, counts.cross, counts.replaced) == (56, 36, 0)


def test_a_page_without_the_headings_cannot_be_read() -> None:
    with pytest.raises(ListingError, match="no 'New submissions"):
        listing_parse("<html><body><h1>Something else</h1></body></html>")


def test_the_listing_request_is_polite_too(
    server: FeedServer,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.ARXIV_CONTACT = "editors@example.com"
    settings.ARXIV_LISTING_URL = server.base_url + "/list/{category}/new"
    server.serve("/list/cs.CL/new", Answer(200, LISTING.encode()))

    counts = listing_fetch(category="cs.CL", pace=FakeTime().pace())

    sent = server.received[0]
    assert counts.new == 56 and sent.path == "/list/cs.CL/new"
    assert "mailto:editors@example.com" in sent.headers["User-Agent"]
    assert sent.headers["Accept"] == HTML_ACCEPT


def test_a_listing_page_that_answers_an_error_raises_with_the_status(
    server: FeedServer,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.ARXIV_LISTING_URL = server.base_url + "/list/{category}/new"

    with pytest.raises(ListingError, match=r"/list/cs\.XX/new: HTTP 404 Not Found$"):
        listing_fetch(category="cs.XX", pace=FakeTime().pace())
