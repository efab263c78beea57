"""The integrity of an announcement day: did the feeds give what arXiv announced?

A day can come out short or stale with every step reporting success (a feed serving the
previous announcement again under today's date, an API answering short). So each build
judges the day from what the fetches recorded (`FetchCount`: per feed and arXiv category, the
new, cross-listed, replaced and already known entries, and, with ARXIV_LISTING_CHECK on, what
arXiv's listing page says it shows), and stores the verdict on `Digest.integrity`.

Per arXiv category the day's fetches covered (a feed may be fetched again: the fetch that saw
the most entries stands for the category; the entries known before the day's first fetch are
what the fetches' `known` does not explain) it is suspect when

- short: fewer new entries than INTEGRITY_SHORT_RATIO x its usual count (the median of its last
  INTEGRITY_HISTORY_DAYS announcement days before this one; judged only with HISTORY_MIN_DAYS
  days of history and a usual count of at least USUAL_MIN, since small categories vary a lot:
  a new install has nothing suspect by history);
- stale: at least INTEGRITY_STALE_RATIO of its new and cross-listed entries were already
  known (judged from STALE_MIN_ENTRIES entries on);
- listing: fewer received than the listing shows, for new, cross-listed or replaced entries.

The day as a whole is one of: ok; suspect (a category is); broken (a feed failed, or gave
nothing while the other feeds had the day's papers and its own history says it usually has
some, or the listing shows papers no feed gave); empty (every feed fetched fine and none had
an entry: arXiv announced nothing, a holiday); uncounted (no fetch counted the day). arXiv
announces every category at once, so a holiday empties every feed; one feed empty among full
ones is a broken parse.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from django.conf import settings
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext_noop

from .editor_text import EditorText, indent, joined, text_json
from .models import Feed, FetchCount

HISTORY_MIN_DAYS = 3
USUAL_MIN = 5
STALE_MIN_ENTRIES = 5


class DayKind:
    OK = "ok"
    SUSPECT = "suspect"
    BROKEN = "broken"
    EMPTY = "empty"
    UNCOUNTED = "uncounted"  # no fetch counted the day (fetched before counts were kept)


# The kinds as the run's reasons name them, translatable where the admin shows them.
DAY_KIND_WORDS = {
    DayKind.OK: gettext_noop("ok"),
    DayKind.SUSPECT: gettext_noop("suspect"),
    DayKind.BROKEN: gettext_noop("broken"),
    DayKind.EMPTY: gettext_noop("empty"),
    DayKind.UNCOUNTED: gettext_noop("uncounted"),
}


def kind_word(kind: str) -> str:
    return EditorText(DAY_KIND_WORDS[kind]) if kind in DAY_KIND_WORDS else kind


@dataclass
class Counts:
    new: int = 0
    cross: int = 0
    replaced: int = 0


@dataclass
class Expected:
    """What arXiv's listing page says it shows (None: the page did not say)."""

    new: int | None = None
    cross: int | None = None
    replaced: int | None = None


@dataclass
class Usual:
    median: float | None = None
    days: int = 0


@dataclass
class CategoryIntegrity:
    category: str
    received: Counts
    known: int
    usual: Usual
    expected: Expected | None = None
    feeds: list[str] = field(default_factory=list)
    suspect: bool = False
    reasons: list[str] = field(default_factory=list)

    def figures(self) -> str:
        """The category's figures in one line, for the build's output."""
        got = self.received
        received = {"new": got.new, "cross": got.cross, "replaced": got.replaced}
        if self.usual.median is not None:
            usual: str = EditorText(
                gettext_noop("; usual %(median)s new (median of %(days)s days)"),
                {"median": f"{self.usual.median:g}", "days": self.usual.days},
            )
        else:
            usual = EditorText(gettext_noop("; no history yet"))
        listing: str = ""
        if self.expected is not None:
            want = self.expected
            listing = EditorText(
                gettext_noop("; listing shows %(new)s new, %(cross)s cross, %(replaced)s replaced"),
                {
                    "new": shown(want.new),
                    "cross": shown(want.cross),
                    "replaced": shown(want.replaced),
                },
            )
        return EditorText(
            gettext_noop(
                "received %(new)s new, %(cross)s cross, %(replaced)s replaced, %(known)s already "
                "known%(usual)s%(listing)s"
            ),
            received | {"known": self.known, "usual": usual, "listing": listing},
        )


@dataclass
class FeedProblem:
    feed: str
    problem: str


@dataclass
class DayIntegrity:
    day: date
    kind: str
    categories: list[CategoryIntegrity]
    feeds: list[FeedProblem]
    summary: str

    @property
    def suspect(self) -> bool:
        return self.kind in (DayKind.SUSPECT, DayKind.BROKEN)

    @property
    def suspect_categories(self) -> list[CategoryIntegrity]:
        return [category for category in self.categories if category.suspect]

    def as_json(self) -> dict[str, Any]:
        """The verdict as stored (Digest.integrity): English texts, each beside its template
        (`*_text`) so the admin shows it in the editor's language."""
        return {
            "day": self.day.isoformat(),
            "judged_at": timezone.now().isoformat(),
            "kind": self.kind,
            "suspect": self.suspect,
            "summary": str(self.summary),
            "summary_text": text_json(self.summary),
            "categories": [
                asdict(category) | {"reason_texts": [text_json(r) for r in category.reasons]}
                for category in self.categories
            ],
            "feeds": [
                asdict(problem) | {"problem_text": text_json(problem.problem)}
                for problem in self.feeds
            ],
        }


def shown(value: int | None) -> str:
    return "?" if value is None else str(value)


# --- Reading the fetches ---------------------------------------------------------------------


def fresh(row: FetchCount) -> int:
    return max(row.new + row.cross - row.known, 0)


def fullest(rows: Sequence[FetchCount]) -> FetchCount:
    """The fetch that saw the most of the day's entries (the latest on a tie)."""
    return max(rows, key=lambda r: (r.new + r.cross, r.fetched_at))


def day_received(rows: Sequence[FetchCount]) -> tuple[Counts, int]:
    """What the fetches of a day gave a category, and how many of those entries were known
    before the day's first fetch. Each fetch's unknown entries are stored by it, so a later
    fetch (a re-fetch, or a second feed of the category) sees them as known: the entries
    the day brought are the sum over its fetches of those not known yet."""
    row = fullest(rows)
    entries = row.new + row.cross
    known_before = max(entries - sum(fresh(r) for r in rows), 0)
    return Counts(new=row.new, cross=row.cross, replaced=row.replaced), known_before


def listing_counts(rows: Sequence[FetchCount]) -> Expected | None:
    """What the listing page said, at the latest fetch that read it."""
    read = [r for r in rows if r.expected_new is not None or r.expected_cross is not None]
    if not read:
        return None
    latest = max(read, key=lambda r: r.fetched_at)
    return Expected(
        new=latest.expected_new, cross=latest.expected_cross, replaced=latest.expected_replaced
    )


def category_usual(*, category: str, before: date) -> Usual:
    """The median of the category's new entries over its last announcement days before
    `before` (a day with none is not an announcement day, nor is it counted)."""
    best_per_day = (
        FetchCount.objects.filter(arxiv_category=category, announced_on__lt=before, new__gt=0)
        .values("announced_on")
        .annotate(best_new=Max("new"))
        .order_by("-announced_on")[: settings.INTEGRITY_HISTORY_DAYS]
    )
    counts = [row["best_new"] for row in best_per_day]
    if not counts:
        return Usual()
    return Usual(median=float(statistics.median(counts)), days=len(counts))


def feed_names(rows: Iterable[FetchCount]) -> list[str]:
    return sorted({str(r.feed) for r in rows if r.feed is not None})


# --- Judging ---------------------------------------------------------------------------------


def judged_by_history(usual: Usual) -> bool:
    return usual.median is not None and usual.days >= HISTORY_MIN_DAYS and usual.median >= USUAL_MIN


LISTING_SHORT = {
    "new": gettext_noop("listing: arXiv's listing shows %(want)s new, the feeds gave %(got)s"),
    "cross": gettext_noop("listing: arXiv's listing shows %(want)s cross, the feeds gave %(got)s"),
    "replaced": gettext_noop(
        "listing: arXiv's listing shows %(want)s replaced, the feeds gave %(got)s"
    ),
}


def category_reasons(
    *, received: Counts, known: int, usual: Usual, expected: Expected | None, by_history: bool
) -> list[str]:
    reasons: list[str] = []
    short = settings.INTEGRITY_SHORT_RATIO
    if by_history and judged_by_history(usual) and received.new < short * (usual.median or 0):
        reasons.append(
            EditorText(
                gettext_noop(
                    "short: %(new)s new entries, under %(ratio)s x the usual %(median)s "
                    "(median of the last %(days)s announcement days)"
                ),
                {
                    "new": received.new,
                    "ratio": f"{short:g}",
                    "median": f"{usual.median:g}",
                    "days": usual.days,
                },
            )
        )
    entries = received.new + received.cross
    stale = settings.INTEGRITY_STALE_RATIO
    if entries >= STALE_MIN_ENTRIES and known / entries >= stale:
        reasons.append(
            EditorText(
                gettext_noop(
                    "stale: %(known)s of its %(entries)s new and cross-listed entries were "
                    "already known (the feed seems to serve an earlier announcement again)"
                ),
                {"known": known, "entries": entries},
            )
        )
    for kind in ("new", "cross", "replaced"):
        want = getattr(expected, kind) if expected else None
        got = getattr(received, kind)
        if want is not None and got < want:
            reasons.append(EditorText(LISTING_SHORT[kind], {"want": want, "got": got}))
    return reasons


def category_judge(
    *, category: str, rows: Sequence[FetchCount], day: date, by_history: bool
) -> CategoryIntegrity:
    usual = category_usual(category=category, before=day)
    received, known = day_received(rows) if rows else (Counts(), 0)
    expected = listing_counts(rows)
    reasons = category_reasons(
        received=received, known=known, usual=usual, expected=expected, by_history=by_history
    )
    return CategoryIntegrity(
        category=category,
        received=received,
        known=known,
        usual=usual,
        expected=expected,
        feeds=feed_names(rows),
        suspect=bool(reasons),
        reasons=reasons,
    )


def categories_usually_covered(*, day: date) -> set[str]:
    """The categories the enabled feeds reported on their recent days before `day`."""
    recent = (
        FetchCount.objects.filter(feed__enabled=True, announced_on__lt=day)
        .values_list("announced_on", flat=True)
        .distinct()
        .order_by("-announced_on")[: settings.INTEGRITY_HISTORY_DAYS]
    )
    days = list(recent)
    if not days:
        return set()
    return set(
        FetchCount.objects.filter(feed__enabled=True, announced_on__in=days).values_list(
            "arxiv_category", flat=True
        )
    )


def feed_usual_entries(*, feed: Feed, before: date) -> Usual:
    """The median of the new and cross-listed entries the feed gave on its last days."""
    per_day: dict[date, int] = defaultdict(int)
    rows = FetchCount.objects.filter(feed=feed, announced_on__lt=before).order_by("-announced_on")
    for row in rows.values("announced_on", "arxiv_category").annotate(
        best_new=Max("new"), best_cross=Max("cross")
    ):
        per_day[row["announced_on"]] += row["best_new"] + row["best_cross"]
    counts = [n for _, n in sorted(per_day.items(), reverse=True) if n][
        : settings.INTEGRITY_HISTORY_DAYS
    ]
    if not counts:
        return Usual()
    return Usual(median=float(statistics.median(counts)), days=len(counts))


def feed_problems(*, day: date, rows: Sequence[FetchCount], day_total: int) -> list[FeedProblem]:
    """Feeds that failed, or gave nothing for the day while the others had its papers.

    Only for the latest day the feeds claim: a feed failing today says nothing of an older day
    being rebuilt."""
    if FetchCount.objects.filter(announced_on__gt=day).exists():
        return []
    entries_by_feed: dict[int, int] = defaultdict(int)
    for row in rows:
        if row.feed_id is not None:
            entries_by_feed[row.feed_id] += row.new + row.cross
    problems = []
    for feed in Feed.objects.filter(enabled=True).exclude(last_status=Feed.Status.NEVER):
        if entries_by_feed.get(feed.pk, 0) > 0:
            continue
        if feed.last_status == Feed.Status.ERROR:
            failed = EditorText(gettext_noop("failed: %(error)s"), {"error": feed.last_error})
            problems.append(FeedProblem(str(feed), failed))
            continue
        usual = feed_usual_entries(feed=feed, before=day)
        if day_total > 0 and judged_by_history(usual):
            problems.append(FeedProblem(str(feed), empty_feed_problem(feed, day, usual)))
    return problems


def empty_feed_problem(feed: Feed, day: date, usual: Usual) -> str:
    if feed.last_status == Feed.Status.NOT_MODIFIED:
        what = EditorText(
            gettext_noop(
                "has not changed since its previous fetch (HTTP 304): it may still serve an "
                "earlier announcement"
            )
        )
    else:
        what = EditorText(gettext_noop("a broken parse?"))
    return EditorText(
        gettext_noop(
            "gave no entries for %(day)s while the other feeds had the day's papers; it usually "
            "has %(median)s (median of %(days)s days): %(what)s"
        ),
        {"day": str(day), "median": f"{usual.median:g}", "days": usual.days, "what": what},
    )


def day_kind(
    *, categories: Sequence[CategoryIntegrity], problems: Sequence[FeedProblem], total: int
) -> str:
    listing_says_more = any(
        c.expected is not None and (c.expected.new or 0) + (c.expected.cross or 0) > 0
        for c in categories
    )
    if problems or (total == 0 and listing_says_more):
        return DayKind.BROKEN
    if not categories:
        return DayKind.UNCOUNTED
    if total == 0:
        return DayKind.EMPTY
    if any(c.suspect for c in categories):
        return DayKind.SUSPECT
    return DayKind.OK


def day_summary(*, kind: str, day: date, categories: Sequence[CategoryIntegrity]) -> str:
    suspect = [c.category for c in categories if c.suspect]
    params: dict[str, Any] = {"day": str(day)}
    if kind == DayKind.EMPTY:
        template = gettext_noop(
            "No entries for %(day)s in any feed, and every feed was read without error: arXiv "
            "announced nothing (a weekend or a holiday)."
        )
    elif kind == DayKind.BROKEN:
        template = gettext_noop("The feeds of %(day)s look broken: see the feeds' problems below.")
    elif kind == DayKind.UNCOUNTED:
        template = gettext_noop(
            "No fetch counted the entries of %(day)s: there is nothing to judge it by."
        )
    elif kind == DayKind.SUSPECT:
        template = gettext_noop("Suspect counts for %(day)s in %(count)s categories: %(names)s.")
        params |= {"count": len(suspect), "names": ", ".join(suspect)}
    else:
        template = gettext_noop("The counts of %(day)s look normal in %(count)s categories.")
        params |= {"count": len(categories)}
    return EditorText(template, params)


def day_integrity(*, day: date) -> DayIntegrity:
    """Judges an announcement day from the fetches' counts (see the module's docstring)."""
    rows = list(FetchCount.objects.filter(announced_on=day).select_related("feed"))
    by_category: dict[str, list[FetchCount]] = defaultdict(list)
    for row in rows:
        by_category[row.arxiv_category].append(row)
    day_total = sum(fullest(r).new + fullest(r).cross for r in by_category.values())
    names = set(by_category)
    if day_total > 0:
        # A category the feeds usually report and that is missing today got nothing.
        names |= categories_usually_covered(day=day)
    # Nothing announced at all: no category is short of its history (the feeds are judged).
    categories = [
        category_judge(
            category=name, rows=by_category.get(name, []), day=day, by_history=day_total > 0
        )
        for name in sorted(names)
    ]
    problems = feed_problems(day=day, rows=rows, day_total=day_total)
    kind = day_kind(categories=categories, problems=problems, total=day_total)
    return DayIntegrity(
        day=day,
        kind=kind,
        categories=categories,
        feeds=problems,
        summary=day_summary(kind=kind, day=day, categories=categories),
    )


def latest_claimed_day() -> date | None:
    """The latest announcement day the feeds' fetches claimed (also a day without entries,
    which no paper carries): the day to judge after a fetch that stored nothing."""
    found: date | None = FetchCount.objects.aggregate(day=Max("announced_on"))["day"]
    return found


def integrity_lines(integrity: DayIntegrity) -> list[str]:
    """The verdict for the build's output: one line per suspect category with its figures
    (each contains "suspect"), and the feeds' problems."""
    lines: list[str] = [
        EditorText(
            gettext_noop("Integrity of %(day)s: %(kind)s. %(summary)s"),
            {
                "day": str(integrity.day),
                "kind": kind_word(integrity.kind),
                "summary": integrity.summary,
            },
        )
    ]
    for category in integrity.suspect_categories:
        reasons = joined(category.reasons)
        line = EditorText(
            gettext_noop("suspect %(category)s: %(figures)s. %(reasons)s"),
            {"category": category.category, "figures": category.figures(), "reasons": reasons},
        )
        lines.append(indent(line))
    lines += [
        indent(
            EditorText(
                gettext_noop("feed problem, suspect day: %(feed)s: %(problem)s"),
                {"feed": p.feed, "problem": p.problem},
            )
        )
        for p in integrity.feeds
    ]
    return lines
