"""Building a day's issue: the day's papers, sorted, summarised per category, charted, as a draft.

The slow parts (LLM calls, the chart) run before any transaction is opened; the database writes
happen at the end in one transaction that locks the Digest row, so two builds of the same day
that race end with one Digest and one consistent set of sections.

Rebuilding a day keeps editors' work: papers an editor moved keep their category, and a section
whose summary an editor wrote is left exactly as it is. Approved or sent issues are not rebuilt.

Each section's report is written in the first of DIGEST_LANGUAGES (DigestSection.summary) and in
every other offered language an active reader uses (SectionReport; report_languages.py): separate
LLM requests, cached and counted like the others, each checked for its own language, with the
extractive fallback. A rebuild keeps an editor's report in any language.

Every build judges the day's integrity (digests/integrity.py: counts short of the usual, stale
feeds, fewer than the listing shows, broken feeds) and stores it on the issue; the report lists
each suspect category with its figures. A day without papers is told apart: a holiday (every
feed fine and empty) or broken feeds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, Q, QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_noop, pgettext

from .chart import ChartBar, chart_render
from .classify import papers_classify
from .editor_text import EditorText
from .integrity import DayIntegrity, day_integrity, integrity_lines, kind_word
from .llm import Usage, llm_usage_for
from .models import (
    AnnounceType,
    Category,
    Digest,
    DigestSection,
    Paper,
    SectionPaper,
    SummarySource,
)
from .models import SectionReport as LanguageReport
from .report_languages import report_languages
from .summarize import SectionInput, SectionSummary, sections_summarize

logger = logging.getLogger(__name__)

Log = Callable[[str], None]
T = TypeVar("T")

NO_ANNOUNCEMENTS = EditorText(
    gettext_noop("arXiv announces no new papers on Friday and Saturday evenings and on holidays")
)


class BuildRefused(Exception):
    """The day cannot be (re)built, e.g. its issue was already approved or sent."""


@dataclass
class SectionReport:
    category: str
    papers_of_day: int
    shown: int
    source: str
    flags: list[dict[str, Any]]
    kept_editor_text: bool = False
    # The reports in the other languages: {language: (source, flags)}.
    languages: dict[str, tuple[str, list[dict[str, Any]]]] = field(default_factory=dict)


@dataclass
class BuildReport:
    day: date | None
    digest_id: int | None = None
    created: bool = False
    reason: str = ""
    paper_count: int = 0
    sections: list[SectionReport] = field(default_factory=list)
    classified: dict[str, int] = field(default_factory=dict)
    # The classification's notes: batches split to fit the context, batches scored all alike.
    classify_notes: list[str] = field(default_factory=list)
    classify_fallbacks: list[str] = field(default_factory=list)
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated_cost: str = "0"
    # The day's integrity as stored on the issue (DayIntegrity.as_json), also for a day
    # without papers; and the same verdict's lines for people ("suspect" ones included).
    integrity: dict[str, Any] = field(default_factory=dict)
    integrity_lines: list[str] = field(default_factory=list)

    @property
    def built(self) -> bool:
        return self.digest_id is not None

    @property
    def suspect(self) -> bool:
        return bool(self.integrity.get("suspect"))

    @property
    def suspect_categories(self) -> list[dict[str, Any]]:
        return [c for c in self.integrity.get("categories", []) if c.get("suspect")]


def announced_types() -> list[str]:
    if settings.DIGEST_INCLUDE_CROSSLISTS:
        return [AnnounceType.NEW, AnnounceType.CROSS]
    return [AnnounceType.NEW]


def latest_announcement_day() -> date | None:
    result = Paper.objects.filter(announce_type__in=announced_types()).aggregate(
        day=Max("announced_on")
    )
    return result["day"]


def day_papers(*, day: date, digest: Digest | None) -> QuerySet[Paper]:
    """New papers of the day that no other issue has taken: no repeats across days."""
    taken_elsewhere = (
        Q(digest__isnull=False) & ~Q(digest=digest) if digest else Q(digest__isnull=False)
    )
    return (
        Paper.objects.filter(announced_on=day, announce_type__in=announced_types())
        .exclude(taken_elsewhere)
        .order_by("arxiv_id")
    )


def top_papers(papers: Sequence[Paper], limit: int) -> list[Paper]:
    ranked = sorted(papers, key=lambda p: (-(p.importance or 0), p.arxiv_id))
    return ranked[:limit]


def shown(papers: Sequence[Paper]) -> list[Paper]:
    """The papers a section may list: not those an editor removed from the issue."""
    return [paper for paper in papers if not paper.excluded]


def group_by_category(
    papers: Sequence[Paper], categories: Sequence[Category]
) -> dict[int, list[Paper]]:
    groups: dict[int, list[Paper]] = {category.pk: [] for category in categories}
    for paper in papers:
        if paper.category_id in groups:
            groups[paper.category_id].append(paper)
    return groups


def text_for(language: str) -> dict[str, str]:
    """The issue's fixed words in `language`, from the gettext catalogues (locale/); the
    placeholders in braces are filled with str.format."""
    with translation.override(language):
        return {
            "chart_title": pgettext("chart title", "New papers per category, {day}"),
            "chart_axis": pgettext("chart axis", "papers"),
            "introduction": gettext(
                "{count} new AI papers announced on arXiv on {day}, "
                "summarised in {sections} categories."
            ),
        }


def chart_for_day(
    *, day: date, categories: Sequence[Category], groups: dict[int, list[Paper]], language: str
) -> bytes:
    words = text_for(language)
    bars = [ChartBar(c.name, len(groups[c.pk]), c.colour) for c in categories]
    return chart_render(
        bars=bars,
        title=words["chart_title"].format(day=day.isoformat()),
        subtitle=words["chart_axis"],
    )


def digest_build(*, day: date | None = None, log: Log | None = None) -> BuildReport:
    """Builds (or rebuilds) the draft issue for an announcement day; default the latest stored."""
    say = log or logger.info
    day = day or latest_announcement_day()
    if day is None:
        reason = EditorText(
            gettext_noop("No papers stored yet: nothing to build (%(why)s)."),
            {"why": NO_ANNOUNCEMENTS},
        )
        say(reason)
        return BuildReport(day=None, reason=reason)

    existing = Digest.objects.filter(date=day).first()
    if existing and existing.status != Digest.Status.DRAFT:
        raise BuildRefused(f"The issue of {day} is {existing.status}; only drafts are rebuilt.")
    papers = list(day_papers(day=day, digest=existing))
    integrity = day_integrity(day=day)
    if not papers:
        return nothing_to_build(day=day, integrity=integrity, say=say)

    say(f"Building the issue of {day}: {len(papers)} new papers")
    classify_report = papers_classify(papers=papers, digest_date=day)
    say(f"Classified: {classify_report.summary()}")

    categories = list(Category.objects.filter(active=True))
    groups = group_by_category(papers, categories)
    kept = editor_sections(existing)
    language = settings.DIGEST_LANGUAGE
    to_summarise = [
        SectionInput(category=c, papers=top_papers(shown(groups[c.pk]), settings.DIGEST_TOP_PAPERS))
        for c in categories
        if groups[c.pk] and c.pk not in kept
    ]
    say(f"Summarising {len(to_summarise)} sections in {language!r}")
    summaries = sections_summarize(sections=to_summarise, language=language, digest_date=day)
    extra = extra_reports_write(
        sections=to_summarise,
        category_of=lambda item: item.category.pk,
        summarize=lambda todo, code: sections_summarize(
            sections=todo, language=code, digest_date=day
        ),
        kept=editor_reports(existing),
        say=say,
    )
    chart = chart_for_day(day=day, categories=categories, groups=groups, language=language)

    digest, created = digest_save(
        day=day,
        papers=papers,
        groups=groups,
        categories=categories,
        summarised=list(zip(to_summarise, summaries, strict=True)),
        chart=chart,
        integrity=integrity.as_json(),
        extra=extra,
    )
    report = build_report(digest=digest, created=created, groups=groups, categories=categories)
    report.integrity = digest.integrity
    report.integrity_lines = integrity_lines(integrity)
    report.classified = classify_report.counts()
    report.classify_notes = classify_report.notes()
    report.classify_fallbacks = list(classify_report.fallback_reasons)
    for line in report_lines(report):
        say(line)
    return report


def nothing_to_build(*, day: date, integrity: DayIntegrity, say: Log) -> BuildReport:
    """A day without new papers: a holiday, or feeds that failed or served nothing new."""
    lines = integrity_lines(integrity)
    if not integrity.suspect:
        lines = lines[1:]  # the holiday's reason says it all
        reason = EditorText(
            gettext_noop("No new announcements for %(day)s: no digest built (%(why)s)."),
            {"day": str(day), "why": NO_ANNOUNCEMENTS},
        )
    else:
        reason = EditorText(
            gettext_noop(
                "No new papers for %(day)s, but this does not look like a day without "
                "announcements (%(kind)s): no digest built. Fetch again once the feeds are fixed."
            ),
            {"day": str(day), "kind": kind_word(integrity.kind)},
        )
    for line in lines:
        say(line)
    say(reason)
    return BuildReport(day=day, reason=reason, integrity=integrity.as_json(), integrity_lines=lines)


def editor_sections(digest: Digest | None) -> set[int]:
    """Categories whose section an editor wrote or whose papers an editor changed: a rebuild
    leaves them alone."""
    if digest is None:
        return set()
    edited = Q(summary_source=SummarySource.EDITOR) | Q(entries_edited=True)
    return set(digest.sections.filter(edited).values_list("category_id", flat=True))


# The reports in the other offered languages, by (category id, language).
ExtraReports = dict[tuple[int, str], SectionSummary]


def editor_reports(digest: Digest | None) -> set[tuple[int, str]]:
    """(category id, language) of the other-language reports an editor wrote: a rebuild keeps
    them (as it keeps the first language's report an editor wrote)."""
    if digest is None:
        return set()
    written = LanguageReport.objects.filter(
        section__digest=digest, summary_source=SummarySource.EDITOR
    )
    return set(written.values_list("section__category_id", "language"))


def extra_reports_write(
    *,
    sections: Sequence[T],
    category_of: Callable[[T], int],
    summarize: Callable[[Sequence[T], str], list[SectionSummary]],
    kept: set[tuple[int, str]],
    say: Log,
) -> ExtraReports:
    """Each section's report in every other offered language a reader uses (separate LLM
    requests, cached and counted like the first language's), checked for that language; not
    those an editor wrote (`kept`). `summarize(sections, language)` writes one language's."""
    written: ExtraReports = {}
    for language in report_languages():
        todo = [s for s in sections if (category_of(s), language) not in kept]
        say(f"Summarising {len(todo)} sections in {language!r}")
        for item, summary in zip(todo, summarize(todo, language), strict=True):
            written[(category_of(item), language)] = summary
    return written


def edited_reports_take(*, digest: Digest, kept: set[int]) -> dict[tuple[int, str], LanguageReport]:
    """The other-language reports an editor wrote in the sections a rebuild replaces (also one
    saved during the build), by (category id, language): carried over to the new sections."""
    written = LanguageReport.objects.filter(
        section__digest=digest, summary_source=SummarySource.EDITOR
    ).exclude(section__category_id__in=kept)
    return {(r.section.category_id, r.language): r for r in written.select_related("section")}


def section_reports_replace(
    *,
    digest: Digest,
    extra: Mapping[tuple[int, str], SectionSummary],
    kept: set[int],
    edited: Mapping[tuple[int, str], LanguageReport],
) -> None:
    """The other-language reports of the sections just written (replacing a section removed
    its reports), the editor's own where there is one."""
    sections = {s.category_id: s for s in digest.sections.exclude(category_id__in=kept)}
    texts: dict[tuple[int, str], tuple[str, str, list[dict[str, Any]]]] = {
        key: (s.text, s.source, s.flags) for key, s in extra.items()
    }
    texts |= {key: (r.summary, r.summary_source, r.flags) for key, r in edited.items()}
    LanguageReport.objects.bulk_create(
        LanguageReport(
            section=sections[category_id],
            language=language,
            summary=text,
            summary_source=source,
            flags=flags,
        )
        for (category_id, language), (text, source, flags) in texts.items()
        if category_id in sections
    )


def build_record(
    *,
    digest: Digest,
    summarised: Sequence[tuple[SectionInput, SectionSummary]],
    groups: dict[int, list[Paper]],
    categories: Sequence[Category],
    extra: Mapping[tuple[int, str], SectionSummary] | None,
    papers: Sequence[Paper],
    chart: bytes,
    usage: Usage,
    weekly: bool = False,
) -> None:
    """A (re)build's sections, other-language reports, counts, chart and figures on the locked
    issue (a daily or a weekly one), editors' sections and reports kept; the caller saves."""
    kept = editor_sections(digest)
    # Read before the sections they belong to are replaced (which deletes them).
    edited = edited_reports_take(digest=digest, kept=kept)
    sections_replace(digest=digest, summarised=summarised, groups=groups, kept=kept, weekly=weekly)
    section_reports_replace(digest=digest, extra=extra or {}, kept=kept, edited=edited)
    section_counts_update(digest=digest, groups=groups, categories=categories)
    digest.paper_count = len(papers)
    digest.chart_png = chart
    digest.llm_calls = usage.calls
    digest.prompt_tokens = usage.prompt_tokens
    digest.completion_tokens = usage.completion_tokens
    digest.estimated_cost = usage.cost
    digest.built_at = timezone.now()
    digest.build_count += 1
    digest.version += 1  # a form opened before the rebuild must not overwrite it
    digest.last_changed_by = "build"


def digest_get_or_create(*, day: date) -> tuple[Digest, bool]:
    """One Digest per date, even when two builds race to create it."""
    try:
        with transaction.atomic():
            return Digest.objects.get_or_create(date=day, defaults={"title": settings.DIGEST_TITLE})
    except IntegrityError:
        return Digest.objects.get(date=day), False


def digest_save(
    *,
    day: date,
    papers: Sequence[Paper],
    groups: dict[int, list[Paper]],
    categories: Sequence[Category],
    summarised: Sequence[tuple[SectionInput, SectionSummary]],
    chart: bytes,
    integrity: dict[str, Any],
    extra: Mapping[tuple[int, str], SectionSummary] | None = None,
) -> tuple[Digest, bool]:
    digest, created = digest_get_or_create(day=day)
    usage = llm_usage_for(digest_date=day)
    words = text_for(settings.DIGEST_LANGUAGE)
    with transaction.atomic():
        # Serialises concurrent builds of the same day (a row lock on PostgreSQL).
        digest = Digest.objects.select_for_update().get(pk=digest.pk)
        if digest.status != Digest.Status.DRAFT:
            raise BuildRefused(f"The issue of {day} became {digest.status} during the build.")
        Paper.objects.filter(pk__in=[p.pk for p in papers]).update(digest=digest)
        build_record(
            digest=digest,
            summarised=summarised,
            groups=groups,
            categories=categories,
            extra=extra,
            papers=papers,
            chart=chart,
            usage=usage,
        )
        digest.integrity = integrity
        if not digest.introduction or created:
            shown = sum(1 for c in categories if groups[c.pk])
            digest.introduction = words["introduction"].format(
                day=day.isoformat(), count=len(papers), sections=shown
            )
        digest.save()
    return digest, created


def sections_replace(
    *,
    digest: Digest,
    summarised: Sequence[tuple[SectionInput, SectionSummary]],
    groups: dict[int, list[Paper]],
    kept: set[int],
    weekly: bool = False,
) -> None:
    """`weekly`: the entries of a weekly issue (papers its week's daily issues showed)."""
    digest.sections.exclude(category_id__in=kept).delete()
    entries: list[SectionPaper] = []
    for section_input, summary in summarised:
        category = section_input.category
        if category.pk in kept:
            continue  # an editor wrote this section while we were building
        section = DigestSection.objects.create(
            digest=digest,
            category=category,
            position=category.position,
            summary=summary.text,
            summary_source=summary.source,
            flags=summary.flags,
            paper_count=len(groups[category.pk]),
        )
        entries += [
            SectionPaper(section=section, digest=digest, paper=paper, position=index, weekly=weekly)
            for index, paper in enumerate(section_input.papers)
        ]
    SectionPaper.objects.bulk_create(entries)


def section_counts_update(
    *, digest: Digest, groups: dict[int, list[Paper]], categories: Sequence[Category]
) -> None:
    for section in digest.sections.filter(category_id__in=[c.pk for c in categories]):
        count = len(groups[section.category_id])
        if section.paper_count != count:
            section.paper_count = count
            section.save(update_fields=["paper_count"])


def build_report(
    *,
    digest: Digest,
    created: bool,
    groups: dict[int, list[Paper]],
    categories: Sequence[Category],
) -> BuildReport:
    sections = list(
        digest.sections.select_related("category").prefetch_related("entries", "reports")
    )
    return BuildReport(
        day=digest.date,
        digest_id=digest.pk,
        created=created,
        paper_count=digest.paper_count,
        sections=[
            SectionReport(
                category=s.category.name,
                papers_of_day=s.paper_count,
                shown=len(s.entries.all()),
                source=s.summary_source,
                flags=list(s.flags),
                kept_editor_text=s.summary_source == SummarySource.EDITOR,
                languages={r.language: (r.summary_source, list(r.flags)) for r in s.reports.all()},
            )
            for s in sections
        ],
        llm_calls=digest.llm_calls,
        prompt_tokens=digest.prompt_tokens,
        completion_tokens=digest.completion_tokens,
        estimated_cost=str(digest.estimated_cost),
    )


def report_lines(report: BuildReport) -> list[str]:
    verb = "Created" if report.created else "Rebuilt"
    lines = [f"{verb} draft digest {report.day} with {report.paper_count} papers"]
    lines += [f"  classification: {note}" for note in report.classify_notes]
    for section in report.sections:
        source = "editor's text kept" if section.kept_editor_text else section.source
        lines.append(
            f"  {section.category}: {section.papers_of_day} papers, "
            f"{section.shown} shown, summary: {source}"
        )
        lines += [f"    FLAG {flag['code']}: {flag['message']}" for flag in section.flags]
        for language, (source, flags) in section.languages.items():
            lines.append(f"    [{language}] summary: {source}")
            lines += [f"      FLAG {flag['code']}: {flag['message']}" for flag in flags]
    lines += report.integrity_lines
    cost = Decimal(report.estimated_cost)
    lines.append(
        f"LLM: {report.llm_calls} calls, {report.prompt_tokens} prompt + "
        f"{report.completion_tokens} completion tokens, estimated cost ${cost:.4f}"
    )
    lines.append(
        f"Review the draft: {settings.SITE_URL}/admin/digests/digest/{report.digest_id}/change/"
    )
    return lines
