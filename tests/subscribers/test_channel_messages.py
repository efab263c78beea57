"""The issue as Slack, Discord and Telegram show it: the text a channel's members read, in the
channel's language, within each service's limits (checked by the fake services), and text from
the LLM and the feeds arriving inert."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from django.db import transaction

from digests.models import Category, Digest, DigestSection, Paper, SectionReport, SummarySource
from subscribers import rendering
from subscribers.channels import messages
from subscribers.channels.messages import (
    ChannelMessage,
    IssueView,
    PaperLine,
    SectionView,
    channel_message,
    confirm_message,
    text_message,
)
from subscribers.channels.transports import channel_post
from tests.fakes.chat_server import FakeChat
from tests.issue_factory import issue_create

pytestmark = pytest.mark.django_db

DAY = date(2026, 8, 13)
ENGLISH = "**Summary report**\n\nThe English report of {name} [1]. It has a second sentence."
EVIL = "<script>alert(1)</script> *bold* @everyone </b> [x](http://evil) <http://evil|click>"
SITE = "https://news.example.org"


@pytest.fixture(scope="module")
def chat() -> Iterator[FakeChat]:
    with FakeChat() as fake:
        yield fake


@pytest.fixture(scope="module")
def big(django_db_setup: Any, django_db_blocker: Any) -> Iterator[int]:
    """One sent issue for the module (12 categories × 10 papers, 2,000-character Korean reports,
    English reports for all but the last section), rolled back at the module's end."""
    with django_db_blocker.unblock(), transaction.atomic():
        categories = list(Category.objects.order_by("position", "name"))
        categories += [
            Category.objects.create(name=f"Extra topic {n}", slug=f"extra-{n}", position=50 + n)
            for n in range(12 - len(categories))
        ]
        digest = issue_create(
            day=DAY,
            categories=categories[:12],
            papers_per_section=10,
            summary_length=2000,
            status=Digest.Status.SENT,
        )
        sections = list(digest.sections.select_related("category").order_by("position"))
        SectionReport.objects.bulk_create(
            SectionReport(
                section=s,
                language="en",
                summary=ENGLISH.format(name=s.category.name),
                summary_source=SummarySource.LLM,
            )
            for s in sections[:-1]
        )
        yield digest.pk
        transaction.set_rollback(True)


@pytest.fixture(autouse=True)
def _languages(settings: Any) -> Iterator[None]:
    settings.DIGEST_LANGUAGES = ["ko", "en"]
    settings.DIGEST_LANGUAGE = "ko"
    settings.SITE_URL = SITE
    messages.messages_cache_clear()
    yield
    messages.messages_cache_clear()


def big_issue(big: int) -> Digest:
    return Digest.objects.get(pk=big)


def section_ids(digest: Digest) -> list[int]:
    return list(digest.sections.order_by("position").values_list("category_id", flat=True))


def all_key(digest: Digest) -> str:
    return rendering.variant_key(section_ids(digest))


# --- What a person reads, per service -------------------------------------------------------------


def slack_text(message: ChannelMessage) -> str:
    (body,) = message.parts
    texts = [body["text"]]
    for block in body["blocks"]:
        if block["type"] in ("header", "section"):
            texts.append(block["text"]["text"])
        texts += [element["text"] for element in block.get("elements", [])]
    return "\n".join(texts)


def discord_text(message: ChannelMessage) -> str:
    texts = []
    for body in message.parts:
        texts.append(body.get("content", ""))
        for embed in body["embeds"]:
            texts += [embed.get("title", ""), embed.get("description", "")]
    return "\n".join(texts)


def telegram_text(message: ChannelMessage) -> str:
    return "\n".join(part["text"] for part in message.parts)


def shown(kind: str, message: ChannelMessage) -> str:
    """The message's text as the service shows it: escapes and entities read."""
    if kind == "slack":
        return html.unescape(re.sub(r"<[^|>]*\|([^>]*)>", r"\1", slack_text(message)))
    if kind == "discord":
        labels = re.sub(r"(?<!\\)\[(.*?)(?<!\\)\]\([^)]*\)", r"\1", discord_text(message))
        return re.sub(r"\\(.)", r"\1", labels)
    return html.unescape(re.sub(r"<[^>]+>", "", telegram_text(message)))


def post_all(chat: FakeChat, kind: str, message: ChannelMessage, name: str) -> list[Any]:
    """Posts every part to the fake service; what it answered."""
    url = {"slack": chat.slack_url, "discord": chat.discord_url}.get(kind, lambda n: "")(name)
    return [channel_post(kind=kind, url=url, chat_id=name, body=part) for part in message.parts]


@pytest.fixture
def telegram_fake(chat: FakeChat, settings: Any) -> FakeChat:
    settings.TELEGRAM_API_URL = chat.telegram_api_url
    settings.TELEGRAM_BOT_TOKEN = chat.telegram_token
    return chat


# --- Content --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["slack", "discord", "telegram"])
def test_a_korean_channel_reads_the_korean_reports_and_an_english_one_the_english(
    big: int, kind: str
) -> None:
    digest = big_issue(big)
    first, *_middle, last = digest.sections.select_related("category").order_by("position")
    key = rendering.variant_key([first.category_id, last.category_id])

    korean = shown(kind, channel_message(digest=digest, kind=kind, key=key, language="ko"))
    english = shown(kind, channel_message(digest=digest, kind=kind, key=key, language="en"))

    assert "Daily AI Insights" in korean
    assert first.category.name in korean and last.category.name in korean
    assert "대규모 언어 모델(LLM)은 코드 생성과 추론 과제에서" in korean
    assert "요약 보고서" not in korean  # the report's heading is not its lead
    assert "The English report" not in korean
    assert f"The English report of {first.category.name} [1]. It has a second sentence." in english
    assert "대규모 언어 모델(LLM)은" in english  # the last section has no English report
    paper = first.entries.select_related("paper").first().paper  # type: ignore[union-attr]
    assert paper.title in korean and paper.title in english
    assert "Thu 13 August 2026" in english


@pytest.mark.parametrize("kind", ["slack", "discord", "telegram"])
def test_papers_link_to_arxiv_and_the_issue_to_its_web_version_and_public_chart(
    big: int, kind: str
) -> None:
    digest = big_issue(big)
    key = rendering.variant_key(section_ids(digest)[:1])
    raw = {
        "slack": slack_text,
        "discord": lambda m: str(m.parts),
        "telegram": telegram_text,
    }[kind](channel_message(digest=digest, kind=kind, key=key, language="en"))
    first_ids = list(
        digest.sections.order_by("position")
        .first()
        .entries.values_list("paper__arxiv_id", flat=True)  # type: ignore[union-attr]
    )
    assert first_ids
    for arxiv_id in first_ids:
        assert f"https://arxiv.org/abs/{arxiv_id}v1" in raw
    assert f"{SITE}/archive/2026-08-13/" in raw
    assert f"{SITE}/digests/2026-08-13/chart.png" in raw


@pytest.mark.parametrize("kind", ["slack", "discord", "telegram"])
def test_a_draft_links_no_chart_which_only_staff_may_see(kind: str) -> None:
    digest = issue_create(day=date(2026, 8, 20), categories=list(Category.objects.all()[:1]))
    message = channel_message(digest=digest, kind=kind, key=all_key(digest), language="en")
    assert "chart.png" not in str(message.parts)
    assert "/archive/2026-08-20/" in str(message.parts)


def test_a_weekly_issue_names_its_week_in_every_format() -> None:
    digest = issue_create(day=date(2026, 8, 16), categories=list(Category.objects.all()[:1]))
    Digest.objects.filter(pk=digest.pk).update(kind=Digest.Kind.WEEKLY)
    digest.refresh_from_db()
    for kind in ("slack", "discord", "telegram"):
        text = shown(
            kind, channel_message(digest=digest, kind=kind, key=all_key(digest), language="en")
        )
        assert "Weekly, Mon 10 August 2026 to Sun 16 August 2026" in text


def test_keyword_rules_leave_out_excluded_papers_and_mark_matches() -> None:
    category = Category.objects.order_by("position").first()
    assert category is not None
    digest = issue_create(day=date(2026, 8, 21), categories=[category], papers_per_section=3)
    papers = list(Paper.objects.filter(digest=digest).order_by("arxiv_id"))
    titles = ["Diffusion models for proteins", "Quantum annealing for ranking", "Plain title"]
    for paper, title in zip(papers, titles, strict=True):
        Paper.objects.filter(pk=paper.pk).update(title=title)
    digest.refresh_from_db()
    rendering.keyword_rules_remember([("k1", "diffusion", "quantum", False)])
    key = rendering.variant_key([category.pk], "k1")

    for kind in ("slack", "discord", "telegram"):
        text = shown(kind, channel_message(digest=digest, kind=kind, key=key, language="en"))
        assert "Quantum annealing" not in text
        assert "Diffusion models for proteins ★ keyword" in text
        assert "Plain title" in text
        assert "Plain title ★" not in text


@pytest.mark.parametrize("kind", ["slack", "discord", "telegram"])
def test_a_channel_whose_categories_have_no_section_gets_an_empty_message(
    big: int, kind: str
) -> None:
    digest = big_issue(big)
    unused = Category.objects.create(name="Not in this issue", slug="not-in-issue")
    message = channel_message(
        digest=digest, kind=kind, key=rendering.variant_key([unused.pk]), language="en"
    )
    assert message.empty
    assert "Nothing new in your categories today" in shown(kind, message)


def test_the_message_is_built_once_per_issue_choice_and_language(
    big: int, django_assert_max_num_queries: Any
) -> None:
    digest = big_issue(big)
    key = all_key(digest)
    first = channel_message(digest=digest, kind="telegram", key=key, language="ko")
    with django_assert_max_num_queries(0):
        again = channel_message(digest=digest, kind="telegram", key=key, language="ko")
    assert again is first


# --- Limits ---------------------------------------------------------------------------------------


def test_a_big_issue_is_split_for_telegram_into_parts_each_telegram_accepts_in_order(
    big: int, telegram_fake: FakeChat
) -> None:
    digest = big_issue(big)
    message = channel_message(digest=digest, kind="telegram", key=all_key(digest), language="ko")

    assert len(message.parts) > 3
    for part in message.parts:
        assert messages.units(part["text"]) <= 4096
        assert part["parse_mode"] == "HTML"
        assert part["link_preview_options"] == {"is_disabled": True}
        assert "chat_id" not in part
    results = post_all(telegram_fake, "telegram", message, "-1001")
    assert all(result.ok for result in results), [r.error for r in results]
    assert [int(r.message_id) for r in results] == list(range(1, len(results) + 1))
    text = shown("telegram", message)
    names = list(digest.sections.order_by("position").values_list("category__name", flat=True))
    places = [text.index(f"\n{name}\n") for name in names]
    assert places == sorted(places)
    arxiv_ids = Paper.objects.filter(digest=digest).values_list("arxiv_id", flat=True)
    hrefs = re.findall(r'href="([^"]+)"', telegram_text(message))
    assert sorted(h for h in hrefs if "/abs/" in h) == sorted(
        f"https://arxiv.org/abs/{a}v1" for a in arxiv_ids
    )


def test_a_big_issue_is_split_for_discord_into_messages_discord_accepts(
    big: int, chat: FakeChat
) -> None:
    digest = big_issue(big)
    message = channel_message(digest=digest, kind="discord", key=all_key(digest), language="ko")

    assert len(message.parts) > 1
    for body in message.parts:
        assert len(body["embeds"]) <= 10
        assert sum(messages.embed_size(e) for e in body["embeds"]) <= 6000
        assert body["allowed_mentions"] == {"parse": []}
        for embed in body["embeds"]:
            assert len(embed["title"]) <= 256 and len(embed["description"]) <= 4096
    results = post_all(chat, "discord", message, "9001")
    assert all(result.ok and result.message_id for result in results), [r.error for r in results]
    received = chat.messages_for("9001")
    assert [b["embeds"][0]["title"] for b in received] == [
        b["embeds"][0]["title"] for b in message.parts
    ]
    titles = [e["title"] for b in received for e in b["embeds"]]
    names = list(digest.sections.order_by("position").values_list("category__name", flat=True))
    assert titles[:12] == names


def test_a_big_issue_is_one_slack_message_slack_accepts(big: int, chat: FakeChat) -> None:
    digest = big_issue(big)
    message = channel_message(digest=digest, kind="slack", key=all_key(digest), language="ko")

    (body,) = message.parts
    assert body["text"].startswith("Daily AI Insights · 2026-08-13")
    assert len(body["blocks"]) <= 50
    assert body["blocks"][0]["type"] == "header"
    assert len(body["blocks"][0]["text"]["text"]) <= 150
    for block in body["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
    (result,) = post_all(chat, "slack", message, "big")
    assert result.ok, result.error


def section(n: int, papers: int = 10) -> SectionView:
    paper = PaperLine("A paper " * 30, "https://arxiv.org/abs/1", "Ada, Alan", False)
    return SectionView(f"Category {n}", "#123456", "A lead.", "10 papers", (paper,) * papers)


def test_slack_keeps_at_most_50_blocks_and_sends_the_rest_to_the_web(chat: FakeChat) -> None:
    issue = IssueView(
        header="Daily AI Insights · Thu 13 August 2026",
        title="Title",
        fallback="Daily AI Insights",
        sections=tuple(section(n, papers=40) for n in range(30)),
        other=(),
        web_url=f"{SITE}/archive/2026-08-13/",
        chart_url="",
        words={**rendering.words_for("en"), **messages._own_words("en")},
        empty=False,
    )
    body = messages.slack_body(issue)
    assert len(body["blocks"]) <= 50
    texts = [b["text"]["text"] for b in body["blocks"] if b["type"] == "section"]
    assert all(len(t) <= 3000 for t in texts)
    assert "more on the web" in texts[0]
    assert texts[-1] == "8 more categories on the web"
    message = ChannelMessage(kind="slack", parts=(body,), empty=False)
    assert post_all(chat, "slack", message, "capped")[0].ok


def test_a_single_overlong_text_is_cut_with_an_ellipsis_in_every_format(
    chat: FakeChat, telegram_fake: FakeChat
) -> None:
    long_line = "word " * 3000 + "& <end>"
    for kind, name in (("slack", "long"), ("discord", "9002"), ("telegram", "-1002")):
        message = text_message(kind=kind, text=long_line)
        results = post_all(chat, kind, message, name)
        assert all(r.ok for r in results), (kind, [r.error for r in results])
        assert shown(kind, message).rstrip().endswith("word…")
    (telegram,) = text_message(kind="telegram", text=long_line).parts
    assert messages.units(telegram["text"]) <= 4096 and telegram["text"].endswith("word…")


def test_a_lead_is_the_reports_first_sentences_cut_at_a_word() -> None:
    assert messages.lead_of("Title\n\nOne two. Three four! Five six.") == "One two. Three four!"
    lead = messages.lead_of("Heading\n\n" + "longword " * 100 + "end.")
    assert len(lead) <= 300 and lead.endswith("longword…")


# --- Untrusted text -------------------------------------------------------------------------------


@pytest.fixture
def hostile() -> Digest:
    category = Category.objects.order_by("position").first()
    assert category is not None
    digest = issue_create(
        day=date(2026, 8, 22),
        categories=[category],
        papers_per_section=1,
        status=Digest.Status.SENT,
        summaries={category.pk: f"**Heading**\n\nA report quoting {EVIL} as it was. Second."},
    )
    Paper.objects.filter(digest=digest).update(title=EVIL, authors=["@everyone", "</b>", EVIL])
    DigestSection.objects.filter(digest=digest).update(paper_count=1)
    digest.refresh_from_db()
    return digest


def test_text_from_the_feeds_and_the_llm_arrives_inert_on_slack(
    hostile: Digest, chat: FakeChat
) -> None:
    message = channel_message(digest=hostile, kind="slack", key=all_key(hostile), language="en")
    text = slack_text(message)
    assert "<script>" not in text and "</b>" not in text
    assert "&lt;script&gt;" in text
    assert "&lt;http://evil｜click&gt;" in text  # the label's "|" replaced
    targets = re.findall(r"<([^|>]*)\|", text)
    assert targets and all(t.startswith(("https://arxiv.org/", SITE)) for t in targets)
    assert all(b.get("text", {}).get("verbatim", True) for b in message.parts[0]["blocks"][1:])
    assert post_all(chat, "slack", message, "hostile")[0].ok


def test_text_from_the_feeds_and_the_llm_arrives_inert_on_discord(
    hostile: Digest, chat: FakeChat
) -> None:
    message = channel_message(digest=hostile, kind="discord", key=all_key(hostile), language="en")
    text = discord_text(message)
    assert r"\[x\]\(http\://evil\)" in text
    assert r"\*bold\*" in text and r"\@everyone" in text
    assert r"\<script\>" in text and r"\<http\://evil\|click\>" in text
    targets = re.findall(r"(?<!\\)\]\(([^)]*)\)", text)
    assert targets and all(t.startswith(("https://arxiv.org/", SITE)) for t in targets)
    assert all(body["allowed_mentions"] == {"parse": []} for body in message.parts)
    assert EVIL in shown("discord", message)  # readers see the title as written
    assert all(r.ok for r in post_all(chat, "discord", message, "9003"))


def test_text_from_the_feeds_and_the_llm_arrives_inert_on_telegram(
    hostile: Digest, telegram_fake: FakeChat
) -> None:
    message = channel_message(digest=hostile, kind="telegram", key=all_key(hostile), language="en")
    text = telegram_text(message)
    assert "&lt;script&gt;" in text and "&lt;/b&gt;" in text
    assert set(re.findall(r"</?([a-z-]+)", text)) <= {"b", "i", "a", "blockquote"}
    targets = re.findall(r'href="([^"]+)"', text)
    assert targets and all(t.startswith(("https://arxiv.org/", SITE)) for t in targets)
    assert EVIL in shown("telegram", message)
    results = post_all(telegram_fake, "telegram", message, "-1003")
    assert all(r.ok for r in results), [r.error for r in results]


# --- The test message and plain replies -----------------------------------------------------------


@pytest.mark.parametrize("kind", ["slack", "discord", "telegram"])
def test_the_confirmation_message_says_it_is_a_test_and_gives_the_code(
    kind: str, chat: FakeChat, telegram_fake: FakeChat
) -> None:
    message = confirm_message(kind=kind, code="K7Q2-M9", language="en")
    text = shown(kind, message)
    assert "This is a test message from Daily AI Insights." in text
    assert "Your confirmation code: K7Q2-M9" in text
    name = {"slack": "confirm", "discord": "9004", "telegram": "-1004"}[kind]
    assert all(r.ok for r in post_all(chat, kind, message, name))


@pytest.mark.parametrize("kind", ["slack", "discord", "telegram"])
def test_a_plain_reply_is_escaped(kind: str) -> None:
    message = text_message(kind=kind, text=f"Subscribed.\n{EVIL}")
    assert EVIL in shown(kind, message)
    assert "Subscribed." in shown(kind, message)
    raw = str(message.parts)
    assert "<script>" not in raw
    if kind == "discord":  # Markdown links mean something only there
        assert "](http" not in raw
    assert message.parts and not message.empty


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown channel kind"):
        text_message(kind="irc", text="hello")
