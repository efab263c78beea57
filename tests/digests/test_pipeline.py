from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from digests.models import Digest, Feed, Paper

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "feeds"
SAMPLE = str(FIXTURES / "arxiv_rss2_sample.xml")


@pytest.fixture(autouse=True)
def no_llm_and_no_network_feeds(settings) -> None:  # type: ignore[no-untyped-def]
    settings.OPENAI_API_KEY = ""
    Feed.objects.all().delete()  # the default arXiv feed would need the network


def test_run_daily_fetches_a_local_feed_and_builds_the_draft_of_its_day(capsys) -> None:  # type: ignore[no-untyped-def]
    call_command("run_daily", "--feed", SAMPLE)

    out = capsys.readouterr().out
    digest = Digest.objects.get()
    assert str(digest.date) == "2026-08-13"
    assert digest.status == Digest.Status.DRAFT
    assert f"Created draft digest 2026-08-13 with {digest.paper_count} papers" in out
    assert "FLAG fallback" in out
    # new and cross-listed papers enter the issue, replacements do not
    assert digest.paper_count == Paper.objects.filter(announce_type__in=["new", "cross"]).count()


def test_a_second_run_without_new_announcements_builds_nothing_and_says_why(capsys) -> None:  # type: ignore[no-untyped-def]
    call_command("run_daily", "--feed", SAMPLE)
    built_at = Digest.objects.get().built_at
    capsys.readouterr()

    call_command("run_daily", "--feed", SAMPLE)

    out = capsys.readouterr().out
    assert "No new announcements since 2026-08-13: no digest built" in out
    assert Digest.objects.get().built_at == built_at


def test_a_run_that_died_before_building_builds_the_missing_issue_next_time(capsys) -> None:  # type: ignore[no-untyped-def]
    call_command("fetch_papers", "--feed", SAMPLE)  # papers stored, build never happened

    call_command("run_daily", "--feed", SAMPLE)

    assert Digest.objects.filter(date="2026-08-13").exists()


def test_run_daily_fails_with_the_reasons_when_every_feed_failed(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.xml"
    broken = FIXTURES / "malformed_rss2.xml"

    with pytest.raises(CommandError) as failure:
        call_command("run_daily", "--feed", str(missing), "--feed", str(broken))

    assert "Every feed failed" in str(failure.value)
    assert "malformed XML" in str(failure.value)
    assert Digest.objects.count() == 0
