"""The Atom feed of the archive (/archive/atom.xml): one entry per public issue, daily or weekly
(its id is its page's address; its Atom category says which)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django.contrib.syndication.views import Feed
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.feedgenerator import Atom1Feed
from django.utils.translation import gettext

from .archive import FEED_ISSUES, archive_language, public_issues
from .content import digest_content_load
from .models import Digest


class ArchiveFeed(Feed):
    feed_type = Atom1Feed

    def __call__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """The feed in the newsletter's default language (DIGEST_LANGUAGES' first)."""
        with translation.override(archive_language()):
            return super().__call__(request, *args, **kwargs)

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
        return item.sending_started_at or item.sent_at or _midnight(item)

    def item_updateddate(self, item: Digest) -> datetime:
        return item.sent_at or item.updated_at


def _midnight(item: Digest) -> datetime:
    return timezone.make_aware(datetime.combine(item.date, time()), timezone.get_default_timezone())
