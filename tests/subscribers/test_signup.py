"""The signup page and double opt-in, as a person sees them."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from digests.models import Category
from subscribers.models import Subscriber
from subscribers.services import email_normalise

from .factories import (
    html_of,
    last_email,
    links_in,
    signup_data,
    site_path,
    subscriber_create,
)

pytestmark = pytest.mark.django_db

Status = Subscriber.Status


def categories_ticked(text: str) -> int:
    """The category boxes ticked on a page (the cadence's radio buttons are not counted)."""
    return len(re.findall(r'name="categories" value="\d+" id="[^"]*" checked>', text))


@pytest.fixture(autouse=True)
def _site(settings: Any) -> None:
    settings.SITE_URL = "https://news.example.com"
    settings.CONSENT_WORDING_VERSION = "test-wording-3"


def confirm_link(message: mail.EmailMessage) -> str:
    (link,) = [url for url in links_in(str(message.body)) if "/subscribe/confirm/" in url]
    return link


# --- The page ---------------------------------------------------------------------------------


def test_the_signup_page_is_korean_by_default_and_says_what_arrives_and_how_often(
    visitor: Client,
) -> None:
    page = visitor.get("/subscribe/")

    assert page.status_code == 200
    text = page.content.decode()
    assert '<html lang="ko">' in text
    assert "arXiv 발표일마다 이메일 한 통" in text
    assert "미국 동부 시간 일요일~목요일 저녁" in text
    assert "클릭 한 번으로 구독을 해지" in text
    assert '<label for="id_email">이메일 주소</label>' in text
    assert '<a href="/subscribe/?lang=en" lang="en" hreflang="en">English</a>' in text


def test_the_signup_page_speaks_english_when_asked(visitor: Client) -> None:
    text = visitor.get("/subscribe/?lang=en").content.decode()

    assert '<html lang="en">' in text
    assert "One email per arXiv announcement day" in text
    assert "Sunday to Thursday evenings, US Eastern time" in text
    assert '<label for="id_email">Email address</label>' in text
    assert ">한국어</a>" in text


def test_the_active_categories_are_offered_all_ticked_inside_a_fieldset(visitor: Client) -> None:
    retired = Category.objects.create(name="Retired topic", slug="retired", active=False)

    text = visitor.get("/subscribe/").content.decode()

    assert "<fieldset" in text and "<legend>분야</legend>" in text
    for category in Category.objects.filter(active=True):
        assert category.name in text
        assert f'value="{category.pk}" id=' in text
    assert text.count('type="checkbox" name="categories"') == categories_ticked(text)
    assert Category.objects.filter(active=True).count() == categories_ticked(text)
    assert retired.name not in text


def test_the_signup_page_reads_the_categories_once(
    visitor: Client, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(1):
        visitor.get("/subscribe/")


def test_the_honeypot_is_labelled_leave_empty_and_kept_out_of_the_tab_order(
    visitor: Client,
) -> None:
    text = visitor.get("/subscribe/").content.decode()

    assert '<label for="id_homepage">이 칸은 비워 두세요</label>' in text
    assert 'name="homepage" id="id_homepage" tabindex="-1"' in text


# --- Double opt-in ----------------------------------------------------------------------------


def test_a_new_address_is_sent_to_check_the_inbox_and_gets_a_korean_confirmation_email(
    visitor: Client,
) -> None:
    response = visitor.post("/subscribe/", signup_data("New.Reader@Example.com "))

    assert response.status_code == 302
    assert response["Location"] == "/subscribe/check-inbox/?lang=ko"
    inbox = visitor.get(response["Location"]).content.decode()
    assert "받은편지함을 확인하세요" in inbox
    assert "7일 동안 유효합니다" in inbox

    message = last_email()
    assert message.to == ["new.reader@example.com"]
    assert message.subject == "Daily AI Insights 구독을 확인해 주세요"
    assert "new.reader@example.com 주소로 Daily AI Insights를 받겠다고 신청" in message.body
    link = confirm_link(message)
    assert link.startswith("https://news.example.com/subscribe/confirm/")
    assert f'href="{link}"' in html_of(message)
    assert "구독 확인하기" in html_of(message)


def test_a_signup_is_stored_pending_with_the_choices_and_the_consent_wording(
    visitor: Client,
) -> None:
    two = list(Category.objects.filter(active=True)[:2])
    data = signup_data("reader@example.com", categories=[str(c.pk) for c in two])

    visitor.post("/subscribe/?lang=en", data, REMOTE_ADDR="203.0.113.9")

    subscriber = Subscriber.objects.get(email="reader@example.com")
    assert subscriber.status == Status.PENDING
    assert set(subscriber.categories.all()) == set(two)
    assert subscriber.language == "en"
    assert subscriber.consent_wording_version == "test-wording-3"
    assert subscriber.consent_source == "https://news.example.com/subscribe/"
    assert subscriber.consent_ip == "203.0.113.9"
    assert subscriber.consent_at is None  # consent counts from the confirmation
    assert subscriber.confirmation_sent_at is not None


def test_an_english_signup_gets_an_english_email(visitor: Client) -> None:
    visitor.post("/subscribe/?lang=en", signup_data("reader@example.com"))

    message = last_email()
    assert message.subject == "Confirm your subscription to Daily AI Insights"
    assert "To confirm your subscription, open this link" in message.body
    assert "The link is valid for 7 days." in message.body
    assert "Confirm my subscription" in html_of(message)


def test_the_whole_way_from_signup_to_confirmed_by_the_emailed_link(visitor: Client) -> None:
    visitor.post("/subscribe/", signup_data("reader@example.com"))
    path = site_path(confirm_link(last_email()))

    page = visitor.get(path)
    assert "구독 확인하기" in page.content.decode()
    assert Subscriber.objects.get().status == Status.PENDING

    done = visitor.post(path)
    assert "구독이 확인되었습니다" in done.content.decode()
    subscriber = Subscriber.objects.get()
    assert subscriber.status == Status.ACTIVE
    assert subscriber.confirmed_at is not None
    assert subscriber.consent_at == subscriber.confirmed_at


def test_an_address_is_one_subscriber_whatever_its_case(visitor: Client) -> None:
    visitor.post("/subscribe/", signup_data("Reader@Example.COM"))
    visitor.post("/subscribe/", signup_data(" reader@example.com"))

    assert list(Subscriber.objects.values_list("email", flat=True)) == ["reader@example.com"]
    assert email_normalise("  MiXed@Example.Org ") == "mixed@example.org"


# --- No enumeration ---------------------------------------------------------------------------


def test_the_answer_is_the_same_for_new_pending_active_unsubscribed_and_bounced(
    visitor: Client,
) -> None:
    states = {
        "new": None,
        "pending": Status.PENDING,
        "active": Status.ACTIVE,
        "unsubscribed": Status.UNSUBSCRIBED,
        "bounced": Status.BOUNCED,
        "complained": Status.COMPLAINED,
    }
    answers = []
    for name, status in states.items():
        email = f"{name}@example.com"
        if status is not None:
            subscriber_create(email=email, status=status)
        response = visitor.post("/subscribe/", signup_data(email))
        page = visitor.get(response["Location"])
        answers.append((response.status_code, response["Location"], page.content))

    assert len(set(answers)) == 1
    assert answers[0][0] == 302


def test_new_pending_and_unsubscribed_get_a_confirmation_active_a_note_suppressed_nothing(
    visitor: Client,
) -> None:
    for status in Status:
        subscriber_create(email=f"{status.value}@example.com", status=status)
    visitor.post("/subscribe/", signup_data("new@example.com"))
    for status in Status:
        visitor.post("/subscribe/", signup_data(f"{status.value}@example.com"))

    sent = {message.to[0]: message for message in mail.outbox}
    assert sorted(sent) == [
        "active@example.com",
        "new@example.com",
        "pending@example.com",
        "unsubscribed@example.com",
    ]
    for email in ["new@example.com", "pending@example.com", "unsubscribed@example.com"]:
        assert sent[email].subject == "Daily AI Insights 구독을 확인해 주세요"
    note = sent["active@example.com"]
    assert note.subject == "이미 Daily AI Insights를 구독하고 있습니다"
    assert "바뀐 것은 없습니다" in str(note.body)
    (link,) = [url for url in links_in(str(note.body)) if "/preferences/" in url]
    assert f'href="{link}"' in html_of(note)
    assert "구독 설정" in visitor.get(site_path(link)).content.decode()


def test_a_signup_for_an_active_address_changes_nothing_about_it(visitor: Client) -> None:
    one = Category.objects.filter(active=True).first()
    assert one is not None
    subscriber = subscriber_create(email="reader@example.com", categories=[one], language="en")
    before = (subscriber.confirm_nonce, subscriber.language, subscriber.consent_source)

    visitor.post("/subscribe/", signup_data("reader@example.com"))

    subscriber.refresh_from_db()
    assert subscriber.status == Status.ACTIVE
    assert list(subscriber.categories.all()) == [one]
    assert (subscriber.confirm_nonce, subscriber.language, subscriber.consent_source) == before


def test_bounced_and_complained_addresses_stay_suppressed_after_a_signup(visitor: Client) -> None:
    subscriber_create(email="bounced@example.com", status=Status.BOUNCED)
    subscriber_create(email="complained@example.com", status=Status.COMPLAINED)

    visitor.post("/subscribe/", signup_data("bounced@example.com"))
    visitor.post("/subscribe/", signup_data("complained@example.com"))

    statuses = dict(Subscriber.objects.values_list("email", "status"))
    assert statuses == {"bounced@example.com": "bounced", "complained@example.com": "complained"}
    assert mail.outbox == []


def test_a_re_signup_after_unsubscribing_needs_a_fresh_confirmation_and_the_old_link_is_dead(
    visitor: Client,
) -> None:
    visitor.post("/subscribe/", signup_data("reader@example.com"))
    old_link = site_path(confirm_link(last_email()))
    visitor.post(old_link)
    subscriber = Subscriber.objects.get()
    subscriber.status = Status.UNSUBSCRIBED
    subscriber.save()

    visitor.post("/subscribe/", signup_data("reader@example.com"))

    subscriber.refresh_from_db()
    assert subscriber.status == Status.PENDING
    new_link = site_path(confirm_link(last_email()))
    assert new_link != old_link
    stale = visitor.post(old_link)
    assert stale.status_code == 400
    assert "이 링크는 사용할 수 없습니다" in stale.content.decode()
    assert Subscriber.objects.get().status == Status.PENDING
    visitor.post(new_link)
    assert Subscriber.objects.get().status == Status.ACTIVE


def test_the_confirmation_link_of_an_unsubscribed_reader_cannot_bring_them_back(
    visitor: Client,
) -> None:
    visitor.post("/subscribe/", signup_data("reader@example.com"))
    link = site_path(confirm_link(last_email()))
    visitor.post(link)
    Subscriber.objects.update(status=Status.UNSUBSCRIBED)

    assert visitor.post(link).status_code == 400
    assert Subscriber.objects.get().status == Status.UNSUBSCRIBED


# --- Honeypot and CSRF ------------------------------------------------------------------------


def test_a_filled_honeypot_gets_the_same_answer_but_nothing_is_stored_or_sent(
    visitor: Client,
) -> None:
    response = visitor.post(
        "/subscribe/", signup_data("robot@example.com", homepage="http://spam.example")
    )

    assert response.status_code == 302
    assert response["Location"] == "/subscribe/check-inbox/?lang=ko"
    assert not Subscriber.objects.exists()
    assert mail.outbox == []


def test_the_signup_form_refuses_a_post_without_the_csrf_token(strict_visitor: Client) -> None:
    response = strict_visitor.post("/subscribe/", signup_data("reader@example.com"))

    assert response.status_code == 403
    assert not Subscriber.objects.exists()


def test_the_signup_form_accepts_a_post_with_the_csrf_token_from_the_page(
    strict_visitor: Client,
) -> None:
    page = strict_visitor.get("/subscribe/")
    token = page.context["csrf_token"]

    response = strict_visitor.post(
        "/subscribe/", signup_data("reader@example.com", csrfmiddlewaretoken=token)
    )

    assert response.status_code == 302
    assert Subscriber.objects.filter(email="reader@example.com").exists()


# --- Validation -------------------------------------------------------------------------------


def error_page(visitor: Client, data: dict[str, Any], lang: str = "ko") -> str:
    response = visitor.post(f"/subscribe/?lang={lang}", data)
    assert response.status_code == 200
    assert not Subscriber.objects.exists()
    assert mail.outbox == []
    return response.content.decode()


@pytest.mark.parametrize(
    ("email", "korean", "english"),
    [
        ("", "이메일 주소를 입력하세요.", "Enter your email address."),
        ("not-an-address", "올바른 이메일 주소를 입력하세요", "Enter a valid email address"),
        ("a@" + "b" * 250 + ".com", "254자를 넘을 수 없습니다", "at most 254 characters"),
        ("a@example.com\nBcc: x@evil.test", "줄바꿈 없이 한 줄로", "without line breaks"),
        ("a@example.com\r\nBcc: x@evil.test", "줄바꿈 없이 한 줄로", "without line breaks"),
        ("a@exam\x00ple.com", "줄바꿈 없이 한 줄로", "without line breaks"),
    ],
)
def test_a_bad_address_gets_a_clear_message_in_the_page_language(
    visitor: Client, email: str, korean: str, english: str
) -> None:
    assert korean in error_page(visitor, signup_data(email))
    assert english in error_page(visitor, signup_data(email), lang="en")


def test_the_error_is_linked_to_the_field_and_the_typed_address_is_kept(visitor: Client) -> None:
    text = error_page(visitor, signup_data("someone@@example.com"))

    assert 'value="someone@@example.com"' in text
    assert 'aria-describedby="email-error email-hint"' in text
    assert 'aria-invalid="true"' in text
    assert '<p class="error" id="email-error">' in text
    assert 'role="alert"' in text


def test_an_empty_category_choice_asks_for_at_least_one_and_keeps_the_address(
    visitor: Client,
) -> None:
    text = error_page(visitor, {"email": "reader@example.com"})

    assert "분야를 하나 이상 고르세요." in text
    assert 'value="reader@example.com"' in text
    assert 'aria-describedby="categories-error"' in text
    assert categories_ticked(text) == 0  # what was (not) ticked is kept too


def test_an_unknown_or_retired_category_is_refused_and_the_other_ticks_are_kept(
    visitor: Client,
) -> None:
    retired = Category.objects.create(name="Old", slug="old", active=False)
    keep = Category.objects.filter(active=True).first()
    assert keep is not None

    for bad in ["999999", str(retired.pk), "abc", "1; DROP TABLE", "99999999999999999999999"]:
        text = error_page(visitor, {"email": "r@example.com", "categories": [str(keep.pk), bad]})
        assert "고른 분야 중 없는 분야가 있습니다" in text
        assert categories_ticked(text) == 1
    english = error_page(visitor, {"email": "r@example.com", "categories": ["999999"]}, "en")
    assert "One of the chosen categories does not exist" in english


# --- No 500 for any input ---------------------------------------------------------------------

ODD_INPUTS: list[dict[str, Any]] = [
    {},
    {"email": ""},
    {"email": "x" * 100_000, "categories": ["1"]},
    {"email": "한글@예시.한국", "categories": ["1"]},
    {"email": "😀@example.com", "categories": ["1"]},
    {"email": "a@b.c\x00", "categories": ["1\x00"]},
    {"email": ["a@example.com", "b@example.com"], "categories": ["1"]},
    {"email": "a@example.com", "categories": ["-1", "0", "1.5", "", " "]},
    {"email": "a@example.com", "categories": [str(n) for n in range(5000)]},
    {"email": "a@example.com", "categories": "x" * 10_000},
    {"email": "\u2028a@example.com", "categories": ["1"]},
    {"email": "a@example.com", "categories": ["1"], "homepage": "\x00"},
    {"email": "<script>alert(1)</script>@example.com", "categories": ["1"]},
    {"email": "a@[127.0.0.1]", "categories": ["1"]},
]


@pytest.mark.parametrize("data", ODD_INPUTS, ids=range(len(ODD_INPUTS)))
def test_no_input_makes_the_signup_page_fail(visitor: Client, data: dict[str, Any]) -> None:
    response = visitor.post("/subscribe/", data)

    # 400 is Django refusing more than DATA_UPLOAD_MAX_NUMBER_FIELDS fields.
    assert response.status_code in (200, 302, 400)
    assert "<script>alert(1)</script>" not in response.content.decode()


def test_raw_bodies_and_odd_methods_do_not_make_it_fail(visitor: Client) -> None:
    bodies = [b"\xff\xfe\x00garbage", b'{"email": "a@example.com"}', b"email=%ZZ&categories=%"]
    for body in bodies:
        response = visitor.post(
            "/subscribe/", body, content_type="application/x-www-form-urlencoded"
        )
        assert response.status_code < 500
    assert visitor.post("/subscribe/", b"{}", content_type="application/json").status_code == 200
    assert visitor.put("/subscribe/").status_code == 405
    assert visitor.get("/subscribe/?lang=%00&lang=xx").status_code == 200


# --- The email itself -------------------------------------------------------------------------


def test_the_confirmation_email_comes_from_the_newsletter_and_records_when_it_went(
    settings: Any,
) -> None:
    from subscribers.emails import confirmation_email_send

    settings.DEFAULT_FROM_EMAIL = "Daily AI Insights <digest@news.example.com>"
    subscriber = subscriber_create(email="imported@example.com", status=Status.PENDING)

    confirmation_email_send(subscriber=subscriber)

    message = last_email()
    assert message.from_email == "Daily AI Insights <digest@news.example.com>"
    assert message.to == ["imported@example.com"]
    link = confirm_link(message)
    assert link in html_of(message)
    assert "분야:" in str(message.body)
    subscriber.refresh_from_db()
    assert subscriber.confirmation_sent_at is not None


def test_a_mail_server_that_does_not_answer_does_not_break_the_signup_answer(
    visitor: Client, settings: Any
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 1

    response = visitor.post("/subscribe/", signup_data("reader@example.com"))

    assert response.status_code == 302
    assert response["Location"] == "/subscribe/check-inbox/?lang=ko"
    assert Subscriber.objects.get().status == Status.PENDING
