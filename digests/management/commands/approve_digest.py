from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser, no_translations
from django.utils import timezone

from digests.approval import ApprovalRefused, digest_approve, send_timezone
from digests.models import Digest


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--date must be YYYY-MM-DD, got {value!r}") from None


def _send_at(value: str | None) -> datetime | None:
    """ISO 8601; without an offset it is read in DIGEST_SEND_TIMEZONE."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--send-at must be ISO 8601, got {value!r}") from None
    return when.replace(tzinfo=send_timezone()) if timezone.is_naive(when) else when


class Command(BaseCommand):
    help = "Approves a draft issue for sending, at --send-at or the next daily send time."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", required=True, help="The issue's date, YYYY-MM-DD")
        parser.add_argument(
            "--send-at",
            help=(
                "When to send, ISO 8601 (e.g. 2026-08-14T07:00); without an offset in "
                f"DIGEST_SEND_TIMEZONE ({settings.DIGEST_SEND_TIMEZONE}). "
                "Default: the next daily send time."
            ),
        )
        parser.add_argument("--by", default="", help="Who approves (recorded)")

    @no_translations  # the command speaks English, whatever LANGUAGE_CODE says
    def handle(self, *args: Any, **options: Any) -> None:
        day = _date(options["date"])
        send_at = _send_at(options["send_at"])
        digest = Digest.objects.filter(date=day).first()
        if digest is None:
            raise CommandError(f"No issue for {day}: build it first (build_digest --date {day}).")
        try:
            digest = digest_approve(digest=digest, send_at=send_at, by=options["by"] or "command")
        except ApprovalRefused as error:
            raise CommandError(str(error)) from None
        assert digest.send_at is not None
        utc = digest.send_at.astimezone(ZoneInfo("UTC"))
        local = digest.send_at.astimezone(send_timezone())
        self.stdout.write(
            f"Issue {digest.date}: status {digest.status}, sends at "
            f"{utc:%Y-%m-%d %H:%M} UTC ({local:%Y-%m-%d %H:%M} {settings.DIGEST_SEND_TIMEZONE})"
        )
        if digest.send_at <= timezone.now():
            self.stdout.write(
                self.style.WARNING("The send time has passed: it goes out at the next beat check.")
            )
