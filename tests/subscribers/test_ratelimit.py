"""Signup rate limits: per IP a friendly 429, per address the usual answer but no more email."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from subscribers.models import Subscriber
from subscribers.ratelimit import ratelimit_hit

from .factories import signup_data

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _limits(settings: Any) -> None:
    settings.SIGNUP_RATE_LIMIT_PER_IP = 4
    settings.SIGNUP_RATE_LIMIT_PER_EMAIL = 2


def signup(client: Client, email: str, ip: str = "198.51.100.7", lang: str = "ko") -> Any:
    return client.post(f"/subscribe/?lang={lang}", signup_data(email), REMOTE_ADDR=ip)


def test_past_the_limit_per_ip_the_page_answers_429_with_a_friendly_message(
    visitor: Client,
) -> None:
    for n in range(4):
        assert signup(visitor, f"r{n}@example.com").status_code == 302

    blocked = signup(visitor, "r5@example.com")

    assert blocked.status_code == 429
    assert blocked["Retry-After"] == "3600"
    text = blocked.content.decode()
    assert "시도가 너무 많습니다" in text
    assert "한 시간 뒤에 다시 시도하세요" in text
    assert not Subscriber.objects.filter(email="r5@example.com").exists()
    assert len(mail.outbox) == 4


def test_the_429_page_speaks_english_when_asked(visitor: Client) -> None:
    for n in range(4):
        signup(visitor, f"r{n}@example.com", lang="en")

    blocked = signup(visitor, "r5@example.com", lang="en")

    assert blocked.status_code == 429
    assert "Too many attempts" in blocked.content.decode()


def test_another_ip_is_not_held_back_and_the_limit_lifts_after_an_hour(visitor: Client) -> None:
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for n in range(5):
            signup(visitor, f"r{n}@example.com")
        assert signup(visitor, "other@example.com", ip="198.51.100.8").status_code == 302
    with time_machine.travel(start + timedelta(hours=1, minutes=1), tick=False):
        assert signup(visitor, "later@example.com").status_code == 302


def test_past_the_limit_per_address_the_answer_is_the_same_but_no_more_email_goes_out(
    visitor: Client,
) -> None:
    answers = [
        signup(visitor, "reader@example.com", ip=f"203.0.113.{n}")["Location"] for n in range(4)
    ]

    assert len(set(answers)) == 1
    assert [m.to for m in mail.outbox] == [["reader@example.com"], ["reader@example.com"]]


def test_the_per_address_limit_counts_the_address_in_any_case(visitor: Client) -> None:
    for n, email in enumerate(["Reader@example.com", "READER@EXAMPLE.COM ", "reader@example.com"]):
        signup(visitor, email, ip=f"203.0.113.{n}")

    assert len(mail.outbox) == 2


def test_a_rate_limit_counts_hits_per_key_within_its_window() -> None:
    hits = [ratelimit_hit(scope="t", key="k\n\x00 é", limit=2, window=60) for _ in range(3)]

    assert hits == [True, True, False]
    assert ratelimit_hit(scope="t", key="other", limit=2, window=60)
    assert ratelimit_hit(scope="u", key="k\n\x00 é", limit=2, window=60)
