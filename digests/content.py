"""One issue as plain, immutable data: what emails, the archive and the admin preview show.

`digest_content_load` does every database read an issue needs (three queries, a fourth for the
reports in other languages when more than one is offered) and renders the Markdown once;
templates then get lists and strings and never touch the database. `DigestContent.in_language`
is the issue as a reader of one offered language reads it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from urllib.parse import quote

from django.conf import settings
from django.db.models import Prefetch

from .markdown import markdown_html, markdown_text
from .models import Category, Digest, DigestSection, SectionPaper
from .report_languages import extra_languages

AUTHORS_SHOWN = 3
DEFAULT_COLOUR = "#4C72B0"
_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")


@dataclass(frozen=True)
class PaperItem:
    arxiv_id: str
    title: str
    authors: tuple[str, ...]
    url: str

    @property
    def authors_shown(self) -> tuple[str, ...]:
        return self.authors[:AUTHORS_SHOWN]

    @property
    def authors_more(self) -> int:
        return max(len(self.authors) - AUTHORS_SHOWN, 0)


@dataclass(frozen=True)
class ReportItem:
    """A section's report in another offered language (SectionReport)."""

    language: str
    summary_html: str  # sanitised
    summary_text: str


@dataclass(frozen=True)
class SectionItem:
    category_id: int
    name: str
    colour: str
    summary_html: str  # sanitised
    summary_text: str
    paper_count: int  # papers of the day in the category (the chart's bar)
    papers: tuple[PaperItem, ...]
    reports: tuple[ReportItem, ...] = ()  # in the other offered languages, where written
    language: str = ""  # of summary_html and summary_text; "" for the issue's own

    def in_language(self, language: str) -> SectionItem:
        """The section with its report in `language`; as it is when it has none."""
        report = next((r for r in self.reports if r.language == language), None)
        if report is None:
            return self
        return replace(
            self,
            summary_html=report.summary_html,
            summary_text=report.summary_text,
            language=language,
        )


@dataclass(frozen=True)
class CategoryBar:
    category_id: int
    name: str
    colour: str
    count: int


@dataclass(frozen=True)
class DigestContent:
    digest_id: int
    date: date
    title: str
    introduction: str
    status: str
    updated_at: datetime
    language: str  # the language of the summaries (DIGEST_LANGUAGE)
    sections: tuple[SectionItem, ...]  # the editor's order
    bars: tuple[CategoryBar, ...]  # every active category and any with a section, chart order
    kind: str = Digest.Kind.DAILY  # a weekly issue: its date is the Sunday ending its ISO week

    @property
    def weekly(self) -> bool:
        return self.kind == Digest.Kind.WEEKLY

    @property
    def week_start(self) -> dt.date:
        """The Monday of a weekly issue's week (its date is that week's Sunday)."""
        return self.date - timedelta(days=6)

    @property
    def languages(self) -> tuple[str, ...]:
        """The issue's language, then each other one some section has a report in."""
        others = (r.language for s in self.sections for r in s.reports)
        return tuple(dict.fromkeys([self.language, *others]))

    def language_pick(self, language: str | None) -> str:
        """The language a reader of `language` reads the reports in: theirs if the issue has
        reports in it, else the issue's own."""
        return language if language in self.languages else self.language

    def in_language(self, language: str | None) -> DigestContent:
        """The issue as a reader of `language` reads it: each section's report in that
        language, the issue's own report where a section has none."""
        picked = self.language_pick(language)
        if picked == self.language:
            return self
        sections = tuple(s.in_language(picked) for s in self.sections)
        # The language is the reader's once every section speaks it.
        whole = all(s.language == picked for s in sections)
        return replace(self, sections=sections, language=picked if whole else self.language)

    def sections_for(self, category_ids: frozenset[int]) -> tuple[SectionItem, ...]:
        return tuple(s for s in self.sections if s.category_id in category_ids)

    def category_names(self, category_ids: frozenset[int]) -> list[str]:
        return [bar.name for bar in self.bars if bar.category_id in category_ids]


def colour_safe(colour: str) -> str:
    """An editor-entered colour goes into style attributes: only #RRGGBB passes."""
    return colour if _COLOUR.match(colour or "") else DEFAULT_COLOUR


def paper_url(*, arxiv_id: str, abs_url: str) -> str:
    """The arXiv abstract page: the stored https URL, else one made from the id."""
    if abs_url.startswith("http://arxiv.org/"):
        abs_url = "https://" + abs_url.removeprefix("http://")
    if abs_url.startswith("https://"):
        return abs_url
    return f"https://arxiv.org/abs/{quote(arxiv_id)}"


def _report_items(section: DigestSection, languages: list[str]) -> tuple[ReportItem, ...]:
    if not languages:
        return ()  # one language offered: the reports were not loaded
    return tuple(
        ReportItem(
            language=report.language,
            summary_html=markdown_html(text=report.summary),
            summary_text=markdown_text(text=report.summary),
        )
        for report in section.reports.all()
        if report.language in languages and report.summary.strip()
    )


def _section_item(section: DigestSection, languages: list[str]) -> SectionItem:
    html = markdown_html(text=section.summary)
    papers = tuple(
        PaperItem(
            arxiv_id=entry.paper.arxiv_id,
            title=" ".join(entry.paper.title.split()),
            authors=tuple(str(a) for a in entry.paper.authors or ()),
            url=paper_url(arxiv_id=entry.paper.arxiv_id, abs_url=entry.paper.abs_url),
        )
        for entry in section.entries.all()
    )
    return SectionItem(
        category_id=section.category_id,
        name=section.category.name,
        colour=colour_safe(section.category.colour),
        summary_html=html,
        summary_text=markdown_text(text=section.summary),
        paper_count=section.paper_count,
        papers=papers,
        reports=_report_items(section, languages),
    )


def section_content(section: DigestSection) -> SectionItem:
    """One section in the issue's own language (its category and papers loaded by the caller)."""
    return _section_item(section, [])


def _bars(sections: list[DigestSection]) -> tuple[CategoryBar, ...]:
    counts = {s.category_id: s.paper_count for s in sections}
    categories = {c.pk: c for c in Category.objects.filter(active=True)}
    categories.update({s.category_id: s.category for s in sections})
    ordered = sorted(categories.values(), key=lambda c: (c.position, c.name))
    return tuple(
        CategoryBar(c.pk, c.name, colour_safe(c.colour), counts.get(c.pk, 0)) for c in ordered
    )


def digest_content_load(*, digest: Digest) -> DigestContent:
    """The issue with its sections in the editor's order (position), papers in order."""
    languages = extra_languages()
    entries = Prefetch("entries", queryset=SectionPaper.objects.select_related("paper"))
    prefetch: list[Prefetch | str] = [entries, "reports"] if languages else [entries]
    sections = list(
        digest.sections.select_related("category")
        .prefetch_related(*prefetch)
        .order_by("position", "category__position", "pk")
    )
    return DigestContent(
        digest_id=digest.pk,
        date=digest.date,
        title=digest.title,
        introduction=digest.introduction,
        status=digest.status,
        updated_at=digest.updated_at,
        language=settings.DIGEST_LANGUAGE,
        sections=tuple(_section_item(s, languages) for s in sections),
        bars=_bars(sections),
        kind=digest.kind,
    )
