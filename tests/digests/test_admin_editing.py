"""The digest's admin page: review and edit, under the optimistic lock (issue 5)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from digests.approval import digest_approve
from digests.build import digest_build
from digests.models import (
    Category,
    ClassifiedBy,
    Digest,
    DigestSection,
    Paper,
    SectionPaper,
    SectionRevision,
    SummarySource,
)
from subscribers.models import Delivery
from tests.admin_forms import client_for, form_fields, staff_in
from tests.digests.test_build import DAY, a_day_of_papers
from tests.issue_factory import issue_create, paper_make

pytestmark = pytest.mark.django_db

FORM = "digest_form"


@pytest.fixture
def editor() -> User:
    return staff_in("Editors", "eun-ji")


@pytest.fixture
def issue() -> Digest:
    chosen = Category.objects.filter(slug__in=["llm", "computer-vision"]).order_by("position")
    categories = list(chosen)
    assert len(categories) == 2, "the migration's default categories"
    return issue_create(categories=categories, papers_per_section=3, summary_length=600)


def change_url(digest: Digest) -> str:
    return reverse("admin:digests_digest_change", args=[digest.pk])


def page_form(client: Client, digest: Digest) -> dict[str, Any]:
    response = client.get(change_url(digest))
    assert response.status_code == 200
    return form_fields(response.content.decode(), FORM)


def section_index(fields: dict[str, Any], section: DigestSection) -> int:
    for key, value in fields.items():
        if key.startswith("sections-") and key.endswith("-id") and value == str(section.pk):
            return int(key.split("-")[1])
    raise AssertionError(f"section {section.pk} not on the page")


def entry_index(fields: dict[str, Any], entry: SectionPaper) -> int:
    for key, value in fields.items():
        if key.startswith("entries-") and key.endswith("-id") and value == str(entry.pk):
            return int(key.split("-")[1])
    raise AssertionError(f"entry {entry.pk} not on the page")


def save(client: Client, digest: Digest, fields: dict[str, Any]) -> Any:
    return client.post(change_url(digest), fields, follow=True)


def saved(response: Any) -> bool:
    """The admin took the save: it went back to the list (a refused save shows the form)."""
    chain = [url for url, _ in response.redirect_chain]
    return chain == [reverse("admin:digests_digest_changelist")]


# --- the list ---------------------------------------------------------------------------------


def test_the_list_shows_status_papers_flags_tokens_cost_recipients_and_sent(
    editor: User, issue: Digest
) -> None:
    section = issue.sections.first()
    assert section is not None
    section.flags = [{"code": "language", "message": "Han characters in Korean text"}]
    section.save()
    Digest.objects.filter(pk=issue.pk).update(
        prompt_tokens=12000, completion_tokens=3456, estimated_cost="0.0123"
    )
    for n, status in enumerate(["sent", "sent", "failed"]):
        Delivery.objects.create(digest=issue, email=f"r{n}@example.com", variant="", status=status)

    page = client_for(editor).get(reverse("admin:digests_digest_changelist")).content.decode()

    for heading in ("Date", "Status", "Paper count", "Sections flagged", "LLM tokens"):
        assert heading in page
    assert "Estimated cost" in page and "Recipients" in page
    row = page[page.index('class="field-status_shown"') :]
    assert row.index("draft") < 40
    assert '<td class="field-flagged_sections">1</td>' in page
    assert '<td class="field-total_tokens">15456</td>' in page
    assert '<td class="field-estimated_cost">0.0123</td>' in page
    assert '<td class="field-recipients">3</td>' in page
    assert '<td class="field-sent">2</td>' in page


# --- the page ---------------------------------------------------------------------------------


def test_the_page_shows_each_sections_flags_on_top_an_editor_with_preview_and_its_papers(
    editor: User, issue: Digest
) -> None:
    section = issue.sections.order_by("position").first()
    assert section is not None
    section.summary = "**요약 보고서**\n\n중요한 결과 [1]."
    section.flags = [
        {"code": "language", "message": "contains Han characters: 重大"},
        {"code": "fallback", "message": "extractive summary: no LLM report"},
    ]
    section.save()
    title = Paper.objects.filter(section_entries__section=section).first()
    assert title is not None
    Paper.objects.filter(pk=title.pk).update(title="Attention <script>alert(1)</script> paper")

    page = client_for(editor).get(change_url(issue)).content.decode()

    flags_at = page.index('<ul class="section-flags"')
    assert page.index("Language check</strong>: contains Han characters: 重大") > flags_at
    assert "Fallback summary used</strong>: extractive summary" in page
    assert flags_at < page.index('name="sections-0-summary"'), "flags come before the text"
    # The Markdown editor and its rendered preview, side by side.
    assert 'class="summary-editor"' in page
    assert "<strong>요약 보고서</strong>" in page
    # Papers inline, with escaped titles.
    assert "papers of the sections (reorder, move, remove, add)" in page.lower()
    assert "Attention &lt;script&gt;alert(1)&lt;/script&gt; paper" in page
    assert "<script>alert(1)" not in page


def test_the_markdown_preview_renders_what_readers_will_see_sanitised(editor: User) -> None:
    response = client_for(editor).post(
        reverse("admin:digests_digest_markdown_preview"),
        {"text": "**굵게** [1]\n\n<script>alert(1)</script><img src=x onerror=alert(1)>"},
    )
    assert response.status_code == 200
    html = response.json()["html"]
    assert "<strong>굵게</strong>" in html
    assert "<script" not in html and "onerror" not in html


def test_the_markdown_preview_needs_a_staff_login() -> None:
    response = Client().post(reverse("admin:digests_digest_markdown_preview"), {"text": "x"})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


# --- editing ----------------------------------------------------------------------------------


def test_editing_a_summary_keeps_the_old_text_and_checks_the_new_one(
    editor: User, issue: Digest
) -> None:
    client = client_for(editor)
    section = issue.sections.order_by("position").first()
    assert section is not None
    old_text, old_version = section.summary, issue.version
    fields = page_form(client, issue)
    i = section_index(fields, section)
    fields[f"sections-{i}-summary"] = "**요약 보고서**\n\n이 연구는 重大한 결과를 보였다 [1], [9]."

    response = save(client, issue, fields)

    assert saved(response)
    section.refresh_from_db()
    issue.refresh_from_db()
    assert "重大한" in section.summary
    assert section.summary_source == SummarySource.EDITOR
    codes = {f["code"] for f in section.flags}
    assert codes == {"language", "unknown_reference"}, section.flags
    revision = SectionRevision.objects.get(section=section)
    assert revision.summary == old_text
    assert revision.reason == SectionRevision.Reason.EDIT and revision.created_by == "eun-ji"
    assert issue.version == old_version + 1 and issue.last_changed_by == "eun-ji"
    assert issue.reviewed_at is not None
    # The page shows the new flags to the next reader of it.
    page = client.get(change_url(issue)).content.decode()
    assert "Unknown references</strong>: cites [9] but only [1]..[3] exist" in page


def test_a_second_editor_saving_an_older_version_is_refused_and_keeps_their_text(
    editor: User, issue: Digest
) -> None:
    other = staff_in("Editors", "min-jun")
    first, second = client_for(editor), client_for(other)
    section = issue.sections.order_by("position").first()
    assert section is not None
    first_fields, second_fields = page_form(first, issue), page_form(second, issue)
    i = section_index(first_fields, section)
    first_fields[f"sections-{i}-summary"] = "첫 번째 편집자의 글 [1]."
    second_fields[f"sections-{i}-summary"] = "두 번째 편집자의 글 [2]."
    second_fields["title"] = "두 번째 편집자의 제목"

    assert saved(save(first, issue, first_fields))
    refused = save(second, issue, second_fields)

    page = refused.content.decode()
    assert refused.status_code == 200
    assert "Not saved: eun-ji changed this issue at" in page
    assert "Your changes are still in the form below" in page
    # Nothing of the second editor's is lost: it is all still in the form they see.
    assert "두 번째 편집자의 글 [2]." in page and "두 번째 편집자의 제목" in page
    # Nothing of the first editor's was overwritten.
    section.refresh_from_db()
    issue.refresh_from_db()
    assert section.summary == "첫 번째 편집자의 글 [1]."
    assert issue.title != "두 번째 편집자의 제목"
    # Posting the same stale form again is refused again.
    again = save(second, issue, form_fields(page, FORM)).content.decode()
    assert "Not saved: eun-ji changed this issue" in again


def test_a_rebuild_after_the_page_was_opened_also_refuses_the_stale_save(
    editor: User, issue: Digest
) -> None:
    client = client_for(editor)
    fields = page_form(client, issue)
    fields["title"] = "A new title"
    Digest.objects.filter(pk=issue.pk).update(version=issue.version + 1, last_changed_by="build")

    page = save(client, issue, fields).content.decode()

    assert "Not saved: build changed this issue" in page
    issue.refresh_from_db()
    assert issue.title != "A new title"


def test_moving_a_paper_makes_its_category_the_editors_choice_and_flags_both_sections(
    editor: User, issue: Digest
) -> None:
    client = client_for(editor)
    llm, vision = issue.sections.order_by("position")
    entry = llm.entries.order_by("position").first()
    assert entry is not None
    fields = page_form(client, issue)
    fields[f"entries-{entry_index(fields, entry)}-section"] = str(vision.pk)

    assert saved(save(client, issue, fields))

    paper = Paper.objects.get(pk=entry.paper_id)
    assert paper.category_id == vision.category_id
    assert paper.classified_by == ClassifiedBy.EDITOR
    for section in (llm, vision):
        section.refresh_from_db()
        assert section.entries_edited
        assert "sources_changed" in {f["code"] for f in section.flags}
    assert (llm.paper_count, vision.paper_count) == (2, 4)
    page = client.get(change_url(issue)).content.decode()
    assert "Sources changed</strong>: Its papers were changed" in page


def test_reordering_removing_and_adding_papers(editor: User, issue: Digest) -> None:
    client = client_for(editor)
    llm = issue.sections.order_by("position").first()
    assert llm is not None
    first, second, third = llm.entries.order_by("position")
    left_out = paper_make(day=issue.date)
    Paper.objects.filter(pk=left_out.pk).update(digest=issue)
    fields = page_form(client, issue)
    fields[f"entries-{entry_index(fields, third)}-position"] = "0"
    fields[f"entries-{entry_index(fields, first)}-position"] = "2"
    fields[f"entries-{entry_index(fields, second)}-DELETE"] = "on"
    extra = int(fields["entries-TOTAL_FORMS"]) - 1
    fields[f"entries-{extra}-section"] = str(llm.pk)
    fields[f"entries-{extra}-position"] = "1"
    fields[f"entries-{extra}-paper"] = str(left_out.pk)

    response = save(client, issue, fields)

    assert saved(response), response.content.decode()[-3000:]
    shown = list(llm.entries.order_by("position").values_list("paper_id", flat=True))
    assert shown == [third.paper_id, left_out.pk, first.paper_id]
    removed = Paper.objects.get(pk=second.paper_id)
    assert removed.excluded and removed.digest_id == issue.pk
    added = Paper.objects.get(pk=left_out.pk)
    assert added.category_id == llm.category_id and added.classified_by == ClassifiedBy.EDITOR


@pytest.mark.parametrize("case", ["other day", "already shown"])
def test_adding_a_paper_that_does_not_belong_is_refused_with_a_reason(
    editor: User, issue: Digest, case: str
) -> None:
    client = client_for(editor)
    llm, vision = issue.sections.order_by("position")
    if case == "other day":
        paper = paper_make(day=date(2026, 8, 12))
        expected = "was announced on 2026-08-12, not on 2026-08-13"
    else:
        entry = vision.entries.first()
        assert entry is not None
        paper = entry.paper
        expected = f"{paper.arxiv_id} is already shown in {vision.category.name}"
    fields = page_form(client, issue)
    extra = int(fields["entries-TOTAL_FORMS"]) - 1
    fields[f"entries-{extra}-section"] = str(llm.pk)
    fields[f"entries-{extra}-paper"] = str(paper.pk)
    version = issue.version

    page = save(client, issue, fields).content.decode()

    assert expected in page
    issue.refresh_from_db()
    assert issue.version == version, "nothing was saved"
    assert llm.entries.count() == 3


def test_editing_an_approved_issue_returns_it_to_draft(editor: User, issue: Digest) -> None:
    digest_approve(digest=issue, by="someone")
    client = client_for(editor)
    fields = page_form(client, issue)
    fields["introduction"] = "고친 소개 글."

    page = save(client, issue, fields).content.decode()

    assert "your edit returned it to draft" in page
    issue.refresh_from_db()
    assert issue.status == Digest.Status.DRAFT and issue.send_at is None
    assert issue.introduction == "고친 소개 글."
    assert LogEntry.objects.filter(
        object_id=str(issue.pk), change_message__contains="returned to draft"
    ).exists()


def test_saving_an_unchanged_page_changes_nothing(editor: User, issue: Digest) -> None:
    digest_approve(digest=issue, by="someone")
    issue.refresh_from_db()
    client = client_for(editor)
    fields = page_form(client, issue)
    # Browsers submit a textarea's line ends as CRLF.
    crlf = {k: v.replace("\n", "\r\n") if isinstance(v, str) else v for k, v in fields.items()}

    assert saved(save(client, issue, crlf))

    after = Digest.objects.get(pk=issue.pk)
    assert after.status == Digest.Status.APPROVED and after.version == issue.version
    sources = set(after.sections.values_list("summary_source", flat=True))
    assert SummarySource.EDITOR not in sources
    assert not SectionRevision.objects.exists()


@pytest.mark.parametrize("status", [Digest.Status.SENDING, Digest.Status.SENT])
def test_an_issue_being_sent_or_sent_is_read_only(editor: User, issue: Digest, status: str) -> None:
    Digest.objects.filter(pk=issue.pk).update(status=status)
    client = client_for(editor)

    page = client.get(change_url(issue)).content.decode()
    refused = client.post(change_url(issue), {"title": "x", "version": issue.version})

    assert 'name="_save"' not in page and "<textarea" not in page
    assert refused.status_code == 403


# --- rebuilds keep the editors' work ------------------------------------------------------------


def test_a_rebuild_keeps_sections_whose_papers_an_editor_changed(
    offline: None, editor: User
) -> None:
    a_day_of_papers()
    report = digest_build(day=DAY)
    digest = Digest.objects.get(pk=report.digest_id)
    section = digest.sections.filter(entries__isnull=False).order_by("position").first()
    assert section is not None
    entry = section.entries.first()
    assert entry is not None
    client = client_for(editor)
    fields = page_form(client, digest)
    fields[f"entries-{entry_index(fields, entry)}-DELETE"] = "on"
    assert saved(save(client, digest, fields))

    digest_build(day=DAY)

    rebuilt = DigestSection.objects.get(digest=digest, category=section.category)
    assert not rebuilt.entries.filter(paper_id=entry.paper_id).exists()
    assert Paper.objects.get(pk=entry.paper_id).excluded


# --- who may do what ----------------------------------------------------------------------------


def test_the_migration_creates_editors_and_viewers_with_their_permissions() -> None:
    editors = {p.codename for p in Group.objects.get(name="Editors").permissions.all()}
    viewers = {p.codename for p in Group.objects.get(name="Viewers").permissions.all()}
    for codename in ("change_digest", "approve_digest", "send_test_digest", "regenerate_section"):
        assert codename in editors
    assert "view_digest" in viewers and "view_delivery" in viewers
    assert not {c for c in viewers if not c.startswith("view_")}
    assert "view_subscriber" not in viewers, "viewers do not see readers' addresses"


def test_a_viewer_sees_the_issue_read_only_and_cannot_save(issue: Digest) -> None:
    viewer = client_for(staff_in("Viewers", "viewer"))

    page = viewer.get(change_url(issue)).content.decode()
    refused = viewer.post(change_url(issue), {"title": "x", "version": issue.version})
    preview = viewer.post(reverse("admin:digests_digest_markdown_preview"), {"text": "**a**"})

    assert issue.title in page and "<textarea" not in page and 'name="_save"' not in page
    assert refused.status_code == 403
    assert preview.status_code == 200


def test_only_staff_reach_the_admin(issue: Digest) -> None:
    reader = User.objects.create_user("reader", "reader@example.com", "x")
    reader.groups.add(Group.objects.get(name="Editors"))  # a group without is_staff is not enough
    response = client_for(reader).get(change_url(issue))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_page_makes_no_query_per_paper(editor: User) -> None:
    """An issue's page costs the same number of queries with 2 or 5 papers per section."""
    client = client_for(editor)
    counts = []
    for day, papers in ((date(2026, 8, 13), 2), (date(2026, 8, 14), 5)):
        digest = issue_create(day=day, papers_per_section=papers, summary_length=300)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(change_url(digest)).status_code == 200
        counts.append(len(queries.captured_queries))
    assert counts[0] == counts[1], counts
