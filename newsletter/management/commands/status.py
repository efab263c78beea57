"""`manage.py status`: each part of the service on its own line; exits 1 when any is unhealthy."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, no_translations

from newsletter.status import healthy, status_parts


class Command(BaseCommand):
    help = (
        "The state of the database, the broker, beat and the last daily run, one per line. "
        "Exits non-zero when any part is unhealthy (for an operator's alerting)."
    )

    @no_translations  # the command speaks English, whatever LANGUAGE_CODE says
    def handle(self, *args: Any, **options: Any) -> None:
        parts = status_parts()
        for part in parts:
            self.stdout.write(f"{part.name}: {part.state} - {part.detail}")
        if not healthy(parts):
            names = ", ".join(part.name for part in parts if not part.ok)
            raise CommandError(f"unhealthy: {names}")
