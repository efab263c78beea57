from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.utils import timezone, translation

from digests.editing import section_input, section_revision_save
from digests.models import (
    Category,
    Digest,
    DigestSection,
    LLMCacheEntry,
    LLMCall,
    Regeneration,
    SectionReport,
    SectionRevision,
    SummarySource,
)
from digests.regenerate import (
    RegenerationRefused,
    RestoreRefused,
    regeneration_request,
    regeneration_run,
    revision_restore,
)
from digests.summarize import sections_summarize
from digests.tasks import regenerate_section
from tests.fakes.openai_server import FakeOpenAI
from tests.issue_factory import issue_create

pytestmark = pytest.mark.django_db

Capture = Callable[..., AbstractContextManager[list[Callable[[], Any]]]]
OLD_TEXT = "**요약 보고서**\n\n편집자가 쓴 예전 요약입니다 [1]."


@pytest.fixture
def section() -> DigestSection:
    category = Category.objects.get(slug="llm")
    digest = issue_create(
        categories=[category], papers_per_section=3, summaries={category.pk: OLD_TEXT}
    )
    return digest.sections.get()


@pytest.fixture
def regenerate(
    django_capture_on_commit_callbacks: Capture,
) -> Iterator[Callable[..., Regeneration]]:
    """Asks for a regeneration, enqueues its task as the admin's view does, and lets the (eager)
    task run once the request commits."""

    def run(section: DigestSection, by: str = "ed") -> Regeneration:
        with django_capture_on_commit_callbacks(execute=True):
            regeneration = regeneration_request(section=section, by=by)
            regenerate_section.delay_on_commit(regeneration.pk)
        regeneration.refresh_from_db()
        return regeneration

    yield run


def papers_asked_for(call: dict[str, Any]) -> list[str]:
    return [p["title"] for p in json.loads(call["messages"][1]["content"])["papers"]]


def test_a_regeneration_writes_a_new_llm_summary_and_keeps_the_old_text(
    fake: FakeOpenAI, section: DigestSection, regenerate: Callable[..., Regeneration]
) -> None:
    version = section.digest.version

    regeneration = regenerate(section)

    section.refresh_from_db()
    assert regeneration.status == Regeneration.Status.DONE
    assert regeneration.started_at and regeneration.finished_at and regeneration.error == ""
    assert section.summary.startswith("**요약 보고서**") and "[3]" in section.summary
    assert section.summary_source == SummarySource.LLM and section.flags == []
    revision = regeneration.revision
    assert revision is not None and revision.summary == OLD_TEXT
    assert revision.reason == SectionRevision.Reason.REGENERATE and revision.created_by == "ed"
    digest = Digest.objects.get(pk=section.digest_id)
    assert digest.version > version and digest.last_changed_by == "regeneration"
    assert digest.reviewed_at is not None  # an editor asked: auto-approval leaves it alone


def test_the_issues_llm_cost_counts_the_regeneration(
    fake: FakeOpenAI, section: DigestSection, regenerate: Callable[..., Regeneration]
) -> None:
    regenerate(section)
    regenerate(section)

    digest = Digest.objects.get(pk=section.digest_id)
    calls = LLMCall.objects.filter(digest_date=digest.date, cached=False)
    assert digest.llm_calls == calls.count() == 2
    assert digest.prompt_tokens == sum(c.prompt_tokens for c in calls) > 0
    assert digest.completion_tokens == sum(c.completion_tokens for c in calls) > 0
    cost = sum(c.cost for c in calls)
    assert cost > 0 and digest.estimated_cost == cost.quantize(Decimal("0.0001"))


def test_a_regeneration_asks_the_llm_again_instead_of_serving_the_cache(
    fake: FakeOpenAI, section: DigestSection, regenerate: Callable[..., Regeneration]
) -> None:
    # The build's answer for exactly this prompt is in the cache.
    sections_summarize(
        sections=[section_input(section)], language="ko", digest_date=section.digest.date
    )
    assert LLMCacheEntry.objects.count() == 1 and len(fake.calls) == 1

    regenerate(section)
    regenerate(section)

    assert len(fake.calls) == 3
    assert not LLMCall.objects.filter(cached=True).exists()
    assert Regeneration.objects.filter(status=Regeneration.Status.DONE).count() == 2
    assert section.revisions.count() == 2


def test_the_llm_is_given_the_sections_current_papers_in_their_order(
    fake: FakeOpenAI, section: DigestSection, regenerate: Callable[..., Regeneration]
) -> None:
    first, second, third = section.entries.order_by("position")
    first.position, third.position = 2, 0
    first.save()
    third.save()
    second.delete()

    regenerate(section)

    assert papers_asked_for(fake.calls[0]) == [third.paper.title, first.paper.title]


def test_a_report_that_fails_its_checks_is_asked_again_once_then_kept_flagged(
    fake: FakeOpenAI, section: DigestSection, regenerate: Callable[..., Regeneration]
) -> None:
    fake.fail_next("foreign_words", "foreign_words")

    regeneration = regenerate(section)

    section.refresh_from_db()
    assert len(fake.calls) == 2
    assert regeneration.status == Regeneration.Status.DONE
    assert "重大한" in section.summary
    assert {f["code"] for f in section.flags} == {"language"}


def test_an_editors_own_text_can_be_regenerated_and_is_kept_in_the_revision(
    fake: FakeOpenAI, section: DigestSection, regenerate: Callable[..., Regeneration]
) -> None:
    section.summary_source = SummarySource.EDITOR
    section.save()

    regeneration = regenerate(section)

    section.refresh_from_db()
    assert section.summary_source == SummarySource.LLM
    assert regeneration.revision is not None
    assert regeneration.revision.summary_source == SummarySource.EDITOR
    assert regeneration.revision.summary == OLD_TEXT


def test_regenerating_an_approved_issue_returns_it_to_draft(
    fake: FakeOpenAI, regenerate: Callable[..., Regeneration]
) -> None:
    digest = issue_create(categories=Category.objects.all()[:1], status=Digest.Status.APPROVED)
    Digest.objects.filter(pk=digest.pk).update(send_at=timezone.now(), approved_by="boss")

    regenerate(digest.sections.get())

    digest.refresh_from_db()
    assert digest.status == Digest.Status.DRAFT
    assert digest.send_at is None and digest.approved_by == ""


@pytest.mark.parametrize(
    ("setup", "error"),
    [
        ("offline", "OPENAI_API_KEY is not set"),
        ("500", "HTTP 500"),
        ("refusal", "model refused"),
        ("empty", "empty answer"),
        ("budget", "token budget hit"),
    ],
)
def test_when_no_new_text_can_be_had_it_fails_and_the_text_stays_as_it_was(
    fake: FakeOpenAI,
    settings: Any,
    section: DigestSection,
    regenerate: Callable[..., Regeneration],
    setup: str,
    error: str,
) -> None:
    if setup == "offline":
        settings.OPENAI_API_KEY = ""
    elif setup == "500":
        fake.fail_next("500", "500", "500")  # the client's two retries fail too
    elif setup == "refusal":
        fake.fail_next("refusal")
    elif setup == "empty":
        fake.fail_next(lambda body: " ")
    else:
        settings.LLM_DAILY_TOKEN_BUDGET = 100
        LLMCall.objects.create(purpose="classify", model="m", prompt_tokens=100)
    version = section.digest.version

    regeneration = regenerate(section)

    assert regeneration.status == Regeneration.Status.FAILED
    assert error in regeneration.error and regeneration.finished_at is not None
    section.refresh_from_db()
    assert section.summary == OLD_TEXT and section.summary_source == SummarySource.FALLBACK
    assert not section.revisions.exists() and regeneration.revision is None
    assert Digest.objects.get(pk=section.digest_id).version == version


def test_an_issue_that_went_out_before_the_task_ran_is_left_alone(
    fake: FakeOpenAI, section: DigestSection
) -> None:
    regeneration = Regeneration.objects.create(section=section, requested_by="ed")
    Digest.objects.filter(pk=section.digest_id).update(status=Digest.Status.SENDING)

    result = regeneration_run(regeneration_id=regeneration.pk)

    regeneration.refresh_from_db()
    assert result["status"] == regeneration.status == Regeneration.Status.FAILED
    assert "sending" in regeneration.error and "left as it was" in regeneration.error
    assert fake.calls == []
    section.refresh_from_db()
    assert section.summary == OLD_TEXT


def test_a_regeneration_runs_once(
    fake: FakeOpenAI, section: DigestSection, regenerate: Callable[..., Regeneration]
) -> None:
    regeneration = regenerate(section)

    assert regeneration_run(regeneration_id=regeneration.pk)["status"] == "skipped"
    assert len(fake.calls) == 1


@pytest.mark.parametrize("status", [Digest.Status.SENDING, Digest.Status.SENT])
def test_a_sending_or_sent_issue_is_refused(status: str) -> None:
    digest = issue_create(categories=Category.objects.all()[:1], status=status)

    with translation.override("en"), pytest.raises(RegenerationRefused, match=f"is {status}"):
        regeneration_request(section=digest.sections.get(), by="ed")
    assert not Regeneration.objects.exists()


def test_a_second_request_while_one_is_under_way_is_refused(section: DigestSection) -> None:
    Regeneration.objects.create(section=section, status=Regeneration.Status.RUNNING)

    with translation.override("en"), pytest.raises(RegenerationRefused, match="under way"):
        regeneration_request(section=section, by="ed")


def test_a_regeneration_lost_with_its_worker_does_not_block_the_section(
    section: DigestSection,
) -> None:
    with time_machine.travel(timezone.now() - timedelta(hours=2)):
        lost = Regeneration.objects.create(section=section, status=Regeneration.Status.RUNNING)

    regeneration_request(section=section, by="ed")

    lost.refresh_from_db()
    assert lost.status == Regeneration.Status.FAILED and "lost" in lost.error


def test_the_outcome_is_in_the_admin_log_of_the_editor_who_asked(
    fake: FakeOpenAI,
    settings: Any,
    section: DigestSection,
    regenerate: Callable[..., Regeneration],
) -> None:
    User.objects.create_user(username="ed", is_staff=True)
    regenerate(section)
    settings.OPENAI_API_KEY = ""
    regenerate(section)

    messages = list(LogEntry.objects.order_by("pk").values_list("change_message", flat=True))
    assert messages[0].startswith("Regenerated the LLM summary")
    assert "failed: LLM disabled" in messages[1]


# --- Restoring --------------------------------------------------------------------------------


def test_restoring_puts_the_kept_text_back_and_keeps_the_current_one(
    section: DigestSection,
) -> None:
    revision = section_revision_save(section=section, reason="edit", by="ann")
    section.summary, section.summary_source = "**요약 보고서**\n\n새 글 [1].", SummarySource.EDITOR
    section.save()
    version = Digest.objects.get(pk=section.digest_id).version

    restored = revision_restore(revision=revision, by="bob")

    section.refresh_from_db()
    assert section.summary == OLD_TEXT and section.summary_source == SummarySource.FALLBACK
    assert restored.kept.summary == "**요약 보고서**\n\n새 글 [1]."
    assert restored.kept.reason == SectionRevision.Reason.RESTORE
    assert restored.kept.created_by == "bob" and not restored.unapproved
    digest = Digest.objects.get(pk=section.digest_id)
    assert digest.version > version and digest.last_changed_by == "bob"


def test_restoring_rechecks_the_text_against_the_sections_papers(section: DigestSection) -> None:
    section.summary = "**요약 보고서**\n\n없는 논문을 인용합니다 [7]."
    revision = section_revision_save(section=section, reason="edit", by="ann")

    revision_restore(revision=revision, by="bob")

    section.refresh_from_db()
    assert [f["code"] for f in section.flags] == ["unknown_reference"]


def test_restoring_in_an_approved_issue_returns_it_to_draft(section: DigestSection) -> None:
    revision = section_revision_save(section=section, reason="edit", by="ann")
    Digest.objects.filter(pk=section.digest_id).update(status=Digest.Status.APPROVED)

    assert revision_restore(revision=revision, by="bob").unapproved
    assert Digest.objects.get(pk=section.digest_id).status == Digest.Status.DRAFT


def test_a_sent_issue_cannot_be_restored(section: DigestSection) -> None:
    revision = section_revision_save(section=section, reason="edit", by="ann")
    Digest.objects.filter(pk=section.digest_id).update(status=Digest.Status.SENT)

    with translation.override("en"), pytest.raises(RestoreRefused, match="sent"):
        revision_restore(revision=revision, by="bob")
    assert section.revisions.count() == 1


# --- A report in another offered language --------------------------------------------------------

ENGLISH_TEXT = "**Summary report**\n\nAn editor's English report [1]."


def test_an_english_report_is_regenerated_and_restored_on_its_own(
    fake: FakeOpenAI,
    section: DigestSection,
    settings: Any,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    settings.DIGEST_LANGUAGES, settings.DIGEST_LANGUAGE = ["ko", "en"], "ko"
    report = SectionReport.objects.create(
        section=section, language="en", summary=ENGLISH_TEXT, summary_source=SummarySource.EDITOR
    )
    with django_capture_on_commit_callbacks(execute=True):
        regeneration = regeneration_request(section=section, by="ed", language="en")
        regenerate_section.delay_on_commit(regeneration.pk)
    regeneration.refresh_from_db()

    assert regeneration.status == Regeneration.Status.DONE and regeneration.language == "en"
    report.refresh_from_db()
    section.refresh_from_db()
    assert report.summary.startswith("**Summary report**") and report.summary != ENGLISH_TEXT
    assert report.summary_source == SummarySource.LLM and report.flags == []
    assert section.summary == OLD_TEXT  # the first language's report is left alone
    kept = regeneration.revision
    assert kept is not None and kept.language == "en" and kept.summary == ENGLISH_TEXT
    assert json.loads(fake.calls[-1]["messages"][1]["content"])["language"] == "en"

    restored = revision_restore(revision=kept, by="bob")

    report.refresh_from_db()
    assert report.summary == ENGLISH_TEXT and report.summary_source == SummarySource.EDITOR
    assert restored.kept.language == "en" and restored.kept.summary.startswith("**Summary report")
    section.refresh_from_db()
    assert section.summary == OLD_TEXT and not section.revisions.filter(language="").exists()


def test_a_language_the_newsletter_does_not_offer_is_refused(section: DigestSection) -> None:
    with pytest.raises(RegenerationRefused):
        regeneration_request(section=section, by="ed", language="fr")
