"""A built issue without the pipeline: a Digest with sections, summaries and papers."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import date
from typing import Any

from digests.models import Category, Digest, DigestSection, Paper, SectionPaper

_numbers = itertools.count(1)

PARAGRAPH = (
    "대규모 언어 모델(LLM)은 코드 생성과 추론 과제에서 기존 방법을 능가하는 성능을 보이고 "
    "있다. 그러나 이 모델들은 명시적인 지시 없이도 특정 제공자의 서비스를 선호하는 체계적인 "
    "편향을 보이며, 이는 시장 구조와 사용자 기대에 영향을 줄 수 있다. 연구진은 여러 "
    "벤치마크에서 이를 정량화하였다."
)


def korean_summary(*, title: str, length: int = 2500) -> str:
    """A realistic Korean summary report in Markdown of about `length` characters."""
    parts = [f"**요약 보고서: {title}**", ""]
    topic = 1
    while sum(len(p) for p in parts) < length - 400:
        parts += [f"{topic}. **주제 {topic}: 모델 평가와 편향**", "", PARAGRAPH, ""]
        topic += 1
    parts += ["**추세와 패턴**", "", "* 평가 방법이 정교해지고 있다.", "* 효율성이 강조된다.", ""]
    parts += ["**결론**", "", PARAGRAPH[: max(length - sum(len(p) for p in parts), 40)]]
    return "\n".join(parts)


def paper_new(
    *, day: date, title: str = "", authors: Sequence[str] | None = None, **fields: Any
) -> Paper:
    """A paper, not saved yet."""
    number = next(_numbers)
    arxiv_id = f"2608.{20000 + number:05d}"
    return Paper(
        arxiv_id=arxiv_id,
        title=title or f"Scaling laws for efficient reasoning in language models, part {number}",
        abstract="An abstract.",
        authors=list(authors) if authors is not None else [f"Author {i}" for i in range(1, 7)],
        categories=["cs.CL"],
        primary_category="cs.CL",
        abs_url=f"http://arxiv.org/abs/{arxiv_id}v1",
        pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
        announced_on=day,
        **fields,
    )


def paper_make(*, day: date, title: str = "", authors: Sequence[str] | None = None) -> Paper:
    paper = paper_new(day=day, title=title, authors=authors)
    paper.save()
    return paper


def issue_create(
    *,
    day: date = date(2026, 8, 13),
    categories: Sequence[Category] | None = None,
    papers_per_section: int = 5,
    summary_length: int = 2500,
    status: str = Digest.Status.DRAFT,
    summaries: dict[int, str] | None = None,
) -> Digest:
    """An issue with one section per category (in the given order), each with its papers."""
    chosen = list(categories) if categories is not None else list(Category.objects.all())
    digest = Digest.objects.create(
        date=day,
        title="Daily Artificial Intelligence Insights : Papers",
        introduction=f"{day} arXiv에 새로 발표된 AI 논문을 {len(chosen)}개 분야로 요약했습니다.",
        status=status,
        chart_png=b"\x89PNG fake",
        paper_count=papers_per_section * len(chosen),
    )
    for position, category in enumerate(chosen):
        summary = (summaries or {}).get(category.pk) or korean_summary(
            title=category.name, length=summary_length
        )
        section = DigestSection.objects.create(
            digest=digest,
            category=category,
            position=position,
            summary=summary,
            paper_count=papers_per_section + 3,
        )
        # In bulk (two queries a section, not four a paper): many tests make several issues.
        papers = Paper.objects.bulk_create(
            paper_new(day=day, category=category, digest=digest, classified_by="llm")
            for _ in range(papers_per_section)
        )
        SectionPaper.objects.bulk_create(
            SectionPaper(section=section, digest=digest, paper=paper, position=index)
            for index, paper in enumerate(papers)
        )
    return digest
