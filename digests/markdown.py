"""Markdown from the LLM or an editor, as sanitised HTML (emails, archive, admin preview) and as
plain text (the text part of the email).

Python-Markdown turns the text into HTML, passing any raw HTML in it through; nh3 then keeps only
an allow-list of tags and attributes, links only to https, and drops <script> and <style> with
their content. Headings are shifted down (# and ## become h3) because the page or email around
a summary already uses h1 and h2.
"""

from __future__ import annotations

import re
from functools import lru_cache
from html.parser import HTMLParser

import markdown as markdown_lib
import nh3

ALLOWED_TAGS = frozenset(
    {"p", "br", "hr", "strong", "em", "b", "i", "ul", "ol", "li", "h3", "h4"}
    | {"blockquote", "code", "pre", "a", "sup", "sub"}
)
# `start` keeps the numbering of "1. ... paragraph ... 2. ..." (each number its own list), the
# shape LLM reports usually have.
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
URL_SCHEMES = frozenset({"https"})
EXTENSIONS = ["sane_lists"]

_TOP_HEADING = re.compile(r"<(/?)h[12]\b")
_LOW_HEADING = re.compile(r"<(/?)h[56]\b")
_BLANK_LINES = re.compile(r"\n{3,}")


# Texts rendered, kept per process: an issue's reports are rendered again for each choice of
# categories, each preview and each page (2-3 ms a report); a pure function of the text.
CACHED_TEXTS = 512


def markdown_html(*, text: str) -> str:
    """Sanitised HTML of a Markdown text: safe to put into a page or an email as it is."""
    return _markdown_html(text or "")


@lru_cache(maxsize=CACHED_TEXTS)
def _markdown_html(text: str) -> str:
    html = markdown_lib.markdown(text, extensions=EXTENSIONS, output_format="html")
    html = _LOW_HEADING.sub(r"<\1h4", _TOP_HEADING.sub(r"<\1h3", html))
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer",
    )


def _list_start(tag: str, attrs: list[tuple[str, str | None]]) -> int:
    """The counter before the first item: -1 for bullets."""
    if tag != "ol":
        return -1
    start = dict(attrs).get("start") or "1"
    return int(start) - 1 if start.isdigit() else 0


class _TextWriter(HTMLParser):
    """Sanitised HTML to readable plain text: paragraphs, bullets, numbered items, link targets."""

    BLOCKS = frozenset({"p", "h3", "h4", "blockquote", "pre", "ul", "ol", "hr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.lists: list[list[int]] = []  # [counter] per open list; -1 = bullets
        self.href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCKS:
            self.out.append("\n\n")
        if tag in {"ul", "ol"}:
            self.lists.append([_list_start(tag, attrs)])
        elif tag == "li":
            self._item_start()
        elif tag == "br":
            self.out.append("\n")
        elif tag == "a":
            self.href = dict(attrs).get("href")

    def _item_start(self) -> None:
        indent = "  " * max(len(self.lists) - 1, 0)
        counter = self.lists[-1] if self.lists else [-1]
        if counter[0] >= 0:
            counter[0] += 1
            self.out.append(f"\n{indent}{counter[0]}. ")
        else:
            self.out.append(f"\n{indent}- ")

    def handle_endtag(self, tag: str) -> None:
        if tag in {"ul", "ol"} and self.lists:
            self.lists.pop()
        if tag in self.BLOCKS:
            self.out.append("\n\n")
        elif tag == "a" and self.href:
            self.out.append(f" ({self.href})")
            self.href = None

    def handle_data(self, data: str) -> None:
        if "\n" in data and not data.strip():
            return  # the newlines between tags in the HTML source
        self.out.append(data.replace("\n", " ") if self.lists else data)

    def text(self) -> str:
        lines = [line.rstrip() for line in "".join(self.out).splitlines()]
        return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def html_text(*, html: str) -> str:
    """Plain text of sanitised HTML (the output of markdown_html)."""
    writer = _TextWriter()
    writer.feed(html)
    writer.close()
    return writer.text()


def markdown_text(*, text: str) -> str:
    """Plain text of a Markdown text, after the same sanitising as the HTML."""
    return _markdown_text(text or "")


@lru_cache(maxsize=CACHED_TEXTS)
def _markdown_text(text: str) -> str:
    return html_text(html=_markdown_html(text))
