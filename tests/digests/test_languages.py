"""Reports in every offered language a reader uses: written by the build (daily and weekly),
checked for their own language, flagged, edited and kept on their own."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from digests.build import digest_build
from digests.editing import section_flags_refresh
from digests.langcheck import language_issues
from digests.models import Category, Digest, LLMCall, SectionReport, SummarySource
from digests.summarize import SYSTEM_PROMPT, summary_system_prompt
from digests.weekly import weekly_build
from subscribers.models import Subscriber
from tests.admin_forms import client_for, staff_in
from tests.digests.test_admin_editing import page_form, save, saved, section_index
from tests.digests.test_build import DAY, a_day_of_papers
from tests.digests.test_weekly import WEEK, sent_week, weekly_issue
from tests.fakes.openai_server import FakeOpenAI, japanese_report, user_payload
from tests.issue_factory import issue_create
from tests.subscribers.factories import subscriber_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def offered(settings: Any) -> None:
    settings.DIGEST_LANGUAGES = ["ko", "en", "ja"]
    settings.DIGEST_LANGUAGE = "ko"


def reports_by_language(digest: Digest) -> dict[str, list[SectionReport]]:
    found: dict[str, list[SectionReport]] = {}
    for report in SectionReport.objects.filter(section__digest=digest):
        found.setdefault(report.language, []).append(report)
    return found


def test_a_build_with_readers_in_korean_and_english_writes_both_reports_and_counts_them(
    fake: FakeOpenAI, offered: None
) -> None:
    subscriber_create(language="ko")
    subscriber_create(language="en")
    a_day_of_papers()

    report = digest_build(day=DAY)

    digest = Digest.objects.get(pk=report.digest_id)
    sections = list(digest.sections.all())
    english = reports_by_language(digest)
    assert set(english) == {"en"}
    assert len(english["en"]) == len(sections) > 0
    for section in sections:
        assert "**요약 보고서**" in section.summary and section.flags == []
        own = section.reports.get(language="en")
        assert own.summary.startswith("**Summary report**")
        assert own.summary_source == SummarySource.LLM and own.flags == []
    # Separate requests in English, counted with the others on the issue.
    asked_in_english = [c for c in fake.calls if '"language": "en"' in str(c)]
    assert len(asked_in_english) == len(sections)
    assert digest.llm_calls == LLMCall.objects.filter(digest_date=DAY).count() == len(fake.calls)


def test_a_language_nobody_active_reads_is_not_written(fake: FakeOpenAI, offered: None) -> None:
    subscriber_create(language="ko")
    subscriber_create(language="en", status=Subscriber.Status.UNSUBSCRIBED)
    subscriber_create(language="ja", status=Subscriber.Status.PENDING)
    a_day_of_papers()

    report = digest_build(day=DAY)

    assert not SectionReport.objects.exists()
    assert not [c for c in fake.calls if '"language": "en"' in str(c)]
    assert report.sections and all(not s.languages for s in report.sections)


def test_a_japanese_report_with_kana_passes_its_checks(fake: FakeOpenAI, offered: None) -> None:
    subscriber_create(language="ja")
    a_day_of_papers()

    digest_build(day=DAY)

    japanese = SectionReport.objects.filter(language="ja")
    assert japanese.exists()
    for report in japanese:
        assert "要約レポート" in report.summary and report.flags == []


def test_kana_is_japanese_but_flags_a_korean_report() -> None:
    text = japanese_report("LLM", 2)
    korean_with_kana = "**요약 보고서**\n\n이 연구者は 새로운 방법을 제안합니다 [1]."

    assert language_issues(text=text, language="ja") == []
    issues = language_issues(text=korean_with_kana, language="ko")
    assert [i.code for i in issues] == ["language"]
    assert "Japanese characters in Korean text: 者は" in issues[0].message
    hangul_in_japanese = language_issues(text=text + "\n\n한국어 문장입니다.", language="ja")
    assert "Korean characters in Japanese text" in hangul_in_japanese[0].message


def test_the_prompt_names_the_language_and_its_script() -> None:
    prompt = summary_system_prompt(language="ja", count=3)

    assert prompt != SYSTEM_PROMPT
    assert "Write every sentence in Japanese (日本語)" in prompt
    assert "kana and kanji" in prompt and "**要約レポート**" in prompt


def test_without_an_llm_the_extra_report_is_the_flagged_extractive_one(
    offline: None, offered: None
) -> None:
    subscriber_create(language="en")
    a_day_of_papers()

    digest_build(day=DAY)

    english = SectionReport.objects.filter(language="en")
    assert english.exists()
    for report in english:
        assert report.summary_source == SummarySource.FALLBACK
        assert "fallback" in {f["code"] for f in report.flags}
        assert report.summary.startswith("**Summary report**")


def test_a_rebuild_keeps_an_editors_extra_language_report(offline: None, offered: None) -> None:
    subscriber_create(language="en")
    a_day_of_papers()
    digest = Digest.objects.get(pk=digest_build(day=DAY).digest_id)
    edited = SectionReport.objects.filter(section__digest=digest).order_by("pk").first()
    assert edited is not None
    category = edited.section.category_id
    SectionReport.objects.filter(pk=edited.pk).update(
        summary="An editor's English text [1].", summary_source=SummarySource.EDITOR, flags=[]
    )

    digest_build(day=DAY)

    kept = SectionReport.objects.get(section__category_id=category, language="en")
    assert kept.summary == "An editor's English text [1]."
    assert kept.summary_source == SummarySource.EDITOR
    others = SectionReport.objects.exclude(pk=kept.pk).filter(language="en")
    assert others.exists() and {r.summary_source for r in others} == {SummarySource.FALLBACK}


def test_the_admin_shows_edits_and_flags_an_extra_language_report(offered: None) -> None:
    categories = list(Category.objects.filter(slug__in=["llm", "computer-vision"]))
    issue = issue_create(categories=categories, papers_per_section=3, summary_length=600)
    section = issue.sections.order_by("position").first()
    assert section is not None
    SectionReport.objects.create(
        section=section,
        language="en",
        summary="**Summary report**\n\nThe LLM-written English report [1].",
        summary_source=SummarySource.LLM,
        flags=[{"code": "uncited", "message": "never cites [2], [3]"}],
    )
    editor: User = staff_in("Editors", "eun-ji")
    client = client_for(editor)

    page = client.get(f"/admin/digests/digest/{issue.pk}/change/").content.decode()
    assert "The LLM-written English report [1]." in page
    assert 'name="sections-0-report_en"' in page and 'name="sections-0-report_ja"' in page
    assert "never cites [2], [3]" in page

    fields = page_form(client, issue)
    i = section_index(fields, section)
    fields[f"sections-{i}-report_en"] = "The editor's English report [1], 研究者は [7]."
    fields[f"sections-{i}-report_ja"] = "編集者が書いた日本語のレポートです [1]。"
    response = save(client, issue, fields)

    assert saved(response)
    english = SectionReport.objects.get(section=section, language="en")
    assert english.summary_source == SummarySource.EDITOR
    assert {f["code"] for f in english.flags} == {"language", "unknown_reference"}
    japanese = SectionReport.objects.get(section=section, language="ja")
    assert japanese.summary_source == SummarySource.EDITOR and japanese.flags == []
    section.refresh_from_db()
    assert section.summary_source != SummarySource.EDITOR  # the Korean report is untouched
    page = client.get(f"/admin/digests/digest/{issue.pk}/change/").content.decode()
    assert "cites [7] but only [1]..[3] exist" in page


def test_a_weekly_issue_writes_the_english_report_from_the_weeks_english_reports(
    fake: FakeOpenAI, offered: None
) -> None:
    subscriber_create(language="en", cadence=Subscriber.Cadence.WEEKLY)
    for issue in sent_week(days=2):
        for section in issue.sections.all():
            SectionReport.objects.create(
                section=section, language="en", summary=f"English of {issue.date} [1]."
            )

    weekly_build(week=WEEK)

    english = [c for c in fake.calls if user_payload(c)["language"] == "en"]
    assert len(english) == 2  # one per section
    daily = [r["report"] for r in user_payload(english[0])["daily_reports"]]
    assert daily == ["English of 2026-08-10 .", "English of 2026-08-11 ."]
    for section in weekly_issue().sections.all():
        report = section.reports.get(language="en")
        assert report.summary.startswith("**Summary report**") and report.flags == []
    assert weekly_issue().llm_calls == len(fake.calls) == 4


def test_when_a_sections_papers_change_its_other_language_reports_are_flagged_too(
    offered: None,
) -> None:
    categories = list(Category.objects.filter(slug__in=["llm", "computer-vision"]))
    issue = issue_create(categories=categories, papers_per_section=3, summary_length=600)
    section = issue.sections.order_by("position").first()
    assert section is not None
    report = SectionReport.objects.create(
        section=section,
        language="en",
        summary="**Summary report**\n\nThe English report [1], [2], [3].",
        summary_source=SummarySource.LLM,
    )

    section_flags_refresh(section=section, sources_changed=True)

    report.refresh_from_db()
    assert [f["code"] for f in report.flags] == ["sources_changed"]


def test_a_sent_issue_shows_its_other_language_reports_read_only(offered: None) -> None:
    categories = list(Category.objects.filter(slug__in=["llm", "computer-vision"]))
    issue = issue_create(
        categories=categories, papers_per_section=2, summary_length=300, status=Digest.Status.SENT
    )
    section = issue.sections.order_by("position").first()
    assert section is not None
    SectionReport.objects.create(section=section, language="en", summary="Sent in English [1].")
    client = client_for(staff_in("Editors", "eun-ji"))

    page = client.get(f"/admin/digests/digest/{issue.pk}/change/").content.decode()

    assert "Sent in English [1]." in page and "<textarea" not in page
