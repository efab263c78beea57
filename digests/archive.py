"""The public archive: every issue that has gone out, as web pages and an Atom feed. Weekly
issues are listed with the daily ones, marked, each with its own page and Atom entry.

An issue is public from the moment its send starts (status sending), not only once every
email has gone out: the "view in browser" link in the first emails must already work.
Drafts and approved issues are not public.
"""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet

from .models import Digest

PUBLIC_STATUSES = (Digest.Status.SENDING, Digest.Status.SENT)
ISSUES_PER_PAGE = 20
FEED_ISSUES = 20

WORDS = {
    "ko": {
        "archive_title": "지난 호",
        "archive_intro": "지금까지 보낸 Daily AI Insights의 모든 호입니다.",
        "no_issues": "아직 보낸 호가 없습니다.",
        "sections": "분야",
        "papers": "논문 {count}편",
        "chart_alt": "분야별 새 논문 수 그래프",
        "sources": "출처",
        "authors_more_before": "외 ",
        "authors_more_after": "명",
        "newer": "최근 호",
        "older": "이전 호",
        "all_issues": "지난 호 전체",
        "atom": "Atom 피드",
        "subscribe": "구독하기",
        "feed_title": "Daily AI Insights 지난 호",
        "feed_description": "arXiv에 새로 발표된 AI 논문의 일일 요약",
        "weekly": "주간 호",
    },
    "en": {
        "archive_title": "Past issues",
        "archive_intro": "Every issue of Daily AI Insights sent so far.",
        "no_issues": "No issue has been sent yet.",
        "sections": "Categories",
        "papers": "{count} papers",
        "chart_alt": "New papers per category",
        "sources": "Sources",
        "et_al": "et al.",
        "newer": "Newer issues",
        "older": "Older issues",
        "all_issues": "All past issues",
        "atom": "Atom feed",
        "subscribe": "Subscribe",
        "feed_title": "Daily AI Insights: past issues",
        "feed_description": "A daily digest of new AI papers on arXiv",
        "weekly": "Weekly issue",
    },
}


def archive_words() -> dict[str, str]:
    """The archive's own words, in the language of the summaries it shows."""
    return WORDS.get(settings.DIGEST_LANGUAGE, WORDS["en"])


def public_issues() -> QuerySet[Digest]:
    return Digest.objects.filter(status__in=PUBLIC_STATUSES).order_by("-date")


def archive_page(*, number: str | int | None) -> Page:
    """One page of the list, newest first, with each issue's section names (two queries)."""
    issues = public_issues().prefetch_related("sections__category").defer("chart_png")
    return Paginator(issues, ISSUES_PER_PAGE).get_page(number)


def public_issue(*, day: date) -> Digest | None:
    return public_issues().filter(date=day).first()
