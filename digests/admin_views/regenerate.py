"""Regenerating a section's summary from the admin. (Stub: filled in by the regeneration work.)"""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern
from django.utils.safestring import SafeString, mark_safe

from digests.models import DigestSection


def urlpatterns(model_admin: Any) -> list[URLPattern]:
    return []


def section_tools_html(section: DigestSection) -> SafeString:
    return mark_safe("")
