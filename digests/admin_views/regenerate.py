"""Regenerating a section's summary from the admin, its progress, and the kept texts.

- `<digest>/sections/<section>/regenerate/`: what a regeneration does (GET) and asking for one
  (POST, permission `digests.regenerate_section`); the work runs in a background task
  (digests.regenerate).
- `<digest>/regenerations/<id>/status/`: the regeneration as JSON, polled by regenerate.js.
- `<digest>/revisions/<revision>/`: a kept text (GET) and putting it back (POST, permission
  `digests.change_digestsection`).

The digest's change page is one big form, so `section_tools_html` (a read-only field of each
section) holds links and the polled status only, never a form of its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.templatetags.static import static
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_http_methods

from digests.editing import admin_log, flags_shown, section_input
from digests.llm import llm_enabled
from digests.markdown import markdown_html
from digests.models import (
    Digest,
    DigestSection,
    Regeneration,
    SectionReport,
    SectionRevision,
    SummarySource,
)
from digests.regenerate import (
    ACTIVE_STATUSES,
    EDITABLE_STATUSES,
    RegenerationRefused,
    RestoreRefused,
    error_shown,
    regeneration_request,
    revision_restore,
)
from digests.report_languages import extra_languages
from digests.tasks import regeneration_enqueue

REGENERATE_PERMISSION = "digests.regenerate_section"
RESTORE_PERMISSION = "digests.change_digestsection"
HISTORY_SHOWN = 10
EXCERPT_CHARS = 90
_MARKUP = re.compile(r"[*_#>`]+")

View = Callable[..., HttpResponse]


def urlpatterns(model_admin: Any) -> list[URLPattern]:
    def wrap(view: View) -> View:
        def bound(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            return view(request, model_admin=model_admin, **kwargs)

        return model_admin.admin_site.admin_view(bound)

    return [
        path(
            "<int:digest_id>/sections/<int:section_id>/regenerate/",
            wrap(section_regenerate_view),
            name="digests_digest_section_regenerate",
        ),
        path(
            "<int:digest_id>/regenerations/<int:regeneration_id>/status/",
            wrap(regeneration_status_view),
            name="digests_digest_regeneration_status",
        ),
        path(
            "<int:digest_id>/revisions/<int:revision_id>/",
            wrap(revision_view),
            name="digests_digest_revision",
        ),
    ]


# --- URLs -------------------------------------------------------------------------------------


def change_url(digest_id: int, section_id: int | None = None) -> str:
    url = reverse("admin:digests_digest_change", args=[digest_id])
    return f"{url}#regenerate-{section_id}" if section_id else url


def regenerate_url(section: DigestSection, language: str = "") -> str:
    url = reverse("admin:digests_digest_section_regenerate", args=[section.digest_id, section.pk])
    return f"{url}?{urlencode({'language': language})}" if language else url


def status_url(regeneration: Regeneration, digest_id: int) -> str:
    return reverse("admin:digests_digest_regeneration_status", args=[digest_id, regeneration.pk])


def revision_url(revision: SectionRevision, digest_id: int) -> str:
    return reverse("admin:digests_digest_revision", args=[digest_id, revision.pk])


# --- Views ------------------------------------------------------------------------------------


def digest_viewable(request: HttpRequest, model_admin: Any, digest_id: int) -> Digest:
    digest = get_object_or_404(Digest.objects.defer("chart_png"), pk=digest_id)
    if not model_admin.has_view_permission(request, digest):
        raise PermissionDenied
    return digest


def user_id(request: HttpRequest) -> int:
    if request.user.pk is None:  # admin_view lets only signed-in staff through
        raise PermissionDenied
    return int(request.user.pk)


def page_context(
    request: HttpRequest, model_admin: Any, digest: Digest, title: str
) -> dict[str, Any]:
    return {
        **model_admin.admin_site.each_context(request),
        "opts": Digest._meta,
        "digest": digest,
        "title": title,
        "editable": digest.status in EDITABLE_STATUSES,
    }


@require_http_methods(["GET", "POST"])
def section_regenerate_view(
    request: HttpRequest, *, model_admin: Any, digest_id: int, section_id: int
) -> HttpResponse:
    digest = digest_viewable(request, model_admin, digest_id)
    section = get_object_or_404(
        DigestSection.objects.select_related("category"), pk=section_id, digest=digest
    )
    language = chosen_language(request)
    if request.method == "POST":
        return regeneration_start(request, digest=digest, section=section, language=language)
    active = section.regenerations.filter(language=language, status__in=ACTIVE_STATUSES).first()
    report = current_report(section, language)
    context = page_context(
        request,
        model_admin,
        digest,
        regenerate_title(section.category.name, language),
    ) | {
        "section": section,
        "language": language,
        "papers": section_input(section).papers,
        "current_html": markdown_html(text=report.summary if report else ""),
        "editor_text": report is not None and report.summary_source == SummarySource.EDITOR,
        "approved": digest.status == Digest.Status.APPROVED,
        "active": active,
        "llm_enabled": llm_enabled(),
        "may_regenerate": request.user.has_perm(REGENERATE_PERMISSION),
        "back_url": change_url(digest.pk, section.pk),
    }
    return TemplateResponse(request, "admin/digests/regenerate/confirm.html", context)


def chosen_language(request: HttpRequest) -> str:
    """The report's language the page is about (`?language=`): "" for the first language's."""
    language = request.GET.get("language", "")
    if language == settings.DIGEST_LANGUAGE:
        return ""
    if language and language not in settings.DIGEST_LANGUAGES:
        raise Http404
    return language


def current_report(section: DigestSection, language: str) -> DigestSection | SectionReport | None:
    if not language:
        return section
    return section.reports.filter(language=language).first()


def regenerate_title(name: str, language: str) -> str:
    if language:
        return gettext("Regenerate the %(name)s summary in %(language)s") % {
            "name": name,
            "language": language,
        }
    return gettext("Regenerate the %(name)s summary") % {"name": name}


def regeneration_start(
    request: HttpRequest, *, digest: Digest, section: DigestSection, language: str = ""
) -> HttpResponse:
    if not request.user.has_perm(REGENERATE_PERMISSION):
        raise PermissionDenied
    name = section.category.name if not language else f"{section.category.name} ({language})"
    was_approved = digest.status == Digest.Status.APPROVED
    try:
        regeneration = regeneration_request(
            section=section, by=request.user.get_username(), language=language
        )
    except RegenerationRefused as exc:
        messages.error(request, gettext("Not regenerated: %(why)s") % {"why": exc})
        return HttpResponseRedirect(change_url(digest.pk, section.pk))
    regeneration_enqueue(regeneration.pk)
    admin_log(
        user_id=user_id(request),
        obj=digest,
        message=f"Asked the LLM for a new {name} summary (regeneration #{regeneration.pk}).",
    )
    regeneration.refresh_from_db()  # without a broker (eager tasks) it has already run
    regeneration_message(request, regeneration=regeneration, name=name, was_approved=was_approved)
    return HttpResponseRedirect(change_url(digest.pk, section.pk))


def regeneration_message(
    request: HttpRequest, *, regeneration: Regeneration, name: str, was_approved: bool
) -> None:
    if regeneration.status == Regeneration.Status.DONE:
        messages.success(
            request,
            gettext("The %(name)s summary was regenerated; the previous text is in its history.")
            % {"name": name},
        )
        if was_approved:
            messages.warning(
                request,
                gettext(
                    "This issue was approved; the new text returned it to draft and cancelled "
                    "its scheduled send. Approve it again when it is ready."
                ),
            )
    elif regeneration.status == Regeneration.Status.FAILED:
        messages.error(
            request,
            gettext(
                "The regeneration of the %(name)s summary failed: %(error)s The text was left "
                "as it was."
            )
            % {"name": name, "error": error_shown(regeneration.error)},
        )
    else:
        messages.info(
            request,
            gettext(
                "The LLM is writing a new %(name)s summary in the background; the section shows "
                "its progress. Reload the page when it is ready."
            )
            % {"name": name},
        )
        if was_approved:
            messages.warning(
                request,
                gettext(
                    "This issue is approved: when the new text arrives it goes back to draft and "
                    "its scheduled send is cancelled."
                ),
            )


@require_GET
def regeneration_status_view(
    request: HttpRequest, *, model_admin: Any, digest_id: int, regeneration_id: int
) -> JsonResponse:
    digest = digest_viewable(request, model_admin, digest_id)
    regeneration = get_object_or_404(
        Regeneration.objects.select_related("revision"),
        pk=regeneration_id,
        section__digest=digest,
    )
    return JsonResponse(regeneration_json(regeneration, digest_id=digest.pk))


def regeneration_json(regeneration: Regeneration, *, digest_id: int) -> dict[str, Any]:
    started = regeneration.started_at or regeneration.created_at
    end = regeneration.finished_at or timezone.now()
    revision = regeneration.revision
    return {
        "id": regeneration.pk,
        "section_id": regeneration.section_id,
        "status": regeneration.status,
        "status_label": regeneration.get_status_display(),
        "error": error_shown(regeneration.error),
        "requested_by": regeneration.requested_by,
        "created_at": regeneration.created_at.isoformat(),
        "started_at": regeneration.started_at.isoformat() if regeneration.started_at else None,
        "finished_at": (regeneration.finished_at.isoformat() if regeneration.finished_at else None),
        "finished_at_display": moment(regeneration.finished_at),
        "elapsed_seconds": max(0, round((end - started).total_seconds())),
        "revision_url": revision_url(revision, digest_id) if revision else None,
    }


@require_http_methods(["GET", "POST"])
def revision_view(
    request: HttpRequest, *, model_admin: Any, digest_id: int, revision_id: int
) -> HttpResponse:
    digest = digest_viewable(request, model_admin, digest_id)
    revision = get_object_or_404(
        SectionRevision.objects.select_related("section__category"),
        pk=revision_id,
        section__digest=digest,
    )
    if request.method == "POST":
        return revision_restore_post(request, digest=digest, revision=revision)
    section = revision.section
    current = current_report(section, revision.language)
    context = page_context(
        request,
        model_admin,
        digest,
        gettext("A kept text of the %(name)s summary") % {"name": report_name(section, revision)},
    ) | {
        "section": section,
        "revision": revision,
        "revision_html": markdown_html(text=revision.summary),
        "flags": flags_shown(revision.flags),
        "same_as_current": current is not None and revision.summary == current.summary,
        "approved": digest.status == Digest.Status.APPROVED,
        "may_restore": request.user.has_perm(RESTORE_PERMISSION),
        "back_url": change_url(digest.pk, section.pk),
    }
    return TemplateResponse(request, "admin/digests/regenerate/revision.html", context)


def revision_restore_post(
    request: HttpRequest, *, digest: Digest, revision: SectionRevision
) -> HttpResponse:
    if not request.user.has_perm(RESTORE_PERMISSION):
        raise PermissionDenied
    section = revision.section
    name = report_name(section, revision)
    when = moment(revision.created_at)
    try:
        restored = revision_restore(revision=revision, by=request.user.get_username())
    except RestoreRefused as exc:
        messages.error(request, gettext("Not restored: %(why)s") % {"why": exc})
        return HttpResponseRedirect(change_url(digest.pk, section.pk))
    admin_log(
        user_id=user_id(request),
        obj=digest,
        message=(
            f"Restored the {name} summary kept at {when} ({revision.get_reason_display()}); "
            "the text it replaced is kept in its history."
        ),
    )
    messages.success(
        request,
        gettext(
            "The %(name)s summary is the text kept at %(when)s again; the text it replaced is "
            "kept in its history."
        )
        % {"name": name, "when": when},
    )
    if restored.unapproved:
        messages.warning(
            request,
            gettext(
                "This issue was approved; the restore returned it to draft and cancelled its "
                "scheduled send. Approve it again when it is ready."
            ),
        )
    return HttpResponseRedirect(change_url(digest.pk, section.pk))


def report_name(section: DigestSection, revision: SectionRevision) -> str:
    """The section's name, with the report's language when it is not the first one."""
    name = section.category.name
    return f"{name} ({revision.language})" if revision.language else name


# --- The section's tools on the digest page ---------------------------------------------------


def moment(when: Any) -> str:
    return timezone.localtime(when).strftime("%Y-%m-%d %H:%M") if when else ""


def excerpt(text: str) -> str:
    plain = " ".join(_MARKUP.sub("", text).split())
    return Truncator(plain).chars(EXCERPT_CHARS)


def section_tools_html(section: DigestSection) -> SafeString:
    """For the report in each language (the first, then each other offered one): regenerate
    link, the latest regeneration's status (polled while under way) and the kept texts, for a
    read-only field inside the digest's form: links only, no forms."""
    status = Digest.objects.values_list("status", flat=True).get(pk=section.digest_id)
    editable = status in EDITABLE_STATUSES
    html = [language_tools_html(section, "", editable=editable)]
    html += [language_tools_html(section, code, editable=editable) for code in extra_languages()]
    return mark_safe("".join(html))  # noqa: S308 (each part rendered by an escaping template)


def language_tools_html(section: DigestSection, language: str, *, editable: bool) -> str:
    digest_id = section.digest_id
    latest = section.regenerations.filter(language=language).first()
    revisions = list(section.revisions.filter(language=language)[: HISTORY_SHOWN + 1])
    context = {
        "section": section,
        "language": language,
        "anchor": f"regenerate-{section.pk}" + (f"-{language}" if language else ""),
        "editable": editable,
        "regenerate_url": regenerate_url(section, language),
        "latest": latest,
        "active": latest is not None and latest.status in ACTIVE_STATUSES,
        "status_url": status_url(latest, digest_id) if latest else "",
        "finished": moment(latest.finished_at) if latest else "",
        "error": error_shown(latest.error) if latest else "",
        "script_url": static("digests/admin/regenerate.js"),
        "history": [
            {
                "url": revision_url(revision, digest_id),
                "when": moment(revision.created_at),
                "why": revision.get_reason_display(),
                "who": revision.created_by or "-",
                "excerpt": excerpt(revision.summary),
            }
            for revision in revisions[:HISTORY_SHOWN]
        ],
        "more_url": (
            reverse("admin:digests_sectionrevision_changelist")
            + f"?section__id__exact={section.pk}"
            + (f"&language={language}" if language else "")
            if len(revisions) > HISTORY_SHOWN
            else ""
        ),
    }
    # The template escapes every value (feed and LLM text included).
    return render_to_string("admin/digests/regenerate/_section_tools.html", context)
