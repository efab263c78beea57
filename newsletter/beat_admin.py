"""django-celery-beat's admin pages with the two texts its package leaves in English: the task
field's name ("Task Name", a plain verbose_name: the task filter's title and the column of the
schedules' task lists) and the message after "Run selected tasks" (its plural endings are glued
in English, so no catalogue can translate it). Everything else comes from our catalogue
(newsletter/third_party_messages.py). Loaded by `NewsletterConfig.ready`, after the package's
own registrations.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy, ngettext
from django_celery_beat import admin as beat
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

TASK_NAME = gettext_lazy("task name")
# django-celery-beat's message after running tasks: its first word is the count.
_RUN_MESSAGE = re.compile(r"^\s*(\d+)\b")


class TaskFilter(admin.AllValuesFieldListFilter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.title = TASK_NAME  # the field's verbose_name otherwise


class PeriodicTaskInline(beat.PeriodicTaskInline):
    fields = ("name", "task_name", "args", "kwargs")
    readonly_fields = fields

    @admin.display(description=TASK_NAME)
    def task_name(self, obj: PeriodicTask) -> str:
        return obj.task


class PeriodicTaskAdmin(beat.PeriodicTaskAdmin):
    list_filter = [
        ("task", TaskFilter) if f == "task" else f for f in beat.PeriodicTaskAdmin.list_filter
    ]

    @admin.action(description=gettext_lazy("Run selected tasks"))
    def run_tasks(self, request: HttpRequest, queryset: Any) -> None:
        request.beat_run_tasks = True  # type: ignore[attr-defined]
        try:
            super().run_tasks(request, queryset)
        finally:
            request.beat_run_tasks = False  # type: ignore[attr-defined]

    def message_user(self, request: HttpRequest, message: Any, *args: Any, **kwargs: Any) -> None:
        # The package's message, in English or (a language without it falls back to
        # LANGUAGE_CODE's catalogue) in another language: it starts with the count.
        found = (
            _RUN_MESSAGE.match(str(message)) if getattr(request, "beat_run_tasks", False) else None
        )
        if found:
            count = int(found[1])
            message = ngettext("%(count)d task was run.", "%(count)d tasks were run.", count) % {
                "count": count
            }
        super().message_user(request, message, *args, **kwargs)


class ClockedScheduleAdmin(beat.ClockedScheduleAdmin):
    inlines = [PeriodicTaskInline]


class CrontabScheduleAdmin(beat.CrontabScheduleAdmin):
    inlines = [PeriodicTaskInline]


class SolarScheduleAdmin(beat.SolarScheduleAdmin):
    inlines = [PeriodicTaskInline]


class IntervalScheduleAdmin(beat.IntervalScheduleAdmin):
    inlines = [PeriodicTaskInline]


ADMINS: tuple[tuple[type[Any], type[admin.ModelAdmin[Any]]], ...] = (
    (PeriodicTask, PeriodicTaskAdmin),
    (ClockedSchedule, ClockedScheduleAdmin),
    (CrontabSchedule, CrontabScheduleAdmin),
    (SolarSchedule, SolarScheduleAdmin),
    (IntervalSchedule, IntervalScheduleAdmin),
)


def beat_admins_register(site: admin.AdminSite) -> None:
    for model, model_admin in ADMINS:
        if site.is_registered(model):
            site.unregister(model)
        site.register(model, model_admin)
