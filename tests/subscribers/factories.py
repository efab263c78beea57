"""Readers in a given state, and helpers that read what a person sees."""

from __future__ import annotations

import itertools
import re
from typing import Any

from django.core import mail
from django.utils import timezone

from digests.models import Category
from subscribers.models import Subscriber
from subscribers.tokens import Purpose, token_make

_numbers = itertools.count(1)


def subscriber_create(
    *,
    email: str | None = None,
    status: str = Subscriber.Status.ACTIVE,
    language: str = "ko",
    categories: list[Category] | None = None,
    **fields: Any,
) -> Subscriber:
    email = email or f"reader{next(_numbers)}@example.com"
    if status == Subscriber.Status.ACTIVE:
        fields.setdefault("confirmed_at", timezone.now())
        fields.setdefault("consent_at", timezone.now())
    subscriber = Subscriber.objects.create(email=email, status=status, language=language, **fields)
    chosen = categories if categories is not None else list(Category.objects.filter(active=True))
    subscriber.categories.set(chosen)
    return subscriber


def active_category_ids() -> list[str]:
    return [str(pk) for pk in Category.objects.filter(active=True).values_list("pk", flat=True)]


def signup_data(email: str = "new.reader@example.com", **extra: Any) -> dict[str, Any]:
    return {"email": email, "categories": active_category_ids(), "homepage": "", **extra}


def path_of(subscriber: Subscriber, purpose: Purpose) -> str:
    token = token_make(subscriber=subscriber, purpose=purpose)
    prefix = {
        Purpose.CONFIRM: "/subscribe/confirm/",
        Purpose.PREFERENCES: "/preferences/",
        Purpose.UNSUBSCRIBE: "/unsubscribe/",
    }[purpose]
    return f"{prefix}{token}/"


def last_email() -> mail.EmailMultiAlternatives:
    message = mail.outbox[-1]
    assert isinstance(message, mail.EmailMultiAlternatives)
    return message


def html_of(message: mail.EmailMultiAlternatives) -> str:
    html = [content for content, mimetype in message.alternatives if mimetype == "text/html"]
    assert len(html) == 1
    return str(html[0])


LINK = re.compile(r"https?://[^\s\"<>]+")


def links_in(text: str) -> list[str]:
    return LINK.findall(text)


def site_path(url: str) -> str:
    """The path of an absolute link in an email, to open with the test client."""
    return "/" + url.split("://", 1)[1].split("/", 1)[1]
