"""One-click unsubscribe (RFC 8058) and the unsubscribe page."""

from __future__ import annotations

import pytest
from django.test import Client

from subscribers.emails import personal_links, unsubscribe_headers
from subscribers.models import Subscriber
from subscribers.tokens import Purpose

from .factories import path_of, subscriber_create

pytestmark = pytest.mark.django_db

Status = Subscriber.Status
ONE_CLICK = "List-Unsubscribe=One-Click"


def one_click(client: Client, path: str) -> int:
    """POST as a mail provider sends it: form-encoded, no cookie, no CSRF token."""
    response = client.post(path, ONE_CLICK, content_type="application/x-www-form-urlencoded")
    return response.status_code


def test_a_one_click_post_without_cookie_or_csrf_token_unsubscribes(
    strict_visitor: Client, settings: object
) -> None:
    subscriber = subscriber_create()
    header = unsubscribe_headers(personal_links(subscriber)["unsubscribe_url"])["List-Unsubscribe"]
    path = "/" + header.strip("<>").split("://", 1)[1].split("/", 1)[1]

    assert one_click(strict_visitor, path) == 200

    subscriber.refresh_from_db()
    assert subscriber.status == Status.UNSUBSCRIBED
    assert subscriber.unsubscribed_at is not None
    assert not strict_visitor.cookies


def test_a_one_click_post_sets_no_cookie(visitor: Client) -> None:
    subscriber = subscriber_create()

    response = visitor.post(
        path_of(subscriber, Purpose.UNSUBSCRIBE),
        ONE_CLICK,
        content_type="application/x-www-form-urlencoded",
    )

    assert response.cookies == {}


def test_opening_the_unsubscribe_link_asks_first_and_changes_nothing(visitor: Client) -> None:
    subscriber = subscriber_create(email="reader@example.com")

    page = visitor.get(path_of(subscriber, Purpose.UNSUBSCRIBE))

    text = page.content.decode()
    assert page.status_code == 200
    assert "<strong>reader@example.com</strong>(으)로 Daily AI Insights 발송을 멈출까요?" in text
    assert '<form method="post">' in text and "구독 해지</button>" in text
    assert 'href="/preferences/' in text
    assert Subscriber.objects.get().status == Status.ACTIVE


def test_the_unsubscribe_button_works_without_a_csrf_token(strict_visitor: Client) -> None:
    subscriber = subscriber_create(language="en")
    path = path_of(subscriber, Purpose.UNSUBSCRIBE)
    assert "Stop sending Daily AI Insights" in strict_visitor.get(path).content.decode()

    page = strict_visitor.post(path, {"confirm": "yes"})

    assert page.status_code == 200
    assert "You are unsubscribed" in page.content.decode()
    assert Subscriber.objects.get().status == Status.UNSUBSCRIBED


def test_unsubscribing_twice_is_harmless(visitor: Client) -> None:
    subscriber = subscriber_create()
    path = path_of(subscriber, Purpose.UNSUBSCRIBE)
    one_click(visitor, path)
    first = Subscriber.objects.get().unsubscribed_at

    assert one_click(visitor, path) == 200
    page = visitor.get(path)

    assert "구독이 해지되었습니다" in page.content.decode()
    assert "다시 구독하기" in page.content.decode()
    assert Subscriber.objects.get().unsubscribed_at == first


@pytest.mark.parametrize("status", [Status.BOUNCED, Status.COMPLAINED])
def test_a_suppressed_address_keeps_its_stronger_status(visitor: Client, status: str) -> None:
    subscriber = subscriber_create(status=status)

    assert one_click(visitor, path_of(subscriber, Purpose.UNSUBSCRIBE)) == 200

    assert Subscriber.objects.get().status == status


def test_a_pending_address_can_unsubscribe_too(visitor: Client) -> None:
    subscriber = subscriber_create(status=Status.PENDING)

    one_click(visitor, path_of(subscriber, Purpose.UNSUBSCRIBE))

    assert Subscriber.objects.get().status == Status.UNSUBSCRIBED


@pytest.mark.parametrize("purpose", [Purpose.CONFIRM, Purpose.PREFERENCES])
def test_another_purposes_token_cannot_unsubscribe(visitor: Client, purpose: Purpose) -> None:
    subscriber = subscriber_create()
    token = path_of(subscriber, purpose).rstrip("/").rsplit("/", 1)[1]

    response = visitor.post(f"/unsubscribe/{token}/", ONE_CLICK, content_type="text/plain")

    assert response.status_code == 400
    assert "이 링크는 사용할 수 없습니다" in response.content.decode()
    assert Subscriber.objects.get().status == Status.ACTIVE


def test_a_forged_unsubscribe_link_changes_nothing(visitor: Client) -> None:
    subscriber_create()

    assert one_click(visitor, "/unsubscribe/forged.token:abc:def/") == 400
    assert Subscriber.objects.get().status == Status.ACTIVE


def test_odd_bodies_on_the_one_click_endpoint_do_not_fail(visitor: Client) -> None:
    subscriber = subscriber_create()
    path = path_of(subscriber, Purpose.UNSUBSCRIBE)
    for body, content_type in [
        (b"\xff\xfe\x00", "application/x-www-form-urlencoded"),
        (b"List-Unsubscribe=One-Click&List-Unsubscribe=x", "application/x-www-form-urlencoded"),
        (b"{}", "application/json"),
        (b"", "multipart/form-data; boundary=x"),
    ]:
        assert visitor.post(path, body, content_type=content_type).status_code < 500
    assert visitor.put(path).status_code == 405
