"""Preview, test send, approve and cancel from the admin. (Stub: filled in by the workflow work.)"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import URLPattern

from digests.models import Digest


def urlpatterns(model_admin: Any) -> list[URLPattern]:
    return []


def workflow_context(request: HttpRequest, digest: Digest) -> dict[str, Any]:
    return {}
