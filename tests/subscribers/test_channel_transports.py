"""One post to Slack, Discord or Telegram and what the service answered, read from the answers
the real services give (the fake speaks their APIs); the pace each service allows."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from subscribers.channels.transports import (
    ChatPace,
    TelegramError,
    channel_post,
    discord_wait_url,
    telegram_call,
)
from tests.fakes.chat_server import FakeChat, Fault

SLACK_BODY = {"text": "Daily AI Insights", "blocks": [{"type": "divider"}]}
DISCORD_BODY = {"content": "hello", "embeds": [], "allowed_mentions": {"parse": []}}
TELEGRAM_BODY = {"text": "<b>hello</b>", "parse_mode": "HTML"}


@pytest.fixture(scope="module")
def chat() -> Iterator[FakeChat]:
    with FakeChat() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _telegram(chat: FakeChat, settings: Any) -> None:
    settings.TELEGRAM_API_URL = chat.telegram_api_url
    settings.TELEGRAM_BOT_TOKEN = chat.telegram_token
    settings.CHANNEL_TIMEOUT = 5.0


def slack(chat: FakeChat, name: str, body: dict[str, Any] = SLACK_BODY) -> Any:
    return channel_post(kind="slack", url=chat.slack_url(name), chat_id="", body=body)


def discord(chat: FakeChat, name: str, body: dict[str, Any] = DISCORD_BODY) -> Any:
    return channel_post(kind="discord", url=chat.discord_url(name), chat_id="", body=body)


def telegram(chat_id: str, body: dict[str, Any] = TELEGRAM_BODY) -> Any:
    return channel_post(kind="telegram", url="", chat_id=chat_id, body=body)


# --- Slack ----------------------------------------------------------------------------------------


def test_a_slack_post_is_accepted_with_ok(chat: FakeChat) -> None:
    result = slack(chat, "s-ok")
    assert result.ok and not result.revoked and result.retry_after is None
    assert chat.messages_for("s-ok") == [SLACK_BODY]


def test_slack_429_is_retried_after_its_retry_after_header(chat: FakeChat) -> None:
    chat.script("slack", "s-429", Fault(429, retry_after=7))
    result = slack(chat, "s-429")
    assert not result.ok and result.retry_after == 7.0 and not result.revoked
    assert result.error == "429 rate_limited"


def test_a_slack_500_is_retried_later(chat: FakeChat) -> None:
    chat.script("slack", "s-500", 500)
    result = slack(chat, "s-500")
    assert not result.ok and result.retry_after == 5.0 and "rollup_error" in result.error


@pytest.mark.parametrize(("status", "text"), [(404, "no_service"), (410, "channel_is_archived")])
def test_a_removed_slack_webhook_is_revoked(chat: FakeChat, status: int, text: str) -> None:
    chat.script("slack", f"s-{status}", status)
    result = slack(chat, f"s-{status}")
    assert result.revoked and not result.ok and result.retry_after is None
    assert result.error == f"{status} {text}"


def test_slack_refuses_too_many_blocks_and_that_is_final_without_the_secret(
    chat: FakeChat,
) -> None:
    body = {"text": "x", "blocks": [{"type": "divider"}] * 51}
    result = slack(chat, "s-400", body)
    assert not result.ok and not result.revoked and result.retry_after is None
    assert result.error == "400 invalid_blocks"
    assert "slack-secret" not in result.error


# --- Discord --------------------------------------------------------------------------------------


def test_a_discord_post_waits_for_the_message_and_keeps_the_url_query(chat: FakeChat) -> None:
    url = chat.discord_url("701") + "?thread_id=55"
    result = channel_post(kind="discord", url=url, chat_id="", body=DISCORD_BODY)
    assert result.ok and result.message_id.isdigit()
    call = chat.calls[-1]
    assert call.query == {"thread_id": "55", "wait": "true"}
    assert discord_wait_url("https://d.example/api/webhooks/1/t?wait=false").endswith(
        "/t?wait=true"
    )


def test_discord_429_is_read_from_its_json_retry_after(chat: FakeChat) -> None:
    chat.script("discord", "702", Fault(429, retry_after=1.5))
    result = discord(chat, "702")
    assert not result.ok and result.retry_after == 1.5
    assert result.error == "429 You are being rate limited."


def test_an_unknown_discord_webhook_is_revoked(chat: FakeChat) -> None:
    chat.script("discord", "703", 404)
    result = discord(chat, "703")
    assert result.revoked and result.error == "404 Unknown Webhook (code 10015)"
    assert "discord-token" not in result.error


def test_a_discord_502_is_retried_later(chat: FakeChat) -> None:
    chat.script("discord", "704", 502)
    result = discord(chat, "704")
    assert result.retry_after == 5.0 and not result.revoked


def test_discord_refuses_eleven_embeds_and_that_is_final(chat: FakeChat) -> None:
    body = {"embeds": [{"description": "x"}] * 11, "allowed_mentions": {"parse": []}}
    result = discord(chat, "705", body)
    assert not result.ok and not result.revoked and result.retry_after is None
    assert result.error == "400 Invalid Form Body (code 50035)"


# --- Telegram -------------------------------------------------------------------------------------


def test_a_telegram_message_goes_to_its_chat(chat: FakeChat) -> None:
    result = telegram("-2001")
    assert result.ok and result.message_id == "1"
    (body,) = chat.messages_for("-2001")
    assert body["chat_id"] == "-2001" and body["text"] == "<b>hello</b>"


def test_telegram_429_is_read_from_its_parameters(chat: FakeChat) -> None:
    chat.script("telegram", "-2002", Fault(429, retry_after=3))
    result = telegram("-2002")
    assert not result.ok and result.retry_after == 3.0
    assert result.error == "429 Too Many Requests: retry after 3"


@pytest.mark.parametrize(
    ("status", "description"),
    [
        (403, "Forbidden: bot was kicked from the group chat"),
        (403, "Forbidden: bot was blocked by the user"),
        (400, "Bad Request: chat not found"),
    ],
)
def test_a_chat_the_bot_left_is_revoked(chat: FakeChat, status: int, description: str) -> None:
    answer = {"ok": False, "error_code": status, "description": description}
    chat.script("telegram", "-2003", Fault(status, body=answer))
    result = telegram("-2003")
    assert result.revoked and not result.ok and result.error == f"{status} {description}"


def test_a_group_upgraded_to_a_supergroup_names_its_new_chat(chat: FakeChat) -> None:
    chat.migrate("-2004", "-1002004")
    result = telegram("-2004")
    assert not result.ok and not result.revoked and result.retry_after is None
    assert result.migrate_to_chat_id == "-1002004"
    assert telegram("-1002004").ok


def test_a_telegram_500_is_retried_and_its_error_has_no_token(chat: FakeChat) -> None:
    chat.script("telegram", "-2005", 500)
    result = telegram("-2005")
    assert result.retry_after == 5.0 and result.error == "500 Internal Server Error"
    assert chat.telegram_token not in result.error and "bot" not in result.error


def test_html_telegram_cannot_parse_is_a_final_refusal(chat: FakeChat) -> None:
    result = telegram("-2006", {"text": "<b>open", "parse_mode": "HTML"})
    assert not result.ok and not result.revoked and result.retry_after is None
    assert "can't parse entities" in result.error


def test_telegram_call_sets_the_webhook_and_reads_the_bot(chat: FakeChat) -> None:
    params = {"url": "https://news.example.org/t/", "secret_token": "s", "allowed_updates": []}
    assert telegram_call("setWebhook", params)["result"] is True
    assert chat.webhook == {"url": params["url"], "secret_token": "s", "allowed_updates": []}
    assert telegram_call("getMe", {})["result"]["username"] == "daily_ai_insights_bot"
    info = telegram_call("getWebhookInfo", {})["result"]
    assert info["url"] == params["url"]


def test_telegram_call_raises_with_telegrams_description_and_no_token(
    chat: FakeChat, settings: Any
) -> None:
    settings.TELEGRAM_BOT_TOKEN = "999:WRONG-token"
    with pytest.raises(TelegramError) as raised:
        telegram_call("getMe", {})
    assert raised.value.error_code == 401
    assert str(raised.value) == "401 Unauthorized"
    assert "WRONG" not in str(raised.value)


# --- The network ----------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("kind", ["slack", "discord", "telegram"])
def test_no_answer_is_retried_later_and_names_no_secret(kind: str, settings: Any) -> None:
    base = f"http://127.0.0.1:{closed_port()}"
    settings.TELEGRAM_API_URL = base
    url = f"{base}/services/T1/B1/very-secret" if kind == "slack" else f"{base}/api/webhooks/1/tok"
    result = channel_post(kind=kind, url=url, chat_id="-1", body={"text": "x"})
    assert not result.ok and result.retry_after == 5.0
    assert result.error.startswith("no answer network error")
    assert "very-secret" not in result.error and settings.TELEGRAM_BOT_TOKEN not in result.error


def test_a_service_slower_than_the_timeout_is_retried_later(settings: Any) -> None:
    settings.CHANNEL_TIMEOUT = 0.1
    with FakeChat(latency=0.4) as slow:
        result = channel_post(kind="slack", url=slow.slack_url("slow"), chat_id="", body=SLACK_BODY)
    assert not result.ok and result.retry_after == 5.0 and "timed out" in result.error


# --- The pace -------------------------------------------------------------------------------------


class Clock:
    """Time that moves only when slept."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_slack_gets_one_message_a_second_per_webhook() -> None:
    clock = Clock()
    pace = ChatPace(clock=clock, sleep=clock.sleep)
    assert pace.wait("slack", "hook-a") == 0.0
    assert pace.wait("slack", "hook-b") == 0.0  # another webhook does not wait
    assert pace.wait("slack", "hook-a") == 1.0
    assert pace.wait("slack", "hook-a") == 1.0
    assert clock.now == 102.0


def test_discord_gets_five_messages_per_two_seconds_per_webhook() -> None:
    clock = Clock()
    pace = ChatPace(clock=clock, sleep=clock.sleep)
    waits = []
    for _ in range(5):
        waits.append(pace.wait("discord", "hook"))
        clock.now += 0.1
    waits.append(pace.wait("discord", "hook"))
    assert waits == [0.0] * 5 + [pytest.approx(1.5)]  # the first left the window at 102.0
    assert clock.now == pytest.approx(102.0)


def test_telegram_gets_one_message_a_second_per_chat_and_a_rate_across_chats(
    settings: Any,
) -> None:
    settings.TELEGRAM_RATE_PER_SECOND = 25.0
    clock = Clock()
    pace = ChatPace(clock=clock, sleep=clock.sleep)
    waits = [pace.wait("telegram", str(chat_id)) for chat_id in range(3)]
    assert waits == [0.0, pytest.approx(0.04), pytest.approx(0.04)]
    assert pace.wait("telegram", "0") == pytest.approx(1.0 - 0.08)  # its chat's second
