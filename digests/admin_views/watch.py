"""Watching a send from the digest's page, resending to the unknown, and the dashboard.

- The deliveries panel (below the digest's form, `deliveries_context`): the deliveries by status,
  as a table and a chart, failures and bounces grouped by reason, the deliveries in an unknown
  state with a "resend to the unknown" form. While the issue is sending, deliveries.js fetches
  the panel again every few seconds (`deliveries/panel/`).
- Resend to the unknown (`deliveries/resend-unknown/`, POST, `digests.resend_digest`): the
  engine's `deliveries_unknown_resend`, in the admin log.
- The dashboard (`admin:dashboard`, `digests.view_digest`): active subscribers over the last 90
  days and by category, and per sent issue what was sent, bounced, complained and who left
  after it; charts (matplotlib PNGs) and the same figures as tables. Every figure is an
  aggregate query: a few queries whatever the number of readers.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Case, Count, DateTimeField, F, Q, When
from django.db.models.functions import Coalesce, TruncDate
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from digests.chart import ChartBar, chart_render, hangul_font_name
from digests.editing import admin_log
from digests.models import Category, Digest
from subscribers.delivery import deliveries_unknown_resend
from subscribers.models import Delivery, Subscriber

PANEL_TEMPLATE = "admin/digests/digest/_deliveries.html"
# How often the panel of an issue being sent fetches itself again (deliveries.js).
REFRESH_MS = 3000
# Addresses in an unknown state listed on the page; the rest are in the delivery list.
UNKNOWN_SHOWN = 50
# Distinct failure reasons listed; the rest are counted in one line.
REASONS_SHOWN = 20
DASHBOARD_DAYS = 90
DASHBOARD_ISSUES = 30

Status = Delivery.Status
# The figures that come from the ESP's tracking events, not from the send itself.
ESP_REPORTED = frozenset({"bounced", "complained", "opened", "clicked"})
# Statuses of a delivery the ESP accepted (a bounce or a complaint comes after it was sent).
ACCEPTED = (Status.SENT, Status.BOUNCED, Status.COMPLAINED)
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
class DeliveriesPanel:
    digest: Digest
    total: int
    figures: list[StatusFigure]
    reasons: list[Reason]
    reasons_more: int
    unknown_count: int
    unknown_emails: list[str]  # empty for those who may not see readers' addresses
    can_resend: bool
    explanation: str
    panel_url: str
    chart_url: str
    resend_url: str
    unknown_list_url: str
    refresh_ms: int

    @property
    def unknown_more(self) -> int:
        return self.unknown_count - len(self.unknown_emails)

    @property
    def chart_alt(self) -> str:
        shown = ", ".join(f"{f.count} {f.label}" for f in self.figures if f.count)
        return f"Deliveries by status: {shown or 'none'}"


def delivery_figures(*, digest_id: int) -> dict[str, int]:
    """Deliveries by status, and opened and clicked, in one aggregate query."""
    counted: dict[str, Any] = {s: Count("pk", filter=Q(status=s)) for s in Status.values}
    rows = Delivery.objects.filter(digest_id=digest_id)
    return rows.aggregate(
        **counted, opened=Count("opened_at"), clicked=Count("clicked_at"), total=Count("pk")
    )


def failure_reasons(
    *, digest_id: int, list_url: Callable[[str], str] = lambda status: ""
) -> tuple[list[Reason], int]:
    """Failed and bounced deliveries grouped by reason, the most frequent REASONS_SHOWN, and
    how many more reasons there are."""
    rows = Delivery.objects.filter(digest_id=digest_id, status__in=[Status.FAILED, Status.BOUNCED])
    grouped = rows.values_list("status", "error").annotate(n=Count("pk"))
    top = [
        Reason(status=status, text=text or "no reason given", count=n, list_url=list_url(status))
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
        return "Not sent yet: this issue is a draft."
    if digest.status == Digest.Status.APPROVED and digest.send_at:
        at = timezone.localtime(digest.send_at).strftime("%Y-%m-%d %H:%M")
        return f"Not sent yet: scheduled for {at}."
    if digest.status == Digest.Status.APPROVED:
        return "Not sent yet: approved, without a send time."
    if digest.status == Digest.Status.SENDING:
        return "Sending has started: the deliveries are being created."
    return "Sent to nobody: there was no active reader when it was sent."


def status_figures(
    counts: dict[str, int], list_url: Callable[[str], str] = lambda key: ""
) -> list[StatusFigure]:
    """The table's lines: every status, then opened and clicked."""
    figures = [
        StatusFigure(key, label, counts[key], list_url(key)) for key, label in Status.choices
    ]
    return figures + [StatusFigure(key, key, counts[key]) for key in ("opened", "clicked")]


def deliveries_panel(request: HttpRequest, digest: Digest) -> DeliveriesPanel:
    counts = delivery_figures(digest_id=digest.pk)

    def list_url(status: str) -> str:
        return delivery_list_url(request, digest, status__exact=status)

    figures = status_figures(counts, list_url)
    failed = counts["failed"] + counts["bounced"]
    reasons, reasons_more = (
        failure_reasons(digest_id=digest.pk, list_url=list_url) if failed else ([], 0)
    )
    unknown = Delivery.objects.filter(digest=digest, status=Status.UNKNOWN).order_by("email")
    addresses = request.user.has_perm("subscribers.view_subscriber")
    shown = unknown.values_list("email", flat=True)[:UNKNOWN_SHOWN]
    stamp = hashlib.sha1(repr(sorted(counts.items())).encode(), usedforsecurity=False)
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
        explanation="" if counts["total"] else not_sent_explanation(digest),
        panel_url=reverse("admin:digests_digest_deliveries_panel", args=args),
        chart_url=reverse("admin:digests_digest_deliveries_chart", args=args)
        + f"?v={stamp.hexdigest()[:12]}",
        resend_url=reverse("admin:digests_digest_deliveries_resend_unknown", args=args),
        unknown_list_url=delivery_list_url(request, digest, status__exact=Status.UNKNOWN),
        refresh_ms=REFRESH_MS if digest.status == Digest.Status.SENDING else 0,
    )


def deliveries_context(request: HttpRequest, digest: Digest) -> dict[str, Any]:
    """What the digest's change page shows below its form (the panel's template)."""
    return {"deliveries": deliveries_panel(request, digest)}


def deliveries_chart_png(*, digest_id: int) -> bytes:
    figures = status_figures(delivery_figures(digest_id=digest_id))
    bars = [ChartBar(f.label, f.count, STATUS_COLOURS.get(f.key, "#4C72B0")) for f in figures]
    return chart_render(
        bars=bars,
        title="Deliveries by status",
        subtitle="opened and clicked are among those sent; bounced, complained, opened and "
        "clicked are counted where the ESP reports them",
    )


# --- Views on the digest's page ------------------------------------------------------------------


def urlpatterns(model_admin: Any) -> list[URLPattern]:
    site = model_admin.admin_site

    def digest_for(request: HttpRequest, object_id: str) -> Digest:
        digest: Digest | None = model_admin.get_object(request, unquote(object_id))
        if digest is None:
            raise Http404("No such issue.")
        if not model_admin.has_view_permission(request, digest):
            raise PermissionDenied
        return digest

    @require_GET
    def panel(request: HttpRequest, object_id: str) -> TemplateResponse:
        context = deliveries_context(request, digest_for(request, object_id))
        return TemplateResponse(request, PANEL_TEMPLATE, context)

    @require_GET
    def chart(request: HttpRequest, object_id: str) -> HttpResponse:
        png = deliveries_chart_png(digest_id=digest_for(request, object_id).pk)
        response = HttpResponse(png, content_type="image/png")
        # The page names the image by its figures (?v=...): a new figure is a new address.
        response["Cache-Control"] = "private, max-age=300"
        return response

    @require_POST
    def resend_unknown(request: HttpRequest, object_id: str) -> HttpResponseRedirect:
        digest = digest_for(request, object_id)
        if not request.user.has_perm("digests.resend_digest"):
            raise PermissionDenied
        resent = deliveries_unknown_resend(digest_id=digest.pk)
        if resent:
            assert request.user.pk is not None  # admin_view lets only staff through
            admin_log(
                user_id=request.user.pk,
                obj=digest,
                message=f"Resent to the {resent} deliveries in an unknown state.",
            )
            messages.success(
                request,
                f"Resending to {resent} readers whose delivery was in an unknown state; "
                "some of them may get this issue twice.",
            )
        else:
            messages.info(request, "Nothing to resend: no delivery is in an unknown state.")
        url = reverse("admin:digests_digest_change", args=[digest.pk])
        return HttpResponseRedirect(f"{url}#deliveries-panel")

    @require_GET
    def dashboard_chart(request: HttpRequest, name: str) -> HttpResponse:
        dashboard_permission_check(request)
        draw = DASHBOARD_CHARTS.get(name)
        if draw is None:
            raise Http404("No such chart.")
        return HttpResponse(draw(), content_type="image/png")

    return [
        path(
            "<path:object_id>/deliveries/panel/",
            site.admin_view(panel),
            name="digests_digest_deliveries_panel",
        ),
        path(
            "<path:object_id>/deliveries/chart.png",
            site.admin_view(chart, cacheable=True),
            name="digests_digest_deliveries_chart",
        ),
        path(
            "<path:object_id>/deliveries/resend-unknown/",
            site.admin_view(resend_unknown),
            name="digests_digest_deliveries_resend_unknown",
        ),
        path(
            "dashboard/<slug:name>.png",
            site.admin_view(dashboard_chart),
            name="digests_digest_dashboard_chart",
        ),
    ]


# --- The dashboard: figures -------------------------------------------------------------------


@dataclass(frozen=True)
class DayActive:
    day: date
    active: int
    joined: int
    left: int


@dataclass(frozen=True)
class CategoryReaders:
    name: str
    colour: str
    readers: int


@dataclass(frozen=True)
class IssueFigures:
    digest_id: int
    date: date
    title: str
    sent_at: datetime | None
    sent: int
    bounced: int
    complained: int
    unsubscribed: int


def day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def readers_ever_active() -> Any:
    """Readers who are or were active, with when they joined and (for those who left) when
    they left. A reader who left and came back counts from their latest confirmation."""
    ever = Subscriber.objects.filter(
        Q(confirmed_at__isnull=False) | Q(status=Subscriber.Status.ACTIVE)
    ).order_by()
    left = Case(
        When(Q(status=Subscriber.Status.ACTIVE), then=None),
        When(unsubscribed_at__gte=F("joined_at"), then=F("unsubscribed_at")),
        When(suppressed_at__gte=F("joined_at"), then=F("suppressed_at")),
        default=F("updated_at"),
        output_field=DateTimeField(),
    )
    return ever.alias(joined_at=Coalesce("confirmed_at", "created_at")).alias(left_at=left)


def per_day(rows: Any, field: str, since: datetime) -> dict[date, int]:
    counted = rows.filter(**{f"{field}__gte": since}).annotate(day=TruncDate(field))
    return dict(counted.values("day").annotate(n=Count("pk")).values_list("day", "n"))


def subscribers_over_time(*, days: int = DASHBOARD_DAYS) -> list[DayActive]:
    """Active readers at the end of each of the last `days` days (today included): those
    before the first day, then each day's joins and departures (four queries)."""
    today = timezone.localdate()
    first = today - timedelta(days=days - 1)
    since = day_start(first)
    ever = readers_ever_active()
    before = ever.aggregate(
        joined=Count("pk", filter=Q(joined_at__lt=since)),
        left=Count("pk", filter=Q(left_at__lt=since)),
    )
    joins = per_day(ever, "joined_at", since)
    leaves = per_day(ever.filter(left_at__isnull=False), "left_at", since)
    active = before["joined"] - before["left"]
    series: list[DayActive] = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        joined, left = joins.get(day, 0), leaves.get(day, 0)
        active += joined - left
        series.append(DayActive(day=day, active=active, joined=joined, left=left))
    return series


def readers_by_category() -> tuple[list[CategoryReaders], int]:
    """Active readers per category (a reader counts in each one chosen), and active readers
    who chose none."""
    active = Q(subscribers__status=Subscriber.Status.ACTIVE)
    categories = Category.objects.annotate(readers=Count("subscribers", filter=active))
    rows = [
        CategoryReaders(name=c.name, colour=c.colour, readers=c.readers)
        for c in categories.order_by("position", "name")
        if c.active or c.readers
    ]
    none_chosen = Subscriber.objects.filter(
        status=Subscriber.Status.ACTIVE, categories__isnull=True
    ).count()
    return rows, none_chosen


def issues_figures(*, limit: int = DASHBOARD_ISSUES) -> list[IssueFigures]:
    """The last `limit` sent issues, oldest first: deliveries sent (accepted by the ESP),
    bounced and complained, and readers who unsubscribed between the issue and the next one
    (three queries)."""
    sent = Digest.objects.filter(status=Digest.Status.SENT, sent_at__isnull=False)
    issues = list(sent.order_by("-sent_at").values_list("pk", "date", "title", "sent_at")[:limit])
    issues.reverse()
    if not issues:
        return []
    ids = [pk for pk, *_ in issues]
    counted = (
        Delivery.objects.filter(digest_id__in=ids)
        .values("digest_id")
        .annotate(
            sent=Count("pk", filter=Q(status__in=ACCEPTED)),
            bounced=Count("pk", filter=Q(status=Status.BOUNCED)),
            complained=Count("pk", filter=Q(status=Status.COMPLAINED)),
        )
        .order_by()
    )
    deliveries = {row["digest_id"]: row for row in counted}
    ends = [at for *_, at in issues[1:]] + [None]
    windows = {
        f"issue_{pk}": Count(
            "pk", filter=Q(unsubscribed_at__gte=at) & (Q(unsubscribed_at__lt=end) if end else Q())
        )
        for (pk, *_, at), end in zip(issues, ends, strict=True)
    }
    left = Subscriber.objects.filter(unsubscribed_at__gte=issues[0][3]).aggregate(**windows)
    zero = {"sent": 0, "bounced": 0, "complained": 0}
    return [
        IssueFigures(
            digest_id=pk,
            date=day,
            title=title,
            sent_at=at,
            sent=deliveries.get(pk, zero)["sent"],
            bounced=deliveries.get(pk, zero)["bounced"],
            complained=deliveries.get(pk, zero)["complained"],
            unsubscribed=left[f"issue_{pk}"],
        )
        for pk, day, title, at in issues
    ]


# --- The dashboard: charts ----------------------------------------------------------------------

# Figures are drawn with matplotlib's object API; one at a time, as digests/chart.py does.
_draw_lock = threading.Lock()


def figure_png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def subscribers_chart_png() -> bytes:
    series = subscribers_over_time()
    font = hangul_font_name()
    with _draw_lock:
        figure = Figure(figsize=(8, 3.2), dpi=110)
        axes = figure.add_subplot()
        days: list[Any] = [p.day for p in series]  # matplotlib's date units draw dates
        axes.plot(days, [p.active for p in series], color="#4C72B0")
        axes.set_ylim(bottom=0, top=max([p.active for p in series] + [1]) * 1.15)
        axes.set_title(
            f"Active subscribers, last {DASHBOARD_DAYS} days", fontfamily=font, loc="left"
        )
        return dashboard_figure_png(figure, axes)


def dashboard_figure_png(figure: Figure, axes: Any) -> bytes:
    """A dashboard chart finished alike: whole readers on the y axis, no top and right frame,
    dates slanted."""
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))  # readers come whole
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure_png(figure)


def categories_chart_png() -> bytes:
    rows, _ = readers_by_category()
    bars = [ChartBar(row.name, row.readers, row.colour) for row in rows]
    return chart_render(bars=bars, title="Active subscribers by category")


def issues_chart_png() -> bytes:
    issues = issues_figures()
    font = hangul_font_name()
    series = [
        ("bounced", "#937860", [i.bounced for i in issues]),
        ("complained", "#8172B3", [i.complained for i in issues]),
        ("unsubscribed after it", "#C44E52", [i.unsubscribed for i in issues]),
    ]
    width = 0.27
    with _draw_lock:
        figure = Figure(figsize=(8, 3.6), dpi=110)
        axes = figure.add_subplot()
        positions = list(range(len(issues)))
        for index, (label, colour, values) in enumerate(series):
            shifted = [p + (index - 1) * width for p in positions]
            axes.bar(shifted, values, width=width, color=colour, label=label)
        axes.set_xticks(positions, labels=[f"{i.date:%m-%d}" for i in issues], fontsize=8)
        axes.set_title("Unsubscribes and bounces per issue", fontfamily=font, loc="left")
        if issues:
            axes.legend(frameon=False, fontsize=9)
        return dashboard_figure_png(figure, axes)


DASHBOARD_CHARTS: dict[str, Callable[[], bytes]] = {
    "subscribers": subscribers_chart_png,
    "categories": categories_chart_png,
    "issues": issues_chart_png,
}


# --- The dashboard: the page ------------------------------------------------------------------


def dashboard_permission_check(request: HttpRequest) -> None:
    if not request.user.has_perm("digests.view_digest"):
        raise PermissionDenied


def dashboard_view(request: HttpRequest) -> TemplateResponse:
    dashboard_permission_check(request)
    series = subscribers_over_time()
    categories, none_chosen = readers_by_category()
    issues = issues_figures()
    charts = {
        name: reverse("admin:digests_digest_dashboard_chart", kwargs={"name": name})
        for name in DASHBOARD_CHARTS
    }
    context = {
        **admin.site.each_context(request),
        "title": "Dashboard",
        "days": DASHBOARD_DAYS,
        "series": list(reversed(series)),  # newest first in the table
        "active_now": series[-1].active,
        "active_first": series[0].active,
        "categories": categories,
        "none_chosen": none_chosen,
        "issues": list(reversed(issues)),
        "charts": charts,
    }
    return TemplateResponse(request, "admin/dashboard.html", context)
