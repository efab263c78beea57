"""A reader's team chats: add a Slack or Discord webhook from the preferences page, confirm it
with the code of the test message posted there, remove it; and the channels following their
reader (choices changed, unsubscribed).

Only Slack's and Discord's webhook hosts are accepted, over https, so that a reader cannot make
this server POST anywhere else (SSRF). `CHANNEL_WEBHOOK_HOSTS_EXTRA` (a list of `host:port`,
read with getattr: tests point it at a local fake) adds hosts, over http or https, whose kind is
read from the path (`/services/...` Slack, `/api/webhooks/...` Discord).

The test message is posted before anything is saved: when the service refuses it, the reader
sees why in the form and no channel is stored.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.crypto import constant_time_compare
from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from digests.models import Category

from ..models import Channel, Subscriber
from ..ratelimit import ratelimit_hit
from .messages import ChannelMessage, confirm_message, text_message
from .transports import PostResult, channel_post

logger = logging.getLogger(__name__)

Kind = Channel.Kind
ChannelStatus = Channel.Status

CHANNELS_PER_READER = 5
# Each add posts a message: a reader may try this many adds per hour.
ADDS_PER_HOUR = 10
# Wrong codes allowed for one test message; the next wrong one voids the code.
CONFIRM_TRIES = 5
CONFIRM_CODE_MAX_AGE = timedelta(days=7)
# Letters and digits that cannot be mistaken for each other (no 0/O, 1/I/L).
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
URL_MAX_LENGTH = 500
SLACK_HOSTS = frozenset({"hooks.slack.com"})
DISCORD_HOSTS = frozenset(
    {"discord.com", "discordapp.com", "ptb.discord.com", "canary.discord.com"}
)
SLACK_PATH = re.compile(r"^/services/[A-Za-z0-9_/-]{1,200}$")
DISCORD_PATH = re.compile(r"^/api/(?:v[0-9]{1,2}/)?webhooks/[0-9]{1,25}/[A-Za-z0-9_-]{1,100}$")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x20\x7f]")


class ChannelRefused(Exception):
    """Why a reader's request was refused, in words for the form (a lazy translation)."""

    def __init__(self, message: str | Promise, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# --- The webhook's URL ----------------------------------------------------------------------------


def _extra_hosts() -> frozenset[str]:
    extra = settings.CHANNEL_WEBHOOK_HOSTS_EXTRA
    return frozenset(str(host).lower() for host in extra)


def _kind_of_path(path: str) -> str:
    if SLACK_PATH.match(path):
        return Kind.SLACK
    if DISCORD_PATH.match(path):
        return Kind.DISCORD
    return ""


def webhook_kind(url: str) -> str:
    """The kind (slack, discord) of a webhook URL we may post to; ChannelRefused otherwise."""
    refused = ChannelRefused(
        _(
            "This is not a Slack or Discord webhook address. Paste the address Slack "
            "(https://hooks.slack.com/services/…) or Discord "
            "(https://discord.com/api/webhooks/…) gave you."
        ),
        code="host",
    )
    if len(url) > URL_MAX_LENGTH or CONTROL_CHARACTERS.search(url):
        raise refused
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise refused from None
    host = (parts.hostname or "").lower()
    if parts.username or parts.password or parts.query or parts.fragment:
        raise refused
    kind = _kind_of_path(parts.path)
    if parts.netloc.lower() in _extra_hosts() and parts.scheme in ("http", "https") and kind:
        return kind
    if parts.scheme != "https" or port not in (None, 443):
        raise refused
    if host in SLACK_HOSTS and kind == Kind.SLACK:
        return kind
    if host in DISCORD_HOSTS and kind == Kind.DISCORD:
        return kind
    raise refused


# --- Posting ----------------------------------------------------------------------------------


def message_post(*, kind: str, url: str, chat_id: str, message: ChannelMessage) -> PostResult:
    """Posts each part of a message in order; stops at the first part refused."""
    result = PostResult(ok=True)
    for part in message.parts:
        result = channel_post(kind=kind, url=url, chat_id=chat_id, body=part)
        if not result.ok:
            break
    return result


def channel_message_post(*, channel: Channel, message: ChannelMessage) -> PostResult:
    return message_post(
        kind=channel.kind, url=channel.url, chat_id=channel.chat_id, message=message
    )


def channel_test_post(*, channel: Channel) -> PostResult:
    """A short message in the channel's language saying it is set up (the admin's test)."""
    with translation.override(channel.language):
        text = gettext(
            "A test message from Daily AI Insights: this chat is set up to receive the digest."
        )
    return channel_message_post(channel=channel, message=text_message(kind=channel.kind, text=text))


# --- A reader's channels ----------------------------------------------------------------------


def confirm_code_new() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def _code_tidy(code: str) -> str:
    return re.sub(r"[\s-]", "", str(code))[:32].upper()


def _choices_copy(channel: Channel, subscriber: Subscriber) -> None:
    """The reader's choices onto the channel (not saved; categories are M2M)."""
    channel.language = subscriber.language
    channel.cadence = subscriber.cadence
    channel.keywords_include = subscriber.keywords_include
    channel.keywords_exclude = subscriber.keywords_exclude
    channel.keywords_all_categories = subscriber.keywords_all_categories
    channel.keywords_key = subscriber.keywords_key


def _add_allowed(subscriber: Subscriber, url: str) -> Channel | None:
    """Refuses what may not be added; the reader's own pending channel of that URL, if any
    (adding it again sends a new code)."""
    existing = Channel.objects.filter(url=url).first()
    if existing is not None:
        if existing.subscriber_id != subscriber.pk:
            raise ChannelRefused(_("This webhook already receives the newsletter."), code="taken")
        if existing.status != ChannelStatus.PENDING:
            raise ChannelRefused(_("You have already added this webhook."), code="taken")
        return existing
    if Channel.objects.filter(subscriber=subscriber).count() >= CHANNELS_PER_READER:
        raise ChannelRefused(
            _("You can add at most %(count)s team chats. Remove one first.")
            % {"count": CHANNELS_PER_READER},
            code="limit",
        )
    return None


def reader_channel_add(*, subscriber: Subscriber, url: str) -> Channel:
    """Posts a test message with a code to the webhook and stores the channel as pending, with
    the reader's categories, language, cadence and keyword rules. Raises ChannelRefused (not a
    Slack/Discord webhook, limit reached, already added, the service refused the post): then
    nothing is stored. Adding the reader's own pending webhook again sends a new code."""
    url = url.strip()
    kind = webhook_kind(url)
    if subscriber.status not in (Subscriber.Status.PENDING, Subscriber.Status.ACTIVE):
        raise ChannelRefused(_("Only a subscribed reader can add team chats."), code="reader")
    existing = _add_allowed(subscriber, url)
    if not ratelimit_hit(scope="channel-add", key=str(subscriber.pk), limit=ADDS_PER_HOUR):
        raise ChannelRefused(
            _("Too many attempts. Please try again in an hour."), code="rate_limited"
        )
    code = confirm_code_new()
    message = confirm_message(kind=kind, code=code, language=subscriber.language)
    result = message_post(kind=kind, url=url, chat_id="", message=message)
    if not result.ok:
        logger.info("channel add: %s refused the test message: %s", kind, result.error)
        raise ChannelRefused(
            _(
                "%(service)s did not accept our test message, so nothing was saved. "
                "Check the webhook address and try again."
            )
            % {"service": Kind(kind).label},
            code="post",
        )
    return _channel_pending_save(existing, subscriber=subscriber, kind=kind, url=url, code=code)


def _channel_pending_save(
    channel: Channel | None, *, subscriber: Subscriber, kind: str, url: str, code: str
) -> Channel:
    channel = channel or Channel(kind=kind, url=url, subscriber=subscriber)
    _choices_copy(channel, subscriber)
    channel.status = ChannelStatus.PENDING
    channel.confirm_code = code
    channel.confirm_sent_at = timezone.now()
    try:
        with transaction.atomic():
            channel.save()
            channel.categories.set(subscriber.categories.all())
    except IntegrityError:  # the same webhook added at the same moment elsewhere
        raise ChannelRefused(
            _("This webhook already receives the newsletter."), code="taken"
        ) from None
    logger.info(
        "channel add: %s channel %s pending for subscriber %s", kind, channel.pk, subscriber.pk
    )
    return channel


def _code_current(channel: Channel, now: datetime) -> bool:
    sent = channel.confirm_sent_at
    return bool(channel.confirm_code) and sent is not None and now - sent <= CONFIRM_CODE_MAX_AGE


def reader_channel_confirm(*, subscriber: Subscriber, channel_id: int, code: str) -> bool:
    """Activates the reader's pending channel when `code` is the test message's (any case,
    spaces ignored). After CONFIRM_TRIES wrong codes, or a week, the code is void: the reader
    adds the webhook again for a new one. False when nothing was confirmed."""
    now = timezone.now()
    channel = Channel.objects.filter(
        pk=channel_id, subscriber=subscriber, status=ChannelStatus.PENDING
    ).first()
    if channel is None or not _code_current(channel, now):
        return False
    if not constant_time_compare(_code_tidy(code), channel.confirm_code):
        tries_key = f"{channel.pk}:{channel.confirm_code}"
        if not ratelimit_hit(
            scope="channel-confirm", key=tries_key, limit=CONFIRM_TRIES - 1, window=86400
        ):
            Channel.objects.filter(pk=channel.pk).update(confirm_code="", updated_at=now)
        return False
    changed = Channel.objects.filter(pk=channel.pk, status=ChannelStatus.PENDING).update(
        status=ChannelStatus.ACTIVE, confirmed_at=now, confirm_code="", updated_at=now
    )
    return changed == 1


def reader_channel_remove(*, subscriber: Subscriber, channel_id: int) -> bool:
    """Deletes one of the reader's channels (its deliveries stay, without it)."""
    deleted, _by_model = Channel.objects.filter(pk=channel_id, subscriber=subscriber).delete()
    return deleted > 0


def reader_channels(*, subscriber: Subscriber) -> list[Channel]:
    return list(Channel.objects.filter(subscriber=subscriber).order_by("created_at", "pk"))


# --- Channels follow their reader -------------------------------------------------------------


def reader_channels_follow(*, subscriber: Subscriber, categories: Iterable[Category]) -> int:
    """The reader's choices (saved on `subscriber`) onto each of their channels."""
    chosen = list(categories)
    channels = reader_channels(subscriber=subscriber)
    for channel in channels:
        _choices_copy(channel, subscriber)
        channel.save(
            update_fields=[
                "language",
                "cadence",
                "keywords_include",
                "keywords_exclude",
                "keywords_all_categories",
                "keywords_key",
                "updated_at",
            ]
        )
        channel.categories.set(chosen)
    return len(channels)


def reader_channels_stop(*, subscriber: Subscriber) -> int:
    """The reader left: their channels get nothing more."""
    return Channel.objects.filter(
        subscriber=subscriber, status__in=[ChannelStatus.PENDING, ChannelStatus.ACTIVE]
    ).update(status=ChannelStatus.STOPPED, updated_at=timezone.now())
