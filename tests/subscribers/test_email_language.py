"""The digest email's fixed words come from the gettext catalogues (locale/), in the reader's
language: nothing of the English catalogue is left in the Korean email's fixed parts."""

from __future__ import annotations

from datetime import date

import pytest

from digests.models import Category, Digest
from subscribers.rendering import (
    chart_cid_make,
    date_label,
    digest_context,
    variant_key,
    variant_render,
    words_for,
)
from tests.issue_factory import issue_create

pytestmark = pytest.mark.django_db


def render(ids: list[int], language: str, digest: Digest | None = None):  # type: ignore[no-untyped-def]
    digest = digest or issue_create(categories=list(Category.objects.order_by("position")[:2]))
    key = variant_key(ids)
    content = digest_context(digest=digest)
    cid = chart_cid_make(digest_id=digest.pk, key=key)
    return variant_render(content=content, key=key, language=language, chart_cid=cid)


def english_words() -> list[str]:
    """The email's fixed words in English, without their placeholders."""
    words = []
    for text in words_for("en").values():
        words += [part.strip() for part in text.replace("%(n)s", "{}").split("{") if part.strip()]
    # Short pieces ("more", "of the") could be in a paper's title; the longer ones could not.
    return [word.split("}")[-1].strip() for word in words if len(word.split("}")[-1]) >= 7]


def test_the_korean_email_has_its_fixed_words_from_the_korean_catalogue() -> None:
    nlp = Category.objects.order_by("position").first()
    assert nlp is not None
    rendered = render([nlp.pk], "ko")
    for part in (rendered.html, rendered.text):
        for word in ("구독 설정 변경", "구독 해지", "웹에서 보기", "지난 호", "Atom 피드", "출처"):
            assert word in part
        assert "Daily AI Insights를 구독하고 다음 분야를 선택하셔서 받으시는 메일입니다" in part
        assert "2026년 8월 13일 (목)" in part


def test_no_english_fixed_word_is_left_in_the_korean_email() -> None:
    nlp = Category.objects.order_by("position").first()
    assert nlp is not None
    rendered = render([nlp.pk], "ko")
    left = [w for w in english_words() if w in rendered.text or w in rendered.html]
    assert left == []


def test_the_english_email_has_the_english_words() -> None:
    nlp = Category.objects.order_by("position").first()
    assert nlp is not None
    rendered = render([nlp.pk], "en")
    for part in (rendered.html, rendered.text):
        for word in ("Change preferences", "Unsubscribe", "View in browser", "Past issues"):
            assert word in part
        assert "Thu 13 August 2026" in part


def test_the_empty_note_is_translated_too() -> None:
    unchosen = Category.objects.order_by("position").last()
    assert unchosen is not None
    digest = issue_create(categories=list(Category.objects.order_by("position")[:2]))
    korean = render([unchosen.pk], "ko", digest)
    english = render([unchosen.pk], "en", digest)
    assert korean.empty and english.empty
    assert "오늘은 선택하신 분야에 새 논문이 없습니다" in korean.text
    assert "Nothing new in your categories today" in english.text
    assert "오늘은 선택하신 분야의 새 논문이 없습니다" in korean.subject


@pytest.mark.parametrize(
    ("language", "label"), [("ko", "2026년 8월 13일 (목)"), ("en", "Thu 13 August 2026")]
)
def test_the_date_is_written_the_languages_way(language: str, label: str) -> None:
    assert date_label(day=date(2026, 8, 13), language=language) == label
