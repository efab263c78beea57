"""A reader's language: chosen at signup and in preferences among the offered ones, and the
email's reports in it (the issue's own where a section has none)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from digests.approval import digest_approve
from digests.models import Category, Digest, SectionReport, SummarySource
from subscribers.models import Subscriber
from subscribers.rendering import render_caches_clear
from subscribers.tasks import send_start
from subscribers.tokens import Purpose
from tests.admin_forms import digest_url, page_text
from tests.issue_factory import issue_create

from .factories import html_of, path_of, signup_data, subscriber_create

pytestmark = pytest.mark.django_db

ENGLISH = "**Summary report**\n\nThe English report of {name} [1]."


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    render_caches_clear()
    yield
    render_caches_clear()


@pytest.fixture
def offered(settings: Any) -> None:
    settings.DIGEST_LANGUAGES = ["ko", "en", "ja"]
    settings.DIGEST_LANGUAGE = "ko"


@pytest.fixture
def send(
    settings: Any, django_capture_on_commit_callbacks: Callable[..., Any]
) -> Callable[[Digest], Any]:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.CELERY_TASK_ALWAYS_EAGER = True

    def run(digest: Digest) -> Any:
        digest_approve(digest=digest, send_at=timezone.now() - timedelta(minutes=1), by="ed")
        with django_capture_on_commit_callbacks(execute=True):
            return send_start(digest.pk)

    return run


def two_categories() -> list[Category]:
    return list(Category.objects.filter(slug__in=["llm", "computer-vision"]).order_by("position"))


def issue_with_english_reports() -> Digest:
    """An issue whose sections are in Korean, and in English for every section but the last."""
    digest = issue_create(categories=two_categories(), papers_per_section=2, summary_length=300)
    sections = list(digest.sections.select_related("category").order_by("position"))
    for section in sections[:-1]:
        SectionReport.objects.create(
            section=section,
            language="en",
            summary=ENGLISH.format(name=section.category.name),
            summary_source=SummarySource.LLM,
        )
    return digest


def email_to(address: str) -> mail.EmailMessage:
    (message,) = [m for m in mail.outbox if m.to == [address]]
    return message


def test_an_english_reader_gets_the_english_report_and_the_korean_one_where_none_is_written(
    offered: None, send: Callable[[Digest], Any]
) -> None:
    digest = issue_with_english_reports()
    first, last = two_categories()
    subscriber_create(email="en@example.com", language="en", categories=two_categories())
    subscriber_create(email="ko@example.com", language="ko", categories=two_categories())
    subscriber_create(email="ja@example.com", language="ja", categories=two_categories())
    korean_last = digest.sections.get(category=last).summary.split("\n")[0].strip("*")

    send(digest)

    english = email_to("en@example.com")
    for part in (str(english.body), html_of(english)):
        assert f"The English report of {first.name}" in part
        assert f"요약 보고서: {first.name}" not in part
        assert korean_last in part  # no English report there: the issue's own
    for address in ("ko@example.com", "ja@example.com"):  # nothing written in Japanese
        message = email_to(address)
        for part in (str(message.body), html_of(message)):
            assert "The English report" not in part


def test_the_admin_preview_in_english_shows_the_english_report(
    offered: None, editor_client: Client
) -> None:
    digest = issue_with_english_reports()
    first = two_categories()[0]
    query = urlencode({"categories": [first.pk], "language": "en"}, doseq=True)

    text = page_text(editor_client.get(f"{digest_url('preview', digest)}?{query}"))

    assert f"The English report of {first.name}" in text


# --- The choice -----------------------------------------------------------------------------


def test_a_reader_chooses_among_the_offered_languages_at_signup(
    offered: None, visitor: Client
) -> None:
    page = visitor.get("/subscribe/").content.decode()
    assert '<select name="language" id="id_language"' in page
    assert ">한국어</option>" in page and ">English</option>" in page
    assert ">日本語</option>" in page

    visitor.post("/subscribe/", signup_data("reader@example.com", language="ja"))

    assert Subscriber.objects.get(email="reader@example.com").language == "ja"


def test_a_language_not_offered_is_refused_and_nothing_typed_is_lost(
    offered: None, visitor: Client
) -> None:
    data = signup_data("reader@example.com", language="fr", keywords_include="diffusion")

    page = visitor.post("/subscribe/?lang=en", data).content.decode()

    assert "Choose a language from the list." in page
    assert 'value="reader@example.com"' in page and ">diffusion</textarea>" in page
    assert not Subscriber.objects.exists()


def test_with_one_offered_language_there_is_no_choice(settings: Any, visitor: Client) -> None:
    settings.DIGEST_LANGUAGES = ["ko"]

    page = visitor.get("/subscribe/").content.decode()
    visitor.post("/subscribe/", signup_data("reader@example.com", language="ja"))

    assert 'name="language"' not in page
    assert Subscriber.objects.get(email="reader@example.com").language == "ko"


def test_a_reader_changes_their_language_in_preferences(offered: None, visitor: Client) -> None:
    reader = subscriber_create(email="reader@example.com", categories=two_categories())
    path = path_of(reader, Purpose.PREFERENCES)
    chosen = [c.pk for c in two_categories()]

    data = {"action": "save", "categories": chosen, "language": "xx", "keywords_include": "agents"}
    refused = visitor.post(f"{path}?lang=en", data).content.decode()
    reader.refresh_from_db()
    assert "Choose a language from the list." in refused and ">agents</textarea>" in refused
    assert (reader.language, reader.keywords_include) == ("ko", "")

    visitor.post(path, {"action": "save", "categories": chosen, "language": "ja"})
    reader.refresh_from_db()
    assert reader.language == "ja"
    page = visitor.get(path).content.decode()
    assert '<option value="ja" lang="ja" selected>日本語</option>' in page
