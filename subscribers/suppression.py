"""Keeping the list clean: what an ESP's bounce, complaint or unsubscribe does to a reader.

The webhook receiver (`subscribers.webhooks`) only stores an `EmailEvent` and enqueues
`tasks.apply_email_event`; everything that changes a reader happens here, once per event.

Suppression only ever gets stronger: complained > bounced > unsubscribed. A complaint is never
turned into a bounce by a later event, and nothing here re-activates an address.
"""

from __future__ import annotations

import logging

from anymail.signals import EventType, RejectReason
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from .models import SUPPRESSED_STATUSES, Channel, EmailEvent, Subscriber
from .sending.ledger import delivery_events_apply
from .services import email_normalise

logger = logging.getLogger(__name__)

# The higher, the stronger; an address only moves up.
SUPPRESSION_STRENGTH = {
    Subscriber.Status.UNSUBSCRIBED: 1,
    Subscriber.Status.BOUNCED: 2,
    Subscriber.Status.COMPLAINED: 3,
}

# What a "rejected" event (the ESP refused to send) says about the address itself.
REJECTION_STATUS = {
    RejectReason.BOUNCED: Subscriber.Status.BOUNCED,
    RejectReason.INVALID: Subscriber.Status.BOUNCED,
    RejectReason.SPAM: Subscriber.Status.COMPLAINED,
    RejectReason.UNSUBSCRIBED: Subscriber.Status.UNSUBSCRIBED,
}

# Suppressions that also stop the reader's own team-chat channels.
CHANNELS_STOP = frozenset({Subscriber.Status.UNSUBSCRIBED, Subscriber.Status.COMPLAINED})

EVENT_STATUS = {
    EventType.BOUNCED: Subscriber.Status.BOUNCED,
    EventType.COMPLAINED: Subscriber.Status.COMPLAINED,
    EventType.UNSUBSCRIBED: Subscriber.Status.UNSUBSCRIBED,
}


def subscriber_suppress(*, email: str, status: Subscriber.Status, reason: str) -> bool:
    """Suppress `email` with `status` unless it is already suppressed as strongly.

    Returns True when the row changed; an unknown address is False."""
    strength = SUPPRESSION_STRENGTH[status]
    as_strong = [s for s, n in SUPPRESSION_STRENGTH.items() if n >= strength]
    now = timezone.now()
    changes: dict[str, object] = {
        "status": status,
        "suppressed_at": now,
        "suppressed_reason": reason,
        "updated_at": now,
    }
    if status == Subscriber.Status.UNSUBSCRIBED:
        changes["unsubscribed_at"] = Coalesce(F("unsubscribed_at"), now)
    # One conditional UPDATE, so two events racing for one address cannot both apply.
    address = Subscriber.objects.filter(email=email_normalise(email))
    changed = address.exclude(status__in=as_strong).update(**changes)
    if changed:
        logger.info("suppressed %s as %s: %s", email, status, reason)
    if changed and status in CHANNELS_STOP:
        # The reader left (through the ESP) or called the issue spam: the team chats they added
        # get nothing more either. A bounce leaves them: the chat still works.
        Channel.objects.filter(
            subscriber__in=address, status__in=[Channel.Status.PENDING, Channel.Status.ACTIVE]
        ).update(status=Channel.Status.STOPPED, updated_at=now)
    return bool(changed)


def subscriber_soft_bounce(*, email: str, reason: str) -> bool:
    """Count one soft bounce; at SOFT_BOUNCE_LIMIT the address is suppressed as bounced.

    Returns True when this soft bounce suppressed the address."""
    address = email_normalise(email)
    counted = Subscriber.objects.filter(email=address).exclude(status__in=SUPPRESSED_STATUSES)
    if not counted.update(soft_bounce_count=F("soft_bounce_count") + 1):
        return False
    count = Subscriber.objects.values_list("soft_bounce_count", flat=True).get(email=address)
    if count < settings.SOFT_BOUNCE_LIMIT:
        return False
    return subscriber_suppress(
        email=address,
        status=Subscriber.Status.BOUNCED,
        reason=f"{count} soft bounces, the last: {reason}",
    )


def subscriber_delivered(*, email: str) -> None:
    """A delivered message ends a run of soft bounces: only consecutive failures count."""
    Subscriber.objects.filter(email=email_normalise(email), soft_bounce_count__gt=0).update(
        soft_bounce_count=0
    )


def email_event_apply(*, event: EmailEvent) -> None:
    """Apply one stored ESP event to its reader, at most once (claimed by a conditional UPDATE)."""
    with transaction.atomic():
        claimed = EmailEvent.objects.filter(pk=event.pk, applied_at__isnull=True).update(
            applied_at=timezone.now()
        )
        if not claimed:
            return
        _apply(event)


def _apply(event: EmailEvent) -> None:
    # The digest delivery it reports on (metadata delivery_id): bounced, complained, opened...
    delivery_events_apply(event=event)
    if not event.recipient:
        return
    reason = event_reason(event)
    if event.event_type == EventType.DEFERRED:
        # Lock the reader, so two workers applying one day's retries cannot both count.
        Subscriber.objects.select_for_update().filter(email=event.recipient).first()
        if not _soft_bounce_counted_today(event):
            subscriber_soft_bounce(email=event.recipient, reason=reason)
    elif event.event_type == EventType.DELIVERED:
        subscriber_delivered(email=event.recipient)
    elif status := _suppression_status(event):
        subscriber_suppress(email=event.recipient, status=status, reason=reason)


def _suppression_status(event: EmailEvent) -> Subscriber.Status | None:
    if event.event_type == EventType.REJECTED:
        return REJECTION_STATUS.get(event.reject_reason)
    return EVENT_STATUS.get(event.event_type)


def _soft_bounce_counted_today(event: EmailEvent) -> bool:
    """Another soft bounce for this address, on the same day, was applied before this one.

    ESPs report every retry of one message as a new "deferred" event. The model has no message id
    to count a message once, so an address gets at most one soft bounce per day (TIME_ZONE): with
    one digest a day that is about one per message, and failures on SOFT_BOUNCE_LIMIT days without
    a delivery in between suppress the address."""
    day = timezone.localdate(event.occurred_at or event.received_at)
    same_day = EmailEvent.objects.filter(
        recipient=event.recipient,
        event_type=EventType.DEFERRED,
        applied_at__isnull=False,
        occurred_at__date=day,
    )
    return same_day.exclude(pk=event.pk).exists()


def event_reason(event: EmailEvent) -> str:
    """What an admin reads in `suppressed_reason`: who said it, what, and when."""
    detail = event.description or event.reject_reason or "no description"
    when = f" at {event.occurred_at.isoformat()}" if event.occurred_at else ""
    return f"{event.esp} {event.event_type}{when}: {detail}"
