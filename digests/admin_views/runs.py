"""The daily runs' history in the admin: a list and each run's page, read-only.

Loaded by the last line of digests/admin.py. Whoever may see the issues may see the runs that
built them (`view_digest`), so the Editors and Viewers groups need no permission of their own;
nobody adds, changes or deletes a run here: the pipeline writes them (digests/pipeline.py)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from digests.admin_views.readonly import ReadOnlyModelAdmin
from digests.editor_text import texts_shown
from digests.models import DailyRun
from digests.pipeline import run_took

# A run's page: what it did, then its figures.
RUN_FIELDS = (
    "started_at",
    "finished_at",
    "took",
    "trigger",
    "outcome",
    "suspect",
    "reasons_list",
    "day",
    "digest",
    "feeds_ok",
    "feeds_failed",
    "papers_new",
    "llm_calls",
    "estimated_cost",
)


@admin.register(DailyRun)
class DailyRunAdmin(ReadOnlyModelAdmin):
    """The history of `daily_run`, latest first; each run links to the issue it built."""

    list_display = [
        "started_at",
        "took",
        "trigger",
        "issue_day",
        "feeds",
        "new_papers",
        "llm",
        "cost",
        "outcome",
        "suspect",
    ]
    list_filter = ["outcome", "trigger", "suspect"]
    date_hierarchy = "started_at"
    fields = RUN_FIELDS
    readonly_fields = RUN_FIELDS

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        user = request.user
        return super().has_view_permission(request, obj) or user.has_perm("digests.view_digest")

    @admin.display(description=_("took"))
    def took(self, run: DailyRun) -> str:
        return run_took(run, now=timezone.now())

    @admin.display(description=_("day"), ordering="day")
    def issue_day(self, run: DailyRun) -> SafeString | str:
        if run.digest_id is None:
            return str(run.day or "-")
        url = reverse("admin:digests_digest_change", args=[run.digest_id])
        return format_html('<a href="{}">{}</a>', url, run.day)

    @admin.display(description=_("feeds ok / failed"))
    def feeds(self, run: DailyRun) -> str:
        return f"{run.feeds_ok} / {run.feeds_failed}"

    @admin.display(description=_("new papers"), ordering="papers_new")
    def new_papers(self, run: DailyRun) -> int:
        return run.papers_new

    @admin.display(description=_("LLM calls"), ordering="llm_calls")
    def llm(self, run: DailyRun) -> int:
        return run.llm_calls

    @admin.display(description=_("cost"), ordering="estimated_cost")
    def cost(self, run: DailyRun) -> str:
        return f"${run.estimated_cost:.4f}"

    @admin.display(description=_("reasons"))
    def reasons_list(self, run: DailyRun) -> SafeString | str:
        if not run.reasons:
            return "-"
        items = format_html_join("", "<li>{}</li>", ((reason,) for reason in reasons_shown(run)))
        return format_html('<ul class="run-reasons">{}</ul>', items)


def reasons_shown(run: DailyRun) -> list[str]:
    """The run's reasons in the editor's language (English for runs stored before their
    templates were kept)."""
    return texts_shown(run.reasons, run.reason_texts)
