"""DIGEST_AUTO_APPROVE: a built draft nobody acted on is approved at the set time, once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine

from digests import tasks
from digests.approval import (
    ApprovalRefused,
    auto_approve_time,
    digest_approve,
    digests_auto_approve,
)
from digests.editing import digest_touch
from digests.models import Category, Digest
from tests.issue_factory import issue_create

pytestmark = pytest.mark.django_db

DAY = date(2026, 8, 13)
# The evening build in New York (20:45 EDT on the 13th) is 09:45 on the 14th in Seoul.
BUILT = datetime(2026, 8, 14, 0, 45, tzinfo=UTC)
# The first 06:30 in Seoul after it: the 15th, 06:30 KST.
AUTO_AT = datetime(2026, 8, 14, 21, 30, tzinfo=UTC)
# The daily send time that follows: the 15th, 07:00 KST.
SEND_AT = datetime(2026, 8, 14, 22, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _auto_on(settings: Any) -> None:
    settings.DIGEST_AUTO_APPROVE = True


def built_issue(*, day: date = DAY, built_at: datetime | None = BUILT, **fields: Any) -> Digest:
    digest = issue_create(day=day, categories=Category.objects.all()[:1], papers_per_section=1)  # type: ignore[arg-type]
    Digest.objects.filter(pk=digest.pk).update(built_at=built_at, **fields)
    digest.refresh_from_db()
    return digest


def test_the_auto_approval_time_is_the_first_set_time_after_the_build() -> None:
    assert auto_approve_time(built_at=BUILT) == AUTO_AT
    # Built at 05:00 in Seoul: the same morning's 06:30.
    early = datetime(2026, 8, 13, 20, 0, tzinfo=UTC)
    assert auto_approve_time(built_at=early) == datetime(2026, 8, 13, 21, 30, tzinfo=UTC)


def test_it_approves_an_untouched_draft_once_its_time_has_passed() -> None:
    digest = built_issue()
    with time_machine.travel(AUTO_AT + timedelta(minutes=1), tick=False):
        assert digests_auto_approve() == [digest.pk]
    digest.refresh_from_db()
    assert digest.status == Digest.Status.APPROVED
    assert digest.auto_approved is True
    assert digest.approved_by == "auto-approve"
    assert digest.approved_at == AUTO_AT + timedelta(minutes=1)
    assert digest.send_at == SEND_AT
    assert digest.reviewed_at is None  # no person acted


def test_the_now_it_is_given_sets_the_send_time() -> None:
    digest = built_issue()
    assert digests_auto_approve(now=AUTO_AT + timedelta(minutes=1)) == [digest.pk]
    digest.refresh_from_db()
    assert digest.send_at == SEND_AT


def test_it_does_nothing_when_the_setting_is_off(settings: Any) -> None:
    settings.DIGEST_AUTO_APPROVE = False
    digest = built_issue()
    assert digests_auto_approve(now=AUTO_AT + timedelta(hours=1)) == []
    digest.refresh_from_db()
    assert digest.status == Digest.Status.DRAFT


def test_it_waits_for_the_set_time() -> None:
    digest = built_issue()
    assert digests_auto_approve(now=AUTO_AT - timedelta(minutes=1)) == []
    digest.refresh_from_db()
    assert digest.status == Digest.Status.DRAFT


def test_a_draft_an_editor_acted_on_is_left_to_the_editor() -> None:
    digest = built_issue()
    digest_touch(digest_id=digest.pk, by="ed", reviewed=True)  # an edit, or a cancelled approval
    assert digests_auto_approve(now=AUTO_AT + timedelta(hours=1)) == []
    digest.refresh_from_db()
    assert digest.status == Digest.Status.DRAFT


def test_a_change_by_the_pipeline_does_not_count_as_a_person_acting() -> None:
    digest = built_issue()
    digest_touch(digest_id=digest.pk, by="regeneration")
    assert digests_auto_approve(now=AUTO_AT + timedelta(hours=1)) == [digest.pk]


def test_old_forgotten_drafts_are_not_approved_when_the_setting_is_turned_on() -> None:
    old = built_issue(day=DAY - timedelta(days=5), built_at=BUILT - timedelta(days=5))
    recent = built_issue()
    assert digests_auto_approve(now=AUTO_AT + timedelta(minutes=1)) == [recent.pk]
    old.refresh_from_db()
    assert old.status == Digest.Status.DRAFT


def test_drafts_not_built_or_without_sections_are_not_approved() -> None:
    unbuilt = built_issue(built_at=None)
    empty = issue_create(day=DAY - timedelta(days=1), categories=[])
    Digest.objects.filter(pk=empty.pk).update(built_at=BUILT)
    assert digests_auto_approve(now=AUTO_AT + timedelta(hours=1)) == []
    for digest in (unbuilt, empty):
        digest.refresh_from_db()
        assert digest.status == Digest.Status.DRAFT


@pytest.mark.parametrize(
    "status", [Digest.Status.APPROVED, Digest.Status.SENDING, Digest.Status.SENT]
)
def test_issues_past_draft_are_left_alone(status: str) -> None:
    digest = built_issue(status=status, approved_by="ed")
    assert digests_auto_approve(now=AUTO_AT + timedelta(hours=1)) == []
    digest.refresh_from_db()
    assert digest.status == status and digest.approved_by == "ed"


def test_two_runs_approve_once() -> None:
    digest = built_issue()
    now = AUTO_AT + timedelta(minutes=1)
    assert digests_auto_approve(now=now) == [digest.pk]
    version = Digest.objects.get(pk=digest.pk).version
    assert digests_auto_approve(now=now) == []
    assert Digest.objects.get(pk=digest.pk).version == version


def test_a_run_that_loses_the_race_is_refused_not_doubled() -> None:
    """The candidate was read, then an editor acted before the UPDATE: the UPDATE misses."""
    digest = built_issue()
    seen = digest.version
    digest_touch(digest_id=digest.pk, by="ed", reviewed=True)
    with pytest.raises(ApprovalRefused):
        digest_approve(digest=digest, by="auto-approve", auto=True, version=seen)
    digest.refresh_from_db()
    assert digest.status == Digest.Status.DRAFT


def test_the_beat_task_runs_it() -> None:
    digest = built_issue()
    with time_machine.travel(AUTO_AT + timedelta(minutes=1), tick=False):
        assert tasks.auto_approve() == [digest.pk]
