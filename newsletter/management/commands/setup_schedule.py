from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser, no_translations

from newsletter.schedule import schedule_sync


class Command(BaseCommand):
    help = "Creates the beat schedule (django-celery-beat): the tasks that are missing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset", action="store_true", help="restore the default time even if edited"
        )

    @no_translations  # the command speaks English, whatever LANGUAGE_CODE says
    def handle(self, *args: Any, **options: Any) -> None:
        for task, state in schedule_sync(reset=options["reset"]):
            self.stdout.write(f"{task.name}: {state} ({task.crontab})")
