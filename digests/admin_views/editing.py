"""The summary editor's live preview: Markdown in, the sanitised HTML readers will see out."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, JsonResponse
from django.urls import URLPattern, path
from django.views.decorators.http import require_POST

from digests.markdown import markdown_html

# A summary is a few thousand characters; this bounds what one request makes the server render.
PREVIEW_MAX_CHARS = 100_000


def urlpatterns(model_admin: Any) -> list[URLPattern]:
    @require_POST
    def markdown_preview(request: HttpRequest) -> JsonResponse:
        if not model_admin.has_view_permission(request):
            raise PermissionDenied
        text = request.POST.get("text", "")
        if len(text) > PREVIEW_MAX_CHARS:
            return JsonResponse(
                {"error": f"The text is longer than {PREVIEW_MAX_CHARS} characters."}, status=400
            )
        return JsonResponse({"html": markdown_html(text=text)})

    return [
        path(
            "markdown-preview/",
            model_admin.admin_site.admin_view(markdown_preview),
            name="digests_digest_markdown_preview",
        )
    ]
