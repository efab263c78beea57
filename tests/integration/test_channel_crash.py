"""A worker killed with SIGKILL in the middle of posting an issue to team chats: after a restart
and a resume, every channel has one row, none got the issue twice, no part of a Telegram message
in parts was posted twice (a post in flight at the kill is "unknown", never reposted blindly),
and the issue is sent.

PostgreSQL, Redis and real Celery worker processes; the fake Slack / Telegram server runs in
this process with some latency (so the kill lands during posts) and the workers post to it.
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
from subscribers.models import Channel, ChannelDelivery
from subscribers.sending import ledger
from subscribers.tasks import send_resume, send_start
from tests.fakes.chat_server import FakeChat
from tests.integration.conftest import Service, wait_until
from tests.issue_factory import issue_create
from tests.processes import celery_worker_start

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SLACK = 150
TELEGRAM = 30
BATCH = 10
CONCURRENCY = 4  # posts in flight per worker process
STALE_SECONDS = 3


@pytest.fixture
def chat() -> Iterator[FakeChat]:
    with FakeChat(latency=0.04) as fake:
        yield fake


@pytest.fixture
def worker_env(service_env: dict[str, str], chat: FakeChat, settings: Any) -> dict[str, str]:
    settings.CHANNEL_BATCH_SIZE = BATCH
    settings.DELIVERY_STALE_AFTER_SECONDS = STALE_SECONDS
    settings.SITE_URL = "https://insights.example.org"
    settings.TELEGRAM_API_URL = chat.telegram_api_url
    settings.TELEGRAM_BOT_TOKEN = chat.telegram_token
    return {
        **service_env,
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "SITE_URL": "https://insights.example.org",
        "CHANNEL_BATCH_SIZE": str(BATCH),
        "CHANNEL_CONCURRENCY": str(CONCURRENCY),
        "DELIVERY_STALE_AFTER_SECONDS": str(STALE_SECONDS),
        "TELEGRAM_API_URL": chat.telegram_api_url,
        "TELEGRAM_BOT_TOKEN": chat.telegram_token,
        "TELEGRAM_RATE_PER_SECOND": "200",
    }


def channels_create(chat: FakeChat, chosen: list[Category]) -> None:
    made = [Channel(kind="slack", url=chat.slack_url(f"s{n}")) for n in range(SLACK)]
    made += [Channel(kind="telegram", chat_id=f"-{1000 + n}") for n in range(TELEGRAM)]
    Channel.objects.bulk_create(made)
    through = Channel.categories.through
    through.objects.bulk_create(
        through(channel_id=pk, category_id=category.pk)
        for pk in Channel.objects.values_list("pk", flat=True)
        for category in chosen
    )
    Channel.objects.create(kind="slack", url=chat.slack_url("gone"), status="stopped")


def test_a_killed_worker_leaves_no_channel_with_the_issue_twice(
    default_categories: None,
    worker_env: dict[str, str],
    service_logs: Path,
    chat: FakeChat,
) -> None:
    redis.Redis.from_url(django_settings.CELERY_BROKER_URL).flushdb()
    chosen = list(Category.objects.order_by("position")[:3])
    # Twelve papers a section: each Telegram message needs more than one part.
    digest = issue_create(categories=chosen, papers_per_section=12, summary_length=400)
    Digest.objects.filter(pk=digest.pk).update(
        status=Digest.Status.APPROVED, send_at=timezone.now() - timedelta(minutes=1)
    )
    channels_create(chat, chosen)
    first = celery_worker_start("channel-worker-1", env=worker_env, log_dir=service_logs)
    second: Service | None = None
    rows = ChannelDelivery.objects.filter(digest=digest)
    try:
        report = send_start(digest.pk)
        assert report.started and len(report.channel_chunks) == (SLACK + TELEGRAM) // BATCH

        wait_until(
            lambda: rows.filter(status="sent").count() >= 40,
            timeout=90,
            what="40 channels sent",
            log=first.log_tail,
        )
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait(timeout=10)
        assert rows.filter(status="queued").exists()  # killed in the middle, not at the end

        time.sleep(STALE_SECONDS + 1)
        second = celery_worker_start("channel-worker-2", env=worker_env, log_dir=service_logs)
        resumed = send_resume(digest.pk)
        assert resumed.channel_chunks

        wait_until(
            lambda: not rows.filter(status__in=ledger.PENDING).exists(),
            timeout=180,
            what="every channel done",
            log=second.log_tail,
        )
    finally:
        celery_app.control.purge()
        for worker in (first, second):
            if worker is not None:
                worker.stop()

    found = {row.destination if row.kind == "telegram" else row.channel_id: row for row in rows}
    assert len(found) == SLACK + TELEGRAM
    statuses = Counter(row.status for row in found.values())
    assert set(statuses) <= {"sent", "unknown"}, statuses
    # At most the posts in flight: two worker processes, CONCURRENCY posts each.
    assert statuses["unknown"] <= 2 * CONCURRENCY
    for n in range(SLACK):
        posts = len(chat.messages_for(f"s{n}", "slack"))
        assert posts <= 1, f"s{n} got the issue {posts} times"
    for n in range(TELEGRAM):
        chat_id = f"-{1000 + n}"
        texts = [body["text"] for body in chat.messages_for(chat_id, "telegram")]
        assert len(texts) == len(set(texts)), f"a part posted twice in {chat_id}"
        row = found[chat_id]
        assert row.parts_total >= 2
        if row.status == "sent":
            assert len(texts) == row.parts_total == row.parts_sent
        else:  # in flight at the kill: the parts recorded, and perhaps the one being posted
            assert row.parts_sent <= len(texts) <= row.parts_sent + 1
    sent_slack = {row.channel_id for row in found.values() if row.kind == "slack"}
    assert len(sent_slack) == SLACK
    assert not chat.messages_for("gone")
    digest.refresh_from_db()
    assert digest.status == Digest.Status.SENT
    print(f"channels {dict(statuses)}, posts {len(chat.calls)}")
