"""Every email to a reader is built here, from templates under templates/subscribers/email/,
in the reader's language, with absolute links (SITE_URL), From DEFAULT_FROM_EMAIL."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext

from .models import Subscriber
from .services import language_or_default
from .tokens import Purpose, token_url


def _message_build(
    *, subscriber: Subscriber, template: str, subject: str, context: dict[str, Any]
) -> EmailMultiAlternatives:
    context = {"subscriber_email": subscriber.email, "site_url": settings.SITE_URL, **context}
    text = render_to_string(f"subscribers/email/{template}.txt", context)
    html = render_to_string(f"subscribers/email/{template}.html", context)
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[subscriber.email],
    )
    message.attach_alternative(html, "text/html")
    return message


def confirmation_email_send(*, subscriber: Subscriber) -> None:
    """The double opt-in email: one signed link, valid CONFIRM_TOKEN_MAX_AGE_DAYS."""
    with translation.override(language_or_default(subscriber.language)):
        message = _message_build(
            subscriber=subscriber,
            template="confirm",
            subject=gettext("Confirm your subscription to Daily AI Insights"),
            context={
                "confirm_url": token_url(subscriber=subscriber, purpose=Purpose.CONFIRM),
                "max_age_days": settings.CONFIRM_TOKEN_MAX_AGE_DAYS,
                "categories": [c.name for c in subscriber.categories.order_by("position")],
            },
        )
    message.send()
    now = timezone.now()
    Subscriber.objects.filter(pk=subscriber.pk).update(confirmation_sent_at=now)
    subscriber.confirmation_sent_at = now


def already_subscribed_email_send(*, subscriber: Subscriber) -> None:
    """The answer to a signup of an address that is already active: nothing changes, here is
    the link to change things yourself."""
    with translation.override(language_or_default(subscriber.language)):
        message = _message_build(
            subscriber=subscriber,
            template="already_subscribed",
            subject=gettext("You are already subscribed to Daily AI Insights"),
            context={
                "preferences_url": token_url(subscriber=subscriber, purpose=Purpose.PREFERENCES),
            },
        )
    message.send()
