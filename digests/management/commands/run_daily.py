from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, no_translations

from digests.build import BuildRefused
from digests.models import DailyRun
from digests.pipeline import daily_run


class Command(BaseCommand):
    help = (
        "The daily run as beat does it: fetch the enabled feeds (or only those given), then build "
        "the draft of the announcement day. Offline, pass a local feed file with --feed. "
        "Each run is recorded (see `runs`)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--feed",
            dest="feeds",
            action="append",
            metavar="URL_OR_PATH",
            help="fetch only this feed (URL, file:// URL or local path); repeatable",
        )

    @no_translations  # the command speaks English, whatever LANGUAGE_CODE says
    def handle(self, *args: Any, **options: Any) -> None:
        try:
            outcome = daily_run(
                urls=options["feeds"], log=self.stdout.write, trigger=DailyRun.Trigger.COMMAND
            )
        except BuildRefused as refused:
            raise CommandError(str(refused)) from refused
        if outcome.all_feeds_failed:
            raise CommandError(outcome.reason)
