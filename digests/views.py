from __future__ import annotations

from datetime import date

from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404

from .models import Digest


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"ok": True})


def digest_chart(request: HttpRequest, day: str) -> HttpResponse:
    """The category chart of one issue, for the web version and the admin."""
    try:
        when = date.fromisoformat(day)
    except ValueError:
        raise Http404("not a date") from None
    digest = get_object_or_404(Digest, date=when)
    if not digest.chart_png:
        raise Http404("no chart")
    response = HttpResponse(bytes(digest.chart_png), content_type="image/png")
    response["Cache-Control"] = "public, max-age=3600"
    return response
