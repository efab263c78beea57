"""Pace and errors: the shared rate limit, and a send that pauses itself and resumes cleanly.
Sends go through anymail's real Mailgun backend to the fake Mailgun API, which records when
each recipient arrived."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client, TestCase
from django.urls import reverse

from digests.models import Digest
from subscribers.models import Delivery
from subscribers.sending import pace
from tests.fakes.esp_server import FakeESP
from tests.subscribers import test_delivery
from tests.subscribers.test_delivery import approved_issue, categories, readers, statuses

pytestmark = pytest.mark.django_db

REDIS_URL = "redis://127.0.0.1:6379/13"
# The delivery tests' fixtures: the fake Mailgun API wired to anymail, and the send as beat runs it.
fake_esp = test_delivery.fake_esp
mailgun = test_delivery.mailgun
send = test_delivery.send


def most_in_one_second(times: list[float]) -> int:
    """The largest number of arrivals in any window [t, t + 1 s) that starts at an arrival."""
    times = sorted(times)
    most, end = 0, 0
    for start, at in enumerate(times):
        while end < len(times) and times[end] < at + 1.0:
            end += 1
        most = max(most, end - start)
    return most


def test_the_window_counter_counts() -> None:
    # The control for the rate tests: it sees a burst.
    assert most_in_one_second([0.0, 0.1, 0.2, 0.99, 1.0, 1.5]) == 4
    assert most_in_one_second([0.0, 1.0, 2.0]) == 1


def test_a_rate_of_20_per_second_holds_in_every_one_second_window(
    mailgun: FakeESP, send: Callable[[Digest], Any], settings: Any
) -> None:
    settings.DELIVERY_RATE_PER_SECOND = 20
    digest = approved_issue()
    cats = categories()
    readers(23, cats[:1], "one")
    readers(17, cats[1:3], "two")
    started = time.time()

    send(digest)

    arrivals = mailgun.recipient_times()
    assert len(arrivals) == len({address for _, address in arrivals}) == 40
    times = [at for at, _ in arrivals]
    assert most_in_one_second(times) <= 20
    # 40 readers at 20 a second cannot all have gone in the first second.
    assert max(times) - started >= 1.0
    assert all(len(call.to) <= 20 for call in mailgun.calls)
    assert statuses(digest) == {"sent": 40}


def redis_or_skip() -> Any:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("Redis is not running on 127.0.0.1:6379 (CI starts it)")
    return client


def test_the_redis_limiter_holds_the_rate_across_clients() -> None:
    """Four senders, each with its own Redis connection (as four workers would have), share
    one window: 30 a second, in any one-second window."""
    client = redis_or_skip()
    client.delete(pace.LIMITER_KEY)
    times: list[float] = []
    lock = threading.Lock()

    def sender() -> None:
        limiter = pace.RedisLimiter(30, REDIS_URL)
        for _ in range(3):
            limiter.acquire(4)
            with lock:
                times.extend([time.time()] * 4)

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(times) == 48
    assert most_in_one_second(times) <= 30
    assert max(times) - min(times) >= 1.0  # it waited
    client.delete(pace.LIMITER_KEY)


def test_the_redis_limiter_is_used_when_redis_is_configured(settings: Any) -> None:
    settings.DELIVERY_RATE_PER_SECOND = 14
    settings.DELIVERY_RATE_REDIS_URL = ""
    settings.REDIS_CACHE_URL = ""
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/15"
    limiter = pace.limiter_get()
    assert isinstance(limiter, pace.RedisLimiter) and limiter.rate == 14
    settings.CELERY_BROKER_URL = "amqp://guest@127.0.0.1//"
    assert isinstance(pace.limiter_get(), pace.LocalLimiter)
    settings.DELIVERY_RATE_PER_SECOND = 0
    assert pace.limiter_get() is None


# --- pause and resume -----------------------------------------------------------------------------


@pytest.fixture
def refusing(mailgun: FakeESP, settings: Any) -> Iterator[FakeESP]:
    settings.DELIVERY_PAUSE_AFTER_ERRORS = 3
    settings.DELIVERY_BATCH_SIZE = 2
    settings.DELIVERY_MAX_RETRIES = 20
    mailgun.fail_rate = 1.0
    yield mailgun


def send_command(digest: Digest) -> str:
    with TestCase.captureOnCommitCallbacks(execute=True):
        out = __import__("io").StringIO()
        call_command("send_digest", "--date", digest.date.isoformat(), "--no-wait", stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("status", [500, 401])
def test_an_esp_that_refuses_everything_pauses_the_send_and_it_resumes_cleanly(
    refusing: FakeESP, status: int, capsys: Any
) -> None:
    refusing.fail_statuses = (status,)
    digest = approved_issue()
    readers(10, categories()[:1])

    send_command(digest)

    digest.refresh_from_db()
    assert digest.status == Digest.Status.PAUSED
    assert digest.send_paused_reason.startswith("3 errors in a row; the last: ")
    assert str(status) in digest.send_paused_reason
    assert len(refusing.attempted) == 3  # then it stopped calling
    assert refusing.recipients() == []
    # Nobody failed or was skipped: every reader waits in the queue.
    assert statuses(digest) == {"queued": 10}

    refusing.fail_rate = 0.0  # the editor fixed the account
    out = send_command(digest)

    assert "The send was paused: 3 errors in a row" in out
    digest.refresh_from_db()
    assert digest.status == Digest.Status.SENT
    assert (digest.send_paused_reason, digest.send_errors_in_row) == ("", 0)
    sent = refusing.recipients()
    assert len(sent) == len(set(sent)) == 10
    assert statuses(digest) == {"sent": 10}


def test_a_success_between_errors_resets_the_run(
    mailgun: FakeESP, send: Any, settings: Any
) -> None:
    settings.DELIVERY_PAUSE_AFTER_ERRORS = 3
    settings.DELIVERY_BATCH_SIZE = 1
    mailgun.script = [500, 500, 200, 500, 500, 200, 500, 500]  # never three in a row
    digest = approved_issue()
    readers(6, categories()[:1])

    send(digest)

    digest.refresh_from_db()
    assert digest.status == Digest.Status.SENT
    assert Counter(mailgun.recipients()) == Counter(f"reader{n}@example.com" for n in range(6))


def test_an_editor_sees_why_the_send_paused_and_resumes_it(
    refusing: FakeESP, django_capture_on_commit_callbacks: Any
) -> None:
    digest = approved_issue()
    readers(4, categories()[:1])
    send_command(digest)
    digest.refresh_from_db()
    assert digest.status == Digest.Status.PAUSED
    editor = User.objects.create_user("ed", "ed@example.com", "pw", is_staff=True)
    editor.groups.add(Group.objects.get(name="Editors"))
    client = Client()
    client.force_login(editor)
    page_url = reverse("admin:digests_digest_change", args=[digest.pk])

    page = client.get(page_url).content.decode()
    assert "The send paused itself" in page
    assert "3 errors in a row" in page
    assert "Resume the send" in page

    refusing.fail_rate = 0.0
    resume = reverse("admin:digests_digest_deliveries_resume", args=[digest.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(resume)

    assert response.status_code == 302
    digest.refresh_from_db()
    assert digest.status == Digest.Status.SENT
    assert sorted(refusing.recipients()) == [f"reader{n}@example.com" for n in range(4)]
    assert "Resume the send" not in client.get(page_url).content.decode()


def test_a_viewer_cannot_resume(refusing: FakeESP) -> None:
    digest = approved_issue()
    readers(2, categories()[:1])
    send_command(digest)
    viewer = User.objects.create_user(
        f"v{uuid.uuid4().hex[:6]}", "v@example.com", "pw", is_staff=True
    )
    viewer.groups.add(Group.objects.get(name="Viewers"))
    client = Client()
    client.force_login(viewer)

    page = client.get(reverse("admin:digests_digest_change", args=[digest.pk])).content.decode()
    response = client.post(reverse("admin:digests_digest_deliveries_resume", args=[digest.pk]))

    assert "The send paused itself" in page and "Resume the send" not in page
    assert response.status_code == 403
    assert Delivery.objects.filter(digest=digest, status=Delivery.Status.QUEUED).count() == 2
