"""What an editor's change does to an issue, outside the admin's forms.

Shared by the admin pages, the regeneration task and the approval code:

- `digest_touch`: every change to an issue's content or status goes through it. It adds one to
  `Digest.version` (the optimistic lock: a form opened at an older version is refused on save),
  records who changed it and, for people (not tasks), that an editor has acted on it.
- `section_revision_save`: keeps a section's summary before it is replaced.
- `section_report_edit`: an editor's report in another offered language, checked for it.
- `admin_log`: the admin's own log (LogEntry), for actions that are not a form save.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.db.models import F, Model
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from .build import chart_for_day, group_by_category, section_counts_update
from .editor_text import EditorText, text_shown
from .models import (
    Category,
    ClassifiedBy,
    Digest,
    DigestSection,
    Paper,
    SectionReport,
    SectionRevision,
    SummarySource,
)
from .reportcheck import CHECK_LABELS, TEXT_CHECK_CODES
from .summarize import SectionInput, flag, summary_problems

# Who changed an issue when no person did.
SYSTEM_ACTORS = frozenset({"build", "regeneration", "auto-approve", "delivery"})


def digest_touch(*, digest_id: int, by: str, reviewed: bool = False) -> int:
    """One more version of the issue; returns the new version. `reviewed` marks that an editor
    (a person) acted on it, which stops automatic approval from taking it."""
    now = timezone.now()
    updates: dict[str, object] = {
        "version": F("version") + 1,
        "updated_at": now,
        "last_changed_by": by[:150],
    }
    if reviewed:
        updates["reviewed_at"] = now
    Digest.objects.filter(pk=digest_id).update(**updates)
    return int(Digest.objects.values_list("version", flat=True).get(pk=digest_id))


def section_revision_save(
    *, section: DigestSection | SectionReport, reason: str, by: str
) -> SectionRevision:
    """The current text of the section's report (the first language's: the section itself; or
    its report in another language), kept before it is replaced."""
    if isinstance(section, SectionReport):
        section_id, language = section.section_id, section.language
    else:
        section_id, language = section.pk, ""
    return SectionRevision.objects.create(
        section_id=section_id,
        language=language,
        summary=section.summary,
        summary_source=section.summary_source,
        flags=list(section.flags),
        reason=reason,
        created_by=by[:150],
    )


def admin_log(*, user_id: int, obj: Model, message: str) -> None:
    """A line in the admin's history of `obj` (Recent actions, the object's History page)."""
    LogEntry.objects.log_actions(user_id, [obj], CHANGE, change_message=message, single_object=True)


# --- Papers moved, removed or added by an editor ------------------------------------------------

FLAG_LABELS: dict[str, str | Promise] = {
    **CHECK_LABELS,
    "fallback": _("Fallback summary used"),
    "budget": _("Token budget hit"),
    "llm_error": _("LLM error"),
    "sources_changed": _("Sources changed"),
}
SOURCES_CHANGED = EditorText(
    gettext_noop(
        "Its papers were changed after the summary was written: check that every [n] still "
        "names the right paper, or regenerate the summary."
    )
)


def flag_label(code: str) -> str:
    return str(FLAG_LABELS.get(code, code.replace("_", " ").capitalize()))


def flag_message(flag: dict[str, Any]) -> str:
    """A flag's message in the active language (its English message for flags stored before
    their template was kept)."""
    return text_shown(flag, str(flag.get("message", "")))


def flags_shown(flags: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(label, message) of each flag, in the active language."""
    return [(flag_label(f.get("code", "")), flag_message(f)) for f in flags]


def section_input(section: DigestSection) -> SectionInput:
    papers = [entry.paper for entry in section.entries.select_related("paper").order_by("position")]
    return SectionInput(category=section.category, papers=papers)


def section_flags_refresh(*, section: DigestSection, sources_changed: bool) -> list[dict[str, Any]]:
    """Runs the summary checks again on the section as it now is and stores the flags.

    Only the checks of the text itself run again (language, references, repetition, a paper's
    instructions followed): the headings and "every paper cited" are what the prompt asks of
    the LLM, not of an editor. An editor's text is judged on its own (the build's flags no longer
    apply); an LLM or fallback text keeps the build's other flags, and when its papers changed it
    is flagged, since its [n] references were written for the old list."""
    problems = summary_problems(
        text=section.summary,
        section=section_input(section),
        language=settings.DIGEST_LANGUAGE,
        contract=False,
    )
    flags = rechecked_flags(
        source=section.summary_source,
        old=list(section.flags),
        problems=problems,
        sources_changed=sources_changed,
    )
    section.flags = flags
    section.save(update_fields=["flags"])
    for report in section.reports.all():
        report_flags_refresh(report=report, section=section, sources_changed=sources_changed)
    return flags


def rechecked_flags(
    *,
    source: str,
    old: list[dict[str, Any]],
    problems: list[dict[str, Any]],
    sources_changed: bool,
) -> list[dict[str, Any]]:
    """An editor's text is judged on its own; another keeps the build's other flags, and is
    flagged once its papers changed (its [n] were written for the old list)."""
    if source == SummarySource.EDITOR:
        return problems
    rechecked = TEXT_CHECK_CODES | {"sources_changed"}
    flags = [f for f in old if f.get("code") not in rechecked] + problems
    if sources_changed or any(f.get("code") == "sources_changed" for f in old):
        flags.append(flag("sources_changed", SOURCES_CHANGED))
    return flags


def report_flags_refresh(
    *, report: SectionReport, section: DigestSection, sources_changed: bool
) -> list[dict[str, Any]]:
    """The checks of a report in another language run again, for that language (as
    `section_flags_refresh` does for the first language's)."""
    problems = summary_problems(
        text=report.summary,
        section=section_input(section),
        language=report.language,
        contract=False,
    )
    report.flags = rechecked_flags(
        source=report.summary_source,
        old=list(report.flags),
        problems=problems,
        sources_changed=sources_changed,
    )
    report.save(update_fields=["flags", "updated_at"])
    return report.flags


def section_report_edit(
    *, section: DigestSection, language: str, text: str, by: str = ""
) -> SectionReport:
    """An editor's report of the section in `language` (a rebuild keeps it), its checks run for
    that language, the text it replaces kept as a revision; an emptied report is removed
    (readers get the first language's)."""
    before = SectionReport.objects.filter(section=section, language=language).first()
    if before is not None and before.summary != text:
        section_revision_save(section=before, reason=SectionRevision.Reason.EDIT, by=by)
    if not text.strip():
        SectionReport.objects.filter(section=section, language=language).delete()
        return SectionReport(section=section, language=language)
    report, _ = SectionReport.objects.update_or_create(
        section=section,
        language=language,
        defaults={"summary": text, "summary_source": SummarySource.EDITOR},
    )
    report_flags_refresh(report=report, section=section, sources_changed=False)
    return report


def paper_file(*, paper: Paper, section: DigestSection) -> None:
    """The paper now belongs to the section's category, by an editor's choice, in its issue."""
    changes: dict[str, object] = {"digest_id": section.digest_id, "excluded": False}
    if paper.category_id != section.category_id:
        changes |= {"category_id": section.category_id, "classified_by": ClassifiedBy.EDITOR}
    Paper.objects.filter(pk=paper.pk).update(**changes)


def paper_remove(*, paper: Paper) -> None:
    """Out of the issue's sources; it stays a paper of the day (counted in the chart)."""
    Paper.objects.filter(pk=paper.pk).update(excluded=True)


def digest_counts_refresh(*, digest: Digest) -> None:
    """Papers per category and the chart, from the papers of the issue as they now are."""
    categories = list(Category.objects.filter(active=True))
    papers = list(Paper.objects.filter(digest=digest))
    groups = group_by_category(papers, categories)
    section_counts_update(digest=digest, groups=groups, categories=categories)
    Digest.objects.filter(pk=digest.pk).update(
        chart_png=chart_for_day(
            day=digest.date,
            categories=categories,
            groups=groups,
            language=settings.DIGEST_LANGUAGE,
        )
    )
