"""The beat schedule of every app, declared in one place (the project's, as it names both apps'
tasks). Rows live in django-celery-beat's tables, so operators can change the times in the
admin; `setup_schedule` (newsletter/management/commands/) creates what is missing.

Tasks are named by their dotted path, so this module imports no app's tasks."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django_celery_beat.models import CrontabSchedule, PeriodicTask


@dataclass(frozen=True)
class ScheduledTask:
    name: str
    task: str
    description: str
    minute: str
    hour: str
    day_of_week: str
    timezone: str


def schedule() -> list[ScheduledTask]:
    return [
        # At DIGEST_SCHEDULE_HOUR:MINUTE (default 20:45) America/New_York, Sunday to Thursday:
        # 45 minutes after each arXiv announcement (20:00 US Eastern; none Friday or Saturday).
        ScheduledTask(
            name="Daily digest: fetch papers and build the draft",
            task="digests.tasks.run_daily",
            description="Fetches the enabled feeds, then builds the draft of the announcement day.",
            minute=str(settings.DIGEST_SCHEDULE_MINUTE),
            hour=str(settings.DIGEST_SCHEDULE_HOUR),
            day_of_week=settings.DIGEST_SCHEDULE_DAYS,
            timezone=settings.DIGEST_SCHEDULE_TIMEZONE,
        ),
        # On WEEKLY_SEND_DAY (default Saturday), 30 minutes after the daily send time (default
        # 07:30) in DIGEST_SEND_TIMEZONE (Asia/Seoul): the week's daily issues, Friday's
        # included, have gone out; editors have until WEEKLY_SEND_TIME (09:00) to review.
        ScheduledTask(
            name="Weekly digest: build the draft",
            task="digests.tasks.build_weekly",
            description="Builds the draft weekly issue from the week's sent daily issues.",
            minute=str(weekly_build_time()[1]),
            hour=str(weekly_build_time()[0]),
            day_of_week=str(settings.WEEKLY_SEND_DAY),
            timezone=settings.DIGEST_SEND_TIMEZONE,
        ),
        # Every minute: start (or resume) the send of approved digests whose send time has come.
        ScheduledTask(
            name="Delivery: send due digests",
            task="subscribers.tasks.send_due_digests",
            description="Sends approved digests whose send time has come; resumes stalled sends.",
            minute="*",
            hour="*",
            day_of_week="*",
            timezone="UTC",
        ),
        # Every five minutes: with DIGEST_AUTO_APPROVE on, approve drafts nobody acted on by
        # the auto-approval time (does nothing when the setting is off).
        ScheduledTask(
            name="Digest: automatic approval",
            task="digests.tasks.auto_approve",
            description="With DIGEST_AUTO_APPROVE on, approves untouched drafts at the set time.",
            minute="*/5",
            hour="*",
            day_of_week="*",
            timezone="UTC",
        ),
        # Every five minutes: tell the editors what needs them (a draft ready, nothing to
        # publish, a send finished or paused, an approval or a send time close), once each.
        ScheduledTask(
            name="Editors: notices",
            task="subscribers.tasks.notices_send",
            description="Tells the editors (email, webhook) once per event that needs them.",
            minute="*/5",
            hour="*",
            day_of_week="*",
            timezone="UTC",
        ),
        # Every day at 03:30 UTC: delete signups never confirmed within PENDING_PURGE_DAYS.
        ScheduledTask(
            name="Readers: purge unconfirmed signups",
            task="subscribers.tasks.purge_pending",
            description="Deletes pending subscribers older than PENDING_PURGE_DAYS.",
            minute="30",
            hour="3",
            day_of_week="*",
            timezone="UTC",
        ),
    ]


def weekly_build_time() -> tuple[int, int]:
    """(hour, minute): 30 minutes after DIGEST_SEND_HOUR:MINUTE, the daily send time."""
    minutes = (settings.DIGEST_SEND_HOUR * 60 + settings.DIGEST_SEND_MINUTE + 30) % (24 * 60)
    return divmod(minutes, 60)


def crontab_for(entry: ScheduledTask) -> CrontabSchedule:
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=entry.minute,
        hour=entry.hour,
        day_of_week=entry.day_of_week,
        day_of_month="*",
        month_of_year="*",
        timezone=entry.timezone,
    )
    return crontab


def schedule_sync(*, reset: bool = False) -> list[tuple[PeriodicTask, str]]:
    """Creates each scheduled task if missing; `reset` restores the declared times."""
    results = []
    for entry in schedule():
        existing = PeriodicTask.objects.filter(name=entry.name).first()
        if existing and not reset:
            results.append((existing, "already present"))
            continue
        task, created = PeriodicTask.objects.update_or_create(
            name=entry.name,
            defaults={
                "task": entry.task,
                "crontab": crontab_for(entry),
                "interval": None,
                "description": entry.description,
                "enabled": True,
            },
        )
        results.append((task, "created" if created else "reset"))
    return results
