"""The archive's pages and feed speak the newsletter's default language (the first of
DIGEST_LANGUAGES) or the one asked for with ?lang=, from the gettext catalogues."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from digests.models import Digest
from tests.issue_factory import issue_create

pytestmark = pytest.mark.django_db


def page(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_the_list_is_in_korean_by_default_and_in_english_when_asked(client: Client) -> None:
    issue_create(status=Digest.Status.SENT, papers_per_section=1)
    korean = page(client, reverse("digests:archive"))
    english = page(client, reverse("digests:archive") + "?lang=en")
    assert (
        "<h1>지난 호</h1>" in korean
        and "지금까지 보낸 Daily AI Insights의 모든 호입니다." in korean
    )
    assert "Past issues" not in korean and "Every issue" not in korean
    assert "<h1>Past issues</h1>" in english and "지난 호" not in english
    assert '<html lang="en">' in english


def test_an_issue_page_is_in_each_language(client: Client) -> None:
    digest = issue_create(status=Digest.Status.SENT, papers_per_section=2)
    url = reverse("digests:archive-issue", kwargs={"day": digest.date.isoformat()})
    korean, english = page(client, url), page(client, url + "?lang=en")
    assert (
        '<h3 class="sources">출처</h3>' in korean
        and "Author 1, Author 2, Author 3 외 3명" in korean
    )
    assert "지난 호 전체" in korean and "구독하기" in korean
    assert '<h3 class="sources">Sources</h3>' in english
    assert "Author 1, Author 2, Author 3 and 3 more" in english
    assert "All past issues" in english and "Subscribe" in english


def test_a_language_the_site_does_not_offer_falls_back_to_the_default(client: Client) -> None:
    issue_create(status=Digest.Status.SENT, papers_per_section=1)
    assert "<h1>지난 호</h1>" in page(client, reverse("digests:archive") + "?lang=xx")


def test_the_feed_speaks_the_default_language(client: Client, settings) -> None:  # type: ignore[no-untyped-def]
    issue_create(status=Digest.Status.SENT, papers_per_section=1)
    assert "Daily AI Insights 지난 호" in page(client, reverse("digests:archive-atom"))
    settings.DIGEST_LANGUAGES, settings.DIGEST_LANGUAGE = ["en", "ko"], "en"
    assert "Daily AI Insights: past issues" in page(client, reverse("digests:archive-atom"))
