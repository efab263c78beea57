"""Japanese is an offered language (LANGUAGES): the reader pages and the email speak it from the
catalogue (locale/ja), and every page links to it."""

from __future__ import annotations

from datetime import date

import pytest
from django.test import Client

from digests.models import Category
from subscribers.rendering import date_label
from tests.subscribers.test_email_language import english_words, render

pytestmark = pytest.mark.django_db


def test_the_signup_page_speaks_japanese_when_asked() -> None:
    text = Client().get("/subscribe/?lang=ja").content.decode()
    assert '<html lang="ja">' in text
    assert "arXiv の公開日ごとに 1 通" in text
    assert '<label for="id_email">メールアドレス</label>' in text
    assert 'action="/subscribe/?lang=ja"' in text
    assert '<a href="/subscribe/?lang=ko" lang="ko" hreflang="ko">한국어</a>' in text
    assert '<a href="/subscribe/?lang=en" lang="en" hreflang="en">English</a>' in text
    assert "One email per arXiv announcement day" not in text


def test_every_page_links_to_the_japanese_one() -> None:
    text = Client().get("/subscribe/").content.decode()
    assert '<a href="/subscribe/?lang=ja" lang="ja" hreflang="ja">日本語</a>' in text


def test_the_japanese_email_has_its_fixed_words_from_the_japanese_catalogue() -> None:
    nlp = Category.objects.order_by("position").first()
    assert nlp is not None
    rendered = render([nlp.pk], "ja")
    for part in (rendered.html, rendered.text):
        for word in ("設定を変更", "配信停止", "ブラウザで見る", "過去の号", "出典"):
            assert word in part
        assert "2026年8月13日（木）" in part
    assert '<html lang="ja"' in rendered.html
    left = [w for w in english_words() if w in rendered.text or w in rendered.html]
    assert left == []


def test_the_date_is_written_the_japanese_way() -> None:
    assert date_label(day=date(2026, 8, 13), language="ja") == "2026年8月13日（木）"
