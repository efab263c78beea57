"""Regenerating one section's summary with the LLM, and restoring a kept text.

An editor asks for a new summary (`regeneration_request`, whose caller enqueues the task
`digests.tasks.regenerate_section` after commit); the task writes it (`regeneration_run`): a
fresh answer of the LLM (never the cached one) for the section's papers as they are now,
checked and asked again once like the build's. The text it replaces is kept as
a revision, so nothing is lost; `revision_restore` puts a kept text back, keeping the one it
replaces in turn. Both change the issue's content: they add a version (an editor's page opened
before is refused on save) and take an approved issue back to draft.

When no new text can be had (no LLM, budget spent, an API error, an answer that is not a
report, the issue went out meanwhile) the regeneration fails with a message and the section
keeps its text exactly as it was.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from .approval import digest_unapprove
from .editing import (
    admin_log,
    digest_touch,
    report_flags_refresh,
    section_flags_refresh,
    section_input,
    section_revision_save,
)
from .llm import LLMUnavailable, llm_usage_for
from .models import (
    Digest,
    DigestSection,
    Regeneration,
    SectionReport,
    SectionRevision,
    SummarySource,
)
from .summarize import SectionSummary, section_summarize_fresh, weekly_section_summarize_fresh
from .weekly import weekly_section_input

# A failed regeneration's reason is stored in English (Regeneration.error: an API's own error
# text too); these fixed ones are msgids, shown in the editor's language (`error_shown`).
NO_PAPERS = gettext_noop("The section has no papers: there is nothing to summarise.")
# By the status the issue has now (each its own msgid, so that the stored English is one).
NOT_EDITABLE = {
    "sending": gettext_noop(
        "The issue is sending now: its text can no longer change. The section was left as it was."
    ),
    "paused": gettext_noop(
        "The issue is paused now: its text can no longer change. The section was left as it was."
    ),
    "sent": gettext_noop(
        "The issue is sent now: its text can no longer change. The section was left as it was."
    ),
}
PAPERS_CHANGED = gettext_noop(
    "The section's papers were changed while the new summary was being written: its citations "
    "would not match. Regenerate it again."
)


def error_shown(error: str) -> str:
    """A stored reason in the active language where it is one of ours; as stored otherwise."""
    return _(error) if error else error


logger = logging.getLogger(__name__)

EDITABLE_STATUSES = (Digest.Status.DRAFT, Digest.Status.APPROVED)
ACTIVE_STATUSES = (Regeneration.Status.QUEUED, Regeneration.Status.RUNNING)
ACTOR = "regeneration"


class RegenerationRefused(Exception):
    """The section cannot be regenerated now (the issue's status, one already under way)."""


class RegenerationFailed(Exception):
    """No new text: the reason is shown to the editor, the section keeps its text."""


class RestoreRefused(Exception):
    """The issue can no longer be edited."""


@dataclass(frozen=True)
class Restored:
    kept: SectionRevision  # the text the restore replaced
    unapproved: bool  # the issue was approved and went back to draft


# --- Asking for one ---------------------------------------------------------------------------


def regeneration_request(*, section: DigestSection, by: str, language: str = "") -> Regeneration:
    """A queued regeneration of the section's report in `language` (blank: the first
    language's, DigestSection.summary; else another offered language's SectionReport). The
    caller starts its task after commit (`tasks.regeneration_enqueue`): this module never
    enqueues."""
    language = report_language(language)
    with transaction.atomic():
        # Serialises two editors asking at once (a row lock on PostgreSQL).
        digest = Digest.objects.select_for_update().get(pk=section.digest_id)
        if digest.status not in EDITABLE_STATUSES:
            raise RegenerationRefused(
                _("The issue of %(date)s is %(status)s: its summaries can no longer be changed.")
                % {"date": digest.date, "status": digest.get_status_display()}
            )
        regenerations_abandon(section=section)
        active = Regeneration.objects.filter(
            section=section, language=language, status__in=ACTIVE_STATUSES
        )
        if active.exists():
            raise RegenerationRefused(
                _(
                    "A regeneration of the %(category)s summary is already under way: "
                    "wait for its result."
                )
                % {"category": section.category.name}
            )
        regeneration = Regeneration.objects.create(
            section=section, language=language, requested_by=by[:150]
        )
    return regeneration


def report_language(language: str) -> str:
    """ "" for the first language (its report is DigestSection.summary), else an offered one."""
    if not language or language == settings.DIGEST_LANGUAGE:
        return ""
    if language not in settings.DIGEST_LANGUAGES:
        raise RegenerationRefused(
            _("%(language)s is not a language this newsletter offers.") % {"language": language}
        )
    return language


def abandon_after() -> timedelta:
    """A task still unfinished after its time limit (and a margin) died with its worker."""
    return timedelta(seconds=int(settings.CELERY_TASK_TIME_LIMIT) + 5 * 60)


def regenerations_abandon(*, section: DigestSection) -> int:
    """Marks the section's queued or running regenerations that can no longer finish as
    failed, so a lost task does not block the section for ever."""
    limit = abandon_after()
    return Regeneration.objects.filter(
        section=section,
        status__in=ACTIVE_STATUSES,
        created_at__lt=timezone.now() - limit,
    ).update(
        status=Regeneration.Status.FAILED,
        error=f"No result after {int(limit.total_seconds()) // 60} minutes: the task was lost.",
        finished_at=timezone.now(),
    )


# --- Running it (the task) --------------------------------------------------------------------


def regeneration_run(*, regeneration_id: int) -> dict[str, Any]:
    """Writes the new summary, or records why there is none. Runs once: it claims the
    regeneration (queued -> running) and returns at once if someone else did."""
    claimed = Regeneration.objects.filter(
        pk=regeneration_id, status=Regeneration.Status.QUEUED
    ).update(status=Regeneration.Status.RUNNING, started_at=timezone.now())
    if not claimed:
        return {"regeneration_id": regeneration_id, "status": "skipped"}
    regeneration = Regeneration.objects.select_related("section__digest", "section__category").get(
        pk=regeneration_id
    )
    try:
        regeneration_apply(regeneration=regeneration)
    except (RegenerationFailed, LLMUnavailable) as exc:
        regeneration_fail(regeneration=regeneration, error=str(exc))
    except Exception as exc:  # recorded for the editor; the section is left as it was
        logger.exception("Regeneration %s failed", regeneration_id)
        regeneration_fail(regeneration=regeneration, error=f"Unexpected error: {exc!r}")
    regeneration_log(regeneration=regeneration)
    return {
        "regeneration_id": regeneration_id,
        "status": regeneration.status,
        "error": regeneration.error,
        "revision_id": regeneration.revision_id,
    }


def regeneration_apply(*, regeneration: Regeneration) -> None:
    section = regeneration.section
    digest_check(digest_id=section.digest_id)
    source = section_input(section)
    if not source.papers:
        raise RegenerationFailed(NO_PAPERS)
    papers = [p.pk for p in source.papers]
    language, day = regeneration.language or settings.DIGEST_LANGUAGE, section.digest.date
    try:
        if section.digest.kind == Digest.Kind.WEEKLY:  # from the week's reports and papers
            item = weekly_section_input(section)
            summary = weekly_section_summarize_fresh(item=item, language=language, digest_date=day)
        else:
            summary = section_summarize_fresh(section=source, language=language, digest_date=day)
    finally:
        digest_usage_update(digest=section.digest)  # the calls cost money, answered or not
    section_replace(regeneration=regeneration, summary=summary, papers=papers)


def digest_check(*, digest_id: int, lock: bool = False) -> Digest:
    digests = Digest.objects.select_for_update() if lock else Digest.objects
    digest = digests.get(pk=digest_id)
    if digest.status not in EDITABLE_STATUSES:
        raise RegenerationFailed(
            NOT_EDITABLE.get(digest.status)
            or f"The issue is {digest.status} now: its text can no longer change. "
            "The section was left as it was."
        )
    return digest


def section_replace(
    *, regeneration: Regeneration, summary: SectionSummary, papers: list[int]
) -> None:
    """The new text in place of the current one (kept as a revision), in one transaction."""
    with transaction.atomic():
        digest = digest_check(digest_id=regeneration.section.digest_id, lock=True)
        section = DigestSection.objects.select_for_update().get(pk=regeneration.section_id)
        if [p.pk for p in section_input(section).papers] != papers:
            raise RegenerationFailed(PAPERS_CHANGED)
        by = regeneration.requested_by or ACTOR
        report = report_for(section=section, language=regeneration.language)
        revision = section_revision_save(
            section=report, reason=SectionRevision.Reason.REGENERATE, by=by
        )
        report.summary = summary.text
        report.summary_source = SummarySource.LLM
        report.flags = summary.flags
        report.save(update_fields=report_fields(report))
        # A person asked for it: automatic approval must not take the issue behind their back.
        digest_touch(digest_id=digest.pk, by=ACTOR, reviewed=bool(regeneration.requested_by))
        if digest.status == Digest.Status.APPROVED:
            digest_unapprove(digest=digest, by=ACTOR)
        regeneration_finish(
            regeneration=regeneration, status=Regeneration.Status.DONE, revision=revision
        )


def report_for(*, section: DigestSection, language: str) -> DigestSection | SectionReport:
    """The report of the section in `language` ("" : the section itself), locked; a report
    in another language not written yet is made (empty) here."""
    if not language:
        return section
    report, _created = SectionReport.objects.select_for_update().get_or_create(
        section=section, language=language
    )
    return report


def report_fields(report: DigestSection | SectionReport) -> list[str]:
    fields = ["summary", "summary_source", "flags"]
    return [*fields, "updated_at"] if isinstance(report, SectionReport) else fields


def regeneration_fail(*, regeneration: Regeneration, error: str) -> None:
    logger.warning("Regeneration %s failed: %s", regeneration.pk, error)
    error = error.strip()
    if not error.endswith((".", "!", "?")):
        error += "."  # shown as a sentence, followed by others
    regeneration_finish(regeneration=regeneration, status=Regeneration.Status.FAILED, error=error)


def regeneration_finish(
    *,
    regeneration: Regeneration,
    status: str,
    error: str = "",
    revision: SectionRevision | None = None,
) -> None:
    regeneration.status = status
    regeneration.error = error
    regeneration.revision = revision
    regeneration.finished_at = timezone.now()
    # An UPDATE, not save(): a rebuild may have deleted the section (and this row) meanwhile.
    Regeneration.objects.filter(pk=regeneration.pk).update(
        status=status, error=error, revision=revision, finished_at=regeneration.finished_at
    )


def digest_usage_update(*, digest: Digest) -> None:
    """The issue's LLM calls, tokens and cost, as `digest_save` counts them (its content and
    version do not change)."""
    usage = llm_usage_for(digest_date=digest.date)
    Digest.objects.filter(pk=digest.pk).update(
        llm_calls=usage.calls,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        estimated_cost=usage.cost,
    )


def regeneration_log(*, regeneration: Regeneration) -> None:
    """The result in the admin's history of the issue, under the editor who asked for it."""
    user_model = get_user_model()
    lookup = {user_model.USERNAME_FIELD: regeneration.requested_by}
    user = (
        user_model._default_manager.filter(**lookup).first() if regeneration.requested_by else None
    )
    if user is None:
        return
    name = regeneration.section.category.name
    if regeneration.status == Regeneration.Status.DONE:
        message = f"Regenerated the {name} summary; the previous text is kept in its history."
    else:
        message = f"Regeneration of the {name} summary failed: {regeneration.error}"
    admin_log(user_id=user.pk, obj=regeneration.section.digest, message=message)


# --- Restoring a kept text --------------------------------------------------------------------


def revision_restore(*, revision: SectionRevision, by: str) -> Restored:
    """The revision's text back in its section; the text it replaces is kept as a revision."""
    with transaction.atomic():
        digest = Digest.objects.select_for_update().get(pk=revision.section.digest_id)
        if digest.status not in EDITABLE_STATUSES:
            raise RestoreRefused(
                _("The issue is %(status)s: its text can no longer change.")
                % {"status": digest.get_status_display()}
            )
        section = DigestSection.objects.select_for_update().get(pk=revision.section_id)
        report = report_for(section=section, language=revision.language)
        kept = section_revision_save(section=report, reason=SectionRevision.Reason.RESTORE, by=by)
        report.summary = revision.summary
        report.summary_source = revision.summary_source
        report.flags = list(revision.flags)
        report.save(update_fields=report_fields(report))
        if isinstance(report, SectionReport):
            report_flags_refresh(report=report, section=section, sources_changed=False)
        else:
            section_flags_refresh(section=section, sources_changed=False)
        digest_touch(digest_id=digest.pk, by=by, reviewed=True)
        unapproved = digest.status == Digest.Status.APPROVED
        if unapproved:
            digest_unapprove(digest=digest, by=by)
    return Restored(kept=kept, unapproved=unapproved)
