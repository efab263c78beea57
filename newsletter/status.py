"""The service's fuller status, for staff (`/admin/status/`) and operators (`manage.py status`):
the database, the broker, beat's last tick, the last daily run. `/healthz` stays the cheap check
for the load balancer.

Each part is healthy, healthy with a warning (worth a look, nothing is down), or unhealthy;
the command exits non-zero when any part is unhealthy, so an operator can alert on it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy
from django_celery_beat.models import PeriodicTask

from digests.models import DailyRun
from digests.pipeline import duration_label, run_stuck
from newsletter.celery import app

# Beat sends this task every minute (newsletter/schedule.py), so its last_run_at is beat's pulse.
# django-celery-beat writes last_run_at back every few minutes, hence a window of five.
BEAT_TICK_TASK = "subscribers.tasks.send_due_digests"
BEAT_TICK_WINDOW = timedelta(minutes=5)
BROKER_CONNECT_TIMEOUT = 3
# The run fires Sunday to Thursday; from Friday to Sunday evening the last one is days old.
LAST_SUCCESS_WINDOW = timedelta(days=2)
WEEKDAYS = range(0, 5)


@dataclass(frozen=True)
class Part:
    name: str
    ok: bool
    detail: str
    warning: bool = False

    @property
    def state(self) -> str:
        if not self.ok:
            return "UNHEALTHY"
        return "WARN" if self.warning else "OK"

    @property
    def label(self) -> str:
        """The part's name in the current language (the admin's page; the command's is English)."""
        return str(PART_LABELS.get(self.name, self.name))

    @property
    def state_label(self) -> str:
        return str(STATE_LABELS[self.state])


PART_LABELS = {
    "database": pgettext_lazy("status part", "database"),
    "broker": pgettext_lazy("status part", "broker"),
    "beat": pgettext_lazy("status part", "beat"),
    "daily run": pgettext_lazy("status part", "daily run"),
}
STATE_LABELS = {
    "OK": pgettext_lazy("status state", "OK"),
    "WARN": pgettext_lazy("status state", "WARN"),
    "UNHEALTHY": pgettext_lazy("status state", "UNHEALTHY"),
}


def status_parts(*, now: datetime | None = None) -> list[Part]:
    """Every part's state; a check that raises makes its part unhealthy, not the report."""
    now = now or timezone.now()
    checks: list[tuple[str, Callable[[datetime], Part]]] = [
        ("database", database_part),
        ("broker", broker_part),
        ("beat", beat_part),
        ("daily run", daily_run_part),
    ]
    return [checked(name, check, now) for name, check in checks]


def checked(name: str, check: Callable[[datetime], Part], now: datetime) -> Part:
    try:
        return check(now)
    except Exception as error:
        return Part(name, ok=False, detail=f"{type(error).__name__}: {error}")


def healthy(parts: list[Part]) -> bool:
    return all(part.ok for part in parts)


def database_part(now: datetime) -> Part:
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    took = (time.monotonic() - started) * 1000
    detail = gettext("%(vendor)s answered in %(ms)s ms") % {
        "vendor": connection.vendor,
        "ms": f"{took:.0f}",
    }
    return Part("database", ok=True, detail=detail)


def broker_configured() -> bool:
    return bool(settings.CELERY_BROKER_URL)


def broker_part(now: datetime) -> Part:
    if not broker_configured():
        if settings.CELERY_TASK_ALWAYS_EAGER:
            return Part("broker", ok=True, detail=gettext("eager: no broker (tasks run inline)"))
        detail = gettext("CELERY_BROKER_URL is empty and tasks are not eager")
        return Part("broker", ok=False, detail=detail)
    with app.connection_for_write(
        settings.CELERY_BROKER_URL, connect_timeout=BROKER_CONNECT_TIMEOUT
    ) as broker:
        where = broker.as_uri()  # the password masked
        try:
            broker.ensure_connection(max_retries=0)  # one attempt: no sleeping between retries
        except Exception as error:
            detail = gettext("%(where)s unreachable: %(error)s") % {"where": where, "error": error}
            return Part("broker", ok=False, detail=detail)
    return Part(
        "broker", ok=True, detail=gettext("%(where)s accepted a connection") % {"where": where}
    )


def beat_part(now: datetime) -> Part:
    tick = (
        PeriodicTask.objects.filter(task=BEAT_TICK_TASK, enabled=True)
        .exclude(last_run_at=None)
        .order_by("-last_run_at")
        .values_list("last_run_at", flat=True)
        .first()
    )
    if tick is None:
        if broker_configured():
            return Part(
                "beat",
                ok=False,
                detail=gettext("beat has never run %(task)s (is beat running? setup_schedule?)")
                % {"task": BEAT_TICK_TASK},
            )
        return Part("beat", ok=True, detail=gettext("no broker: beat is not expected to run"))
    age = now - tick
    detail = gettext("last tick %(age)s ago (%(task)s)") % {
        "age": duration_label(age.total_seconds()),
        "task": BEAT_TICK_TASK,
    }
    if age <= BEAT_TICK_WINDOW:
        return Part("beat", ok=True, detail=detail)
    # Without a broker beat cannot send anything: an old tick is a leftover, not an outage.
    return Part("beat", ok=not broker_configured(), warning=True, detail=detail)


def daily_run_part(now: datetime) -> Part:
    last = DailyRun.objects.order_by("-started_at").first()
    if last is None:
        detail = gettext("no daily run recorded yet")
        return Part("daily run", ok=True, warning=True, detail=detail)
    started = f"{timezone.localtime(last.started_at):%Y-%m-%d %H:%M %Z}"
    if run_stuck(last, now=now):
        return Part(
            "daily run",
            ok=False,
            detail=gettext(
                "stuck: running since %(started)s, longer than CELERY_TASK_TIME_LIMIT "
                "(%(limit)s s); its process was probably killed"
            )
            % {"started": started, "limit": settings.CELERY_TASK_TIME_LIMIT},
        )
    if last.outcome == DailyRun.Outcome.FAILED:
        why = "; ".join(last.reasons) or gettext("no reason recorded")
        detail = gettext("the run of %(started)s failed: %(why)s") % {
            "started": started,
            "why": why,
        }
        return Part("daily run", ok=False, detail=detail)
    if last.outcome == DailyRun.Outcome.RUNNING:
        detail = gettext("running since %(started)s") % {"started": started}
        return Part("daily run", ok=True, detail=detail)
    return last_success_part(last, now=now, started=started)


def last_success_part(last: DailyRun, *, now: datetime, started: str) -> Part:
    detail = gettext("the run of %(started)s: %(outcome)s") % {
        "started": started,
        "outcome": last.get_outcome_display(),
    }
    if last.day:
        detail += gettext(" (day %(day)s)") % {"day": last.day}
    if last.suspect:
        detail += gettext("; the day's counts look suspect")
    finished = last.finished_at or last.started_at
    today = now.astimezone(ZoneInfo(settings.DIGEST_SCHEDULE_TIMEZONE)).weekday()
    if now - finished > LAST_SUCCESS_WINDOW and today in WEEKDAYS:
        detail += gettext("; no successful run for %(age)s") % {
            "age": duration_label((now - finished).total_seconds())
        }
        return Part("daily run", ok=True, warning=True, detail=detail)
    return Part("daily run", ok=True, warning=last.suspect, detail=detail)
