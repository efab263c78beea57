"""`manage.py runs [--limit N]`: the daily runs' history as a table, latest first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandParser, no_translations
from django.utils import timezone

from digests.models import DailyRun
from digests.pipeline import run_took

COLUMNS = [
    "started (UTC)",
    "took",
    "trigger",
    "day",
    "feeds ok/failed",
    "papers",
    "LLM calls",
    "cost",
    "outcome",
    "suspect",
    "reason",
]
REASON_WIDTH = 70


def run_row(run: DailyRun, *, now: datetime) -> list[str]:
    reason = run.reasons[0] if run.reasons else ""
    if len(reason) > REASON_WIDTH:
        reason = reason[: REASON_WIDTH - 3] + "..."
    return [
        f"{run.started_at.astimezone(UTC):%Y-%m-%d %H:%M}",
        run_took(run, now=now),
        run.trigger,
        str(run.day or "-"),
        f"{run.feeds_ok}/{run.feeds_failed}",
        str(run.papers_new),
        str(run.llm_calls),
        f"${run.estimated_cost:.4f}",
        run.outcome,
        "SUSPECT" if run.suspect else "",
        reason,
    ]


def table_lines(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


class Command(BaseCommand):
    help = "The history of the daily run (fetch, then build), latest first."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, default=20, help="how many runs (default 20)")

    @no_translations  # the command speaks English, whatever LANGUAGE_CODE says
    def handle(self, *args: Any, **options: Any) -> None:
        runs = list(DailyRun.objects.order_by("-started_at")[: max(options["limit"], 1)])
        if not runs:
            self.stdout.write("No daily run recorded yet.")
            return
        now = timezone.now()
        for line in table_lines([COLUMNS, *(run_row(run, now=now) for run in runs)]):
            self.stdout.write(line)
