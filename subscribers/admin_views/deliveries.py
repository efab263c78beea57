"""Watching a send from the digest's page, and resending to the unknown.

- The deliveries panel (below the digest's form, `deliveries_context`): the deliveries by status,
  as a table and a chart, failures and bounces grouped by reason, the deliveries in an unknown
  state with a "resend to the unknown" form. While the issue is sending, deliveries.js fetches
  the panel again every few seconds (`deliveries/panel/`).
- Resume a paused send (`deliveries/resume/`, POST, `digests.approve_digest`): the send paused
  itself after DELIVERY_PAUSE_AFTER_ERRORS errors in a row; the panel says why.
- Resend to the unknown (`deliveries/resend-unknown/`, POST, `digests.resend_digest`): the
  `tasks.unknown_resend`, in the admin log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext, pgettext
from django.views.decorators.http import require_GET, require_POST

from digests.chart import ChartBar, chart_render
from digests.editing import admin_log
from digests.models import Digest
from subscribers.models import ChannelDelivery, Delivery
from subscribers.sending.ledger import channel_delivery_counts, delivery_counts
from subscribers.tasks import send_resume, unknown_resend

PANEL_TEMPLATE = "admin/subscribers/digest/_deliveries.html"
# How often the panel of an issue being sent fetches itself again (deliveries.js).
REFRESH_MS = 3000
# Addresses in an unknown state listed on the page; the rest are in the delivery list.
UNKNOWN_SHOWN = 50
# Distinct failure reasons listed; the rest are counted in one line.
REASONS_SHOWN = 20
# Channels not simply sent, listed by the panel.
CHANNELS_SHOWN = 50

Status = Delivery.Status
# The figures that come from the ESP's tracking events, not from the send itself.
ESP_REPORTED = frozenset({"bounced", "complained", "opened", "clicked"})
STATUS_COLOURS = {
    "queued": "#9AA5B1",
    "sending": "#4C72B0",
    "sent": "#55A868",
    "failed": "#C44E52",
    "unknown": "#DD8452",
    "skipped": "#8C8C8C",
    "bounced": "#937860",
    "complained": "#8172B3",
    "opened": "#64B5CD",
    "clicked": "#2E86AB",
}


# --- The deliveries panel -----------------------------------------------------------------------


@dataclass(frozen=True)
class StatusFigure:
    """One line of the deliveries table: a status, or opened / clicked."""

    key: str
    label: str
    count: int
    list_url: str = ""

    @property
    def esp_reported(self) -> bool:
        return self.key in ESP_REPORTED


@dataclass(frozen=True)
class Reason:
    status: str
    text: str  # as the ESP or the mail server wrote it: escaped by the template
    count: int
    list_url: str = ""


@dataclass(frozen=True)
class ChannelLine:
    """A team-chat channel of the issue that was not simply sent (failed, unknown, skipped,
    waiting): where, what, why. The error is the service's text: escaped by the template."""

    kind: str
    destination: str
    status: str
    parts: str  # "2/3": parts posted of the message's parts
    error: str


@dataclass(frozen=True)
class ChannelsPanel:
    total: int
    figures: list[StatusFigure]  # statuses with a count
    parts: int  # messages posted
    unknown: int
    lines: list[ChannelLine]
    lines_more: int


def channels_panel(*, digest_id: int) -> ChannelsPanel | None:
    """The issue's channels in the deliveries panel (None when it has none)."""
    counts = channel_delivery_counts(digest_id=digest_id)
    if not counts["total"]:
        return None
    figures = [
        StatusFigure(key, str(label), counts[key])
        for key, label in Status.choices
        if counts[key] and key not in ESP_REPORTED
    ]
    labels = dict(Status.choices)
    not_sent = ChannelDelivery.objects.filter(digest_id=digest_id).exclude(status=Status.SENT)
    rows = not_sent.order_by("status", "kind", "pk").values_list(
        "kind", "destination", "status", "parts_sent", "parts_total", "error"
    )
    lines = [
        ChannelLine(kind, destination, str(labels.get(status, status)), f"{sent}/{total}", error)
        for kind, destination, status, sent, total, error in rows[:CHANNELS_SHOWN]
    ]
    shown_total = counts["total"] - counts["sent"]
    return ChannelsPanel(
        total=counts["total"],
        figures=figures,
        parts=counts["parts"],
        unknown=counts["unknown"],
        lines=lines,
        lines_more=max(shown_total - len(lines), 0),
    )


@dataclass(frozen=True)
class DeliveriesPanel:
    digest: Digest
    total: int
    figures: list[StatusFigure]
    reasons: list[Reason]
    reasons_more: int
    unknown_count: int
    unknown_emails: list[str]  # empty for those who may not see readers' addresses
    can_resend: bool
    can_resume: bool  # paused, and the user may approve sends
    explanation: str
    panel_url: str
    chart_url: str
    resend_url: str
    resume_url: str
    unknown_list_url: str
    refresh_ms: int
    channels: ChannelsPanel | None = None

    @property
    def unknown_more(self) -> int:
        return self.unknown_count - len(self.unknown_emails)

    @property
    def chart_alt(self) -> str:
        shown = ", ".join(f"{f.count} {f.label}" for f in self.figures if f.count)
        return gettext("Deliveries by status: %(figures)s") % {"figures": shown or gettext("none")}


def failure_reasons(
    *, digest_id: int, list_url: Callable[[str], str] = lambda status: ""
) -> tuple[list[Reason], int]:
    """Failed and bounced deliveries grouped by reason, the most frequent REASONS_SHOWN, and
    how many more reasons there are."""
    rows = Delivery.objects.filter(digest_id=digest_id, status__in=[Status.FAILED, Status.BOUNCED])
    grouped = rows.values_list("status", "error").annotate(n=Count("pk"))
    top = [
        Reason(
            status=status,
            text=text or gettext("no reason given"),
            count=n,
            list_url=list_url(status),
        )
        for status, text, n in grouped.order_by("-n", "status", "error")[:REASONS_SHOWN]
    ]
    if len(top) < REASONS_SHOWN:
        return top, 0
    return top, rows.values("status", "error").distinct().count() - len(top)


def delivery_list_url(request: HttpRequest, digest: Digest, **lookups: str) -> str:
    """The admin's delivery list filtered to the issue (and `lookups`), for those who may see it."""
    if not request.user.has_perm("subscribers.view_delivery"):
        return ""
    query = urlencode({"digest__id__exact": str(digest.pk), **lookups})
    return f"{reverse('admin:subscribers_delivery_changelist')}?{query}"


def not_sent_explanation(digest: Digest) -> str:
    """The panel of an issue without deliveries, in one line."""
    if digest.status == Digest.Status.DRAFT:
        return gettext("Not sent yet: this issue is a draft.")
    if digest.status == Digest.Status.APPROVED and digest.send_at:
        at = timezone.localtime(digest.send_at).strftime("%Y-%m-%d %H:%M")
        return gettext("Not sent yet: scheduled for %(at)s.") % {"at": at}
    if digest.status == Digest.Status.APPROVED:
        return gettext("Not sent yet: approved, without a send time.")
    if digest.status == Digest.Status.SENDING:
        return gettext("Sending has started: the deliveries are being created.")
    if digest.status == Digest.Status.PAUSED:
        return gettext("The send paused itself before any delivery was made.")
    return gettext("Sent to nobody: there was no active reader when it was sent.")


def status_figures(
    counts: dict[str, int], list_url: Callable[[str], str] = lambda key: ""
) -> list[StatusFigure]:
    """The table's lines: every status, then opened and clicked."""
    figures = [
        StatusFigure(key, str(label), counts[key], list_url(key)) for key, label in Status.choices
    ]
    engagement = {"opened": pgettext("email", "opened"), "clicked": pgettext("email", "clicked")}
    return figures + [StatusFigure(key, label, counts[key]) for key, label in engagement.items()]


def deliveries_panel(request: HttpRequest, digest: Digest) -> DeliveriesPanel:
    counts = delivery_counts(digest_id=digest.pk)
    list_url = partial(status_list_url, request, digest)
    figures = status_figures(counts, list_url)
    failed = counts["failed"] + counts["bounced"]
    reasons, reasons_more = (
        failure_reasons(digest_id=digest.pk, list_url=list_url) if failed else ([], 0)
    )
    unknown = Delivery.objects.filter(digest=digest, status=Status.UNKNOWN).order_by("email")
    addresses = request.user.has_perm("subscribers.view_subscriber")
    shown = unknown.values_list("email", flat=True)[:UNKNOWN_SHOWN]
    channels = channels_panel(digest_id=digest.pk)
    state = [
        sorted(counts.items()),
        channels and (channels.total, channels.parts, channels.figures),
    ]
    stamp = hashlib.sha1(repr(state).encode(), usedforsecurity=False)
    args = [digest.pk]
    return DeliveriesPanel(
        digest=digest,
        total=counts["total"],
        figures=figures,
        reasons=reasons,
        reasons_more=reasons_more,
        unknown_count=counts["unknown"],
        unknown_emails=list(shown) if addresses and counts["unknown"] else [],
        can_resend=request.user.has_perm("digests.resend_digest"),
        can_resume=digest.status == Digest.Status.PAUSED
        and request.user.has_perm("digests.approve_digest"),
        explanation="" if counts["total"] else not_sent_explanation(digest),
        panel_url=reverse("admin:digests_digest_deliveries_panel", args=args),
        chart_url=reverse("admin:digests_digest_deliveries_chart", args=args)
        + f"?v={stamp.hexdigest()[:12]}",
        resend_url=reverse("admin:digests_digest_deliveries_resend_unknown", args=args),
        resume_url=reverse("admin:digests_digest_deliveries_resume", args=args),
        unknown_list_url=delivery_list_url(request, digest, status__exact=Status.UNKNOWN),
        refresh_ms=REFRESH_MS if digest.status == Digest.Status.SENDING else 0,
        channels=channels,
    )


def status_list_url(request: HttpRequest, digest: Digest, status: str) -> str:
    return delivery_list_url(request, digest, status__exact=status)


def deliveries_context(request: HttpRequest, digest: Digest) -> dict[str, Any]:
    """What the digest's change page shows below its form (the panel's template)."""
    return {"deliveries": deliveries_panel(request, digest)}


def deliveries_chart_png(*, digest_id: int) -> bytes:
    figures = status_figures(delivery_counts(digest_id=digest_id))
    bars = [ChartBar(f.label, f.count, STATUS_COLOURS.get(f.key, "#4C72B0")) for f in figures]
    return chart_render(
        bars=bars,
        title=gettext("Deliveries by status"),
        subtitle=gettext(
            "opened and clicked are among those sent; bounced, complained, opened and "
            "clicked are counted where the ESP reports them"
        ),
    )


# --- Views on the digest's page ------------------------------------------------------------------
# Each takes the Digest admin as `model_admin` (bound in `urlpatterns`).


def digest_for(model_admin: Any, request: HttpRequest, object_id: str) -> Digest:
    digest: Digest | None = model_admin.get_object(request, unquote(object_id))
    if digest is None:
        raise Http404("No such issue.")
    if not model_admin.has_view_permission(request, digest):
        raise PermissionDenied
    return digest


@require_GET
def panel_view(request: HttpRequest, object_id: str, *, model_admin: Any) -> TemplateResponse:
    context = deliveries_context(request, digest_for(model_admin, request, object_id))
    return TemplateResponse(request, PANEL_TEMPLATE, context)


@require_GET
def chart_view(request: HttpRequest, object_id: str, *, model_admin: Any) -> HttpResponse:
    png = deliveries_chart_png(digest_id=digest_for(model_admin, request, object_id).pk)
    response = HttpResponse(png, content_type="image/png")
    # The page names the image by its figures (?v=...): a new figure is a new address.
    response["Cache-Control"] = "private, max-age=300"
    return response


@require_POST
def resend_unknown_view(
    request: HttpRequest, object_id: str, *, model_admin: Any
) -> HttpResponseRedirect:
    digest = digest_for(model_admin, request, object_id)
    if not request.user.has_perm("digests.resend_digest"):
        raise PermissionDenied
    resent = unknown_resend(digest.pk)
    if resent:
        assert request.user.pk is not None  # admin_view lets only staff through
        admin_log(
            user_id=request.user.pk,
            obj=digest,
            message=f"Resent to the {resent} deliveries in an unknown state.",
        )
        messages.success(
            request,
            gettext(
                "Resending to %(n)s readers whose delivery was in an unknown state; some of "
                "them may get this issue twice."
            )
            % {"n": resent},
        )
    else:
        messages.info(request, gettext("Nothing to resend: no delivery is in an unknown state."))
    url = reverse("admin:digests_digest_change", args=[digest.pk])
    return HttpResponseRedirect(f"{url}#deliveries-panel")


@require_POST
def resume_view(request: HttpRequest, object_id: str, *, model_admin: Any) -> HttpResponseRedirect:
    """An editor resumes a send that paused itself: the readers not yet sent are sent, nobody
    twice (`tasks.send_resume`, as `send_digest --date` does)."""
    digest = digest_for(model_admin, request, object_id)
    if not request.user.has_perm("digests.approve_digest"):
        raise PermissionDenied
    if digest.status != Digest.Status.PAUSED:
        messages.info(
            request,
            gettext("Nothing to resume: this issue is %(status)s.")
            % {"status": digest.get_status_display()},
        )
    else:
        reason = digest.send_paused_reason
        resumed = send_resume(digest.pk)
        assert request.user.pk is not None  # admin_view lets only staff through
        admin_log(
            user_id=request.user.pk, obj=digest, message=f"Resumed the paused send ({reason})."
        )
        messages.success(
            request,
            gettext("Send resumed: %(n)s chunks of readers not yet sent queued.")
            % {"n": len(resumed.chunks)},
        )
    url = reverse("admin:digests_digest_change", args=[digest.pk])
    return HttpResponseRedirect(f"{url}#deliveries-panel")


def urlpatterns(model_admin: Any) -> list[URLPattern]:
    site = model_admin.admin_site
    return [
        path(
            "<path:object_id>/deliveries/panel/",
            site.admin_view(partial(panel_view, model_admin=model_admin)),
            name="digests_digest_deliveries_panel",
        ),
        path(
            "<path:object_id>/deliveries/chart.png",
            site.admin_view(partial(chart_view, model_admin=model_admin), cacheable=True),
            name="digests_digest_deliveries_chart",
        ),
        path(
            "<path:object_id>/deliveries/resend-unknown/",
            site.admin_view(partial(resend_unknown_view, model_admin=model_admin)),
            name="digests_digest_deliveries_resend_unknown",
        ),
        path(
            "<path:object_id>/deliveries/resume/",
            site.admin_view(partial(resume_view, model_admin=model_admin)),
            name="digests_digest_deliveries_resume",
        ),
    ]
