"""Readers choose (issue 12, "Shown by"), in a real browser.

A reader signs up on the English page with keyword rules and the weekly cadence, confirms, and
finds both on the preferences page. An editor then opens the admin's email preview of a weekly
issue as that reader: the English weekly email, the English report, the matching paper marked.

Screenshots: test-artifacts/screenshots/preferences-weekly-keywords.png and
admin-preview-weekly-en.png.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from digests.models import Category, Digest, SectionReport, SummarySource
from subscribers.models import Subscriber
from subscribers.tokens import Purpose, token_url
from tests.admin_forms import digest_url
from tests.browser.conftest import DESKTOP, editor_login
from tests.issue_factory import issue_create, paper_make

pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

SUNDAY = date(2026, 8, 16)  # a weekly issue is dated the Sunday ending its week
WEEKLY = "Weekly: the week's most important papers"


def weekly_issue_with_a_match(categories: list[Category]) -> Digest:
    digest = issue_create(day=SUNDAY, categories=categories, papers_per_section=2)
    Digest.objects.filter(pk=digest.pk).update(kind=Digest.Kind.WEEKLY)
    for section in digest.sections.select_related("category"):
        SectionReport.objects.create(
            section=section,
            language="en",
            summary=f"**Summary report**\n\nThe week in {section.category.name}, in English.",
            summary_source=SummarySource.LLM,
        )
    section = digest.sections.order_by("position").first()
    assert section is not None
    match = paper_make(day=SUNDAY, title="Diffusion models that explain themselves")
    section.entries.create(paper=match, position=50, weekly=True)
    digest.refresh_from_db()
    return digest


def test_an_english_reader_with_keywords_goes_weekly_and_the_editor_previews_their_email(
    page: Page,
    live_server: Any,
    default_categories: None,
    settings: Any,
    screenshot: Callable[..., Path],
) -> None:
    settings.DIGEST_LANGUAGES = ["ko", "en"]
    settings.SITE_URL = live_server.url
    categories = list(Category.objects.filter(slug__in=["llm", "computer-vision"]))
    page.set_viewport_size(DESKTOP)

    # --- sign up in English, weekly, with keywords ---------------------------------------------
    page.goto(live_server.url + reverse("subscribers:subscribe") + "?lang=en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_label("Email address", exact=True).fill("weekly.reader@example.org")
    page.get_by_label(WEEKLY, exact=True).check()
    page.get_by_label("Keywords to look for", exact=True).fill('diffusion\n"chain of thought"')
    page.get_by_label("Keywords to leave out", exact=True).fill("quantum")
    page.get_by_label("Email language", exact=True).select_option("en")
    page.get_by_role("button", name="Subscribe", exact=True).click()
    expect(page).to_have_url(re.compile(r"/subscribe/check-inbox/"))

    reader = Subscriber.objects.get(email="weekly.reader@example.org")
    assert (reader.cadence, reader.language) == (Subscriber.Cadence.WEEKLY, "en")
    assert reader.keywords_include.splitlines() == ["diffusion", '"chain of thought"']
    assert reader.keywords_key

    # --- confirm, then the preferences page shows the choices ----------------------------------
    page.goto(token_url(subscriber=reader, purpose=Purpose.CONFIRM))
    page.get_by_role("button", name="Confirm my subscription", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are subscribed")
    reader.categories.set(categories)

    page.goto(token_url(subscriber=reader, purpose=Purpose.PREFERENCES))
    expect(page.get_by_label(WEEKLY, exact=True)).to_be_checked()
    expect(page.get_by_label("Keywords to look for", exact=True)).to_have_value(
        'diffusion\n"chain of thought"'
    )
    expect(page.get_by_label("Keywords to leave out", exact=True)).to_have_value("quantum")
    screenshot(page, "preferences-weekly-keywords")

    # --- the editor previews the weekly issue as that reader ------------------------------------
    digest = weekly_issue_with_a_match(categories)
    query = urlencode({"subscriber": reader.email})
    preview = f"{digest_url('preview', digest)}?{query}"
    editor_login(page, live_server, preview)
    expect(page.locator("iframe").first).to_be_visible()
    email_url = page.locator("iframe").first.get_attribute("src")
    assert email_url
    page.goto(live_server.url + email_url if email_url.startswith("/") else email_url)
    body = page.locator("body")
    expect(body).to_contain_text("The week in")
    expect(body).to_contain_text("in English.")
    expect(body).to_contain_text("★ keyword")
    expect(body).to_contain_text("Diffusion models that explain themselves")
    expect(body).to_contain_text("the week's")
    screenshot(page, "admin-preview-weekly-en")
