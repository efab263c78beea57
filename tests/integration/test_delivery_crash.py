"""A worker killed with SIGKILL in the middle of a send: after a restart and a resume, every
active reader has one delivery, nobody got two copies except the readers of the calls that were
in flight (recorded as "unknown"), and the digest is sent.

PostgreSQL, Redis and real Celery worker processes; the fake Mailgun API runs in this process
(with some latency, so the kill lands during ESP calls) and anymail's real Mailgun backend
talks to it from the workers.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings
from django.utils import timezone

from digests.models import Category, Digest
from newsletter.celery import app as celery_app
from subscribers.models import Delivery, Subscriber
from subscribers.sending import ledger
from subscribers.tasks import send_resume, send_start
from tests.fakes.esp_server import FakeESP
from tests.integration.conftest import Service, wait_until
from tests.issue_factory import issue_create
from tests.processes import celery_worker_start

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

READERS = 3000
BATCH = 100
STALE_SECONDS = 3
DOMAIN = "mg.example.com"


@pytest.fixture
def fake_esp() -> Iterator[FakeESP]:
    with FakeESP(latency=0.15, keep_bodies=False) as fake:
        yield fake


@pytest.fixture
def worker_env(service_env: dict[str, str], fake_esp: FakeESP, settings: Any) -> dict[str, str]:
    mailgun = {
        "MAILGUN_API_KEY": "key",
        "MAILGUN_SENDER_DOMAIN": DOMAIN,
        "MAILGUN_API_URL": fake_esp.base_url + "/v3",
    }
    # This process plans the chunks and resumes: it must see the same backend and sizes.
    settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
    settings.ANYMAIL = mailgun
    settings.DELIVERY_BATCH_SIZE = BATCH
    settings.DELIVERY_STALE_AFTER_SECONDS = STALE_SECONDS
    settings.SITE_URL = "https://insights.example.org"
    return {
        **service_env,
        "EMAIL_BACKEND": "anymail.backends.mailgun.EmailBackend",
        "DEFAULT_FROM_EMAIL": f"Daily AI Insights <digest@{DOMAIN}>",
        "SITE_URL": "https://insights.example.org",
        "DELIVERY_BATCH_SIZE": str(BATCH),
        "DELIVERY_STALE_AFTER_SECONDS": str(STALE_SECONDS),
        **{f"ANYMAIL_{key}": value for key, value in mailgun.items()},
    }


def readers_create(chosen: list[Category]) -> None:
    Subscriber.objects.bulk_create(
        Subscriber(email=f"reader{n}@example.com", status=Subscriber.Status.ACTIVE)
        for n in range(READERS)
    )
    Subscriber.objects.bulk_create(
        [Subscriber(email=f"left{n}@example.com", status="unsubscribed") for n in range(20)]
    )
    through = Subscriber.categories.through
    ids = list(Subscriber.objects.order_by("pk").values_list("pk", flat=True))
    through.objects.bulk_create(
        through(subscriber_id=pk, category_id=chosen[n % len(chosen)].pk)
        for n, pk in enumerate(ids)
    )


def test_a_killed_worker_is_replaced_and_the_send_completes_without_doubles(
    default_categories: None,
    worker_env: dict[str, str],
    service_logs: Path,
    fake_esp: FakeESP,
) -> None:
    redis.Redis.from_url(django_settings.CELERY_BROKER_URL).flushdb()
    chosen = list(Category.objects.order_by("position")[:3])
    digest = issue_create(categories=chosen, papers_per_section=2, summary_length=400)
    Digest.objects.filter(pk=digest.pk).update(
        status=Digest.Status.APPROVED, send_at=timezone.now() - timedelta(minutes=1)
    )
    readers_create(chosen)
    first = celery_worker_start("delivery-worker-1", env=worker_env, log_dir=service_logs)
    second: Service | None = None
    try:
        report = send_start(digest.pk)
        assert report.started and report.deliveries == READERS
        assert len(report.chunks) == READERS // BATCH

        sent = Delivery.objects.filter(digest=digest, status=Delivery.Status.SENT)
        wait_until(lambda: sent.count() >= 500, timeout=90, what="500 sent", log=first.log_tail)
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait(timeout=10)
        pending = Counter(Delivery.objects.filter(digest=digest).values_list("status", flat=True))
        assert pending["queued"] > 0, pending  # killed in the middle, not at the end

        time.sleep(STALE_SECONDS + 1)
        second = celery_worker_start("delivery-worker-2", env=worker_env, log_dir=service_logs)
        resumed = send_resume(digest.pk)
        assert len(resumed.chunks) > 0

        digest_rows = Delivery.objects.filter(digest=digest)
        wait_until(
            lambda: not digest_rows.filter(status__in=ledger.PENDING).exists(),
            timeout=180,
            what="every delivery done",
            log=second.log_tail,
        )
    finally:
        celery_app.control.purge()
        for worker in (first, second):
            if worker is not None:
                worker.stop()

    rows = list(Delivery.objects.filter(digest=digest).values_list("email", "status"))
    statuses = Counter(status for _, status in rows)
    assert len(rows) == READERS and len({email for email, _ in rows}) == READERS
    assert set(statuses) <= {"sent", "unknown"}, statuses
    unknown = {email for email, status in rows if status == "unknown"}
    assert len(unknown) <= 2 * BATCH  # at most the calls in flight (two worker processes)
    received = Counter(fake_esp.recipients())
    doubles = {email for email, count in received.items() if count > 1}
    assert doubles <= unknown
    sent_emails = {email for email, status in rows if status == "sent"}
    assert sent_emails <= set(received)
    assert not any(email.startswith("left") for email in received)
    print(f"statuses {dict(statuses)}, doubles {len(doubles)}, ESP {fake_esp.stats()}")
    digest.refresh_from_db()
    # Decided: unknown rows do not hold the digest back; they are listed for the editor.
    assert digest.status == Digest.Status.SENT
    assert {d.email for d in ledger.deliveries_unknown(digest_id=digest.pk)} == unknown
