"""Thin Celery tasks: they take plain values, call one function and own the retry policy.

Only this module enqueues; no module it imports imports it (callers, such as the admin's
views, call `<task>.delay_on_commit`)."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from celery import shared_task
from celery.contrib.django.task import DjangoTask
from django.db import OperationalError

from .approval import digests_auto_approve
from .build import BuildRefused, digest_build
from .ingest import feeds_fetch
from .pipeline import daily_run
from .refetch import day_refetch
from .regenerate import regeneration_run
from .weekly import week_parse, weekly_build

logger = logging.getLogger(__name__)


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def fetch_papers(urls: list[str] | None = None) -> dict[str, Any]:
    results = feeds_fetch(urls=urls, log=logger.info)
    return {"feeds": [r.as_dict() for r in results]}


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def build_digest(day: str | None = None) -> dict[str, Any]:
    report = digest_build(day=date.fromisoformat(day) if day else None, log=logger.info)
    return {"day": str(report.day), "digest_id": report.digest_id, "reason": report.reason}


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def build_weekly(week: str | None = None) -> dict[str, Any]:
    """Beat (on WEEKLY_SEND_DAY): the draft weekly issue of the last complete week, or `week`
    ("2026-W33")."""
    try:
        report = weekly_build(week=week_parse(week) if week else None, log=logger.info)
    except BuildRefused as refused:  # already approved or sent: nothing to do, not a failure
        logger.info("build_weekly: %s", refused)
        return {"week": week, "digest_id": None, "reason": str(refused)}
    return {"week": report.week, "digest_id": report.digest_id, "reason": report.reason}


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def run_daily(urls: list[str] | None = None) -> dict[str, Any]:
    outcome = daily_run(urls=urls, log=logger.info)
    return outcome.as_dict()


# DjangoTask (Celery's default under Django) named, so the type checker knows delay_on_commit.
@shared_task(base=DjangoTask, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def regenerate_section(regeneration_id: int) -> dict[str, Any]:
    """An editor asked for a new summary of one section (digests.regenerate)."""
    return regeneration_run(regeneration_id=regeneration_id)


def regeneration_enqueue(regeneration_id: int) -> None:
    """The admin's request for a regeneration, run after its transaction commits."""
    regenerate_section.delay_on_commit(regeneration_id)


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def auto_approve() -> list[int]:
    """Beat: with DIGEST_AUTO_APPROVE on, approves drafts nobody acted on in time."""
    return digests_auto_approve()


# DjangoTask, for delay_on_commit (see regenerate_section).
@shared_task(base=DjangoTask, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def refetch_day(day: str) -> dict[str, Any]:
    """An editor asked to fetch a suspect day again (digests.refetch)."""
    return day_refetch(day=date.fromisoformat(day), log=logger.info).as_dict()


def refetch_enqueue(day: date) -> None:
    """The admin's request to fetch a day again, run after its transaction commits."""
    refetch_day.delay_on_commit(day.isoformat())
