"""System checks for the readers' side: webhooks that anyone on the web could post to.

They run only with DEBUG off, like the digests checks: the development default sends no email
and receives no webhooks.
"""

from __future__ import annotations

from typing import Any

from anymail.utils import get_anymail_setting
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from .channels.telegram_bot import SECRET_TOKEN


def check_webhook_security(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if settings.DEBUG or not settings.EMAIL_BACKEND.startswith("anymail."):
        return []
    return [*_check_webhook_secret(), *_check_mailgun_signing(), *_check_sendgrid_signing()]


def _webhook_secrets() -> list[str]:
    secret = get_anymail_setting("webhook_secret", default=None)
    if isinstance(secret, str):
        return [secret] if secret else []
    return list(secret or [])


def _check_webhook_secret() -> list[CheckMessage]:
    secrets = _webhook_secrets()
    if not secrets:
        return [
            Error(
                f"EMAIL_BACKEND is {settings.EMAIL_BACKEND} but ANYMAIL WEBHOOK_SECRET is "
                "empty: anyone could post forged bounces and complaints to /anymail/ and "
                "suppress readers.",
                hint="Set ANYMAIL_WEBHOOK_SECRET to 'random:random' and put it in the webhook "
                "URLs at the ESP: https://random:random@news.example.com/anymail/<esp>/tracking/",
                id="subscribers.E001",
            )
        ]
    if not all(":" in secret for secret in secrets):
        return [
            Error(
                "ANYMAIL WEBHOOK_SECRET has no ':': it must be 'user:password' as sent in the "
                "webhook URL's basic auth, or every webhook post is rejected.",
                hint="Set ANYMAIL_WEBHOOK_SECRET to 'random:random'.",
                id="subscribers.E002",
            )
        ]
    return []


def _check_mailgun_signing() -> list[CheckMessage]:
    if settings.EMAIL_BACKEND != "anymail.backends.mailgun.EmailBackend":
        return []
    if get_anymail_setting("webhook_signing_key", esp_name="Mailgun", default=None):
        return []
    return [
        Warning(
            "ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY is empty: anymail then checks Mailgun's webhook "
            "signatures with the API key, and Mailgun signs with a separate key, so every bounce "
            "and complaint would be refused.",
            hint="Copy the 'HTTP webhook signing key' from Mailgun's dashboard.",
            id="subscribers.W002",
        )
    ]


def _check_sendgrid_signing() -> list[CheckMessage]:
    if settings.EMAIL_BACKEND != "anymail.backends.sendgrid.EmailBackend":
        return []
    key = get_anymail_setting(
        "tracking_webhook_verification_key", esp_name="SendGrid", default=None, allow_bare=True
    )
    if key:
        return []
    return [
        Warning(
            "SendGrid's signed event webhook is not verified: "
            "ANYMAIL_SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY is empty.",
            hint="Enable the signed event webhook at SendGrid and set its public key "
            "(needs the cryptography package).",
            id="subscribers.W001",
        )
    ]


def check_rate_limit_cache(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Signup rate limits count in the cache: a per-process cache lets each worker count alone."""
    backend = settings.CACHES["default"]["BACKEND"]
    if settings.DEBUG or "locmem" not in backend.lower():
        return []
    return [
        Warning(
            "The cache is per process (LocMemCache): each gunicorn worker counts signups on its "
            "own, so the signup rate limits are several times looser than configured.",
            hint="Set REDIS_CACHE_URL, e.g. redis://redis:6379/1.",
            id="subscribers.W003",
        )
    ]


def check_smtp_relay(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """An SMTP relay set up in a way that cannot work (checked in development too: the error
    would otherwise come only at the first send)."""
    if settings.EMAIL_BACKEND != "django.core.mail.backends.smtp.EmailBackend":
        return []
    if settings.EMAIL_USE_TLS and settings.EMAIL_USE_SSL:
        return [
            Error(
                "EMAIL_USE_TLS and EMAIL_USE_SSL are both on: a relay speaks one or the other.",
                hint="EMAIL_USE_TLS=true for STARTTLS (usually port 587), or EMAIL_USE_SSL=true "
                "for implicit TLS (port 465).",
                id="subscribers.E003",
            )
        ]
    return []


# Registered here (checks.py is imported by SubscribersConfig.ready), in development too: a bot
# whose webhook has no secret would act on updates anyone can post.
@register()
def check_telegram_webhook_secret(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if not settings.TELEGRAM_BOT_TOKEN:
        return []
    secret = settings.TELEGRAM_WEBHOOK_SECRET or ""
    if not secret:
        return [
            Warning(
                "TELEGRAM_BOT_TOKEN is set but TELEGRAM_WEBHOOK_SECRET is empty: the bot's "
                "webhook (/telegram/webhook/) refuses every update, since without a secret "
                "anyone could post forged commands to it.",
                hint="Set TELEGRAM_WEBHOOK_SECRET to a random string of A-Z, a-z, 0-9, _ and - "
                "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'), then run "
                "manage.py telegram_webhook --url https://<your site>.",
                id="subscribers.W004",
            )
        ]
    if not SECRET_TOKEN.match(secret):
        return [
            Warning(
                "TELEGRAM_WEBHOOK_SECRET has characters Telegram does not allow in a secret "
                "token (only A-Z, a-z, 0-9, _ and -, 1-256 of them): setWebhook will refuse it.",
                hint="python -c 'import secrets; print(secrets.token_urlsafe(32))'",
                id="subscribers.W005",
            )
        ]
    return []
