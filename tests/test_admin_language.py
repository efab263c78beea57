"""The admin speaks the editor's language, all of it: Django's words and the project's. By
default the editors' language (EDITOR_LANGUAGE, else LANGUAGE_CODE: Korean), whatever the
browser asks for; an editor chooses another in the admin's header (newsletter/middleware.py)."""

from __future__ import annotations

import gettext
import re
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.text import capfirst

from digests.approval import ApprovalRefused, digest_approve
from digests.models import Category, DailyRun, Digest
from subscribers.models import Delivery, Subscriber
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


def model_names() -> list[str]:
    """The English names of the models and fields an editor meets (the catalogue's msgids), as
    the admin shows them: a sidebar entry, a column header or a form label starts with a
    capital. Names shorter than five letters ("date", "kind") would match ordinary words."""
    names = set()
    with translation.override("en"):
        for app in ("digests", "subscribers"):
            for model in apps.get_app_config(app).get_models():
                meta = model._meta
                names |= {str(meta.verbose_name), str(meta.verbose_name_plural)}
                names |= {str(field.verbose_name) for field in meta.get_fields() if field.concrete}
    return sorted(capfirst(name) for name in names if len(name) >= 5)


def shown_as_a_label(name: str, html: str) -> bool:
    """The name as the whole text of an element: a header, a label ("Name:"), a link of the
    sidebar, a filter's title ("By name"); not a word inside an issue's title or a category's."""
    label = rf">\s*(?:By )?{re.escape(name)}:?\s*<"
    return re.search(label, html, flags=re.IGNORECASE) is not None


def issue_with_a_delivery_and_a_run() -> Digest:
    digest = issue_create(categories=list(Category.objects.order_by("position")[:2]))
    reader = Subscriber.objects.create(email="reader@example.com", status="active")
    Delivery.objects.create(digest=digest, subscriber=reader, email=reader.email, variant="1")
    now = timezone.now()
    DailyRun.objects.create(started_at=now, finished_at=now, day=digest.date, digest=digest)
    return digest


def test_the_admin_names_models_and_fields_in_korean(admin_client: Any) -> None:
    digest = issue_with_a_delivery_and_a_run()
    shown = {
        reverse("admin:digests_digest_changelist"): ["날짜", "상태", "종류"],
        reverse("admin:digests_digest_change", args=[digest.pk]): ["제목", "머리말", "분야"],
        reverse("admin:subscribers_subscriber_changelist"): ["이메일", "확인 시각", "만든 시각"],
        reverse("admin:subscribers_delivery_changelist"): ["시도 횟수", "발송 시각", "이메일"],
        reverse("admin:digests_dailyrun_changelist"): ["시작 방식", "결과", "새 논문"],
    }
    english = model_names()
    assert {"Announced on", "Deliveries", "Consent wording version"} <= set(english)
    for url, korean in shown.items():
        text = page_text(admin_client.get(url))
        assert [label for label in korean if label not in text] == [], url
        html = admin_client.get(url).content.decode()
        assert [name for name in english if shown_as_a_label(name, html)] == [], url
    admin_client.post("/i18n/setlang/", {"language": "en", "next": "/admin/"})
    html = admin_client.get(reverse("admin:subscribers_delivery_changelist")).content.decode()
    assert shown_as_a_label("Attempts", html) and shown_as_a_label("Sent at", html)


def test_the_sidebar_names_every_model_in_korean(admin_client: Any) -> None:
    text = page_text(admin_client.get(reverse("admin:index")))
    assert "구독자" in text and "피드" in text and "일일 실행" in text and "이메일 이벤트" in text
    assert "Subscribers" not in text and "Daily runs" not in text and "Email events" not in text
    assert "주기적인 태스크" in text and "Periodic tasks" not in text  # django-celery-beat's


def refusal(digest: Digest) -> str:
    with pytest.raises(ApprovalRefused) as refused:
        digest_approve(digest=digest)
    return str(refused.value)


def test_a_refusal_speaks_the_language_of_the_request() -> None:
    digest = issue_create(categories=list(Category.objects.order_by("position")[:1]))
    Digest.objects.filter(pk=digest.pk).update(status=Digest.Status.SENT)
    digest.refresh_from_db()
    with translation.override("ko"):
        assert "발송됨" in refusal(digest) and "초안만" in refusal(digest)
    with translation.override("en"):
        assert "is sent; only a draft can be approved" in refusal(digest)


def test_an_editor_who_chooses_japanese_gets_the_admin_in_japanese(admin_client: Any) -> None:
    digest = issue_with_a_delivery_and_a_run()
    admin_client.post("/i18n/setlang/", {"language": "ja", "next": "/admin/"})
    index = page_text(admin_client.get(reverse("admin:index")))
    assert "ダッシュボード" in index and "号、読者、配信" in index and "購読者" in index
    change = page_text(admin_client.get(reverse("admin:digests_digest_change", args=[digest.pk])))
    assert "状態と配信" in change and "メールをプレビュー" in change and "前書き" in change
    english = model_names()
    for url in (reverse("admin:digests_digest_changelist"), reverse("admin:index")):
        html = admin_client.get(url).content.decode()
        assert [name for name in english if shown_as_a_label(name, html)] == [], url
