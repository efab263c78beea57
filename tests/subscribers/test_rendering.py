"""The digest email as a reader sees it: both parts, per variant, in two languages."""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from digests.models import Category, Digest, Paper
from subscribers.rendering import (
    PERSONAL,
    chart_cid_make,
    digest_context,
    personalise,
    personalise_html,
    personalise_text,
    placeholder,
    variant_key,
    variant_render,
    web_version_url,
)
from tests.issue_factory import issue_create

pytestmark = pytest.mark.django_db

GMAIL_CLIP_BYTES = 102 * 1024


def categories() -> list[Category]:
    return list(Category.objects.order_by("position", "name"))


def render(digest: Digest, ids: list[int], language: str = "ko"):  # type: ignore[no-untyped-def]
    key = variant_key(ids)
    content = digest_context(digest=digest)
    cid = chart_cid_make(digest_id=digest.pk, key=key)
    return variant_render(content=content, key=key, language=language, chart_cid=cid)


def test_variant_keys_are_sorted_unique_ids() -> None:
    assert variant_key([7, 3, 5, 3]) == "3,5,7"
    assert variant_key([]) == ""


def test_a_full_six_category_issue_stays_under_gmails_clipping_size() -> None:
    digest = issue_create(papers_per_section=5, summary_length=2500)
    rendered = render(digest, [c.pk for c in categories()])
    size = len(rendered.html.encode())
    print(f"full six-category issue: {size} bytes of HTML")
    assert size < GMAIL_CLIP_BYTES
    assert rendered.html.count("<h2") == 6


def test_it_shows_only_the_chosen_categories_in_the_editors_order() -> None:
    nlp, cv, training, llm, rl, multimodal = categories()
    # The editor put RL first and NLP last.
    digest = issue_create(categories=[rl, cv, llm, multimodal, training, nlp])
    rendered = render(digest, [nlp.pk, rl.pk, llm.pk])
    html_headings = re.findall(r"<h2[^>]*>([^<]+)</h2>", rendered.html)
    text_headings = re.findall(r"^== (.+) ==$", rendered.text, flags=re.MULTILINE)
    assert html_headings == text_headings == [rl.name, llm.name, nlp.name]
    for part in (rendered.html, rendered.text):
        assert cv.name not in part and multimodal.name not in part
    assert rendered.subject == (f"Daily AI Insights · 2026-08-13 · {rl.name}, {llm.name} 외 1")
    assert not rendered.empty


def test_both_parts_carry_the_sources_the_links_and_the_placeholders() -> None:
    nlp = categories()[0]
    digest = issue_create(categories=[nlp], papers_per_section=2)
    paper = Paper.objects.filter(section_entries__section__digest=digest).first()
    assert paper is not None
    rendered = render(digest, [nlp.pk])
    url = f"https://arxiv.org/abs/{paper.arxiv_id}v1"  # the stored http:// URL, upgraded
    for part in (rendered.html, rendered.text):
        assert url in part
        assert paper.title in part
        assert "Author 1, Author 2, Author 3 외 3명" in part
        assert placeholder("preferences_url") in part
        assert placeholder("unsubscribe_url") in part
        assert "http://localhost:8000/archive/2026-08-13/" in part
        assert "http://localhost:8000/archive/atom.xml" in part
        assert "주제 1: 모델 평가와 편향" in part
    assert f'href="{url}"' in rendered.html
    assert web_version_url(digest=digest) == "http://localhost:8000/archive/2026-08-13/"


def test_the_chart_is_referenced_by_the_content_id_the_engine_attaches() -> None:
    nlp = categories()[0]
    digest = issue_create(categories=[nlp])
    rendered = render(digest, [nlp.pk])
    cid = chart_cid_make(digest_id=digest.pk, key=str(nlp.pk))
    assert f'src="cid:{cid}"' in rendered.html
    assert rendered.chart_png.startswith(b"\x89PNG")
    assert re.fullmatch(r"[A-Za-z0-9.-]+@inline", cid)


def test_each_choice_of_categories_gets_its_own_highlighted_chart() -> None:
    nlp, cv, *_ = categories()
    digest = issue_create()
    first, second = render(digest, [nlp.pk]), render(digest, [cv.pk])
    assert first.chart_png != second.chart_png
    assert render(digest, [nlp.pk]).chart_png == first.chart_png


def test_a_variant_is_rendered_once_and_then_served_from_the_cache() -> None:
    digest = issue_create(categories=categories()[:2])
    assert render(digest, [categories()[0].pk]) is render(digest, [categories()[0].pk])


def test_english_chrome_keeps_the_summaries_in_the_digest_language() -> None:
    nlp = categories()[0]
    digest = issue_create(categories=[nlp])
    rendered = render(digest, [nlp.pk], language="en")
    for part in (rendered.html, rendered.text):
        assert "Unsubscribe" in part and "Sources" in part and "View in browser" in part
        assert "Author 1, Author 2, Author 3 and 3 more" in part
        assert "요약 보고서" in part  # the summary itself stays Korean
    assert '<html lang="en"' in rendered.html
    assert 'lang="ko"' in rendered.html


def test_feed_and_llm_text_is_escaped_or_sanitised() -> None:
    nlp = categories()[0]
    evil = (
        "<script>alert('s')</script> <img src=x onerror=alert(1)> "
        "[click](javascript:alert(2)) <b>bold</b>"
    )
    digest = issue_create(categories=[nlp], papers_per_section=1, summaries={nlp.pk: evil})
    Paper.objects.filter(section_entries__section__digest=digest).update(
        title='<img src=x onerror="alert(3)">Title</a>', authors=["<script>x</script>Eve"]
    )
    Digest.objects.filter(pk=digest.pk).update(introduction="<script>alert(4)</script>")
    digest.refresh_from_db()
    html = render(digest, [nlp.pk]).html
    assert "<script" not in html
    assert not re.search(r"<[a-z]+[^>]*\son[a-z]+=", html)  # no live event handler
    assert "<img src=x" not in html and '<img src="x"' not in html
    assert "javascript:" not in html
    assert "&lt;img src=x onerror=&quot;alert(3)&quot;&gt;Title&lt;/a&gt;" in html
    assert "&lt;script&gt;x&lt;/script&gt;Eve" in html
    assert "<b>bold</b>" in html


def test_a_reader_whose_categories_have_no_section_gets_the_short_note() -> None:
    nlp, cv, *_ = categories()
    digest = issue_create(categories=[nlp])
    rendered = render(digest, [cv.pk])
    assert rendered.empty
    assert rendered.chart_png == b""
    assert "cid:" not in rendered.html
    assert rendered.subject == (
        "Daily AI Insights · 2026-08-13 · 오늘은 선택하신 분야의 새 논문이 없습니다"
    )
    for part in (rendered.html, rendered.text):
        assert cv.name in part and nlp.name not in part
        assert "http://localhost:8000/archive/2026-08-13/" in part
        assert placeholder("unsubscribe_url") in part


def test_personalise_fills_in_each_readers_links() -> None:
    nlp = categories()[0]
    rendered = render(issue_create(categories=[nlp]), [nlp.pk])
    values = {
        "preferences_url": "https://news.example.com/p/abc:1/",
        "unsubscribe_url": "https://news.example.com/u/abc:1/?a=1&b=2",
    }
    html = personalise_html(rendered.html, values)
    text = personalise_text(rendered.text, values)
    assert "@@" not in html and "@@" not in text
    assert 'href="https://news.example.com/u/abc:1/?a=1&amp;b=2"' in html
    assert "https://news.example.com/u/abc:1/?a=1&b=2" in text
    assert set(PERSONAL) == set(values)


def test_personalise_leaves_unknown_placeholders_alone() -> None:
    assert personalise("a @@x@@ b @@y@@", {"x": "1"}) == "a 1 b @@y@@"


def test_loading_an_issue_takes_a_fixed_number_of_queries() -> None:
    digest = issue_create()
    with CaptureQueriesContext(connection) as queries:
        content = digest_context(digest=digest)
    assert len(queries) <= 3
    assert len(content.sections) == 6 and all(len(s.papers) == 5 for s in content.sections)
    ids = [c.pk for c in categories()]
    with CaptureQueriesContext(connection) as queries:
        render(digest, ids)
    assert len(queries) == 0  # templates get plain data


def test_the_date_is_written_for_the_readers_language() -> None:
    digest = issue_create(day=date(2026, 8, 13), categories=categories()[:1])
    assert "2026년 8월 13일 (목)" in render(digest, [categories()[0].pk]).html
    assert "Thu 13 August 2026" in render(digest, [categories()[0].pk], language="en").html
