"""Building a week's issue: the week's sent daily issues, per category its most important papers
and a weekly report, with the week's chart, saved as a draft like a daily issue.

A weekly issue is a `Digest` of kind weekly dated the Sunday that ends its ISO week (a daily
issue's date is an announcement day, Monday to Friday, so the two never collide). Its entries are
`SectionPaper` rows marked `weekly`: they show again papers the week's daily issues took, which
stay those issues' papers. Only daily issues whose send has started (sending, paused, sent) count:
a draft nobody approved never reached a reader.

As for a daily issue, the LLM calls and the chart happen before the one transaction that writes
the issue; a rebuild keeps the sections an editor wrote or whose papers an editor changed, and an
approved (or sent) weekly issue is not rebuilt.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext, pgettext

from .build import (
    BuildRefused,
    BuildReport,
    ExtraReports,
    Log,
    build_record,
    build_report,
    editor_reports,
    editor_sections,
    extra_reports_write,
    group_by_category,
    report_lines,
)
from .chart import ChartBar, chart_render
from .llm import llm_usage_for
from .models import Category, Digest, DigestSection, Paper
from .summarize import (
    DailyReport,
    SectionInput,
    SectionSummary,
    WeeklySectionInput,
    weekly_sections_summarize,
)

logger = logging.getLogger(__name__)

# A daily issue counts for its week once its send has started: readers have seen it.
SENT_STATUSES = (Digest.Status.SENDING, Digest.Status.PAUSED, Digest.Status.SENT)
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


@dataclass(frozen=True)
class Week:
    """An ISO week: Monday to Sunday."""

    year: int
    number: int

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.number, 1)

    @property
    def sunday(self) -> date:
        return date.fromisocalendar(self.year, self.number, 7)

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.number:02d}"

    def __str__(self) -> str:
        return self.label


@dataclass
class WeeklyReport(BuildReport):
    week: str = ""
    daily_issues: list[date] = field(default_factory=list)


def week_parse(text: str) -> Week:
    """ "2026-W33" -> that ISO week; ValueError with a reason otherwise."""
    match = _WEEK.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a week: write it as YYYY-Www, e.g. 2026-W33")
    year, number = int(match[1]), int(match[2])
    try:
        date.fromisocalendar(year, number, 1)
    except ValueError:
        raise ValueError(f"{year} has no ISO week {number}") from None
    return Week(year, number)


def week_of(day: date) -> Week:
    iso = day.isocalendar()
    return Week(iso.year, iso.week)


def last_complete_week(*, today: date | None = None) -> Week:
    """The latest week whose announcement days (Monday to Friday) are over, in
    DIGEST_SEND_TIMEZONE: on Saturday and Sunday the current week, else the one before. The
    weekly issue goes out on WEEKLY_SEND_DAY (Saturday by default), before the ISO week ends."""
    if today is None:
        today = timezone.localtime(timezone=_send_zone()).date()
    return week_of(today if today.isoweekday() >= 6 else today - timedelta(days=7))


def _send_zone() -> ZoneInfo:
    return ZoneInfo(settings.DIGEST_SEND_TIMEZONE)


def week_issues(week: Week) -> QuerySet[Digest]:
    """The week's daily issues that readers got, oldest first."""
    return Digest.objects.filter(
        kind=Digest.Kind.DAILY,
        date__range=(week.monday, week.sunday),
        status__in=SENT_STATUSES,
    ).order_by("date")


def week_papers(week: Week) -> QuerySet[Paper]:
    """The papers of the week's sent daily issues, not those an editor took out."""
    return Paper.objects.filter(
        digest__in=week_issues(week), excluded=False, category__isnull=False
    ).order_by("announced_on", "arxiv_id")


def weekly_top(papers: Sequence[Paper], limit: int) -> list[Paper]:
    """The most important first; of equal importance, the earlier announced."""
    ranked = sorted(papers, key=lambda p: (-(p.importance or 0), p.announced_on, p.arxiv_id))
    return ranked[:limit]


def daily_reports(*, issues: Sequence[Digest], language: str = "") -> dict[int, list[DailyReport]]:
    """Per category, what each of the week's daily issues said of it, by day; in `language`
    where a daily issue has a report in it, else in the first language."""
    reports: dict[int, list[DailyReport]] = {}
    sections = DigestSection.objects.filter(digest__in=issues).select_related("digest")
    for section in sections.order_by("digest__date").prefetch_related("reports"):
        own = {r.language: r.summary for r in section.reports.all() if r.summary.strip()}
        text = own.get(language) or section.summary
        if text.strip():
            reports.setdefault(section.category_id, []).append(
                DailyReport(day=section.digest.date, text=text)
            )
    return reports


def weekly_section_input(section: DigestSection) -> WeeklySectionInput:
    """A weekly issue's section as the weekly report sees it: its papers as they now are, the
    daily reports of its week (for regenerating one section's report)."""
    week = week_of(section.digest.date)
    papers = [entry.paper for entry in section.entries.select_related("paper").order_by("position")]
    reports = daily_reports(issues=list(week_issues(week)))
    return WeeklySectionInput(
        section=SectionInput(category=section.category, papers=papers),
        week=week.label,
        daily_reports=reports.get(section.category_id, []),
    )


def words_for(language: str) -> dict[str, str]:
    """The weekly issue's fixed words in `language`, from the gettext catalogues (locale/); the
    placeholders in braces are filled with str.format."""
    with translation.override(language):
        return {
            "title": gettext("{title} · Weekly {week}"),
            "chart_title": pgettext("chart title", "Papers per category, {week}"),
            "chart_axis": pgettext("chart axis", "papers"),
            "introduction": gettext(
                "The week in review: the most notable of the {count} AI papers in the {issues} "
                "daily issues sent from {first} to {last}, in {sections} categories."
            ),
        }


def weekly_chart(
    *, week: Week, categories: Sequence[Category], groups: dict[int, list[Paper]]
) -> bytes:
    words = words_for(settings.DIGEST_LANGUAGE)
    bars = [ChartBar(c.name, len(groups[c.pk]), c.colour) for c in categories]
    return chart_render(
        bars=bars,
        title=words["chart_title"].format(week=week.label),
        subtitle=words["chart_axis"],
    )


def week_categories(papers: Sequence[Paper]) -> list[Category]:
    """The categories the week's papers are in (a retired one too, if a daily issue used it)."""
    ids = {p.category_id for p in papers}
    return list(Category.objects.filter(pk__in=ids).order_by("position", "name"))


def weekly_build(*, week: Week | None = None, log: Log | None = None) -> WeeklyReport:
    """Builds (or rebuilds) the draft weekly issue of `week` (default: the last complete week)
    from its sent daily issues."""
    say = log or logger.info
    week = week or last_complete_week()
    existing = Digest.objects.filter(date=week.sunday).first()
    refusal_check(week=week, digest=existing)
    issues = list(week_issues(week))
    papers = list(week_papers(week))
    if not papers:
        return nothing_to_build(week=week, issues=issues, say=say)

    say(f"Building the weekly issue of {week}: {len(papers)} papers of {len(issues)} daily issues")
    categories = week_categories(papers)
    groups = group_by_category(papers, categories)
    kept = editor_sections(existing)
    reports = daily_reports(issues=issues)
    top = settings.WEEKLY_TOP_PAPERS
    to_summarise = [
        WeeklySectionInput(
            section=SectionInput(category=c, papers=weekly_top(groups[c.pk], top)),
            week=week.label,
            daily_reports=reports.get(c.pk, []),
        )
        for c in categories
        if c.pk not in kept
    ]
    say(f"Writing {len(to_summarise)} weekly reports in {settings.DIGEST_LANGUAGE!r}")
    summaries = weekly_sections_summarize(
        sections=to_summarise, language=settings.DIGEST_LANGUAGE, digest_date=week.sunday
    )
    extra = extra_reports_write(
        sections=to_summarise,
        category_of=lambda item: item.section.category.pk,
        summarize=lambda todo, code: weekly_sections_summarize(
            sections=in_language(todo, issues=issues, language=code),
            language=code,
            digest_date=week.sunday,
        ),
        kept=editor_reports(existing),
        say=say,
    )
    chart = weekly_chart(week=week, categories=categories, groups=groups)
    digest, created = weekly_save(
        week=week,
        issues=issues,
        papers=papers,
        groups=groups,
        categories=categories,
        summarised=list(zip(to_summarise, summaries, strict=True)),
        chart=chart,
        extra=extra,
    )
    report = weekly_report(digest=digest, created=created, week=week, issues=issues)
    for line in weekly_report_lines(report):
        say(line)
    return report


def in_language(
    items: Sequence[WeeklySectionInput], *, issues: Sequence[Digest], language: str
) -> list[WeeklySectionInput]:
    """The sections with the week's daily reports in `language` (where they were written)."""
    reports = daily_reports(issues=issues, language=language)
    return [
        replace(item, daily_reports=reports.get(item.section.category.pk, [])) for item in items
    ]


def refusal_check(*, week: Week, digest: Digest | None) -> None:
    if digest is None:
        return
    if digest.kind != Digest.Kind.WEEKLY:
        raise BuildRefused(f"The issue of {digest.date} is not a weekly issue.")
    if digest.status != Digest.Status.DRAFT:
        raise BuildRefused(
            f"The weekly issue of {week} is {digest.status}; only drafts are rebuilt."
        )


def nothing_to_build(*, week: Week, issues: Sequence[Digest], say: Log) -> WeeklyReport:
    if issues:
        reason = (
            f"The daily issues sent in {week} ({week.monday} to {week.sunday}) show no papers: "
            "no weekly issue built."
        )
    else:
        unsent = Digest.objects.filter(
            kind=Digest.Kind.DAILY, date__range=(week.monday, week.sunday)
        ).count()
        waiting = f" ({unsent} daily issues not sent yet)" if unsent else ""
        reason = (
            f"No daily issue was sent in {week} ({week.monday} to {week.sunday}){waiting}: "
            "no weekly issue built."
        )
    say(reason)
    return WeeklyReport(day=week.sunday, reason=reason, week=week.label)


def weekly_get_or_create(*, week: Week) -> tuple[Digest, bool]:
    """One Digest per week, even when two builds race to create it."""
    defaults = {
        "kind": Digest.Kind.WEEKLY,
        "title": words_for(settings.DIGEST_LANGUAGE)["title"].format(
            title=settings.DIGEST_TITLE, week=week.label
        ),
    }
    try:
        with transaction.atomic():
            return Digest.objects.get_or_create(date=week.sunday, defaults=defaults)
    except IntegrityError:
        return Digest.objects.get(date=week.sunday), False


def weekly_save(
    *,
    week: Week,
    issues: Sequence[Digest],
    papers: Sequence[Paper],
    groups: dict[int, list[Paper]],
    categories: Sequence[Category],
    summarised: Sequence[tuple[WeeklySectionInput, SectionSummary]],
    chart: bytes,
    extra: ExtraReports | None = None,
) -> tuple[Digest, bool]:
    digest, created = weekly_get_or_create(week=week)
    usage = llm_usage_for(digest_date=week.sunday)
    with transaction.atomic():
        # Serialises concurrent builds of the same week (a row lock on PostgreSQL).
        digest = Digest.objects.select_for_update().get(pk=digest.pk)
        refusal_check(week=week, digest=digest)
        build_record(
            digest=digest,
            summarised=[(item.section, summary) for item, summary in summarised],
            groups=groups,
            categories=categories,
            extra=extra,
            papers=papers,
            chart=chart,
            usage=usage,
            weekly=True,
        )
        if not digest.introduction or created:
            digest.introduction = weekly_introduction(
                issues=issues, papers=papers, sections=sum(1 for c in categories if groups[c.pk])
            )
        digest.save()
    return digest, created


def weekly_introduction(*, issues: Sequence[Digest], papers: Sequence[Paper], sections: int) -> str:
    return words_for(settings.DIGEST_LANGUAGE)["introduction"].format(
        first=issues[0].date.isoformat(),
        last=issues[-1].date.isoformat(),
        issues=len(issues),
        count=len(papers),
        sections=sections,
    )


def weekly_report(
    *, digest: Digest, created: bool, week: Week, issues: Sequence[Digest]
) -> WeeklyReport:
    base = build_report(digest=digest, created=created, groups={}, categories=[])
    return WeeklyReport(
        **{name: getattr(base, name) for name in BuildReport.__dataclass_fields__},
        week=week.label,
        daily_issues=[issue.date for issue in issues],
    )


def weekly_report_lines(report: WeeklyReport) -> list[str]:
    verb = "Created" if report.created else "Rebuilt"
    days = ", ".join(day.isoformat() for day in report.daily_issues)
    first = (
        f"{verb} draft weekly issue {report.week} ({report.day}) with {report.paper_count} papers "
        f"of {len(report.daily_issues)} daily issues ({days})"
    )
    return [first, *report_lines(report)[1:]]
