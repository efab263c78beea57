"""The preferences page, reached by a signed link from every email and page: categories,
language, unsubscribe, my data, delete me."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from digests.models import Category
from subscribers.models import EmailEvent, Subscriber
from subscribers.tokens import Purpose

from .factories import path_of, subscriber_create

pytestmark = pytest.mark.django_db

Status = Subscriber.Status


def categories_ticked(text: str) -> int:
    """The category boxes ticked on a page (the cadence's radio buttons are not counted)."""
    return len(re.findall(r'name="categories" value="\d+" id="[^"]*" checked>', text))


def categories() -> list[Category]:
    return list(Category.objects.filter(active=True).order_by("position", "name"))


def reader(**fields: object) -> Subscriber:
    return subscriber_create(
        email="reader@example.com",
        categories=categories()[:2],
        **fields,  # type: ignore[arg-type]
    )


def test_the_page_shows_the_address_its_status_and_the_chosen_categories_ticked(
    visitor: Client,
) -> None:
    subscriber = reader()

    text = visitor.get(path_of(subscriber, Purpose.PREFERENCES)).content.decode()

    assert "<strong>reader@example.com</strong>의 구독 상태" in text
    assert "구독 중" in text
    assert categories_ticked(text) == 2
    for category in categories()[:2]:
        assert f'value="{category.pk}" id="id_categories_' in text
    assert "내 데이터 내려받기 (JSON)" in text
    assert "내 정보 완전히 삭제하기" in text


def test_changing_the_categories_saves_them_and_says_so(visitor: Client) -> None:
    subscriber = reader()
    wanted = categories()[2:5]

    page = visitor.post(
        path_of(subscriber, Purpose.PREFERENCES),
        {"action": "save", "categories": [c.pk for c in wanted], "language": "ko"},
    )

    assert page.status_code == 200
    assert "선택한 내용을 저장했습니다." in page.content.decode()
    assert categories_ticked(page.content.decode()) == 3
    assert set(subscriber.categories.all()) == set(wanted)


def test_choosing_no_category_is_refused_and_unsubscribing_is_offered(visitor: Client) -> None:
    subscriber = reader()

    page = visitor.post(
        path_of(subscriber, Purpose.PREFERENCES), {"action": "save", "language": "ko"}
    )

    text = page.content.decode()
    assert "분야를 하나 이상 고르거나, 아래에서 구독을 해지하세요." in text
    assert '<input type="hidden" name="action" value="unsubscribe">' in text
    assert subscriber.categories.count() == 2


def test_an_unknown_category_is_refused_with_a_message(visitor: Client) -> None:
    subscriber = reader()

    page = visitor.post(
        path_of(subscriber, Purpose.PREFERENCES),
        {"action": "save", "categories": ["424242"], "language": "ko"},
    )

    assert "고른 분야 중 없는 분야가 있습니다" in page.content.decode()
    assert subscriber.categories.count() == 2


def test_switching_the_email_language_to_english_shows_the_page_in_english(
    visitor: Client,
    settings: Any,
) -> None:
    settings.DIGEST_LANGUAGES = ["ko", "en"]  # the choice is offered
    subscriber = reader()

    page = visitor.post(
        path_of(subscriber, Purpose.PREFERENCES),
        {"action": "save", "categories": [categories()[0].pk], "language": "en"},
    )

    assert "Your choices are saved." in page.content.decode()
    subscriber.refresh_from_db()
    assert subscriber.language == "en"


def test_unsubscribing_from_the_preferences_page(visitor: Client) -> None:
    subscriber = reader()

    page = visitor.post(path_of(subscriber, Purpose.PREFERENCES), {"action": "unsubscribe"})

    text = page.content.decode()
    assert "구독이 해지되었습니다. 더 이상 뉴스레터를 보내지 않습니다." in text
    assert "다시 구독하기" in text
    subscriber.refresh_from_db()
    assert subscriber.status == Status.UNSUBSCRIBED
    assert subscriber.unsubscribed_at is not None


def test_a_suppressed_reader_sees_why_and_cannot_change_categories(visitor: Client) -> None:
    subscriber = reader(status=Status.BOUNCED)
    path = path_of(subscriber, Purpose.PREFERENCES)

    text = visitor.get(path).content.decode()
    visitor.post(path, {"action": "save", "categories": [categories()[4].pk], "language": "en"})

    assert "전달되지 않았거나 스팸으로 신고되어" in text
    assert 'name="categories"' not in text
    assert subscriber.categories.count() == 2


def test_the_preferences_form_needs_its_csrf_token(strict_visitor: Client) -> None:
    subscriber = reader()
    path = path_of(subscriber, Purpose.PREFERENCES)

    assert strict_visitor.post(path, {"action": "unsubscribe"}).status_code == 403
    assert Subscriber.objects.get().status == Status.ACTIVE


def test_download_my_data_gives_a_json_file_of_everything_stored(visitor: Client) -> None:
    subscriber = reader(
        consent_source="https://news.example.com/subscribe/", consent_ip="192.0.2.1"
    )
    subscriber.consent_wording_version = "2026-11-v1"
    subscriber.save()
    EmailEvent.objects.create(
        esp="mailgun", event_id="e1", event_type="delivered", recipient="reader@example.com"
    )
    path = path_of(subscriber, Purpose.PREFERENCES) + "data.json"

    response = visitor.get(path)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment;")
    data = json.loads(response.content)
    assert data["email"] == "reader@example.com"
    assert data["status"] == "active"
    assert [c["slug"] for c in data["categories"]] == [c.slug for c in categories()[:2]]
    assert data["consent"]["wording_version"] == "2026-11-v1"
    assert data["consent"]["source"] == "https://news.example.com/subscribe/"
    assert data["consent"]["ip"] == "192.0.2.1"
    assert data["consent"]["at"] is not None
    assert data["timestamps"]["created_at"] is not None
    assert data["email_events"][0]["type"] == "delivered"


def test_delete_me_asks_first_then_forgets_everything_and_the_link_stops_working(
    visitor: Client,
) -> None:
    subscriber = reader()
    EmailEvent.objects.create(
        esp="mailgun", event_id="e1", event_type="delivered", recipient="reader@example.com"
    )
    path = path_of(subscriber, Purpose.PREFERENCES)

    question = visitor.get(path + "delete/")
    assert "내 정보를 완전히 삭제할까요?" in question.content.decode()
    assert Subscriber.objects.exists()

    done = visitor.post(path + "delete/")
    assert "내 정보가 삭제되었습니다" in done.content.decode()
    assert not Subscriber.objects.exists()
    assert not EmailEvent.objects.exists()

    afterwards = visitor.get(path)
    assert afterwards.status_code == 400
    assert "해당 구독이 더 이상 없습니다" in afterwards.content.decode()
    assert visitor.get(path + "data.json").status_code == 400


def test_delete_needs_the_csrf_token_of_its_page(strict_visitor: Client) -> None:
    path = path_of(reader(), Purpose.PREFERENCES) + "delete/"

    assert strict_visitor.post(path).status_code == 403
    assert Subscriber.objects.exists()


def test_an_expired_preferences_link_says_so_and_points_to_the_newest_email(
    visitor: Client,
) -> None:
    subscriber = reader()
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        path = path_of(subscriber, Purpose.PREFERENCES)
    with time_machine.travel(start + timedelta(days=400), tick=False):
        response = visitor.get(path)

    assert response.status_code == 410
    assert "가장 최근에 받은 이메일의 링크를 사용하세요" in response.content.decode()


def test_a_confirm_or_unsubscribe_token_does_not_open_the_preferences(visitor: Client) -> None:
    subscriber = reader()
    for purpose in (Purpose.CONFIRM, Purpose.UNSUBSCRIBE):
        token = path_of(subscriber, purpose).rstrip("/").rsplit("/", 1)[1]
        assert visitor.get(f"/preferences/{token}/").status_code == 400
        assert visitor.post(f"/preferences/{token}/delete/").status_code == 400
        assert visitor.get(f"/preferences/{token}/data.json").status_code == 400
    assert Subscriber.objects.exists()


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"action": "save"},
        {"action": "save", "categories": "x" * 5000, "language": "xx"},
        {"action": ["save", "unsubscribe"], "categories": ["1\x00"]},
        {"action": "\x00", "language": "\n"},
    ],
)
def test_odd_posts_to_the_preferences_page_do_not_fail(visitor: Client, data: dict) -> None:  # type: ignore[type-arg]
    response = visitor.post(path_of(reader(), Purpose.PREFERENCES), data)

    assert response.status_code == 200
