"""The weekly issue (digests/weekly.py): built from a week's sent daily issues, reviewed,
approved for the weekly send time, archived, and sent to weekly readers only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from xml.etree import ElementTree

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core import mail
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from digests.approval import digest_approve, next_weekly_send_time
from digests.build import BuildRefused
from digests.models import Category, Digest, DigestSection, Paper, SectionPaper, SummarySource
from digests.summarize import weekly_section_summarize_fresh
from digests.tasks import build_weekly
from digests.weekly import (
    Week,
    last_complete_week,
    week_parse,
    weekly_build,
    weekly_section_input,
)
from subscribers.models import Delivery, Subscriber
from subscribers.tasks import send_start
from tests.admin_forms import client_for, form_fields, page_text
from tests.fakes.openai_server import FakeOpenAI, user_payload
from tests.issue_factory import issue_create
from tests.subscribers.factories import subscriber_create

pytestmark = pytest.mark.django_db

WEEK = Week(2026, 33)  # Monday 2026-08-10 to Sunday 2026-08-16
MONDAY = date(2026, 8, 10)
SUNDAY = date(2026, 8, 16)
ATOM = "{http://www.w3.org/2005/Atom}"


def two_categories() -> list[Category]:
    chosen = list(Category.objects.filter(slug__in=["llm", "computer-vision"]).order_by("position"))
    assert len(chosen) == 2, "the migration's default categories"
    return chosen


def daily_issue(day: date, *, status: str = Digest.Status.SENT, per_section: int = 3) -> Digest:
    """A daily issue of `day` whose papers have importance 1, 2, 3 ... in each section; its
    reports cite their papers [1], [2] as daily reports do."""
    summaries = {
        c.pk: f"**요약 보고서**\n\n{day} {c.name} 보고서 [1], [2]." for c in two_categories()
    }
    digest = issue_create(
        day=day,
        categories=two_categories(),
        papers_per_section=per_section,
        status=status,
        summaries=summaries,
    )
    for entry in SectionPaper.objects.filter(digest=digest):
        Paper.objects.filter(pk=entry.paper_id).update(importance=entry.position + 1)
    return digest


def sent_week(days: int = 3) -> list[Digest]:
    return [daily_issue(MONDAY + timedelta(days=n)) for n in range(days)]


def weekly_issue() -> Digest:
    return Digest.objects.get(kind=Digest.Kind.WEEKLY, date=SUNDAY)


def codes(flags: list[dict[str, str]]) -> set[str]:
    return {f["code"] for f in flags}


# --- The build --------------------------------------------------------------------------------


def test_a_weekly_issue_shows_each_categorys_most_important_papers_of_the_sent_issues(
    offline: None, settings: Any
) -> None:
    settings.WEEKLY_TOP_PAPERS = 2
    monday, tuesday = sent_week(days=2)
    draft = daily_issue(MONDAY + timedelta(days=3), status=Digest.Status.DRAFT)
    Paper.objects.filter(digest=draft).update(importance=10)  # never sent: not in the week

    report = weekly_build(week=WEEK)

    digest = weekly_issue()
    assert report.digest_id == digest.pk and report.created
    assert (digest.kind, digest.status, digest.date) == ("weekly", "draft", SUNDAY)
    assert "2026-W33" in digest.title
    assert digest.paper_count == 12  # 2 issues x 2 sections x 3 papers
    assert bytes(digest.chart_png).startswith(b"\x89PNG")
    assert "2026-08-10" in digest.introduction and "2026-08-11" in digest.introduction
    assert report.daily_issues == [MONDAY, MONDAY + timedelta(days=1)]
    for section in digest.sections.select_related("category"):
        assert section.paper_count == 6
        entries = list(section.entries.select_related("paper").order_by("position"))
        assert all(entry.weekly for entry in entries)
        shown = [(e.paper.importance, e.paper.announced_on) for e in entries]
        # The most important first; of equal importance the earlier day first.
        assert shown == [(3, MONDAY), (3, MONDAY + timedelta(days=1))]
        assert all(e.paper.category_id == section.category_id for e in entries)
    # The papers stay their daily issues'.
    assert Paper.objects.filter(digest=digest).count() == 0
    assert Paper.objects.filter(digest__in=[monday, tuesday]).count() == 12


def test_without_an_llm_each_section_gets_a_flagged_extractive_weekly_summary(
    offline: None,
) -> None:
    sent_week()

    report = weekly_build(week=WEEK)

    for section in weekly_issue().sections.all():
        assert section.summary_source == SummarySource.FALLBACK
        assert codes(section.flags) == {"fallback"}
        assert "이번 주" in section.summary and "[1]" in section.summary
    assert report.llm_calls == 0


def test_with_the_llm_each_section_gets_a_weekly_report_from_the_weeks_daily_reports(
    fake: FakeOpenAI, settings: Any
) -> None:
    settings.WEEKLY_TOP_PAPERS = 4
    sent_week(days=3)
    daily_issue(MONDAY + timedelta(days=3), status=Digest.Status.APPROVED)

    report = weekly_build(week=WEEK)

    assert len(fake.calls) == 2  # one per section
    system = fake.calls[0]["messages"][0]["content"]
    assert "weekly newsletter" in system and "untrusted data" in system
    payload = user_payload(fake.calls[0])
    assert payload["week"] == "2026-W33"
    assert len(payload["papers"]) == 4
    days = [r["date"] for r in payload["daily_reports"]]
    assert days == ["2026-08-10", "2026-08-11", "2026-08-12"]  # the approved one is not sent
    assert all("[1]" not in r["report"] for r in payload["daily_reports"])
    for section in weekly_issue().sections.all():
        assert section.summary_source == SummarySource.LLM and section.flags == []
        assert section.entries.count() == 4
    assert report.llm_calls == 2 and weekly_issue().llm_calls == 2


def test_a_weekly_report_failing_its_checks_is_asked_again_then_kept_flagged(
    fake: FakeOpenAI,
) -> None:
    sent_week(days=1)
    fake.fail_next(*["foreign_words"] * 4)  # both sections' reports, then both retries

    weekly_build(week=WEEK)

    assert len(fake.calls) == 4
    for section in weekly_issue().sections.all():
        assert section.summary_source == SummarySource.LLM
        assert codes(section.flags) == {"language"}
    assert "previous_answer_problems" in user_payload(fake.calls[3])


def test_a_week_without_sent_daily_issues_builds_nothing_and_says_why(offline: None) -> None:
    daily_issue(MONDAY, status=Digest.Status.DRAFT)
    said: list[str] = []

    report = weekly_build(week=WEEK, log=said.append)

    assert not report.built
    assert "No daily issue was sent in 2026-W33" in report.reason
    assert "1 daily issues not sent yet" in report.reason
    assert said == [report.reason]
    assert not Digest.objects.filter(kind=Digest.Kind.WEEKLY).exists()


def test_a_rebuild_keeps_the_editors_sections_and_refuses_an_approved_issue(
    offline: None,
) -> None:
    sent_week(days=2)
    weekly_build(week=WEEK)
    written, moved = weekly_issue().sections.order_by("position")
    DigestSection.objects.filter(pk=written.pk).update(
        summary="편집자가 쓴 주간 보고서.", summary_source=SummarySource.EDITOR
    )
    DigestSection.objects.filter(pk=moved.pk).update(entries_edited=True)
    kept_entries = list(moved.entries.values_list("paper_id", flat=True))
    SectionPaper.objects.filter(section=moved).order_by("position").first().delete()  # type: ignore[union-attr]

    report = weekly_build(week=WEEK)

    assert not report.created
    digest = weekly_issue()
    assert digest.build_count == 2
    assert digest.sections.get(pk=written.pk).summary == "편집자가 쓴 주간 보고서."
    assert (
        list(digest.sections.get(pk=moved.pk).entries.values_list("paper_id", flat=True))
        == (kept_entries[1:])
    )

    digest_approve(digest=digest, by="ed")
    with pytest.raises(BuildRefused, match="approved"):
        weekly_build(week=WEEK)


def test_one_weekly_section_can_be_written_again_without_the_cache(fake: FakeOpenAI) -> None:
    sent_week(days=2)
    weekly_build(week=WEEK)
    section = weekly_issue().sections.select_related("digest", "category").first()
    assert section is not None

    summary = weekly_section_summarize_fresh(
        item=weekly_section_input(section), language="ko", digest_date=SUNDAY
    )

    assert summary.source == "llm" and summary.flags == []
    assert len(fake.calls) == 3  # two sections built, then this one again, uncached
    payload = user_payload(fake.calls[2])
    assert payload["week"] == "2026-W33" and len(payload["daily_reports"]) == 2


def test_an_editor_regenerating_a_weekly_section_gets_a_weekly_report(fake: FakeOpenAI) -> None:
    from digests.regenerate import regeneration_request, regeneration_run

    sent_week(days=2)
    weekly_build(week=WEEK)
    section = weekly_issue().sections.order_by("position").first()
    assert section is not None

    regeneration = regeneration_request(section=section, by="ed")
    regeneration_run(regeneration_id=regeneration.pk)

    payload = user_payload(fake.calls[-1])  # the week's prompt, not a day's
    assert payload["week"] == "2026-W33" and len(payload["daily_reports"]) == 2
    section.refresh_from_db()
    assert section.summary_source == SummarySource.LLM


# --- The week, the command, the task -----------------------------------------------------------


def test_weeks_are_written_as_iso_weeks() -> None:
    assert week_parse("2026-W33") == WEEK
    assert (WEEK.monday, WEEK.sunday, WEEK.label) == (MONDAY, SUNDAY, "2026-W33")
    assert week_parse("2026-W53") == Week(2026, 53)  # 2026 has 53 ISO weeks
    for bad in ("2026-33", "2026W33", "2026-W7", "2025-W53", "2026-W00"):
        with pytest.raises(ValueError):
            week_parse(bad)


def test_the_last_complete_week_is_this_one_from_saturday_else_the_one_before() -> None:
    assert last_complete_week(today=date(2026, 8, 15)) == WEEK  # Saturday
    assert last_complete_week(today=date(2026, 8, 16)) == WEEK  # Sunday
    assert last_complete_week(today=date(2026, 8, 17)) == WEEK  # Monday of the next week
    assert last_complete_week(today=date(2026, 8, 14)) == Week(2026, 32)  # Friday


def test_the_command_prints_what_it_built(offline: None, capsys: Any) -> None:
    sent_week(days=2)

    call_command("build_weekly", "--week", "2026-W33")

    out = capsys.readouterr().out
    assert "Created draft weekly issue 2026-W33 (2026-08-16) with 12 papers of 2 daily issues" in (
        out
    )
    assert "LLM: 6 papers, 5 shown, summary: fallback" in out
    assert "FLAG fallback" in out
    assert "LLM: 0 calls" in out
    assert f"/admin/digests/digest/{weekly_issue().pk}/change/" in out


@time_machine.travel(datetime(2026, 8, 14, 23, 0, tzinfo=UTC), tick=False)  # Sat 08:00 Seoul
def test_the_command_builds_the_last_complete_week_by_default(offline: None, capsys: Any) -> None:
    sent_week(days=1)
    call_command("build_weekly")
    assert "weekly issue 2026-W33" in capsys.readouterr().out


def test_the_command_rejects_a_malformed_week_and_an_approved_issue(offline: None) -> None:
    with pytest.raises(CommandError, match="YYYY-Www"):
        call_command("build_weekly", "--week", "2026-08-10")
    sent_week(days=1)
    weekly_build(week=WEEK)
    digest_approve(digest=weekly_issue(), by="ed")
    with pytest.raises(CommandError, match="only drafts are rebuilt"):
        call_command("build_weekly", "--week", "2026-W33")


def test_the_task_builds_the_week_and_an_approved_week_is_no_failure(offline: None) -> None:
    sent_week(days=1)
    result = build_weekly("2026-W33")
    assert result == {"week": "2026-W33", "digest_id": weekly_issue().pk, "reason": ""}
    digest_approve(digest=weekly_issue(), by="ed")
    assert "only drafts" in build_weekly("2026-W33")["reason"]


# --- Approval ---------------------------------------------------------------------------------


@time_machine.travel(datetime(2026, 8, 14, 23, 0, tzinfo=UTC), tick=False)  # Sat 08:00 Seoul
def test_a_weekly_issue_is_approved_by_default_for_the_weekly_send_time(offline: None) -> None:
    sent_week(days=1)
    weekly_build(week=WEEK)

    approved = digest_approve(digest=weekly_issue(), by="ed")

    assert approved.send_at == datetime(2026, 8, 15, 0, 0, tzinfo=UTC)  # Sat 09:00 Seoul
    daily = Digest.objects.get(date=MONDAY)
    Digest.objects.filter(pk=daily.pk).update(status=Digest.Status.DRAFT)
    assert digest_approve(digest=daily, by="ed").send_at == datetime(
        2026, 8, 15, 22, 0, tzinfo=UTC
    )  # the daily one: the next 07:00 Seoul


def test_the_weekly_send_time_follows_the_settings(settings: Any) -> None:
    settings.WEEKLY_SEND_DAY = "mon"
    settings.WEEKLY_SEND_TIME = "18:30"
    saturday = datetime(2026, 8, 15, 3, 0, tzinfo=UTC)
    assert next_weekly_send_time(now=saturday) == datetime(2026, 8, 17, 9, 30, tzinfo=UTC)
    at_the_time = datetime(2026, 8, 17, 9, 30, tzinfo=UTC)
    assert next_weekly_send_time(now=at_the_time) == datetime(2026, 8, 24, 9, 30, tzinfo=UTC)


# --- The admin --------------------------------------------------------------------------------


@time_machine.travel(datetime(2026, 8, 14, 23, 0, tzinfo=UTC), tick=False)  # Sat 08:00 Seoul
def test_the_admin_lists_the_kind_and_the_weekly_page_edits_and_approves(
    offline: None, editor: User
) -> None:
    sent_week(days=2)
    weekly_build(week=WEEK)
    digest = weekly_issue()
    client = client_for(editor)

    listing = client.get(reverse("admin:digests_digest_changelist") + "?kind__exact=weekly")
    assert listing.status_code == 200
    text = page_text(listing)
    assert " weekly draft 12 " in text and "1 digest" in text  # the kind column, filtered
    assert "kind" in text

    url = reverse("admin:digests_digest_change", args=[digest.pk])
    page = client.get(url).content.decode()
    assert 'name="send_at" value="2026-08-15T09:00"' in page  # the weekly send time
    assert 'id="integrity"' not in page  # a week has no feeds of its own to judge
    fields = form_fields(page, "digest_form")
    removed = SectionPaper.objects.filter(digest=digest).order_by("section", "position").first()
    assert removed is not None
    index = next(
        k.split("-")[1]
        for k, v in fields.items()
        if k.startswith("entries-") and k.endswith("-id") and v == str(removed.pk)
    )
    fields[f"entries-{index}-DELETE"] = "on"
    response = client.post(url, fields, follow=True)
    assert response.redirect_chain[-1][0] == reverse("admin:digests_digest_changelist")

    assert not SectionPaper.objects.filter(pk=removed.pk).exists()
    paper = Paper.objects.get(pk=removed.paper_id)
    assert not paper.excluded and paper.digest_id != digest.pk  # still its daily issue's
    assert DigestSection.objects.get(pk=removed.section_id).entries_edited
    assert weekly_issue().paper_count == 12  # the week's count, not the shown papers'

    approve = client.post(
        reverse("admin:digests_digest_approve", args=[digest.pk]),
        {"send_at": "2026-08-15T09:00", "version": weekly_issue().version},
        follow=True,
    )
    assert approve.status_code == 200
    assert weekly_issue().status == Digest.Status.APPROVED


@pytest.mark.parametrize("case", ["of the week", "not sent"])
def test_an_editor_adds_to_a_weekly_issue_only_a_paper_of_the_weeks_sent_issues(
    offline: None, editor: User, case: str, settings: Any
) -> None:
    settings.WEEKLY_TOP_PAPERS = 2
    sent_week(days=1)
    draft = daily_issue(MONDAY + timedelta(days=1), status=Digest.Status.DRAFT)
    weekly_build(week=WEEK)
    digest = weekly_issue()
    shown = SectionPaper.objects.filter(digest=digest).values_list("paper_id", flat=True)
    source = Digest.objects.get(date=MONDAY) if case == "of the week" else draft
    paper = Paper.objects.filter(digest=source).exclude(pk__in=list(shown)).first()
    assert paper is not None
    section = digest.sections.get(category_id=paper.category_id)
    client = client_for(editor)
    url = reverse("admin:digests_digest_change", args=[digest.pk])
    fields = form_fields(client.get(url).content.decode(), "digest_form")
    extra = int(fields["entries-TOTAL_FORMS"]) - 1
    fields[f"entries-{extra}-section"] = str(section.pk)
    fields[f"entries-{extra}-position"] = "9"
    fields[f"entries-{extra}-paper"] = str(paper.pk)

    response = client.post(url, fields, follow=True)

    added = SectionPaper.objects.filter(digest=digest, paper=paper).first()
    if case == "of the week":
        assert added is not None and added.weekly
        assert Paper.objects.get(pk=paper.pk).digest_id == source.pk
    else:
        assert added is None
        assert "is not a paper of the daily issues sent in 2026-W33" in page_text(response)


# --- The archive ------------------------------------------------------------------------------


def test_a_sent_weekly_issue_is_in_the_archive_marked_and_has_its_own_atom_entry(
    offline: None, client: Any
) -> None:
    sent_week(days=2)
    weekly_build(week=WEEK)
    Digest.objects.filter(pk=weekly_issue().pk).update(
        status=Digest.Status.SENT, sent_at=timezone.now()
    )

    listing = client.get("/archive/").content.decode()
    assert "2026-08-16" in listing and "주간 호" in listing
    assert listing.count("주간 호") == 1  # the daily issues are not marked
    page = client.get("/archive/2026-08-16/").content.decode()
    assert "주간 호" in page and "2026-08-10" in page

    feed = ElementTree.fromstring(client.get("/archive/atom.xml").content)  # noqa: S314 - ours
    entries = feed.findall(f"{ATOM}entry")
    ids = [e.findtext(f"{ATOM}id") for e in entries]
    assert len(entries) == 3 and len(set(ids)) == 3
    weekly = next(e for e in entries if "2026-08-16" in (e.findtext(f"{ATOM}id") or ""))
    assert "2026-08-10 – 2026-08-16" in (weekly.findtext(f"{ATOM}title") or "")
    assert weekly.find(f"{ATOM}category").get("term") == "weekly"  # type: ignore[union-attr]


# --- End to end: built, approved, sent to weekly readers only ----------------------------------


@pytest.fixture
def send(
    settings: Any, django_capture_on_commit_callbacks: Callable[..., Any]
) -> Callable[[Digest], Any]:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.CELERY_TASK_ALWAYS_EAGER = True

    def run(digest: Digest) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return send_start(digest.pk)

    return run


def test_a_weekly_issue_goes_to_weekly_readers_and_a_daily_one_to_daily_readers(
    offline: None, send: Callable[[Digest], Any]
) -> None:
    subscriber_create(email="daily@example.com", categories=two_categories())
    subscriber_create(
        email="weekly@example.com", categories=two_categories(), cadence=Subscriber.Cadence.WEEKLY
    )
    sent_week(days=2)
    friday = daily_issue(MONDAY + timedelta(days=4), status=Digest.Status.DRAFT)
    weekly_build(week=WEEK)
    past = timezone.now() - timedelta(minutes=1)
    for digest in (friday, weekly_issue()):
        digest_approve(digest=digest, send_at=past, by="ed")

    send(friday)
    send(weekly_issue())

    assert [m.to for m in mail.outbox] == [["daily@example.com"], ["weekly@example.com"]]
    daily_mail, weekly_mail = mail.outbox
    assert "2026-08-14" in daily_mail.subject and "주간" not in daily_mail.subject
    assert "주간 2026-08-10 ~ 2026-08-16" in weekly_mail.subject
    assert "이번 주 이 분야의 중요 논문" in weekly_mail.body
    # The date line names the week, Monday to Sunday.
    assert "주간 2026년 8월 10일 (월) ~ 2026년 8월 16일 (일)" in weekly_mail.body
    assert list(Delivery.objects.filter(digest=weekly_issue()).values_list("email", flat=True)) == [
        "weekly@example.com"
    ]
