"""Approving an issue for sending, taking the approval back, and approving automatically.

Both are conditional UPDATEs on the status, so of two editors (or an editor and the beat task)
acting at once exactly one wins. Both bump updated_at, which the email render caches key on.

Automatic approval (DIGEST_AUTO_APPROVE, off by default) is for lists that trust the pipeline:
a built draft that no person has acted on is approved at the first DIGEST_AUTO_APPROVE_HOUR:
MINUTE (in DIGEST_SEND_TIMEZONE) after its build, for the next daily send time.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from .editing import SYSTEM_ACTORS, digest_touch
from .models import Digest, DigestSection

logger = logging.getLogger(__name__)

AUTO_APPROVER = "auto-approve"
# Turning DIGEST_AUTO_APPROVE on must not send old drafts nobody wanted: only issues dated
# within this many days (of today in DIGEST_SEND_TIMEZONE) are taken.
AUTO_APPROVE_RECENT_DAYS = 3


class ApprovalRefused(Exception):
    """The issue is not in the state the change needs."""


class DigestChanged(ApprovalRefused):
    """The issue changed after the person approving it looked at it."""


def send_timezone() -> ZoneInfo:
    return ZoneInfo(settings.DIGEST_SEND_TIMEZONE)


def local_time_label(when: datetime) -> str:
    """`when` in DIGEST_SEND_TIMEZONE, named: "2026-08-14 07:00 Asia/Seoul"."""
    return f"{when.astimezone(send_timezone()):%Y-%m-%d %H:%M} {settings.DIGEST_SEND_TIMEZONE}"


def _next_local(*, at: time, after: datetime) -> datetime:
    """The first `at` (a wall-clock time in DIGEST_SEND_TIMEZONE) strictly after `after`, in UTC."""
    zone = send_timezone()
    local = after.astimezone(zone)
    candidate = datetime.combine(local.date(), at, tzinfo=zone)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), at, tzinfo=zone)
    return candidate.astimezone(ZoneInfo("UTC"))


def next_send_time(*, now: datetime | None = None) -> datetime:
    """The next DIGEST_SEND_HOUR:MINUTE in DIGEST_SEND_TIMEZONE strictly after now, in UTC."""
    at = time(settings.DIGEST_SEND_HOUR, settings.DIGEST_SEND_MINUTE)
    return _next_local(at=at, after=now or timezone.now())


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def weekly_send_at() -> tuple[int, time]:
    """WEEKLY_SEND_DAY (mon..sun, as Python's weekday: 0 is Monday) and WEEKLY_SEND_TIME."""
    day = str(settings.WEEKLY_SEND_DAY).strip().lower()[:3]
    if day not in WEEKDAYS:
        raise ImproperlyConfigured(f"WEEKLY_SEND_DAY must be one of {', '.join(WEEKDAYS)}")
    try:
        at = time.fromisoformat(str(settings.WEEKLY_SEND_TIME).strip())
    except ValueError:
        raise ImproperlyConfigured("WEEKLY_SEND_TIME must be HH:MM, e.g. 09:00") from None
    return WEEKDAYS.index(day), at


def next_weekly_send_time(*, now: datetime | None = None) -> datetime:
    """The next WEEKLY_SEND_DAY at WEEKLY_SEND_TIME in DIGEST_SEND_TIMEZONE strictly after now,
    in UTC."""
    weekday, at = weekly_send_at()
    after = now or timezone.now()
    zone = send_timezone()
    local = after.astimezone(zone)
    ahead = (weekday - local.weekday()) % 7
    candidate = datetime.combine(local.date() + timedelta(days=ahead), at, tzinfo=zone)
    if candidate <= local:
        candidate = datetime.combine(candidate.date() + timedelta(days=7), at, tzinfo=zone)
    return candidate.astimezone(ZoneInfo("UTC"))


def default_send_time(*, digest: Digest, now: datetime | None = None) -> datetime:
    """When an issue goes out unless the approver says otherwise: a daily issue at the next
    daily send time, a weekly one on the next WEEKLY_SEND_DAY at WEEKLY_SEND_TIME."""
    if digest.kind == Digest.Kind.WEEKLY:
        return next_weekly_send_time(now=now)
    return next_send_time(now=now)


def auto_approve_time(*, built_at: datetime) -> datetime:
    """When DIGEST_AUTO_APPROVE takes an issue built at `built_at` (if nobody acted before)."""
    at = time(settings.DIGEST_AUTO_APPROVE_HOUR, settings.DIGEST_AUTO_APPROVE_MINUTE)
    return _next_local(at=at, after=built_at)


def _refusal(*, digest: Digest, version: int | None, auto: bool) -> ApprovalRefused:
    """Why the conditional UPDATE changed nothing, from the issue as it now is."""
    if digest.status != Digest.Status.DRAFT:
        return ApprovalRefused(
            _("The issue of %(date)s is %(status)s; only a draft can be approved.")
            % {"date": digest.date, "status": digest.get_status_display()}
        )
    if version is not None and digest.version != version:
        who = digest.last_changed_by or _("someone")
        return DigestChanged(
            _(
                "Not approved: the issue of %(date)s changed since you looked (by %(who)s, "
                "at %(time)s); review it again, then approve it."
            )
            % {"date": digest.date, "who": who, "time": local_time_label(digest.updated_at)}
        )
    if auto and digest.reviewed_at is not None:
        return ApprovalRefused(
            _("An editor has acted on the issue of %(date)s.") % {"date": digest.date}
        )
    return ApprovalRefused(
        _("The issue of %(date)s could not be approved.") % {"date": digest.date}
    )


def digest_approve(
    *,
    digest: Digest,
    send_at: datetime | None = None,
    by: str = "",
    auto: bool = False,
    version: int | None = None,
) -> Digest:
    """Draft -> approved, to be sent at send_at (default: `default_send_time`). `auto`:
    approved by DIGEST_AUTO_APPROVE, not by a person, so only while no person has acted on it.
    `version`: the one the approver saw; approving an issue that changed since is refused
    (DigestChanged)."""
    if not digest.sections.exists():
        raise ApprovalRefused(
            _("The issue of %(date)s has no sections: nothing to send.") % {"date": digest.date}
        )
    if send_at is not None and timezone.is_naive(send_at):
        send_at = send_at.replace(tzinfo=send_timezone())
    now = timezone.now()
    draft = Digest.objects.filter(pk=digest.pk, status=Digest.Status.DRAFT)
    if version is not None:
        draft = draft.filter(version=version)
    if auto:
        draft = draft.filter(reviewed_at__isnull=True)
    changed = draft.update(
        status=Digest.Status.APPROVED,
        send_at=send_at or default_send_time(digest=digest, now=now),
        approved_at=now,
        approved_by=by[:150],
        auto_approved=auto,
        updated_at=now,
    )
    if changed:
        digest_touch(digest_id=digest.pk, by=by, reviewed=not auto and by not in SYSTEM_ACTORS)
    digest.refresh_from_db()
    if not changed:
        raise _refusal(digest=digest, version=version, auto=auto)
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
            _("The issue of %(date)s is %(status)s; only an approved issue goes back to draft.")
            % {"date": digest.date, "status": digest.get_status_display()}
        )
    return digest


def auto_approve_candidates(*, now: datetime) -> list[Digest]:
    """Recent built drafts with sections that no person has acted on (their time not checked)."""
    recent = now.astimezone(send_timezone()).date() - timedelta(days=AUTO_APPROVE_RECENT_DAYS)
    sections = DigestSection.objects.filter(digest=OuterRef("pk"))
    drafts = Digest.objects.filter(
        status=Digest.Status.DRAFT,
        built_at__isnull=False,
        reviewed_at__isnull=True,
        date__gte=recent,
    )
    return list(drafts.filter(Exists(sections)).defer("chart_png").order_by("date"))


def digests_auto_approve(*, now: datetime | None = None) -> list[int]:
    """With DIGEST_AUTO_APPROVE on: approves, for its default send time, each candidate whose
    auto-approval time has passed. Returns the ids approved. Two runs at once approve each issue
    once (digest_approve is a conditional UPDATE; the loser is refused)."""
    if not settings.DIGEST_AUTO_APPROVE:
        return []
    now = now or timezone.now()
    approved: list[int] = []
    for digest in auto_approve_candidates(now=now):
        assert digest.built_at is not None  # filtered on
        if auto_approve_time(built_at=digest.built_at) > now:
            continue
        try:
            digest_approve(
                digest=digest,
                send_at=default_send_time(digest=digest, now=now),
                by=AUTO_APPROVER,
                auto=True,
                version=digest.version,
            )
        except ApprovalRefused as refused:
            logger.info("auto-approve: issue %s not approved: %s", digest.date, refused)
            continue
        assert digest.send_at is not None
        logger.info(
            "auto-approve: issue %s approved (nobody acted), to be sent at %s",
            digest.date,
            local_time_label(digest.send_at),
        )
        approved.append(digest.pk)
    return approved
