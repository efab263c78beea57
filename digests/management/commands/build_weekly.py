from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, no_translations

from digests.build import BuildRefused
from digests.weekly import Week, week_parse, weekly_build


def parse_week(value: str | None) -> Week | None:
    if value is None:
        return None
    try:
        return week_parse(value)
    except ValueError as error:
        raise CommandError(f"--week: {error}") from None


class Command(BaseCommand):
    help = (
        "Builds (or rebuilds) the draft weekly issue of an ISO week from its sent daily issues, "
        "default the last complete week. Rebuilding keeps what editors changed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--week", help="ISO week, YYYY-Www (e.g. 2026-W33)")

    @no_translations  # the command speaks English, whatever LANGUAGE_CODE says
    def handle(self, *args: Any, **options: Any) -> None:
        try:
            weekly_build(week=parse_week(options["week"]), log=self.stdout.write)
        except BuildRefused as refused:
            raise CommandError(str(refused)) from refused
