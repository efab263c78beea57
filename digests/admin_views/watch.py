"""Deliveries of a digest and the dashboard. (Stub: filled in by the watch work.)"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern

from digests.models import Digest


def urlpatterns(model_admin: Any) -> list[URLPattern]:
    return []


def deliveries_context(request: HttpRequest, digest: Digest) -> dict[str, Any]:
    return {}


def dashboard_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("dashboard")
