"""An issue's way out from the admin: preview, test send, approve with a send time, cancel."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from html import unescape
from typing import Any
from urllib.parse import urlencode

import pytest
import time_machine
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from digests.approval import digest_approve
from digests.editing import digest_touch
from digests.models import Category, Digest
from subscribers.delivery import digests_due_send
from subscribers.models import Delivery
from subscribers.rendering import render_caches_clear
from subscribers.tokens import Purpose, token_read
from tests.admin_forms import form_fields, staff_in
from tests.fakes.esp_server import FakeESP
from tests.issue_factory import issue_create
from tests.subscribers.factories import subscriber_create

pytestmark = pytest.mark.django_db

DOMAIN = "mg.example.com"
NOON = datetime(2026, 8, 13, 12, 0, tzinfo=UTC)  # 21:00 in Seoul


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    render_caches_clear()
    cache.clear()  # the charts of the variants
    yield
    render_caches_clear()
    cache.clear()


@pytest.fixture
def editor() -> User:
    return staff_in("Editors", "ed")


@pytest.fixture
def editor_client(client: Client, editor: User) -> Client:
    client.force_login(editor)
    return client


@pytest.fixture
def viewer_client() -> Client:
    client = Client()
    client.force_login(staff_in("Viewers", "vi"))
    return client


@pytest.fixture
def mailgun(settings: Any) -> Iterator[FakeESP]:
    """anymail's real Mailgun backend, talking to a fake Mailgun API on localhost."""
    with FakeESP() as fake:
        settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
        settings.ANYMAIL = {
            "MAILGUN_API_KEY": "key",
            "MAILGUN_SENDER_DOMAIN": DOMAIN,
            "MAILGUN_API_URL": fake.base_url + "/v3",
        }
        settings.DEFAULT_FROM_EMAIL = f"Daily AI Insights <digest@{DOMAIN}>"
        settings.SITE_URL = "https://insights.example.org"
        yield fake


def categories() -> list[Category]:
    return list(Category.objects.order_by("position", "name"))


def small_issue(**fields: Any) -> Digest:
    return issue_create(categories=categories()[:2], papers_per_section=2, **fields)


def url(name: str, digest: Digest) -> str:
    return reverse(f"admin:digests_digest_{name}", args=[digest.pk])


def page_text(response: Any) -> str:
    """The page as words: tags dropped, entities decoded, whitespace collapsed."""
    html = response.content.decode()
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def shown_messages(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def change_page(client: Client, digest: Digest) -> Any:
    response = client.get(url("change", digest))
    assert response.status_code == 200
    return response


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


# --- preview --------------------------------------------------------------------------------------


def test_the_preview_shows_subject_both_widths_the_text_and_the_size(
    editor_client: Client,
) -> None:
    digest = small_issue()
    first, second = categories()[:2]
    response = editor_client.get(url("preview", digest))
    assert response.status_code == 200
    text = page_text(response)
    assert f"Daily AI Insights · 2026-08-13 · {first.name}, {second.name}" in text
    assert re.search(r"HTML size: \d+\.\d KB of Gmail's 102 KB clipping limit", text)
    assert "Too large for Gmail" not in text
    html = response.content.decode()
    frames = re.findall(r"<iframe[^>]*>", html)
    assert len(frames) == 2
    assert 'width="700"' in frames[0] and 'width="375"' in frames[1]
    assert all("sandbox=" in frame for frame in frames)
    # The default choice: every category with a section; the text part in a <pre>.
    shown = form_fields(html, "preview-choice-form")
    assert sorted(shown["categories"]) == sorted([str(first.pk), str(second.pk)])
    pre = re.search(r'<pre class="preview-text">(.*?)</pre>', html, re.S)
    assert pre and f"== {first.name} ==" in unescape(pre.group(1))
    assert "@@" not in unescape(pre.group(1))


def test_the_framed_email_has_the_chart_inline_and_may_be_framed_by_the_site(
    editor_client: Client,
) -> None:
    digest = small_issue()
    page = editor_client.get(url("preview", digest)).content.decode()
    frame_src = unescape(re.findall(r'<iframe src="([^"]+)"', page)[0])
    response = editor_client.get(frame_src)
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert "sandbox" in response["Content-Security-Policy"]
    html = response.content.decode()
    assert 'src="data:image/png;base64,iVBOR' in html
    assert "cid:" not in html
    assert categories()[0].name in html


def test_a_large_issue_is_flagged_above_gmails_clipping_limit(editor_client: Client) -> None:
    digest = issue_create(papers_per_section=5, summary_length=9000)
    text = page_text(editor_client.get(url("preview", digest)))
    size = float(re.search(r"HTML size: (\d+\.\d) KB", text).group(1))  # type: ignore[union-attr]
    assert size > 102
    warning = text.index("Too large for Gmail")
    assert warning < text.index("HTML size:")  # the warning comes first
    assert f"the HTML is {size} KB, over Gmail's 102 KB limit" in text


def test_choosing_categories_and_language(editor_client: Client) -> None:
    digest = small_issue()
    second, third = categories()[1:3]
    query = urlencode({"categories": [second.pk], "language": "en"}, doseq=True)
    text = page_text(editor_client.get(f"{url('preview', digest)}?{query}"))
    assert f"Daily AI Insights · 2026-08-13 · {second.name}" in text
    assert f"categories: {second.name}; language: en" in text
    assert "Unsubscribe" in text  # the English footer, in the text part
    assert "no section in this issue:" not in text

    query = urlencode({"categories": [third.pk], "language": "ko"}, doseq=True)
    text = page_text(editor_client.get(f"{url('preview', digest)}?{query}"))
    assert (
        "The chosen categories have no section in this issue: readers like this get the short "
        "note below instead of the issue." in text
    )
    assert "오늘은 선택하신 분야의 새 논문이 없습니다" in text  # the note's subject


def test_the_preview_as_a_reader_uses_their_categories_language_and_links(
    editor_client: Client,
) -> None:
    digest = small_issue()
    second = categories()[1]
    reader = subscriber_create(email="reader@example.com", categories=[second], language="en")
    response = editor_client.get(url("preview", digest), {"subscriber": "Reader@Example.com"})
    text = page_text(response)
    assert f"as reader@example.com (categories: {second.name}; language: en)" in text
    assert f"Daily AI Insights · 2026-08-13 · {second.name}" in text
    pre = unescape(re.search(r"<pre[^>]*>(.*?)</pre>", response.content.decode(), re.S).group(1))  # type: ignore[union-attr]
    unsubscribe = re.search(r"https?://\S+/unsubscribe/([^/\s]+)/", pre)
    assert unsubscribe, pre
    assert token_read(token=unsubscribe.group(1), purpose=Purpose.UNSUBSCRIBE) == reader


def test_an_unknown_reader_is_an_error_on_the_form(editor_client: Client) -> None:
    digest = small_issue()
    response = editor_client.get(url("preview", digest), {"subscriber": "nobody@example.com"})
    assert response.status_code == 200
    assert "No reader has the address nobody@example.com." in page_text(response)
    assert "<iframe" not in response.content.decode()


def test_a_viewer_may_not_preview_as_a_reader(viewer_client: Client) -> None:
    digest = small_issue()
    subscriber_create(email="reader@example.com")
    page = viewer_client.get(url("preview", digest)).content.decode()
    assert 'name="subscriber"' not in page
    response = viewer_client.get(url("preview", digest), {"subscriber": "reader@example.com"})
    assert response.status_code == 403
    email = viewer_client.get(url("preview_email", digest), {"subscriber": "reader@example.com"})
    assert email.status_code == 403


@pytest.mark.parametrize("status", [Digest.Status.APPROVED, Digest.Status.SENT])
def test_approved_and_sent_issues_can_be_previewed(viewer_client: Client, status: str) -> None:
    digest = small_issue(status=status)
    response = viewer_client.get(url("preview", digest))
    assert response.status_code == 200
    assert "HTML size:" in page_text(response)


# --- send a test ----------------------------------------------------------------------------------


def test_a_test_goes_through_the_esp_as_a_delivery_would(
    editor_client: Client, mailgun: FakeESP
) -> None:
    digest = small_issue()
    first = categories()[0]
    fields = form_fields(change_page(editor_client, digest).content.decode(), "workflow-test-form")
    fields["addresses"] += "\nsecond@example.com"
    response = editor_client.post(url("send_test", digest), fields, follow=True)

    assert response.redirect_chain[-1][0] == url("change", digest)
    assert "Test sent to ed@example.com, second@example.com" in " ".join(shown_messages(response))
    assert sorted(mailgun.recipients()) == ["ed@example.com", "second@example.com"]
    call = mailgun.call_for("ed@example.com")
    assert call.subject.startswith("[TEST] Daily AI Insights · 2026-08-13 · ")
    assert first.name in call.subject and first.name in call.html and first.name in call.text
    assert call.headers["List-Unsubscribe"].startswith("<https://insights.example.org/")
    assert call.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert len(call.inline) == 1 and call.inline[0].content.startswith(b"\x89PNG")
    assert f'src="cid:{call.inline[0].filename}"' in call.html
    assert Delivery.objects.count() == 0
    entry = LogEntry.objects.get(object_id=str(digest.pk))
    assert entry.change_message.startswith("Sent a test (categories: ")
    assert "to ed@example.com, second@example.com" in entry.change_message


def test_a_test_from_the_preview_sends_the_readers_email(
    editor_client: Client, mailgun: FakeESP
) -> None:
    digest = small_issue()
    second = categories()[1]
    subscriber_create(email="reader@example.com", categories=[second], language="en")
    preview = editor_client.get(url("preview", digest), {"subscriber": "reader@example.com"})
    fields = form_fields(preview.content.decode(), "preview-test-form")
    assert fields["subscriber"] == "reader@example.com"
    response = editor_client.post(url("send_test", digest), fields)
    assert response.status_code == 302
    assert response["Location"].startswith(url("preview", digest) + "?subscriber=")
    call = mailgun.call_for("ed@example.com")
    assert call.subject == f"[TEST] Daily AI Insights · 2026-08-13 · {second.name}"
    assert "Unsubscribe" in call.text  # the reader's language
    assert mailgun.recipients() == ["ed@example.com"]  # never the reader
    entry = LogEntry.objects.get(object_id=str(digest.pk))
    assert "reader@example.com" not in entry.change_message  # Viewers read the log


def test_an_esp_error_is_a_message_not_a_server_error(editor_client: Client, settings: Any) -> None:
    digest = small_issue()
    with FakeESP(script=[500]) as fake:
        settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
        settings.ANYMAIL = {
            "MAILGUN_API_KEY": "key",
            "MAILGUN_SENDER_DOMAIN": DOMAIN,
            "MAILGUN_API_URL": fake.base_url + "/v3",
        }
        data = {"addresses": "ed@example.com", "language": "ko", "categories": categories()[0].pk}
        response = editor_client.post(url("send_test", digest), data, follow=True)
    assert response.status_code == 200
    text = " ".join(shown_messages(response))
    assert "The test to ed@example.com was not sent" in text
    assert "500" in text
    assert fake.calls == []
    assert "failed" in LogEntry.objects.get(object_id=str(digest.pk)).change_message


def test_a_test_through_smtp_style_backends_carries_chart_and_headers(
    editor_client: Client,
) -> None:
    digest = small_issue()
    data = {"addresses": "qa@example.com", "language": "ko", "categories": categories()[0].pk}
    editor_client.post(url("send_test", digest), data)
    [message] = mail.outbox
    assert message.to == ["qa@example.com"]
    assert message.subject.startswith("[TEST] ")
    assert message.extra_headers["List-Unsubscribe"].startswith("<http")
    html = next(content for content, kind in message.alternatives if kind == "text/html")
    [image] = message.attachments
    cid = image["Content-ID"].strip("<>")
    assert f'src="cid:{cid}"' in str(html)


@pytest.mark.parametrize(
    ("addresses", "error"),
    [
        ("not-an-address", "Not an email address: not-an-address."),
        (" ".join(f"t{n}@example.com" for n in range(11)), "At most 10 addresses"),
        ("", "Give at least one address"),
    ],
)
def test_test_addresses_are_checked(editor_client: Client, addresses: str, error: str) -> None:
    digest = small_issue()
    data = {"addresses": addresses, "language": "ko"}
    response = editor_client.post(url("send_test", digest), data, follow=True)
    assert error in " ".join(shown_messages(response))
    assert mail.outbox == []


def test_the_next_page_must_be_on_this_site(editor_client: Client) -> None:
    digest = small_issue()
    data = {"addresses": "qa@example.com", "language": "ko", "next": "https://evil.example/"}
    response = editor_client.post(url("send_test", digest), data)
    assert response["Location"] == url("change", digest)


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
        assert digests_due_send()["started"] == []
    assert not Delivery.objects.exists()


def test_a_draft_with_a_past_send_time_is_never_sent() -> None:
    digest = small_issue()
    subscriber_create(email="reader@example.com")
    Digest.objects.filter(pk=digest.pk).update(send_at=timezone.now() - timedelta(hours=1))
    assert digests_due_send()["started"] == []
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


def test_a_sent_issue_is_tested_from_its_preview_not_its_read_only_page(
    editor_client: Client,
) -> None:
    digest = small_issue(status=Digest.Status.SENT)
    page = change_page(editor_client, digest).content.decode()
    assert "workflow-test-form" not in page and "workflow-approve-form" not in page
    assert f'href="{url("preview", digest)}"' in page
    preview = editor_client.get(url("preview", digest)).content.decode()
    fields = form_fields(preview, "preview-test-form")
    editor_client.post(url("send_test", digest), fields)
    assert [m.to for m in mail.outbox] == [["ed@example.com"]]


def test_an_unreachable_mail_server_is_a_message_not_a_server_error(
    editor_client: Client, settings: Any
) -> None:
    digest = small_issue()
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    data = {"addresses": "ed@example.com qa@example.com", "language": "ko"}
    response = editor_client.post(url("send_test", digest), data, follow=True)
    assert response.status_code == 200
    text = " ".join(shown_messages(response))
    assert "The test to ed@example.com was not sent: ConnectionRefusedError" in text
    assert "The test to qa@example.com was not sent" in text
