"""The confirmation page: GET shows a button, POST confirms, every bad link gets a clear page."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from subscribers.models import Subscriber
from subscribers.tokens import Purpose

from .factories import path_of, subscriber_create

pytestmark = pytest.mark.django_db

Status = Subscriber.Status


def pending() -> Subscriber:
    return subscriber_create(email="reader@example.com", status=Status.PENDING)


def test_opening_the_link_shows_a_confirm_button_and_does_not_confirm(visitor: Client) -> None:
    subscriber = pending()

    page = visitor.get(path_of(subscriber, Purpose.CONFIRM))

    text = page.content.decode()
    assert page.status_code == 200
    assert '<form method="post">' in text
    assert "구독 확인하기</button>" in text
    assert "<strong>reader@example.com</strong>" in text
    subscriber.refresh_from_db()
    assert subscriber.status == Status.PENDING
    assert subscriber.confirmed_at is None


def test_a_link_scanner_opening_the_link_many_times_confirms_nothing(visitor: Client) -> None:
    subscriber = pending()
    path = path_of(subscriber, Purpose.CONFIRM)
    for _ in range(3):
        visitor.get(path)
        visitor.head(path)

    assert Subscriber.objects.get().status == Status.PENDING


def test_pressing_the_button_confirms_and_shows_the_preferences_link(visitor: Client) -> None:
    subscriber = pending()

    page = visitor.post(path_of(subscriber, Purpose.CONFIRM))

    text = page.content.decode()
    assert page.status_code == 200
    assert "구독이 확인되었습니다" in text
    assert 'href="/preferences/' in text
    subscriber.refresh_from_db()
    assert subscriber.status == Status.ACTIVE
    assert subscriber.confirmed_at is not None
    assert subscriber.consent_at is not None


def test_confirming_twice_is_harmless_and_says_already_confirmed(visitor: Client) -> None:
    subscriber = pending()
    path = path_of(subscriber, Purpose.CONFIRM)
    visitor.post(path)
    first = Subscriber.objects.get().confirmed_at

    again = visitor.post(path)
    opened = visitor.get(path)

    assert again.status_code == 200 and opened.status_code == 200
    assert "이미 확인된 구독입니다" in again.content.decode()
    assert "이미 확인된 구독입니다" in opened.content.decode()
    assert Subscriber.objects.get().confirmed_at == first


def test_the_confirm_page_is_in_the_readers_language_or_the_one_asked_for(
    visitor: Client,
) -> None:
    subscriber = subscriber_create(status=Status.PENDING, language="en")
    path = path_of(subscriber, Purpose.CONFIRM)

    assert "Confirm my subscription</button>" in visitor.get(path).content.decode()
    assert "구독 확인하기</button>" in visitor.get(path + "?lang=ko").content.decode()


def test_an_expired_link_gets_a_friendly_410_page_with_the_way_back(visitor: Client) -> None:
    subscriber = pending()
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        path = path_of(subscriber, Purpose.CONFIRM)
    with time_machine.travel(start + timedelta(days=8), tick=False):
        response = visitor.post(path)
        english = visitor.get(path + "?lang=en")

    text = response.content.decode()
    assert response.status_code == 410
    assert "링크가 만료되었습니다" in text
    assert "다시 신청하시면 새 링크를 보내 드립니다" in text
    assert 'href="/subscribe/?lang=ko"' in text
    assert "This link has expired" in english.content.decode()
    assert Subscriber.objects.get().status == Status.PENDING


@pytest.mark.parametrize(
    "path",
    [
        "/subscribe/confirm/garbage/",
        "/subscribe/confirm/a:b:c/",
        "/subscribe/confirm/" + "x" * 3000 + "/",
        "/subscribe/confirm/%00/",
        "/subscribe/confirm/%F0%9F%98%80/",
    ],
)
def test_a_forged_link_gets_a_clear_400_page_not_an_error(visitor: Client, path: str) -> None:
    pending()
    for response in (visitor.get(path), visitor.post(path)):
        assert response.status_code == 400
        assert "이 링크는 사용할 수 없습니다" in response.content.decode()
    assert Subscriber.objects.get().status == Status.PENDING


def test_a_preferences_or_unsubscribe_token_cannot_confirm(visitor: Client) -> None:
    subscriber = pending()
    for purpose in (Purpose.PREFERENCES, Purpose.UNSUBSCRIBE):
        token = path_of(subscriber, purpose).rstrip("/").rsplit("/", 1)[1]
        response = visitor.post(f"/subscribe/confirm/{token}/")
        assert response.status_code == 400
    assert Subscriber.objects.get().status == Status.PENDING


def test_a_suppressed_address_cannot_be_confirmed_by_an_old_link(visitor: Client) -> None:
    subscriber = subscriber_create(status=Status.BOUNCED)

    response = visitor.post(path_of(subscriber, Purpose.CONFIRM))

    assert response.status_code == 400
    assert Subscriber.objects.get().status == Status.BOUNCED


def test_the_confirm_button_needs_the_csrf_token_of_its_page(strict_visitor: Client) -> None:
    path = path_of(pending(), Purpose.CONFIRM)

    assert strict_visitor.post(path).status_code == 403
    assert Subscriber.objects.get().status == Status.PENDING

    token = strict_visitor.get(path).context["csrf_token"]
    assert strict_visitor.post(path, {"csrfmiddlewaretoken": token}).status_code == 200
    assert Subscriber.objects.get().status == Status.ACTIVE


def test_the_confirm_page_is_not_cached(visitor: Client) -> None:
    response = visitor.get(path_of(pending(), Purpose.CONFIRM))

    assert "no-cache" in response["Cache-Control"]
    assert "private" in response["Cache-Control"]
