"""The SMTP path: one message per reader over one connection to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.core.management import call_command
from django.test import TestCase
from django.utils import timezone

from digests.models import Category, Digest
from subscribers.models import Delivery
from subscribers.rendering import render_caches_clear
from subscribers.sending import transports
from subscribers.sending.transports import smtp_connections_close
from subscribers.tokens import Purpose, token_read
from tests.issue_factory import issue_create
from tests.subscribers.factories import subscriber_create

pytestmark = pytest.mark.django_db

LINK = re.compile(r"https?://[^\s\"<>]+")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Inbox:
    """An aiosmtpd handler that keeps every message and the SMTP session it came in."""

    def __init__(self) -> None:
        self.messages: list[tuple[int, list[str], EmailMessage]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append((id(session), list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    def for_address(self, address: str) -> EmailMessage:
        found = [m for _, to, m in self.messages if to == [address]]
        assert len(found) == 1, f"{address}: {len(found)} messages"
        return found[0]


@contextlib.contextmanager
def relay(handler: Any, settings: Any, **options: Any) -> Iterator[Any]:
    """A real SMTP server (aiosmtpd) on a free port with `handler`, EMAIL_* pointed at it; the
    sessions the send engine keeps are closed at the end, with the server."""
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **options)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS = False
    settings.SITE_URL = "https://insights.example.org"
    render_caches_clear()
    try:
        yield handler
    finally:
        smtp_connections_close()
        controller.stop()
        render_caches_clear()


@pytest.fixture
def smtp(settings: Any) -> Iterator[Inbox]:
    with relay(Inbox(), settings) as inbox:
        yield inbox


def marker(category: Category) -> str:
    return f"SECTIONMARK{category.pk}X"


def send_digest(digest: Digest) -> None:
    """The command as run from a shell: its transactions commit, so the chunks run (eagerly).
    Inside the test's transaction they run when the block ends, after the command: it must not
    wait for them."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        call_command("send_digest", "--date", digest.date.isoformat(), "--no-wait")


def test_each_reader_gets_one_message_over_one_kept_connection(
    smtp: Inbox, capsys: Any, settings: Any
) -> None:
    settings.DELIVERY_SMTP_CONNECTIONS = 1
    cats = list(Category.objects.order_by("position", "name"))
    digest = issue_create(
        papers_per_section=2, summaries={c.pk: f"About {marker(c)} today." for c in cats}
    )
    Digest.objects.filter(pk=digest.pk).update(
        status=Digest.Status.APPROVED, send_at=timezone.now() + timedelta(hours=3)
    )
    alice = subscriber_create(email="alice@example.com", categories=cats[:2])
    subscriber_create(email="bob@example.com", categories=cats[:2])
    subscriber_create(email="carol@example.com", categories=cats[2:3])

    send_digest(digest)

    assert len(smtp.messages) == 3
    # With one connection per worker, kept open from one chunk (one variant) to the next:
    # one SMTP session carried all three.
    sessions = {to[0]: session for session, to, _ in smtp.messages}
    assert len(set(sessions.values())) == 1
    message = smtp.for_address("alice@example.com")
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    for part in (text, html):
        assert marker(cats[0]) in part and marker(cats[1]) in part
        assert marker(cats[2]) not in part
        assert "@@" not in part
    unsubscribe = next(link for link in LINK.findall(text) if "/unsubscribe/" in link)
    token = unsubscribe.rstrip("/").rsplit("/", 1)[1]
    assert token_read(token=token, purpose=Purpose.UNSUBSCRIBE) == alice
    assert unsubscribe in html
    preferences = next(link for link in LINK.findall(text) if "/preferences/" in link)
    assert token_read(token=preferences.rstrip("/").rsplit("/", 1)[1], purpose=Purpose.PREFERENCES)
    assert str(message["List-Unsubscribe"]).strip() == f"<{unsubscribe}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Id"]
    # Text and HTML travel as 8bit UTF-8 (Hangul not tripled by quoted-printable).
    for part in message.walk():
        if part.get_content_maintype() == "text":
            assert part["Content-Transfer-Encoding"] == "8bit"
    assert message.get_body(preferencelist=("plain",))["Content-Type"].params["format"] == "flowed"  # type: ignore[index]
    images = [part for part in message.walk() if part.get_content_maintype() == "image"]
    assert len(images) == 1
    cid = images[0]["Content-ID"].strip("<>")
    assert f"cid:{cid}" in html
    assert images[0].get_content().startswith(b"\x89PNG")
    bob = smtp.for_address("bob@example.com")
    bob_text = bob.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert unsubscribe not in bob_text  # links are personal

    digest.refresh_from_db()
    assert digest.status == Digest.Status.SENT
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    capsys.readouterr()
    call_command("send_digest", "--date", digest.date.isoformat())  # again: nothing to do
    out = capsys.readouterr().out
    assert "sent: 3" in out and f"Issue {digest.date}: sent" in out
    assert len(smtp.messages) == 3


def test_a_refused_recipient_fails_and_the_others_are_sent(settings: Any) -> None:
    """Without PIPELINING (aiosmtpd offers none): one command at a time."""

    class Refusing(Inbox):
        async def handle_RCPT(  # type: ignore[no-untyped-def]
            self, server, session, envelope, address, rcpt_options
        ) -> str:
            if address == "nobody@example.com":
                return "550 5.1.1 No such user"
            envelope.rcpt_tos.append(address)
            return "250 OK"

    with relay(Refusing(), settings) as inbox:
        cats = list(Category.objects.all())
        digest = issue_create(papers_per_section=1, summary_length=300)
        Digest.objects.filter(pk=digest.pk).update(status=Digest.Status.APPROVED, send_at=None)
        for name in ("one", "nobody", "two"):
            subscriber_create(email=f"{name}@example.com", categories=cats[:1])
        send_digest(digest)
    assert sorted(to[0] for _, to, _ in inbox.messages) == ["one@example.com", "two@example.com"]
    failed = Delivery.objects.get(email="nobody@example.com")
    assert failed.status == Delivery.Status.FAILED and "550" in failed.error


def test_a_draft_is_not_sent(smtp: Inbox) -> None:
    digest = issue_create(papers_per_section=1, summary_length=300)
    with pytest.raises(Exception, match="draft"):
        send_digest(digest)
    assert smtp.messages == []


class Raw(Inbox):
    """Keeps the bytes as they came, refuses per address, and announces PIPELINING (RFC 2920)
    as Postfix does: aiosmtpd reads commands one line at a time, so a pipelined group works."""

    def __init__(self) -> None:
        super().__init__()
        self.raw: list[bytes] = []
        self.transient: dict[str, int] = {}  # address -> 4xx answers still to give
        self.refused: set[str] = set()  # addresses answered 550

    async def handle_EHLO(  # type: ignore[no-untyped-def]
        self, server, session, envelope, hostname, responses
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_RCPT(  # type: ignore[no-untyped-def]
        self, server, session, envelope, address, rcpt_options
    ) -> str:
        if address in self.refused:
            return "550 5.1.1 No such user"
        with self.lock:
            left = self.transient.get(address, 0)
            if left:
                self.transient[address] = left - 1
                return "451 4.7.1 Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.original_content  # the bytes as sent, whatever decode_data says
        message = message_from_bytes(data, policy=policy.default)
        with self.lock:
            self.raw.append(data)
            self.messages.append((id(session), list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


@pytest.fixture
def raw_smtp(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Raw]:
    monkeypatch.setattr("subscribers.tasks.EAGER_RETRY_MAX_SLEEP", 0.0)
    with relay(Raw(), settings) as inbox:
        yield inbox


def approved(**fields: Any) -> Digest:
    digest = issue_create(papers_per_section=5, **fields)
    Digest.objects.filter(pk=digest.pk).update(status=Digest.Status.APPROVED, send_at=None)
    return digest


def test_parallel_connections_send_everyone_once_with_lines_under_998_bytes(
    raw_smtp: Raw, settings: Any
) -> None:
    settings.DELIVERY_SMTP_CONNECTIONS = 3
    cats = list(Category.objects.order_by("position"))
    digest = approved(summary_length=2000)  # six Korean sections of about 2,000 characters
    for n in range(30):
        subscriber_create(email=f"r{n}@example.com", categories=cats)
    send_digest(digest)

    addresses = sorted(to[0] for _, to, _ in raw_smtp.messages)
    assert addresses == sorted(f"r{n}@example.com" for n in range(30))
    sessions = {session for session, _, _ in raw_smtp.messages}
    assert 2 <= len(sessions) <= 3  # the connections were used in parallel, and kept open
    for data in raw_smtp.raw:
        assert max(len(line) for line in data.split(b"\r\n")) <= 998
        assert len(data) <= 100 * 1024, len(data)  # a six-category issue, chart included
        assert "한국어".encode() in data or "논문".encode() in data  # Hangul as 8bit UTF-8
    ids = [m["Message-ID"] for _, _, m in raw_smtp.messages]
    assert len(set(ids)) == 30
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


def test_a_4xx_answer_is_retried_and_the_reader_gets_one_copy(raw_smtp: Raw, settings: Any) -> None:
    settings.DELIVERY_SMTP_CONNECTIONS = 1
    cats = list(Category.objects.all())
    digest = approved(summary_length=300)
    for name in ("one", "grey", "two"):
        subscriber_create(email=f"{name}@example.com", categories=cats[:1])
    raw_smtp.transient["grey@example.com"] = 2  # greylisted twice, then taken
    send_digest(digest)
    addresses = sorted(to[0] for _, to, _ in raw_smtp.messages)
    assert addresses == ["grey@example.com", "one@example.com", "two@example.com"]
    grey = Delivery.objects.get(email="grey@example.com")
    assert grey.status == Delivery.Status.SENT and grey.attempts == 3


def test_a_server_without_8bitmime_gets_7bit_messages(settings: Any) -> None:
    # decode_data=True: aiosmtpd then offers no 8BITMIME.
    with relay(Raw(), settings, decode_data=True) as inbox:
        digest = approved(summary_length=300)
        subscriber_create(email="old@example.com", categories=list(Category.objects.all()))
        send_digest(digest)
    (message,) = [m for _, _, m in inbox.messages]
    assert all(
        part["Content-Transfer-Encoding"] in {"base64", "quoted-printable", "7bit"}
        for part in message.walk()
        if not part.is_multipart()
    )
    html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert "/unsubscribe/" in html


def test_tls_and_ssl_together_are_refused_by_the_checks(settings: Any) -> None:
    from subscribers.checks import check_smtp_relay

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = True
    assert [message.id for message in check_smtp_relay()] == ["subscribers.E003"]
    settings.EMAIL_USE_SSL = False
    assert check_smtp_relay() == []


def test_a_kept_session_the_relay_closed_is_replaced_without_a_retry(
    raw_smtp: Raw, settings: Any
) -> None:
    """The next issue's send finds the session kept from the last one closed by the relay
    (its idle timeout): it opens a new one at once, and the chunk does not wait for a retry."""
    settings.DELIVERY_SMTP_CONNECTIONS = 1
    cats = list(Category.objects.all())
    first = approved(summary_length=300)
    subscriber_create(email="one@example.com", categories=cats[:1])
    send_digest(first)
    for connection in [c for kept in transports._smtp_idle.values() for c in kept]:
        assert connection.smtp is not None
        connection.smtp.sock.shutdown(socket.SHUT_RDWR)  # as a relay closing an idle session
    second = issue_create(day=first.date + timedelta(days=1), papers_per_section=1)
    Digest.objects.filter(pk=second.pk).update(status=Digest.Status.APPROVED, send_at=None)

    send_digest(second)

    delivery = Delivery.objects.get(digest=second)
    assert (delivery.status, delivery.attempts) == (Delivery.Status.SENT, 1)
    assert len(raw_smtp.messages) == 2


def test_pipelined_refusals_fail_that_reader_alone(raw_smtp: Raw, settings: Any) -> None:
    settings.DELIVERY_SMTP_CONNECTIONS = 1
    cats = list(Category.objects.all())
    digest = approved(summary_length=300)
    for name in ("one", "nobody", "two", "three"):
        subscriber_create(email=f"{name}@example.com", categories=cats[:1])
    raw_smtp.refused.add("nobody@example.com")
    send_digest(digest)
    addresses = sorted(to[0] for _, to, _ in raw_smtp.messages)
    assert addresses == ["one@example.com", "three@example.com", "two@example.com"]
    assert len({session for session, _, _ in raw_smtp.messages}) == 1  # the session went on
    kept = [c for connections in transports._smtp_idle.values() for c in connections]
    assert kept and all(c.pipelining for c in kept)  # MAIL, RCPT and DATA went as one group
    nobody = Delivery.objects.get(email="nobody@example.com")
    assert nobody.status == Delivery.Status.FAILED and "550" in nobody.error
