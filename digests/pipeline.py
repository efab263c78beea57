"""The daily run as beat triggers it: fetch every feed, then build the day's draft."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .build import NO_ANNOUNCEMENTS, BuildReport, digest_build, latest_announcement_day
from .ingest import FeedFetchResult, feeds_fetch
from .models import Digest

logger = logging.getLogger(__name__)


@dataclass
class DailyOutcome:
    fetched: list[FeedFetchResult] = field(default_factory=list)
    build: BuildReport | None = None
    reason: str = ""

    @property
    def all_feeds_failed(self) -> bool:
        return bool(self.fetched) and not any(result.ok for result in self.fetched)

    def as_dict(self) -> dict[str, Any]:
        return {
            "feeds_ok": sum(1 for r in self.fetched if r.ok),
            "feeds_failed": sum(1 for r in self.fetched if not r.ok),
            "day": str(self.build.day) if self.build else None,
            "digest_id": self.build.digest_id if self.build else None,
            "reason": self.reason,
        }


def new_papers_fetched(results: Sequence[FeedFetchResult]) -> int:
    return sum(r.store.created for r in results if r.store is not None)


def daily_run(
    *, urls: Sequence[str] | None = None, log: Callable[[str], None] | None = None
) -> DailyOutcome:
    say = log or logger.info
    outcome = DailyOutcome(fetched=feeds_fetch(urls=urls, log=say))
    if outcome.all_feeds_failed:
        outcome.reason = "Every feed failed; nothing built. " + "; ".join(
            f"{r.feed_url}: {r.error}" for r in outcome.fetched
        )
        say(outcome.reason)
        return outcome
    day = latest_announcement_day()
    # Nothing new, and the latest day already has its issue: a holiday or a re-run. (When a
    # previous run stored the papers but died before building, the issue is still missing and
    # gets built now.)
    built = day is None or Digest.objects.filter(date=day).exists()
    if new_papers_fetched(outcome.fetched) == 0 and built:
        outcome.reason = f"No new announcements since {day}: no digest built ({NO_ANNOUNCEMENTS})."
        say(outcome.reason)
        return outcome
    outcome.build = digest_build(day=day, log=say)
    outcome.reason = outcome.build.reason
    return outcome
