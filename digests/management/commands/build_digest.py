from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, no_translations

from digests.build import BuildRefused, digest_build


def parse_day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--date must be YYYY-MM-DD, got {value!r}") from None


class Command(BaseCommand):
    help = (
        "Builds (or rebuilds) the draft digest of an arXiv announcement date, default the latest "
        "one stored. Rebuilding keeps what editors changed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", dest="day", help="announcement date, YYYY-MM-DD")

    @no_translations  # the command speaks English, whatever LANGUAGE_CODE says
    def handle(self, *args: Any, **options: Any) -> None:
        try:
            digest_build(day=parse_day(options["day"]), log=self.stdout.write)
        except BuildRefused as refused:
            raise CommandError(str(refused)) from refused
