"""The ledger: one Delivery row per reader and digest, and every change of its state, each a
conditional UPDATE so that a row is claimed, sent and recorded exactly once.

queued -> sending (claimed by one chunk under a claim uuid) -> sent | failed | skipped | unknown
(bounced and complained later, from the ESP's events). A claimed row that was not attempted goes
back to queued (`deliveries_release`, when a send pauses). This is the one place that counts
deliveries (`delivery_counts`, and `deliveries_count` for a list of digests).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from digests.models import Digest

from ..models import ChannelDelivery, Delivery, Subscriber
from .transports import Outcome, Reader, Recipient

PENDING = (Delivery.Status.QUEUED, Delivery.Status.SENDING)
# Distinct message ids in one outcome worth an UPDATE each (an ESP batch and its bisections).
MESSAGE_IDS_KEPT = 8


@dataclass
class ChunkReport:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    unknown: int = 0
    released: int = 0


def deliveries_claim(*, ids: Sequence[int], claim: str, retry: bool) -> int:
    """queued -> sending under `claim` (one UPDATE); a retry first refreshes its own rows."""
    now = timezone.now()
    changes = {"claimed_at": now, "attempts": F("attempts") + 1}
    refreshed = 0
    if retry:
        mine = Delivery.objects.filter(
            pk__in=list(ids), claim=claim, status=Delivery.Status.SENDING
        )
        refreshed = mine.update(**changes)
    queued = Delivery.objects.filter(pk__in=list(ids), status=Delivery.Status.QUEUED)
    return refreshed + queued.update(status=Delivery.Status.SENDING, claim=claim, **changes)


def recipients_load(*, claim: str, ids: Sequence[int], report: ChunkReport) -> list[Recipient]:
    """The claimed rows with their reader's current status; readers no longer active are
    skipped (suppressed or gone since the send started). Rows are found by id (the primary
    key) and claim: `claim` needs no index of its own."""
    claimed = Delivery.objects.filter(pk__in=list(ids), claim=claim, status=Delivery.Status.SENDING)
    rows = claimed.values_list(
        "pk",
        "email",
        "variant",
        "subscriber_id",
        "subscriber__status",
        "subscriber__email",
        "subscriber__language",
    )
    recipients, gone = [], []
    for pk, email, variant, subscriber_id, status, current_email, language in rows.order_by("pk"):
        if status != Subscriber.Status.ACTIVE:
            gone.append(pk)
            continue
        reader = Reader(subscriber_id, current_email)
        recipients.append(Recipient(pk, email, variant, language or "", reader))
    if gone:
        report.skipped += deliveries_mark(
            claim=claim, ids=gone, status=Delivery.Status.SKIPPED, reason="reader no longer active"
        )
    return recipients


def outcome_record(*, claim: str, outcome: Outcome, report: ChunkReport) -> None:
    """What a transport said, in one UPDATE per kind of result. An ESP batch shares one message
    id, kept on its rows; SMTP messages have one each (`digest.<digest>.<delivery>.<n>@...`,
    so a bounce names its delivery) and are recorded in one UPDATE without it."""
    message_ids = set(outcome.sent.values())
    if len(message_ids) <= MESSAGE_IDS_KEPT:
        for message_id in message_ids:
            ids = [pk for pk, sent_id in outcome.sent.items() if sent_id == message_id]
            report.sent += deliveries_mark_sent(claim=claim, ids=ids, message_id=message_id)
    else:
        report.sent += deliveries_mark_sent(claim=claim, ids=list(outcome.sent), message_id="")
    for status, results in (
        (Delivery.Status.FAILED, outcome.failed),
        (Delivery.Status.UNKNOWN, outcome.unknown),
    ):
        by_reason: dict[str, list[int]] = defaultdict(list)
        for delivery_id, reason in results.items():
            by_reason[reason].append(delivery_id)
        for reason, ids in by_reason.items():
            count = deliveries_mark(claim=claim, ids=ids, status=status, reason=reason)
            if status == Delivery.Status.FAILED:
                report.failed += count
            else:
                report.unknown += count


def deliveries_mark_sent(*, claim: str, ids: Iterable[int], message_id: str) -> int:
    """Sent, in one UPDATE. "unknown" is accepted too: a slow call that a resume gave up on
    has now been confirmed by the ESP."""
    ids = list(ids)
    if not ids:
        return 0
    rows = Delivery.objects.filter(
        pk__in=ids, claim=claim, status__in=[Delivery.Status.SENDING, Delivery.Status.UNKNOWN]
    )
    return rows.update(
        status=Delivery.Status.SENT,
        esp_message_id=message_id[:200],
        sent_at=timezone.now(),
        error="",
    )


def deliveries_mark(*, claim: str, ids: list[int], status: str, reason: str) -> int:
    rows = Delivery.objects.filter(pk__in=ids, claim=claim, status=Delivery.Status.SENDING)
    return rows.update(status=status, error=reason[:2000])


def deliveries_release(*, claim: str, ids: Sequence[int], reason: str) -> int:
    """The rows of `claim` that were not attempted go back to "queued" without their claim,
    for whoever resumes the send (a paused send)."""
    rows = Delivery.objects.filter(pk__in=list(ids), claim=claim, status=Delivery.Status.SENDING)
    return rows.update(status=Delivery.Status.QUEUED, claim="", claimed_at=None, error=reason)


def deliveries_give_up(*, claim: str, ids: Sequence[int], reason: str) -> int:
    """After the last retry: the rows of `claim` were never accepted by the ESP, so failed."""
    rows = Delivery.objects.filter(pk__in=list(ids), claim=claim, status=Delivery.Status.SENDING)
    return rows.update(status=Delivery.Status.FAILED, error=f"gave up after retries: {reason}")


def digest_finish_if_done(*, digest_id: int) -> bool:
    """sending -> sent once every reader has a row and none is queued or sending (one
    conditional UPDATE). A paused send is not finished."""
    now = timezone.now()
    done = Digest.objects.filter(
        pk=digest_id, status=Digest.Status.SENDING, send_planned_at__isnull=False
    ).exclude(nothing_pending_q())
    # A resend to the unknown closes the issue again: its first sent_at stays.
    closed = done.update(
        status=Digest.Status.SENT, sent_at=Coalesce(F("sent_at"), now), updated_at=now
    )
    return closed == 1


def nothing_pending_q() -> Q:
    """Digests with an email or a channel still queued or sending (to exclude)."""
    pending = Delivery.objects.filter(digest_id=OuterRef("pk"), status__in=PENDING)
    channels = ChannelDelivery.objects.filter(digest_id=OuterRef("pk"), status__in=PENDING)
    return Q(Exists(pending)) | Q(Exists(channels))


def deliveries_unknown(*, digest_id: int) -> list[Delivery]:
    """Deliveries whose ESP call may or may not have gone out, for the editor to decide."""
    return list(
        Delivery.objects.filter(digest_id=digest_id, status=Delivery.Status.UNKNOWN).order_by(
            "email"
        )
    )


def delivery_counts(*, digest_id: int) -> dict[str, int]:
    """The one count of a digest's deliveries: every status (0 where none), opened and clicked
    (among those sent, where the ESP reports them) and the total, in one aggregate query."""
    counted: dict[str, Any] = {s: Count("pk", filter=Q(status=s)) for s in Delivery.Status.values}
    rows = Delivery.objects.filter(digest_id=digest_id)
    return rows.aggregate(
        **counted, opened=Count("opened_at"), clicked=Count("clicked_at"), total=Count("pk")
    )


def channel_delivery_counts(*, digest_id: int) -> dict[str, int]:
    """The same count for the digest's team-chat channels (every status, 0 where none, the
    total and the messages posted)."""
    counted: dict[str, Any] = {s: Count("pk", filter=Q(status=s)) for s in Delivery.Status.values}
    rows = ChannelDelivery.objects.filter(digest_id=digest_id)
    return rows.aggregate(**counted, total=Count("pk"), parts=Coalesce(Sum("parts_sent"), 0))


def deliveries_count(status: str | None = None) -> Subquery:
    """The same count per digest, as a subquery to annotate a list of digests with."""
    rows = Delivery.objects.filter(digest=OuterRef("pk"))
    if status is not None:
        rows = rows.filter(status=status)
    counted = rows.order_by().values("digest").annotate(n=Count("pk")).values("n")
    return Subquery(counted, output_field=IntegerField())


def delivery_events_apply(*, event: Any) -> bool:
    """An EmailEvent whose metadata names a delivery updates that row: bounced or complained
    (status), opened or clicked (the first time). Returns True when a row changed."""
    delivery_id = str((event.metadata or {}).get("delivery_id") or "")
    if not delivery_id.isdigit():
        return False
    row = Delivery.objects.filter(pk=int(delivery_id))
    when = event.occurred_at or timezone.now()
    updates: dict[str, Callable[[], int]] = {
        "bounced": lambda: row.update(
            status=Delivery.Status.BOUNCED, error=event.description or "bounced"
        ),
        "complained": lambda: row.update(status=Delivery.Status.COMPLAINED),
        "opened": lambda: row.filter(opened_at__isnull=True).update(opened_at=when),
        "clicked": lambda: row.filter(clicked_at__isnull=True).update(clicked_at=when),
    }
    update = updates.get(event.event_type)
    return bool(update and update())
