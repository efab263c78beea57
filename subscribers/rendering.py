"""The digest email, rendered once per variant (a distinct choice of categories, and keyword
rules where they change the issue) and language, then personalised per reader by replacing two
placeholders. Every digest email is built here.

Keywords (subscribers/keywords.py): a variant key "3,5+<keywords_key>" names the reader's rules,
read from a reader who has them (`keyword_rules`, one query per chunk for all its variants). In
each chosen section a paper matching an exclude rule is left out; one matching an include rule
is marked ("★ keyword") and, when it is not among the section's top papers, added after them
from the issue's other papers of that category (`keyword_pool`: one query per issue and process).
With keywords_all_categories, matches from categories the reader did not choose follow the
sections in one more, "★ Your keywords in other categories" (no summary: the reader did not
choose those reports). The summaries stay the editors' text. `keywords_in_effect` tells the
plan which rules change this issue at all; the others share their categories' email.

How the sending engine uses it:

1. `content = digest_context(digest=digest)`: every database read (three queries), once per
   digest (or per chunk; it is cached per process on (digest id, updated_at)).
2. Per distinct (variant key, language) in a chunk, with
   `key = variant_key(category_ids, keywords_key)`:
   `cid = chart_cid_make(digest_id=digest.pk, key=key)` and
   `variant = variant_render(content=content, key=key, language=language, chart_cid=cid)`.
   MJML is compiled here, once per variant, and the result is cached per process.
3. The chart, when `variant.chart_png` is not empty (the short note has no chart and no `cid:`):
   `chart_image_attach(message=message, png=variant.chart_png, cid=cid)`, which attaches the PNG
   inline with `Content-ID: <cid>`: the HTML refers to it as `src="cid:<cid>"`. Do NOT use
   anymail's `attach_inline_image`: it makes a random content id that the cached HTML cannot know.
4. Per reader: `personalise_html(variant.html, values)` and `personalise_text(variant.text,
   values)` with `values = {"preferences_url": ..., "unsubscribe_url": ...}` (PERSONAL), from
   `subscribers.tokens.token_url`. For an ESP batch send with merge_data, personalise once per
   variant with the ESP's own merge fields instead, e.g. for Mailgun
   `{"preferences_url": "%recipient.preferences_url%", ...}` and give the URLs as merge_data.
5. `variant.empty` says the reader's categories have no section today: send the note when
   settings.DELIVERY_EMPTY_POLICY == "note", skip the reader when it is "skip".

Everything from a feed, the LLM or an editor is escaped by the templates (titles, authors,
category names, the introduction) or sanitised by digests.markdown (the summaries).
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from email.mime.image import MIMEImage
from functools import lru_cache
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.core.mail import EmailMessage
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.dates import MONTHS
from django.utils.html import escape
from django.utils.translation import gettext, pgettext_lazy
from mjml import mjml2html

from digests.build import text_for
from digests.chart import ChartBar, chart_render
from digests.content import DigestContent, PaperItem, SectionItem, digest_content_load, paper_url
from digests.models import Digest, Paper

from .keywords import NO_RULES, KeywordRules, PaperIndex, rules_of_fields
from .models import Delivery, Subscriber

PERSONAL = ("preferences_url", "unsubscribe_url")
BRAND = "Daily AI Insights"
SUBJECT_NAMES = 2  # categories named in the subject; the rest are counted
RENDER_CACHE_SIZE = 256
CHART_CACHE_SECONDS = 3 * 24 * 3600
CHART_LOCK_SECONDS = 60
CHART_WAIT_SECONDS = 10.0

_PLACEHOLDER = re.compile(r"@@([a-z_]+)@@")

# The weekday abbreviations of the email's date (Django's own "Thu" is a full word in Korean).
WEEKDAYS = (
    pgettext_lazy("weekday", "Mon"),
    pgettext_lazy("weekday", "Tue"),
    pgettext_lazy("weekday", "Wed"),
    pgettext_lazy("weekday", "Thu"),
    pgettext_lazy("weekday", "Fri"),
    pgettext_lazy("weekday", "Sat"),
    pgettext_lazy("weekday", "Sun"),
)


def placeholder(name: str) -> str:
    return f"@@{name}@@"


# Between the categories of a variant key and the reader's keywords_key ("3,5+1f0c..."):
# a character MIME boundaries and Content-IDs allow.
KEYWORDS_MARK = "+"


@dataclass(frozen=True)
class RenderedVariant:
    key: str  # sorted category ids joined by "," ("" = none), then "+keywords_key" if any
    subject: str
    html: str  # placeholders @@preferences_url@@, @@unsubscribe_url@@; chart at cid:<chart_cid>
    text: str  # same content and placeholders
    chart_png: bytes  # this variant's categories highlighted; b"" for the note (no chart)
    empty: bool  # no section today for the reader's categories: the short note


def variant_key(category_ids: Iterable[int], keywords_key: str = "") -> str:
    """Readers with the same categories and the same keyword rules share one rendering."""
    categories = ",".join(str(pk) for pk in sorted({int(pk) for pk in category_ids}))
    return f"{categories}{KEYWORDS_MARK}{keywords_key}" if keywords_key else categories


def variant_ids(key: str) -> frozenset[int]:
    categories = key.partition(KEYWORDS_MARK)[0]
    return frozenset(int(part) for part in categories.split(",") if part.strip())


def variant_keywords(key: str) -> str:
    """The keywords_key of a variant key ("" for none)."""
    return key.partition(KEYWORDS_MARK)[2]


def words_for(language: str) -> dict[str, str]:
    """The email's fixed words in `language`, from the gettext catalogues (locale/); the
    placeholders in braces are filled with str.format, "authors_more" with %."""
    with translation.override(language):
        return {
            "chart_alt": gettext("New papers per category (your categories highlighted: {names})"),
            "sources": gettext("Sources"),
            "authors_more": gettext("and %(n)s more"),
            "papers_of_day": gettext("{shown} of the {count} new papers in this category today"),
            "papers_of_week": gettext("the week's {shown} most important papers in this category"),
            "weekly": gettext("Weekly, {start} to {end}"),
            "preferences": gettext("Change preferences"),
            "unsubscribe": gettext("Unsubscribe"),
            "web_version": gettext("View in browser"),
            "archive": gettext("Past issues"),
            "atom": gettext("Atom feed"),
            "why": gettext(
                "You receive this because you subscribed to Daily AI Insights for: {names}."
            ),
            "why_none": gettext("You receive this because you subscribed to Daily AI Insights."),
            "subject_more": gettext("+{n} more"),
            "empty_subject": gettext("nothing new in your categories today"),
            "empty_heading": gettext("Nothing new in your categories today"),
            "empty_body": gettext(
                "The issue of {date} has no new papers in your categories ({names})."
            ),
            "empty_body_none": gettext(
                "You have not chosen any categories, so there is nothing to send."
            ),
            "empty_other": gettext("The summaries of the other categories are on the web."),
            "empty_link": gettext("Read the full issue"),
            "empty_change": gettext("To change your categories, open your preferences."),
            "keyword_badge": gettext("★ keyword"),
            "keywords_other": gettext("★ Your keywords in other categories"),
            "keywords_subject": gettext("your keywords"),
        }


def date_label(*, day: date, language: str) -> str:
    with translation.override(language):
        return gettext("{weekday} {day} {month_name} {year}").format(
            year=day.year,
            day=day.day,
            month_name=MONTHS[day.month],
            weekday=WEEKDAYS[day.weekday()],
        )


def issue_date_label(*, content: DigestContent, words: dict, language: str) -> str:
    """The issue's day, or a weekly issue's week (Monday to Sunday)."""
    if not content.weekly:
        return date_label(day=content.date, language=language)
    start = date_label(day=content.week_start, language=language)
    return words["weekly"].format(start=start, end=date_label(day=content.date, language=language))


def email_language(language: str) -> str:
    """The email's lang attribute: the language when the site has a catalogue for it."""
    return language if language in {code for code, _name in settings.LANGUAGES} else "en"


def chart_cid_make(*, digest_id: int, key: str) -> str:
    """A stable Content-ID (without <>) for a variant's chart; the same in HTML and header."""
    return f"chart-{digest_id}-{key.replace(',', '-') or 'none'}@inline"


def chart_image_attach(*, message: EmailMessage, png: bytes, cid: str) -> None:
    """Attaches the chart inline with the Content-ID the HTML names (anymail sends it inline)."""
    image = MIMEImage(png, "png")
    image.add_header("Content-ID", f"<{cid}>")
    image.add_header("Content-Disposition", "inline", filename="chart.png")
    message.attach(image)


def web_version_url(*, digest: Digest) -> str:
    return issue_url(day=digest.date)


def issue_url(*, day: date) -> str:
    return settings.SITE_URL + reverse("digests:archive-issue", kwargs={"day": day.isoformat()})


def archive_urls() -> dict[str, str]:
    return {
        "archive_url": settings.SITE_URL + reverse("digests:archive"),
        "atom_url": settings.SITE_URL + reverse("digests:archive-atom"),
    }


# --- Content -----------------------------------------------------------------------------------

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """A process's cache of at most `size` entries, the least recently used dropped first.
    Thread-safe; a value is loaded outside the lock (two threads may both load it, the cache
    keeps one)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, key: K) -> bool:
        with self._lock:
            return key in self._entries

    def get(self, key: K) -> V | None:
        with self._lock:
            if key not in self._entries:
                return None
            self._entries.move_to_end(key)
            return self._entries[key]

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def get_or_load(self, key: K, load: Callable[[], V]) -> V:
        found = self.get(key)
        if found is not None:
            return found
        value = load()
        self.put(key, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_content_cache: BoundedCache[tuple[int, float], DigestContent] = BoundedCache(4)


def digest_context(*, digest: Digest) -> DigestContent:
    """The issue as plain data: all database reads happen here (cached per process)."""
    return _content_cache.get_or_load(
        (digest.pk, digest.updated_at.timestamp()), lambda: digest_content_load(digest=digest)
    )


# --- The chart per variant ---------------------------------------------------------------------


def variant_chart_draw(*, content: DigestContent, chosen: frozenset[int]) -> bytes:
    words = text_for(content.language)
    bars = [
        ChartBar(bar.name, bar.count, bar.colour, bar.category_id in chosen) for bar in content.bars
    ]
    return chart_render(
        bars=bars,
        title=words["chart_title"].format(day=content.date.isoformat()),
        subtitle=words["chart_axis"],
    )


def variant_chart(*, content: DigestContent, key: str) -> bytes:
    """The chart with the key's categories highlighted, drawn once across workers (the cache)."""
    stamp = int(content.updated_at.timestamp() * 1000)
    cache_key = f"digest-chart:{content.digest_id}:{stamp}:{key or 'none'}"
    png = cache.get(cache_key)
    if png is not None:
        return bytes(png)
    if not cache.add(f"{cache_key}:lock", 1, timeout=CHART_LOCK_SECONDS):
        # Another worker is drawing it: wait for its result rather than draw it again.
        deadline = time.monotonic() + CHART_WAIT_SECONDS
        while time.monotonic() < deadline:
            time.sleep(0.05)
            png = cache.get(cache_key)
            if png is not None:
                return bytes(png)
    png = variant_chart_draw(content=content, chosen=variant_ids(key))
    cache.set(cache_key, png, timeout=CHART_CACHE_SECONDS)
    cache.delete(f"{cache_key}:lock")
    return png


# --- Keywords ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolPaper:
    """A paper of the issue a keyword may bring in: its item, category and importance."""

    item: PaperItem
    category_id: int


@dataclass(frozen=True)
class KeywordPool:
    """The issue's papers for keyword matching: those shown in its sections and the rest of the
    day's papers in its categories (not taken out by an editor), most important first."""

    papers: tuple[PoolPaper, ...]
    index: PaperIndex
    number_of: dict[str, int]  # arxiv id -> its place in `papers`


_pool_cache: BoundedCache[tuple[int, float], KeywordPool] = BoundedCache(2)


def keyword_pool_load(*, content: DigestContent) -> KeywordPool:
    """One query: the papers shown and the day's other papers, with their abstracts."""
    shown = {p.arxiv_id: s.category_id for s in content.sections for p in s.papers}
    rows = (
        Paper.objects.filter(
            Q(digest_id=content.digest_id, excluded=False, category__isnull=False)
            | Q(arxiv_id__in=list(shown))
        )
        .order_by("-importance", "arxiv_id")
        .values_list("arxiv_id", "title", "abstract", "authors", "abs_url", "category_id")
    )
    papers, texts = [], []
    for arxiv_id, title, abstract, authors, abs_url, category_id in rows:
        title = " ".join(title.split())
        url = paper_url(arxiv_id=arxiv_id, abs_url=abs_url)
        item = PaperItem(arxiv_id, title, tuple(str(a) for a in authors or ()), url)
        papers.append(PoolPaper(item, shown.get(arxiv_id, category_id)))
        texts.append(f"{title}\n{abstract}")
    return KeywordPool(
        tuple(papers), PaperIndex(texts), {p.item.arxiv_id: n for n, p in enumerate(papers)}
    )


def keyword_pool(*, content: DigestContent) -> KeywordPool:
    """The pool, loaded once per issue and process."""
    return _pool_cache.get_or_load(
        (content.digest_id, content.updated_at.timestamp()),
        lambda: keyword_pool_load(content=content),
    )


RULES_FIELDS = ("keywords_key", "keywords_include", "keywords_exclude", "keywords_all_categories")
RULES_CACHE_SIZE = 2_000
# A key names its rules (a digest of them), so what was read once stays true.
_rules_cache: BoundedCache[str, KeywordRules] = BoundedCache(RULES_CACHE_SIZE)


def keyword_rules_remember(
    rows: Iterable[tuple[str, str, str, bool]],
) -> dict[str, KeywordRules]:
    """The rules of (RULES_FIELDS) rows by key, kept for the renderings to come."""
    found: dict[str, KeywordRules] = {}
    for key, include, exclude, everywhere in rows:
        if key and key not in found:
            found[key] = rules_of_fields(
                include=include, exclude=exclude, all_categories=everywhere
            )
            _rules_cache.put(key, found[key])
    return found


def keyword_rules_load(*, keys: Iterable[str]) -> None:
    """The rules of the keys not known yet, from a reader of each: one query for them all
    (a chunk calls this for its variants before rendering them)."""
    wanted = {key for key in keys if key and key not in _rules_cache}
    if wanted:
        readers = Subscriber.objects.filter(keywords_key__in=wanted).order_by()
        keyword_rules_remember(readers.values_list(*RULES_FIELDS).distinct())


def keyword_rules(*, key: str, digest_id: int) -> KeywordRules:
    """The rules a keywords_key names, from a reader who has them. When no reader has them any
    more (all who had them changed their rules since the send was planned), the current rules
    of a reader planned with them: what that reader wants now."""
    if not key:
        return NO_RULES
    keyword_rules_load(keys=[key])
    if (known := _rules_cache.get(key)) is not None:
        return known
    planned = Delivery.objects.filter(
        digest_id=digest_id, variant__endswith=f"{KEYWORDS_MARK}{key}", subscriber__isnull=False
    )
    row = planned.values_list(*(f"subscriber__{name}" for name in RULES_FIELDS[1:])).first()
    if row is None:
        return NO_RULES
    return rules_of_fields(include=row[0], exclude=row[1], all_categories=row[2])


def keywords_in_effect(*, content: DigestContent, rules: Mapping[str, KeywordRules]) -> set[str]:
    """The keys whose rules change something in this issue: an include match anywhere in the
    pool (not also excluded) or an exclude match among the papers shown. Readers with other
    rules get the email of their categories: it is the same."""
    pool = keyword_pool(content=content)
    shown = frozenset(
        pool.number_of[p.arxiv_id]
        for s in content.sections
        for p in s.papers
        if p.arxiv_id in pool.number_of
    )
    found = set()
    for key, one in rules.items():
        included, excluded = pool.index.rules_matches(one)
        if included or excluded & shown:
            found.add(key)
    return found


@dataclass(frozen=True)
class KeywordView:
    """What a reader's rules do to an issue: papers left out, papers marked, and the marked
    papers of categories they did not choose (with keywords_all_categories)."""

    excluded: frozenset[str]  # arxiv ids
    included: frozenset[str]
    extra_by_category: dict[int, tuple[PaperItem, ...]]  # chosen category -> matches beyond its top
    other: tuple[tuple[str, PaperItem], ...]  # (category name, paper) outside the choice


def keyword_view(
    *, content: DigestContent, chosen: frozenset[int], rules: KeywordRules
) -> KeywordView | None:
    if rules.empty:
        return None
    pool = keyword_pool(content=content)
    included, excluded = pool.index.rules_matches(rules)
    shown = {p.arxiv_id for s in content.sections for p in s.papers if s.category_id in chosen}
    names = {bar.category_id: bar.name for bar in content.bars}
    extra: dict[int, list[PaperItem]] = {}
    other: list[tuple[int, str, PaperItem]] = []
    order = {s.category_id: n for n, s in enumerate(content.sections)}
    for number in sorted(included):
        paper = pool.papers[number]
        if paper.item.arxiv_id in shown:
            continue
        if paper.category_id in chosen:
            extra.setdefault(paper.category_id, []).append(paper.item)
        elif rules.all_categories and paper.category_id in order:
            name = names.get(paper.category_id, "")
            other.append((order.get(paper.category_id, len(order)), name, paper.item))
    return KeywordView(
        excluded=frozenset(pool.papers[n].item.arxiv_id for n in excluded),
        included=frozenset(pool.papers[n].item.arxiv_id for n in included),
        extra_by_category={k: tuple(v) for k, v in extra.items()},
        other=tuple((name, item) for _, name, item in sorted(other, key=lambda o: o[0])),
    )


# --- Rendering ---------------------------------------------------------------------------------


def subject_make(
    *, content: DigestContent, sections: tuple[SectionItem, ...], words: dict, other: bool = False
) -> str:
    when = content.date.isoformat()
    if content.weekly:  # dated the Sunday ending its week: the week is what readers know
        when = words["weekly"].format(start=content.week_start.isoformat(), end=when)
    head = f"{BRAND} · {when}"
    if not sections:
        return f"{head} · {words['keywords_subject' if other else 'empty_subject']}"
    names = ", ".join(s.name for s in sections[:SUBJECT_NAMES])
    rest = len(sections) - SUBJECT_NAMES
    more = f" {words['subject_more'].format(n=rest)}" if rest > 0 else ""
    return f"{head} · {names}{more}"


def authors_label(*, authors: tuple[str, ...], more: int, words: dict) -> str:
    shown = ", ".join(authors)
    if not more:
        return shown
    return f"{shown} {words['authors_more'] % {'n': more}}"


def paper_view(paper: PaperItem, *, words: dict, match: bool = False) -> dict[str, Any]:
    return {
        "title": paper.title,
        "url": paper.url,
        "authors": authors_label(authors=paper.authors_shown, more=paper.authors_more, words=words),
        "match": match,
    }


def section_papers(
    section: SectionItem, view: KeywordView | None, *, words: dict
) -> list[dict[str, Any]]:
    """The section's papers as the reader sees them: without the excluded, the included marked,
    then the included beyond the top papers."""
    if view is None:
        return [paper_view(p, words=words) for p in section.papers]
    papers = [
        paper_view(p, words=words, match=p.arxiv_id in view.included)
        for p in section.papers
        if p.arxiv_id not in view.excluded
    ]
    extra = view.extra_by_category.get(section.category_id, ())
    return papers + [paper_view(p, words=words, match=True) for p in extra]


def sections_view(
    *,
    sections: tuple[SectionItem, ...],
    words: dict,
    view: KeywordView | None = None,
    weekly: bool = False,
) -> list[dict[str, Any]]:
    """What the templates show of each section, as plain dicts."""
    count_words = words["papers_of_week" if weekly else "papers_of_day"]
    shown = []
    for s in sections:
        papers = section_papers(s, view, words=words)
        shown.append(
            {
                "name": s.name,
                "colour": s.colour,
                "summary_html": s.summary_html,
                "summary_text": s.summary_text,
                "count_line": count_words.format(
                    count=max(s.paper_count, len(papers)), shown=len(papers)
                ),
                "papers": papers,
            }
        )
    return shown


def keywords_other_view(*, view: KeywordView | None, words: dict) -> list[dict[str, Any]]:
    if view is None:
        return []
    return [{"category": name, **paper_view(p, words=words, match=True)} for name, p in view.other]


def preview_text(text: str, limit: int = 140) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _context(
    *,
    content: DigestContent,
    chosen: frozenset[int],
    language: str,
    chart_cid: str,
    view: KeywordView | None = None,
) -> dict[str, Any]:
    words = words_for(language)
    names = ", ".join(content.category_names(chosen))
    return {
        "words": words,
        "lang": email_language(language),
        "content_lang": content.language,
        "brand": BRAND,
        "title": content.title,
        "date_label": issue_date_label(content=content, words=words, language=language),
        "introduction": content.introduction,
        "preview": preview_text(content.introduction or content.title),
        "sections": sections_view(
            sections=content.sections_for(chosen), words=words, view=view, weekly=content.weekly
        ),
        "keywords_other": keywords_other_view(view=view, words=words),
        "chart_src": f"cid:{chart_cid}",
        "chart_alt": words["chart_alt"].format(names=names),
        "why": words["why"].format(names=names) if names else words["why_none"],
        "empty_body": (
            words["empty_body"].format(date=content.date.isoformat(), names=names)
            if names
            else words["empty_body_none"]
        ),
        "web_url": issue_url(day=content.date),
        "preferences_url": placeholder("preferences_url"),
        "unsubscribe_url": placeholder("unsubscribe_url"),
        **archive_urls(),
    }


def _render(*, content: DigestContent, key: str, language: str, chart_cid: str) -> RenderedVariant:
    content = content.in_language(language)  # the reports in the reader's language, if written
    chosen = variant_ids(key)
    rules = keyword_rules(key=variant_keywords(key), digest_id=content.digest_id)
    view = keyword_view(content=content, chosen=chosen, rules=rules)
    context = _context(
        content=content, chosen=chosen, language=language, chart_cid=chart_cid, view=view
    )
    sections = content.sections_for(chosen)
    other = bool(context["keywords_other"])
    name = "digest" if sections or other else "empty"
    mjml_source = render_to_string(f"email/{name}.mjml", context)
    categories = variant_key(chosen)  # the chart is the same whatever the keywords
    return RenderedVariant(
        key=key,
        subject=subject_make(
            content=content, sections=sections, words=context["words"], other=other
        ),
        html=mjml2html(mjml_source),
        text=render_to_string(f"email/{name}.txt", context).strip() + "\n",
        chart_png=variant_chart(content=content, key=categories) if name == "digest" else b"",
        empty=name == "empty",
    )


RenderKey = tuple[int, float, str, str, str]
_render_cache: BoundedCache[RenderKey, RenderedVariant] = BoundedCache(RENDER_CACHE_SIZE)
# Keyword variants are many and small (a few readers each, sent from one chunk): a short cache
# of their own, so thousands of them do not push out the variants of categories alone, nor
# grow a worker's memory.
KEYWORD_RENDER_CACHE_SIZE = 16
_keyword_render_cache: BoundedCache[RenderKey, RenderedVariant] = BoundedCache(
    KEYWORD_RENDER_CACHE_SIZE
)


def variant_render(
    *, content: DigestContent, key: str, language: str, chart_cid: str
) -> RenderedVariant:
    """The email of one variant in one language: MJML compiled once, cached per process."""
    key = variant_key(variant_ids(key), variant_keywords(key))  # one spelling per choice
    cache_key = (content.digest_id, content.updated_at.timestamp(), key, language, chart_cid)
    kept = _keyword_render_cache if variant_keywords(key) else _render_cache
    return kept.get_or_load(
        cache_key,
        lambda: _render(content=content, key=key, language=language, chart_cid=chart_cid),
    )


def render_caches_clear() -> None:
    for kept in (_render_cache, _keyword_render_cache, _content_cache, _pool_cache, _rules_cache):
        kept.clear()


# --- Personalising -----------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _split(template: str) -> tuple[str, ...]:
    """Literal text and placeholder names, alternating: the template is scanned once."""
    return tuple(_PLACEHOLDER.split(template))


def personalise(template: str, values: Mapping[str, str], *, html: bool = False) -> str:
    """Replaces each @@name@@ with values[name] (HTML-escaped if html); unknown ones stay."""
    parts = _split(template)
    out = list(parts)
    for index in range(1, len(parts), 2):
        name = parts[index]
        if name in values:
            out[index] = escape(values[name]) if html else values[name]
        else:
            out[index] = placeholder(name)
    return "".join(out)


def personalise_html(template: str, values: Mapping[str, str]) -> str:
    return personalise(template, values, html=True)


def personalise_text(template: str, values: Mapping[str, str]) -> str:
    return personalise(template, values, html=False)
