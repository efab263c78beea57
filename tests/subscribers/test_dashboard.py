"""The admin's dashboard: subscribers over time and by category, unsubscribes and bounces per
issue, as charts and as tables (issue 5)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from digests.models import Category, Digest
from subscribers.models import Delivery, Subscriber
from tests.admin_forms import client_for, staff_in
from tests.issue_factory import issue_create
from tests.subscribers.factories import subscriber_create

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 8, 20, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
DASHBOARD = "/admin/dashboard/"
Status = Subscriber.Status


@pytest.fixture(autouse=True)
def _frozen() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def viewer() -> User:
    return staff_in("Viewers", "min-ho")


def days_ago(days: int, hour: int = 12) -> datetime:
    return datetime.combine(TODAY - timedelta(days=days), datetime.min.time(), tzinfo=UTC).replace(
        hour=hour
    )


def category(slug: str) -> Category:
    return Category.objects.get(slug=slug)


def table(page: str, css_class: str) -> list[list[str]]:
    """The rows of a table on the page as a person reads them: the text of each cell."""
    start = page.index(f'<table class="{css_class}">')
    body = page[page.index("<tbody>", start) : page.index("</tbody>", start)]
    rows = re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)
    cells = [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, flags=re.S) for row in rows]
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in row] for row in cells]


def readers_with_a_history() -> None:
    """Seven readers who joined and left at different times (see the expected figures)."""
    llm = [category("llm")]
    subscriber_create(email="a@example.com", confirmed_at=days_ago(200), categories=llm)
    subscriber_create(
        email="b@example.com",
        status=Status.UNSUBSCRIBED,
        confirmed_at=days_ago(200),
        unsubscribed_at=days_ago(100),
    )
    subscriber_create(
        email="c@example.com",
        status=Status.UNSUBSCRIBED,
        confirmed_at=days_ago(200),
        unsubscribed_at=days_ago(10),
    )
    subscriber_create(
        email="d@example.com",
        confirmed_at=days_ago(30),
        categories=[category("llm"), category("computer-vision")],
    )
    subscriber_create(
        email="e@example.com",
        status=Status.BOUNCED,
        confirmed_at=days_ago(20),
        suppressed_at=days_ago(5),
    )
    subscriber_create(email="f@example.com", status=Status.PENDING)  # never confirmed
    # Left 35 days ago and came back 3 days ago: counted from the new confirmation.
    subscriber_create(
        email="g@example.com",
        confirmed_at=days_ago(3),
        unsubscribed_at=days_ago(35),
        categories=llm,
    )


def test_active_subscribers_per_day_follow_joins_and_departures(viewer: User) -> None:
    readers_with_a_history()

    page = client_for(viewer).get(DASHBOARD).content.decode()

    rows = {row[0]: [int(n) for n in row[1:]] for row in table(page, "dashboard-subscribers")}
    assert len(rows) == 90

    def on(days: int) -> list[int]:
        return rows[(TODAY - timedelta(days=days)).isoformat()]

    assert on(89) == [2, 0, 0]  # a and c
    assert on(30) == [3, 1, 0]  # d joins
    assert on(20) == [4, 1, 0]  # e joins
    assert on(10) == [3, 0, 1]  # c unsubscribes
    assert on(5) == [2, 0, 1]  # e bounces
    assert on(3) == [3, 1, 0]  # g comes back
    assert on(0) == [3, 0, 0]
    assert on(0)[0] == Subscriber.objects.filter(status=Status.ACTIVE).count()
    assert "3 active subscribers today; 2 90 days ago." in page


def test_active_subscribers_by_category(viewer: User) -> None:
    readers_with_a_history()
    subscriber_create(email="h@example.com", categories=[])

    page = client_for(viewer).get(DASHBOARD).content.decode()

    rows = dict((name, int(n)) for name, n in table(page, "dashboard-categories"))
    assert rows[category("llm").name] == 3  # a, d, g; e bounced and c left
    assert rows[category("computer-vision").name] == 1
    assert rows["no category chosen"] == 1
    assert set(rows) >= {c.name for c in Category.objects.filter(active=True)}


def sent_issue(day: date, sent_at: datetime) -> Digest:
    digest = issue_create(
        day=day, categories=[category("llm")], papers_per_section=1, summary_length=300
    )
    Digest.objects.filter(pk=digest.pk).update(status=Digest.Status.SENT, sent_at=sent_at)
    return digest


def deliveries(digest: Digest, status: str, count: int) -> None:
    for _ in range(count):
        reader = subscriber_create(confirmed_at=days_ago(60))
        Delivery.objects.create(
            digest=digest, subscriber=reader, email=reader.email, variant="", status=status
        )


def unsubscribed(email: str, at: datetime) -> None:
    subscriber_create(
        email=email, status=Status.UNSUBSCRIBED, confirmed_at=days_ago(60), unsubscribed_at=at
    )


def test_each_sent_issue_shows_sent_bounced_complained_and_who_left_after_it(
    viewer: User,
) -> None:
    first = sent_issue(date(2026, 8, 12), days_ago(7, hour=10))
    second = sent_issue(date(2026, 8, 17), days_ago(2, hour=10))
    sent_issue(date(2026, 8, 19), days_ago(0, hour=1))
    Digest.objects.filter(date=date(2026, 8, 19)).update(status=Digest.Status.SENDING)
    deliveries(first, Delivery.Status.SENT, 5)
    deliveries(first, Delivery.Status.BOUNCED, 2)
    deliveries(first, Delivery.Status.COMPLAINED, 1)
    deliveries(first, Delivery.Status.FAILED, 1)
    deliveries(second, Delivery.Status.SENT, 3)
    unsubscribed("before@example.com", days_ago(8))
    unsubscribed("after-first@example.com", days_ago(6))
    unsubscribed("after-first-too@example.com", days_ago(2, hour=9))
    unsubscribed("after-second@example.com", days_ago(1))

    page = client_for(viewer).get(DASHBOARD).content.decode()

    assert table(page, "dashboard-issues") == [
        ["2026-08-17", f"{days_ago(2, hour=10):%Y-%m-%d %H:%M}", "3", "0", "0", "1"],
        ["2026-08-12", f"{days_ago(7, hour=10):%Y-%m-%d %H:%M}", "8", "2", "1", "2"],
    ]
    assert reverse("admin:digests_digest_change", args=[first.pk]) in page


def test_without_any_sent_issue_the_dashboard_says_so(viewer: User) -> None:
    page = client_for(viewer).get(DASHBOARD).content.decode()
    assert "No issue has been sent yet." in page
    assert 'class="breadcrumbs"' in page and reverse("admin:index") in page


@pytest.mark.parametrize("name", ["subscribers", "categories", "issues"])
def test_each_chart_is_a_png(viewer: User, name: str) -> None:
    readers_with_a_history()
    deliveries(sent_issue(date(2026, 8, 12), days_ago(7)), Delivery.Status.BOUNCED, 1)
    client = client_for(viewer)
    url = reverse("admin:digests_digest_dashboard_chart", kwargs={"name": name})

    page = client.get(DASHBOARD).content.decode()
    image = client.get(url)

    assert f'src="{url}"' in page
    assert image.status_code == 200
    assert image["Content-Type"] == "image/png"
    assert image.content.startswith(b"\x89PNG\r\n\x1a\n")


def test_an_unknown_chart_is_not_found(viewer: User) -> None:
    url = reverse("admin:digests_digest_dashboard_chart", kwargs={"name": "secrets"})
    assert client_for(viewer).get(url).status_code == 404


def queries_for(client: Client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(DASHBOARD).status_code == 200
    return len(queries)


def test_the_figures_cost_the_same_queries_for_10_or_100_readers(viewer: User) -> None:
    sent_issue(date(2026, 8, 12), days_ago(7))
    client = client_for(viewer)
    for n in range(10):
        subscriber_create(confirmed_at=days_ago(n * 9))
    few = queries_for(client)
    for n in range(90):
        reader = subscriber_create(confirmed_at=days_ago(n))
        if n % 3 == 0:
            Subscriber.objects.filter(pk=reader.pk).update(
                status=Status.UNSUBSCRIBED, unsubscribed_at=days_ago(n // 2)
            )
    assert queries_for(client) == few


def test_the_dashboard_is_for_staff_who_may_view_digests(viewer: User) -> None:
    staff = User.objects.create_user("staff", "staff@example.com", "x", is_staff=True)
    chart = reverse("admin:digests_digest_dashboard_chart", kwargs={"name": "subscribers"})

    assert Client().get(DASHBOARD).status_code == 302  # to the login page
    assert client_for(staff).get(DASHBOARD).status_code == 403
    assert client_for(staff).get(chart).status_code == 403
    assert client_for(staff_in("Editors", "eun-ji")).get(DASHBOARD).status_code == 200


def test_the_admin_index_leads_to_the_dashboard(viewer: User, admin_user: Any) -> None:
    page = client_for(viewer).get(reverse("admin:index")).content.decode()

    link = page.index(f'href="{DASHBOARD}"')
    assert link < page.index('class="app-digests')  # at the top, before the models
    superuser_page = client_for(admin_user).get(reverse("admin:index")).content.decode()
    assert f'href="{DASHBOARD}"' in superuser_page
