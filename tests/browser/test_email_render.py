"""The digest email in a real browser (issue 4, "The email"): a full six-category issue at 375 px
and 800 px, the chart inlined as a data: URI as a mail client would show the cid: image.

Screenshots: test-artifacts/screenshots/email-375.png and email-800.png.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from io import StringIO
from pathlib import Path

import pytest
from playwright.sync_api import Page

from digests.models import Category
from subscribers.rendering import (
    chart_cid_make,
    digest_context,
    personalise_html,
    render_caches_clear,
    variant_key,
    variant_render,
)
from tests.browser.test_reader_journey import horizontal_overflow
from tests.issue_factory import issue_create, paper_make

pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def email_html() -> str:
    render_caches_clear()
    categories = list(Category.objects.order_by("position", "name"))
    assert len(categories) == 6
    digest = issue_create(categories=categories, papers_per_section=5, summary_length=2500)
    # A long unbroken title and URL-like text, as feeds sometimes carry.
    section = digest.sections.order_by("position").first()
    assert section is not None
    long_paper = paper_make(
        day=digest.date,
        title="Supercalifragilisticexpialidocious-Transformer-Architecture-" * 3,
        authors=["A. Very-Long-Hyphenated-Surname-Author"] * 12,
    )
    section.entries.create(paper=long_paper, position=99)
    key = variant_key([categories[0].pk, categories[3].pk, categories[5].pk, categories[1].pk])
    cid = chart_cid_make(digest_id=digest.pk, key=key)
    rendered = variant_render(
        content=digest_context(digest=digest), key=key, language="ko", chart_cid=cid
    )
    html = personalise_html(
        rendered.html,
        {
            "preferences_url": "https://news.example.com/preferences/token/",
            "unsubscribe_url": "https://news.example.com/unsubscribe/token/",
        },
    )
    data_uri = "data:image/png;base64," + base64.b64encode(rendered.chart_png).decode()
    return html.replace(f"cid:{cid}", data_uri)


def test_the_email_reads_well_at_phone_and_desktop_widths(
    page: Page, default_categories: None, screenshot: Callable[..., Path]
) -> None:
    page.set_viewport_size({"width": 375, "height": 800})
    page.set_content(email_html(), wait_until="load")
    chart = page.locator("img").first
    assert page.evaluate("(img) => img.naturalWidth", chart.element_handle()) > 0
    assert chart.bounding_box()["width"] <= 375  # type: ignore[index]
    assert horizontal_overflow(page) == 0
    screenshot(page, "email-375")
    headings = page.locator("h2").all_inner_texts()
    assert headings == ["Natural Language Processing", "Computer Vision", "LLM", "Multimodal"]

    screenshot(page, "email-800", viewport={"width": 800, "height": 900})
    assert horizontal_overflow(page) == 0
    width = page.evaluate("document.querySelector('h1').closest('table').offsetWidth")
    assert 560 <= width <= 600  # the 600 px column, centred


def test_the_preview_file_of_the_main_job_reads_on_a_phone(
    page: Page, default_categories: None, screenshot: Callable[..., Path], tmp_path: Path
) -> None:
    """`manage.py email_preview` (what `scripts/run.sh` writes after the build), opened from
    disk at 375 px: the chart inline, shown at a width where its smallest text is 11 px or more.
    Screenshot: test-artifacts/screenshots/email-preview-375.png."""
    from django.core.management import call_command

    from digests.chart import CHART_WIDTH_PX, FONT_PX

    render_caches_clear()
    issue_create(papers_per_section=3, summary_length=1200)
    call_command("email_preview", "--output-dir", str(tmp_path), stdout=StringIO())
    (html_file,) = tmp_path.glob("*.html")

    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(html_file.as_uri(), wait_until="load")
    chart = page.locator("img[src^='data:image/png']").first
    natural = page.evaluate("(img) => img.naturalWidth", chart.element_handle())
    shown = chart.bounding_box()["width"]  # type: ignore[index]
    assert natural == CHART_WIDTH_PX
    assert min(FONT_PX.values()) * shown / natural >= 11
    assert horizontal_overflow(page) == 0
    screenshot(page, "email-preview-375")
