"""The email of an issue from the admin (subscribers/admin_views/preview.py): preview, test send."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from html import unescape
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.admin.models import LogEntry
from django.core import mail
from django.core.cache import cache
from django.test import Client

from digests.models import Category, Digest
from subscribers.models import Delivery
from subscribers.rendering import render_caches_clear
from subscribers.tokens import Purpose, token_read
from tests.admin_forms import (
    change_page,
    digest_url,
    form_fields,
    page_text,
    shown_messages,
)
from tests.fakes.esp_server import FakeESP
from tests.issue_factory import issue_create
from tests.subscribers.factories import subscriber_create

pytestmark = pytest.mark.django_db

DOMAIN = "mg.example.com"


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    render_caches_clear()
    cache.clear()  # the charts of the variants
    yield
    render_caches_clear()
    cache.clear()


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
    return digest_url(name, digest)


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
    # The whole message as SMTP sends it: the HTML, the text and the chart, a little more.
    html_kb = float(re.search(r"HTML size: (\d+\.\d) KB", text).group(1))  # type: ignore[union-attr]
    whole_kb = float(re.search(r"Whole message: (\d+\.\d) KB", text).group(1))  # type: ignore[union-attr]
    assert html_kb < whole_kb < 100
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
    # One batch call, as a send makes it: Mailgun puts each recipient's header in.
    unsubscribe = call.substituted(call.headers["List-Unsubscribe"], "ed@example.com")
    assert unsubscribe.startswith("<https://insights.example.org/")
    post = call.substituted(call.headers["List-Unsubscribe-Post"], "ed@example.com")
    assert post == "List-Unsubscribe=One-Click"
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
