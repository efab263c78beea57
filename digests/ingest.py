"""Collect: read arXiv feeds, turn their entries into papers and store each paper once.

Formats (feedparser does the XML; this module reads arXiv's conventions on top of it):

* ``rss2``: the current arXiv RSS 2.0 listing (rss.arxiv.org). The description starts with
  ``arXiv:2608.11232v1 Announce Type: new Abstract:``, which is removed; ``dc:creator`` is one
  comma-separated string; the first ``<category>`` is the primary one.
* ``atom``: the same listing as Atom (rss.arxiv.org/atom), read the same way.
* ``atom-api``: export.arxiv.org/api/query responses, old (2016) and new (2025+) style. An
  error response (one entry titled "Error") raises ``FeedError``; zero results is an empty list.
* ``rss1``: the old RSS 1.0/RDF listing (lanl.arxiv.org, before 2024). The title carries
  ``(arXiv:1209.2411v1 [math.PR] UPDATED)``, the description and ``dc:creator`` are HTML.

Other feeds (Hugging Face daily papers, Takara TLDR ...) go through the same code: an entry is
kept only when an arXiv id is found in its id/links and it has a title, an abstract and
authors. Anything else is skipped and counted, never stored half-filled.

Announce types. RSS 2.0 and Atom listings say it (``arxiv:announce_type``). RSS 1.0 does not:
a title ending ``UPDATED`` is a replacement, ``CROSS LISTED`` is a cross-list, and so is a new
paper whose primary category lies outside the feed's subject (a ``[hep-th]`` paper in the
``math`` feed); a replacement of such a paper is ``replace-cross``. API entries: version 1 is
``new``, later versions ``replace``.

Announcement dates. arXiv announces at 20:00 US Eastern, Sunday to Thursday, and a listing is
dated the day after that evening (the RSS pubDate of Wednesday evening's listing is "Thu ...
00:00 -0400"). So a listing's timestamp (the item's pubDate, else the channel's pubDate or
dc:date) is converted to America/New_York and moved to the next day when the local time is
20:00 or later: RSS 1.0's ``2012-09-12T20:30:00-05:00`` is the listing of 2012-09-13.
API entries carry submission times, not announcement times, so for them the date is
estimated from arXiv's schedule: submissions before the 14:00 Eastern cut-off on a weekday are
announced that evening (Friday's on Sunday evening), listed the next day; public holidays are
ignored. A new (v1) entry uses ``published``; a replacement uses ``updated``, the submission
of its latest version. The feed's own ``updated`` is only the time of the query and is not
used. A ``default_date`` given to ``feed_parse`` overrides all of this.

Storage rules (``papers_store``): one row per arXiv id. A later version of a stored paper
updates its text, authors, categories and ``replaced_on`` but never ``announced_on``,
``announce_type`` or its classification, so a replaced paper never becomes new again. A
replacement of a paper never seen is stored with its replace type, which the digest does not
take. The same or an older version changes nothing, so fetching a feed twice is harmless.

Politeness (``digests.arxiv_http``): a User-Agent with ``ARXIV_CONTACT``, an ``Accept`` header,
timeout and size cap, conditional GET, one arXiv request at a time and one per
``ARXIV_MIN_INTERVAL`` seconds for the whole process, throttling (406/429/503) waited out.
An API error document (HTTP 400 for a malformed query, or an error entry) is a failure
("arXiv rejected the query as malformed: ..."), never an empty day.

Counts (``fetch_counts_build``): every fetch that read a document writes ``FetchCount`` rows,
one per arXiv category and announcement day: for a listing feed, each category it covers (its
channel title or link: ``cs.AI+cs.CL`` is two), a row even when empty; for the API, each
primary category of its entries. An entry is new in the category that is its primary one,
cross-listed in the others it is listed in; ``known`` counts the new and cross-listed entries
stored before the fetch (a stale feed shows yesterday's entries again). With
``ARXIV_LISTING_CHECK`` on, arXiv's listing page of each category adds what it says it lists
(``expected_*``); a listing page that fails is logged and leaves them empty.
"""

from __future__ import annotations

import calendar
import html
import io
import logging
import re
import urllib.request
import xml.sax
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import feedparser
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from digests.arxiv_http import FetchError, HttpAnswer, ListingError, Pace, http_get, listing_fetch
from digests.models import AnnounceType, Feed, FetchCount, Paper

logger = logging.getLogger(__name__)

EASTERN = ZoneInfo("America/New_York")
ANNOUNCE_HOUR = 20  # arXiv's daily announcement, US Eastern
SUBMISSION_CUTOFF_HOUR = 14  # submissions after this go into the next announcement

_NEW_STYLE_ID = r"\d{4}\.\d{4,5}"
_OLD_STYLE_ID = r"[a-z]+(?:-[a-z]+)*(?:\.[A-Z]{2})?/\d{7}"
_ARXIV_ID = re.compile(
    rf"(?:arxiv\.org/(?:abs|pdf)/|oai:arXiv\.org:|arXiv:)({_NEW_STYLE_ID}|{_OLD_STYLE_ID})"
    r"(?:v(\d+))?(?!\d)"
)
_ANNOUNCE_PREFIX = re.compile(r"^arXiv:\S+\s+Announce Type:\s*(\S+)\s+Abstract:\s*", re.IGNORECASE)
# "Title. (arXiv:1209.2411v1 [math.PR] UPDATED)": arXiv appended the period along with the rest.
_RSS1_TITLE_SUFFIX = re.compile(
    r"\.?\s*\(arXiv:\S+\s+\[([^\]]+)\](?:\s+([A-Z][A-Z ]*[A-Z]))?\)\s*$"
)
_RSS1_SUBJECT = re.compile(r"^(\S+) updates on arXiv\.org")
# "cs.CL updates on arXiv.org", also with several categories ("cs.AI+cs.CL", "cs.AI, cs.CL").
_LISTING_TITLE = re.compile(r"^(.+?) updates on arXiv\.org", re.IGNORECASE)
_LISTING_PATH = re.compile(r"/(?:rss|atom)/([^/?#]+)")
# arXiv category names (cs.AI, cond-mat.str-el, math-ph); the API also tags ACM/MSC classes.
_CATEGORY = re.compile(r"^[a-z]+(?:-[a-z]+)*(?:\.[A-Za-z]+(?:-[a-z]+)*)?$")
_WHITESPACE = re.compile(r"\s+")

_ANNOUNCE_TYPES = {choice.value for choice in AnnounceType}
_REPLACE_TYPES = {AnnounceType.REPLACE.value, AnnounceType.REPLACE_CROSS.value}
_STORE_BATCH = 500
_LISTING_FORMATS = {"rss1", "rss2", "atom"}
_MALFORMED = "arXiv rejected the query as malformed"


class FeedError(Exception):
    """A feed could not be fetched or read; the message is the reason, for people."""


@dataclass(frozen=True)
class ParsedPaper:
    arxiv_id: str
    version: int
    title: str
    abstract: str
    authors: list[str]
    categories: list[str]
    primary_category: str
    abs_url: str
    pdf_url: str
    announce_type: str
    announced_on: date


@dataclass
class ParsedFeed:
    papers: list[ParsedPaper]
    skipped: int
    format: str
    subjects: list[str] = field(default_factory=list)  # the arXiv categories a listing covers
    feed_date: date | None = None  # the listing day the channel claims


@dataclass
class StoreResult:
    created: int = 0
    replaced: int = 0
    unchanged: int = 0
    skipped_crosslists: int = 0


@dataclass
class FeedFetchResult:
    feed_url: str
    ok: bool
    not_modified: bool
    error: str
    parsed: int
    store: StoreResult | None
    skipped: int = 0  # entries without an arXiv id, title, abstract or authors
    counts: list[FetchCount] = field(default_factory=list)  # the rows written, per category
    listing_errors: list[str] = field(default_factory=list)  # listing pages that could not help
    throttled_for: float = 0.0  # seconds spent waiting out throttling

    def describe(self) -> str:
        """One line for people: what this fetch stored, or why it failed."""
        if not self.ok:
            return f"{self.feed_url} : FAILED: {self.error}"
        if self.not_modified:
            return f"{self.feed_url} : not modified"
        store = self.store or StoreResult()
        line = (
            f"{self.feed_url} : {self.parsed} parsed, {store.created} added, "
            f"{store.replaced} replaced, {store.unchanged} unchanged"
        )
        if store.skipped_crosslists:
            line += f", {store.skipped_crosslists} cross-lists skipped"
        if self.skipped:
            line += f", {self.skipped} entries skipped"
        if self.throttled_for:
            line += f", waited {self.throttled_for:.0f} s for throttling"
        return line

    def as_dict(self) -> dict[str, Any]:
        """Plain values (a Celery result): the counts as their lines for people."""
        return {
            "feed_url": self.feed_url,
            "ok": self.ok,
            "not_modified": self.not_modified,
            "error": self.error,
            "parsed": self.parsed,
            "store": asdict(self.store) if self.store is not None else None,
            "skipped": self.skipped,
            "counts": [line.strip() for line in self.describe_counts()],
            "throttled_for": self.throttled_for,
        }

    def describe_counts(self) -> list[str]:
        """One line per category: what the feed announced, and what arXiv's listing says."""
        return [_count_describe(count) for count in self.counts] + [
            f"  listing page not read: {reason}" for reason in self.listing_errors
        ]


def _count_describe(count: FetchCount) -> str:
    line = (
        f"  {count.arxiv_category} {count.announced_on or 'undated'}: {count.new} new, "
        f"{count.cross} cross-listed, {count.replaced} replaced, {count.known} already known"
    )
    if count.expected_new is not None:
        line += (
            f" (listing page: {count.expected_new} new, {count.expected_cross} cross-listed, "
            f"{count.expected_replaced} replaced)"
        )
    return line


# --- Dates -------------------------------------------------------------------------------------


def listing_date(moment: datetime) -> date:
    """The listing date of an announcement made at ``moment``."""
    local = moment.astimezone(EASTERN)
    if local.hour >= ANNOUNCE_HOUR:
        return local.date() + timedelta(days=1)
    return local.date()


def submission_listing_date(submitted: datetime) -> date:
    """The listing date arXiv's schedule gives a submission made at ``submitted``."""
    local = submitted.astimezone(EASTERN)
    cutoff_day = local.date()
    if local.weekday() >= 5 or local.hour >= SUBMISSION_CUTOFF_HOUR:
        cutoff_day += timedelta(days=1)
    while cutoff_day.weekday() >= 5:
        cutoff_day += timedelta(days=1)
    # Friday's batch is announced on Sunday evening, so it is listed on Monday.
    return cutoff_day + timedelta(days=3 if cutoff_day.weekday() == 4 else 1)


def _moment(parsed: Any) -> datetime | None:
    """feedparser's ``*_parsed`` struct_time (always UTC) as an aware datetime."""
    if not parsed:
        return None
    return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)


# --- Text --------------------------------------------------------------------------------------


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.parts.append(" ")  # <p>one</p><p>two</p> must not read "onetwo"

    def handle_endtag(self, tag: str) -> None:
        self.parts.append(" ")


def html_to_text(markup: str) -> str:
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    return collapse("".join(extractor.parts))


def collapse(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


# --- Parsing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FeedContext:
    format: str
    default_date: date | None
    feed_date: date | None
    subject: str  # RSS 1.0 feed subject ("math"), to tell cross-lists apart


def feed_parse(*, content: bytes, default_date: date | None = None) -> ParsedFeed:
    """Read an arXiv feed document. Raises ``FeedError`` for anything that is not one."""
    if content.lstrip()[:1] in (b"{", b"["):
        raise FeedError("not a feed: the document is JSON, not RSS or Atom")
    # Sanitising would read "$x<y$ and $z>w$" in a plain-text abstract as a tag and drop it.
    document = feedparser.parse(io.BytesIO(content), sanitize_html=False)
    _document_check(document)
    _api_error_check(document)
    context = _context_build(document, default_date=default_date)
    papers: list[ParsedPaper] = []
    for entry in document.entries:
        paper = _entry_parse(entry, context=context)
        if paper is not None:
            papers.append(paper)
    return ParsedFeed(
        papers=papers,
        skipped=len(document.entries) - len(papers),
        format=context.format,
        subjects=_subjects_read(document) if context.format in _LISTING_FORMATS else [],
        feed_date=context.feed_date,
    )


def _document_check(document: Any) -> None:
    if not document.get("version"):
        raise FeedError("not a feed: no RSS or Atom document found")
    problem = document.get("bozo_exception")
    # feedparser also flags harmless things (a wrong declared encoding); only broken XML counts.
    if document.get("bozo") and isinstance(problem, xml.sax.SAXParseException):
        where = f"line {problem.getLineNumber()}, column {problem.getColumnNumber()}"
        raise FeedError(f"malformed XML at {where}: {problem.getMessage()}")
    if document.get("bozo") and isinstance(problem, xml.sax.SAXException):
        raise FeedError(f"malformed XML: {problem}")


def _api_error_check(document: Any) -> None:
    """The API answers a malformed query with one entry titled "Error": a failure, not a day."""
    for entry in document.entries:
        if "arxiv.org/api/errors" in entry.get("id", ""):
            reason = collapse(entry.get("summary", "")) or "unknown error"
            raise FeedError(f"{_MALFORMED}: {reason}")


def _subjects_read(document: Any) -> list[str]:
    """The arXiv categories a listing covers, from its channel title, else its links."""
    channel = document.feed
    title = _LISTING_TITLE.match(collapse(channel.get("title", "")))
    if title and (subjects := _subjects_split(title.group(1))):
        return subjects
    links = [channel.get("link", "")] + [link.get("href", "") for link in channel.get("links", [])]
    for link in links:
        if subjects := subjects_from_url(link):
            return subjects
    return []


def subjects_from_url(url: str) -> list[str]:
    """The categories of an arXiv listing feed's URL: ``.../rss/cs.AI+cs.CL`` -> both."""
    if "arxiv.org" not in (urlsplit(url).hostname or ""):
        return []
    found = _LISTING_PATH.search(urlsplit(url).path)
    return _subjects_split(unquote(found.group(1))) if found else []


def _subjects_split(text: str) -> list[str]:
    parts = re.split(r"[+,\s]+", text.strip())
    if not parts or not all(_CATEGORY.match(part) for part in parts):
        return []
    return list(dict.fromkeys(parts))


def _format_detect(document: Any) -> str:
    version: str = document.get("version", "")
    if version in ("rss090", "rss10"):
        return "rss1"
    if version.startswith("rss"):
        return "rss2"
    if version.startswith("atom"):
        return "atom-api" if _is_api_response(document) else "atom"
    raise FeedError(f"unsupported feed format: {version}")


def _is_api_response(document: Any) -> bool:
    if "arxiv.org/api" in document.feed.get("id", ""):
        return True
    return any(
        "arxiv_primary_category" in entry and "arxiv_announce_type" not in entry
        for entry in document.entries
    )


def _context_build(document: Any, *, default_date: date | None) -> _FeedContext:
    channel = document.feed
    moment = _moment(channel.get("published_parsed") or channel.get("updated_parsed"))
    subject = _RSS1_SUBJECT.match(collapse(channel.get("title", "")))
    return _FeedContext(
        format=_format_detect(document),
        default_date=default_date,
        feed_date=listing_date(moment) if moment else None,
        subject=subject.group(1) if subject else "",
    )


def _entry_parse(entry: Any, *, context: _FeedContext) -> ParsedPaper | None:
    """One entry as a paper, or None when it lacks an arXiv id, title, abstract or authors."""
    found = _arxiv_id_find(_entry_id_sources(entry))
    if found is None:
        return None
    arxiv_id, version = found
    raw_title = html.unescape(entry.get("title", ""))
    title, primary, announce_type = _title_read(
        raw_title, entry=entry, version=version, context=context
    )
    abstract = _abstract_read(entry, context=context)
    authors = _authors_read(entry, context=context)
    if not (title and abstract and authors):
        return None
    categories = _categories_read(entry, primary=primary)
    return ParsedPaper(
        arxiv_id=arxiv_id,
        version=version,
        title=title,
        abstract=abstract,
        authors=authors,
        categories=categories,
        primary_category=categories[0] if categories else "",
        abs_url=f"https://arxiv.org/abs/{arxiv_id}",
        pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
        announce_type=announce_type,
        announced_on=_announced_on(entry, version=version, context=context),
    )


def _entry_id_sources(entry: Any) -> list[str]:
    """Where an entry may name its arXiv id, most trusted first."""
    sources = [entry.get("id", ""), entry.get("link", "")]
    sources += [link.get("href", "") for link in entry.get("links", [])]
    # RSS 1.0 carries the version only in the title, RSS 2.0 also in the description.
    sources += [entry.get("title", ""), entry.get("summary", "")[:200]]
    return sources


def _arxiv_id_find(sources: Iterable[str]) -> tuple[str, int] | None:
    """The first arXiv id in ``sources`` and its version (1 when no source gives one)."""
    arxiv_id = ""
    version = 0
    for source in sources:
        for match in _ARXIV_ID.finditer(source or ""):
            arxiv_id = arxiv_id or match.group(1)
            if match.group(1) == arxiv_id and match.group(2) and not version:
                version = int(match.group(2))
    if not arxiv_id:
        return None
    return arxiv_id, version or 1


def _title_read(
    raw: str, *, entry: Any, version: int, context: _FeedContext
) -> tuple[str, str, str]:
    """The clean title, the primary category it names (RSS 1.0 only) and the announce type."""
    if context.format == "rss1":
        return _rss1_title_read(raw, subject=context.subject)
    return collapse(raw), "", _announce_type_read(entry, version=version, context=context)


def _rss1_title_read(raw: str, *, subject: str) -> tuple[str, str, str]:
    suffix = _RSS1_TITLE_SUFFIX.search(raw)
    if suffix is None:
        return collapse(raw), "", AnnounceType.NEW.value
    primary, flag = suffix.group(1).strip(), suffix.group(2) or ""
    outside = bool(subject) and not _in_subject(primary, subject=subject)
    if flag == "UPDATED":
        kind = AnnounceType.REPLACE_CROSS if outside else AnnounceType.REPLACE
    elif flag.startswith("CROSS") or outside:
        kind = AnnounceType.CROSS
    else:
        kind = AnnounceType.NEW
    return collapse(raw[: suffix.start()]), primary, kind.value


def _in_subject(category: str, *, subject: str) -> bool:
    return any(category == part or category.startswith(f"{part}.") for part in subject.split("+"))


def _announce_type_read(entry: Any, *, version: int, context: _FeedContext) -> str:
    if context.format == "atom-api":
        return AnnounceType.NEW.value if version == 1 else AnnounceType.REPLACE.value
    declared = entry.get("arxiv_announce_type", "")
    if not declared:
        prefix = _ANNOUNCE_PREFIX.match(collapse(entry.get("summary", "")))
        declared = prefix.group(1) if prefix else ""
    declared = declared.strip().lower()
    return declared if declared in _ANNOUNCE_TYPES else AnnounceType.UNKNOWN.value


def _abstract_read(entry: Any, *, context: _FeedContext) -> str:
    raw = entry.get("summary", "")
    text = html_to_text(raw) if context.format == "rss1" else collapse(html.unescape(raw))
    return _ANNOUNCE_PREFIX.sub("", text, count=1).strip()


def _authors_read(entry: Any, *, context: _FeedContext) -> list[str]:
    names = [author.get("name", "") for author in entry.get("authors", [])]
    if not any(names):
        names = [entry.get("author", "")]
    # RSS strings list everyone in one dc:creator; each API <author> is one person.
    if context.format != "atom-api":
        names = [part for name in names for part in html_to_text(name).split(",")]
    return [clean for name in names if (clean := html_to_text(name))]


def _categories_read(entry: Any, *, primary: str) -> list[str]:
    declared = entry.get("arxiv_primary_category") or {}
    terms = [primary, declared.get("term", "")]
    terms += [tag.get("term", "") for tag in entry.get("tags", [])]
    # dict.fromkeys keeps the first occurrence: the primary category stays first.
    return list(dict.fromkeys(term.strip() for term in terms if _CATEGORY.match(term.strip())))


def _announced_on(entry: Any, *, version: int, context: _FeedContext) -> date:
    if context.default_date is not None:
        return context.default_date
    if context.format == "atom-api":
        submitted = _moment(entry.get("published_parsed" if version == 1 else "updated_parsed"))
        if submitted is not None:
            return submission_listing_date(submitted)
    elif context.format != "rss1":
        moment = _moment(entry.get("published_parsed") or entry.get("updated_parsed"))
        if moment is not None:
            return listing_date(moment)
    # A listing without any date was read just now: date it as the current listing.
    return context.feed_date or listing_date(timezone.now())


# --- Storing -----------------------------------------------------------------------------------

# What a newer version changes. announced_on, announce_type and classification are not here.
_REFRESHED_FIELDS = [
    "version",
    "title",
    "abstract",
    "authors",
    "categories",
    "primary_category",
    "replaced_on",
    "updated_at",
]


def papers_store(*, papers: Sequence[ParsedPaper], feed: Feed | None = None) -> StoreResult:
    """Store papers once by arXiv id, in one transaction with a few bulk queries."""
    result = StoreResult()
    wanted = _papers_latest(papers)
    result.unchanged += len(papers) - len(wanted)  # repeats of one paper within the feed
    if not settings.DIGEST_INCLUDE_CROSSLISTS:
        kept = [paper for paper in wanted if paper.announce_type != AnnounceType.CROSS]
        result.skipped_crosslists = len(wanted) - len(kept)
        wanted = kept
    to_create: list[Paper] = []
    to_refresh: list[Paper] = []
    with transaction.atomic():
        stored = _versions_stored(arxiv_ids=[paper.arxiv_id for paper in wanted])
        for paper in wanted:
            if paper.arxiv_id not in stored:
                to_create.append(_paper_row(paper, feed=feed))
            elif paper.version > stored[paper.arxiv_id]:
                to_refresh.append(_paper_row(paper, feed=feed, replaced=True))
            else:
                result.unchanged += 1
        # Two workers storing the same new paper at once: the second insert is a no-op.
        Paper.objects.bulk_create(to_create, batch_size=_STORE_BATCH, ignore_conflicts=True)
        # An upsert that only ever hits existing rows: bulk_update builds one CASE per field
        # and row in Python, about 5 s for 1,000 replacements; this takes a few milliseconds.
        Paper.objects.bulk_create(
            to_refresh,
            batch_size=_STORE_BATCH,
            update_conflicts=True,
            unique_fields=["arxiv_id"],
            update_fields=_REFRESHED_FIELDS,
        )
    result.created, result.replaced = len(to_create), len(to_refresh)
    return result


def _papers_latest(papers: Sequence[ParsedPaper]) -> list[ParsedPaper]:
    """One paper per arXiv id: the highest version, the first seen on a tie."""
    latest: dict[str, ParsedPaper] = {}
    for paper in papers:
        seen = latest.get(paper.arxiv_id)
        if seen is None or paper.version > seen.version:
            latest[paper.arxiv_id] = paper
    return list(latest.values())


def _versions_stored(*, arxiv_ids: list[str]) -> dict[str, int]:
    versions: dict[str, int] = {}
    # Chunked so a huge feed stays under the database's limit on query parameters.
    for start in range(0, len(arxiv_ids), _STORE_BATCH):
        chunk = arxiv_ids[start : start + _STORE_BATCH]
        rows = Paper.objects.filter(arxiv_id__in=chunk).values_list("arxiv_id", "version")
        versions.update(rows)
    return versions


def _paper_row(paper: ParsedPaper, *, feed: Feed | None, replaced: bool = False) -> Paper:
    is_replacement = replaced or paper.announce_type in _REPLACE_TYPES
    return Paper(
        arxiv_id=paper.arxiv_id,
        version=paper.version,
        title=paper.title,
        abstract=paper.abstract,
        authors=list(paper.authors),
        categories=list(paper.categories),
        primary_category=paper.primary_category,
        abs_url=paper.abs_url,
        pdf_url=paper.pdf_url,
        announce_type=paper.announce_type,
        announced_on=paper.announced_on,
        replaced_on=paper.announced_on if is_replacement else None,
        source_feed=feed,
    )


# --- Counting -----------------------------------------------------------------------------------


def fetch_counts_build(
    *, parsed: ParsedFeed, known_ids: set[str], feed: Feed | None = None
) -> list[FetchCount]:
    """Unsaved ``FetchCount`` rows of one parsed feed: per category and announcement day, its
    new, cross-listed and replaced entries; ``known``: new and cross ones in ``known_ids``."""
    tallies: dict[tuple[str, date | None], Counter[str]] = {}
    for paper in _papers_latest(parsed.papers):
        for category, kind in _paper_kinds(paper, subjects=parsed.subjects):
            tally = tallies.setdefault((category, paper.announced_on), Counter())
            tally[kind] += 1
            tally["known"] += kind != "replaced" and paper.arxiv_id in known_ids
    for subject in parsed.subjects:  # a category the listing covers but announced nothing in
        if not any(category == subject for category, _ in tallies):
            tallies[(subject, parsed.feed_date)] = Counter()
    fetched_at = timezone.now()
    return [
        FetchCount(
            feed=feed,
            fetched_at=fetched_at,
            arxiv_category=category,
            announced_on=day,
            new=tally["new"],
            cross=tally["cross"],
            replaced=tally["replaced"],
            known=tally["known"],
        )
        for (category, day), tally in sorted(tallies.items(), key=lambda item: str(item[0]))
    ]


def _paper_kinds(paper: ParsedPaper, *, subjects: Sequence[str]) -> list[tuple[str, str]]:
    """(category, new / cross / replaced) for each category of the feed that lists the paper."""
    if paper.announce_type in _REPLACE_TYPES:
        kind = "replaced"
    elif paper.announce_type == AnnounceType.CROSS:
        kind = "cross"
    else:
        kind = "new"
    if not subjects:  # the API, or a feed that is not an arXiv listing: the primary category
        return [(paper.primary_category, kind)] if paper.primary_category else []
    if len(subjects) == 1:  # the feed's own announce types are about this one category
        return [(subjects[0], kind)]
    listed = [
        subject
        for subject in subjects
        if any(_in_subject(category, subject=subject) for category in paper.categories)
    ]
    if not listed:
        return [(subjects[0], kind)]
    primary = paper.primary_category
    return [
        (subject, kind if kind == "replaced" or _in_subject(primary, subject=subject) else "cross")
        for subject in listed
    ]


def _ids_stored(*, papers: Sequence[ParsedPaper]) -> set[str]:
    return set(_versions_stored(arxiv_ids=list({paper.arxiv_id for paper in papers})))


def listing_expectations_fill(
    *, counts: Sequence[FetchCount], pace: Pace | None = None
) -> list[str]:
    """Set ``expected_*`` from arXiv's listing page of each category (one request each);
    return the reasons of those that could not be read (also logged). Never raises."""
    problems = []
    for category in dict.fromkeys(count.arxiv_category for count in counts):
        try:
            listing = listing_fetch(category=category, pace=pace)
        except ListingError as exc:
            problems.append(str(exc))
            continue
        for count in counts:
            if count.arxiv_category != category:
                continue
            if listing.day and count.announced_on and listing.day != count.announced_on:
                problems.append(
                    f"{category}: the listing page shows {listing.day}, "
                    f"the feed claims {count.announced_on}"
                )
                continue
            count.expected_new = listing.new
            count.expected_cross = listing.cross
            count.expected_replaced = listing.replaced
    for problem in problems:
        logger.warning("Listing page not used: %s", problem)
    return problems


# --- Fetching ----------------------------------------------------------------------------------


@dataclass
class _Download:
    content: bytes
    not_modified: bool = False
    etag: str = ""
    last_modified: str = ""
    throttled_for: float = 0.0


def _feed_download(*, feed: Feed, pace: Pace | None) -> _Download:
    parts = urlsplit(feed.url)
    if parts.scheme in ("http", "https"):
        return _http_get(url=feed.url, etag=feed.etag, last_modified=feed.last_modified, pace=pace)
    if parts.scheme == "file":
        return _Download(content=_file_read(Path(urllib.request.url2pathname(parts.path))))
    if parts.scheme == "":
        return _Download(content=_file_read(Path(feed.url)))
    raise FeedError(f"unsupported URL scheme {parts.scheme!r}: use http(s), file:// or a path")


def _file_read(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return _size_check(handle.read(settings.FEED_MAX_BYTES + 1))
    except OSError as exc:
        raise FeedError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _size_check(content: bytes) -> bytes:
    if len(content) > settings.FEED_MAX_BYTES:
        raise FeedError(f"document larger than FEED_MAX_BYTES ({settings.FEED_MAX_BYTES} bytes)")
    return content


def _http_get(*, url: str, etag: str, last_modified: str, pace: Pace | None) -> _Download:
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        answer = http_get(url=url, headers=headers, limit=settings.FEED_MAX_BYTES + 1, pace=pace)
    except FetchError as exc:
        raise FeedError(str(exc)) from exc
    if answer.status == 304:
        return _Download(b"", True, etag, last_modified, throttled_for=answer.throttled_for)
    if not 200 <= answer.status < 300:
        raise FeedError(_http_error_reason(answer))
    return _Download(
        content=_size_check(answer.body),
        etag=answer.headers.get("ETag", ""),
        last_modified=answer.headers.get("Last-Modified", ""),
        throttled_for=answer.throttled_for,
    )


def _http_error_reason(answer: HttpAnswer) -> str:
    """The status line, with arXiv's own reason when the API sent its error document."""
    if b"arxiv.org/api/errors" in answer.body:
        try:
            feed_parse(content=answer.body)
        except FeedError as api_error:
            return f"{api_error} ({answer.status_line})"
    if answer.status == 400 and "/api/query" in urlsplit(answer.url).path:
        return f"{_MALFORMED}: {answer.status_line}"
    return answer.status_line


def feed_fetch(*, feed: Feed, pace: Pace | None = None) -> FeedFetchResult:
    """Fetch, parse and store one feed, and count what it announced (``FetchCount`` rows).
    Problems are recorded on the row, never raised. ``pace``: tests' own (see arxiv_http)."""
    try:
        download = _feed_download(feed=feed, pace=pace)
        if download.not_modified:
            _feed_record(feed=feed, status=Feed.Status.NOT_MODIFIED)
            return FeedFetchResult(
                feed_url=feed.url,
                ok=True,
                not_modified=True,
                error="",
                parsed=0,
                store=None,
                throttled_for=download.throttled_for,
            )
        parsed = feed_parse(content=download.content)
        counts = fetch_counts_build(
            parsed=parsed, known_ids=_ids_stored(papers=parsed.papers), feed=feed
        )
        store = papers_store(papers=parsed.papers, feed=feed)
    except FeedError as exc:
        return _feed_fail(feed=feed, reason=str(exc))
    except Exception as exc:
        # A bug or database trouble with one feed must not stop the others.
        logger.exception("Fetching %s failed unexpectedly", feed.url)
        return _feed_fail(feed=feed, reason=f"unexpected error: {exc!r}")
    _feed_record(
        feed=feed,
        status=Feed.Status.OK,
        etag=download.etag,
        last_modified=download.last_modified,
        last_entry_count=len(parsed.papers),
    )
    listing_errors = _counts_save(counts=counts, parsed=parsed, pace=pace)
    return FeedFetchResult(
        feed_url=feed.url,
        ok=True,
        not_modified=False,
        error="",
        parsed=len(parsed.papers),
        store=store,
        skipped=parsed.skipped,
        counts=counts,
        listing_errors=listing_errors,
        throttled_for=download.throttled_for,
    )


def _counts_save(*, counts: list[FetchCount], parsed: ParsedFeed, pace: Pace | None) -> list[str]:
    """Save the counts, with the listing pages' figures when ARXIV_LISTING_CHECK is on."""
    problems: list[str] = []
    if settings.ARXIV_LISTING_CHECK and parsed.subjects:
        try:
            problems = listing_expectations_fill(counts=counts, pace=pace)
        except Exception as exc:
            # The listing page is a second opinion: nothing about it may fail the fetch.
            logger.exception("Reading the listing pages failed unexpectedly")
            problems = [f"unexpected error: {exc!r}"]
    FetchCount.objects.bulk_create(counts)
    return problems


def _feed_fail(*, feed: Feed, reason: str) -> FeedFetchResult:
    logger.warning("Feed %s failed: %s", feed.url, reason)
    feed.last_status = Feed.Status.ERROR
    feed.last_error = reason
    feed.consecutive_failures += 1
    feed.last_fetched_at = timezone.now()
    feed.save(
        update_fields=["last_status", "last_error", "consecutive_failures", "last_fetched_at"]
    )
    return FeedFetchResult(
        feed_url=feed.url, ok=False, not_modified=False, error=reason, parsed=0, store=None
    )


def _feed_record(*, feed: Feed, status: str, **changes: Any) -> None:
    """Record a successful fetch (``ok`` or ``not_modified``) and any new validators."""
    now = timezone.now()
    changes |= {
        "last_status": status,
        "last_error": "",
        "consecutive_failures": 0,
        "last_fetched_at": now,
        "last_success_at": now,
    }
    for name, value in changes.items():
        setattr(feed, name, value)
    feed.save(update_fields=list(changes))


def feeds_fetch(
    *,
    urls: Sequence[str] | None = None,
    log: Callable[[str], None] | None = None,
    pace: Pace | None = None,
) -> list[FeedFetchResult]:
    """Fetch every enabled feed, or only ``urls`` (each gets a Feed row to record its state).
    ``log`` gets each feed's line and its per-category counts."""
    if urls is None:
        feeds = list(Feed.objects.filter(enabled=True))
    else:
        feeds = [Feed.objects.get_or_create(url=url)[0] for url in dict.fromkeys(urls)]
    results = []
    for feed in feeds:
        result = feed_fetch(feed=feed, pace=pace)
        if log is not None:
            for line in [result.describe(), *result.describe_counts()]:
                log(line)
        results.append(result)
    return results
