"""`python manage.py send_digest --date YYYY-MM-DD`: send an approved issue now, or resume one
whose send was interrupted or paused; then wait for it and print the deliveries by status."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, no_translations
from django.utils import timezone

from digests.models import Digest
from subscribers.models import Delivery
from subscribers.sending.ledger import deliveries_unknown, delivery_counts
from subscribers.tasks import send_resume, send_start


class Command(BaseCommand):
    help = "Sends the approved issue of a date now, or resumes its interrupted send."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", required=True, type=date.fromisoformat, help="YYYY-MM-DD")
        parser.add_argument("--no-wait", action="store_true", help="Enqueue and return at once")
        parser.add_argument("--timeout", type=float, default=1800, help="Seconds to wait")
        parser.add_argument("--poll", type=float, default=1.0, help="Seconds between checks")

    @no_translations  # the command speaks English, whatever LANGUAGE_CODE says
    def handle(self, *args: Any, **options: Any) -> None:
        digest = Digest.objects.filter(date=options["date"]).first()
        if digest is None:
            raise CommandError(f"No issue for {options['date']}.")
        self._send(digest)
        if not options["no_wait"]:
            self._wait(digest, timeout=options["timeout"], poll=options["poll"])
        self._report(digest)

    def _send(self, digest: Digest) -> None:
        if digest.status == Digest.Status.DRAFT:
            raise CommandError(f"The issue of {digest.date} is a draft: approve it first.")
        if digest.status == Digest.Status.APPROVED:
            # "Now": an approval for later is brought forward (only while still approved).
            now = timezone.now()
            Digest.objects.filter(
                pk=digest.pk, status=Digest.Status.APPROVED, send_at__gt=now
            ).update(send_at=now, updated_at=now)
            Digest.objects.filter(
                pk=digest.pk, status=Digest.Status.APPROVED, send_at__isnull=True
            ).update(send_at=now, updated_at=now)
            report = send_start(digest.pk)
            if report.started:
                more = " (more follow as the rest is planned)" if report.next_reader else ""
                self.stdout.write(
                    f"Started: {report.deliveries} deliveries in {len(report.chunks)} chunks{more}."
                )
                return
            digest.refresh_from_db()
        if digest.status in (Digest.Status.SENDING, Digest.Status.PAUSED):
            if digest.status == Digest.Status.PAUSED:
                self.stdout.write(f"The send was paused: {digest.send_paused_reason}")
            resumed = send_resume(digest.pk)
            self.stdout.write(
                f"Resumed: {len(resumed.chunks)} chunks queued again, "
                f"{resumed.unknown} deliveries now unknown."
            )
        elif digest.status == Digest.Status.SENT:
            self.stdout.write(f"The issue of {digest.date} was sent at {digest.sent_at}.")

    def _wait(self, digest: Digest, *, timeout: float, poll: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = Digest.objects.filter(pk=digest.pk).values_list("status", flat=True).first()
            if state == Digest.Status.PAUSED:
                self.stderr.write("The send paused itself; run the command again to resume.")
                return
            if state != Digest.Status.SENDING:
                return
            time.sleep(poll)
        self.stderr.write(f"Still sending after {timeout:.0f} s; run the command again to resume.")

    def _report(self, digest: Digest) -> None:
        digest.refresh_from_db()
        self.stdout.write(f"Issue {digest.date}: {digest.status}")
        counts = delivery_counts(digest_id=digest.pk)
        for status in Delivery.Status.values:
            if count := counts[status]:
                self.stdout.write(f"  {status}: {count}")
        unknown = deliveries_unknown(digest_id=digest.pk)
        if unknown:
            self.stdout.write("May or may not have received it (not resent):")
            for row in unknown:
                self.stdout.write(f"  {row.email}")
