"""Approving an issue for sending, and taking the approval back.

Both are conditional UPDATEs on the status, so of two editors (or an editor and the beat task)
acting at once exactly one wins. Both bump updated_at, which the email render caches key on.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from .editing import SYSTEM_ACTORS, digest_touch
from .models import Digest


class ApprovalRefused(Exception):
    """The issue is not in the state the change needs."""


def send_timezone() -> ZoneInfo:
    return ZoneInfo(settings.DIGEST_SEND_TIMEZONE)


def next_send_time(*, now: datetime | None = None) -> datetime:
    """The next DIGEST_SEND_HOUR:MINUTE in DIGEST_SEND_TIMEZONE strictly after now, in UTC."""
    zone = send_timezone()
    local_now = (now or timezone.now()).astimezone(zone)
    at = time(settings.DIGEST_SEND_HOUR, settings.DIGEST_SEND_MINUTE)
    candidate = datetime.combine(local_now.date(), at, tzinfo=zone)
    if candidate <= local_now:
        candidate = datetime.combine(local_now.date() + timedelta(days=1), at, tzinfo=zone)
    return candidate.astimezone(ZoneInfo("UTC"))


def digest_approve(
    *, digest: Digest, send_at: datetime | None = None, by: str = "", auto: bool = False
) -> Digest:
    """Draft -> approved, to be sent at send_at (default: the next daily send time). `auto`:
    approved by DIGEST_AUTO_APPROVE, not by a person."""
    if not digest.sections.exists():
        raise ApprovalRefused(f"The issue of {digest.date} has no sections: nothing to send.")
    if send_at is not None and timezone.is_naive(send_at):
        send_at = send_at.replace(tzinfo=send_timezone())
    now = timezone.now()
    changed = Digest.objects.filter(pk=digest.pk, status=Digest.Status.DRAFT).update(
        status=Digest.Status.APPROVED,
        send_at=send_at or next_send_time(now=now),
        approved_at=now,
        approved_by=by[:150],
        auto_approved=auto,
        updated_at=now,
    )
    if changed:
        digest_touch(digest_id=digest.pk, by=by, reviewed=not auto and by not in SYSTEM_ACTORS)
    digest.refresh_from_db()
    if not changed:
        raise ApprovalRefused(
            f"The issue of {digest.date} is {digest.status}; only a draft can be approved."
        )
    return digest


def digest_unapprove(*, digest: Digest, by: str = "") -> Digest:
    """Approved -> draft, before its send starts (this cancels the scheduled send); a sending
    or sent issue stays as it is."""
    changed = Digest.objects.filter(pk=digest.pk, status=Digest.Status.APPROVED).update(
        status=Digest.Status.DRAFT,
        send_at=None,
        approved_at=None,
        approved_by="",
        auto_approved=False,
        updated_at=timezone.now(),
    )
    if changed:
        digest_touch(digest_id=digest.pk, by=by, reviewed=bool(by) and by not in SYSTEM_ACTORS)
    digest.refresh_from_db()
    if not changed:
        raise ApprovalRefused(
            f"The issue of {digest.date} is {digest.status}; only an approved issue goes back "
            "to draft."
        )
    return digest


def digests_auto_approve(*, now: datetime | None = None) -> list[int]:
    """Stub: filled in by the workflow work."""
    return []
