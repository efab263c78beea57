"""What a stored ESP event does to a reader: suppression rules, soft bounces, applying once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from subscribers.models import Channel, EmailEvent, Subscriber
from subscribers.suppression import (
    email_event_apply,
    subscriber_soft_bounce,
    subscriber_suppress,
)
from subscribers.tasks import apply_email_event
from tests.subscribers.factories import subscriber_create

pytestmark = pytest.mark.django_db

Status = Subscriber.Status
MORNING = datetime(2026, 8, 13, 9, 0, tzinfo=UTC)


def stored_event(event_type: str, recipient: str, **fields: Any) -> EmailEvent:
    fields.setdefault("occurred_at", MORNING)
    fields.setdefault("event_id", f"{event_type}-{EmailEvent.objects.count()}")
    return EmailEvent.objects.create(
        esp="Postmark", event_type=event_type, recipient=recipient, **fields
    )


def reload(subscriber: Subscriber) -> Subscriber:
    subscriber.refresh_from_db()
    return subscriber


def test_a_complained_address_stays_complained_when_a_bounce_follows() -> None:
    reader = subscriber_create(email="angry@example.com")

    assert subscriber_suppress(email=reader.email, status=Status.COMPLAINED, reason="spam button")
    assert not subscriber_suppress(email=reader.email, status=Status.BOUNCED, reason="later")
    assert not subscriber_suppress(email=reader.email, status=Status.UNSUBSCRIBED, reason="later")

    reader = reload(reader)
    assert (reader.status, reader.suppressed_reason) == (Status.COMPLAINED, "spam button")


def test_a_stronger_reason_replaces_a_weaker_one() -> None:
    reader = subscriber_create(email="leaving@example.com", status=Status.UNSUBSCRIBED)

    assert subscriber_suppress(email=reader.email, status=Status.BOUNCED, reason="user unknown")
    assert subscriber_suppress(email=reader.email, status=Status.COMPLAINED, reason="spam")

    assert reload(reader).status == Status.COMPLAINED


def test_suppression_matches_the_address_without_regard_to_case() -> None:
    reader = subscriber_create(email="jane@example.com", status=Status.PENDING)

    assert subscriber_suppress(email=" Jane@Example.COM ", status=Status.BOUNCED, reason="x")

    assert reload(reader).status == Status.BOUNCED


def test_an_unknown_address_is_not_suppressed_and_not_created() -> None:
    assert not subscriber_suppress(email="nobody@example.com", status=Status.BOUNCED, reason="x")
    assert not subscriber_soft_bounce(email="nobody@example.com", reason="x")
    assert not Subscriber.objects.exists()


def test_soft_bounces_suppress_at_the_limit(settings: Any) -> None:
    settings.SOFT_BOUNCE_LIMIT = 2
    reader = subscriber_create(email="full@example.com")

    assert not subscriber_soft_bounce(email=reader.email, reason="mailbox full")
    assert subscriber_soft_bounce(email=reader.email, reason="mailbox still full")

    reader = reload(reader)
    assert (reader.status, reader.soft_bounce_count) == (Status.BOUNCED, 2)
    assert reader.suppressed_reason == "2 soft bounces, the last: mailbox still full"


def test_a_suppressed_address_counts_no_more_soft_bounces() -> None:
    reader = subscriber_create(email="gone@example.com", status=Status.COMPLAINED)

    assert not subscriber_soft_bounce(email=reader.email, reason="mailbox full")

    reader = reload(reader)
    assert (reader.status, reader.soft_bounce_count) == (Status.COMPLAINED, 0)


def test_an_event_is_applied_once_however_often_the_task_runs() -> None:
    reader = subscriber_create(email="full@example.com")
    event = stored_event("deferred", reader.email, description="Mailbox full")

    apply_email_event.delay(event.pk)
    apply_email_event.delay(event.pk)
    email_event_apply(event=event)

    assert reload(reader).soft_bounce_count == 1
    event.refresh_from_db()
    assert event.applied_at is not None


def test_a_rejection_for_an_invalid_address_suppresses_it_as_bounced() -> None:
    reader = subscriber_create(email="typo@exmaple.com")
    event = stored_event("rejected", reader.email, reject_reason="invalid")

    email_event_apply(event=event)

    reader = reload(reader)
    assert reader.status == Status.BOUNCED
    assert reader.suppressed_reason == ("Postmark rejected at 2026-08-13T09:00:00+00:00: invalid")


def test_a_rejection_for_another_reason_changes_nothing() -> None:
    reader = subscriber_create(email="jane@example.com")

    email_event_apply(event=stored_event("rejected", reader.email, reject_reason="blocked"))

    assert reload(reader).status == Status.ACTIVE


@pytest.mark.parametrize("event_type", ["delivered", "opened", "clicked", "queued", "sent"])
def test_engagement_events_never_suppress_or_reactivate(event_type: str) -> None:
    active = subscriber_create(email="reader@example.com")
    bounced = subscriber_create(email="bounced@example.com", status=Status.BOUNCED)

    email_event_apply(event=stored_event(event_type, active.email))
    email_event_apply(event=stored_event(event_type, bounced.email))

    assert (reload(active).status, reload(bounced).status) == (Status.ACTIVE, Status.BOUNCED)


def test_a_task_for_an_event_that_is_gone_does_nothing() -> None:
    apply_email_event.delay(424242)  # no error: the row was deleted meanwhile


def test_soft_bounces_count_once_per_day_and_a_delivery_resets_them() -> None:
    reader = subscriber_create(email="full@example.com")

    for hours in (0, 1, 5):  # retries of the same day's message
        email_event_apply(
            event=stored_event(
                "deferred", reader.email, occurred_at=MORNING + timedelta(hours=hours)
            )
        )
    assert reload(reader).soft_bounce_count == 1

    email_event_apply(
        event=stored_event("deferred", reader.email, occurred_at=MORNING + timedelta(days=1))
    )
    assert reload(reader).soft_bounce_count == 2

    email_event_apply(
        event=stored_event("delivered", reader.email, occurred_at=MORNING + timedelta(days=2))
    )
    assert reload(reader).soft_bounce_count == 0


def test_a_complaint_stops_the_readers_team_chats_and_a_bounce_leaves_them() -> None:
    complains = subscriber_create(email="complains@example.com")
    bounces = subscriber_create(email="bounces@example.com")
    theirs = Channel.objects.create(
        kind="slack", url="https://hooks.slack.com/services/T1/B1/x", subscriber=complains
    )
    kept = Channel.objects.create(
        kind="slack", url="https://hooks.slack.com/services/T1/B2/y", subscriber=bounces
    )

    assert subscriber_suppress(
        email="complains@example.com", status=Subscriber.Status.COMPLAINED, reason="spam"
    )
    assert subscriber_suppress(
        email="bounces@example.com", status=Subscriber.Status.BOUNCED, reason="no such user"
    )

    theirs.refresh_from_db()
    kept.refresh_from_db()
    assert theirs.status == Channel.Status.STOPPED
    assert kept.status == Channel.Status.ACTIVE
