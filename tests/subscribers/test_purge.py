"""Signups that are never confirmed are deleted after PENDING_PURGE_DAYS."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from newsletter.celery import app
from newsletter.schedule import schedule
from subscribers.models import Subscriber
from subscribers.services import pending_purge
from subscribers.tasks import purge_pending

from .factories import subscriber_create

pytestmark = pytest.mark.django_db

Status = Subscriber.Status


@pytest.fixture(autouse=True)
def _days(settings: Any) -> None:
    settings.PENDING_PURGE_DAYS = 14


def created_days_ago(days: int, **fields: Any) -> Subscriber:
    with time_machine.travel(timezone.now() - timedelta(days=days), tick=False):
        return subscriber_create(**fields)


def test_pending_signups_older_than_the_limit_are_deleted_and_others_kept() -> None:
    old = created_days_ago(15, status=Status.PENDING)
    young = created_days_ago(13, status=Status.PENDING)
    old_active = created_days_ago(400, status=Status.ACTIVE)
    old_unsubscribed = created_days_ago(400, status=Status.UNSUBSCRIBED)
    resent = created_days_ago(
        30, status=Status.PENDING, confirmation_sent_at=timezone.now() - timedelta(days=2)
    )
    stale_email = created_days_ago(
        13, status=Status.PENDING, confirmation_sent_at=timezone.now() - timedelta(days=15)
    )

    assert pending_purge() == 2

    remaining = set(Subscriber.objects.values_list("pk", flat=True))
    assert remaining == {young.pk, old_active.pk, old_unsubscribed.pk, resent.pk}
    assert old.pk not in remaining and stale_email.pk not in remaining


def test_purging_deletes_the_category_choices_with_the_row() -> None:
    created_days_ago(20, status=Status.PENDING)

    pending_purge()

    assert Subscriber.categories.through.objects.count() == 0


def test_the_purge_task_runs_the_purge_and_says_how_many() -> None:
    created_days_ago(20, status=Status.PENDING)

    assert purge_pending.delay().get() == 1
    assert not Subscriber.objects.exists()


def test_the_beat_schedule_names_a_task_that_exists() -> None:
    names = {entry.task for entry in schedule()}
    assert "subscribers.tasks.purge_pending" in names
    assert "subscribers.tasks.purge_pending" in app.tasks
    assert "subscribers.tasks.confirmation_email_task" in app.tasks
