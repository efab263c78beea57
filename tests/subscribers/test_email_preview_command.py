"""`manage.py email_preview`: the email one reader gets of an issue, written as files."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from digests.models import Category
from subscribers.rendering import render_caches_clear
from tests.issue_factory import issue_create
from tests.subscribers.factories import subscriber_create

pytestmark = pytest.mark.django_db

INLINE_PNG = re.compile(r'<img[^>]+src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(autouse=True)
def _fresh_renders() -> Iterator[None]:
    render_caches_clear()
    yield
    render_caches_clear()


def preview_run(*args: str) -> tuple[str, str, str]:
    """Runs the command; returns its output and the HTML and text files it names."""
    out = io.StringIO()
    call_command("email_preview", *args, stdout=out)
    html_path = re.search(r"HTML:\s+(\S+\.html)", out.getvalue())
    text_path = re.search(r"Plain text:\s+(\S+\.txt)", out.getvalue())
    assert html_path and text_path, out.getvalue()
    read = [Path(found.group(1)).read_text(encoding="utf-8") for found in (html_path, text_path)]
    return out.getvalue(), read[0], read[1]


def test_it_writes_the_whole_issue_as_html_with_the_chart_inline_and_as_text(
    tmp_path: Path,
) -> None:
    first, second = list(Category.objects.order_by("position"))[:2]
    issue_create(categories=[first, second], papers_per_section=2)

    out, html, text = preview_run("--output-dir", str(tmp_path))

    assert f"categories: {first.name}, {second.name}; language: ko" in out
    assert html.lower().startswith("<!doctype html>") and html.rstrip().endswith("</html>")
    assert first.name in html and second.name in html
    assert "요약 보고서" in html  # the sections' summaries
    chart = INLINE_PNG.search(html)
    assert chart is not None and "cid:" not in html
    assert Image.open(io.BytesIO(base64.b64decode(chart.group(1)))).size[0] == 600
    assert first.name in text and second.name in text and "요약 보고서" in text
    assert "@@" not in html + text  # the personal links are filled in
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "issue-2026-08-13-all-ko.html",
        "issue-2026-08-13-all-ko.txt",
    ]


def test_as_one_reader_it_shows_only_their_categories_in_their_language(tmp_path: Path) -> None:
    first, second = list(Category.objects.order_by("position"))[:2]
    issue_create(categories=[first, second], papers_per_section=2)
    reader = subscriber_create(email="ada@example.com", language="en", categories=[second])

    out, html, text = preview_run("--subscriber", "Ada@example.com", "--output-dir", str(tmp_path))

    assert "as ada@example.com" in out
    assert second.name in html and first.name not in html
    assert second.name in text and first.name not in text
    assert "Unsubscribe" in text  # English, the reader's language
    assert (tmp_path / f"issue-2026-08-13-reader-{reader.pk}-en.html").exists()


def test_it_says_how_to_build_an_issue_when_there_is_none(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"No issue yet: build one with `manage\.py run_daily`"):
        call_command("email_preview", "--output-dir", str(tmp_path))
