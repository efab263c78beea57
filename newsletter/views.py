"""The project's own views: the health check of the whole service, and its fuller status."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext

from newsletter.status import healthy, status_parts


def healthz(request: HttpRequest) -> JsonResponse:
    """200 while the process serves requests and the database answers (Docker's HEALTHCHECK)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"ok": True})


@staff_member_required
def status(request: HttpRequest) -> TemplateResponse:
    """The parts `manage.py status` reports, for staff, inside the admin's frame."""
    parts = status_parts()
    context = {
        **admin.site.each_context(request),
        "title": gettext("Service status"),
        "parts": parts,
        "healthy": healthy(parts),
    }
    return TemplateResponse(request, "admin/status.html", context)
