"""Approve with a send time, cancel: an issue's way out, from the admin.

- Approve (`<id>/approve/`, POST, `digests.approve_digest`): for a send time in
  DIGEST_SEND_TIMEZONE, or now; refused when the issue changed since the page was opened.
  "Approve and send now" asks the Digest admin to start the send (`send_now_start`): the audience
  app's admin (subscribers/admin.py) does; otherwise the next check of due sends starts it.
- Cancel (`<id>/unapprove/`, same permission): back to draft, the scheduled send cancelled.

Every approval and cancellation is written to the admin log. The helpers for the issue's admin
pages (`digest_for`, `digest_url`, `redirect_back`, `log`, `form_errors`) are shared with the
pages other apps add to the Digest admin (preview and test send: subscribers/admin_views/).
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from digests.approval import (
    ApprovalRefused,
    auto_approve_time,
    default_send_time,
    digest_approve,
    digest_unapprove,
    local_time_label,
    send_timezone,
)
from digests.editing import admin_log
from digests.models import Digest

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"


# --- Forms --------------------------------------------------------------------------------------


class ApproveForm(forms.Form):
    """A send time read in DIGEST_SEND_TIMEZONE (validate under `timezone.override`), or now;
    and the version of the issue the editor saw."""

    send_at = forms.DateTimeField(
        required=False,
        input_formats=[DATETIME_LOCAL, "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput({"type": "datetime-local"}, format=DATETIME_LOCAL),
    )
    send_now = forms.BooleanField(required=False)
    version = forms.IntegerField(min_value=1)

    def __init__(self, *args: Any, now: datetime, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.now = now
        if self.is_bound and self.data.get("send_now"):
            del self.fields["send_at"]  # "send now" uses now, whatever the time field says

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("send_now"):
            cleaned["send_at"] = self.now
            return cleaned
        send_at = cleaned.get("send_at")
        if send_at is None and "send_at" not in self.errors:
            raise ValidationError(
                gettext("Choose a send time, or approve with “Approve and send now”.")
            )
        if send_at is not None and send_at < self.now:
            raise ValidationError(
                gettext(
                    "Not approved: the send time %(when)s has passed. Choose a later time, or "
                    "use “Approve and send now” to send it at once."
                )
                % {"when": local_time_label(send_at)}
            )
        return cleaned


def form_errors(form: forms.Form) -> list[str]:
    found = []
    for name, errors in form.errors.items():
        label = "" if name == "__all__" else f"{form.fields[name].label or name}: "
        found += [f"{label}{error}" for error in errors]
    return found


# --- The panel on the digest's page ---------------------------------------------------------------


def auto_approve_note(digest: Digest) -> str:
    """What DIGEST_AUTO_APPROVE will do with a draft, in words ("" when it is off)."""
    if not settings.DIGEST_AUTO_APPROVE or digest.status != Digest.Status.DRAFT:
        return ""
    if digest.reviewed_at is not None:
        return gettext("An editor has acted on this issue: it will not be approved automatically.")
    if digest.built_at is None:
        return ""
    at = local_time_label(auto_approve_time(built_at=digest.built_at))
    return gettext(
        "Automatic approval is on: unless someone acts, this issue is approved at %(at)s."
    ) % {"at": at}


def digest_url(site_name: str, name: str, digest: Digest) -> str:
    return reverse(f"{site_name}:digests_digest_{name}", args=[digest.pk])


def workflow_context(request: HttpRequest, digest: Digest) -> dict[str, Any]:
    """The status and approval of the digest's page (templates/admin/digests/digest/
    change_form.html)."""
    site_name = getattr(request.resolver_match, "namespace", "") or "admin"
    user = request.user
    has_sections = digest.sections.exists()
    draft = digest.status == Digest.Status.DRAFT
    panel = {
        "status": digest.get_status_display(),
        "draft": draft,
        "approved": digest.status == Digest.Status.APPROVED,
        "zone": settings.DIGEST_SEND_TIMEZONE,
        "send_at": local_time_label(digest.send_at) if digest.send_at else "",
        "send_at_passed": bool(digest.send_at and digest.send_at <= timezone.now()),
        "approved_at": local_time_label(digest.approved_at) if digest.approved_at else "",
        "approved_by": digest.approved_by,
        "auto_approved": digest.auto_approved,
        "sent_at": local_time_label(digest.sent_at) if digest.sent_at else "",
        "auto_note": auto_approve_note(digest),
        "has_sections": has_sections,
        "version": digest.version,
        "approve_url": digest_url(site_name, "approve", digest),
        "unapprove_url": digest_url(site_name, "unapprove", digest),
        "can_approve": draft and has_sections and user.has_perm("digests.approve_digest"),
        "can_cancel": digest.status == Digest.Status.APPROVED
        and user.has_perm("digests.approve_digest"),
        "send_at_default": default_send_time(digest=digest)
        .astimezone(send_timezone())
        .strftime(DATETIME_LOCAL),
    }
    return {"workflow": panel}


# --- Views --------------------------------------------------------------------------------------
# Each takes the Digest admin as `model_admin` (bound in `urlpatterns`).


def digest_for(model_admin: Any, request: HttpRequest, digest_id: int) -> Digest:
    digest = Digest.objects.defer("chart_png").filter(pk=digest_id).first()
    if digest is None:
        raise Http404("No such issue.")
    if not model_admin.has_view_permission(request, digest):
        raise PermissionDenied
    return digest


def _require(request: HttpRequest, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied


def change_url(model_admin: Any, digest: Digest) -> str:
    return digest_url(model_admin.admin_site.name, "change", digest)


def redirect_back(request: HttpRequest, fallback: str) -> HttpResponseRedirect:
    """To the page the form was on (`next`), if it is one of this site's, else `fallback`."""
    wanted = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return HttpResponseRedirect(wanted if wanted and safe else fallback)


def log(request: HttpRequest, digest: Digest, message: str) -> None:
    admin_log(user_id=int(request.user.pk or 0), obj=digest, message=message)


@require_POST
def approve_view(request: HttpRequest, digest_id: int, *, model_admin: Any) -> HttpResponse:
    digest = digest_for(model_admin, request, digest_id)
    _require(request, "digests.approve_digest")
    back = HttpResponseRedirect(change_url(model_admin, digest))
    form = ApproveForm(request.POST, now=timezone.now())
    with timezone.override(send_timezone()):  # the time typed is a time in that zone
        valid = form.is_valid()
    if not valid:
        for error in form_errors(form):
            messages.error(request, error)
        return back
    try:
        digest = digest_approve(
            digest=digest,
            send_at=form.cleaned_data["send_at"],
            by=request.user.get_username(),
            version=form.cleaned_data["version"],
        )
    except ApprovalRefused as refused:
        messages.error(request, str(refused))
        return back
    assert digest.send_at is not None
    when = local_time_label(digest.send_at)
    soon = ""
    if form.cleaned_data.get("send_now"):
        # Start it now rather than at the next check of due sends (which would also start it,
        # once: the start is a conditional UPDATE). With eager tasks it runs within this request.
        started = model_admin.send_now_start()
        soon = (
            gettext(" (now: the send has started)")
            if started
            else gettext(" (now: it starts within a minute)")
        )
    messages.success(
        request,
        gettext("Approved: the issue of %(day)s is sent at %(when)s%(soon)s.")
        % {"day": digest.date, "when": when, "soon": soon},
    )
    log(request, digest, f"Approved, to be sent at {when}.")
    return back


@require_POST
def unapprove_view(request: HttpRequest, digest_id: int, *, model_admin: Any) -> HttpResponse:
    digest = digest_for(model_admin, request, digest_id)
    _require(request, "digests.approve_digest")
    back = HttpResponseRedirect(change_url(model_admin, digest))
    was = local_time_label(digest.send_at) if digest.send_at else gettext("no time")
    try:
        digest = digest_unapprove(digest=digest, by=request.user.get_username())
    except ApprovalRefused as refused:
        messages.error(request, str(refused))
        return back
    messages.success(
        request,
        gettext(
            "Back to draft: the send scheduled for %(when)s is cancelled. Approve it again when "
            "it is ready."
        )
        % {"when": was},
    )
    log(request, digest, f"Cancelled the send scheduled for {was}: back to draft.")
    return back


VIEWS = [
    ("approve/", approve_view, "approve"),
    ("unapprove/", unapprove_view, "unapprove"),
]


def issue_urlpatterns(model_admin: Any, views: list[tuple[str, Any, str]]) -> list[URLPattern]:
    """`<digest_id>/<route>` for each (route, view, name) in `views`, as the admin's
    `digests_digest_<name>`, each view given the Digest admin as `model_admin`."""
    site = model_admin.admin_site
    return [
        path(
            f"<int:digest_id>/{route}",
            site.admin_view(partial(view, model_admin=model_admin)),
            name=f"digests_digest_{name}",
        )
        for route, view, name in views
    ]


def urlpatterns(model_admin: Any) -> list[URLPattern]:
    return issue_urlpatterns(model_admin, VIEWS)
