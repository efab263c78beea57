"""Small factories for test data."""

from __future__ import annotations

import itertools
from datetime import date

from digests.models import AnnounceType, Category, Paper

_ids = itertools.count(1)


def paper_create(
    *,
    title: str = "A study of things",
    abstract: str = "We study things and find results.",
    announced_on: date = date(2026, 8, 13),
    categories: list[str] | None = None,
    announce_type: str = AnnounceType.NEW,
    category: Category | None = None,
    importance: int | None = None,
    classified_by: str = "",
    arxiv_id: str | None = None,
) -> Paper:
    number = next(_ids)
    arxiv_id = arxiv_id or f"2608.{10000 + number:05d}"
    cats = categories or ["cs.LG"]
    return Paper.objects.create(
        arxiv_id=arxiv_id,
        version=1,
        title=title,
        abstract=abstract,
        authors=["Ada Lovelace", "Alan Turing"],
        categories=cats,
        primary_category=cats[0],
        abs_url=f"https://arxiv.org/abs/{arxiv_id}",
        pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
        announce_type=announce_type,
        announced_on=announced_on,
        category=category,
        importance=importance,
        classified_by=classified_by,
    )
