"""The dashboard (`admin:dashboard`, `digests.view_digest`): active subscribers over the last 90
days and by category, and per sent issue what was sent, bounced, complained and who left after
it; charts (matplotlib PNGs) and the same figures as tables. Every figure is an aggregate
query: a few queries whatever the number of readers.

The site (newsletter/admin.py) serves the page; the charts are served under the Digest admin
(`digests_digest_dashboard_chart`, from `urlpatterns`).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Case, Count, DateTimeField, F, Q, When
from django.db.models.functions import Coalesce, TruncDate
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.views.decorators.http import require_GET

from digests.chart import ChartBar, chart_render, figure_new, hangul_font_name
from digests.models import Category, Digest
from subscribers.models import Delivery, Subscriber

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DASHBOARD_DAYS = 90
DASHBOARD_ISSUES = 30
TEMPLATE = "admin/subscribers/dashboard.html"

Status = Delivery.Status
# Statuses of a delivery the ESP accepted (a bounce or a complaint comes after it was sent).
ACCEPTED = (Status.SENT, Status.BOUNCED, Status.COMPLAINED)


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
        figure = figure_new(width=8, height=3.2)
        axes = figure.add_subplot()
        days: list[Any] = [p.day for p in series]  # matplotlib's date units draw dates
        axes.plot(days, [p.active for p in series], color="#4C72B0")
        axes.set_ylim(bottom=0, top=max([p.active for p in series] + [1]) * 1.15)
        title = gettext("Active subscribers, last %(days)s days") % {"days": DASHBOARD_DAYS}
        axes.set_title(title, fontfamily=font, loc="left")
        return dashboard_figure_png(figure, axes)


def dashboard_figure_png(figure: Figure, axes: Any) -> bytes:
    """A dashboard chart finished alike: whole readers on the y axis, no top and right frame,
    dates slanted."""
    from matplotlib.ticker import MaxNLocator

    axes.yaxis.set_major_locator(MaxNLocator(integer=True))  # readers come whole
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure_png(figure)


def categories_chart_png() -> bytes:
    rows, _ = readers_by_category()
    bars = [ChartBar(row.name, row.readers, row.colour) for row in rows]
    return chart_render(bars=bars, title=gettext("Active subscribers by category"))


def issues_chart_png() -> bytes:
    issues = issues_figures()
    font = hangul_font_name()
    series = [
        (gettext("bounced"), "#937860", [i.bounced for i in issues]),
        (gettext("complained"), "#8172B3", [i.complained for i in issues]),
        (gettext("unsubscribed after it"), "#C44E52", [i.unsubscribed for i in issues]),
    ]
    width = 0.27
    with _draw_lock:
        figure = figure_new(width=8, height=3.6)
        axes = figure.add_subplot()
        positions = list(range(len(issues)))
        for index, (label, colour, values) in enumerate(series):
            shifted = [p + (index - 1) * width for p in positions]
            axes.bar(shifted, values, width=width, color=colour, label=label)
        axes.set_xticks(positions, labels=[f"{i.date:%m-%d}" for i in issues], fontsize=8)
        axes.set_title(gettext("Unsubscribes and bounces per issue"), fontfamily=font, loc="left")
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
        "title": gettext("Dashboard"),
        "days": DASHBOARD_DAYS,
        "series": list(reversed(series)),  # newest first in the table
        "active_now": series[-1].active,
        "active_first": series[0].active,
        "categories": categories,
        "none_chosen": none_chosen,
        "issues": list(reversed(issues)),
        "charts": charts,
    }
    return TemplateResponse(request, TEMPLATE, context)


@require_GET
def dashboard_chart_view(request: HttpRequest, name: str) -> HttpResponse:
    dashboard_permission_check(request)
    draw = DASHBOARD_CHARTS.get(name)
    if draw is None:
        raise Http404("No such chart.")
    return HttpResponse(draw(), content_type="image/png")


def urlpatterns(model_admin: Any) -> list[URLPattern]:
    """The charts' URLs, under the Digest admin (where they have always been)."""
    return [
        path(
            "dashboard/<slug:name>.png",
            model_admin.admin_site.admin_view(dashboard_chart_view),
            name="digests_digest_dashboard_chart",
        )
    ]
