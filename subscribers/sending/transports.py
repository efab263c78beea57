"""How a chunk's emails leave: a transport takes one DigestEmail and some recipients and says,
per recipient, what became of them. Nothing here touches the database.

A transport is small (`Transport`): `batch_size` (recipients per `send`), `send(email,
recipients) -> Outcome`, `close()`. Three implementations, chosen from EMAIL_BACKEND by
`transport_open`:

- `ApiTransport`: anymail backends that batch-send with merge data (Mailgun, SendGrid, ...):
  one API call per batch; a permanent 400/413 is bisected until the refused address is alone.
- `SmtpTransport`: Django's SMTP backend named in EMAIL_BACKEND, but the sending is ours:
  DELIVERY_SMTP_CONNECTIONS connections per worker in parallel threads, each message the
  pre-encoded bytes of `emails.digest_wire` with the reader's values put in.
- `BackendTransport`: any other Django backend (console, file, locmem, anymail without merge
  data): one `emails.digest_message` per reader over one connection.

What a recipient can become (`Outcome`): sent (with the ESP's message id), failed (refused: this
reader alone), unknown (the server may have accepted it: a connection dropped after the whole
message was handed over), or left out of all three: not attempted or refused for now, to be
retried (`retry_reason` says why). `errors` counts failed calls and refused readers, `ok` the
successes, both in order so a run of errors can be told (`trailing_errors`).
"""

from __future__ import annotations

import smtplib
import ssl
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email import encoders
from functools import cache
from typing import Any, Protocol

from anymail.exceptions import AnymailAPIError, AnymailError, AnymailRecipientsRefused
from django.conf import settings
from django.core.mail import get_connection

from ..emails import (
    BatchReader,
    DigestEmail,
    DigestWire,
    WireLineTooLong,
    digest_batch_message,
    digest_message,
    digest_wire,
    link_templates,
    personal_links,
    smtp_data,
)
from ..tokens import TokenSubject

# anymail backends that batch-send one message to many recipients with per-recipient merge data,
# and how each spells a merge field in the body (Mailgun tested against a fake of its API; the
# others following anymail's documentation).
MERGE_FIELD_FORMATS = {
    "anymail.backends.mailgun": "%recipient.{}%",
    "anymail.backends.sendgrid": "-{}-",
    "anymail.backends.sparkpost": "{{{{{}}}}}",
    "anymail.backends.mailjet": "[[var:{}]]",
    "anymail.backends.brevo": "{{{{ params.{} }}}}",
    "anymail.backends.sendinblue": "{{{{ params.{} }}}}",
    "anymail.backends.mandrill": "*|{}|*",
}
SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
# Worth retrying later: the ESP is busy or broken for now (408 timeout, 429, 5xx).
TRANSIENT_STATUS = {408, 429}
# The ESP refused the call because of something in it: bisect to find the address.
BISECT_STATUS = {400, 413}
# Recipients per send() for one-message-per-reader transports: through a Django backend, and
# over SMTP (spread over its connections; the outcome is recorded after each send()). A rate
# limit smaller than these caps them.
SINGLE_BATCH = 64
SMTP_BATCH = 256


@dataclass(frozen=True, slots=True)
class Reader:
    """What the signed links need of a reader (a Model instance costs ten times more to make,
    and a chunk makes a thousand)."""

    pk: int | None
    email: str
    confirm_nonce: str = ""


@dataclass(frozen=True, slots=True)
class Recipient:
    delivery_id: int  # the ledger's row; any distinct number for a test send
    email: str
    variant: str
    language: str
    subscriber: TokenSubject  # a Reader, or a Subscriber (the test send)


@dataclass
class Outcome:
    sent: dict[int, str] = field(default_factory=dict)  # delivery id -> message id
    failed: dict[int, str] = field(default_factory=dict)  # delivery id -> reason
    unknown: dict[int, str] = field(default_factory=dict)  # delivery id -> reason
    retry_reason: str = ""  # some recipients wait for a retry, because of this
    ok: int = 0
    errors: int = 0
    trailing_errors: int = 0  # errors since the last success, in this outcome

    def success(self) -> None:
        self.ok += 1
        self.trailing_errors = 0

    def error(self, count: int = 1) -> None:
        self.errors += count
        self.trailing_errors += count

    def merge(self, other: Outcome) -> None:
        self.sent.update(other.sent)
        self.failed.update(other.failed)
        self.unknown.update(other.unknown)
        self.retry_reason = self.retry_reason or other.retry_reason
        self.ok += other.ok
        self.errors += other.errors
        self.trailing_errors = (
            other.trailing_errors if other.ok else (self.trailing_errors + other.trailing_errors)
        )


class Transport(Protocol):
    batch_size: int

    def send(self, email: DigestEmail, recipients: Sequence[Recipient]) -> Outcome: ...

    def close(self) -> None: ...


def reason_of(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:2000]


def backend_module() -> str:
    return str(settings.EMAIL_BACKEND).rsplit(".", 1)[0]


def transport_open() -> Transport:
    """The transport for EMAIL_BACKEND; close it when done."""
    module = backend_module()
    if module in MERGE_FIELD_FORMATS:
        return ApiTransport(MERGE_FIELD_FORMATS[module])
    if settings.EMAIL_BACKEND == SMTP_BACKEND:
        return SmtpTransport(connections=max(1, settings.DELIVERY_SMTP_CONNECTIONS))
    return BackendTransport()


# --- batch API (anymail with merge data) ----------------------------------------------------------


class ApiTransport:
    def __init__(self, merge_format: str) -> None:
        self.merge_format = merge_format
        self.batch_size = max(1, settings.DELIVERY_BATCH_SIZE)
        self.connection = get_connection()
        self.links = link_templates()

    def close(self) -> None:
        self.connection.close()

    def send(self, email: DigestEmail, recipients: Sequence[Recipient]) -> Outcome:
        outcome = Outcome()
        readers = {
            r.delivery_id: BatchReader(
                r.email,
                personal_links(r.subscriber, self.links),
                {"delivery_id": str(r.delivery_id)},
            )
            for r in recipients
        }
        self._bisect(email, list(recipients), readers, outcome)
        return outcome

    def _bisect(
        self,
        email: DigestEmail,
        recipients: list[Recipient],
        readers: dict[int, BatchReader],
        outcome: Outcome,
    ) -> None:
        """One call; a permanent refusal is split in halves until the bad address is alone."""
        message = digest_batch_message(
            email,
            readers=[readers[r.delivery_id] for r in recipients],
            merge_format=self.merge_format,
            connection=self.connection,
        )
        ids = [r.delivery_id for r in recipients]
        try:
            self.connection.send_messages([message])
        except AnymailRecipientsRefused as error:
            outcome.failed.update(dict.fromkeys(ids, f"refused by the ESP: {error}"))
            outcome.error()
            return
        except AnymailAPIError as error:
            status = getattr(error, "status_code", None)
            if status is None or status in TRANSIENT_STATUS or status >= 500:
                outcome.retry_reason = reason_of(error)
                outcome.error()
                return
            if status < 400:
                # The ESP answered 2xx but in a shape we cannot read: it may have sent them.
                outcome.unknown.update(dict.fromkeys(ids, reason_of(error)))
                return
            if status in BISECT_STATUS and len(recipients) > 1:
                half = len(recipients) // 2
                self._bisect(email, recipients[:half], readers, outcome)
                self._bisect(email, recipients[half:], readers, outcome)
                return
            if status in BISECT_STATUS:
                outcome.failed[ids[0]] = reason_of(error)
            else:
                # 401/403/404: the account, key or domain; nobody was sent: retried, and a
                # run of them pauses the send.
                outcome.retry_reason = reason_of(error)
            outcome.error()
            return
        except AnymailError as error:
            # Refused by anymail before any request (configuration, unsupported feature).
            outcome.retry_reason = reason_of(error)
            outcome.error()
            return
        statuses = message.anymail_status.recipients
        for recipient in recipients:
            status = statuses.get(recipient.email)
            if status is not None and status.status in {"rejected", "invalid"}:
                outcome.failed[recipient.delivery_id] = f"{status.status} by the ESP"
            else:
                outcome.sent[recipient.delivery_id] = str(getattr(status, "message_id", "") or "")
        outcome.success()


# --- one message per reader through a Django backend ----------------------------------------------


class BackendTransport:
    """Console, file, locmem or an ESP without merge data: one message per reader."""

    def __init__(self) -> None:
        self.batch_size = SINGLE_BATCH
        self.connection = get_connection()
        self.links = link_templates()
        self.opened = False

    def close(self) -> None:
        self.connection.close()

    def send(self, email: DigestEmail, recipients: Sequence[Recipient]) -> Outcome:
        outcome = Outcome()
        try:
            if not self.opened:
                self.connection.open()
                self.opened = True
            for recipient in recipients:
                links = personal_links(recipient.subscriber, self.links)
                message = digest_message(
                    email, to=recipient.email, links=links, connection=self.connection
                )
                try:
                    self.connection.send_messages([message])
                except AnymailRecipientsRefused as error:
                    outcome.failed[recipient.delivery_id] = f"refused by the ESP: {error}"
                    outcome.error()
                    continue
                status = getattr(message, "anymail_status", None)
                outcome.sent[recipient.delivery_id] = str(getattr(status, "message_id", "") or "")
                outcome.success()
        except (AnymailError, OSError, smtplib.SMTPException) as error:
            outcome.retry_reason = reason_of(error)
            outcome.error()
        return outcome


# --- SMTP, ours -----------------------------------------------------------------------------------


class SmtpTransient(Exception):
    """4xx, or the connection broke before the message was handed over: retry later."""


class SmtpUnknown(Exception):
    """The connection broke after the whole message was handed over: it may have been taken."""


class SmtpConnection:
    """One SMTP session to EMAIL_HOST, kept open across messages and chunks (`_smtp_idle`)."""

    def __init__(self) -> None:
        self.smtp: smtplib.SMTP | None = None
        self.eight_bit = False
        self.pipelining = False
        self.reused = False  # has carried a message: a failure may be a server's idle timeout
        self.last_used = 0.0

    def open(self) -> smtplib.SMTP:
        if self.smtp is not None:
            return self.smtp
        host, port, timeout = settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT
        smtp: smtplib.SMTP
        if settings.EMAIL_USE_SSL:
            smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=_tls_context())
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        smtp.ehlo()
        if settings.EMAIL_USE_TLS:
            smtp.starttls(context=_tls_context())
            smtp.ehlo()
        if settings.EMAIL_HOST_USER:
            smtp.login(settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD)
        self.eight_bit = smtp.has_extn("8bitmime")
        self.pipelining = smtp.has_extn("pipelining")
        self.smtp = smtp
        self.reused = False
        return smtp

    def close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (smtplib.SMTPException, OSError):
                self.smtp.close()
            self.smtp = None

    def drop(self) -> None:
        if self.smtp is not None:
            self.smtp.close()
            self.smtp = None
        self.reused = False

    def deliver(self, sender: str, to: str, data: bytes, *, eight_bit: bool) -> str:
        """One transaction. Returns the server's answer to the message; raises
        SMTPRecipientsRefused/SMTPSenderRefused/SMTPDataError for a 5xx (this reader alone),
        SmtpTransient for a 4xx or a connection lost before the end of the data, SmtpUnknown
        for a connection lost after it."""
        smtp = self.open()
        handed_over = False
        try:
            if self.pipelining:
                # RFC 2920: MAIL, RCPT and DATA in one write, their three answers read after.
                smtp.send(_envelope(sender, to, eight_bit=eight_bit))
                answers = [smtp.getreply() for _ in range(3)]
            else:
                answers = [smtp.mail(sender, ["BODY=8BITMIME"] if eight_bit else [])]
                answers.append(smtp.rcpt(to) if answers[0][0] == 250 else (503, b"no sender"))
                answers.append(smtp.docmd("DATA") if answers[1][0] in (250, 251) else (503, b""))
            (mail_code, mail_answer), (rcpt_code, rcpt_answer), (code, answer) = answers
            if mail_code != 250:
                error = smtplib.SMTPSenderRefused(mail_code, mail_answer, sender)
                self._refused(mail_code, mail_answer, error)
            if rcpt_code not in (250, 251):
                error_ = smtplib.SMTPRecipientsRefused({to: (rcpt_code, rcpt_answer)})
                self._refused(rcpt_code, rcpt_answer, error_)
            if code != 354:
                self._refused(code, answer, smtplib.SMTPDataError(code, answer))
            smtp.send(data)  # dot-stuffed, ends with CRLF . CRLF
            handed_over = True
            code, answer = smtp.getreply()
            if code != 250:
                self._refused(code, answer, smtplib.SMTPDataError(code, answer), reset=False)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException):
            raise  # a 5xx answer, classified above (SMTPException is an OSError)
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            self.drop()
            if handed_over:
                raise SmtpUnknown(reason_of(error)) from error
            raise SmtpTransient(reason_of(error)) from error
        return answer.decode(errors="replace")

    def _refused(self, code: int, answer: bytes, error: Exception, *, reset: bool = True) -> None:
        if reset and self.smtp is not None:
            try:
                self.smtp.rset()
            except (smtplib.SMTPException, OSError):
                self.drop()
        if code >= 500:
            raise error
        raise SmtpTransient(f"{code} {answer.decode(errors='replace')}")


def _envelope(sender: str, to: str, *, eight_bit: bool) -> bytes:
    """MAIL, RCPT and DATA as one write. Addresses come from the database, validated at signup;
    one with a line break or angle bracket could not be a valid address and is refused here."""
    if any(c in sender + to for c in "\r\n<>"):
        raise smtplib.SMTPRecipientsRefused({to: (553, b"address not allowed")})
    body = " BODY=8BITMIME" if eight_bit else ""
    utf8 = "" if (sender + to).isascii() else " SMTPUTF8"
    return f"MAIL FROM:<{sender}>{body}{utf8}\r\nRCPT TO:<{to}>\r\nDATA\r\n".encode()


@cache
def _tls_context() -> ssl.SSLContext:
    """Made once per process: loading the system's certificates takes tens of milliseconds."""
    return ssl.create_default_context()


# Open SMTP sessions of this process, by relay, for the next chunk: opening one (TCP, EHLO,
# STARTTLS, AUTH) costs more than sending a message. Closed when idle longer than SMTP_IDLE.
SMTP_IDLE_SECONDS = 30.0
_smtp_idle: dict[tuple[object, ...], list[SmtpConnection]] = {}
_smtp_idle_lock = threading.Lock()


def _relay() -> tuple[object, ...]:
    return (
        settings.EMAIL_HOST,
        settings.EMAIL_PORT,
        settings.EMAIL_HOST_USER,
        settings.EMAIL_USE_TLS,
        settings.EMAIL_USE_SSL,
    )


def smtp_connections_take(count: int) -> list[SmtpConnection]:
    now = time.monotonic()
    with _smtp_idle_lock:
        idle = _smtp_idle.setdefault(_relay(), [])
        taken = [idle.pop() for _ in range(min(count, len(idle)))]
    for connection in taken:
        if now - connection.last_used > SMTP_IDLE_SECONDS:
            connection.close()  # the relay may have closed it: a new one
    return taken + [SmtpConnection() for _ in range(count - len(taken))]


def smtp_connections_give_back(connections: list[SmtpConnection]) -> None:
    with _smtp_idle_lock:
        _smtp_idle.setdefault(_relay(), []).extend(c for c in connections if c.smtp is not None)


def smtp_connections_close() -> None:
    """Closes every idle session of this process (tests; a worker shutting down)."""
    with _smtp_idle_lock:
        idle = [c for connections in _smtp_idle.values() for c in connections]
        _smtp_idle.clear()
    for connection in idle:
        connection.close()


class SmtpTransport:
    """Messages as pre-encoded bytes over DELIVERY_SMTP_CONNECTIONS sessions in parallel."""

    def __init__(self, *, connections: int) -> None:
        self.connections = smtp_connections_take(connections)
        self.batch_size = SMTP_BATCH
        self.links = link_templates()
        self.pool = ThreadPoolExecutor(connections) if connections > 1 else None
        self.sequence = uuid.uuid4().hex[:12]
        self.lock = threading.Lock()

    def close(self) -> None:
        """The sessions stay open for the next chunk of this process."""
        smtp_connections_give_back(self.connections)
        if self.pool is not None:
            self.pool.shutdown(wait=True)

    def send(self, email: DigestEmail, recipients: Sequence[Recipient]) -> Outcome:
        slices = [
            list(recipients[i :: len(self.connections)]) for i in range(len(self.connections))
        ]
        work = [
            (connection, part)
            for connection, part in zip(self.connections, slices, strict=True)
            if part
        ]
        if self.pool is None or len(work) == 1:
            results = [self._send_slice(email, connection, part) for connection, part in work]
        else:
            futures = [self.pool.submit(self._send_slice, email, c, p) for c, p in work]
            results = [future.result() for future in futures]
        outcome = Outcome()
        for result in results:
            outcome.merge(result)
        return outcome

    def _send_slice(
        self, email: DigestEmail, connection: SmtpConnection, recipients: list[Recipient]
    ) -> Outcome:
        outcome = Outcome()
        try:
            wire = digest_wire(email)
        except WireLineTooLong:
            wire = None
        domain = (settings.DEFAULT_FROM_EMAIL.rpartition("@")[2] or "localhost").rstrip(">")
        for recipient in recipients:
            links = personal_links(recipient.subscriber, self.links)
            message_id = (
                f"digest.{email.digest_id}.{recipient.delivery_id}.{self.sequence}@{domain}"
            )
            try:
                self._deliver(connection, wire, email, recipient, links, message_id)
            except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as error:
                outcome.failed[recipient.delivery_id] = reason_of(error)
                outcome.error()
            except smtplib.SMTPDataError as error:
                outcome.failed[recipient.delivery_id] = reason_of(error)
                outcome.error()
            except SmtpUnknown as error:
                outcome.unknown[recipient.delivery_id] = (
                    f"the connection broke after the message was handed over: {error}"
                )
                outcome.error()
            except (SmtpTransient, smtplib.SMTPException, OSError) as error:
                # Greylisting, a full queue, a refused login or a dropped connection: this
                # reader and the rest of the slice wait for the chunk's retry.
                connection.drop()
                outcome.retry_reason = reason_of(error)
                outcome.error()
                break
            else:
                outcome.sent[recipient.delivery_id] = f"<{message_id}>"
                outcome.success()
        connection.last_used = time.monotonic()
        return outcome

    def _deliver(
        self,
        connection: SmtpConnection,
        wire: DigestWire | None,
        email: DigestEmail,
        recipient: Recipient,
        links: dict[str, str],
        message_id: str,
    ) -> None:
        """One message; on a session kept from before that broke before the message was handed
        over (the relay's idle timeout), once more on a new session."""
        for attempt in (1, 2):
            reused = connection.reused
            try:
                connection.open()
                if wire is not None and connection.eight_bit:
                    data = wire.render(to=recipient.email, message_id=message_id, links=links)
                    sender, eight_bit = wire.envelope_from, True
                else:
                    data, sender = _encoded(email, recipient.email, links, message_id)
                    eight_bit = False
                connection.deliver(sender, recipient.email, data, eight_bit=eight_bit)
            except SmtpTransient:
                if reused and attempt == 1 and connection.smtp is None:
                    continue  # dropped by the relay while idle: a new session
                raise
            connection.reused = True
            return


def _encoded(email: DigestEmail, to: str, links: Any, message_id: str) -> tuple[bytes, str]:
    """The slow way, for a server without 8BITMIME or a part that cannot go as 8bit: Python's
    email package encodes the reader's message (base64 or quoted-printable, 7bit-safe)."""
    message = digest_message(email, to=to, links=links)
    built = message.message()
    built.replace_header("Message-ID", f"<{message_id}>")
    for part in built.walk():
        # Django leaves short-lined UTF-8 text as 8bit: base64 keeps it 7bit-safe.
        if not part.is_multipart() and str(part.get("Content-Transfer-Encoding", "")) == "8bit":
            payload = part.get_payload(decode=True)
            del part["Content-Transfer-Encoding"]
            part.set_payload(payload)
            encoders.encode_base64(part)
    return smtp_data(built.as_bytes(linesep="\r\n")), message.from_email.rpartition("<")[2].rstrip(
        ">"
    )
