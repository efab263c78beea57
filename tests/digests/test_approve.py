from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.utils import translation

from digests.approval import ApprovalRefused, digest_approve, digest_unapprove, next_send_time
from digests.models import Category, Digest
from tests.issue_factory import issue_create

pytestmark = pytest.mark.django_db


def small_issue(**fields: object) -> Digest:
    return issue_create(categories=Category.objects.all()[:1], papers_per_section=1, **fields)  # type: ignore[arg-type]


def test_the_default_send_time_is_the_next_seven_oclock_in_seoul() -> None:
    # 21:00 UTC = 06:00 in Seoul: today's 07:00 is still ahead.
    assert next_send_time(now=datetime(2026, 8, 13, 21, 0, tzinfo=UTC)) == datetime(
        2026, 8, 13, 22, 0, tzinfo=UTC
    )
    # 23:00 UTC = 08:00 in Seoul: tomorrow's.
    assert next_send_time(now=datetime(2026, 8, 13, 23, 0, tzinfo=UTC)) == datetime(
        2026, 8, 14, 22, 0, tzinfo=UTC
    )


@time_machine.travel(datetime(2026, 8, 13, 12, 0, tzinfo=UTC), tick=False)
def test_approving_a_draft_records_who_when_and_the_send_time() -> None:
    digest = digest_approve(digest=small_issue(), by="editor@example.com")
    assert digest.status == Digest.Status.APPROVED
    assert digest.approved_by == "editor@example.com"
    assert digest.approved_at == datetime(2026, 8, 13, 12, 0, tzinfo=UTC)
    assert digest.send_at == datetime(2026, 8, 13, 22, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "status", [Digest.Status.APPROVED, Digest.Status.SENDING, Digest.Status.SENT]
)
def test_only_a_draft_can_be_approved(status: str) -> None:
    digest = small_issue(status=status)
    with translation.override("en"), pytest.raises(ApprovalRefused, match=f"is {status}"):
        digest_approve(digest=digest)


def test_an_issue_without_sections_is_refused() -> None:
    digest = issue_create(categories=[])
    with translation.override("en"), pytest.raises(ApprovalRefused, match="no sections"):
        digest_approve(digest=digest)


def test_unapprove_takes_an_approved_issue_back_to_draft() -> None:
    digest = digest_unapprove(digest=digest_approve(digest=small_issue(), by="ed"))
    assert digest.status == Digest.Status.DRAFT
    assert digest.send_at is None and digest.approved_at is None and digest.approved_by == ""
    with pytest.raises(ApprovalRefused):
        digest_unapprove(digest=digest)


@time_machine.travel(datetime(2026, 8, 13, 12, 0, tzinfo=UTC), tick=False)
def test_the_command_approves_and_prints_both_times(capsys: pytest.CaptureFixture[str]) -> None:
    small_issue(day=date(2026, 8, 13))
    call_command("approve_digest", "--date", "2026-08-13")
    out = capsys.readouterr().out
    assert "2026-08-13" in out and "approved" in out
    assert "2026-08-13 22:00 UTC (2026-08-14 07:00 Asia/Seoul)" in out


@time_machine.travel(datetime(2026, 8, 13, 12, 0, tzinfo=UTC), tick=False)
def test_the_command_reads_send_at_in_the_send_timezone(capsys: pytest.CaptureFixture[str]) -> None:
    small_issue(day=date(2026, 8, 13))
    call_command("approve_digest", "--date", "2026-08-13", "--send-at", "2026-08-14T09:30")
    assert Digest.objects.get().send_at == datetime(2026, 8, 14, 0, 30, tzinfo=UTC)
    assert "2026-08-14 00:30 UTC (2026-08-14 09:30 Asia/Seoul)" in capsys.readouterr().out


def test_the_command_refuses_clearly() -> None:
    small_issue(day=date(2026, 8, 13), status=Digest.Status.SENT)
    with pytest.raises(CommandError, match="is sent; only a draft can be approved"):
        call_command("approve_digest", "--date", "2026-08-13")
    with pytest.raises(CommandError, match="No issue for 2026-08-12"):
        call_command("approve_digest", "--date", "2026-08-12")
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("approve_digest", "--date", "13/08/2026")
    with pytest.raises(CommandError, match="ISO 8601"):
        call_command("approve_digest", "--date", "2026-08-13", "--send-at", "tomorrow")
