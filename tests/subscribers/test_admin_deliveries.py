"""Watching a send from the digest's page, resending to the unknown, and the delivery list
(subscribers/admin_views/deliveries.py, issue 5)."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, timedelta
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from digests.models import Category, Digest
from subscribers.models import Delivery
from subscribers.rendering import variant_key
from tests.admin_forms import client_for, staff_in
from tests.issue_factory import issue_create
from tests.subscribers.factories import subscriber_create

pytestmark = pytest.mark.django_db

Status = Delivery.Status
RESEND_NOTE = "may already have it and will get it twice"


@pytest.fixture
def editor() -> User:
    return staff_in("Editors", "eun-ji")


@pytest.fixture
def viewer() -> User:
    return staff_in("Viewers", "min-ho")


def categories() -> list[Category]:
    chosen = Category.objects.filter(slug__in=["llm", "computer-vision"]).order_by("position")
    return list(chosen)


def sent_issue(status: str = Digest.Status.SENT, day: date = date(2026, 8, 13)) -> Digest:
    digest = issue_create(
        day=day, categories=categories(), papers_per_section=2, summary_length=600
    )
    now = timezone.now()
    Digest.objects.filter(pk=digest.pk).update(
        status=status,
        approved_at=now - timedelta(hours=1),
        send_at=now - timedelta(minutes=30),
        sending_started_at=now - timedelta(minutes=30),
        sent_at=now - timedelta(minutes=20) if status == Digest.Status.SENT else None,
    )
    digest.refresh_from_db()
    return digest


def deliveries_make(digest: Digest, status: str, count: int, **fields: Any) -> list[Delivery]:
    """`count` active readers with a delivery of `digest` in `status`."""
    chosen = categories()
    made = []
    for _ in range(count):
        reader = subscriber_create(categories=chosen)
        made.append(
            Delivery.objects.create(
                digest=digest,
                subscriber=reader,
                email=reader.email,
                variant=variant_key(c.pk for c in chosen),
                status=status,
                attempts=1,
                **fields,
            )
        )
    return made


def change_url(digest: Digest) -> str:
    return reverse("admin:digests_digest_change", args=[digest.pk])


def panel_url(digest: Digest) -> str:
    return reverse("admin:digests_digest_deliveries_panel", args=[digest.pk])


def resend_url(digest: Digest) -> str:
    return reverse("admin:digests_digest_deliveries_resend_unknown", args=[digest.pk])


def panel_of(page: str) -> str:
    start = page.index('id="deliveries-panel"')
    return page[start : page.index("</section>", start)]


def shown_counts(panel: str) -> dict[str, int]:
    """The deliveries table as a person reads it: status -> figure."""
    rows = re.findall(
        r'<tr class="status-(\w+)">.*?<td class="number">(\d+)</td>', panel, flags=re.S
    )
    return {status: int(count) for status, count in rows}


# --- The panel ------------------------------------------------------------------------------


def test_a_draft_says_it_is_not_sent_yet_and_nothing_more(editor: User) -> None:
    digest = issue_create(categories=categories(), papers_per_section=1, summary_length=300)

    panel = panel_of(client_for(editor).get(change_url(digest)).content.decode())

    assert "Not sent yet: this issue is a draft." in panel
    assert "<table" not in panel and "<img" not in panel and "data-refresh-ms" not in panel


def test_an_approved_issue_says_when_it_is_scheduled(editor: User) -> None:
    digest = issue_create(categories=categories(), papers_per_section=1, summary_length=300)
    send_at = timezone.now() + timedelta(days=1)
    Digest.objects.filter(pk=digest.pk).update(status=Digest.Status.APPROVED, send_at=send_at)

    panel = panel_of(client_for(editor).get(change_url(digest)).content.decode())

    assert f"Not sent yet: scheduled for {send_at:%Y-%m-%d %H:%M}." in panel


def test_a_sent_issue_shows_its_deliveries_by_status_as_figures_and_a_chart(
    editor: User,
) -> None:
    digest = sent_issue()
    sent = deliveries_make(digest, Status.SENT, 6, sent_at=timezone.now())
    deliveries_make(digest, Status.FAILED, 2, error="refused by the ESP")
    deliveries_make(digest, Status.BOUNCED, 1, error="mailbox full")
    Delivery.objects.filter(pk__in=[d.pk for d in sent[:3]]).update(opened_at=timezone.now())
    client = client_for(editor)

    panel = panel_of(client.get(change_url(digest)).content.decode())

    counts = shown_counts(panel)
    assert counts == {
        "queued": 0,
        "sending": 0,
        "sent": 6,
        "failed": 2,
        "unknown": 0,
        "skipped": 0,
        "bounced": 1,
        "complained": 0,
        "opened": 3,
        "clicked": 0,
    }
    assert "9 deliveries." in panel
    # Zero opens or complaints may mean the ESP does not report them, not that nobody did.
    complained_row = re.search(r'<tr class="status-complained">.*?</tr>', panel, flags=re.S)
    clicked_row = re.search(r'<tr class="status-clicked">.*?</tr>', panel, flags=re.S)
    opened_row = re.search(r'<tr class="status-opened">.*?</tr>', panel, flags=re.S)
    assert complained_row and "where the ESP reports them" in complained_row.group()
    assert clicked_row and "where the ESP reports them" in clicked_row.group()
    assert opened_row and "where the ESP reports them" not in opened_row.group()
    chart = re.search(r'<img class="deliveries-chart" src="([^"]+)" alt="([^"]+)"', panel)
    assert chart, panel
    assert "6 sent" in chart.group(2) and "2 failed" in chart.group(2)
    image = client.get(chart.group(1).replace("&amp;", "&"))
    assert image.status_code == 200
    assert image["Content-Type"] == "image/png"
    assert image.content.startswith(b"\x89PNG\r\n\x1a\n")


def test_failures_are_grouped_by_their_reason_escaped_with_a_link_to_the_list(
    editor: User,
) -> None:
    digest = sent_issue()
    deliveries_make(digest, Status.SENT, 2)
    deliveries_make(digest, Status.FAILED, 3, error="<b>550</b> mailbox unavailable")
    deliveries_make(digest, Status.FAILED, 1, error="gave up after retries: 503")
    deliveries_make(digest, Status.BOUNCED, 2, error="Mailbox full")
    client = client_for(editor)

    panel = panel_of(client.get(change_url(digest)).content.decode())

    reasons = re.findall(
        r'<td class="reason">(.*?)</td>\s*<td class="number">(\d+)</td>', panel, flags=re.S
    )
    assert reasons == [
        ("&lt;b&gt;550&lt;/b&gt; mailbox unavailable", "3"),
        ("Mailbox full", "2"),
        ("gave up after retries: 503", "1"),
    ]
    assert "<b>550</b>" not in panel
    failed_list = reverse("admin:subscribers_delivery_changelist")
    failed_list += f"?digest__id__exact={digest.pk}&amp;status__exact=failed"
    assert failed_list in panel
    listed = client.get(failed_list.replace("&amp;", "&")).content.decode()
    assert listed.count('class="field-status">failed') == 4
    assert "mailbox unavailable" in listed and "Mailbox full" not in listed


def test_an_editor_sees_the_unknown_addresses_and_a_resend_form_that_warns(
    editor: User,
) -> None:
    digest = sent_issue()
    deliveries_make(digest, Status.SENT, 2)
    unknown = deliveries_make(digest, Status.UNKNOWN, 3, error="in flight when it stopped")

    panel = panel_of(client_for(editor).get(change_url(digest)).content.decode())

    assert "In an unknown state: 3" in panel
    for row in unknown:
        assert f"<li>{row.email}</li>" in panel
    assert f'action="{resend_url(digest)}"' in panel
    assert "Resend to the 3 unknown" in panel
    assert RESEND_NOTE in panel
    assert 'name="csrfmiddlewaretoken"' in panel


def test_only_the_first_50_unknown_addresses_are_listed(editor: User) -> None:
    digest = sent_issue()
    deliveries_make(digest, Status.UNKNOWN, 53)

    panel = panel_of(client_for(editor).get(change_url(digest)).content.decode())

    assert panel.count("<li>") == 50
    assert "… and 3 more" in panel
    assert "Resend to the 53 unknown" in panel


def test_a_viewer_sees_the_figures_without_addresses_and_cannot_resend(
    viewer: User,
) -> None:
    digest = sent_issue()
    deliveries_make(digest, Status.SENT, 2)
    unknown = deliveries_make(digest, Status.UNKNOWN, 2)
    client = client_for(viewer)

    panel = panel_of(client.get(change_url(digest)).content.decode())
    refused = client.post(resend_url(digest))

    assert shown_counts(panel)["unknown"] == 2
    assert unknown[0].email not in panel
    assert "Resend to the" not in panel
    assert refused.status_code == 403
    assert Delivery.objects.filter(digest=digest, status=Status.UNKNOWN).count() == 2


def test_resending_sends_only_to_the_unknown_and_is_in_the_admin_log(
    editor: User, django_capture_on_commit_callbacks: Any
) -> None:
    digest = sent_issue()
    deliveries_make(digest, Status.SENT, 3, sent_at=timezone.now())
    deliveries_make(digest, Status.FAILED, 1, error="refused")
    unknown = deliveries_make(digest, Status.UNKNOWN, 2, claim="dead-worker")
    client = client_for(editor)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(resend_url(digest))

    assert response.status_code == 302
    assert response["Location"] == f"{change_url(digest)}#deliveries-panel"
    recipients = sorted(address for message in mail.outbox for address in message.to)
    assert recipients == sorted(row.email for row in unknown)
    statuses = Counter(Delivery.objects.filter(digest=digest).values_list("status", flat=True))
    assert statuses == {"sent": 5, "failed": 1}
    digest.refresh_from_db()
    assert digest.status == Digest.Status.SENT
    entry = LogEntry.objects.get(object_id=str(digest.pk))
    assert entry.user == editor
    assert "Resent to the 2 deliveries in an unknown state" in entry.get_change_message()
    page = client.get(response["Location"]).content.decode()
    assert "Resending to 2 readers" in page
    assert "In an unknown state" not in panel_of(page)


def test_resending_with_nothing_unknown_sends_nothing(editor: User) -> None:
    digest = sent_issue()
    deliveries_make(digest, Status.SENT, 2)

    response = client_for(editor).post(resend_url(digest), follow=True)

    assert "Nothing to resend" in response.content.decode()
    assert mail.outbox == []
    assert not LogEntry.objects.filter(object_id=str(digest.pk)).exists()


def test_resend_is_a_post(editor: User) -> None:
    digest = sent_issue()
    deliveries_make(digest, Status.UNKNOWN, 1)

    assert client_for(editor).get(resend_url(digest)).status_code == 405
    assert Delivery.objects.get(digest=digest).status == Status.UNKNOWN


def test_the_panel_of_an_issue_being_sent_refreshes_itself(editor: User) -> None:
    digest = sent_issue(status=Digest.Status.SENDING)
    rows = deliveries_make(digest, Status.QUEUED, 4)
    client = client_for(editor)

    page = client.get(change_url(digest)).content.decode()
    assert 'data-refresh-ms="3000"' in panel_of(page)
    assert f'data-panel-url="{panel_url(digest)}"' in panel_of(page)
    assert "subscribers/admin/deliveries.js" in page
    assert finders.find("subscribers/admin/deliveries.js")

    Delivery.objects.filter(pk__in=[r.pk for r in rows[:3]]).update(status=Status.SENT)
    fragment = client.get(panel_url(digest))
    assert fragment.status_code == 200
    assert shown_counts(panel_of(fragment.content.decode()))["sent"] == 3
    assert shown_counts(panel_of(fragment.content.decode()))["queued"] == 1
    assert "<html" not in fragment.content.decode()

    Delivery.objects.filter(digest=digest).update(status=Status.SENT)
    Digest.objects.filter(pk=digest.pk).update(status=Digest.Status.SENT)
    done = panel_of(client.get(panel_url(digest)).content.decode())
    assert "data-refresh-ms" not in done  # the script stops once the send is over
    assert shown_counts(done)["sent"] == 4


def test_the_panel_and_its_chart_are_for_staff_who_may_view_digests(editor: User) -> None:
    digest = sent_issue()
    deliveries_make(digest, Status.SENT, 1)
    chart = reverse("admin:digests_digest_deliveries_chart", args=[digest.pk])
    staff = User.objects.create_user("staff", "staff@example.com", "x", is_staff=True)

    assert Client().get(panel_url(digest)).status_code == 302  # to the login page
    assert Client().get(chart).status_code == 302
    assert client_for(staff).get(panel_url(digest)).status_code == 403
    assert client_for(staff).get(chart).status_code == 403
    missing = reverse("admin:digests_digest_deliveries_panel", args=[digest.pk + 100])
    assert client_for(editor).get(missing).status_code == 404


# --- The delivery list ----------------------------------------------------------------------


def test_the_delivery_list_is_read_only_with_filters_and_search(editor: User) -> None:
    digest = sent_issue()
    deliveries_make(digest, Status.SENT, 2)
    failed = deliveries_make(digest, Status.FAILED, 1, error="refused by the ESP")[0]
    deliveries_make(sent_issue(day=date(2026, 8, 12)), Status.SENT, 1)
    client = client_for(editor)
    changelist = reverse("admin:subscribers_delivery_changelist")

    page = client.get(changelist).content.decode()
    found = client.get(changelist, {"q": failed.email}).content.decode()
    detail = client.get(reverse("admin:subscribers_delivery_change", args=[failed.pk]))
    refused = client.post(
        reverse("admin:subscribers_delivery_change", args=[failed.pk]), {"status": "sent"}
    )

    for column in ("digest", "email", "status", "attempts", "sent_at", "opened_at", "clicked_at"):
        assert f"column-{column}" in page
    assert "column-error_shown" in page and "refused by the ESP" in page
    # The filters (titled in the admin's language): by status and by issue.
    assert "?status__exact=failed" in page and f"?digest__id__exact={digest.pk}" in page
    assert str(digest) in page
    assert page.count('class="field-status"') == 4
    assert found.count('class="field-email"') == 1 and failed.email in found
    assert reverse("admin:subscribers_delivery_add") not in page
    assert detail.status_code == 200 and 'name="_save"' not in detail.content.decode()
    assert refused.status_code == 403
    assert client.post(reverse("admin:subscribers_delivery_add"), {}).status_code == 403


def test_a_viewer_sees_deliveries_without_readers_addresses_nor_their_pages(viewer: User) -> None:
    digest = sent_issue()
    row = deliveries_make(digest, Status.SENT, 1)[0]
    client = client_for(viewer)

    page = client.get(reverse("admin:subscribers_delivery_changelist")).content.decode()
    detail = client.get(reverse("admin:subscribers_delivery_change", args=[row.pk]))

    assert "column-status" in page and "column-email" not in page
    assert row.email not in page
    assert 'href="/admin/subscribers/delivery/' not in page.split('id="result_list"')[1]
    assert detail.status_code == 403
