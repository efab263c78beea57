"""The daily run's history: a row per run, however it ends; `manage.py runs`; the admin's list."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from digests import build
from digests.models import DailyRun, Digest, Feed, FetchCount, LLMCall, Paper
from digests.pipeline import daily_run
from digests.tasks import run_daily
from tests.admin_forms import page_text
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "feeds"
SAMPLE = str(FIXTURES / "arxiv_rss2_sample.xml")
BROKEN = str(FIXTURES / "malformed_rss2.xml")
DAY = date(2026, 8, 13)
NOW = datetime(2026, 8, 14, 1, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_network_feeds() -> None:
    Feed.objects.all().delete()  # the default arXiv feed would need the network


def run_create(**fields: Any) -> DailyRun:
    values: dict[str, Any] = {
        "started_at": NOW - timedelta(minutes=10),
        "finished_at": NOW - timedelta(minutes=8),
        "outcome": DailyRun.Outcome.BUILT,
        "day": DAY,
        "feeds_ok": 1,
        "papers_new": 12,
    }
    return DailyRun.objects.create(**(values | fields))


# --- What each run records -------------------------------------------------------------------


def test_a_run_that_builds_the_draft_records_what_it_did(offline: None) -> None:
    call_command("run_daily", "--feed", SAMPLE)

    run = DailyRun.objects.get()
    digest = Digest.objects.get()
    assert run.trigger == DailyRun.Trigger.COMMAND
    assert run.outcome == DailyRun.Outcome.BUILT
    assert (run.day, run.digest) == (DAY, digest)
    assert (run.feeds_ok, run.feeds_failed) == (1, 0)
    assert run.papers_new == Paper.objects.count() > 0
    assert run.finished_at is not None and run.finished_at >= run.started_at
    assert (run.llm_calls, run.estimated_cost) == (0, Decimal("0"))  # offline: rules only
    assert run.reasons == []
    assert run.suspect is False


def test_a_run_counts_the_llm_calls_it_made_and_their_cost(fake: FakeOpenAI) -> None:
    daily_run(urls=[SAMPLE])

    run = DailyRun.objects.get()
    made = LLMCall.objects.filter(cached=False)
    assert run.llm_calls == made.count() == len(fake.calls) > 0
    assert run.estimated_cost == Digest.objects.get().estimated_cost > 0


def test_the_scheduled_task_records_its_run_as_triggered_by_the_schedule() -> None:
    result = run_daily(urls=[BROKEN])

    run = DailyRun.objects.get()
    assert run.trigger == DailyRun.Trigger.SCHEDULE
    assert result["run_id"] == run.pk


def test_a_run_on_a_short_day_is_marked_suspect_with_the_builds_figures(offline: None) -> None:
    # cs.AI usually brings 100 new papers; the sample feed has 16.
    for days_back in range(1, 21):
        FetchCount.objects.create(
            fetched_at=NOW - timedelta(days=days_back),
            arxiv_category="cs.AI",
            announced_on=DAY - timedelta(days=days_back),
            new=100,
        )

    daily_run(urls=[SAMPLE])

    run = DailyRun.objects.get()
    assert run.outcome == DailyRun.Outcome.BUILT
    assert run.suspect is True
    assert run.reasons[0].startswith(f"Integrity of {DAY}: suspect.")
    assert run.reasons[1].startswith("suspect cs.AI: received 16 new, 4 cross")


def test_a_run_where_every_feed_failed_is_recorded_as_failed_with_each_feeds_error(
    tmp_path: Path,
) -> None:
    missing = str(tmp_path / "nowhere.xml")

    with pytest.raises(CommandError):
        call_command("run_daily", "--feed", missing, "--feed", BROKEN)

    run = DailyRun.objects.get()
    assert run.outcome == DailyRun.Outcome.FAILED
    assert (run.feeds_ok, run.feeds_failed, run.papers_new) == (0, 2, 0)
    assert run.reasons[0].startswith("Every feed failed; nothing built.")
    assert "malformed XML" in run.reasons[0]
    assert run.finished_at is not None and run.digest is None


def test_a_run_with_nothing_to_publish_says_why(offline: None) -> None:
    daily_run(urls=[SAMPLE])

    daily_run(urls=[SAMPLE])

    second = DailyRun.objects.order_by("started_at").last()
    assert second is not None
    assert second.outcome == DailyRun.Outcome.NOTHING
    assert (second.day, second.digest, second.papers_new) == (DAY, None, 0)
    assert second.reasons == [
        f"No new announcements since {DAY}: no digest built ({build.NO_ANNOUNCEMENTS})."
    ]


def test_a_run_where_some_feeds_failed_still_builds_and_names_them(
    offline: None, tmp_path: Path
) -> None:
    daily_run(urls=[SAMPLE, BROKEN])

    run = DailyRun.objects.get()
    assert run.outcome == DailyRun.Outcome.BUILT
    assert (run.feeds_ok, run.feeds_failed) == (1, 1)
    assert run.reasons[0] == "1 of 2 feeds failed"
    assert run.reasons[1].startswith(f"{BROKEN}: ")


def test_a_build_the_issue_refuses_is_recorded_as_failed_and_raised_again(offline: None) -> None:
    # New papers for a day whose issue is already approved: the build refuses to touch it.
    Digest.objects.create(date=DAY, title="t", status=Digest.Status.APPROVED)

    with pytest.raises(CommandError, match="approved; only drafts are rebuilt"):
        call_command("run_daily", "--feed", SAMPLE)

    run = DailyRun.objects.get()
    assert run.outcome == DailyRun.Outcome.FAILED
    assert run.day == DAY
    assert run.papers_new > 0
    assert run.reasons == [
        f"Stopped by an error: BuildRefused: The issue of {DAY} is approved; "
        "only drafts are rebuilt."
    ]
    assert run.finished_at is not None


def test_a_crash_in_the_build_after_llm_calls_keeps_the_cost_and_is_raised_again(
    fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    def chart_crashes(**kwargs: Any) -> bytes:
        raise RuntimeError("the chart's font is missing")

    monkeypatch.setattr(build, "chart_render", chart_crashes)

    with pytest.raises(RuntimeError, match="font is missing"):
        daily_run(urls=[SAMPLE])

    run = DailyRun.objects.get()
    assert run.outcome == DailyRun.Outcome.FAILED
    assert run.reasons == ["Stopped by an error: RuntimeError: the chart's font is missing"]
    assert run.llm_calls == len(fake.calls) > 0
    assert run.estimated_cost > 0
    assert Digest.objects.count() == 0


def test_an_interrupted_run_is_not_left_running(
    offline: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(**kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(build, "papers_classify", interrupted)

    with pytest.raises(KeyboardInterrupt):
        daily_run(urls=[SAMPLE])

    run = DailyRun.objects.get()
    assert run.outcome == DailyRun.Outcome.FAILED
    assert run.reasons == ["Stopped by an error: KeyboardInterrupt"]


# --- manage.py runs ------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_runs_prints_the_history_latest_first(capsys: pytest.CaptureFixture[str]) -> None:
    run_create(
        started_at=NOW - timedelta(days=1, minutes=5),
        finished_at=NOW - timedelta(days=1, minutes=3, seconds=55),
        llm_calls=14,
        estimated_cost=Decimal("0.0123"),
    )
    run_create(
        started_at=NOW - timedelta(minutes=10),
        finished_at=NOW - timedelta(minutes=9, seconds=58),
        outcome=DailyRun.Outcome.FAILED,
        feeds_ok=0,
        feeds_failed=2,
        papers_new=0,
        day=None,
        reasons=["Every feed failed; nothing built. https://rss.arxiv.org/rss/cs.AI: HTTP 503"],
    )

    call_command("runs")

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "started", "(UTC)", "took", "trigger", "day", "feeds", "ok/failed", "papers",
        "LLM", "calls", "cost", "outcome", "suspect", "reason",
    ]  # fmt: skip
    assert lines[1].split()[:10] == [
        "2026-08-14", "00:50", "2s", "schedule", "-", "0/2", "0", "0", "$0.0000", "failed",
    ]  # fmt: skip
    assert "Every feed failed; nothing built." in lines[1]
    assert lines[2].split() == [
        "2026-08-13", "00:55", "1m", "05s", "schedule", "2026-08-13", "1/0", "12", "14",
        "$0.0123", "built",
    ]  # fmt: skip
    assert len(lines) == 3


@time_machine.travel(NOW, tick=False)
def test_runs_limits_the_table_and_shows_a_killed_run_as_stuck(
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_create(started_at=NOW - timedelta(days=2))
    run_create(
        started_at=NOW - timedelta(hours=3), finished_at=None, outcome=DailyRun.Outcome.RUNNING
    )

    call_command("runs", "--limit", "1")

    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert "stuck (3h 00m)" in lines[1] and "running" in lines[1]


def test_runs_says_when_there_is_no_history(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("runs")

    assert capsys.readouterr().out.strip() == "No daily run recorded yet."


# --- The admin -----------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_editors_see_the_runs_in_the_admin_but_cannot_add_change_or_delete_them(
    editor_client: Any,
) -> None:
    digest = Digest.objects.create(date=DAY, title="t")
    run = run_create(
        digest=digest,
        suspect=True,
        llm_calls=14,
        estimated_cost=Decimal("0.0123"),
        reasons=["cs.CL: 3 papers, usually 40"],
    )

    listing = editor_client.get(reverse("admin:digests_dailyrun_changelist"))

    assert listing.status_code == 200
    text = page_text(listing)
    assert (
        "Started at Took Trigger Day Feeds ok / failed New papers LLM calls Cost Outcome Suspect "
        "Aug. 14, 2026, 12:50 a.m. 2m 00s schedule 2026-08-13 1 / 0 12 14 $0.0123 draft built"
    ) in text
    assert reverse("admin:digests_digest_change", args=[digest.pk]) in listing.content.decode()
    assert "Add daily run" not in text

    page = editor_client.get(reverse("admin:digests_dailyrun_change", args=[run.pk]))
    assert page.status_code == 200
    assert "cs.CL: 3 papers, usually 40" in page_text(page)
    assert editor_client.get(reverse("admin:digests_dailyrun_add")).status_code == 403
    deleting = editor_client.get(reverse("admin:digests_dailyrun_delete", args=[run.pk]))
    assert deleting.status_code == 403


def test_viewers_see_the_runs_too(viewer_client: Any) -> None:
    run_create()

    listing = viewer_client.get(reverse("admin:digests_dailyrun_changelist"))

    assert listing.status_code == 200
    assert "draft built" in page_text(listing)


def test_a_running_row_reads_as_running_in_the_admin(editor_client: Any) -> None:
    run_create(started_at=timezone.now(), finished_at=None, outcome=DailyRun.Outcome.RUNNING)

    listing = editor_client.get(reverse("admin:digests_dailyrun_changelist"))

    assert "running (0s)" in page_text(listing)
