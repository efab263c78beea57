"""The beat schedule, declared in one place. Rows live in django-celery-beat's tables, so
operators can change the time in the admin; `setup_schedule` creates what is missing."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django_celery_beat.models import CrontabSchedule, PeriodicTask


@dataclass(frozen=True)
class ScheduledTask:
    name: str
    task: str
    description: str


# Fires at DIGEST_SCHEDULE_HOUR:MINUTE (default 20:45) in America/New_York on Sunday to Thursday,
# i.e. 45 minutes after each arXiv announcement (20:00 US Eastern; none on Friday or Saturday).
DAILY_RUN = ScheduledTask(
    name="Daily digest: fetch papers and build the draft",
    task="digests.tasks.run_daily",
    description="Fetches the enabled feeds, then builds the draft issue of the announcement day.",
)


def daily_crontab() -> CrontabSchedule:
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=str(settings.DIGEST_SCHEDULE_MINUTE),
        hour=str(settings.DIGEST_SCHEDULE_HOUR),
        day_of_week=settings.DIGEST_SCHEDULE_DAYS,
        day_of_month="*",
        month_of_year="*",
        timezone=settings.DIGEST_SCHEDULE_TIMEZONE,
    )
    return crontab


def schedule_sync(*, reset: bool = False) -> tuple[PeriodicTask, bool]:
    """Creates the daily run's PeriodicTask if missing; `reset` restores the default time."""
    existing = PeriodicTask.objects.filter(name=DAILY_RUN.name).first()
    if existing and not reset:
        return existing, False
    task, created = PeriodicTask.objects.update_or_create(
        name=DAILY_RUN.name,
        defaults={
            "task": DAILY_RUN.task,
            "crontab": daily_crontab(),
            "interval": None,
            "description": DAILY_RUN.description,
            "enabled": True,
        },
    )
    return task, created
