from __future__ import annotations

from datetime import date

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import translation

from .archive import PUBLIC_STATUSES, archive_language, archive_page, public_issue
from .content import digest_content_load
from .feeds import ArchiveFeed, KeywordFeed
from .models import Category, Digest

_archive_feed = ArchiveFeed()
_keyword_feed = KeywordFeed()


def digest_chart(request: HttpRequest, day: str) -> HttpResponse:
    """The category chart of one issue, for the web version and the admin."""
    try:
        when = date.fromisoformat(day)
    except ValueError:
        raise Http404("not a date") from None
    digest = get_object_or_404(Digest, date=when)
    published = digest.status in PUBLIC_STATUSES
    # An unpublished issue's chart is for staff (the admin) only, and never cached publicly.
    if not digest.chart_png or not (published or request.user.is_staff):
        raise Http404("no chart")
    response = HttpResponse(bytes(digest.chart_png), content_type="image/png")
    response["Cache-Control"] = "public, max-age=3600" if published else "private, no-store"
    return response


def _day_or_404(day: str) -> date:
    try:
        return date.fromisoformat(day)
    except ValueError:
        raise Http404("not a date") from None


def archive_atom(request: HttpRequest) -> HttpResponse:
    """/archive/atom.xml: every public issue; with ?q= the papers that keywords match."""
    if "q" in request.GET:
        return _keyword_feed(request)
    return _archive_feed(request)


def _feed_categories() -> list[dict[str, str]]:
    """Every active category with its feed's address, for the archive pages' links."""
    return [
        {"name": c.name, "url": reverse("digests:archive-category-atom", kwargs={"slug": c.slug})}
        for c in Category.objects.filter(active=True).order_by("position", "name")
    ]


def archive_list(request: HttpRequest) -> HttpResponse:
    """Every public issue, newest first, paginated (?page=N); ?lang= chooses the language."""
    language = archive_language(request.GET.get("lang", ""))
    with translation.override(language):
        page = archive_page(number=request.GET.get("page"))
        issues = [
            {
                "date": digest.date,
                "title": digest.title,
                "paper_count": digest.paper_count,
                "sections": [s.category.name for s in digest.sections.all()],
            }
            for digest in page.object_list
        ]
        return render(
            request,
            "archive/list.html",
            {"page": page, "issues": issues, "feed_categories": _feed_categories()},
        )


def archive_issue(request: HttpRequest, day: str) -> HttpResponse:
    """One public issue with all its categories; drafts and approved issues are 404."""
    digest = public_issue(day=_day_or_404(day))
    if digest is None:
        raise Http404("no such issue")
    content = digest_content_load(digest=digest)
    with translation.override(archive_language(request.GET.get("lang", ""))):
        return render(
            request,
            "archive/issue.html",
            {"content": content, "feed_categories": _feed_categories()},
        )
