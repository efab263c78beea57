from __future__ import annotations

from datetime import date

import pytest
from django.core.management import call_command

from digests.build import BuildRefused, digest_build
from digests.models import (
    AnnounceType,
    Category,
    ClassifiedBy,
    Digest,
    LLMCall,
    Paper,
    SummarySource,
)
from tests.factories import paper_create
from tests.fakes.openai_server import FakeOpenAI

DAY = date(2026, 8, 13)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.django_db


def a_day_of_papers(day: date = DAY) -> list[Paper]:
    return [
        paper_create(
            title="Neural machine translation for low-resource languages",
            abstract="We improve translation quality for low-resource language pairs.",
            categories=["cs.CL"],
            announced_on=day,
        ),
        paper_create(
            title="Video object segmentation with sparse attention",
            abstract="We segment objects in video frames with a new image backbone.",
            categories=["cs.CV"],
            announced_on=day,
        ),
        paper_create(
            title="Chain-of-thought prompting makes large language models reason",
            abstract="Large language models (LLMs) reason better when prompted step by step.",
            categories=["cs.CL", "cs.AI"],
            announced_on=day,
        ),
        paper_create(
            title="Offline reinforcement learning for robot grasping",
            abstract="A policy learned from reward signals grasps objects with a robot arm.",
            categories=["cs.RO"],
            announced_on=day,
        ),
        paper_create(
            title="Quantized optimizer states for memory-efficient training",
            abstract="We quantize optimizer states and gradients to train with less memory.",
            categories=["cs.LG"],
            announced_on=day,
        ),
    ]


def shown_arxiv_ids(digest: Digest) -> set[str]:
    return {
        entry.paper.arxiv_id
        for section in digest.sections.all()
        for entry in section.entries.select_related("paper")
    }


def test_an_offline_build_makes_a_draft_with_rules_and_flagged_extractive_summaries(
    offline: None,
) -> None:
    papers = a_day_of_papers()

    report = digest_build(day=DAY)

    digest = Digest.objects.get(date=DAY)
    assert report.digest_id == digest.pk and report.created
    assert digest.status == Digest.Status.DRAFT
    assert digest.paper_count == 5
    assert bytes(digest.chart_png).startswith(PNG_SIGNATURE)
    assert shown_arxiv_ids(digest) == {p.arxiv_id for p in papers}
    assert set(Paper.objects.values_list("classified_by", flat=True)) == {ClassifiedBy.RULES}
    for section in digest.sections.all():
        assert section.summary_source == SummarySource.FALLBACK
        assert "fallback" in {flag["code"] for flag in section.flags}
        assert section.summary.strip()
    assert LLMCall.objects.count() == 0


def test_sections_follow_category_order_and_sources_come_from_the_database(
    offline: None,
) -> None:
    a_day_of_papers()

    digest_build(day=DAY)

    digest = Digest.objects.get(date=DAY)
    positions = [s.category.position for s in digest.sections.select_related("category")]
    assert positions == sorted(positions)
    for section in digest.sections.all():
        for entry in section.entries.select_related("paper"):
            assert entry.paper.abs_url == f"https://arxiv.org/abs/{entry.paper.arxiv_id}"
            assert entry.paper.category_id == section.category_id


def test_only_the_top_papers_by_importance_are_shown_per_section(offline: None, settings) -> None:  # type: ignore[no-untyped-def]
    settings.DIGEST_TOP_PAPERS = 2
    llm_category = Category.objects.get(slug="llm")
    for importance in (3, 9, 5, 7):
        paper_create(
            title=f"Large language model study {importance}",
            category=llm_category,
            importance=importance,
            classified_by=ClassifiedBy.EDITOR,
            announced_on=DAY,
        )

    digest_build(day=DAY)

    section = Digest.objects.get(date=DAY).sections.get(category=llm_category)
    shown = [e.paper.importance for e in section.entries.select_related("paper")]
    assert shown == [9, 7]
    assert section.paper_count == 4


def test_a_build_with_the_llm_classifies_by_llm_and_sums_usage_on_the_digest(
    fake: FakeOpenAI,
) -> None:
    a_day_of_papers()

    report = digest_build(day=DAY)

    digest = Digest.objects.get(date=DAY)
    assert set(Paper.objects.values_list("classified_by", flat=True)) == {ClassifiedBy.LLM}
    assert {s.summary_source for s in digest.sections.all()} == {SummarySource.LLM}
    assert digest.llm_calls == len(fake.calls) > 0
    assert digest.prompt_tokens > 0 and digest.completion_tokens > 0
    assert digest.estimated_cost > 0
    assert report.llm_calls == digest.llm_calls


def test_rebuilding_a_day_costs_no_new_llm_calls(fake: FakeOpenAI) -> None:
    a_day_of_papers()
    digest_build(day=DAY)
    calls = len(fake.calls)

    digest_build(day=DAY)

    assert len(fake.calls) == calls
    assert Digest.objects.get(date=DAY).build_count == 2


def test_a_day_without_new_announcements_builds_nothing_and_says_why(offline: None) -> None:
    paper_create(announced_on=DAY, announce_type=AnnounceType.REPLACE)
    lines: list[str] = []

    report = digest_build(day=DAY, log=lines.append)

    assert not report.built
    assert Digest.objects.count() == 0
    assert "No new announcements for 2026-08-13" in lines[-1]
    assert "Friday and Saturday" in lines[-1]


def test_papers_from_other_days_and_replacements_never_enter_the_issue(offline: None) -> None:
    today = a_day_of_papers()
    stale = paper_create(title="An old paper", announced_on=date(2024, 9, 20))
    replaced = paper_create(announced_on=DAY, announce_type=AnnounceType.REPLACE)

    digest_build(day=DAY)

    digest = Digest.objects.get(date=DAY)
    assert shown_arxiv_ids(digest) == {p.arxiv_id for p in today}
    assert stale.arxiv_id not in shown_arxiv_ids(digest)
    assert replaced.arxiv_id not in shown_arxiv_ids(digest)


def test_a_paper_appears_in_at_most_one_issue(offline: None) -> None:
    first_day = a_day_of_papers(date(2026, 8, 12))
    digest_build(day=date(2026, 8, 12))
    # The same paper announced again (e.g. cross-listed later) keeps its first issue.
    Paper.objects.filter(pk=first_day[0].pk).update(announced_on=DAY)
    second_day = a_day_of_papers(DAY)

    digest_build(day=DAY)

    second = Digest.objects.get(date=DAY)
    assert shown_arxiv_ids(second) == {p.arxiv_id for p in second_day}
    assert first_day[0].arxiv_id in shown_arxiv_ids(Digest.objects.get(date=date(2026, 8, 12)))


def test_a_rebuild_keeps_the_editors_summary_and_the_editors_category(offline: None) -> None:
    papers = a_day_of_papers()
    digest_build(day=DAY)
    digest = Digest.objects.get(date=DAY)
    section = digest.sections.get(category__slug="nlp")
    section.summary = "편집자가 쓴 요약입니다."
    section.summary_source = SummarySource.EDITOR
    section.save()
    moved = papers[1]  # the segmentation paper, moved by an editor into Multimodal
    multimodal = Category.objects.get(slug="multimodal")
    Paper.objects.filter(pk=moved.pk).update(category=multimodal, classified_by=ClassifiedBy.EDITOR)

    digest_build(day=DAY)

    section.refresh_from_db()
    assert section.summary == "편집자가 쓴 요약입니다."
    moved.refresh_from_db()
    assert moved.category == multimodal and moved.classified_by == ClassifiedBy.EDITOR
    assert digest.sections.get(category=multimodal).entries.filter(paper=moved).exists()


def test_an_approved_issue_is_not_rebuilt(offline: None) -> None:
    a_day_of_papers()
    digest_build(day=DAY)
    Digest.objects.filter(date=DAY).update(status=Digest.Status.APPROVED)

    with pytest.raises(BuildRefused, match="approved"):
        digest_build(day=DAY)


def test_the_default_day_is_the_latest_announcement_stored(offline: None) -> None:
    a_day_of_papers(date(2026, 8, 12))
    a_day_of_papers(DAY)

    report = digest_build()

    assert report.day == DAY


def test_the_build_command_prints_sections_flags_and_llm_usage(offline: None, capsys) -> None:  # type: ignore[no-untyped-def]
    a_day_of_papers()

    call_command("build_digest", "--date", "2026-08-13")

    out = capsys.readouterr().out
    assert "Created draft digest 2026-08-13 with 5 papers" in out
    assert "Computer Vision: 1 papers, 1 shown" in out
    assert "FLAG fallback" in out
    assert "LLM: 0 calls" in out


def test_the_build_command_rejects_a_malformed_date() -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("build_digest", "--date", "13/08/2026")
