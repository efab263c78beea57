"""The admin speaks the editor's language, all of it: Django's words and the project's. By
default the editors' language (EDITOR_LANGUAGE, else LANGUAGE_CODE: Korean), whatever the
browser asks for; an editor chooses another in the admin's header (newsletter/middleware.py)."""

from __future__ import annotations

import gettext
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from digests.models import Category
from tests.admin_forms import page_text
from tests.issue_factory import issue_create

pytestmark = pytest.mark.django_db

ENGLISH_MO = Path(django_settings.BASE_DIR) / "locale" / "en" / "LC_MESSAGES" / "django.mo"


@pytest.fixture(autouse=True)
def _editors_read_korean(settings):  # type: ignore[no-untyped-def]
    settings.EDITOR_LANGUAGE = "ko"  # the default (tests/conftest.py sets English for the rest)


def english_sentences() -> list[str]:
    """The project's own English words that could not be mistaken for a name or a title."""
    with ENGLISH_MO.open("rb") as file:
        catalogue = gettext.GNUTranslations(file)._catalog  # type: ignore[attr-defined]
    found = []
    for key in catalogue:
        text = key[-1] if isinstance(key, tuple) else key
        text = str(text).split("\x04")[-1]
        for piece in text.replace("<strong>", "%").replace("</strong>", "%").split("%"):
            piece = piece.strip(" ()s:.,")
            if len(piece) >= 14 and " " in piece and "{" not in piece:
                found.append(piece)
    return found


def admin_pages() -> list[str]:
    digest = issue_create(categories=list(Category.objects.order_by("position")[:2]))
    change = reverse("admin:digests_digest_change", args=[digest.pk])
    return [
        reverse("admin:index"),
        change,
        reverse("admin:digests_digest_preview", args=[digest.pk]),
        reverse("admin:dashboard"),
        reverse("status"),
        reverse("admin:subscribers_subscriber_changelist"),
        reverse("admin:digests_digest_changelist"),
    ]


def test_the_admin_is_in_korean_by_default_whatever_the_browser_asks(admin_client: Any) -> None:
    response = admin_client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="en")
    text = page_text(response)
    assert response["Content-Language"] == "ko"
    assert "대시보드" in text and "호, 독자, 발송" in text  # ours
    assert "사이트 관리" in text or "로그아웃" in text  # Django's
    assert "Dashboard" not in text and "Issues, readers and deliveries" not in text


def test_an_editor_chooses_english_in_the_header_and_keeps_it(admin_client: Any) -> None:
    index = reverse("admin:index")
    assert 'action="/i18n/setlang/"' in admin_client.get(index).content.decode()
    chosen = admin_client.post("/i18n/setlang/", {"language": "en", "next": index})
    assert chosen.status_code == 302 and chosen["Location"] == index
    text = page_text(admin_client.get(index))
    assert "Dashboard" in text and "Issues, readers and deliveries" in text and "Log out" in text
    assert "대시보드" not in text
    admin_client.post("/i18n/setlang/", {"language": "ko", "next": index})
    assert "대시보드" in page_text(admin_client.get(index))


def test_no_english_sentence_of_the_project_is_left_in_the_korean_admin(admin_client: Any) -> None:
    sentences = english_sentences()
    assert len(sentences) > 100  # the check reads the catalogue, not an empty list
    for url in admin_pages():
        response = admin_client.get(url)
        assert response.status_code == 200, url
        text = page_text(response)
        left = [sentence for sentence in sentences if sentence in text]
        assert left == [], url


def test_the_digest_page_speaks_english_to_an_editor_who_chose_it(admin_client: Any) -> None:
    digest = issue_create(categories=list(Category.objects.order_by("position")[:1]))
    url = reverse("admin:digests_digest_change", args=[digest.pk])
    korean = page_text(admin_client.get(url))
    assert "상태와 발송" in korean and "메일 미리 보기" in korean and "초안" in korean
    admin_client.post("/i18n/setlang/", {"language": "en", "next": url})
    english = page_text(admin_client.get(url))
    assert "Status and sending" in english and "Preview the email" in english
    assert "상태와 발송" not in english
