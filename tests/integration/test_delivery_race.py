"""Two beat processes starting one digest's send at once on PostgreSQL: it starts once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from digests.models import Category, Digest
from newsletter.celery import app as celery_app
from subscribers.models import Delivery, Subscriber
from subscribers.tasks import send_start
from tests.integration.conftest import run_at_once
from tests.issue_factory import issue_create

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_two_starts_racing_start_the_send_once(default_categories: None) -> None:
    assert connection.vendor == "postgresql"
    digest = issue_create(status=Digest.Status.APPROVED)
    Digest.objects.filter(pk=digest.pk).update(send_at=timezone.now() - timedelta(minutes=1))
    categories = list(Category.objects.all())
    for number in range(300):
        reader = Subscriber.objects.create(email=f"reader{number}@example.com", status="active")
        reader.categories.set(categories[: 1 + number % len(categories)])
    reports, errors = run_at_once(lambda: send_start(digest.pk))
    celery_app.control.purge()  # no worker runs here: drop the queued chunks

    assert errors == []
    assert sorted(report.started for report in reports) == [False, True]
    assert Delivery.objects.filter(digest=digest).count() == 300
    assert Digest.objects.get(pk=digest.pk).status == Digest.Status.SENDING
