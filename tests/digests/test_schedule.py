from __future__ import annotations

import pytest
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from digests.schedule import schedule

DAILY_RUN = schedule()[0]

pytestmark = pytest.mark.django_db


def test_setup_schedule_creates_the_daily_run_after_the_arxiv_announcement(capsys) -> None:  # type: ignore[no-untyped-def]
    call_command("setup_schedule")

    task = PeriodicTask.objects.get(name=DAILY_RUN.name)
    assert task.task == "digests.tasks.run_daily"
    assert task.enabled
    assert (task.crontab.hour, task.crontab.minute) == ("20", "45")
    assert task.crontab.day_of_week == "sun,mon,tue,wed,thu"
    assert str(task.crontab.timezone) == "America/New_York"
    assert "created" in capsys.readouterr().out


def test_setup_schedule_keeps_a_time_an_operator_changed_unless_reset(settings) -> None:  # type: ignore[no-untyped-def]
    call_command("setup_schedule")
    task = PeriodicTask.objects.get(name=DAILY_RUN.name)
    task.crontab.hour = "22"
    task.crontab.save()

    call_command("setup_schedule")
    assert PeriodicTask.objects.get(name=DAILY_RUN.name).crontab.hour == "22"

    call_command("setup_schedule", "--reset")
    assert PeriodicTask.objects.get(name=DAILY_RUN.name).crontab.hour == "20"


def test_the_schedule_time_is_a_setting(settings) -> None:  # type: ignore[no-untyped-def]
    settings.DIGEST_SCHEDULE_HOUR = 21
    settings.DIGEST_SCHEDULE_MINUTE = 5

    call_command("setup_schedule")

    crontab = PeriodicTask.objects.get(name=DAILY_RUN.name).crontab
    assert (crontab.hour, crontab.minute) == ("21", "5")
