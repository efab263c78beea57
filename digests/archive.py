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
