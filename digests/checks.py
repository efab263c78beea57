"""System checks that catch a production configuration that would quietly misbehave.

They run with every management command that checks (migrate, check, runserver) and only when
DEBUG is off: the development defaults (email to files, eager Celery, offline LLM fallbacks,
localhost links) are deliberate there.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

LOCAL_EMAIL_BACKENDS = {
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
}
# Hosts that mean "this machine" to whoever opens the link.
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}  # noqa: S104


def check_production_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if settings.DEBUG:
        return []
    return [
        *_check_email_backend(),
        *_check_celery_broker(),
        *_check_openai_key(),
        *_check_site_url(),
    ]


def _check_email_backend() -> list[CheckMessage]:
    if settings.EMAIL_BACKEND not in LOCAL_EMAIL_BACKENDS:
        return []
    return [
        Warning(
            f"EMAIL_BACKEND is {settings.EMAIL_BACKEND}: no email leaves this machine.",
            hint="Set EMAIL_BACKEND to an anymail backend and its ANYMAIL_* keys (.env.example).",
            id="digests.W001",
        )
    ]


def _check_celery_broker() -> list[CheckMessage]:
    if settings.CELERY_BROKER_URL:
        return []
    return [
        Error(
            "CELERY_BROKER_URL is empty: tasks would run eagerly inside web requests and the "
            "beat schedule would never fire.",
            hint="Set CELERY_BROKER_URL, e.g. redis://redis:6379/0.",
            id="digests.E001",
        )
    ]


def _check_openai_key() -> list[CheckMessage]:
    if settings.OPENAI_API_KEY:
        return []
    return [
        Warning(
            "OPENAI_API_KEY is empty: papers are sorted by keyword rules and sections get "
            "extractive summaries (the offline fallbacks).",
            hint="Set OPENAI_API_KEY (and OPENAI_BASE_URL for another OpenAI-compatible server).",
            id="digests.W002",
        )
    ]


def _check_site_url() -> list[CheckMessage]:
    host = urlsplit(settings.SITE_URL).hostname or ""
    if host not in LOCAL_HOSTS:
        return []
    return [
        Error(
            f"SITE_URL is {settings.SITE_URL}: links in emails (confirm, preferences, "
            "unsubscribe, the web version) would point at the reader's own machine.",
            hint="Set SITE_URL to the public address, e.g. https://news.example.com.",
            id="digests.E002",
        )
    ]
