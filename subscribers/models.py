"""The audience side: readers, what they chose, what they consented to, and ESP events."""

from __future__ import annotations

import secrets

from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from digests.models import Category, Digest


def new_nonce() -> str:
    return secrets.token_urlsafe(12)


class Subscriber(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("pending confirmation")
        ACTIVE = "active", _("active")
        UNSUBSCRIBED = "unsubscribed", _("unsubscribed")
        BOUNCED = "bounced", _("bounced")
        COMPLAINED = "complained", _("complained")

    # Normalised (trimmed, lower-case) before it is stored; unique without regard to case.
    email = models.EmailField(verbose_name=_("email"), max_length=254, unique=True)
    status = models.CharField(
        verbose_name=_("status"),
        max_length=20,
        choices=Status.choices,
        default=Status.PENDING,
        db_index=True,
    )
    categories = models.ManyToManyField(
        Category, verbose_name=_("categories"), blank=True, related_name="subscribers"
    )
    language = models.CharField(
        verbose_name=_("language"),
        max_length=8,
        default="ko",
        help_text=_("Interface and email language"),
    )

    class Cadence(models.TextChoices):
        DAILY = "daily", _("daily")
        WEEKLY = "weekly", _("weekly")

    cadence = models.CharField(
        verbose_name=_("cadence"),
        max_length=10,
        choices=Cadence.choices,
        default=Cadence.DAILY,
        db_index=True,
    )
    # The reader's keyword rules (subscribers/keywords.py): one keyword or "quoted phrase" per
    # line. An excluded paper never reaches them; an included one is shown and marked.
    keywords_include = models.TextField(verbose_name=_("keywords include"), blank=True)
    keywords_exclude = models.TextField(verbose_name=_("keywords exclude"), blank=True)
    # Matches of the include rules also from categories the reader did not choose.
    keywords_all_categories = models.BooleanField(
        verbose_name=_("keywords all categories"), default=False
    )
    # A short digest of the normalised rules ("" for none), kept on save: readers with the same
    # rules share one rendering, grouped by it in SQL.
    keywords_key = models.CharField(
        verbose_name=_("keywords key"), max_length=16, blank=True, db_index=True
    )

    # Consent record: when, from which page, which wording the reader agreed to.
    consent_at = models.DateTimeField(verbose_name=_("consent at"), null=True, blank=True)
    consent_source = models.CharField(verbose_name=_("consent source"), max_length=300, blank=True)
    consent_wording_version = models.CharField(
        verbose_name=_("consent wording version"), max_length=40, blank=True
    )
    consent_ip = models.GenericIPAddressField(verbose_name=_("consent ip"), null=True, blank=True)
    consent_note = models.TextField(
        verbose_name=_("consent note"),
        blank=True,
        help_text=_("For confirmations made by an admin"),
    )

    # Changes on every signup, so an old confirmation link cannot re-activate a reader who left.
    confirm_nonce = models.CharField(
        verbose_name=_("confirm nonce"), max_length=32, default=new_nonce
    )
    confirmation_sent_at = models.DateTimeField(
        verbose_name=_("confirmation sent at"), null=True, blank=True
    )
    confirmed_at = models.DateTimeField(verbose_name=_("confirmed at"), null=True, blank=True)
    unsubscribed_at = models.DateTimeField(verbose_name=_("unsubscribed at"), null=True, blank=True)
    soft_bounce_count = models.PositiveIntegerField(verbose_name=_("soft bounce count"), default=0)
    suppressed_at = models.DateTimeField(verbose_name=_("suppressed at"), null=True, blank=True)
    suppressed_reason = models.TextField(verbose_name=_("suppressed reason"), blank=True)

    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(verbose_name=_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("subscriber")
        verbose_name_plural = _("subscribers")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="subscriber_email_unique_ci"),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def is_suppressed(self) -> bool:
        return self.status in SUPPRESSED_STATUSES


SUPPRESSED_STATUSES = frozenset(
    {Subscriber.Status.UNSUBSCRIBED, Subscriber.Status.BOUNCED, Subscriber.Status.COMPLAINED}
)


class EmailEvent(models.Model):
    """An ESP tracking event, stored once by its id, applied by a task."""

    esp = models.CharField(verbose_name=_("esp"), max_length=40)
    event_id = models.CharField(verbose_name=_("event id"), max_length=200)
    event_type = models.CharField(verbose_name=_("event type"), max_length=40)
    recipient = models.EmailField(verbose_name=_("recipient"), max_length=254, blank=True)
    reject_reason = models.CharField(verbose_name=_("reject reason"), max_length=40, blank=True)
    description = models.TextField(verbose_name=_("description"), blank=True)
    occurred_at = models.DateTimeField(verbose_name=_("occurred at"), null=True, blank=True)
    received_at = models.DateTimeField(verbose_name=_("received at"), auto_now_add=True)
    applied_at = models.DateTimeField(verbose_name=_("applied at"), null=True, blank=True)
    # Delivery mapping (the delivery issue): anymail metadata and tags as the ESP echoed them.
    metadata = models.JSONField(verbose_name=_("metadata"), default=dict, blank=True)
    tags = models.JSONField(verbose_name=_("tags"), default=list, blank=True)

    class Meta:
        verbose_name = _("email event")
        verbose_name_plural = _("email events")
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["esp", "event_id"], name="email_event_once"),
        ]

    def __str__(self) -> str:
        return f"{self.esp} {self.event_type} {self.recipient}"


class Delivery(models.Model):
    """One digest to one subscriber: claimed, sent and recorded exactly once."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        SENDING = "sending", _("sending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")
        # The ESP call was in flight when its worker died: it may or may not have gone out.
        UNKNOWN = "unknown", _("unknown")
        # Suppressed (or no longer active) when its turn came: not sent.
        SKIPPED = "skipped", _("skipped")
        BOUNCED = "bounced", _("bounced")
        COMPLAINED = "complained", _("complained")

    digest = models.ForeignKey(
        Digest, verbose_name=_("digest"), on_delete=models.CASCADE, related_name="deliveries"
    )
    subscriber = models.ForeignKey(
        Subscriber,
        verbose_name=_("subscriber"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
    )
    email = models.EmailField(verbose_name=_("email"), max_length=254)
    # The reader's choice of categories, e.g. "3,5,7": deliveries with one variant share a render.
    variant = models.CharField(verbose_name=_("variant"), max_length=200)
    status = models.CharField(
        verbose_name=_("status"), max_length=20, choices=Status.choices, default=Status.QUEUED
    )
    attempts = models.PositiveSmallIntegerField(verbose_name=_("attempts"), default=0)
    # Which claim took the row (a uuid per ESP call), so a retry finds its own rows.
    # Found with the row ids a chunk holds, so no index of its own (one less to update per row).
    claim = models.CharField(verbose_name=_("claim"), max_length=40, blank=True)
    claimed_at = models.DateTimeField(verbose_name=_("claimed at"), null=True, blank=True)
    esp_message_id = models.CharField(verbose_name=_("esp message id"), max_length=200, blank=True)
    error = models.TextField(verbose_name=_("error"), blank=True)
    sent_at = models.DateTimeField(verbose_name=_("sent at"), null=True, blank=True)
    opened_at = models.DateTimeField(verbose_name=_("opened at"), null=True, blank=True)
    clicked_at = models.DateTimeField(verbose_name=_("clicked at"), null=True, blank=True)
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        constraints = [
            models.UniqueConstraint(fields=["digest", "subscriber"], name="one_delivery_per_reader")
        ]
        indexes = [models.Index(fields=["digest", "status"])]

    def __str__(self) -> str:
        return f"{self.digest_id} -> {self.email}: {self.get_status_display()}"


class Notice(models.Model):
    """A message to the editors about one event (a draft ready, nothing to publish, a send
    finished or paused, an approval due). `key` names the event: one row, so one notice, each."""

    class Kind(models.TextChoices):
        DRAFT_READY = "draft_ready", _("draft ready")
        NOTHING = "nothing", _("nothing to publish")
        SENT = "sent", _("send finished")
        PAUSED = "paused", _("send paused")
        APPROVAL_DUE = "approval_due", _("approval due")
        SEND_DUE = "send_due", _("send time close")

    key = models.CharField(verbose_name=_("key"), max_length=200, unique=True)
    kind = models.CharField(verbose_name=_("kind"), max_length=20, choices=Kind.choices)
    digest = models.ForeignKey(
        Digest,
        verbose_name=_("digest"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notices",
    )
    subject = models.CharField(verbose_name=_("subject"), max_length=300)
    body = models.TextField(verbose_name=_("body"))
    recipients = models.JSONField(verbose_name=_("recipients"), default=list, blank=True)
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)
    emailed_at = models.DateTimeField(verbose_name=_("emailed at"), null=True, blank=True)
    webhook_at = models.DateTimeField(verbose_name=_("webhook at"), null=True, blank=True)
    error = models.TextField(verbose_name=_("error"), blank=True)

    class Meta:
        verbose_name = _("notice")
        verbose_name_plural = _("notices")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.subject}"


class Channel(models.Model):
    """A team chat that receives each approved issue: a Slack incoming webhook, a Discord webhook
    or a Telegram chat (through the bot). Staff add channels in the admin (active at once); a
    reader adds a Slack or Discord webhook from their preferences page (pending until they confirm
    the test message); people add the Telegram bot to a chat and send /subscribe."""

    class Kind(models.TextChoices):
        SLACK = "slack", "Slack"
        DISCORD = "discord", "Discord"
        TELEGRAM = "telegram", "Telegram"

    class Status(models.TextChoices):
        PENDING = "pending", _("waiting for confirmation")
        ACTIVE = "active", _("active")
        STOPPED = "stopped", _("stopped")
        # The service says the destination is gone (Slack 404/410, Discord 404, Telegram 403):
        # suppressed like a hard bounce.
        REVOKED = "revoked", _("revoked")

    kind = models.CharField(verbose_name=_("kind"), max_length=10, choices=Kind.choices)
    name = models.CharField(verbose_name=_("name"), max_length=200, blank=True)
    # Slack and Discord: the webhook URL (a secret: shown shortened outside its own form).
    url = models.URLField(verbose_name=_("webhook URL"), max_length=500, blank=True)
    # Telegram: the chat's id.
    chat_id = models.CharField(verbose_name=_("chat id"), max_length=64, blank=True)
    status = models.CharField(
        verbose_name=_("status"),
        max_length=10,
        choices=Status.choices,
        default=Status.ACTIVE,
        db_index=True,
    )
    categories = models.ManyToManyField(
        Category, verbose_name=_("categories"), blank=True, related_name="channels"
    )
    language = models.CharField(verbose_name=_("language"), max_length=8, default="ko")
    cadence = models.CharField(
        verbose_name=_("cadence"),
        max_length=10,
        choices=Subscriber.Cadence.choices,
        default=Subscriber.Cadence.DAILY,
    )
    keywords_include = models.TextField(verbose_name=_("keywords include"), blank=True)
    keywords_exclude = models.TextField(verbose_name=_("keywords exclude"), blank=True)
    keywords_all_categories = models.BooleanField(
        verbose_name=_("keywords all categories"), default=False
    )
    keywords_key = models.CharField(verbose_name=_("keywords key"), max_length=16, blank=True)
    # The reader who added it from their preferences page (None: staff, or the Telegram bot).
    subscriber = models.ForeignKey(
        Subscriber,
        verbose_name=_("subscriber"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="channels",
    )
    # The code in the test message that a reader types back to confirm they saw it.
    confirm_code = models.CharField(verbose_name=_("confirm code"), max_length=16, blank=True)
    confirm_sent_at = models.DateTimeField(
        verbose_name=_("confirmation sent at"), null=True, blank=True
    )
    confirmed_at = models.DateTimeField(verbose_name=_("confirmed at"), null=True, blank=True)
    suppressed_at = models.DateTimeField(verbose_name=_("suppressed at"), null=True, blank=True)
    suppressed_reason = models.TextField(verbose_name=_("suppressed reason"), blank=True)
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(verbose_name=_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("channel")
        verbose_name_plural = _("channels")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "url"], condition=~models.Q(url=""), name="channel_url_once"
            ),
            models.UniqueConstraint(
                fields=["kind", "chat_id"],
                condition=~models.Q(chat_id=""),
                name="channel_chat_once",
            ),
        ]

    def __str__(self) -> str:
        return self.name or f"{self.get_kind_display()} {self.destination}"

    @property
    def destination(self) -> str:
        """Where it posts, without the webhook's secret part (for lists and logs)."""
        return channel_destination(self.kind, self.url, self.chat_id)


def channel_destination(kind: str, url: str, chat_id: str) -> str:
    """A channel's destination as lists and logs show it: a Telegram chat's id, a webhook's URL
    without its secret."""
    return chat_id if kind == Channel.Kind.TELEGRAM else webhook_shown(url)


def webhook_shown(url: str) -> str:
    """A webhook URL without its secret, the last segment of its path (Slack's
    /services/T…/B…/<secret>, Discord's /api/webhooks/<id>/<token>); the query goes too."""
    scheme, _sep, rest = url.partition("://")
    host, _slash, path = rest.split("?", 1)[0].partition("/")
    kept = path.strip("/").split("/")[:-1]
    return f"{scheme}://{host}/{'/'.join(kept)}/…" if kept else f"{scheme}://{host}/…"


class ChannelDelivery(models.Model):
    """One digest to one channel, in the same ledger as the emails: claimed, sent and recorded
    exactly once. A message in several parts (Telegram's 4,096 characters) counts the parts
    posted, so a retry goes on from the next part and never posts one twice."""

    digest = models.ForeignKey(
        Digest,
        verbose_name=_("digest"),
        on_delete=models.CASCADE,
        related_name="channel_deliveries",
    )
    channel = models.ForeignKey(
        Channel,
        verbose_name=_("channel"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
    )
    kind = models.CharField(verbose_name=_("kind"), max_length=10, choices=Channel.Kind.choices)
    destination = models.CharField(verbose_name=_("destination"), max_length=200)
    # What the channel chose, as a reader's variant (categories, keyword rules) and language.
    variant = models.CharField(verbose_name=_("variant"), max_length=200)
    language = models.CharField(verbose_name=_("language"), max_length=8)
    status = models.CharField(
        verbose_name=_("status"),
        max_length=20,
        choices=Delivery.Status.choices,
        default=Delivery.Status.QUEUED,
    )
    attempts = models.PositiveSmallIntegerField(verbose_name=_("attempts"), default=0)
    claim = models.CharField(verbose_name=_("claim"), max_length=40, blank=True)
    claimed_at = models.DateTimeField(verbose_name=_("claimed at"), null=True, blank=True)
    parts_sent = models.PositiveSmallIntegerField(verbose_name=_("parts sent"), default=0)
    parts_total = models.PositiveSmallIntegerField(verbose_name=_("parts"), default=0)
    message_id = models.CharField(verbose_name=_("message id"), max_length=200, blank=True)
    error = models.TextField(verbose_name=_("error"), blank=True)
    sent_at = models.DateTimeField(verbose_name=_("sent at"), null=True, blank=True)
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("channel delivery")
        verbose_name_plural = _("channel deliveries")
        constraints = [
            models.UniqueConstraint(fields=["digest", "channel"], name="one_delivery_per_channel")
        ]
        indexes = [models.Index(fields=["digest", "status"])]

    def __str__(self) -> str:
        return f"{self.digest_id} -> {self.kind} {self.destination}: {self.get_status_display()}"
