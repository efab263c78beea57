"""Fetching a suspect day again, from the admin: the feeds read anew, the same day rebuilt.

The rebuild (digest_build) takes the day's papers that no other issue has, so the papers the
first fetch missed join the same issue and none is repeated; editors' sections are kept; the
day's integrity is judged again. Only a draft is fetched again: an approved or sent issue is
what the readers get (or got).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.utils.translation import gettext as _

from .build import BuildRefused
from .models import DailyRun, Digest
from .pipeline import daily_run

logger = logging.getLogger(__name__)


class RefetchRefused(Exception):
    """The day cannot be fetched again; the message says why, for editors."""


@dataclass
class RefetchOutcome:
    day: date
    feeds_ok: int = 0
    feeds_failed: int = 0
    papers_before: int = 0
    papers_after: int = 0
    suspect: bool = False
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "feeds_ok": self.feeds_ok,
            "feeds_failed": self.feeds_failed,
            "papers_added": self.papers_after - self.papers_before,
            "suspect": self.suspect,
            "reason": self.reason,
        }


def refetch_check(*, digest: Digest) -> None:
    """Raises RefetchRefused unless the issue is a daily draft."""
    if digest.kind == Digest.Kind.WEEKLY:
        raise RefetchRefused(
            _(
                "The issue of %(date)s is a weekly issue: it has no feeds of its own. Rebuild "
                "it with build_weekly once the week's daily issues are complete."
            )
            % {"date": digest.date}
        )
    if digest.status != Digest.Status.DRAFT:
        raise RefetchRefused(
            _(
                "The issue of %(date)s is %(status)s: only a draft can be fetched again. "
                "Cancel its approval first if it has not been sent."
            )
            % {"date": digest.date, "status": digest.get_status_display()}
        )


def day_refetch(*, day: date, log: Callable[[str], None] | None = None) -> RefetchOutcome:
    """Fetches every enabled feed again and rebuilds the draft of `day`."""
    say = log or logger.info
    outcome = RefetchOutcome(day=day)
    digest = Digest.objects.defer("chart_png").filter(date=day).first()
    if digest is not None:
        try:
            refetch_check(digest=digest)
        except RefetchRefused as refused:
            outcome.reason = str(refused)
            say(outcome.reason)
            return outcome
        outcome.papers_before = digest.paper_count
    try:
        # A run like the daily one, kept in the run history (trigger "admin").
        run = daily_run(day=day, log=say, trigger=DailyRun.Trigger.ADMIN)
    except BuildRefused as refused:  # approved while the feeds were read
        outcome.reason = str(refused)
        say(outcome.reason)
        return outcome
    outcome.feeds_ok = sum(1 for result in run.fetched if result.ok)
    outcome.feeds_failed = len(run.fetched) - outcome.feeds_ok
    report = run.build
    if report is None:  # every feed failed: nothing rebuilt
        outcome.papers_after = outcome.papers_before
        outcome.reason = run.reason
        return outcome
    outcome.papers_after = report.paper_count if report.built else outcome.papers_before
    outcome.suspect = report.suspect
    outcome.reason = report.reason
    return outcome
