"""The public archive: every issue that has gone out, as web pages and an Atom feed. Weekly
issues are listed with the daily ones, marked, each with its own page and Atom entry.

An issue is public from the moment its send starts (status sending), not only once every
email has gone out: the "view in browser" link in the first emails must already work.
Drafts and approved issues are not public.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import Count, Max, Prefetch, QuerySet

from .content import PaperItem, SectionItem, paper_url, section_content
from .keywords import KeywordRules
from .models import Category, Digest, DigestSection, Paper, SectionPaper

PUBLIC_STATUSES = (Digest.Status.SENDING, Digest.Status.SENT)
ISSUES_PER_PAGE = 20
FEED_ISSUES = 20
CATEGORY_FEED_ISSUES = 50  # a category's feed: its reports in the last 50 issues
KEYWORD_FEED_ISSUES = 50  # the keyword feed searches the papers of the last 50 daily issues
KEYWORD_FEED_ENTRIES = 50  # and shows at most 50 of them


def archive_language(requested: str = "") -> str:
    """The archive's language: the one asked for (?lang=) when the site speaks it, else the
    newsletter's default language (the first of DIGEST_LANGUAGES)."""
    offered = {code for code, _name in settings.LANGUAGES}
    return requested if requested in offered else settings.DIGEST_LANGUAGE


def public_issues() -> QuerySet[Digest]:
    return Digest.objects.filter(status__in=PUBLIC_STATUSES).order_by("-date")


def archive_page(*, number: str | int | None) -> Page:
    """One page of the list, newest first, with each issue's section names (two queries)."""
    issues = public_issues().prefetch_related("sections__category").defer("chart_png")
    return Paginator(issues, ISSUES_PER_PAGE).get_page(number)


def public_issue(*, day: date) -> Digest | None:
    return public_issues().filter(date=day).first()


@dataclass(frozen=True)
class ArchiveState:
    """What the archive's feeds depend on: the public issues' count and latest change."""

    count: int
    latest_pk: int
    last_modified: datetime | None

    def etag(self, variant: str) -> str:
        """A strong ETag for one feed (`variant` names it) of this state, unquoted."""
        stamp = self.last_modified.isoformat() if self.last_modified else ""
        source = f"{self.count}|{self.latest_pk}|{stamp}|{variant}"
        return hashlib.sha256(source.encode()).hexdigest()[:32]


def archive_state() -> ArchiveState:
    """One query; changes whenever an issue becomes public or a public issue is saved."""
    figures = public_issues().aggregate(n=Count("pk"), pk=Max("pk"), changed=Max("updated_at"))
    return ArchiveState(figures["n"], figures["pk"] or 0, figures["changed"])


@dataclass(frozen=True)
class CategoryIssue:
    """A category's report in one public issue, for its feed."""

    date: date
    kind: str
    published: datetime | None
    updated: datetime
    section: SectionItem


def category_issues(
    *, category: Category, limit: int = CATEGORY_FEED_ISSUES
) -> list[CategoryIssue]:
    """The category's sections in the last `limit` public issues, newest first (two queries)."""
    entries = Prefetch("entries", queryset=SectionPaper.objects.select_related("paper"))
    sections = (
        DigestSection.objects.filter(category=category, digest__status__in=PUBLIC_STATUSES)
        .select_related("digest", "category")
        .defer("digest__chart_png")
        .prefetch_related(entries)
        .order_by("-digest__date", "-digest__pk")[:limit]
    )
    return [
        CategoryIssue(
            date=s.digest.date,
            kind=s.digest.kind,
            published=s.digest.sending_started_at or s.digest.sent_at,
            updated=s.digest.sent_at or s.digest.updated_at,
            section=section_content(s),
        )
        for s in sections
    ]


@dataclass(frozen=True)
class MatchedPaper:
    paper: PaperItem
    abstract: str
    day: date  # the issue that took it
    published: datetime | None


def keyword_papers(
    *, rules: KeywordRules, issues: int = KEYWORD_FEED_ISSUES, limit: int = KEYWORD_FEED_ENTRIES
) -> list[MatchedPaper]:
    """The papers of the last `issues` public daily issues that the rules match (title and
    abstract; exclude wins), newest issue first, at most `limit`."""
    days = list(
        public_issues().filter(kind=Digest.Kind.DAILY).values_list("pk", flat=True)[:issues]
    )
    papers = (
        Paper.objects.filter(digest__in=days, excluded=False)
        .select_related("digest")
        .only(
            "arxiv_id",
            "title",
            "abstract",
            "authors",
            "abs_url",
            "importance",
            "digest__date",
            "digest__sending_started_at",
            "digest__sent_at",
        )
        .order_by("-digest__date", "-importance", "arxiv_id")
    )
    found: list[MatchedPaper] = []
    for paper in papers.iterator(chunk_size=500):
        if rules.match(title=paper.title, abstract=paper.abstract) != "include":
            continue
        digest = paper.digest
        assert digest is not None
        found.append(_matched(paper, digest))
        if len(found) >= limit:
            break
    return found


def _matched(paper: Paper, digest: Digest) -> MatchedPaper:
    item = PaperItem(
        arxiv_id=paper.arxiv_id,
        title=" ".join(paper.title.split()),
        authors=tuple(str(a) for a in paper.authors or ()),
        url=paper_url(arxiv_id=paper.arxiv_id, abs_url=paper.abs_url),
    )
    published = digest.sending_started_at or digest.sent_at
    return MatchedPaper(item, " ".join(paper.abstract.split()), digest.date, published)
