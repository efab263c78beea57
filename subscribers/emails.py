"""Every email this project sends is built here: the confirmation and "already subscribed"
emails (templates under templates/subscribers/email/), and the digest email in each of its
forms: one message per reader (Django backends, the test send), one batch message with the
ESP's merge fields (anymail), the bytes on the wire for SMTP, and the admin's preview. The
digest's content (HTML, text, chart of a choice of categories) comes from `rendering`.

The digest on the wire (`DigestWire`): per (variant, language) the MIME message is built and
encoded once with slots for what differs per reader (address, Message-ID, the two personal
links); a reader's message is the template's pieces joined with their values. Text and HTML
go as UTF-8 `8bit` (Hangul stays 3 bytes a syllable; quoted-printable would make it 9), lines
kept under 998 bytes by breaking after a space (text/plain as format=flowed, RFC 3676, so
readers rejoin the lines), the chart as base64 once. Slot values are addresses and URLs made
here: no CR, LF or leading dot, so the template is dot-stuffed once.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.header import Header
from email.mime.image import MIMEImage
from email.utils import formataddr, formatdate, parseaddr
from functools import lru_cache
from typing import Any

from anymail.message import AnymailMessage
from django.conf import settings
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import escape
from django.utils.translation import gettext

from digests.models import Digest

from . import rendering
from .models import Notice, Subscriber
from .services import language_or_default
from .tokens import URL_NAMES, Purpose, TokenSubject, token_url, tokens_make

# The personal links of a digest email, by placeholder name.
LINK_PURPOSES = {"preferences_url": Purpose.PREFERENCES, "unsubscribe_url": Purpose.UNSUBSCRIBE}
# Stands for the token when a link is reversed once per chunk (the `str` converter accepts it).
TOKEN_SLOT = "tokenslot7f3a9c"  # noqa: S105 (not a secret)
TEST_PREFIX = "[TEST] "
# Lines of an 8bit part are broken after a space once they pass this many bytes (the limit is
# 998 with CRLF); a slot counts as SLOT_BYTES, what a reader's URL may take.
WIRE_LINE_BYTES = 600
SLOT_BYTES = 300
# Gmail clips an email whose HTML passes this many bytes ("[Message clipped]").
GMAIL_CLIP_BYTES = 102 * 1024
NEAR_CLIP_BYTES = 90 * 1024  # the preview warns from here
_HEAD = re.compile(r"<head(\s[^>]*)?>", re.IGNORECASE)


def _message_build(
    *, subscriber: Subscriber, template: str, subject: str, context: dict[str, Any]
) -> EmailMultiAlternatives:
    context = {"subscriber_email": subscriber.email, "site_url": settings.SITE_URL, **context}
    text = render_to_string(f"subscribers/email/{template}.txt", context)
    html = render_to_string(f"subscribers/email/{template}.html", context)
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[subscriber.email],
    )
    message.attach_alternative(html, "text/html")
    return message


def confirmation_email_send(*, subscriber: Subscriber) -> None:
    """The double opt-in email: one signed link, valid CONFIRM_TOKEN_MAX_AGE_DAYS."""
    with translation.override(language_or_default(subscriber.language)):
        message = _message_build(
            subscriber=subscriber,
            template="confirm",
            subject=gettext("Confirm your subscription to Daily AI Insights"),
            context={
                "confirm_url": token_url(subscriber=subscriber, purpose=Purpose.CONFIRM),
                "max_age_days": settings.CONFIRM_TOKEN_MAX_AGE_DAYS,
                "categories": [c.name for c in subscriber.categories.order_by("position")],
            },
        )
    message.send()
    now = timezone.now()
    Subscriber.objects.filter(pk=subscriber.pk).update(confirmation_sent_at=now)
    subscriber.confirmation_sent_at = now


def already_subscribed_email_send(*, subscriber: Subscriber) -> None:
    """The answer to a signup of an address that is already active: nothing changes, here is
    the link to change things yourself."""
    with translation.override(language_or_default(subscriber.language)):
        message = _message_build(
            subscriber=subscriber,
            template="already_subscribed",
            subject=gettext("You are already subscribed to Daily AI Insights"),
            context={
                "preferences_url": token_url(subscriber=subscriber, purpose=Purpose.PREFERENCES),
            },
        )
    message.send()


# --- The editors' notices (subscribers/notices.py) -----------------------------------------------


def notice_message(*, notice: Notice, language: str) -> EmailMultiAlternatives:
    """A notice to the editors: its subject, its text as it was recorded, and the same text as
    HTML with its links made clickable. One message to every recipient (they are one team)."""
    paragraphs = [block.splitlines() for block in notice.body.split("\n\n")]
    context = {
        "subject": notice.subject,
        "body": notice.body,
        "paragraphs": paragraphs,
        "site_url": settings.SITE_URL,
    }
    with translation.override(language):
        text = render_to_string("subscribers/email/notice.txt", context)
        html = render_to_string("subscribers/email/notice.html", context)
    message = EmailMultiAlternatives(
        subject=notice.subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=list(notice.recipients),
        headers={"Auto-Submitted": "auto-generated"},
    )
    message.attach_alternative(html, "text/html")
    return message


def notice_email_send(*, notice: Notice, language: str) -> None:
    """Through EMAIL_BACKEND, as every transactional email (an ESP through anymail, or SMTP)."""
    notice_message(notice=notice, language=language).send()


# --- The digest email ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DigestEmail:
    """The digest of one choice of categories (`key`) in one language, before any reader."""

    digest_id: int
    digest_date: str  # YYYY-MM-DD
    key: str
    language: str
    rendered: rendering.RenderedVariant
    chart_cid: str
    subject: str

    @property
    def empty(self) -> bool:
        return self.rendered.empty


def digest_email(*, digest: Digest, key: str, language: str, test: bool = False) -> DigestEmail:
    """What every form of the digest email starts from (rendered once per process)."""
    content = rendering.digest_context(digest=digest)
    cid = rendering.chart_cid_make(digest_id=digest.pk, key=key)
    rendered = rendering.variant_render(content=content, key=key, language=language, chart_cid=cid)
    subject = (TEST_PREFIX if test else "") + rendered.subject
    return DigestEmail(
        digest.pk, digest.date.isoformat(), rendered.key, language, rendered, cid, subject
    )


def link_templates() -> dict[str, tuple[str, str]]:
    """Each personal link as the text before and after its token, `reverse()` run once per
    name with TOKEN_SLOT in place of the token. Tokens are made of base64url characters, ':'
    and '.', which `reverse()` leaves as they are, so a link made from these pieces is the one
    `tokens.token_url` returns."""
    templates: dict[str, tuple[str, str]] = {}
    for name, purpose in LINK_PURPOSES.items():
        url = settings.SITE_URL + reverse(URL_NAMES[purpose], kwargs={"token": TOKEN_SLOT})
        before, slot, after = url.partition(TOKEN_SLOT)
        if not slot or TOKEN_SLOT in after:
            raise ValueError(f"cannot find the token's place in {url!r}")
        templates[name] = (before, after)
    return templates


def personal_links(
    subscriber: TokenSubject, templates: dict[str, tuple[str, str]] | None = None
) -> dict[str, str]:
    """The reader's personal links (as `tokens.token_url`), one fingerprint for both tokens."""
    templates = templates if templates is not None else link_templates()
    tokens = tokens_make(subscriber=subscriber, purposes=LINK_PURPOSES.values())
    return {
        name: f"{before}{tokens[LINK_PURPOSES[name]]}{after}"
        for name, (before, after) in templates.items()
    }


def unsubscribe_headers(unsubscribe_url: str) -> dict[str, str]:
    """RFC 2369 List-Unsubscribe with the https one-click URI, and RFC 8058 List-Unsubscribe-Post.
    No mailto: nothing here reads an unsubscribe mailbox, and RFC 8058 needs only the https URI."""
    return {
        "List-Unsubscribe": f"<{unsubscribe_url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def list_headers(unsubscribe_url: str) -> dict[str, str]:
    """What every digest email carries: List-Id (RFC 2919) and the unsubscribe headers."""
    return {"List-Id": settings.LIST_ID, **unsubscribe_headers(unsubscribe_url)}


def _chart_attach(email: DigestEmail, message: EmailMessage) -> None:
    """The chart inline, with the Content-ID the HTML names (`cid:`); the note has none. Not
    anymail's `attach_inline_image`: it makes a random content id the cached HTML cannot know."""
    if email.rendered.chart_png:
        image = MIMEImage(email.rendered.chart_png, "png")
        image.add_header("Content-ID", f"<{email.chart_cid}>")
        image.add_header("Content-Disposition", "inline", filename="chart.png")
        message.attach(image)
        message.mixed_subtype = "related"


def digest_message(
    email: DigestEmail, *, to: str, links: Mapping[str, str], connection: Any = None
) -> EmailMultiAlternatives:
    """One reader's message, for a Django email backend (console, file, locmem, any ESP)."""
    message = EmailMultiAlternatives(
        subject=email.subject,
        body=rendering.personalise_text(email.rendered.text, links),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers=list_headers(links["unsubscribe_url"]),
        connection=connection,
    )
    message.attach_alternative(rendering.personalise_html(email.rendered.html, links), "text/html")
    _chart_attach(email, message)
    return message


@dataclass(frozen=True)
class BatchReader:
    email: str
    links: Mapping[str, str]
    metadata: Mapping[str, str]


def digest_batch_message(
    email: DigestEmail,
    *,
    readers: Sequence[BatchReader],
    merge_format: str,
    connection: Any = None,
) -> AnymailMessage:
    """One message to many readers, personalised by the ESP from merge data (`merge_format`
    spells a merge field in the body, e.g. Mailgun's "%recipient.{}%")."""
    fields = {name: merge_format.format(name) for name in rendering.PERSONAL}
    message = AnymailMessage(
        subject=email.subject,
        body=rendering.personalise_text(email.rendered.text, fields),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[reader.email for reader in readers],
        connection=connection,
    )
    message.attach_alternative(rendering.personalise_html(email.rendered.html, fields), "text/html")
    message.merge_data = {reader.email: dict(reader.links) for reader in readers}
    message.merge_headers = {
        reader.email: unsubscribe_headers(reader.links["unsubscribe_url"]) for reader in readers
    }
    message.merge_metadata = {reader.email: dict(reader.metadata) for reader in readers}
    message.metadata = {"digest": str(email.digest_id)}
    message.tags = ["digest", f"digest-{email.digest_date}"]
    message.extra_headers = {"List-Id": settings.LIST_ID}
    if merge_format == "-{}-":  # SendGrid: anymail must be told the field syntax
        message.esp_extra = {"merge_field_format": merge_format}
    _chart_attach(email, message)
    return message


# --- The digest on the wire (SMTP) ---------------------------------------------------------------

_SLOT = re.compile(rb"@@(to|message_id|preferences_url|unsubscribe_url|html_[a-z_]+)@@")


class WireLineTooLong(ValueError):
    """A line with no space to break at: the part cannot go as 8bit."""


def _wrap_8bit(text: str, *, flowed: bool) -> str:
    """Lines of at most about WIRE_LINE_BYTES bytes, broken after a space. For HTML a line break
    after a space is more white space, which HTML collapses; for text/plain the space stays at
    the end of the line, which format=flowed readers rejoin. Lines that start with a space,
    ">" or "From " are space-stuffed in flowed text (RFC 3676, 4.4)."""
    out: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if flowed:
            line = line.rstrip(" ")  # a trailing space would mean "continued"
        pieces = [line] if _line_bytes(line) <= WIRE_LINE_BYTES else _line_break(line)
        for piece in pieces:
            if flowed and piece.startswith((" ", ">", "From ")):
                piece = " " + piece
            out.append(piece)
    return "\r\n".join(out)


def _line_bytes(text: str) -> int:
    return len(text.encode()) + text.count("@@") // 2 * SLOT_BYTES


def _line_break(line: str) -> list[str]:
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for word in line.split(" "):
        word_size = _line_bytes(word) + 1
        if word_size > WIRE_LINE_BYTES:
            raise WireLineTooLong(f"a word of {word_size} bytes")
        if current and size + word_size > WIRE_LINE_BYTES:
            pieces.append(" ".join(current) + " ")
            current, size = [], 0
        current.append(word)
        size += word_size
    pieces.append(" ".join(current))
    return pieces


def _header(name: str, value: str) -> bytes:
    if value.isascii():
        return f"{name}: {value}\r\n".encode()
    encoded = Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    return f"{name}: {encoded}\r\n".encode()


def _b64_lines(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return b"\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def smtp_data(message: bytes) -> bytes:
    """A message with CRLF line ends as the SMTP DATA command takes it: dot-stuffed (RFC 5321,
    4.5.2) and ending with the terminator."""
    stuffed = (b"." if message.startswith(b".") else b"") + message.replace(b"\r\n.", b"\r\n..")
    return stuffed + (b"" if stuffed.endswith(b"\r\n") else b"\r\n") + b".\r\n"


@dataclass(frozen=True)
class DigestWire:
    """The digest message as bytes with slots, built once per DigestEmail. `pieces` alternate
    literal bytes and slot names; `render` joins them with one reader's values: CRLF line ends,
    dot-stuffed, ending with the DATA terminator, ready for the SMTP DATA command."""

    pieces: tuple[bytes | str, ...]
    html_bytes: int  # the HTML part as encoded, for Gmail's clipping limit
    envelope_from: str
    eight_bit: bool = True
    sizes: dict[str, int] = field(default_factory=dict)

    def render(self, *, to: str, message_id: str, links: Mapping[str, str]) -> bytes:
        values = {
            "to": to.encode(),
            "message_id": message_id.encode(),
            "preferences_url": links["preferences_url"].encode(),
            "unsubscribe_url": links["unsubscribe_url"].encode(),
            "html_preferences_url": escape(links["preferences_url"]).encode(),
            "html_unsubscribe_url": escape(links["unsubscribe_url"]).encode(),
        }
        return b"".join(values[piece] if isinstance(piece, str) else piece for piece in self.pieces)


def _slotted(template: str, *, html: bool) -> str:
    """The rendering's placeholders as wire slots (HTML ones are escaped per reader)."""
    prefix = "html_" if html else ""
    for name in rendering.PERSONAL:
        template = template.replace(rendering.placeholder(name), f"@@{prefix}{name}@@")
    return template


@lru_cache(maxsize=64)
def digest_wire(email: DigestEmail) -> DigestWire:
    """The message of `email` on the wire with slots; raises WireLineTooLong when a part cannot
    go as 8bit (then `digest_message(...).message().as_bytes()` is the way, per reader)."""
    boundary = f"=_digest_{email.digest_id}_{email.key.replace(',', '_') or 'none'}"
    text = _wrap_8bit(_slotted(email.rendered.text, html=False), flowed=True).encode()
    html = _wrap_8bit(_slotted(email.rendered.html, html=True), flowed=False).encode()
    sender = settings.DEFAULT_FROM_EMAIL
    name, address = parseaddr(sender)
    head = b"".join(
        [
            _header("From", formataddr((name, address), charset="utf-8")),
            b"To: @@to@@\r\n",
            _header("Subject", email.subject),
            _header("Date", formatdate(localtime=False, usegmt=True)),
            b"Message-ID: <@@message_id@@>\r\n",
            b"MIME-Version: 1.0\r\n",
            _header("List-Id", settings.LIST_ID),
            b"List-Unsubscribe: <@@unsubscribe_url@@>\r\n",
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
            f'Content-Type: multipart/alternative; boundary="{boundary}-a"\r\n\r\n'.encode(),
        ]
    )
    text_part = (
        (
            f"--{boundary}-a\r\n"
            'Content-Type: text/plain; charset="utf-8"; format="flowed"; delsp="no"\r\n'
            "Content-Transfer-Encoding: 8bit\r\n\r\n"
        ).encode()
        + text
        + b"\r\n"
    )
    html_head = (
        b'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
    )
    png = email.rendered.chart_png
    if png:
        related = f'multipart/related; boundary="{boundary}-r"; type="text/html"'
        html_part = (
            f"--{boundary}-a\r\nContent-Type: {related}\r\n\r\n--{boundary}-r\r\n".encode()
            + html_head
            + html
            + b"\r\n"
        )
        image_head = (
            f"--{boundary}-r\r\n"
            "Content-Type: image/png\r\n"
            "Content-Transfer-Encoding: base64\r\n"
            f"Content-ID: <{email.chart_cid}>\r\n"
            'Content-Disposition: inline; filename="chart.png"\r\n\r\n'
        )
        image = image_head.encode() + _b64_lines(png) + f"\r\n--{boundary}-r--\r\n".encode()
        body = text_part + html_part + image
    else:
        body = text_part + f"--{boundary}-a\r\n".encode() + html_head + html + b"\r\n"
    body += f"--{boundary}-a--\r\n".encode()
    data = smtp_data(head + body)  # once for every reader
    pieces: list[bytes | str] = []
    for index, part in enumerate(_SLOT.split(data)):
        pieces.append(part.decode() if index % 2 else part)
    return DigestWire(
        pieces=tuple(pieces),
        html_bytes=len(html),
        envelope_from=address,
        sizes={"text": len(text), "html": len(html), "chart_base64": len(_b64_lines(png))},
    )


# --- The preview --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmailPreview:
    subject: str
    html: str  # personalised as sent, the chart at cid:<chart_cid>
    text: str
    chart_png: bytes
    chart_cid: str
    empty: bool  # no section for the choice: the short note
    html_bytes: int  # the HTML part as it travels (8bit), against Gmail's 102 KB clipping
    message_bytes: int  # the whole message on the wire, chart included

    @property
    def html_kb(self) -> str:
        return f"{self.html_bytes / 1024:.1f}"

    @property
    def message_kb(self) -> str:
        return f"{self.message_bytes / 1024:.1f}"

    @property
    def chart_kb(self) -> str:
        return f"{len(self.chart_png) / 1024:.1f}"

    @property
    def clipped(self) -> bool:
        return self.html_bytes > GMAIL_CLIP_BYTES

    @property
    def near_clip(self) -> bool:
        return NEAR_CLIP_BYTES < self.html_bytes <= GMAIL_CLIP_BYTES

    def html_for_browser(self) -> str:
        """The HTML with the chart inline (a data: URI for its cid:) and links opening outside
        the preview frame."""
        data = base64.b64encode(self.chart_png).decode("ascii")
        html = self.html.replace(f"cid:{self.chart_cid}", f"data:image/png;base64,{data}")
        return _HEAD.sub(lambda head: head.group(0) + '<base target="_blank">', html, count=1)


def digest_preview(email: DigestEmail, *, links: Mapping[str, str], to: str) -> EmailPreview:
    """The email as its reader receives it, from the pieces a send uses."""
    try:
        wire = digest_wire(email)
        message = wire.render(to=to, message_id="preview@localhost", links=links)
        html_bytes, message_bytes = wire.html_bytes, len(message)
    except WireLineTooLong:
        built = digest_message(email, to=to, links=links).message().as_bytes()
        html_bytes = len(rendering.personalise_html(email.rendered.html, links).encode())
        message_bytes = len(built)
    return EmailPreview(
        subject=email.subject,
        html=rendering.personalise_html(email.rendered.html, links),
        text=rendering.personalise_text(email.rendered.text, links),
        chart_png=email.rendered.chart_png,
        chart_cid=email.chart_cid,
        empty=email.empty,
        html_bytes=html_bytes,
        message_bytes=message_bytes,
    )
