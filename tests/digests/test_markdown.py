from __future__ import annotations

from digests.markdown import html_text, markdown_html, markdown_text


def test_it_renders_the_markdown_an_llm_writes() -> None:
    html = markdown_html(text="**요약 보고서**\n\n* 하나\n* 둘\n\n## 결론\n\n끝.")
    assert "<strong>요약 보고서</strong>" in html
    assert "<li>하나</li>" in html
    assert "<h3>결론</h3>" in html  # ## is shifted below the email's own headings
    assert "<h2" not in html


def test_it_keeps_the_numbers_of_items_split_by_paragraphs() -> None:
    html = markdown_html(text="1. **하나**\n\n문단\n\n2. **둘**\n\n문단")
    assert '<ol start="2">' in html
    assert "2. 둘" in markdown_text(text="1. **하나**\n\n문단\n\n2. **둘**\n\n문단")


def test_it_removes_scripts_and_event_handlers() -> None:
    html = markdown_html(
        text='<script>alert("x")</script> <img src=x onerror="alert(1)"> '
        '<div onclick="steal()">글</div> <iframe src="https://evil.example"></iframe>'
    )
    assert "<script" not in html and "alert" not in html
    assert "<img" not in html and "onerror" not in html
    assert "onclick" not in html and "<iframe" not in html
    assert "글" in html


def test_it_keeps_only_https_links() -> None:
    html = markdown_html(
        text="[a](javascript:alert(1)) [b](data:text/html,x) [c](http://plain.example) "
        '[d](https://arxiv.org/abs/2608.1) <a href="JaVaScRiPt:alert(1)">e</a>'
    )
    assert "javascript" not in html.lower()
    assert "data:" not in html and "http://plain.example" not in html
    assert '<a href="https://arxiv.org/abs/2608.1" rel="noopener noreferrer">d</a>' in html


def test_it_drops_style_attributes_and_unknown_tags() -> None:
    html = markdown_html(text='<p style="position:fixed">x</p><table><tr><td>t</td></tr></table>')
    assert "style" not in html and "<table" not in html


def test_the_plain_text_has_the_same_content_without_markup() -> None:
    text = markdown_text(
        text="**요약**\n\n1. 첫째 [링크](https://example.com/a)\n2. 둘째\n\n"
        "* 가\n* 나\n\n<script>x()</script>끝"
    )
    assert "요약" in text and "**" not in text and "<" not in text
    assert "1. 첫째 링크 (https://example.com/a)\n2. 둘째" in text
    assert "- 가\n- 나" in text
    assert "x()" not in text


def test_html_text_turns_entities_back_into_characters() -> None:
    assert html_text(html="<p>A &amp; B &lt;tag&gt;</p>") == "A & B <tag>"
