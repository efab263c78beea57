"""What happens to a reader: signing up, confirming, choosing categories, leaving, being forgotten.

Emails go out in tasks enqueued after commit, so the signup answer does not depend on whether
(or which) email is sent, and a failing mail server never turns into an error page.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from digests.models import Category

from .channels.services import reader_channels_follow, reader_channels_stop
from .keywords import rules_make
from .models import EmailEvent, Subscriber, new_nonce
from .ratelimit import ratelimit_hit

logger = logging.getLogger(__name__)

Status = Subscriber.Status
LANGUAGE_CODES = frozenset(code for code, _ in settings.LANGUAGES)


def email_normalise(raw: str) -> str:
    """Trimmed and lower-cased: the form in which addresses are stored and compared."""
    return raw.strip().lower()


def language_or_default(language: str | None) -> str:
    return language if language in LANGUAGE_CODES else settings.LANGUAGE_CODE


def reader_language(language: str | None) -> str:
    """The language stored on a reader: one the newsletter offers (DIGEST_LANGUAGES) or, where
    only one is offered and the choice is hidden, the language of the page they used."""
    if language in settings.DIGEST_LANGUAGES or language in LANGUAGE_CODES:
        return str(language)
    return settings.DIGEST_LANGUAGE


def readers_languages() -> set[str]:
    """The languages active readers use: the build writes the reports in those (registered
    with digests.report_languages)."""
    active = Subscriber.objects.filter(status=Status.ACTIVE)
    return set(active.values_list("language", flat=True).distinct())


@dataclass(frozen=True)
class ReaderChoice:
    """What a reader chooses besides categories: keyword rules (one per line, as typed) and
    cadence. The form has checked the rules; `keywords_apply` checks them again."""

    keywords_include: str = ""
    keywords_exclude: str = ""
    keywords_all_categories: bool = False
    cadence: str = Subscriber.Cadence.DAILY


def _lines_tidy(text: str) -> str:
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def keywords_apply(subscriber: Subscriber, *, choice: ReaderChoice) -> None:
    """Puts the choice on the reader (not saved), with `keywords_key` from the normalised
    rules: readers with the same rules share a rendering. Raises keywords.KeywordError."""
    rules = rules_make(
        include=choice.keywords_include,
        exclude=choice.keywords_exclude,
        all_categories=choice.keywords_all_categories,
    )
    subscriber.keywords_include = _lines_tidy(choice.keywords_include)
    subscriber.keywords_exclude = _lines_tidy(choice.keywords_exclude)
    subscriber.keywords_all_categories = choice.keywords_all_categories
    subscriber.keywords_key = rules.key
    if choice.cadence in Subscriber.Cadence.values:
        subscriber.cadence = choice.cadence


@dataclass(frozen=True)
class SignupEmail:
    """The email a signup calls for: `kind` is "confirmation" or "already_subscribed"."""

    kind: str
    subscriber_id: int


def _signup_record(
    subscriber: Subscriber,
    *,
    categories: list[Category],
    language: str,
    source: str,
    ip: str | None,
    choice: ReaderChoice,
) -> None:
    keywords_apply(subscriber, choice=choice)
    subscriber.status = Status.PENDING
    subscriber.confirm_nonce = new_nonce()
    subscriber.language = language
    subscriber.consent_source = source[:300]
    subscriber.consent_wording_version = settings.CONSENT_WORDING_VERSION
    subscriber.consent_ip = ip
    subscriber.save()
    subscriber.categories.set(categories)


def subscriber_signup(
    *,
    email: str,
    categories: Iterable[Category],
    language: str,
    source: str,
    ip: str | None,
    choice: ReaderChoice | None = None,
) -> SignupEmail | None:
    """Starts (or restarts) double opt-in. The caller shows the same answer whatever the
    address's state was, and hands the returned email to `tasks.signup_email_enqueue`.

    New, pending and unsubscribed addresses become pending with a fresh confirm nonce and get a
    confirmation email; an active address keeps its choices untouched (a stranger must not change
    them) and gets a note with its preferences link; bounced and complained addresses get nothing.
    Past SIGNUP_RATE_LIMIT_PER_EMAIL per hour, nothing changes and nothing is sent.
    """
    email = email_normalise(email)
    limit = settings.SIGNUP_RATE_LIMIT_PER_EMAIL
    if not ratelimit_hit(scope="signup-email", key=email, limit=limit):
        logger.info("signup: per-address rate limit reached")
        return None
    chosen = list(categories)
    email_due: SignupEmail | None = None
    with transaction.atomic():
        subscriber, _ = Subscriber.objects.get_or_create(email=email)
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        if subscriber.status in (Status.PENDING, Status.UNSUBSCRIBED):
            _signup_record(
                subscriber,
                categories=chosen,
                language=reader_language(language),
                source=source,
                ip=ip,
                choice=choice or ReaderChoice(),
            )
            email_due = SignupEmail("confirmation", subscriber.pk)
        elif subscriber.status == Status.ACTIVE:
            email_due = SignupEmail("already_subscribed", subscriber.pk)
    logger.info("signup: subscriber %s is %s", subscriber.pk, subscriber.status)
    return email_due


def subscriber_confirm(*, subscriber: Subscriber, now: datetime | None = None) -> bool:
    """Activates a pending reader and records consent; False when there was nothing to confirm."""
    now = now or timezone.now()
    changed = Subscriber.objects.filter(pk=subscriber.pk, status=Status.PENDING).update(
        status=Status.ACTIVE, confirmed_at=now, consent_at=now, updated_at=now
    )
    subscriber.refresh_from_db()
    return changed == 1


CHOICE_FIELDS = [
    "keywords_include",
    "keywords_exclude",
    "keywords_all_categories",
    "keywords_key",
    "cadence",
]


def subscriber_preferences_update(
    *,
    subscriber: Subscriber,
    categories: Iterable[Category],
    language: str | None = None,
    choice: ReaderChoice | None = None,
) -> None:
    """Saves the reader's categories, language and (when given) keywords and cadence."""
    chosen = list(categories)
    if not chosen:
        raise ValueError("choose at least one category, or unsubscribe")
    fields = ["language", "updated_at"]
    if choice is not None:
        keywords_apply(subscriber, choice=choice)
        fields += CHOICE_FIELDS
    with transaction.atomic():
        subscriber.categories.set(chosen)
        if language is not None:
            subscriber.language = reader_language(language)
        subscriber.save(update_fields=fields)
        # A reader's team chats get what the reader chose.
        reader_channels_follow(subscriber=subscriber, categories=chosen)


def subscriber_unsubscribe(
    *, subscriber: Subscriber, source: str, now: datetime | None = None
) -> bool:
    """Stops all mail. Bounced and complained addresses keep that stronger status.

    Returns whether the status changed; unsubscribing twice is harmless."""
    now = now or timezone.now()
    changed = Subscriber.objects.filter(
        pk=subscriber.pk, status__in=[Status.PENDING, Status.ACTIVE]
    ).update(status=Status.UNSUBSCRIBED, unsubscribed_at=now, updated_at=now)
    subscriber.refresh_from_db()
    if changed:
        reader_channels_stop(subscriber=subscriber)
        logger.info("unsubscribe: subscriber %s via %s", subscriber.pk, source)
    return changed == 1


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def subscriber_export(*, subscriber: Subscriber) -> dict[str, Any]:
    """Everything stored about one reader, for "download my data"."""
    events = EmailEvent.objects.filter(recipient__iexact=subscriber.email).order_by("received_at")
    return {
        "email": subscriber.email,
        "status": subscriber.status,
        "language": subscriber.language,
        "cadence": subscriber.cadence,
        "keywords_include": subscriber.keywords_include.splitlines(),
        "keywords_exclude": subscriber.keywords_exclude.splitlines(),
        "keywords_all_categories": subscriber.keywords_all_categories,
        "categories": [
            {"slug": category.slug, "name": category.name}
            for category in subscriber.categories.order_by("position", "name")
        ],
        "consent": {
            "at": _iso(subscriber.consent_at),
            "source": subscriber.consent_source,
            "wording_version": subscriber.consent_wording_version,
            "ip": subscriber.consent_ip,
            "note": subscriber.consent_note,
        },
        "timestamps": {
            "created_at": _iso(subscriber.created_at),
            "confirmation_sent_at": _iso(subscriber.confirmation_sent_at),
            "confirmed_at": _iso(subscriber.confirmed_at),
            "unsubscribed_at": _iso(subscriber.unsubscribed_at),
            "suppressed_at": _iso(subscriber.suppressed_at),
            "updated_at": _iso(subscriber.updated_at),
        },
        "suppressed_reason": subscriber.suppressed_reason,
        "soft_bounce_count": subscriber.soft_bounce_count,
        # The webhook shown without its secret part, as on the preferences page.
        "team_chats": [
            {
                "kind": channel.kind,
                "destination": channel.destination,
                "status": channel.status,
                "created_at": _iso(channel.created_at),
                "confirmed_at": _iso(channel.confirmed_at),
            }
            for channel in subscriber.channels.order_by("created_at", "pk")
        ],
        "email_events": [
            {
                "esp": event.esp,
                "type": event.event_type,
                "occurred_at": _iso(event.occurred_at),
                "description": event.description,
            }
            for event in events
        ],
    }


def subscriber_delete(*, subscriber: Subscriber) -> None:
    """Forgets a reader entirely: the row, its choices and the ESP events about the address."""
    with transaction.atomic():
        EmailEvent.objects.filter(recipient__iexact=subscriber.email).delete()
        Subscriber.objects.filter(pk=subscriber.pk).delete()
    logger.info("delete: subscriber %s deleted at their request", subscriber.pk)


def pending_purge(*, now: datetime | None = None) -> int:
    """Deletes signups still unconfirmed PENDING_PURGE_DAYS after the last confirmation email
    (or after the signup, if no email went out). Returns how many were deleted."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.PENDING_PURGE_DAYS)
    stale = Subscriber.objects.filter(status=Status.PENDING).filter(
        Q(confirmation_sent_at__lt=cutoff)
        | Q(confirmation_sent_at__isnull=True, created_at__lt=cutoff)
    )
    _, by_model = stale.delete()
    count = by_model.get(Subscriber._meta.label, 0)
    logger.info("purge: %s unconfirmed signups deleted", count)
    return count
