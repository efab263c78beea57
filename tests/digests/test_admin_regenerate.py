from __future__ import annotations

import html
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse

from digests.editing import section_revision_save
from digests.models import (
    Category,
    Digest,
    DigestSection,
    Regeneration,
    SectionRevision,
    SummarySource,
)
from digests.regenerate import regeneration_run
from tests.admin_forms import form_fields, staff_in
from tests.fakes.openai_server import FakeOpenAI
from tests.issue_factory import issue_create

pytestmark = pytest.mark.django_db

Capture = Callable[..., AbstractContextManager[list[Callable[[], Any]]]]
OLD_TEXT = "**요약 보고서**\n\n예전에 쓴 요약입니다 [1]."


@pytest.fixture
def editor_client(client: Client) -> Client:
    client.force_login(staff_in("Editors", "ed"))
    return client


@pytest.fixture
def viewer_client() -> Client:
    client = Client()
    client.force_login(staff_in("Viewers", "vi"))
    return client


@pytest.fixture
def section() -> DigestSection:
    category = Category.objects.get(slug="llm")
    digest = issue_create(
        categories=[category], papers_per_section=3, summaries={category.pk: OLD_TEXT}
    )
    return digest.sections.get()


def change_url(section: DigestSection) -> str:
    return reverse("admin:digests_digest_change", args=[section.digest_id])


def regenerate_url(section: DigestSection) -> str:
    return reverse("admin:digests_digest_section_regenerate", args=[section.digest_id, section.pk])


def status_url(regeneration: Regeneration) -> str:
    digest_id = regeneration.section.digest_id
    return reverse("admin:digests_digest_regeneration_status", args=[digest_id, regeneration.pk])


def revision_url(revision: SectionRevision) -> str:
    digest_id = revision.section.digest_id
    return reverse("admin:digests_digest_revision", args=[digest_id, revision.pk])


def page_text(response: Any) -> str:
    """The page's HTML with entities decoded and runs of white space as one space."""
    return " ".join(html.unescape(response.content.decode()).split())


def regenerate_from_admin(client: Client, section: DigestSection, capture: Capture) -> Any:
    """The editor's click; the (eager) task runs once the request's transaction commits."""
    with capture(execute=True):
        response = client.post(regenerate_url(section))
    assert response.status_code == 302
    return client.get(response.url)


def change_form(response: Any) -> dict[str, Any]:
    """What the browser would post back from the digest's page as it was shown."""
    return form_fields(response.content.decode(), "digest_form")


# --- Asking for a regeneration -----------------------------------------------------------------


def test_the_confirmation_page_says_the_current_text_is_kept(
    editor_client: Client, section: DigestSection
) -> None:
    response = editor_client.get(regenerate_url(section))

    text = page_text(response)
    assert response.status_code == 200
    assert "Regenerate the LLM summary" in text
    assert "The current text is kept in the section's history" in text
    assert "<strong>요약 보고서</strong>" in text  # the current text, rendered
    assert section.entries.order_by("position")[0].paper.title in text
    assert 'name="csrfmiddlewaretoken"' in text and "Regenerate the summary" in text


def test_the_digest_page_links_each_section_to_its_regeneration(
    editor_client: Client, section: DigestSection
) -> None:
    text = page_text(editor_client.get(change_url(section)))

    assert f'href="{regenerate_url(section)}"' in text
    assert "Regenerate with the LLM…" in text and "No earlier texts." in text


def test_an_editor_regenerates_a_section_and_sees_the_new_text_and_the_old_one_in_history(
    fake: FakeOpenAI,
    editor_client: Client,
    section: DigestSection,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    response = regenerate_from_admin(editor_client, section, django_capture_on_commit_callbacks)

    text = page_text(response)
    assert "The LLM is writing a new LLM summary in the background" in text
    assert "오늘 LLM 분야에서 3편의 논문을 살펴보았습니다" in text  # the new text, in the editor
    assert "Latest regeneration: done at" in text
    revision = SectionRevision.objects.get(section=section)
    assert f'href="{revision_url(revision)}"' in text
    assert "before a regeneration, by ed" in text and "요약 보고서 예전에 쓴 요약입니다" in text
    assert revision.summary == OLD_TEXT


def test_each_regeneration_asks_the_llm_again(
    fake: FakeOpenAI,
    editor_client: Client,
    section: DigestSection,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    regenerate_from_admin(editor_client, section, django_capture_on_commit_callbacks)
    regenerate_from_admin(editor_client, section, django_capture_on_commit_callbacks)

    assert len(fake.calls) == 2
    assert section.revisions.count() == 2


def test_a_failed_regeneration_shows_its_error_and_leaves_the_text(
    offline: None,
    editor_client: Client,
    section: DigestSection,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    response = regenerate_from_admin(editor_client, section, django_capture_on_commit_callbacks)

    text = page_text(response)
    assert "Latest regeneration failed at" in text
    assert "OPENAI_API_KEY is not set" in text and "The text was left as it was." in text
    assert "예전에 쓴 요약입니다 [1]." in text
    section.refresh_from_db()
    assert section.summary == OLD_TEXT and not section.revisions.exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_regeneration_finished_by_the_time_the_page_comes_back_is_reported_as_done(
    fake: FakeOpenAI, editor_client: Client, section: DigestSection
) -> None:
    # Without a broker the task runs inside the request, right after its transaction commits.
    response = editor_client.post(regenerate_url(section), follow=True)

    text = page_text(response)
    assert "The LLM summary was regenerated; the previous text is in its history." in text
    assert "오늘 LLM 분야에서 3편의 논문을 살펴보았습니다" in text


def test_the_request_and_the_result_are_in_the_admin_log(
    fake: FakeOpenAI,
    editor_client: Client,
    section: DigestSection,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    regenerate_from_admin(editor_client, section, django_capture_on_commit_callbacks)

    entries = LogEntry.objects.filter(object_id=str(section.digest_id)).order_by("pk")
    assert [e.user.username for e in entries] == ["ed", "ed"]
    assert entries[0].change_message.startswith("Asked the LLM for a new LLM summary")
    assert entries[1].change_message.startswith("Regenerated the LLM summary")
    history = reverse("admin:digests_digest_history", args=[section.digest_id])
    assert "Regenerated the LLM summary" in page_text(editor_client.get(history))


def test_regenerating_an_approved_issue_returns_it_to_draft(
    fake: FakeOpenAI, editor_client: Client, django_capture_on_commit_callbacks: Capture
) -> None:
    digest = issue_create(categories=Category.objects.all()[:1], status=Digest.Status.APPROVED)
    section = digest.sections.get()

    confirm = page_text(editor_client.get(regenerate_url(section)))
    response = regenerate_from_admin(editor_client, section, django_capture_on_commit_callbacks)

    assert "This issue is approved:" in confirm
    assert "when the new text arrives it goes back to draft" in page_text(response)
    digest.refresh_from_db()
    assert digest.status == Digest.Status.DRAFT


def test_a_page_opened_before_the_regeneration_can_no_longer_be_saved(
    fake: FakeOpenAI,
    editor_client: Client,
    section: DigestSection,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    opened = editor_client.get(change_url(section))
    stale = change_form(opened)
    stale["title"] = "A title typed before the regeneration"

    regenerate_from_admin(editor_client, section, django_capture_on_commit_callbacks)
    response = editor_client.post(change_url(section), stale)

    assert response.status_code == 200
    assert "Not saved: regeneration changed this issue" in page_text(response)
    section.refresh_from_db()
    assert section.summary.startswith("**요약 보고서**\n\n오늘 LLM 분야에서")
    assert Digest.objects.get(pk=section.digest_id).title != stale["title"]


def test_a_page_opened_after_the_regeneration_saves(
    fake: FakeOpenAI,
    editor_client: Client,
    section: DigestSection,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    response = regenerate_from_admin(editor_client, section, django_capture_on_commit_callbacks)
    fresh = change_form(response)
    fresh["title"] = "A new title"

    assert editor_client.post(change_url(section), fresh).status_code == 302
    assert Digest.objects.get(pk=section.digest_id).title == "A new title"


def test_a_sent_issue_offers_no_regeneration(editor_client: Client) -> None:
    digest = issue_create(categories=Category.objects.all()[:1], status=Digest.Status.SENT)
    section = digest.sections.get()

    page = page_text(editor_client.get(change_url(section)))
    confirm = page_text(editor_client.get(regenerate_url(section)))
    response = editor_client.post(regenerate_url(section), follow=True)

    assert "Regenerate with the LLM…" not in page
    assert "its summaries can no longer be changed" in confirm
    assert "Regenerate the summary" not in confirm
    assert "Not regenerated: The issue of 2026-08-13 is sent" in page_text(response)
    assert not Regeneration.objects.exists()


def test_a_second_request_while_one_is_under_way_is_refused_with_a_message(
    editor_client: Client, section: DigestSection
) -> None:
    Regeneration.objects.create(section=section, requested_by="ann")

    confirm = page_text(editor_client.get(regenerate_url(section)))
    response = editor_client.post(regenerate_url(section), follow=True)

    assert "already queued (asked for by ann)" in confirm
    assert "is already under way: wait for its result" in page_text(response)
    assert Regeneration.objects.count() == 1


# --- Progress ----------------------------------------------------------------------------------


def test_the_digest_page_polls_a_regeneration_under_way(
    editor_client: Client, section: DigestSection
) -> None:
    regeneration = Regeneration.objects.create(section=section, requested_by="ann")

    text = page_text(editor_client.get(change_url(section)))

    assert f'data-status-url="{status_url(regeneration)}"' in text
    assert "digests/admin/regenerate.js" in text and "<progress" in text
    assert "Latest regeneration: queued, asked for by ann" in text


def test_the_status_url_reports_progress_and_the_result(
    fake: FakeOpenAI, editor_client: Client, section: DigestSection
) -> None:
    regeneration = Regeneration.objects.create(section=section, requested_by="ann")

    queued = editor_client.get(status_url(regeneration)).json()
    regeneration_run(regeneration_id=regeneration.pk)
    done = editor_client.get(status_url(regeneration)).json()

    assert queued["status"] == "queued" and queued["finished_at"] is None
    assert done["status"] == "done" and done["error"] == "" and done["finished_at"]
    revision = SectionRevision.objects.get(section=section)
    assert done["revision_url"] == revision_url(revision)


def test_the_status_url_reports_the_error_of_a_failed_one(
    offline: None, viewer_client: Client, section: DigestSection
) -> None:
    regeneration = Regeneration.objects.create(section=section, requested_by="ann")
    regeneration_run(regeneration_id=regeneration.pk)

    status = viewer_client.get(status_url(regeneration)).json()

    assert status["status"] == "failed" and "OPENAI_API_KEY" in status["error"]


def test_the_status_of_another_issues_regeneration_is_not_found(
    editor_client: Client, section: DigestSection
) -> None:
    other = issue_create(day=section.digest.date.replace(day=14), categories=[section.category])
    regeneration = Regeneration.objects.create(section=other.sections.get())
    url = reverse(
        "admin:digests_digest_regeneration_status", args=[section.digest_id, regeneration.pk]
    )

    assert editor_client.get(url).status_code == 404


# --- Revisions and restoring -------------------------------------------------------------------


def test_a_revision_page_shows_the_kept_text_with_who_when_and_why(
    editor_client: Client, section: DigestSection
) -> None:
    revision = section_revision_save(section=section, reason="regenerate", by="ann")

    response = editor_client.get(revision_url(revision))

    text = page_text(response)
    assert response.status_code == 200
    assert "<strong>요약 보고서</strong>" in text and "예전에 쓴 요약입니다 [1]." in text
    assert "before a regeneration" in text and "ann" in text
    assert "Restore this text" in text and 'name="csrfmiddlewaretoken"' in text


def test_an_editor_restores_a_kept_text(
    fake: FakeOpenAI,
    editor_client: Client,
    section: DigestSection,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    regenerate_from_admin(editor_client, section, django_capture_on_commit_callbacks)
    revision = SectionRevision.objects.get(section=section)
    version = Digest.objects.get(pk=section.digest_id).version

    response = editor_client.post(revision_url(revision), follow=True)

    text = page_text(response)
    assert "The LLM summary is the text kept at" in text
    assert "예전에 쓴 요약입니다 [1]." in text  # back in the editor
    section.refresh_from_db()
    assert section.summary == OLD_TEXT and section.summary_source == SummarySource.FALLBACK
    kept = section.revisions.get(reason=SectionRevision.Reason.RESTORE)
    assert kept.summary.startswith("**요약 보고서**\n\n오늘 LLM 분야에서")
    assert kept.created_by == "ed"
    assert "before a restore, by ed" in text
    digest = Digest.objects.get(pk=section.digest_id)
    assert digest.version > version and digest.last_changed_by == "ed"
    assert LogEntry.objects.filter(change_message__startswith="Restored the LLM summary").exists()


def test_restoring_in_an_approved_issue_returns_it_to_draft(editor_client: Client) -> None:
    digest = issue_create(categories=Category.objects.all()[:1], status=Digest.Status.APPROVED)
    revision = section_revision_save(section=digest.sections.get(), reason="edit", by="ann")

    response = editor_client.post(revision_url(revision), follow=True)

    assert "the restore returned it to draft" in page_text(response)
    assert Digest.objects.get(pk=digest.pk).status == Digest.Status.DRAFT


def test_a_sent_issues_revision_is_shown_but_not_restored(editor_client: Client) -> None:
    digest = issue_create(categories=Category.objects.all()[:1], status=Digest.Status.SENT)
    section = digest.sections.get()
    revision = section_revision_save(section=section, reason="edit", by="ann")
    section.summary = "지금 글"
    section.save()

    page = page_text(editor_client.get(revision_url(revision)))
    response = editor_client.post(revision_url(revision), follow=True)

    assert "Restore this text" not in page and "can no longer be changed" in page
    assert "Not restored: The issue is sent" in page_text(response)
    section.refresh_from_db()
    assert section.summary == "지금 글"


# --- Who may do what ---------------------------------------------------------------------------


def test_viewers_see_the_pages_without_buttons_and_get_403_on_posts(
    viewer_client: Client, section: DigestSection
) -> None:
    revision = section_revision_save(section=section, reason="edit", by="ann")
    section.summary = "지금 글"
    section.save()

    confirm = viewer_client.get(regenerate_url(section))
    kept = viewer_client.get(revision_url(revision))

    assert confirm.status_code == 200 and "You may not regenerate summaries" in page_text(confirm)
    assert kept.status_code == 200 and "Restore this text" not in page_text(kept)
    assert viewer_client.post(regenerate_url(section)).status_code == 403
    assert viewer_client.post(revision_url(revision)).status_code == 403
    assert not Regeneration.objects.exists()
    section.refresh_from_db()
    assert section.summary == "지금 글"
    assert not LogEntry.objects.exists()


def test_posts_without_the_csrf_token_are_refused(section: DigestSection) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_in("Editors", "ed"))
    revision = section_revision_save(section=section, reason="edit", by="ann")

    assert client.post(regenerate_url(section)).status_code == 403
    assert client.post(revision_url(revision)).status_code == 403
    assert not Regeneration.objects.exists()


def test_text_from_the_feeds_and_the_llm_is_escaped(
    editor_client: Client, section: DigestSection
) -> None:
    paper = section.entries.order_by("position")[0].paper
    paper.title = "<script>alert('title')</script>"
    paper.save()
    section.summary = "<script>alert('summary')</script> **요약** [1]"
    revision = section_revision_save(section=section, reason="edit", by="<b>ann</b>")
    Regeneration.objects.create(
        section=section, status="failed", error="<img src=x onerror=alert(1)>"
    )

    pages = [
        editor_client.get(regenerate_url(section)).content.decode(),
        editor_client.get(revision_url(revision)).content.decode(),
        editor_client.get(change_url(section)).content.decode(),
    ]

    for page in pages:
        assert "<script>alert(" not in page
        assert "<img src=x" not in page and "<b>ann</b>" not in page
    assert "&lt;script&gt;alert(&#x27;title&#x27;)&lt;/script&gt;" in pages[0]
    assert "&lt;img src=x onerror=alert(1)&gt;" in pages[2]


def test_the_digest_page_lists_the_last_ten_kept_texts_and_links_to_all(
    editor_client: Client, section: DigestSection
) -> None:
    for n in range(12):
        section.summary = f"Text number {n}"
        section_revision_save(section=section, reason="edit", by=f"editor{n}")

    text = page_text(editor_client.get(change_url(section)))

    assert "Earlier texts (10+)" in text
    assert "by editor11:" in text and "by editor2:" in text and "Text number 11" in text
    assert "by editor1:" not in text and "by editor0:" not in text
    all_url = reverse("admin:digests_sectionrevision_changelist")
    listed = editor_client.get(f"{all_url}?section__id__exact={section.pk}")
    assert f'href="{all_url}?section__id__exact={section.pk}"' in text
    assert listed.status_code == 200 and "12 section revisions" in page_text(listed)


def test_a_revision_of_another_issue_is_not_found(
    editor_client: Client, section: DigestSection
) -> None:
    other = issue_create(day=section.digest.date.replace(day=14), categories=[section.category])
    revision = section_revision_save(section=other.sections.get(), reason="edit", by="ann")
    url = reverse("admin:digests_digest_revision", args=[section.digest_id, revision.pk])

    assert editor_client.get(url).status_code == 404
    assert editor_client.post(url).status_code == 404
