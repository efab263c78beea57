"""The pipeline through real processes: a Celery worker on Redis, beat, and a fake OpenAI server."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from digests.models import ClassifiedBy, Digest, Feed, LLMCall, SectionPaper, SummarySource
from digests.tasks import build_digest, fetch_papers
from newsletter.celery import app as celery_app

from .conftest import FIXTURE_FEED, REPO_ROOT, Service, service_start, wait_until

pytestmark = [
    pytest.mark.integration,
    # The worker is another process: it sees only committed rows.
    pytest.mark.django_db(transaction=True),
]


def test_the_worker_fetches_the_feed_and_builds_a_draft_with_the_llm(
    default_categories: None, task_wait: Callable[..., Any], celery_worker: Service
) -> None:
    fetched = task_wait(fetch_papers.delay(urls=[str(FIXTURE_FEED)]))
    assert fetched["feeds"], fetched

    built = task_wait(build_digest.delay(day=None), timeout=180)

    assert built["digest_id"], built
    digest = Digest.objects.get(pk=built["digest_id"])
    assert digest.status == Digest.Status.DRAFT
    sections = list(digest.sections.all())
    assert sections, "the digest has no sections"
    assert digest.papers.exists()
    assert SectionPaper.objects.filter(section__digest=digest).exists()
    assert bytes(digest.chart_png).startswith(b"\x89PNG")
    # The LLM (the fake server) really answered: classification and summaries are its work.
    assert LLMCall.objects.filter(cached=False, ok=True).exists()
    assert set(digest.papers.values_list("classified_by", flat=True)) == {ClassifiedBy.LLM}
    assert {s.summary_source for s in sections} == {SummarySource.LLM}, celery_worker.log_tail()


def test_setup_schedule_creates_the_daily_run_once(service_env: dict[str, str]) -> None:
    for _ in range(2):  # running it again changes nothing
        subprocess.run(
            [sys.executable, "manage.py", "setup_schedule"],
            cwd=REPO_ROOT,
            env=service_env,
            check=True,
            capture_output=True,
        )

    daily = PeriodicTask.objects.get(task="digests.tasks.run_daily")
    assert daily.enabled
    assert daily.crontab is not None
    assert str(daily.crontab.timezone) == "America/New_York"
    cron = daily.crontab.schedule
    assert (cron.hour, cron.minute) == ({20}, {45})
    assert cron.day_of_week == {0, 1, 2, 3, 4}  # Sunday (0) to Thursday


def test_beat_sends_a_due_task_that_the_worker_runs(
    celery_worker: Service, service_env: dict[str, str], service_logs: Path, tmp_path: Path
) -> None:
    PeriodicTask.objects.update(enabled=False)  # only the task below may fire
    every_second, _ = IntervalSchedule.objects.get_or_create(
        every=1, period=IntervalSchedule.SECONDS
    )
    PeriodicTask.objects.create(
        name="integration: fetch the sample feed every second",
        task="digests.tasks.fetch_papers",
        interval=every_second,
        kwargs=json.dumps({"urls": [str(FIXTURE_FEED)]}),
    )
    beat = service_start(
        "celery-beat",
        [
            sys.executable,
            *("-m", "celery", "-A", "newsletter", "beat", "-l", "info"),
            *("-S", "django_celery_beat.schedulers:DatabaseScheduler"),
            *("--pidfile", str(tmp_path / "beat.pid"), "-s", str(tmp_path / "beat-schedule")),
        ],
        env=service_env,
        log_dir=service_logs,
    )
    try:

        def fetched() -> bool:
            feeds = Feed.objects.filter(url__endswith=FIXTURE_FEED.name)
            return feeds.filter(last_fetched_at__isnull=False).exists()

        wait_until(
            fetched,
            timeout=60,
            what="a beat-sent fetch_papers run by the worker",
            log=lambda: f"beat:\n{beat.log_tail(40)}\nworker:\n{celery_worker.log_tail(40)}",
        )
        assert "Sending due task integration: fetch the sample feed" in beat.log()
    finally:
        beat.stop(timeout=10)
        celery_app.control.purge()  # what beat queued after the check is not run
