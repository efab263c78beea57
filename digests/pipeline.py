"""The daily run as beat triggers it: fetch every feed, then build the day's draft.

Each run keeps a `DailyRun` row: written "running" when it starts, finished with what it did
(feeds, new papers, the day and issue built, LLM calls and cost, outcome and reasons) however it
ends. A process killed outright leaves its row "running"; `status` reports it as stuck."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext_noop

from .build import NO_ANNOUNCEMENTS, BuildReport, digest_build, latest_announcement_day
from .editor_text import EditorText, text_json, unindent
from .ingest import FeedFetchResult, feeds_fetch
from .integrity import DayIntegrity, day_integrity, integrity_lines, latest_claimed_day
from .models import DailyRun, Digest, LLMCall

logger = logging.getLogger(__name__)

Log = Callable[[str], None]

# The way out when no feed answers (no network, a proxy, arXiv down): the sample feed kept in this
# repository, or a feed file or URL the operator has.
SAMPLE_FEED = "tests/fixtures/feeds/arxiv_rss2_sample.xml"
OFFLINE_HINT = EditorText(
    gettext_noop(
        "To try it offline, run it on the sample feed: `bash scripts/run.sh --feed %(feed)s` "
        "(or `manage.py run_daily` with the same --feed), or --feed FILE_OR_URL with a feed file "
        "or a URL you can reach."
    ),
    {"feed": SAMPLE_FEED},
)


@dataclass
class DailyOutcome:
    fetched: list[FeedFetchResult] = field(default_factory=list)
    build: BuildReport | None = None
    reason: str = ""
    day: date | None = None
    run_id: int | None = None
    # Nothing new although the feeds claim a later day: that day's verdict (holiday or broken).
    empty_day: DayIntegrity | None = None

    @property
    def all_feeds_failed(self) -> bool:
        return bool(self.fetched) and not any(result.ok for result in self.fetched)

    @property
    def failed_feeds(self) -> list[FeedFetchResult]:
        return [result for result in self.fetched if not result.ok]

    def as_dict(self) -> dict[str, Any]:
        return {
            "feeds_ok": sum(1 for r in self.fetched if r.ok),
            "feeds_failed": len(self.failed_feeds),
            "day": str(self.build.day) if self.build else None,
            "digest_id": self.build.digest_id if self.build else None,
            "reason": self.reason,
            "run_id": self.run_id,
        }


def new_papers_fetched(results: Sequence[FeedFetchResult]) -> int:
    return sum(r.store.created for r in results if r.store is not None)


def daily_run(
    *,
    urls: Sequence[str] | None = None,
    log: Log | None = None,
    trigger: str = DailyRun.Trigger.SCHEDULE,
    day: date | None = None,
) -> DailyOutcome:
    """Fetches, then builds the announcement day (or `day`: an editor's re-fetch of a suspect
    day rebuilds that one); the run is recorded whatever happens.

    An exception is recorded on the run (outcome failed) and raised again."""
    say = log or logger.info
    run = DailyRun.objects.create(started_at=timezone.now(), trigger=trigger)
    outcome = DailyOutcome(run_id=run.pk)
    try:
        daily_steps(outcome=outcome, urls=urls, say=say, day=day)
    except BaseException as error:
        # BaseException too: Celery's soft time limit and Ctrl-C must not leave the row "running"
        # (a hard time limit kills the process: `status` reports that row as stuck).
        run_finish_quietly(run=run, outcome=outcome, error=error)
        raise
    run_finish(run=run, outcome=outcome)
    return outcome


def daily_steps(
    *, outcome: DailyOutcome, urls: Sequence[str] | None, say: Log, day: date | None = None
) -> None:
    outcome.fetched = feeds_fetch(urls=urls, log=say)
    if outcome.all_feeds_failed:
        errors = "; ".join(f"{r.feed_url}: {r.error}" for r in outcome.fetched)
        outcome.reason = EditorText(
            gettext_noop("Every feed failed; nothing built. %(errors)s. %(hint)s"),
            {"errors": errors.rstrip("."), "hint": OFFLINE_HINT},
        )
        say(outcome.reason)
        return
    if day is None:
        day = latest_announcement_day()
        # Nothing new, and the latest day already has its issue: a holiday, a re-run, or feeds
        # that gave nothing new when they should have (judged below). (When a previous run
        # stored the papers but died before building, the issue is still missing and gets
        # built now.)
        outcome.day = day
        built = day is None or Digest.objects.filter(date=day).exists()
        if new_papers_fetched(outcome.fetched) == 0 and built:
            outcome.empty_day = empty_day_judge(latest=day)
            params = {"day": str(day), "why": NO_ANNOUNCEMENTS}
            if outcome.empty_day is not None:
                template = gettext_noop(
                    "No new announcements since %(day)s: no digest built (%(why)s). %(verdict)s"
                )
                params["verdict"] = outcome.empty_day.summary
            else:
                template = gettext_noop(
                    "No new announcements since %(day)s: no digest built (%(why)s)."
                )
            outcome.reason = EditorText(template, params)
            say(outcome.reason)
            return
    outcome.day = day
    outcome.build = digest_build(day=day, log=say)
    outcome.reason = outcome.build.reason


def empty_day_judge(*, latest: date | None) -> DayIntegrity | None:
    """The verdict on a day the feeds claim but gave no new paper for: a day without
    announcements (every feed read, nothing anywhere) or feeds that look broken (suspect)."""
    claimed = latest_claimed_day()
    if claimed is None or (latest is not None and claimed <= latest):
        return None
    return day_integrity(day=claimed)


# --- The run's row ------------------------------------------------------------------------------


def run_outcome(outcome: DailyOutcome, error: BaseException | None) -> str:
    if error is not None or outcome.all_feeds_failed:
        return DailyRun.Outcome.FAILED
    if outcome.build is not None and outcome.build.built:
        return DailyRun.Outcome.BUILT
    return DailyRun.Outcome.NOTHING


def run_reasons(outcome: DailyOutcome, error: BaseException | None) -> list[str]:
    """Why the run ended as it did, for people: the outcome's reason, feeds that failed, the
    error that stopped it."""
    reasons = [outcome.reason] if outcome.reason else []
    if outcome.failed_feeds and not outcome.all_feeds_failed:
        reasons.append(
            EditorText(
                gettext_noop("%(failed)s of %(count)s feeds failed"),
                {"failed": len(outcome.failed_feeds), "count": len(outcome.fetched)},
            )
        )
        reasons += [f"{r.feed_url}: {r.error}" for r in outcome.failed_feeds]
    reasons += suspect_reasons(outcome.build)
    if outcome.empty_day is not None and outcome.empty_day.suspect:
        reasons += [unindent(line) for line in integrity_lines(outcome.empty_day)[1:]]
    if error is not None:
        said = f"{type(error).__name__}: {error}".rstrip(": ")
        reasons.append(EditorText(gettext_noop("Stopped by an error: %(error)s"), {"error": said}))
    return reasons


def suspect_reasons(build: BuildReport | None) -> list[str]:
    """The build's verdict on a suspect day (digests/integrity.py): its summary, each suspect
    category with its figures, the feeds' problems."""
    if build is None or not build.suspect:
        return []
    return [unindent(line) for line in build.integrity_lines]


def run_llm_usage(run: DailyRun, day: date | None) -> tuple[int, Decimal]:
    """The calls this run made for its day (cache hits cost nothing), counted from the usage
    rows, so a build that failed after calling the LLM still shows what it spent."""
    if day is None:
        return 0, Decimal("0")
    calls = LLMCall.objects.filter(digest_date=day, cached=False, created_at__gte=run.started_at)
    return calls.count(), calls.aggregate(cost=Sum("cost"))["cost"] or Decimal("0")


def run_finish(*, run: DailyRun, outcome: DailyOutcome, error: BaseException | None = None) -> None:
    build = outcome.build
    run.day = build.day if build and build.day else outcome.day
    run.digest_id = build.digest_id if build else None
    run.feeds_ok = len(outcome.fetched) - len(outcome.failed_feeds)
    run.feeds_failed = len(outcome.failed_feeds)
    run.papers_new = new_papers_fetched(outcome.fetched)
    run.llm_calls, run.estimated_cost = run_llm_usage(run, run.day)
    run.outcome = run_outcome(outcome, error)
    run.suspect = bool(suspect_reasons(build)) or bool(
        outcome.empty_day is not None and outcome.empty_day.suspect
    )
    reasons = run_reasons(outcome, error)
    run.reasons = [str(reason) for reason in reasons]
    run.reason_texts = [text_json(reason) for reason in reasons]
    run.finished_at = timezone.now()
    run.save()


def run_finish_quietly(*, run: DailyRun, outcome: DailyOutcome, error: BaseException) -> None:
    """Records a failed run without hiding the error that failed it (the database may be the
    thing that broke)."""
    try:
        run_finish(run=run, outcome=outcome, error=error)
    except Exception:
        logger.exception("The failed daily run %s could not be recorded", run.pk)


# --- How a run reads (the admin's list, `manage.py runs`, `manage.py status`) ---------------


def run_stuck(run: DailyRun, *, now: datetime) -> bool:
    """Still "running" after Celery's hard time limit: its process was killed."""
    limit = timedelta(seconds=int(settings.CELERY_TASK_TIME_LIMIT))
    return run.outcome == DailyRun.Outcome.RUNNING and now - run.started_at > limit


def duration_label(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600:02d}h"


def run_took(run: DailyRun, *, now: datetime) -> str:
    """How long the run took; for one still running, how long so far, and whether it is stuck."""
    if run.finished_at is not None:
        return duration_label((run.finished_at - run.started_at).total_seconds())
    so_far = duration_label((now - run.started_at).total_seconds())
    return f"stuck ({so_far})" if run_stuck(run, now=now) else f"running ({so_far})"
