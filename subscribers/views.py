"""The reader's pages. Thin: read the request, call a service, render a template.

The page language is `?lang=ko|en` when given, else the reader's own language on pages reached by
a signed link, else LANGUAGE_CODE (Korean). Every page links to the other language.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from .channel_views import CHANNEL_ACTIONS, team_chats_context, team_chats_post
from .forms import PreferencesForm, SignupForm
from .models import Subscriber
from .ratelimit import client_ip, ratelimit_hit
from .services import (
    LANGUAGE_CODES,
    subscriber_confirm,
    subscriber_delete,
    subscriber_export,
    subscriber_preferences_update,
    subscriber_signup,
    subscriber_unsubscribe,
)
from .tasks import signup_email_enqueue
from .tokens import Purpose, TokenError, TokenExpired, token_make, token_read

Status = Subscriber.Status


def page_language(request: HttpRequest, subscriber: Subscriber | None = None) -> str:
    requested = request.GET.get("lang", "")
    if requested in LANGUAGE_CODES:
        return requested
    if subscriber is not None and subscriber.language in LANGUAGE_CODES:
        return subscriber.language
    return settings.LANGUAGE_CODE


def page(
    request: HttpRequest,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    language: str,
    status: int = 200,
) -> HttpResponse:
    with translation.override(language):
        response = render(
            request,
            f"subscribers/{template}",
            {"lang": language, **keyword_limits(), **(context or {})},
            status=status,
        )
    response["Content-Language"] = language
    return response


def keyword_limits() -> dict[str, int]:
    """For the keyword fields' hint (subscribers/_choices.html)."""
    return {
        "keywords_max": settings.KEYWORDS_MAX,
        "keyword_max_chars": settings.KEYWORD_MAX_CHARS,
    }


def with_lang(url: str, language: str) -> str:
    return f"{url}?lang={language}"


def link_error_page(request: HttpRequest, error: TokenError, purpose: Purpose) -> HttpResponse:
    expired = isinstance(error, TokenExpired)
    return page(
        request,
        "link_error.html",
        {"expired": expired, "purpose": purpose.value},
        language=page_language(request),
        status=410 if expired else 400,
    )


def subscriber_links(subscriber: Subscriber) -> dict[str, str]:
    preferences = token_make(subscriber=subscriber, purpose=Purpose.PREFERENCES)
    return {
        "preferences_url": reverse("subscribers:preferences", args=[preferences]),
        "unsubscribe_url": reverse(
            "subscribers:unsubscribe",
            args=[token_make(subscriber=subscriber, purpose=Purpose.UNSUBSCRIBE)],
        ),
        "data_url": reverse("subscribers:data-export", args=[preferences]),
        "delete_url": reverse("subscribers:delete", args=[preferences]),
    }


# --- Signup ---------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def subscribe(request: HttpRequest) -> HttpResponse:
    language = page_language(request)
    if request.method != "POST":
        form = SignupForm(initial={"language": language})
        return page(request, "subscribe.html", {"form": form}, language=language)
    ip = client_ip(request)
    if not ratelimit_hit(
        scope="signup-ip", key=ip or "unknown", limit=settings.SIGNUP_RATE_LIMIT_PER_IP
    ):
        response = page(request, "rate_limited.html", language=language, status=429)
        response["Retry-After"] = "3600"
        return response
    form = SignupForm(request.POST)
    check_inbox = with_lang(reverse("subscribers:check-inbox"), language)
    if form.is_robot():
        return HttpResponseRedirect(check_inbox)
    with translation.override(language):
        valid = form.is_valid()
    if not valid:
        return page(request, "subscribe.html", {"form": form}, language=language)
    email_due = subscriber_signup(
        email=form.cleaned_data["email"],
        categories=form.cleaned_data["categories"],
        # The language chosen; with one offered (no choice), the page's, as before.
        language=form.cleaned_data.get("language") or language,
        source=settings.SITE_URL + reverse("subscribers:subscribe"),
        ip=ip,
        choice=form.reader_choice(),
    )
    signup_email_enqueue(email_due)
    return HttpResponseRedirect(check_inbox)


@require_GET
def check_inbox(request: HttpRequest) -> HttpResponse:
    return page(
        request,
        "check_inbox.html",
        {"max_age_days": settings.CONFIRM_TOKEN_MAX_AGE_DAYS},
        language=page_language(request),
    )


# --- Confirm --------------------------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    """GET only shows a button, so link scanners that open the link confirm nothing."""
    try:
        subscriber = token_read(token=token, purpose=Purpose.CONFIRM)
    except TokenError as error:
        return link_error_page(request, error, Purpose.CONFIRM)
    language = page_language(request, subscriber)
    if subscriber.status not in (Status.PENDING, Status.ACTIVE):
        # Left or suppressed since: this link must not bring them back.
        return link_error_page(request, TokenError("no longer pending"), Purpose.CONFIRM)
    if subscriber.status == Status.ACTIVE:
        state = "already"
    elif request.method == "POST":
        state = "done" if subscriber_confirm(subscriber=subscriber) else "already"
    else:
        state = "ask"
    context = {"state": state, "subscriber": subscriber, **subscriber_links(subscriber)}
    return page(request, "confirm.html", context, language=language)


# --- Preferences ----------------------------------------------------------------------------------


def preferences_context(subscriber: Subscriber, form: PreferencesForm) -> dict[str, Any]:
    return {
        "subscriber": subscriber,
        "form": form,
        "can_choose": subscriber.status in (Status.PENDING, Status.ACTIVE),
        **subscriber_links(subscriber),
    }


def preferences_form_initial(subscriber: Subscriber) -> PreferencesForm:
    return PreferencesForm(
        initial={
            "categories": list(subscriber.categories.values_list("pk", flat=True)),
            "language": subscriber.language,
            "keywords_include": subscriber.keywords_include,
            "keywords_exclude": subscriber.keywords_exclude,
            "keywords_all_categories": subscriber.keywords_all_categories,
            "cadence": subscriber.cadence,
        }
    )


@never_cache
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    try:
        subscriber = token_read(token=token, purpose=Purpose.PREFERENCES)
    except TokenError as error:
        return link_error_page(request, error, Purpose.PREFERENCES)
    language = page_language(request, subscriber)
    action = request.POST.get("action", "") if request.method == "POST" else ""
    notice = ""
    form = preferences_form_initial(subscriber)
    chats: dict[str, Any] | None = None
    if action == "unsubscribe":
        subscriber_unsubscribe(subscriber=subscriber, source="preferences")
        notice = "unsubscribed"
    elif action == "save" and subscriber.status in (Status.PENDING, Status.ACTIVE):
        form = PreferencesForm(request.POST)
        with translation.override(language):
            valid = form.is_valid()
        if valid:
            subscriber_preferences_update(
                subscriber=subscriber,
                categories=form.cleaned_data["categories"],
                language=form.cleaned_data.get("language") or None,
                choice=form.reader_choice(),
            )
            notice = "saved"
            language = page_language(request, subscriber)
            form = preferences_form_initial(subscriber)
    elif action in CHANNEL_ACTIONS and subscriber.status in (Status.PENDING, Status.ACTIVE):
        with translation.override(language):
            chats = team_chats_post(request, subscriber, action)
    context = {
        "notice": notice,
        **preferences_context(subscriber, form),
        **(chats or team_chats_context(subscriber)),
    }
    return page(request, "preferences.html", context, language=language)


@never_cache
@require_GET
def data_export(request: HttpRequest, token: str) -> HttpResponse:
    try:
        subscriber = token_read(token=token, purpose=Purpose.PREFERENCES)
    except TokenError as error:
        return link_error_page(request, error, Purpose.PREFERENCES)
    body = json.dumps(subscriber_export(subscriber=subscriber), ensure_ascii=False, indent=2)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="daily-ai-insights-my-data.json"'
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def delete(request: HttpRequest, token: str) -> HttpResponse:
    """GET asks "are you sure?"; only the POST of that question deletes."""
    try:
        subscriber = token_read(token=token, purpose=Purpose.PREFERENCES)
    except TokenError as error:
        return link_error_page(request, error, Purpose.PREFERENCES)
    language = page_language(request, subscriber)
    if request.method == "POST":
        subscriber_delete(subscriber=subscriber)
        return page(request, "deleted.html", language=language)
    context = {"subscriber": subscriber, **subscriber_links(subscriber)}
    return page(request, "delete.html", context, language=language)


# --- Unsubscribe ----------------------------------------------------------------------------------


# RFC 8058: mail providers POST with no cookie or CSRF token; the signed token decides.
@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        subscriber = token_read(token=token, purpose=Purpose.UNSUBSCRIBE)
    except TokenError as error:
        return link_error_page(request, error, Purpose.UNSUBSCRIBE)
    language = page_language(request, subscriber)
    if request.method == "POST":
        subscriber_unsubscribe(
            subscriber=subscriber, source=one_click_source(request.POST.get("List-Unsubscribe"))
        )
    state = "ask" if subscriber.status in (Status.PENDING, Status.ACTIVE) else "done"
    context = {"state": state, "subscriber": subscriber, **subscriber_links(subscriber)}
    return page(request, "unsubscribe.html", context, language=language)


def one_click_source(body_value: str | None) -> str:
    return "one-click" if body_value == "One-Click" else "unsubscribe-page"
