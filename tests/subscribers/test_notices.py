"""Editors told (subscribers/notices.py): one notice per event, by email through the configured
backend (the fake Mailgun API, or Django's outbox) and to a fake Slack-compatible webhook."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core import mail
from django.core.management import call_command
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from digests.models import DailyRun, Digest, DigestSection
from newsletter.schedule import schedule
from subscribers import notices
from subscribers.models import Delivery, Notice
from subscribers.rendering import render_caches_clear
from subscribers.tasks import notices_send, send_due_digests, send_start
from tests.admin_forms import staff_in
from tests.fakes.esp_server import FakeESP
from tests.fakes.webhook_server import FakeWebhook
from tests.issue_factory import issue_create
from tests.subscribers.factories import subscriber_create
from tests.subscribers.test_delivery import approved_issue, categories, readers

pytestmark = pytest.mark.django_db

SITE = "https://insights.example.org"
EDITORS = ["chief@example.org", "desk@example.org"]
# 12:00 in Seoul: the next send (07:00 Asia/Seoul) is 19 hours away.
NOW = datetime(2026, 8, 14, 3, 0, tzinfo=UTC)
# 06:10 in Seoul: the send at 07:00 is 50 minutes away.
BEFORE_SEND = datetime(2026, 8, 14, 21, 10, tzinfo=UTC)
DAY = date(2026, 8, 13)


@pytest.fixture(autouse=True)
def _editors_told(settings: Any) -> Iterator[None]:
    settings.SITE_URL = SITE
    settings.EDITOR_NOTIFY_EMAILS = list(EDITORS)
    settings.EDITOR_LANGUAGE = "en"
    settings.NOTIFY_WEBHOOK_URL = ""
    settings.NOTIFY_APPROVAL_LEAD_MINUTES = 60
    settings.DIGEST_SEND_TIMEZONE = "Asia/Seoul"
    settings.DIGEST_SEND_HOUR = 7
    settings.DIGEST_SEND_MINUTE = 0
    settings.CELERY_TASK_ALWAYS_EAGER = True
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def webhook(settings: Any) -> Iterator[FakeWebhook]:
    with FakeWebhook() as hook:
        settings.NOTIFY_WEBHOOK_URL = hook.url
        yield hook


@pytest.fixture
def mailgun(settings: Any) -> Iterator[FakeESP]:
    with FakeESP() as fake:
        settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
        settings.ANYMAIL = {
            "MAILGUN_API_KEY": "key",
            "MAILGUN_SENDER_DOMAIN": "mg.example.org",
            "MAILGUN_API_URL": fake.base_url + "/v3",
        }
        settings.DEFAULT_FROM_EMAIL = "Daily AI Insights <digest@mg.example.org>"
        yield fake


def built_draft(day: date = DAY, **fields: Any) -> Digest:
    digest = issue_create(day=day, papers_per_section=2)
    fields = {"built_at": timezone.now() - timedelta(hours=1), **fields}
    Digest.objects.filter(pk=digest.pk).update(**fields)
    digest.refresh_from_db()
    return digest


def scan() -> notices.ScanReport:
    return notices.notices_scan()


def only_notice() -> Notice:
    assert Notice.objects.count() == 1, list(Notice.objects.values_list("key", flat=True))
    notice = Notice.objects.get()
    return notice


def html_of(message: mail.EmailMessage) -> str:
    assert isinstance(message, mail.EmailMultiAlternatives)
    return str(message.alternatives[0][0])


# --- A draft ready ------------------------------------------------------------------------------


SUSPECT_DAY = {
    "day": "2026-08-13",
    "kind": "suspect",
    "suspect": True,
    "summary": "1 of 2 categories look short or stale.",
    "categories": [
        {
            "category": "cs.AI",
            "received": {"new": 30, "cross": 10, "replaced": 5},
            "known": 2,
            "usual": {"median": 32.0, "days": 20},
            "expected": None,
            "feeds": ["cs.AI"],
            "suspect": False,
            "reasons": [],
        },
        {
            "category": "cs.CL",
            "received": {"new": 4, "cross": 1, "replaced": 0},
            "known": 4,
            "usual": {"median": 41.0, "days": 20},
            "expected": {"new": 43, "cross": 12, "replaced": 9},
            "feeds": ["cs.CL"],
            "suspect": True,
            "reasons": ["short: 4 new entries, under 0.5 x the usual 41"],
        },
    ],
    "feeds": [],
}


def test_a_built_draft_is_told_once_with_its_figures_and_a_link_to_its_page() -> None:
    digest = built_draft(integrity=SUSPECT_DAY)
    section = digest.sections.first()
    assert section is not None
    DigestSection.objects.filter(pk=section.pk).update(
        flags=[{"code": "language", "message": "English"}, {"code": "copied", "message": "x"}]
    )

    report = scan()

    notice = only_notice()
    assert (notice.kind, notice.key) == ("draft_ready", f"draft_ready:{digest.pk}")
    assert notice.digest == digest
    assert report.claimed == [notice.pk]
    [message] = mail.outbox
    assert message.to == EDITORS
    assert message.subject == "[Daily AI Insights] The draft of 2026-08-13 is ready"
    sections = digest.sections.count()
    assert f"{digest.paper_count} papers, {sections} sections, 2 flags to review." in message.body
    assert "cs.CL: received 4 new, 1 cross, 4 already known, usual 41 new, listing 43 new" in (
        message.body
    )
    assert "short: 4 new entries" in message.body
    assert "cs.AI" not in message.body  # not suspect
    link = f"{SITE}/admin/digests/digest/{digest.pk}/change/"
    assert f"Review it: {link}" in message.body
    assert "Approved, it goes out at 2026-08-15 07:00 Asia/Seoul." in message.body
    assert f'<a href="{link}"' in html_of(message)
    notice.refresh_from_db()
    assert notice.emailed_at is not None and notice.recipients == EDITORS and not notice.error

    again = scan()

    assert again.claimed == [] and not again.delivered
    assert len(mail.outbox) == 1 and Notice.objects.count() == 1


def test_the_notices_are_in_korean_by_default(settings: Any) -> None:
    settings.EDITOR_LANGUAGE = "ko"
    built_draft()

    scan()

    [message] = mail.outbox
    assert message.subject == "[Daily AI Insights] 2026-08-13 호 초안이 준비되었습니다"
    assert "검토하기: " in message.body and "편집자 알림" in message.body
    assert '<html lang="ko">' in html_of(message)


def test_a_draft_not_yet_built_or_already_approved_is_not_told() -> None:
    issue_create(day=DAY)  # no built_at
    built_draft(
        DAY - timedelta(days=1),
        status=Digest.Status.APPROVED,
        send_at=NOW + timedelta(minutes=20),
        reviewed_at=NOW,
    )

    scan()

    assert Notice.objects.count() == 0 and mail.outbox == []


# --- Nothing to publish -------------------------------------------------------------------------


def daily_run(outcome: str, reasons: list[str], **fields: Any) -> DailyRun:
    started = NOW - timedelta(minutes=20)
    fields = {"finished_at": started + timedelta(minutes=5), **fields}
    return DailyRun.objects.create(
        started_at=started, day=DAY, outcome=outcome, reasons=reasons, **fields
    )


def test_a_run_with_nothing_to_publish_and_a_failed_run_are_told_with_their_reasons() -> None:
    holiday = daily_run(
        DailyRun.Outcome.NOTHING,
        ["No new announcements for 2026-08-13: no digest built (no mailing today)."],
        feeds_ok=3,
    )
    broken = daily_run(
        DailyRun.Outcome.FAILED,
        ["3 of 3 feeds failed", "https://rss.arxiv.org/rss/cs.AI: HTTP 503"],
        feeds_failed=3,
        suspect=True,
    )
    daily_run(DailyRun.Outcome.BUILT, [])
    daily_run(DailyRun.Outcome.RUNNING, [], finished_at=None)

    scan()

    keys = set(Notice.objects.values_list("key", flat=True))
    assert keys == {f"nothing:run-{holiday.pk}", f"nothing:run-{broken.pk}"}
    by_subject = {message.subject: message.body for message in mail.outbox}
    assert len(by_subject) == 2
    nothing = by_subject["[Daily AI Insights] 2026-08-13: nothing to publish"]
    assert "- No new announcements for 2026-08-13: no digest built (no mailing today)." in nothing
    assert "Feeds: 3 read, 0 failed; 0 new papers." in nothing
    failed = by_subject["[Daily AI Insights] 2026-08-13: the daily run failed"]
    assert "- 3 of 3 feeds failed\n- https://rss.arxiv.org/rss/cs.AI: HTTP 503" in failed
    assert "The day's counts look short or stale." in failed
    assert f"Admin: {SITE}/admin/" in failed

    scan()
    assert len(mail.outbox) == 2


# --- A send finished or paused ------------------------------------------------------------------


def deliveries(digest: Digest, **counts: int) -> None:
    for status, count in counts.items():
        for _ in range(count):
            reader = subscriber_create()
            Delivery.objects.create(
                digest=digest, subscriber=reader, email=reader.email, variant="", status=status
            )


def test_a_finished_send_is_told_with_the_ledgers_counts() -> None:
    digest = built_draft(status=Digest.Status.SENT, sent_at=NOW - timedelta(minutes=3))
    deliveries(digest, sent=3, failed=1, unknown=2, skipped=1, bounced=1)

    scan()

    notice = only_notice()
    assert (notice.kind, notice.key) == ("sent", f"sent:{digest.pk}")
    [message] = mail.outbox
    assert message.subject == "[Daily AI Insights] The issue of 2026-08-13 is sent"
    assert "Delivered 3, failed 2, unknown 2, skipped 1 (of 8)." in message.body

    scan()
    assert len(mail.outbox) == 1


def test_a_pause_is_told_and_a_later_pause_after_a_resume_is_a_new_event() -> None:
    first_pause = NOW - timedelta(minutes=30)
    digest = built_draft(
        status=Digest.Status.PAUSED,
        send_paused_at=first_pause,
        send_paused_reason="3 errors in a row; the last: 500 fake fault",
    )

    scan()
    scan()

    [message] = mail.outbox
    assert message.subject == "[Daily AI Insights] The send of 2026-08-13 is paused"
    assert "Why: 3 errors in a row; the last: 500 fake fault" in message.body

    Digest.objects.filter(pk=digest.pk).update(send_paused_at=NOW)  # resumed, paused again
    scan()

    assert Notice.objects.filter(kind="paused").count() == 2
    assert len(mail.outbox) == 2


def test_a_send_that_finishes_in_the_due_check_tells_the_editors_after_commit() -> None:
    digest = built_draft(status=Digest.Status.SENDING, sending_started_at=NOW, send_planned_at=NOW)
    deliveries(digest, sent=2)

    with TestCase.captureOnCommitCallbacks(execute=True):
        result = send_due_digests.delay().get()

    assert result["finished"] == [digest.pk]
    assert only_notice().kind == "sent"
    [message] = mail.outbox
    assert message.subject == "[Daily AI Insights] The issue of 2026-08-13 is sent"


def test_a_send_that_pauses_itself_tells_the_editors_through_the_esp(
    mailgun: FakeESP, settings: Any
) -> None:
    settings.DELIVERY_PAUSE_AFTER_ERRORS = 1
    settings.DELIVERY_MAX_RETRIES = 0
    mailgun.script = [500]  # the digest's first call; the notice's call is answered
    digest = approved_issue()
    readers(3, categories()[:1])
    render_caches_clear()

    with TestCase.captureOnCommitCallbacks(execute=True):
        send_start(digest.pk)

    digest.refresh_from_db()
    assert digest.status == Digest.Status.PAUSED
    assert only_notice().kind == "paused"
    [call] = mailgun.calls
    assert call.addresses == EDITORS
    assert call.subject == "[Daily AI Insights] The send of 2026-08-13 is paused"
    assert "Why: 1 errors in a row" in call.text


# --- Time close and nobody acted ----------------------------------------------------------------


def test_a_draft_not_approved_is_told_when_the_send_time_is_close() -> None:
    with time_machine.travel(BEFORE_SEND - timedelta(minutes=30), tick=False):
        digest = built_draft(built_at=BEFORE_SEND - timedelta(hours=10))
        scan()  # 80 minutes before the send: only "draft ready"
    assert list(Notice.objects.values_list("kind", flat=True)) == ["draft_ready"]

    with time_machine.travel(BEFORE_SEND, tick=False):
        scan()
        scan()

    due = Notice.objects.get(kind="approval_due")
    assert due.key == f"approval_due:{digest.pk}:2026-08-14T22:00:00+00:00"
    message = mail.outbox[-1]
    assert len(mail.outbox) == 2
    assert message.subject == "[Daily AI Insights] The issue of 2026-08-13 is not approved yet"
    assert "The send time, 2026-08-15 07:00 Asia/Seoul, is 50 minutes away." in message.body


def test_a_weekly_draft_is_told_against_the_weekly_send_time(settings: Any) -> None:
    """Not the daily 07:00: a weekly draft goes out on WEEKLY_SEND_DAY at WEEKLY_SEND_TIME."""
    settings.WEEKLY_SEND_DAY, settings.WEEKLY_SEND_TIME = "sat", "09:00"
    with time_machine.travel(BEFORE_SEND, tick=False):  # 50 minutes before the daily send
        weekly = built_draft(
            day=date(2026, 8, 16),
            kind=Digest.Kind.WEEKLY,
            built_at=BEFORE_SEND - timedelta(hours=10),
        )
        scan()
    assert list(Notice.objects.values_list("kind", flat=True)) == ["draft_ready"]
    assert "2026-08-15 09:00 Asia/Seoul" in Notice.objects.get().body
    assert weekly.kind == Digest.Kind.WEEKLY


def test_a_draft_built_inside_the_lead_time_is_told_once_as_ready() -> None:
    with time_machine.travel(BEFORE_SEND, tick=False):
        built_draft(built_at=BEFORE_SEND - timedelta(minutes=5))
        scan()

    assert list(Notice.objects.values_list("kind", flat=True)) == ["draft_ready"]


def test_an_issue_approved_automatically_is_told_before_it_goes_out() -> None:
    auto = built_draft(
        status=Digest.Status.APPROVED,
        send_at=NOW + timedelta(minutes=40),
        approved_by="auto-approve",
        auto_approved=True,
    )
    reviewed = issue_create(day=DAY - timedelta(days=1))
    Digest.objects.filter(pk=reviewed.pk).update(
        status=Digest.Status.APPROVED,
        send_at=NOW + timedelta(minutes=40),
        reviewed_at=NOW - timedelta(hours=1),
        built_at=NOW - timedelta(hours=2),
    )

    scan()

    notice = only_notice()
    assert (notice.kind, notice.digest_id) == ("send_due", auto.pk)
    [message] = mail.outbox
    assert message.subject == "[Daily AI Insights] The issue of 2026-08-13 goes out soon"
    assert "(in 40 minutes). No editor has reviewed it (approved by auto-approve)." in message.body


# --- Who is told --------------------------------------------------------------------------------


def test_without_a_list_the_active_staff_of_the_editors_group_are_told(settings: Any) -> None:
    settings.EDITOR_NOTIFY_EMAILS = []
    staff_in("Editors", "ed")
    staff_in("Editors", "gone").__class__.objects.filter(username="gone").update(is_active=False)
    staff_in("Editors", "nomail").__class__.objects.filter(username="nomail").update(email="")
    staff_in("Viewers", "vi")
    User.objects.create_user(username="reader", email="reader@example.com")
    built_draft()

    scan()

    assert [message.to for message in mail.outbox] == [["ed@example.com"]]
    assert only_notice().recipients == ["ed@example.com"]


def test_with_nobody_to_tell_the_notice_records_why_and_sends_nothing(settings: Any) -> None:
    settings.EDITOR_NOTIFY_EMAILS = []
    built_draft()

    scan()
    scan()

    notice = only_notice()
    assert mail.outbox == []
    assert notice.emailed_at is None and notice.recipients == []
    assert notice.error.startswith("no recipients: EDITOR_NOTIFY_EMAILS is empty")


# --- Through the ESP, and to the webhook --------------------------------------------------------


def test_the_email_goes_through_the_configured_esp_once(mailgun: FakeESP) -> None:
    built_draft()

    scan()
    scan()

    [call] = mailgun.calls
    assert call.addresses == EDITORS
    assert call.subject == "[Daily AI Insights] The draft of 2026-08-13 is ready"
    assert "Review it: " in call.text and "<a href=" in call.html


def test_an_esp_failure_is_recorded_and_the_next_scan_sends_it(mailgun: FakeESP) -> None:
    mailgun.script = [500]
    built_draft()

    report = scan()

    notice = only_notice()
    assert report.delivered == {"email failed": 1}
    assert notice.emailed_at is None and notice.error.startswith("email: ")
    assert mailgun.calls == []

    scan()
    scan()

    notice.refresh_from_db()
    assert len(mailgun.calls) == 1
    assert notice.emailed_at is not None and notice.error == ""


def test_the_webhook_gets_the_text_once(webhook: FakeWebhook) -> None:
    digest = built_draft()

    scan()
    scan()

    [text] = webhook.texts
    assert text.startswith("*[Daily AI Insights] The draft of 2026-08-13 is ready*\n")
    assert f"{SITE}/admin/digests/digest/{digest.pk}/change/" in text
    assert webhook.content_types == ["application/json; charset=utf-8"]
    notice = only_notice()
    assert notice.webhook_at is not None and notice.emailed_at is not None


def test_a_failing_webhook_is_tried_again_without_sending_the_email_twice(
    webhook: FakeWebhook,
) -> None:
    webhook.script = [500]
    built_draft()

    scan()

    notice = only_notice()
    assert webhook.statuses == [500] and webhook.texts == []
    assert notice.webhook_at is None and notice.emailed_at is not None
    assert notice.error.startswith("webhook: HTTPError: HTTP Error 500")
    assert len(mail.outbox) == 1

    scan()

    notice.refresh_from_db()
    assert webhook.statuses == [500, 200] and len(webhook.texts) == 1
    assert notice.webhook_at is not None and notice.error == ""
    assert len(mail.outbox) == 1


def test_a_removed_webhook_is_given_up_after_a_day(webhook: FakeWebhook) -> None:
    webhook.fail_with = 404
    built_draft()

    scan()
    scan()
    with time_machine.travel(NOW + timedelta(hours=notices.NOTICE_RETRY_HOURS, minutes=5)):
        scan()

    assert webhook.statuses == [404, 404]
    assert "HTTP Error 404" in only_notice().error
    assert len(mail.outbox) == 1


def test_a_channel_another_scan_has_claimed_is_not_sent_again() -> None:
    built_draft()
    notices.notices_claim(events=notices.events_due())
    notice = only_notice()
    Notice.objects.filter(pk=notice.pk).update(emailed_at=NOW)  # the other scan's claim

    assert notices.notice_deliver(notice_id=notice.pk) == {}
    assert mail.outbox == []


def test_a_superuser_reads_what_the_editors_were_told(admin_client: Any) -> None:
    built_draft()
    scan()
    url = reverse("admin:subscribers_notice_changelist")

    page = admin_client.get(url).content.decode()

    assert "The draft of 2026-08-13 is ready" in page
    add = admin_client.get(reverse("admin:subscribers_notice_add"))
    assert add.status_code == 403


# --- The task and the schedule ------------------------------------------------------------------


def test_the_beat_task_scans_and_reports() -> None:
    built_draft()

    result = notices_send.delay().get()

    assert result == {"claimed": [only_notice().pk], "delivered": {"email sent": 1}}
    assert notices_send.delay().get() == {"claimed": [], "delivered": {}}


def test_the_schedule_runs_the_notices_every_five_minutes() -> None:
    [entry] = [e for e in schedule() if e.task == "subscribers.tasks.notices_send"]

    call_command("setup_schedule")

    task = PeriodicTask.objects.get(name=entry.name)
    assert task.enabled and task.crontab is not None
    assert (task.crontab.minute, task.crontab.hour) == ("*/5", "*")


def test_an_editor_reads_the_notices_but_a_viewer_does_not(
    editor_client: Any, viewer_client: Any
) -> None:
    built_draft()
    scan()
    url = reverse("admin:subscribers_notice_changelist")

    assert "The draft of 2026-08-13 is ready" in editor_client.get(url).content.decode()
    assert viewer_client.get(url).status_code == 403
