"""An issue's way out from the admin: the workflow panel, approve with a send time, cancel.

The preview and test send are tested in tests/subscribers/test_admin_preview.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.admin.models import LogEntry
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from digests.approval import digest_approve
from digests.editing import digest_touch
from digests.models import Category, Digest
from subscribers.models import Delivery
from subscribers.rendering import render_caches_clear
from subscribers.tasks import send_due_digests
from tests.admin_forms import (
    change_page,
    digest_url,
    form_fields,
    page_text,
    shown_messages,
)
from tests.issue_factory import issue_create
from tests.subscribers.factories import subscriber_create

pytestmark = pytest.mark.django_db

NOON = datetime(2026, 8, 13, 12, 0, tzinfo=UTC)  # 21:00 in Seoul


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    render_caches_clear()
    cache.clear()  # the charts of the variants
    yield
    render_caches_clear()
    cache.clear()


def categories() -> list[Category]:
    return list(Category.objects.order_by("position", "name"))


def small_issue(**fields: Any) -> Digest:
    return issue_create(categories=categories()[:2], papers_per_section=2, **fields)


def url(name: str, digest: Digest) -> str:
    return digest_url(name, digest)


# --- the panel on the digest's page ---------------------------------------------------------------


@time_machine.travel(NOON, tick=False)
def test_an_editor_sees_status_preview_test_send_and_approve_with_the_default_time(
    editor_client: Client,
) -> None:
    digest = small_issue()
    response = change_page(editor_client, digest)
    text = page_text(response)
    assert "Status: draft" in text
    assert "Preview the email" in text
    html = response.content.decode()
    assert f'href="{url("preview", digest)}"' in html
    approve = form_fields(html, "workflow-approve-form")
    # The next 07:00 in Seoul, shown in Seoul time, with the zone named.
    assert approve["send_at"] == "2026-08-14T07:00"
    assert "Send at (Asia/Seoul)" in text
    assert approve["version"] == str(digest.version)
    test = form_fields(html, "workflow-test-form")
    assert test["addresses"] == "ed@example.com"
    assert sorted(test["categories"]) == sorted(str(c.pk) for c in categories()[:2])
    assert "workflow-cancel-form" not in html


def test_a_viewer_sees_the_preview_but_no_forms_and_may_post_nothing(
    viewer_client: Client,
) -> None:
    digest = small_issue()
    html = change_page(viewer_client, digest).content.decode()
    assert f'href="{url("preview", digest)}"' in html
    for form in ("workflow-approve-form", "workflow-test-form", "workflow-cancel-form"):
        assert form not in html
    assert viewer_client.get(url("preview", digest)).status_code == 200
    assert "preview-test-form" not in viewer_client.get(url("preview", digest)).content.decode()
    posts = {
        "approve": {"send_now": "1", "version": str(digest.version)},
        "unapprove": {},
        "send_test": {"addresses": "vi@example.com", "language": "ko"},
    }
    for name, data in posts.items():
        assert viewer_client.post(url(name, digest), data).status_code == 403
    digest.refresh_from_db()
    assert digest.status == Digest.Status.DRAFT
    assert mail.outbox == []


# --- approve and cancel ---------------------------------------------------------------------------


@time_machine.travel(NOON, tick=False)
def test_approving_records_who_when_and_the_send_time(editor_client: Client) -> None:
    digest = small_issue()
    fields = form_fields(
        change_page(editor_client, digest).content.decode(), "workflow-approve-form"
    )
    fields["send_at"] = "2026-08-14T09:30"  # in Seoul
    response = editor_client.post(url("approve", digest), fields, follow=True)

    digest.refresh_from_db()
    assert digest.status == Digest.Status.APPROVED
    assert digest.approved_by == "ed" and digest.approved_at == NOON
    assert digest.send_at == datetime(2026, 8, 14, 0, 30, tzinfo=UTC)
    assert not digest.auto_approved and digest.reviewed_at == NOON
    assert "Approved: the issue of 2026-08-13 is sent at 2026-08-14 09:30 Asia/Seoul." in (
        shown_messages(response)
    )
    text = page_text(response)
    assert "Approved by ed at 2026-08-13 21:00 Asia/Seoul." in text
    assert "send time: 2026-08-14 09:30 Asia/Seoul" in text
    assert "workflow-cancel-form" in response.content.decode()
    entry = LogEntry.objects.get(object_id=str(digest.pk))
    assert entry.change_message == "Approved, to be sent at 2026-08-14 09:30 Asia/Seoul."
    assert entry.user.username == "ed"


@time_machine.travel(NOON, tick=False)
def test_a_send_time_in_the_past_is_refused(editor_client: Client) -> None:
    digest = small_issue()
    data = {"send_at": "2026-08-13T20:59", "version": digest.version}  # 11:59 UTC
    response = editor_client.post(url("approve", digest), data, follow=True)
    [message] = shown_messages(response)
    assert "the send time 2026-08-13 20:59 Asia/Seoul has passed" in message
    assert "Approve and send now" in message
    digest.refresh_from_db()
    assert digest.status == Digest.Status.DRAFT
    assert not LogEntry.objects.exists()


@time_machine.travel(NOON, tick=False)
def test_send_now_approves_for_now(editor_client: Client) -> None:
    digest = small_issue()
    data = {"send_at": "", "send_now": "1", "version": digest.version}
    editor_client.post(url("approve", digest), data)
    digest.refresh_from_db()
    assert digest.status == Digest.Status.APPROVED and digest.send_at == NOON


def test_approving_what_changed_since_you_looked_is_refused(editor_client: Client) -> None:
    digest = small_issue()
    fields = form_fields(
        change_page(editor_client, digest).content.decode(), "workflow-approve-form"
    )
    digest_touch(digest_id=digest.pk, by="another-editor", reviewed=True)  # saved meanwhile
    response = editor_client.post(url("approve", digest), fields, follow=True)
    [message] = shown_messages(response)
    assert "changed since you looked (by another-editor" in message
    assert "review it again" in message
    digest.refresh_from_db()
    assert digest.status == Digest.Status.DRAFT


def test_an_issue_without_sections_offers_no_approval(editor_client: Client) -> None:
    digest = issue_create(categories=[])
    html = change_page(editor_client, digest).content.decode()
    assert "workflow-approve-form" not in html
    assert "Nothing to approve: this issue has no sections." in page_text(
        change_page(editor_client, digest)
    )
    data = {"send_now": "1", "version": digest.version}
    response = editor_client.post(url("approve", digest), data, follow=True)
    assert "has no sections" in " ".join(shown_messages(response))


@time_machine.travel(NOON, tick=False)
def test_cancelling_returns_the_issue_to_draft_and_nothing_is_sent(editor_client: Client) -> None:
    digest = small_issue()
    subscriber_create(email="reader@example.com")
    digest = digest_approve(digest=digest, send_at=NOON + timedelta(minutes=5), by="ed")
    fields = form_fields(
        change_page(editor_client, digest).content.decode(), "workflow-cancel-form"
    )
    response = editor_client.post(url("unapprove", digest), fields, follow=True)

    digest.refresh_from_db()
    assert digest.status == Digest.Status.DRAFT and digest.send_at is None
    assert "Back to draft: the send scheduled for 2026-08-13 21:05 Asia/Seoul is cancelled." in (
        " ".join(shown_messages(response))
    )
    assert "workflow-approve-form" in response.content.decode()
    entry = LogEntry.objects.get(object_id=str(digest.pk))
    assert entry.change_message == (
        "Cancelled the send scheduled for 2026-08-13 21:05 Asia/Seoul: back to draft."
    )
    with time_machine.travel(NOON + timedelta(hours=1), tick=False):
        assert send_due_digests()["started"] == []
    assert not Delivery.objects.exists()


def test_a_draft_with_a_past_send_time_is_never_sent() -> None:
    digest = small_issue()
    subscriber_create(email="reader@example.com")
    Digest.objects.filter(pk=digest.pk).update(send_at=timezone.now() - timedelta(hours=1))
    assert send_due_digests()["started"] == []
    digest.refresh_from_db()
    assert digest.status == Digest.Status.DRAFT
    assert not Delivery.objects.exists()


def test_cancelling_a_sent_issue_is_refused_with_a_message(editor_client: Client) -> None:
    digest = small_issue(status=Digest.Status.SENT)
    response = editor_client.post(url("unapprove", digest), follow=True)
    assert "only an approved issue goes back to draft" in " ".join(shown_messages(response))
    digest.refresh_from_db()
    assert digest.status == Digest.Status.SENT


# --- automatic approval, as the admin shows it ----------------------------------------------------


@time_machine.travel(NOON, tick=False)
def test_the_page_and_the_list_show_an_automatic_approval(editor_client: Client) -> None:
    digest = small_issue()
    digest_approve(digest=digest, by="auto-approve", auto=True)
    text = page_text(change_page(editor_client, digest))
    assert "Approved automatically at 2026-08-13 21:00 Asia/Seoul" in text
    assert "nobody had acted on it by then" in text
    listing = page_text(editor_client.get(reverse("admin:digests_digest_changelist")))
    assert "approved, automatically: sends" in listing


@time_machine.travel(NOON, tick=False)
def test_the_page_says_when_a_draft_will_be_approved_automatically(
    editor_client: Client, settings: Any
) -> None:
    settings.DIGEST_AUTO_APPROVE = True
    digest = issue_create(day=date(2026, 8, 13), categories=categories()[:1])
    Digest.objects.filter(pk=digest.pk).update(built_at=datetime(2026, 8, 13, 1, 0, tzinfo=UTC))
    text = page_text(change_page(editor_client, digest))
    assert "unless someone acts, this issue is approved at 2026-08-14 06:30 Asia/Seoul" in text
