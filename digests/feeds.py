"""The Atom feeds of the archive:

- `/archive/atom.xml`: one entry per public issue, daily or weekly (its id is its page's
  address; its Atom category says which);
- `/archive/<category slug>/atom.xml`: the category's report and papers in each of the last
  CATEGORY_FEED_ISSUES public issues;
- `/archive/atom.xml?q=...`: the papers of public issues that keyword rules match (syntax in
  digests/keywords.py), its body cached by the rules and the archive's state.

Every feed carries an ETag and a Last-Modified from the archive's state (archive_state) and
answers a conditional GET with 304. Django's feedgenerator escapes every text element; the
HTML of entries comes from autoescaped templates and sanitised Markdown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib.syndication.views import Feed
from django.core.cache import cache
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.cache import get_conditional_response
from django.utils.feedgenerator import Atom1Feed
from django.utils.http import http_date, quote_etag
from django.utils.translation import gettext

from .archive import (
    FEED_ISSUES,
    CategoryIssue,
    MatchedPaper,
    archive_language,
    archive_state,
    category_issues,
    keyword_papers,
    public_issues,
)
from .content import digest_content_load
from .keywords import KeywordError, KeywordRules, feed_query, feed_rules_parse
from .models import Category, Digest

AUTHOR = "Daily AI Insights"
KEYWORD_FEED_CACHE_SECONDS = 6 * 3600


class ConditionalFeed(Feed):
    """A feed in the newsletter's default language (DIGEST_LANGUAGES' first) with an ETag and
    a Last-Modified from the archive's state; a conditional GET that matches is answered 304
    without building the feed."""

    feed_type = Atom1Feed
    author_name = AUTHOR  # Atom: a feed needs an author unless each entry has one

    def variant(self, request: HttpRequest, **kwargs: Any) -> str:
        """What tells this feed apart from the others in its ETag."""
        return request.path

    def __call__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        with translation.override(archive_language()):
            state = archive_state()
            etag = quote_etag(state.etag(f"{self.variant(request, **kwargs)}|{archive_language()}"))
            modified = int(state.last_modified.timestamp()) if state.last_modified else None
            answer = get_conditional_response(request, etag=etag, last_modified=modified)
            if answer is None:
                answer = self.build(request, etag, *args, **kwargs)
            answer.headers["ETag"] = etag
            if modified is not None:
                answer.headers["Last-Modified"] = http_date(modified)
            return answer

    def build(self, request: HttpRequest, etag: str, *args: Any, **kwargs: Any) -> HttpResponse:
        return super().__call__(request, *args, **kwargs)


class ArchiveFeed(ConditionalFeed):
    def title(self) -> str:
        return gettext("Daily AI Insights: past issues")

    def subtitle(self) -> str:
        return gettext("A daily digest of new AI papers on arXiv")

    def link(self) -> str:
        return reverse("digests:archive")

    def items(self) -> QuerySet[Digest]:
        return public_issues().defer("chart_png")[:FEED_ISSUES]

    def item_title(self, item: Digest) -> str:
        if item.kind == Digest.Kind.WEEKLY:
            monday = item.date - timedelta(days=6)
            return f"{item.title} · {monday.isoformat()} – {item.date.isoformat()}"
        return f"{item.title} · {item.date.isoformat()}"

    def item_link(self, item: Digest) -> str:
        return reverse("digests:archive-issue", kwargs={"day": item.date.isoformat()})

    def item_categories(self, item: Digest) -> tuple[str, ...]:
        """The issue's kind (daily or weekly), as the entry's Atom category."""
        return (item.kind,)

    def item_description(self, item: Digest) -> str:
        """The issue's text: introduction, each category's summary and its sources."""
        content = digest_content_load(digest=item)
        return render_to_string("archive/feed_entry.html", {"content": content})

    def item_pubdate(self, item: Digest) -> datetime:
        return item.sending_started_at or item.sent_at or _midnight(item.date)

    def item_updateddate(self, item: Digest) -> datetime:
        return item.sent_at or item.updated_at


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time()), timezone.get_default_timezone())


def _issue_url(day: date) -> str:
    return reverse("digests:archive-issue", kwargs={"day": day.isoformat()})


@dataclass(frozen=True)
class FeedSubject:
    """What a feed is of, with the feed's own address (its Atom id)."""

    url: str
    category: Category | None = None
    rules: KeywordRules | None = None


class CategoryFeed(ConditionalFeed):
    """One category's report and papers in each of its last public issues, newest first."""

    def get_object(self, request: HttpRequest, *args: Any, **kwargs: Any) -> FeedSubject:
        category = get_object_or_404(Category, slug=kwargs["slug"])
        return FeedSubject(url=request.build_absolute_uri(request.path), category=category)

    def title(self, obj: FeedSubject) -> str:
        assert obj.category is not None
        # A name and the brand: nothing to translate.
        return f"Daily AI Insights: {obj.category.name}"

    def subtitle(self, obj: FeedSubject) -> str:
        assert obj.category is not None
        return obj.category.description or gettext("A daily digest of new AI papers on arXiv")

    def link(self) -> str:
        return reverse("digests:archive")

    def feed_guid(self, obj: FeedSubject) -> str:
        return obj.url

    def items(self, obj: FeedSubject) -> list[CategoryIssue]:
        assert obj.category is not None
        return category_issues(category=obj.category)

    def item_title(self, item: CategoryIssue) -> str:
        return f"{item.section.name} · {item.date.isoformat()}"

    def item_link(self, item: CategoryIssue) -> str:
        return f"{_issue_url(item.date)}#category-{item.section.category_id}"

    def item_categories(self, item: CategoryIssue) -> tuple[str, ...]:
        return (item.kind,)

    def item_description(self, item: CategoryIssue) -> str:
        return render_to_string("archive/feed_section.html", {"section": item.section})

    def item_pubdate(self, item: CategoryIssue) -> datetime:
        return item.published or _midnight(item.date)

    def item_updateddate(self, item: CategoryIssue) -> datetime:
        return item.updated


class KeywordFeed(ConditionalFeed):
    """The papers of public issues that keyword rules (`?q=`) match, newest first; the body is
    cached by the normalised rules and the archive's state (the ETag)."""

    def __call__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            rules = feed_rules_parse(request.GET.get("q", ""))
        except KeywordError as error:
            return HttpResponseBadRequest(str(error), content_type="text/plain; charset=utf-8")
        return super().__call__(request, rules=rules)

    def variant(self, request: HttpRequest, **kwargs: Any) -> str:
        return f"keywords:{kwargs['rules'].key}"

    def build(self, request: HttpRequest, etag: str, *args: Any, **kwargs: Any) -> HttpResponse:
        key = "archive-keyword-feed:" + etag.strip('"')
        cached = cache.get(key)
        if cached is not None:
            return HttpResponse(cached, content_type="application/atom+xml; charset=utf-8")
        response = super().build(request, etag, *args, **kwargs)
        cache.set(key, response.content, KEYWORD_FEED_CACHE_SECONDS)
        return response

    def get_object(self, request: HttpRequest, *args: Any, **kwargs: Any) -> FeedSubject:
        """The feed's address with the normalised rules, whichever spelling was asked for: the
        cached body serves every spelling of the same rules."""
        rules = kwargs["rules"]
        path = f"{request.path}?{urlencode({'q': feed_query(rules)})}"
        return FeedSubject(url=request.build_absolute_uri(path), rules=rules)

    def title(self, obj: FeedSubject) -> str:
        assert obj.rules is not None
        words = feed_query(obj.rules).replace(",", ", ")
        return gettext("Daily AI Insights: papers on %(keywords)s") % {"keywords": words}

    def link(self) -> str:
        return reverse("digests:archive")

    def feed_url(self, obj: FeedSubject) -> str:
        return obj.url

    def feed_guid(self, obj: FeedSubject) -> str:
        return obj.url

    def items(self, obj: FeedSubject) -> list[MatchedPaper]:
        assert obj.rules is not None
        return keyword_papers(rules=obj.rules)

    def item_title(self, item: MatchedPaper) -> str:
        return item.paper.title

    def item_link(self, item: MatchedPaper) -> str:
        return item.paper.url

    def item_description(self, item: MatchedPaper) -> str:
        return render_to_string(
            "archive/feed_paper.html", {"item": item, "issue_url": _issue_url(item.day)}
        )

    def item_pubdate(self, item: MatchedPaper) -> datetime:
        return item.published or _midnight(item.day)

    def item_updateddate(self, item: MatchedPaper) -> datetime:
        """Atom requires an entry's updated: the issue's, as the paper does not change."""
        return self.item_pubdate(item)
