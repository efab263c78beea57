"""The admin speaks the editor's chosen language.

An editor chooses it with the selector in the admin's header (Django's `set_language` view,
which keeps the choice in the language cookie); without a choice the admin speaks the editors'
language (EDITOR_LANGUAGE, default LANGUAGE_CODE), whatever the browser asks for, so every
editor sees the same admin by default.
The public pages choose their own language (`?lang=`, the reader's own) and are left alone.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import translation


def editor_language(request: HttpRequest) -> str:
    """The language cookie's value when the site offers it, else EDITOR_LANGUAGE, else
    LANGUAGE_CODE."""
    offered = {code for code, _name in settings.LANGUAGES}
    for language in (
        request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME, ""),
        settings.EDITOR_LANGUAGE,
    ):
        if language in offered:
            return language
    return settings.LANGUAGE_CODE


class AdminLanguageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(reverse("admin:index")):
            return self.get_response(request)
        language = editor_language(request)
        with translation.override(language):
            response = self.get_response(request)
        response.headers.setdefault("Content-Language", language)
        return response
