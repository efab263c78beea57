"""Editors told: a short notice for each event that needs them, by email and, with
NOTIFY_WEBHOOK_URL, to a Slack-compatible incoming webhook.

The events are read from the database as it is (`events_due`), so the content app, which
knows nothing of this one, needs to say nothing:
- a draft ready: a built draft (papers, sections, flags, the day's suspect categories);
- nothing to publish: a finished daily run that built nothing or failed, with its reasons;
- a send finished (delivered, failed, unknown) or paused (a later pause is a new event);
- an approval due: a draft not approved when the next send time is NOTIFY_APPROVAL_LEAD_MINUTES
  away; a send due: an approved issue nobody reviewed (automatic approval) that close to its
  send time.

Each event is noticed once: its `Notice.key` is unique, and the row is created (the claim)
before anything is sent. Email and webhook are delivered apart (`emailed_at`, `webhook_at`),
each claimed by a conditional UPDATE before it is tried, so two scans at once never send one
twice; a failure gives the claim back and records `error`, and the next scan tries again for
NOTICE_RETRY_HOURS. A process that dies between the claim and the send loses that message
rather than risk sending it twice.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from digests.approval import AUTO_APPROVE_RECENT_DAYS, default_send_time, local_time_label
from digests.models import DailyRun, Digest, DigestSection

from .emails import notice_email_send
from .models import Notice
from .sending.ledger import delivery_counts

logger = logging.getLogger(__name__)

EDITORS_GROUP = "Editors"
# Events older than this are history, not news: turning notices on tells nothing of them.
RECENT = timedelta(days=2)
# A notice whose email or webhook failed is tried again by each scan for this long.
NOTICE_RETRY_HOURS = 24
WEBHOOK_TIMEOUT = 10.0

# The notices' words by name, translated (gettext, locale/) into the editors' language.
PHRASES: dict[str, str | Promise] = {
    "draft_ready.subject": _("[Daily AI Insights] The draft of {date} is ready"),
    "draft_ready.body": _("{papers} papers, {sections} sections, {flags} flags to review."),
    "suspect": _("Suspect categories (fewer papers than usual, or already known):"),
    "send_time": _("Approved, it goes out at {when}."),
    "review": _("Review it: {url}"),
    "nothing.subject": _("[Daily AI Insights] {day}: nothing to publish"),
    "failed.subject": _("[Daily AI Insights] {day}: the daily run failed"),
    "nothing.body": _("The daily run started at {started} built no issue."),
    "feeds": _("Feeds: {ok} read, {failed} failed; {papers} new papers."),
    "run_suspect": _("The day's counts look short or stale."),
    "reasons": _("Reasons:"),
    "no_reasons": _("No reason was recorded."),
    "admin": _("Admin: {url}"),
    "sent.subject": _("[Daily AI Insights] The issue of {date} is sent"),
    "sent.body": _(
        "Delivered {delivered}, failed {failed}, unknown {unknown}, skipped {skipped} (of {total})."
    ),
    "paused.subject": _("[Daily AI Insights] The send of {date} is paused"),
    "paused.body": _("Why: {reason}\nFind the cause, then resume the send on the issue's page."),
    "approval_due.subject": _("[Daily AI Insights] The issue of {date} is not approved yet"),
    "approval_due.body": _(
        "The send time, {when}, is {minutes} minutes away. "
        "Unless it is approved, this issue will not go out."
    ),
    "send_due.subject": _("[Daily AI Insights] The issue of {date} goes out soon"),
    "send_due.body": _(
        "It goes out at {when} (in {minutes} minutes). No editor has reviewed "
        "it (approved by {approved_by})."
    ),
}
# Recorded as the notice's error for the operators, not translated.
NO_RECIPIENTS = (
    "no recipients: EDITOR_NOTIFY_EMAILS is empty and no active staff "
    "user in the Editors group has an email address"
)


def editor_language() -> str:
    return "en" if str(settings.EDITOR_LANGUAGE).lower().startswith("en") else "ko"


def phrase(name: str, **values: Any) -> str:
    with translation.override(editor_language()):
        return str(PHRASES[name]).format(**values)


def editor_addresses() -> list[str]:
    """EDITOR_NOTIFY_EMAILS, or else the active staff of the Editors group with an address."""
    if settings.EDITOR_NOTIFY_EMAILS:
        return list(dict.fromkeys(settings.EDITOR_NOTIFY_EMAILS))
    editors = get_user_model().objects.filter(
        is_active=True, is_staff=True, groups__name=EDITORS_GROUP
    )
    return sorted(set(editors.exclude(email="").values_list("email", flat=True)))


def admin_url(name: str, *args: Any) -> str:
    return settings.SITE_URL + reverse(f"admin:{name}", args=args)


# --- The events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoticeText:
    subject: str
    body: str


@dataclass(frozen=True)
class Event:
    key: str
    kind: str
    digest_id: int | None
    # The text is made only for an event not yet noticed (a send's counts cost a query).
    text: Callable[[], NoticeText] = field(compare=False)


def suspect_lines(integrity: Mapping[str, Any]) -> list[str]:
    """The day's verdict when it is suspect, from Digest.integrity as digests/integrity.py
    stores it (`DayIntegrity.as_json`): its summary, each suspect category with its figures and
    reasons, the feeds' problems; [] for a day that is not suspect."""
    if not integrity or not integrity.get("suspect"):
        return []
    lines = [str(integrity["summary"])] if integrity.get("summary") else []
    for category in integrity.get("categories") or []:
        if isinstance(category, Mapping) and category.get("suspect"):
            said = [_figures(category), *map(str, category.get("reasons") or [])]
            lines.append(f"- {category.get('category', '?')}: " + "; ".join(said))
    for problem in integrity.get("feeds") or []:
        if isinstance(problem, Mapping):
            lines.append(f"- {problem.get('feed', '?')}: {problem.get('problem', '')}")
    return lines


def _figures(category: Mapping[str, Any]) -> str:
    received = category.get("received") or {}
    usual = category.get("usual") or {}
    expected = category.get("expected") or {}
    shown = [f"received {received.get('new', '?')} new, {received.get('cross', '?')} cross"]
    shown.append(f"{category.get('known', '?')} already known")
    if usual.get("median") is not None:
        shown.append(f"usual {usual['median']:g} new")
    if expected.get("new") is not None:
        shown.append(f"listing {expected['new']} new")
    return ", ".join(shown)


def _draft_ready(digest: Digest, sections: list[tuple[int, list[Any]]], now: datetime) -> Event:
    def text() -> NoticeText:
        lines = [
            phrase(
                "draft_ready.body",
                papers=digest.paper_count,
                sections=len(sections),
                flags=sum(len(flags or []) for _, flags in sections),
            )
        ]
        suspects = suspect_lines(digest.integrity or {})
        if suspects:
            lines += ["", phrase("suspect"), *suspects]
        when = local_time_label(default_send_time(digest=digest, now=now))
        url = admin_url("digests_digest_change", digest.pk)
        lines += ["", phrase("send_time", when=when), phrase("review", url=url)]
        return NoticeText(phrase("draft_ready.subject", date=digest.date), "\n".join(lines))

    return Event(f"draft_ready:{digest.pk}", Notice.Kind.DRAFT_READY, digest.pk, text)


def _nothing(run: DailyRun) -> Event:
    def text() -> NoticeText:
        failed = run.outcome == DailyRun.Outcome.FAILED
        day = run.day or run.started_at.date()
        lines = [
            phrase("nothing.body", started=local_time_label(run.started_at)),
            phrase("feeds", ok=run.feeds_ok, failed=run.feeds_failed, papers=run.papers_new),
        ]
        if run.suspect:
            lines.append(phrase("run_suspect"))
        reasons = [f"- {_reason_text(reason)}" for reason in run.reasons or []]
        lines += ["", phrase("reasons"), *reasons] if reasons else [phrase("no_reasons")]
        lines += ["", phrase("admin", url=_run_url(run))]
        subject = phrase("failed.subject" if failed else "nothing.subject", day=day)
        return NoticeText(subject, "\n".join(lines))

    return Event(f"nothing:run-{run.pk}", Notice.Kind.NOTHING, run.digest_id, text)


def _run_url(run: DailyRun) -> str:
    """The run's page in the admin, or the admin's index where runs have none."""
    try:
        return admin_url("digests_dailyrun_change", run.pk)
    except NoReverseMatch:
        return admin_url("index")


def _reason_text(reason: Any) -> str:
    if isinstance(reason, Mapping):
        return str(reason.get("message") or reason.get("reason") or json.dumps(reason))
    return str(reason)


def _sent(digest: Digest) -> Event:
    def text() -> NoticeText:
        counts = delivery_counts(digest_id=digest.pk)
        body = phrase(
            "sent.body",
            delivered=counts["sent"] + counts["complained"],
            failed=counts["failed"] + counts["bounced"],
            unknown=counts["unknown"],
            skipped=counts["skipped"],
            total=counts["total"],
        )
        url = admin_url("digests_digest_change", digest.pk)
        body += "\n\n" + phrase("admin", url=url)
        return NoticeText(phrase("sent.subject", date=digest.date), body)

    return Event(f"sent:{digest.pk}", Notice.Kind.SENT, digest.pk, text)


def _paused(digest: Digest) -> Event:
    assert digest.send_paused_at is not None

    def text() -> NoticeText:
        body = phrase("paused.body", reason=digest.send_paused_reason or "?")
        body += "\n\n" + phrase("admin", url=admin_url("digests_digest_change", digest.pk))
        return NoticeText(phrase("paused.subject", date=digest.date), body)

    key = f"paused:{digest.pk}:{digest.send_paused_at.isoformat()}"
    return Event(key, Notice.Kind.PAUSED, digest.pk, text)


def _time_due(digest: Digest, *, kind: str, at: datetime, now: datetime) -> Event:
    def text() -> NoticeText:
        body = phrase(
            f"{kind}.body",
            when=local_time_label(at),
            minutes=max(round((at - now).total_seconds() / 60), 0),
            approved_by=digest.approved_by or "?",
        )
        body += "\n\n" + phrase("review", url=admin_url("digests_digest_change", digest.pk))
        return NoticeText(phrase(f"{kind}.subject", date=digest.date), body)

    return Event(f"{kind}:{digest.pk}:{at.isoformat()}", kind, digest.pk, text)


def events_due(*, now: datetime | None = None) -> list[Event]:
    """Every event the database shows now, noticed or not (three queries)."""
    now = now or timezone.now()
    return [*_digest_events(now=now), *_run_events(now=now)]


def _digest_events(*, now: datetime) -> list[Event]:
    lead = timedelta(minutes=settings.NOTIFY_APPROVAL_LEAD_MINUTES)
    recent_day = (now - timedelta(days=AUTO_APPROVE_RECENT_DAYS)).date()
    digests = Digest.objects.filter(
        Q(status=Digest.Status.DRAFT, built_at__isnull=False, date__gte=recent_day)
        | Q(status=Digest.Status.SENT, sent_at__gte=now - RECENT)
        | Q(status=Digest.Status.PAUSED, send_paused_at__isnull=False)
        | Q(status=Digest.Status.APPROVED, send_at__gt=now, send_at__lte=now + lead)
    ).defer("chart_png", "introduction")
    drafts = [d for d in digests if d.status == Digest.Status.DRAFT]
    sections = _sections_of(d.pk for d in drafts)
    events = []
    for digest in digests:
        if digest.status == Digest.Status.DRAFT:
            assert digest.built_at is not None  # filtered on
            if digest.built_at >= now - RECENT:
                events.append(_draft_ready(digest, sections.get(digest.pk, []), now))
            # Built inside the lead time: its "draft ready" already says when it goes out. A
            # weekly draft's send time is the weekly one.
            send_time = default_send_time(digest=digest, now=now)
            if send_time - now <= lead and digest.built_at < send_time - lead:
                events.append(_time_due(digest, kind="approval_due", at=send_time, now=now))
        elif digest.status == Digest.Status.SENT:
            events.append(_sent(digest))
        elif digest.status == Digest.Status.PAUSED:
            events.append(_paused(digest))
        elif digest.reviewed_at is None:  # approved, by nobody who looked at it
            assert digest.send_at is not None
            events.append(_time_due(digest, kind="send_due", at=digest.send_at, now=now))
    return events


def _run_events(*, now: datetime) -> list[Event]:
    runs = DailyRun.objects.filter(
        outcome__in=[DailyRun.Outcome.NOTHING, DailyRun.Outcome.FAILED],
        finished_at__gte=now - RECENT,
    )
    return [_nothing(run) for run in runs]


def _sections_of(digest_ids: Iterable[int]) -> dict[int, list[tuple[int, list[Any]]]]:
    """Each draft's sections as (id, flags), in one query."""
    by_digest: dict[int, list[tuple[int, list[Any]]]] = {}
    rows = DigestSection.objects.filter(digest_id__in=list(digest_ids))
    for digest_id, pk, flags in rows.values_list("digest_id", "pk", "flags"):
        by_digest.setdefault(digest_id, []).append((pk, flags))
    return by_digest


# --- Claiming and delivering ----------------------------------------------------------------------


def notices_claim(*, events: list[Event]) -> list[int]:
    """A Notice row for each event not yet noticed; returns the ids created here. Another scan
    creating the same key first wins (get_or_create catches the unique key's IntegrityError)."""
    keys = [event.key for event in events]
    known = set(Notice.objects.filter(key__in=keys).values_list("key", flat=True))
    created_ids = []
    recipients: list[str] | None = None
    for event in events:
        if event.key in known:
            continue
        recipients = editor_addresses() if recipients is None else recipients
        text = event.text()
        notice, created = Notice.objects.get_or_create(
            key=event.key,
            defaults={
                "kind": event.kind,
                "digest_id": event.digest_id,
                "subject": text.subject[:300],
                "body": text.body,
                "recipients": recipients,
                "error": "" if recipients else NO_RECIPIENTS,
            },
        )
        if created:
            logger.info("notice %s: %s", notice.key, notice.subject)
            created_ids.append(notice.pk)
    return created_ids


def notices_pending(*, now: datetime | None = None) -> list[int]:
    """Recent notices with an email or a webhook call still to make (one query)."""
    now = now or timezone.now()
    recent = Notice.objects.filter(created_at__gte=now - timedelta(hours=NOTICE_RETRY_HOURS))
    rows = recent.filter(Q(emailed_at__isnull=True) | Q(webhook_at__isnull=True))
    webhook = bool(settings.NOTIFY_WEBHOOK_URL)
    return [
        pk
        for pk, recipients, emailed_at, webhook_at in rows.order_by("pk").values_list(
            "pk", "recipients", "emailed_at", "webhook_at"
        )
        if (recipients and emailed_at is None) or (webhook and webhook_at is None)
    ]


def _claimed(notice_id: int, column: str) -> bool:
    """The channel's conditional UPDATE: only one process makes this call."""
    unsent = Notice.objects.filter(pk=notice_id, **{f"{column}__isnull": True})
    return unsent.update(**{column: timezone.now()}) == 1


def _released(notice_id: int, column: str) -> None:
    Notice.objects.filter(pk=notice_id).update(**{column: None})


def notice_deliver(*, notice_id: int) -> dict[str, str]:
    """The notice's email and webhook call, whichever is not yet made, each at most once.
    Returns what happened per channel ("sent" or the error)."""
    notice = Notice.objects.get(pk=notice_id)
    results: dict[str, str] = {}
    channels: list[tuple[str, str, Callable[[Notice], None]]] = []
    if notice.recipients and notice.emailed_at is None:
        channels.append(("email", "emailed_at", _email))
    if settings.NOTIFY_WEBHOOK_URL and notice.webhook_at is None:
        channels.append(("webhook", "webhook_at", webhook_post))
    for name, column, send in channels:
        if not _claimed(notice_id, column):
            continue
        try:
            send(notice)
        except Exception as error:
            _released(notice_id, column)
            results[name] = f"{type(error).__name__}: {error}"
            logger.warning("notice %s: %s failed: %s", notice.key, name, results[name])
        else:
            results[name] = "sent"
    errors = [f"{name}: {result}" for name, result in results.items() if result != "sent"]
    if not notice.recipients:
        errors.insert(0, NO_RECIPIENTS)
    if results or errors:
        Notice.objects.filter(pk=notice_id).update(error="\n".join(errors)[:2000])
    return results


def _email(notice: Notice) -> None:
    notice_email_send(notice=notice, language=editor_language())


def webhook_text(notice: Notice) -> str:
    return f"*{notice.subject}*\n{notice.body}"


def webhook_post(notice: Notice) -> None:
    """POST {"text": ...} to NOTIFY_WEBHOOK_URL, as Slack's incoming webhooks take it; any
    answer but 2xx raises."""
    data = json.dumps({"text": webhook_text(notice)}).encode()
    request = urllib.request.Request(  # noqa: S310 (the operator's URL, http or https)
        settings.NOTIFY_WEBHOOK_URL,
        data=data,
        headers={"Content-Type": "application/json; charset=utf-8"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:  # noqa: S310
        response.read()


@dataclass
class ScanReport:
    claimed: list[int] = field(default_factory=list)
    delivered: Counter[str] = field(default_factory=Counter)


def notices_scan(*, now: datetime | None = None) -> ScanReport:
    """What beat runs every five minutes: claims a notice for each new event, then delivers
    every recent notice with something left to send. Idempotent: a second scan sends nothing."""
    now = now or timezone.now()
    report = ScanReport(claimed=notices_claim(events=events_due(now=now)))
    for notice_id in notices_pending(now=now):
        for channel, result in notice_deliver(notice_id=notice_id).items():
            report.delivered[f"{channel} {'sent' if result == 'sent' else 'failed'}"] += 1
    return report
