"""What happens to a send that stopped: a worker that died, a send that paused itself, readers
whose outcome is unknown. Each function returns the chunks to enqueue; `tasks.py` enqueues.

- A worker killed mid-call leaves its rows "sending". `digest_send_resume` turns rows claimed
  longer than DELIVERY_STALE_AFTER_SECONDS ago into "unknown" (the ESP may have sent them:
  they are listed for the editor, never resent blindly) and plans the queued rows again.
- A paused send (pace.py) is resumed the same way, by an editor: paused -> sending, its run of
  errors forgotten, its queued rows planned again.
- `deliveries_unknown_resend` is the editor's explicit "resend to the unknown".
- `digests_due` is what beat runs every minute: the due digests to start, the stalled sends to
  resume, the sends to close.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import DateTimeField, F, Max, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, Concat, Greatest
from django.utils import timezone

from digests.models import Digest

from ..models import ChannelDelivery, Delivery
from . import channels, ledger, plan

logger = logging.getLogger(__name__)

# What a resent row's `error` says until it is sent again (the earlier error follows it).
RESEND_NOTE = "resent by an editor after an unknown outcome; before: "


@dataclass
class Resume:
    resumed: bool  # False: nothing to resume (not sending or paused)
    unknown: int = 0
    chunks: list[list[int]] = field(default_factory=list)
    channel_chunks: list[list[int]] = field(default_factory=list)
    finished: bool = False
    was_paused: bool = False
    next_reader: int | None = None  # planning was cut short: plan on from this reader


def digest_send_resume(*, digest_id: int) -> Resume:
    """A paused send -> sending; stale "sending" rows -> unknown; queued rows planned again;
    sent when nothing is left."""
    now = timezone.now()
    was_paused = bool(
        Digest.objects.filter(pk=digest_id, status=Digest.Status.PAUSED).update(
            status=Digest.Status.SENDING,
            send_errors_in_row=0,
            send_paused_at=None,
            send_paused_reason="",
            updated_at=now,
        )
    )
    digest = Digest.objects.filter(pk=digest_id, status=Digest.Status.SENDING).first()
    if digest is None:
        return Resume(resumed=False)
    stale_before = now - timedelta(seconds=settings.DELIVERY_STALE_AFTER_SECONDS)
    stale = Delivery.objects.filter(
        digest_id=digest_id, status=Delivery.Status.SENDING, claimed_at__lt=stale_before
    )
    unknown = stale.update(
        status=Delivery.Status.UNKNOWN,
        error="its ESP call was in flight when the worker stopped: it may have been sent",
    )
    stale_channels = ChannelDelivery.objects.filter(
        digest_id=digest_id, status=Delivery.Status.SENDING, claimed_at__lt=stale_before
    )
    unknown += stale_channels.update(
        status=Delivery.Status.UNKNOWN,
        error="a post was in flight when the worker stopped: its part may have been posted",
    )
    if unknown:
        logger.warning("digest %s: %s deliveries in an unknown state", digest_id, unknown)
    next_reader = None
    if digest.send_planned_at is None:
        # Planning stopped with its worker: the readers after the last row made are next.
        last = Delivery.objects.filter(digest_id=digest_id).aggregate(m=Max("subscriber_id"))["m"]
        next_reader = int(last or 0) + 1 if last is not None else 0
    chunks = plan.chunks_plan(digest_id=digest_id)
    channel_chunks = channels.channel_chunks(digest_id=digest_id)
    finished = ledger.digest_finish_if_done(digest_id=digest_id)
    return Resume(
        resumed=True,
        unknown=unknown,
        chunks=chunks,
        channel_chunks=channel_chunks,
        finished=finished,
        was_paused=was_paused,
        next_reader=next_reader,
    )


def digests_stalled() -> list[int]:
    """Digests in "sending" whose last claim (or start) is older than the stale delay."""
    threshold = timezone.now() - timedelta(seconds=settings.DELIVERY_STALE_AFTER_SECONDS)
    sending = Digest.objects.filter(status=Digest.Status.SENDING, sending_started_at__lt=threshold)
    # Subqueries, not two joins: emails x channels rows would be counted together.
    claimed: DateTimeField[Any, Any] = DateTimeField()
    emails = Delivery.objects.filter(digest=OuterRef("pk")).order_by().values("digest")
    posts = ChannelDelivery.objects.filter(digest=OuterRef("pk")).order_by().values("digest")
    sending = sending.annotate(
        email_claim=Subquery(emails.annotate(m=Max("claimed_at")).values("m"), claimed),
        channel_claim=Subquery(posts.annotate(m=Max("claimed_at")).values("m"), claimed),
    )
    # GREATEST ignores NULL on PostgreSQL but not on SQLite: a missing side counts as "never".
    never = Value(datetime(1970, 1, 1, tzinfo=UTC), claimed)
    sending = sending.annotate(
        last_claim=Greatest(Coalesce("email_claim", never), Coalesce("channel_claim", never))
    )
    stalled = sending.filter(Q(last_claim__lt=threshold))
    return list(stalled.values_list("pk", flat=True))


def digests_due() -> list[int]:
    """Approved digests whose send time has come."""
    due = Digest.objects.filter(status=Digest.Status.APPROVED, send_at__lte=timezone.now())
    return list(due.values_list("pk", flat=True))


def digests_finish() -> list[int]:
    """Closes every send whose last chunk finished; returns them."""
    finishing = Digest.objects.filter(
        status=Digest.Status.SENDING, send_planned_at__isnull=False
    ).exclude(ledger.nothing_pending_q())
    return [
        pk
        for pk in finishing.values_list("pk", flat=True)
        if ledger.digest_finish_if_done(digest_id=pk)
    ]


def deliveries_unknown_resend(*, digest_id: int) -> tuple[int, list[list[int]], list[list[int]]]:
    """Sends the digest again to its deliveries in an unknown state, by an editor's explicit
    choice: those readers may get it twice. No other row is touched, so nobody else gets a
    second copy. The rows go back to "queued" without their claim (a late answer to the old
    call cannot record them); a digest already "sent" is "sending" again until they are done.
    A channel's row goes on from the first part not recorded as posted. Returns how many were
    queued, the emails' chunks and the channels' chunks."""
    now = timezone.now()
    with transaction.atomic():
        unknown = Delivery.objects.filter(digest_id=digest_id, status=Delivery.Status.UNKNOWN)
        resent = unknown.update(
            status=Delivery.Status.QUEUED,
            claim="",
            claimed_at=None,
            error=Concat(Value(RESEND_NOTE), F("error"), output_field=models.TextField()),
        )
        resent += ChannelDelivery.objects.filter(
            digest_id=digest_id, status=Delivery.Status.UNKNOWN
        ).update(
            status=Delivery.Status.QUEUED,
            claim="",
            claimed_at=None,
            error=Concat(Value(RESEND_NOTE), F("error"), output_field=models.TextField()),
        )
        if not resent:
            return 0, [], []
        reopened = Digest.objects.filter(pk=digest_id, status=Digest.Status.SENT)
        reopened.update(
            status=Digest.Status.SENDING,
            send_planned_at=Coalesce(F("send_planned_at"), now),
            updated_at=now,
        )
        chunks = plan.chunks_plan(digest_id=digest_id)
        channel_chunks = channels.channel_chunks(digest_id=digest_id)
    logger.warning("digest %s: resending to %s deliveries in an unknown state", digest_id, resent)
    return resent, chunks, channel_chunks
