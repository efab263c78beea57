"""The service's status: `manage.py status` (its lines and exit code) and the staff page."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from django.utils import translation
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from digests.models import DailyRun
from newsletter.status import BEAT_TICK_TASK, beat_part, status_parts
from tests.admin_forms import page_text

pytestmark = pytest.mark.django_db

# A Wednesday evening in New York (01:00 UTC Thursday).
NOW = datetime(2026, 8, 13, 1, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def eager_without_broker(settings) -> None:  # type: ignore[no-untyped-def]
    """The embedded default: no broker, tasks inline."""
    settings.CELERY_BROKER_URL = ""
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture(autouse=True)
def _in_english() -> Iterator[None]:
    """The parts read in English, as `manage.py status` writes them (the admin's page speaks the
    editor's language: tests/test_admin_language.py)."""
    with translation.override("en"):
        yield


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on: connections to it are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_create(**fields: Any) -> DailyRun:
    values: dict[str, Any] = {
        "started_at": NOW - timedelta(hours=4),
        "finished_at": NOW - timedelta(hours=4) + timedelta(minutes=3),
        "outcome": DailyRun.Outcome.BUILT,
        "feeds_ok": 1,
    }
    return DailyRun.objects.create(**(values | fields))


def beat_ticked(at: datetime) -> None:
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.create(
        name="Delivery: send due digests",
        task=BEAT_TICK_TASK,
        interval=every_minute,
        last_run_at=at,
    )


def status_lines(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """part name -> "STATE - detail", from the command's output."""
    out = capsys.readouterr().out
    return dict(line.split(": ", 1) for line in out.splitlines())


# --- manage.py status --------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_status_prints_each_part_and_exits_zero_when_healthy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_create()

    call_command("status")

    lines = status_lines(capsys)
    assert list(lines) == ["database", "broker", "beat", "daily run"]
    assert lines["database"].startswith("OK - ")
    assert lines["broker"] == "OK - eager: no broker (tasks run inline)"
    assert lines["beat"] == "OK - no broker: beat is not expected to run"
    assert lines["daily run"] == "OK - the run of 2026-08-12 21:00 UTC: draft built"


@time_machine.travel(NOW, tick=False)
def test_status_exits_non_zero_when_the_last_daily_run_failed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_create(started_at=NOW - timedelta(days=1))
    run_create(outcome=DailyRun.Outcome.FAILED, reasons=["Every feed failed; nothing built."])

    with pytest.raises(CommandError, match="unhealthy: daily run"):
        call_command("status")

    assert status_lines(capsys)["daily run"] == (
        "UNHEALTHY - the run of 2026-08-12 21:00 UTC failed: Every feed failed; nothing built."
    )


def test_status_exits_non_zero_when_the_broker_is_unreachable(
    settings: Any,
    closed_port: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings.CELERY_BROKER_URL = f"redis://:secret@127.0.0.1:{closed_port}/0"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    run_create(started_at=datetime.now(UTC))

    with pytest.raises(CommandError, match="unhealthy: broker, beat"):
        call_command("status")

    lines = status_lines(capsys)
    assert lines["broker"].startswith(f"UNHEALTHY - redis://:**@127.0.0.1:{closed_port}/0")
    assert "unreachable" in lines["broker"]
    assert "secret" not in lines["broker"]
    assert lines["beat"].startswith("UNHEALTHY - beat has never run")


@time_machine.travel(NOW, tick=False)
def test_a_run_left_running_past_the_time_limit_is_reported_stuck(
    settings: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings.CELERY_TASK_TIME_LIMIT = 1800
    run_create(started_at=NOW - timedelta(minutes=31), finished_at=None, outcome="running")

    with pytest.raises(CommandError):
        call_command("status")

    assert status_lines(capsys)["daily run"].startswith(
        "UNHEALTHY - stuck: running since 2026-08-13 00:29 UTC"
    )


@time_machine.travel(NOW, tick=False)
def test_a_run_in_progress_is_healthy(capsys: pytest.CaptureFixture[str]) -> None:
    run_create(started_at=NOW - timedelta(minutes=5), finished_at=None, outcome="running")

    call_command("status")

    assert status_lines(capsys)["daily run"] == "OK - running since 2026-08-13 00:55 UTC"


@time_machine.travel(NOW, tick=False)
def test_no_successful_run_for_days_on_a_weekday_is_a_warning_not_a_failure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_create(
        started_at=NOW - timedelta(days=3),
        finished_at=NOW - timedelta(days=3),
        outcome=DailyRun.Outcome.NOTHING,
    )

    call_command("status")

    assert status_lines(capsys)["daily run"] == (
        "WARN - the run of 2026-08-10 01:00 UTC: nothing to publish; no successful run for 3d 00h"
    )


@time_machine.travel(datetime(2026, 8, 16, 12, 0, tzinfo=UTC), tick=False)  # a Sunday
def test_the_weekends_gap_is_no_warning(capsys: pytest.CaptureFixture[str]) -> None:
    run_create(
        started_at=datetime(2026, 8, 14, 0, 45, tzinfo=UTC),  # Thursday evening in New York
        finished_at=datetime(2026, 8, 14, 0, 50, tzinfo=UTC),
    )

    call_command("status")

    assert status_lines(capsys)["daily run"].startswith("OK - ")


@time_machine.travel(NOW, tick=False)
def test_a_suspect_last_run_is_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    run_create(suspect=True, day=datetime(2026, 8, 12).date())

    call_command("status")

    assert status_lines(capsys)["daily run"] == (
        "WARN - the run of 2026-08-12 21:00 UTC: draft built (day 2026-08-12); "
        "the day's counts look suspect"
    )


@time_machine.travel(NOW, tick=False)
def test_beat_is_healthy_with_a_recent_tick_and_unhealthy_with_an_old_one_when_a_broker_is_set(
    settings: Any,
) -> None:
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"  # not contacted by this check

    beat_ticked(NOW - timedelta(minutes=1))
    recent = beat_part(NOW)
    PeriodicTask.objects.update(last_run_at=NOW - timedelta(minutes=12))
    old = beat_part(NOW)

    assert (recent.state, recent.detail) == ("OK", f"last tick 1m 00s ago ({BEAT_TICK_TASK})")
    assert (old.state, old.detail) == ("UNHEALTHY", f"last tick 12m 00s ago ({BEAT_TICK_TASK})")


@time_machine.travel(NOW, tick=False)
def test_without_a_broker_an_old_beat_tick_is_only_a_warning() -> None:
    beat_ticked(NOW - timedelta(hours=2))

    assert beat_part(NOW).state == "WARN"


def test_a_check_that_raises_makes_its_part_unhealthy_not_the_report(settings) -> None:  # type: ignore[no-untyped-def]
    settings.DIGEST_SCHEDULE_TIMEZONE = "Nowhere/Atlantis"
    run_create()

    parts = {part.name: part for part in status_parts(now=NOW)}

    assert parts["database"].ok
    assert not parts["daily run"].ok
    assert parts["daily run"].detail.startswith("ZoneInfoNotFoundError")


# --- The staff page, and /healthz ------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_staff_see_the_status_page(editor_client: Client) -> None:
    run_create(outcome=DailyRun.Outcome.FAILED, reasons=["Stopped by an error: RuntimeError: x"])

    page = editor_client.get(reverse("status"))

    assert page.status_code == 200
    text = page_text(page)
    assert "Something is unhealthy" in text
    assert "database OK sqlite answered" in text or "database OK postgresql answered" in text
    assert "broker OK eager: no broker (tasks run inline)" in text
    assert "daily run UNHEALTHY the run of 2026-08-12 21:00 UTC failed" in text
    assert reverse("admin:digests_dailyrun_changelist") in page.content.decode()


def test_the_status_page_sends_anonymous_visitors_to_the_login(client: Client) -> None:
    page = client.get("/admin/status/")

    assert page.status_code == 302
    assert page["Location"] == "/admin/login/?next=/admin/status/"


def test_the_status_page_is_not_for_signed_in_readers_without_staff(
    client: Client, django_user_model: Any
) -> None:
    client.force_login(django_user_model.objects.create_user("reader"))

    page = client.get("/admin/status/")

    assert page.status_code == 302
    assert page["Location"].startswith("/admin/login/")


def test_healthz_stays_cheap_and_public(client: Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"ok": True}
