"""Signed links: scoped by purpose, bound to one row and address, expiring."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core import signing
from django.utils import timezone

from subscribers.emails import list_headers, personal_links, unsubscribe_headers
from subscribers.models import Subscriber, new_nonce
from subscribers.tokens import (
    Purpose,
    TokenError,
    TokenExpired,
    TokenInvalid,
    token_make,
    token_read,
    token_url,
)

from .factories import subscriber_create

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("purpose", list(Purpose))
def test_a_token_names_its_subscriber_for_its_purpose(purpose: Purpose) -> None:
    subscriber = subscriber_create()

    token = token_make(subscriber=subscriber, purpose=purpose)

    assert token_read(token=token, purpose=purpose) == subscriber
    assert subscriber.email not in token


@pytest.mark.parametrize("made_for", list(Purpose))
@pytest.mark.parametrize("used_for", list(Purpose))
def test_a_token_for_one_purpose_fails_for_another(made_for: Purpose, used_for: Purpose) -> None:
    if made_for == used_for:
        return
    token = token_make(subscriber=subscriber_create(), purpose=made_for)

    with pytest.raises(TokenInvalid):
        token_read(token=token, purpose=used_for)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: "x" + t,
        lambda t: t.split(":")[0],
        lambda t: "",
        lambda t: "a" * 5000,
        lambda t: "not:a:token",
        lambda t: t.replace(":", "%3A"),
    ],
)
def test_a_tampered_token_is_invalid(tamper: Any) -> None:
    token = token_make(subscriber=subscriber_create(), purpose=Purpose.PREFERENCES)

    with pytest.raises(TokenInvalid):
        token_read(token=tamper(token), purpose=Purpose.PREFERENCES)


def test_a_token_signed_with_another_key_or_forged_payload_is_invalid(settings: Any) -> None:
    subscriber = subscriber_create()
    forged = signing.dumps([subscriber.pk, "0" * 16, ""], salt="subscribers.tokens.preferences")
    with pytest.raises(TokenInvalid):
        token_read(token=forged, purpose=Purpose.PREFERENCES)

    settings.SECRET_KEY = "another-key-entirely-another-key-entirely"
    other_key = token_make(subscriber=subscriber, purpose=Purpose.PREFERENCES)
    settings.SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"
    with pytest.raises(TokenInvalid):
        token_read(token=other_key, purpose=Purpose.PREFERENCES)


def test_the_confirm_token_expires_after_its_days(settings: Any) -> None:
    settings.CONFIRM_TOKEN_MAX_AGE_DAYS = 7
    subscriber = subscriber_create(status=Subscriber.Status.PENDING)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        token = token_make(subscriber=subscriber, purpose=Purpose.CONFIRM)
    with time_machine.travel(start + timedelta(days=6, hours=23), tick=False):
        assert token_read(token=token, purpose=Purpose.CONFIRM) == subscriber
    with (
        time_machine.travel(start + timedelta(days=7, minutes=1), tick=False),
        pytest.raises(TokenExpired),
    ):
        token_read(token=token, purpose=Purpose.CONFIRM)


def test_preference_and_unsubscribe_tokens_last_a_year(settings: Any) -> None:
    settings.PREFERENCES_TOKEN_MAX_AGE_DAYS = 365
    subscriber = subscriber_create()
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        tokens = {p: token_make(subscriber=subscriber, purpose=p) for p in Purpose}
    with time_machine.travel(start + timedelta(days=300), tick=False):
        assert token_read(token=tokens[Purpose.UNSUBSCRIBE], purpose=Purpose.UNSUBSCRIBE)
        with pytest.raises(TokenExpired):
            token_read(token=tokens[Purpose.CONFIRM], purpose=Purpose.CONFIRM)
    with time_machine.travel(start + timedelta(days=366), tick=False):
        for purpose in (Purpose.PREFERENCES, Purpose.UNSUBSCRIBE):
            with pytest.raises(TokenExpired):
                token_read(token=tokens[purpose], purpose=purpose)


def test_expired_and_invalid_are_both_token_errors() -> None:
    assert issubclass(TokenExpired, TokenError)
    assert issubclass(TokenInvalid, TokenError)


def test_a_token_fails_once_the_row_is_deleted_and_the_address_signs_up_again() -> None:
    subscriber = subscriber_create(email="reader@example.com")
    token = token_make(subscriber=subscriber, purpose=Purpose.PREFERENCES)
    subscriber.delete()

    with pytest.raises(TokenInvalid):
        token_read(token=token, purpose=Purpose.PREFERENCES)
    subscriber_create(email="reader@example.com")
    with pytest.raises(TokenInvalid):
        token_read(token=token, purpose=Purpose.PREFERENCES)


def test_a_token_fails_when_the_address_of_its_row_changes() -> None:
    subscriber = subscriber_create(email="reader@example.com")
    token = token_make(subscriber=subscriber, purpose=Purpose.UNSUBSCRIBE)
    Subscriber.objects.filter(pk=subscriber.pk).update(email="someone.else@example.com")

    with pytest.raises(TokenInvalid):
        token_read(token=token, purpose=Purpose.UNSUBSCRIBE)


def test_a_new_confirm_nonce_kills_old_confirm_links_but_not_preference_links() -> None:
    subscriber = subscriber_create(status=Subscriber.Status.PENDING)
    confirm = token_make(subscriber=subscriber, purpose=Purpose.CONFIRM)
    preferences = token_make(subscriber=subscriber, purpose=Purpose.PREFERENCES)
    Subscriber.objects.filter(pk=subscriber.pk).update(confirm_nonce=new_nonce())

    with pytest.raises(TokenInvalid):
        token_read(token=confirm, purpose=Purpose.CONFIRM)
    assert token_read(token=preferences, purpose=Purpose.PREFERENCES) == subscriber


def test_token_urls_are_absolute_on_the_site(settings: Any) -> None:
    settings.SITE_URL = "https://news.example.com"
    subscriber = subscriber_create()

    url = token_url(subscriber=subscriber, purpose=Purpose.PREFERENCES)

    assert url.startswith("https://news.example.com/preferences/")
    token = url.removeprefix("https://news.example.com/preferences/").rstrip("/")
    assert token_read(token=token, purpose=Purpose.PREFERENCES) == subscriber


def test_the_list_unsubscribe_headers_offer_one_click_by_https(settings: Any) -> None:
    settings.SITE_URL = "https://news.example.com"
    settings.LIST_ID = "Daily AI Insights <daily.news.example.com>"
    subscriber = subscriber_create()

    headers = unsubscribe_headers(personal_links(subscriber)["unsubscribe_url"])

    assert set(headers) == {"List-Unsubscribe", "List-Unsubscribe-Post"}
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = headers["List-Unsubscribe"]
    assert url.startswith("<https://news.example.com/unsubscribe/") and url.endswith("/>")
    token = url.removeprefix("<https://news.example.com/unsubscribe/").removesuffix("/>")
    assert token_read(token=token, purpose=Purpose.UNSUBSCRIBE) == subscriber
    assert (
        list_headers(personal_links(subscriber)["unsubscribe_url"])["List-Id"] == settings.LIST_ID
    )


@pytest.mark.django_db
def test_a_token_can_be_made_with_the_purpose_as_a_plain_string() -> None:
    subscriber = Subscriber.objects.create(email="plain@example.com")

    token = token_make(subscriber=subscriber, purpose="unsubscribe")

    assert token_read(token=token, purpose=Purpose.UNSUBSCRIBE) == subscriber
