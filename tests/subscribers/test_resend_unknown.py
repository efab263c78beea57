"""Resending to the deliveries in an unknown state (an editor's choice), through anymail's real
Mailgun backend to the fake Mailgun API on localhost."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from digests.models import Digest
from subscribers.models import Delivery
from subscribers.sending import ledger, recovery
from subscribers.tasks import send_due_digests, send_start, unknown_resend
from tests.fakes.esp_server import FakeESP
from tests.subscribers.test_delivery import DOMAIN, approved_issue, categories, readers, statuses

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailgun(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeESP]:
    monkeypatch.setattr("subscribers.tasks.EAGER_RETRY_MAX_SLEEP", 0.0)
    with FakeESP() as fake:
        settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
        settings.ANYMAIL = {
            "MAILGUN_API_KEY": "key",
            "MAILGUN_SENDER_DOMAIN": DOMAIN,
            "MAILGUN_API_URL": fake.base_url + "/v3",
        }
        settings.DEFAULT_FROM_EMAIL = f"Daily AI Insights <digest@{DOMAIN}>"
        settings.SITE_URL = "https://insights.example.org"
        settings.CELERY_TASK_ALWAYS_EAGER = True
        settings.DELIVERY_BATCH_SIZE = 3
        yield fake


def a_send_with_three_unknown(
    capture: Callable[..., Any], settings: Any, *, finish: bool = True
) -> tuple[Digest, list[Delivery]]:
    """Six readers in two chunks; the worker of the first died in its ESP call ten minutes
    ago; the beat's resume marked its three rows unknown and sent the others."""
    digest = approved_issue()
    readers(6, categories()[:1])
    with capture(execute=False):
        send_start(digest.pk)
    first = list(Delivery.objects.filter(digest=digest).order_by("pk")[:3])
    long_ago = timezone.now() - timedelta(seconds=settings.DELIVERY_STALE_AFTER_SECONDS + 60)
    Delivery.objects.filter(pk__in=[d.pk for d in first]).update(
        status=Delivery.Status.SENDING, claim="dead-worker", claimed_at=long_ago, attempts=1
    )
    Digest.objects.filter(pk=digest.pk).update(sending_started_at=long_ago)
    with capture(execute=finish):
        send_due_digests.delay().get()
    return digest, first


def test_each_unknown_reader_gets_one_more_copy_and_nobody_else(
    mailgun: FakeESP, settings: Any, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    digest, unknown = a_send_with_three_unknown(django_capture_on_commit_callbacks, settings)
    assert statuses(digest) == {"unknown": 3, "sent": 3}
    digest.refresh_from_db()
    assert digest.status == Digest.Status.SENT
    already_sent = {
        row.pk: row.esp_message_id
        for row in Delivery.objects.filter(digest=digest, status=Delivery.Status.SENT)
    }
    mailgun.reset()

    with django_capture_on_commit_callbacks(execute=True):
        resent = unknown_resend(digest.pk)

    assert resent == 3
    assert sorted(mailgun.recipients()) == sorted(row.email for row in unknown)
    assert statuses(digest) == {"sent": 6}
    for row in Delivery.objects.filter(pk__in=already_sent):
        assert row.esp_message_id == already_sent[row.pk]  # not sent again
    for row in Delivery.objects.filter(pk__in=[d.pk for d in unknown]):
        assert row.esp_message_id and row.error == "" and row.attempts == 2
    digest.refresh_from_db()
    assert digest.status == Digest.Status.SENT  # closed again once they were done


def test_resent_rows_wait_queued_without_their_old_claim_and_the_issue_is_sending(
    mailgun: FakeESP, settings: Any, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    digest, unknown = a_send_with_three_unknown(django_capture_on_commit_callbacks, settings)
    mailgun.reset()

    with django_capture_on_commit_callbacks(execute=False) as enqueued:
        unknown_resend(digest.pk)

    assert len(enqueued) == 1 and mailgun.recipients() == []  # the chunks go after commit
    digest.refresh_from_db()
    assert digest.status == Digest.Status.SENDING
    rows = list(Delivery.objects.filter(pk__in=[d.pk for d in unknown]))
    assert {(row.status, row.claim, row.claimed_at) for row in rows} == {("queued", "", None)}
    assert all(row.error.startswith(recovery.RESEND_NOTE) for row in rows)
    assert all("in flight" in row.error for row in rows)  # the earlier reason is kept
    # The dead worker's call answers at last: it cannot record the rows it no longer holds.
    late = ledger.deliveries_mark_sent(
        claim="dead-worker", ids=[d.pk for d in unknown], message_id="<late@mg>"
    )
    assert late == 0


def test_with_nothing_unknown_nothing_is_sent_and_the_issue_stays_sent(
    mailgun: FakeESP, settings: Any, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    digest = approved_issue()
    readers(4, categories()[:1])
    with django_capture_on_commit_callbacks(execute=True):
        send_start(digest.pk)
    mailgun.reset()

    with django_capture_on_commit_callbacks(execute=True) as enqueued:
        resent = unknown_resend(digest.pk)

    assert resent == 0 and enqueued == []
    assert mailgun.recipients() == []
    digest.refresh_from_db()
    assert digest.status == Digest.Status.SENT


def test_resending_while_the_issue_is_still_sending_sends_everyone_once(
    mailgun: FakeESP, settings: Any, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    # The resume marked the first chunk unknown but the second chunk's task has not run yet.
    digest, _ = a_send_with_three_unknown(
        django_capture_on_commit_callbacks, settings, finish=False
    )
    assert statuses(digest) == {"unknown": 3, "queued": 3}
    mailgun.reset()

    with django_capture_on_commit_callbacks(execute=True):
        resent = unknown_resend(digest.pk)

    assert resent == 3
    recipients = mailgun.recipients()
    assert len(recipients) == 6 and len(set(recipients)) == 6  # queued rows: once, not twice
    assert statuses(digest) == {"sent": 6}
    digest.refresh_from_db()
    assert digest.status == Digest.Status.SENT
