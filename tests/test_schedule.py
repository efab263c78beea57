"""The beat schedule (newsletter/schedule.py): `setup_schedule`, and changing it in the admin."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from newsletter.schedule import schedule
from tests.admin_forms import client_for, form_fields

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


def test_the_weekly_draft_is_built_on_the_weekly_send_day_after_the_daily_send(
    settings,  # type: ignore[no-untyped-def]
) -> None:
    call_command("setup_schedule")

    task = PeriodicTask.objects.get(task="digests.tasks.build_weekly")
    # Saturday 07:30 Seoul: the week's daily issues have gone out at 07:00, and editors have
    # until WEEKLY_SEND_TIME (09:00) to review.
    assert (task.crontab.day_of_week, task.crontab.hour, task.crontab.minute) == ("sat", "7", "30")
    assert str(task.crontab.timezone) == "Asia/Seoul"


def test_the_schedule_time_is_a_setting(settings) -> None:  # type: ignore[no-untyped-def]
    settings.DIGEST_SCHEDULE_HOUR = 21
    settings.DIGEST_SCHEDULE_MINUTE = 5

    call_command("setup_schedule")

    crontab = PeriodicTask.objects.get(name=DAILY_RUN.name).crontab
    assert (crontab.hour, crontab.minute) == ("21", "5")


# --- The schedule in the admin ---------------------------------------------------------------


def test_a_superuser_changes_the_daily_runs_time_in_the_admin(admin_user: User) -> None:
    daily = CrontabSchedule.objects.create(
        minute="45", hour="20", day_of_week="sun,mon,tue,wed,thu", timezone="America/New_York"
    )
    task = PeriodicTask.objects.create(
        name="daily digest", task="digests.tasks.run_daily", crontab=daily
    )
    later = CrontabSchedule.objects.create(
        minute="15", hour="22", day_of_week="*", timezone="America/New_York"
    )
    client = client_for(admin_user)
    url = reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])

    fields = form_fields(client.get(url).content.decode(), "periodictask_form")
    fields["crontab"] = str(later.pk)
    response = client.post(url, {**fields, "_save": "Save"})

    assert response.status_code == 302, response.content.decode()[:3000]
    task.refresh_from_db()
    assert task.crontab == later

    crontab_url = reverse("admin:django_celery_beat_crontabschedule_change", args=[later.pk])
    fields = form_fields(client.get(crontab_url).content.decode(), "crontabschedule_form")
    fields["hour"] = "23"
    assert client.post(crontab_url, {**fields, "_save": "Save"}).status_code == 302
    task.refresh_from_db()
    assert task.crontab is not None and task.crontab.hour == "23"
