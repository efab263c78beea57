"""The issue as a team chat's message: Slack Block Kit, Discord embeds, Telegram HTML.

One issue is first read into plain data (`IssueView`: the header, each chosen section's name, a
short lead of its report and its papers as the email shows them, the links), then written in
each service's format within that service's limits:

- Slack: one message, at most 50 blocks, a section's text at most 3,000 characters, the header
  (plain text) at most 150; mrkdwn escaped (`&`, `<`, `>`), links as `<url|label>`.
- Discord: messages of at most 10 embeds and 6,000 characters across their embeds (an embed's
  title at most 256, its description at most 4,096); Markdown escaped with backslashes and
  `allowed_mentions: {"parse": []}`, so nothing in a title pings anyone.
- Telegram: HTML (b, i, a, blockquote) in parts of at most 4,096 characters, measured as the
  HTML string itself (longer than the text Telegram counts), split between sections and papers.

Lengths are counted in UTF-16 code units (what Telegram counts; never fewer than characters).
Text from the LLM, the feeds and editors is escaped by every format. The fixed words are
translated with gettext in the channel's language; the reports are the channel's language's
where the issue has them (`DigestContent.in_language`), as in the email.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from digests.content import DigestContent
from digests.models import Digest

from .. import rendering
from ..rendering import BRAND, BoundedCache

SLACK = "slack"
DISCORD = "discord"
TELEGRAM = "telegram"
KINDS = (SLACK, DISCORD, TELEGRAM)

SLACK_BLOCKS = 50
SLACK_SECTION_TEXT = 3000
SLACK_HEADER_TEXT = 150
DISCORD_EMBEDS = 10
DISCORD_TITLE = 256
DISCORD_DESCRIPTION = 4096
DISCORD_FIELD_VALUE = 1024
DISCORD_TOTAL = 6000
DISCORD_CONTENT = 2000
TELEGRAM_TEXT = 4096

LEAD_SENTENCES = 2
LEAD_CHARS = 300
TITLE_CHARS = 300  # a paper's title, cut before escaping (feeds are untrusted)
AUTHORS_CHARS = 200
NAME_CHARS = 120
MESSAGE_CACHE_SIZE = 256
# The chart of an issue that is not public yet answers only staff (digests/views.py).
CHART_STATUSES = (Digest.Status.SENDING, Digest.Status.PAUSED, Digest.Status.SENT)

_SENTENCE_END = re.compile(r"(?<=[.!?。])\s+")
_ENDS_SENTENCE = re.compile(r"[.!?。…)\]]$")
_LIST_ITEM = re.compile(r"^(?:[-*•]|\d+[.)])\s")


@dataclass(frozen=True)
class ChannelMessage:
    kind: str  # "slack" | "discord" | "telegram"
    # The JSON bodies to POST, in order. Slack: exactly one; Discord and Telegram: one or more.
    # Telegram's bodies have no chat_id: the transport adds it.
    parts: tuple[dict[str, Any], ...]
    empty: bool  # no section (nor keyword match) for the channel's choice today


# --- The issue as plain data ---------------------------------------------------------------------


@dataclass(frozen=True)
class PaperLine:
    title: str
    url: str
    authors: str
    match: bool
    category: str = ""  # for a keyword match outside the chosen categories


@dataclass(frozen=True)
class SectionView:
    name: str
    colour: str
    lead: str
    count_line: str
    papers: tuple[PaperLine, ...]


@dataclass(frozen=True)
class IssueView:
    header: str  # brand and the issue's day (a weekly issue: its week)
    title: str
    fallback: str  # one line: the subject an email of this choice would have
    sections: tuple[SectionView, ...]
    other: tuple[PaperLine, ...]  # keyword matches in categories not chosen
    web_url: str
    chart_url: str  # "" while the issue's chart is not public
    words: dict[str, str]
    empty: bool


def flat(text: str) -> str:
    return " ".join(str(text).split())


def units(text: str) -> int:
    """The length as Telegram (and JavaScript) count it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def cut(text: str, limit: int) -> str:
    """`text` on one line in at most `limit` units, cut at a word boundary with "…"."""
    text = flat(text)
    if units(text) <= limit:
        return text
    room = max(limit - 1, 0)
    head = text[:room]
    while units(head) > room:
        head = head[:-1]
    if " " in head[room // 2 :]:
        head = head.rsplit(" ", 1)[0]
    return head.rstrip(" ,;:") + "…"


def fit(text: str, limit: int, escape: Callable[[str], str]) -> str:
    """`text` escaped in at most `limit` units: cut (with "…") before escaping, never inside
    an entity or an escape."""
    room = limit
    while True:
        escaped = escape(cut(text, room))
        if units(escaped) <= limit or room <= 1:
            return escaped
        room -= max(units(escaped) - limit, 1)


def lead_of(summary_text: str) -> str:
    """The report's first sentences (at most LEAD_SENTENCES, LEAD_CHARS): its headings and
    list items skipped, the first paragraph of prose."""
    paragraphs = [flat(p) for p in re.split(r"\n\s*\n", summary_text or "") if p.strip()]
    prose = [p for p in paragraphs if _ENDS_SENTENCE.search(p) and not _LIST_ITEM.match(p)]
    first = prose[0] if prose else " ".join(paragraphs)
    sentences = _SENTENCE_END.split(first)
    return cut(" ".join(sentences[:LEAD_SENTENCES]), LEAD_CHARS)


def safe_url(url: str) -> str:
    """An http(s) URL with every character that could end a link in some format quoted; ""
    for anything else."""
    url = str(url or "").strip()
    if urlsplit(url).scheme.lower() not in {"http", "https"}:
        return ""
    return quote(url, safe=":/?#@!$&*+,;=%~-._")


def chart_url(*, digest: Digest) -> str:
    if digest.status not in CHART_STATUSES or not digest.chart_png:
        return ""
    day = digest.date.isoformat()
    return settings.SITE_URL + reverse("digest-chart", kwargs={"day": day})


def _own_words(language: str) -> dict[str, str]:
    with translation.override(language):
        return {
            "chart": _("Chart: new papers per category"),
            "more_papers": _("{n} more on the web"),
            "more_sections": _("{n} more categories on the web"),
            "test": _("This is a test message from Daily AI Insights."),
            "code": _("Your confirmation code: {code}"),
            "code_where": _(
                "Enter this code where you added this channel to receive the issues here."
            ),
        }


def _paper_line(paper: dict[str, Any], category: str = "") -> PaperLine:
    return PaperLine(
        title=cut(paper["title"], TITLE_CHARS),
        url=safe_url(paper["url"]),
        authors=cut(paper["authors"], AUTHORS_CHARS),
        match=bool(paper["match"]),
        category=cut(category, NAME_CHARS),
    )


def issue_view(*, digest: Digest, content: DigestContent, key: str, language: str) -> IssueView:
    """What a channel of this choice and language shows of the issue (the keyword rules of
    `key` applied as in the email)."""
    content = content.in_language(language)
    chosen = rendering.variant_ids(key)
    rules = rendering.keyword_rules(key=rendering.variant_keywords(key), digest_id=digest.pk)
    view = rendering.keyword_view(content=content, chosen=chosen, rules=rules)
    words = {**rendering.words_for(language), **_own_words(language)}
    count_words = words["papers_of_week" if content.weekly else "papers_of_day"]
    chosen_sections = content.sections_for(chosen)
    sections = []
    for section in chosen_sections:
        papers = rendering.section_papers(section, view, words=words)
        count = max(section.paper_count, len(papers))
        sections.append(
            SectionView(
                name=cut(section.name, NAME_CHARS),
                colour=section.colour,
                lead=lead_of(section.summary_text),
                count_line=count_words.format(count=count, shown=len(papers)),
                papers=tuple(_paper_line(p) for p in papers),
            )
        )
    other = tuple(
        _paper_line(p, p["category"]) for p in rendering.keywords_other_view(view=view, words=words)
    )
    date_label = rendering.issue_date_label(content=content, words=words, language=language)
    subject = rendering.subject_make(
        content=content, sections=chosen_sections, words=words, other=bool(other)
    )
    return IssueView(
        header=cut(f"{BRAND} · {date_label}", NAME_CHARS),
        title=cut(content.title, TITLE_CHARS),
        fallback=cut(subject, TITLE_CHARS),
        sections=tuple(sections),
        other=other,
        web_url=safe_url(rendering.web_version_url(digest=digest)),
        chart_url=safe_url(chart_url(digest=digest)),
        words=words,
        empty=not sections and not other,
    )


# --- Fitting lines into a limit ------------------------------------------------------------------


def lines_fit(head: list[str], items: list[str], *, limit: int, more: Callable[[int], str]) -> str:
    """`head` then as many `items` as fit in `limit` units (joined by newlines), and the line
    `more(n)` for the n left out."""
    text = "\n".join(line for line in head if line)
    for index, item in enumerate(items):
        left = len(items) - index - 1
        tail = f"\n{more(left)}" if left else ""
        if units(f"{text}\n{item}{tail}") > limit:
            return f"{text}\n{more(len(items) - index)}"
        text = f"{text}\n{item}"
    return text


Piece = str | tuple[str, str]  # a piece, or (what joins it to the one before, the piece)


def pieces_pack(pieces: Iterable[Piece], *, limit: int, joiner: str = "\n") -> list[str]:
    """Consecutive pieces joined into parts of at most `limit` units, in order; a piece is
    never split (each must fit alone), and a part never starts with a joiner."""
    parts: list[str] = []
    current = ""
    for piece in pieces:
        glue, text = piece if isinstance(piece, tuple) else (joiner, piece)
        candidate = f"{current}{glue}{text}" if current else text
        if current and units(candidate) > limit:
            parts.append(current)
            candidate = text
        current = candidate
    if current:
        parts.append(current)
    return parts


def _more_papers(words: dict[str, str]) -> Callable[[int], str]:
    return lambda n: words["more_papers"].format(n=n)


# --- Slack ----------------------------------------------------------------------------------------


def slack_escape(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_link(url: str, label: str) -> str:
    label = slack_escape(flat(label).replace("|", "｜"))  # a label cannot hold "|"
    return f"<{slack_escape(url)}|{label}>" if url else label


def slack_section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}}


def slack_context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text, "verbatim": True}]}


def _slack_paper(paper: PaperLine, words: dict[str, str]) -> str:
    badge = f" {slack_escape(words['keyword_badge'])}" if paper.match else ""
    where = f"{slack_escape(paper.category)} · " if paper.category else ""
    return f"• {slack_link(paper.url, paper.title)}{badge} — {where}{slack_escape(paper.authors)}"


def _slack_section_text(
    name: str, lead: str, count_line: str, papers: list[str], words: dict
) -> str:
    head = [f"*{slack_escape(name)}*"]
    if lead:
        head.append(slack_escape(lead))
    if count_line:
        head.append(f"_{slack_escape(count_line)}_")
    more = _more_papers(words)
    return lines_fit(head, papers, limit=SLACK_SECTION_TEXT, more=lambda n: slack_escape(more(n)))


def slack_body(issue: IssueView) -> dict[str, Any]:
    words = issue.words
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": cut(issue.header, SLACK_HEADER_TEXT)},
        },
        slack_context(slack_escape(issue.title)),
    ]
    links = [slack_link(issue.web_url, words["web_version"])]
    if issue.chart_url:
        links.append(slack_link(issue.chart_url, words["chart"]))
    footer = [{"type": "divider"}, slack_context(" · ".join(links))]
    sections = [
        _slack_section_text(
            s.name, s.lead, s.count_line, [_slack_paper(p, words) for p in s.papers], words
        )
        for s in issue.sections
    ]
    if issue.other:
        papers = [_slack_paper(p, words) for p in issue.other]
        sections.append(_slack_section_text(words["keywords_other"], "", "", papers, words))
    if issue.empty:
        sections.append(f"*{slack_escape(words['empty_heading'])}*")
    # Each section takes a divider and its text; what does not fit is on the web.
    room = (SLACK_BLOCKS - len(blocks) - len(footer)) // 2
    if len(sections) > room:
        left = len(sections) - (room - 1)
        sections = [*sections[: room - 1], slack_escape(words["more_sections"].format(n=left))]
    for text in sections:
        blocks += [{"type": "divider"}, slack_section(text)]
    return {"text": slack_escape(issue.fallback), "blocks": blocks + footer}


# --- Discord --------------------------------------------------------------------------------------

_DISCORD_SPECIAL = re.compile(r"([\\*_~`|\[\]()<>@#])")


def discord_escape(text: str) -> str:
    """Every Markdown character behind a backslash (Discord shows the character), a line's
    leading "-" too, and "://" broken so that no bare link is made of untrusted text."""
    escaped = _DISCORD_SPECIAL.sub(r"\\\1", flat(text))
    escaped = re.sub(r"^([-+]|\d+\.)", r"\\\1", escaped)
    return escaped.replace("://", "\\://")


def discord_link(url: str, label: str) -> str:
    return f"[{discord_escape(label)}]({url})" if url else discord_escape(label)


def _discord_paper(paper: PaperLine, words: dict[str, str]) -> str:
    badge = f" {discord_escape(words['keyword_badge'])}" if paper.match else ""
    where = f"{discord_escape(paper.category)} · " if paper.category else ""
    authors = discord_escape(paper.authors)
    return f"• {discord_link(paper.url, paper.title)}{badge} — {where}{authors}"


def _discord_embed(
    *, title: str, url: str, head: list[str], papers: list[str], colour: str, words: dict
) -> dict[str, Any]:
    more = _more_papers(words)
    description = lines_fit(
        head, papers, limit=DISCORD_DESCRIPTION, more=lambda n: discord_escape(more(n))
    )
    # An embed's title shows no links nor mentions: it is the category's name, as editors wrote it.
    embed: dict[str, Any] = {"title": cut(title, DISCORD_TITLE), "description": description}
    if url:
        embed["url"] = url
    if re.fullmatch(r"#[0-9A-Fa-f]{6}", colour or ""):
        embed["color"] = int(colour[1:], 16)
    return embed


def embed_size(embed: dict[str, Any]) -> int:
    """The characters Discord counts toward a message's 6,000: title, description, fields,
    footer and author."""
    texts = [embed.get("title", ""), embed.get("description", "")]
    texts += [f.get("name", "") + f.get("value", "") for f in embed.get("fields", [])]
    texts += [embed.get("footer", {}).get("text", ""), embed.get("author", {}).get("name", "")]
    return sum(units(t) for t in texts)


def discord_bodies(embeds: list[dict[str, Any]], content: str = "") -> list[dict[str, Any]]:
    """The embeds in messages of at most 10 embeds and 6,000 characters, in order; `content`
    on the first."""
    messages: list[list[dict[str, Any]]] = []
    total = 0
    for embed in embeds:
        size = embed_size(embed)
        if not messages or len(messages[-1]) >= DISCORD_EMBEDS or total + size > DISCORD_TOTAL:
            messages.append([])
            total = 0
        messages[-1].append(embed)
        total += size
    bodies: list[dict[str, Any]] = [
        {"embeds": group, "allowed_mentions": {"parse": []}} for group in messages or [[]]
    ]
    if content:
        fitted = content if units(content) <= DISCORD_CONTENT else cut(content, DISCORD_CONTENT)
        bodies[0] = {"content": fitted, **bodies[0]}
    return bodies


def discord_parts(issue: IssueView) -> list[dict[str, Any]]:
    words = issue.words
    content = f"**{discord_escape(issue.header)}**\n{discord_escape(issue.title)}"
    embeds = [
        _discord_embed(
            title=s.name,
            url=issue.web_url,
            head=[discord_escape(s.lead), f"*{discord_escape(s.count_line)}*"],
            papers=[_discord_paper(p, words) for p in s.papers],
            colour=s.colour,
            words=words,
        )
        for s in issue.sections
    ]
    if issue.other:
        embeds.append(
            _discord_embed(
                title=words["keywords_other"],
                url=issue.web_url,
                head=[],
                papers=[_discord_paper(p, words) for p in issue.other],
                colour="",
                words=words,
            )
        )
    links = [discord_link(issue.web_url, words["web_version"])]
    if issue.chart_url:
        links.append(discord_link(issue.chart_url, words["chart"]))
    closing: dict[str, Any] = {
        "title": cut(words["empty_heading"] if issue.empty else BRAND, DISCORD_TITLE),
        "description": " · ".join(links),
    }
    if issue.chart_url:
        closing["image"] = {"url": issue.chart_url}
    return discord_bodies([*embeds, closing], content)


# --- Telegram -------------------------------------------------------------------------------------


def tg(text: str) -> str:
    return html.escape(flat(text), quote=False)


def tg_link(url: str, label: str) -> str:
    return f'<a href="{html.escape(url, quote=True)}">{tg(label)}</a>' if url else tg(label)


def tg_cut(piece: str, limit: int = TELEGRAM_TEXT) -> str:
    """A piece longer than a part, as its text alone (tags dropped), cut with "…"."""
    if units(piece) <= limit:
        return piece
    return fit(html.unescape(re.sub(r"<[^>]*>", "", piece)), limit, tg)


def telegram_bodies(pieces: Iterable[Piece], joiner: str = "\n\n") -> list[dict[str, Any]]:
    """Pieces of HTML in parts of at most 4,096 units (a piece alone too long: its text cut)."""
    fitted = ((p[0], tg_cut(p[1])) if isinstance(p, tuple) else (joiner, tg_cut(p)) for p in pieces)
    parts = pieces_pack(fitted, limit=TELEGRAM_TEXT, joiner=joiner)
    return [
        {"text": part, "parse_mode": "HTML", "link_preview_options": {"is_disabled": True}}
        for part in parts
    ]


def _tg_paper(number: int, paper: PaperLine, words: dict[str, str]) -> str:
    badge = f" <b>{tg(words['keyword_badge'])}</b>" if paper.match else ""
    where = f"{tg(paper.category)} · " if paper.category else ""
    return f"{number}. {tg_link(paper.url, paper.title)}{badge}\n{where}{tg(paper.authors)}"


def telegram_parts(issue: IssueView) -> list[dict[str, Any]]:
    words = issue.words
    # Sections apart by a blank line, a section's papers one under the other.
    pieces: list[Piece] = [f"<b>{tg(issue.header)}</b>\n{tg(issue.title)}"]
    for s in issue.sections:
        lead = f"\n<blockquote>{tg(s.lead)}</blockquote>" if s.lead else ""
        pieces.append(f"<b>{tg(s.name)}</b>{lead}\n<i>{tg(s.count_line)}</i>")
        pieces += [("\n", _tg_paper(n, p, words)) for n, p in enumerate(s.papers, 1)]
    if issue.other:
        pieces.append(f"<b>{tg(words['keywords_other'])}</b>")
        pieces += [("\n", _tg_paper(n, p, words)) for n, p in enumerate(issue.other, 1)]
    if issue.empty:
        pieces.append(f"<b>{tg(words['empty_heading'])}</b>")
    links = [tg_link(issue.web_url, words["web_version"])]
    if issue.chart_url:
        links.append(tg_link(issue.chart_url, words["chart"]))
    pieces.append(" · ".join(links))
    return telegram_bodies(pieces)


# --- The public functions -------------------------------------------------------------------------

_WRITERS: dict[str, Callable[[IssueView], list[dict[str, Any]]]] = {
    SLACK: lambda issue: [slack_body(issue)],
    DISCORD: discord_parts,
    TELEGRAM: telegram_parts,
}

# Keyed by the issue's content itself (which holds its id and time of change), so an issue
# changed or rebuilt is never answered from here.
MessageKey = tuple[DigestContent, str, str, str, str, str]
_message_cache: BoundedCache[MessageKey, ChannelMessage] = BoundedCache(MESSAGE_CACHE_SIZE)


def _kind_check(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown channel kind {kind!r}")


def channel_message(*, digest: Digest, kind: str, key: str, language: str) -> ChannelMessage:
    """The issue for a channel of `kind` that chose the variant `key` (rendering.variant_key)
    in `language`; built once per process for each issue version, choice and language."""
    _kind_check(kind)
    content = rendering.digest_context(digest=digest)
    key = rendering.variant_key(rendering.variant_ids(key), rendering.variant_keywords(key))
    cache_key = (content, str(digest.status), settings.SITE_URL, kind, key, language)

    def build() -> ChannelMessage:
        issue = issue_view(digest=digest, content=content, key=key, language=language)
        return ChannelMessage(kind=kind, parts=tuple(_WRITERS[kind](issue)), empty=issue.empty)

    return _message_cache.get_or_load(cache_key, build)


def messages_cache_clear() -> None:
    _message_cache.clear()


def text_parts(kind: str, lines: list[str]) -> tuple[dict[str, Any], ...]:
    """Plain lines (not escaped yet) as a message of `kind`."""
    if kind == SLACK:
        texts = pieces_pack(
            (fit(line, SLACK_SECTION_TEXT, slack_escape) for line in lines),
            limit=SLACK_SECTION_TEXT,
        )[:SLACK_BLOCKS]
        fallback = fit(" ".join(lines), SLACK_SECTION_TEXT, slack_escape)
        return ({"text": fallback, "blocks": [slack_section(t) for t in texts]},)
    if kind == DISCORD:
        descriptions = pieces_pack(
            (fit(line, DISCORD_DESCRIPTION, discord_escape) for line in lines),
            limit=DISCORD_DESCRIPTION,
        )
        return tuple(discord_bodies([{"description": d} for d in descriptions]))
    return tuple(telegram_bodies((tg(line) for line in lines), joiner="\n"))


def confirm_message(*, kind: str, code: str, language: str) -> ChannelMessage:
    """The test message a reader confirms a channel with: it says where it comes from and
    gives the code to type back."""
    _kind_check(kind)
    words = _own_words(language)
    lines = [words["test"], words["code"].format(code=code), words["code_where"]]
    return ChannelMessage(kind=kind, parts=text_parts(kind, lines), empty=False)


def text_message(*, kind: str, text: str) -> ChannelMessage:
    """A plain reply (the Telegram bot's answers), escaped; its lines kept."""
    _kind_check(kind)
    lines = [line for line in str(text).splitlines() if line.strip()] or [" "]
    return ChannelMessage(kind=kind, parts=text_parts(kind, lines), empty=False)
