"""The Telegram bot: its webhook (the secret header), its commands in a chat, Telegram's notices
that it was removed, untrusted updates, and `manage.py telegram_webhook`. Telegram is the local
fake (tests/fakes/chat_server.py) speaking the Bot API."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from digests.models import Category
from subscribers.checks import check_telegram_webhook_secret
from subscribers.models import Channel
from tests.fakes.chat_server import TELEGRAM_TOKEN, FakeChat

pytestmark = pytest.mark.django_db

SECRET = "a-webhook-secret_0123456789"
WEBHOOK = "/telegram/webhook/"
GROUP = -1001234567890
_update_ids = itertools.count(500_000)


@pytest.fixture
def telegram(settings: Any) -> Iterator[FakeChat]:
    with FakeChat() as fake:
        settings.TELEGRAM_BOT_TOKEN = TELEGRAM_TOKEN
        settings.TELEGRAM_WEBHOOK_SECRET = SECRET
        settings.TELEGRAM_API_URL = fake.telegram_api_url
        # The senders write in English (language_code "en"): the bot answers them in English.
        settings.DIGEST_LANGUAGES = ["ko", "en"]
        yield fake


def command(
    text: Any,
    *,
    chat_id: int = GROUP,
    chat_type: str = "supergroup",
    title: str = "AI reading group",
    language_code: str = "en",
) -> dict[str, Any]:
    return {
        "update_id": next(_update_ids),
        "message": {
            "message_id": 7,
            "date": 1_790_000_000,
            "chat": {"id": chat_id, "type": chat_type, "title": title},
            "from": {
                "id": 42,
                "is_bot": False,
                "first_name": "Ada",
                "language_code": language_code,
            },
            "text": text,
        },
    }


def bot_status(status: str, *, chat_id: int = GROUP, old: str = "member") -> dict[str, Any]:
    chat = {"id": chat_id, "type": "supergroup", "title": "AI reading group"}
    return {
        "update_id": next(_update_ids),
        "my_chat_member": {
            "chat": chat,
            "from": {"id": 42, "is_bot": False, "first_name": "Ada"},
            "date": 1_790_000_000,
            "old_chat_member": {"user": {"id": 123456, "is_bot": True}, "status": old},
            "new_chat_member": {"user": {"id": 123456, "is_bot": True}, "status": status},
        },
    }


def post(client: Client, update: Any, *, secret: str | None = SECRET) -> Any:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    body = update if isinstance(update, (str, bytes)) else json.dumps(update)
    return client.post(WEBHOOK, data=body, content_type="application/json", headers=headers)


def replies(telegram: FakeChat, chat_id: int = GROUP) -> list[str]:
    return [body["text"] for body in telegram.messages_for(str(chat_id), "telegram")]


def chat_channel(chat_id: int = GROUP) -> Channel:
    return Channel.objects.get(kind=Channel.Kind.TELEGRAM, chat_id=str(chat_id))


def active_categories() -> list[Category]:
    return list(Category.objects.filter(active=True).order_by("position", "name"))


# --- The webhook --------------------------------------------------------------------------------


def test_an_update_without_the_secret_header_is_refused(client: Client, telegram: FakeChat) -> None:
    response = post(client, command("/subscribe"), secret=None)

    assert response.status_code == 403
    assert not Channel.objects.exists()
    assert telegram.calls == []


def test_an_update_with_a_wrong_secret_is_refused(client: Client, telegram: FakeChat) -> None:
    response = post(client, command("/subscribe"), secret="not-the-secret")

    assert response.status_code == 403
    assert not Channel.objects.exists()


def test_without_a_configured_secret_every_update_is_refused(
    client: Client, telegram: FakeChat, settings: Any
) -> None:
    settings.TELEGRAM_WEBHOOK_SECRET = ""

    assert post(client, command("/subscribe"), secret="").status_code == 403
    assert not Channel.objects.exists()


def test_without_a_bot_token_the_webhook_does_not_exist(client: Client, settings: Any) -> None:
    settings.TELEGRAM_BOT_TOKEN = ""
    settings.TELEGRAM_WEBHOOK_SECRET = SECRET

    assert post(client, command("/subscribe")).status_code == 404


def test_the_webhook_takes_only_posts(client: Client, telegram: FakeChat) -> None:
    assert client.get(WEBHOOK).status_code == 405


def test_invalid_json_is_a_bad_request(client: Client, telegram: FakeChat) -> None:
    assert post(client, "{not json").status_code == 400
    assert post(client, "[1, 2]").status_code == 400
    assert post(client, b"\xff\xfe").status_code == 400


def test_a_body_larger_than_an_update_is_refused(client: Client, telegram: FakeChat) -> None:
    response = post(client, command("x" * 300_000))

    assert response.status_code == 413
    assert telegram.calls == []


@pytest.mark.parametrize(
    "update",
    [
        {},
        {"update_id": "seven"},
        {"update_id": 1, "message": "hello"},
        {"update_id": 2, "message": {"text": "/subscribe"}},
        {"update_id": 3, "message": {"chat": {"id": "-100"}, "text": "/subscribe"}},
        {"update_id": 4, "message": {"chat": {"id": True, "type": "private"}, "text": "/stop"}},
        {"update_id": 5, "message": {"chat": {"id": 5, "type": "channel"}, "text": "/subscribe"}},
        {"update_id": 6, "message": {"chat": {"id": 6, "type": "private"}, "text": ["/start"]}},
        {"update_id": 7, "message": {"chat": {"id": 7, "type": "private"}, "photo": [{}]}},
        {"update_id": 8, "my_chat_member": {"chat": None, "new_chat_member": 3}},
        {"update_id": 9, "my_chat_member": {"chat": {"id": GROUP}, "new_chat_member": {}}},
        {"update_id": 10, "edited_message": {"chat": {"id": 1}, "text": "/subscribe"}},
        {
            "update_id": 11,
            "message": {"chat": {"id": 10**30, "type": "group"}, "text": "/subscribe"},
        },
    ],
)
def test_garbage_updates_are_answered_200_and_change_nothing(
    client: Client, telegram: FakeChat, update: dict[str, Any]
) -> None:
    response = post(client, update)

    assert response.status_code == 200
    assert not Channel.objects.exists()
    assert not [call for call in telegram.calls if call.method == "sendMessage"]


def test_a_huge_text_gets_a_polite_answer_and_no_crash(client: Client, telegram: FakeChat) -> None:
    response = post(client, command("/subscribe " + "nonsense " * 20_000, chat_type="private"))

    assert response.status_code == 200
    assert not Channel.objects.exists()
    assert "I do not know these categories: nonsense" in replies(telegram)[0]


# --- Commands -----------------------------------------------------------------------------------


def test_subscribe_makes_the_chat_an_active_channel_and_says_so_in_the_chat(
    client: Client, telegram: FakeChat
) -> None:
    assert post(client, command("/subscribe")).status_code == 200

    channel = chat_channel()
    assert channel.status == Channel.Status.ACTIVE
    assert channel.name == "AI reading group"
    assert channel.subscriber is None
    assert channel.confirmed_at is not None
    assert set(channel.categories.all()) == set(active_categories())
    [reply] = replies(telegram)
    assert "Subscribed. This chat will get the digest with:" in reply
    assert active_categories()[0].name in reply


def test_subscribe_with_categories_chooses_them_by_slug_or_name(
    client: Client, telegram: FakeChat
) -> None:
    first, second, *_ = active_categories()

    post(client, command(f"/subscribe@daily_ai_insights_bot {first.slug}, {second.name.upper()}"))

    assert set(chat_channel().categories.all()) == {first, second}


def test_a_command_for_another_bot_is_left_alone(client: Client, telegram: FakeChat) -> None:
    post(client, command("/subscribe@some_other_bot"))

    assert not Channel.objects.exists()
    assert replies(telegram) == []


def test_the_chat_language_is_the_senders_when_offered(
    client: Client, telegram: FakeChat, settings: Any
) -> None:
    settings.DIGEST_LANGUAGES = ["ko", "en"]
    post(client, command("/subscribe", chat_id=1, chat_type="private", language_code="en-GB"))
    post(client, command("/subscribe", chat_id=2, chat_type="private", language_code="fr"))

    assert chat_channel(1).language == "en"
    assert chat_channel(2).language == "ko"


def test_subscribing_twice_is_harmless(client: Client, telegram: FakeChat) -> None:
    post(client, command("/subscribe"))
    post(client, command("/subscribe"))

    assert Channel.objects.count() == 1
    assert "already gets the digest" in replies(telegram)[1]


def test_an_update_telegram_sends_again_is_handled_once(client: Client, telegram: FakeChat) -> None:
    update = command("/subscribe")

    post(client, update)
    post(client, update)

    assert len(replies(telegram)) == 1


def test_start_and_help_say_what_the_bot_does(client: Client, telegram: FakeChat) -> None:
    post(client, command("/start", chat_id=99, chat_type="private"))
    post(client, command("/help", chat_id=99, chat_type="private"))

    for reply in replies(telegram, 99):
        assert "posts a digest of the day's arXiv AI papers" in reply
        assert "/subscribe" in reply and "/categories" in reply and "/stop" in reply
    assert not Channel.objects.exists()


def test_categories_lists_them_with_slugs_and_marks_the_chats(
    client: Client, telegram: FakeChat
) -> None:
    first, second, *_ = active_categories()
    post(client, command(f"/subscribe {first.slug}"))

    post(client, command("/categories"))

    listing = replies(telegram)[-1]
    assert f"✓ {first.slug} – {first.name}" in listing
    assert f"· {second.slug} – {second.name}" in listing


def test_categories_with_names_sets_them(client: Client, telegram: FakeChat) -> None:
    second = active_categories()[1]
    post(client, command("/subscribe"))

    post(client, command(f"/categories {second.slug}"))

    assert list(chat_channel().categories.all()) == [second]
    assert f"This chat will get: {second.name}." in replies(telegram)[-1]


def test_an_unknown_category_is_answered_and_nothing_changes(
    client: Client, telegram: FakeChat
) -> None:
    first, *_ = active_categories()
    post(client, command("/subscribe"))

    post(client, command(f"/categories {first.slug} astrology"))

    assert set(chat_channel().categories.all()) == set(active_categories())
    assert (
        "I do not know these categories: astrology. Nothing was changed." in replies(telegram)[-1]
    )


def test_stop_stops_the_chat(client: Client, telegram: FakeChat) -> None:
    post(client, command("/subscribe"))

    post(client, command("/stop"))

    assert chat_channel().status == Channel.Status.STOPPED
    assert "Stopped." in replies(telegram)[-1]


def test_subscribing_again_after_stop_keeps_the_chosen_categories(
    client: Client, telegram: FakeChat
) -> None:
    first, *_ = active_categories()
    post(client, command(f"/subscribe {first.slug}"))
    post(client, command("/stop"))

    post(client, command("/subscribe"))

    channel = chat_channel()
    assert channel.status == Channel.Status.ACTIVE
    assert list(channel.categories.all()) == [first]


def test_an_unknown_command_gets_a_polite_answer_in_a_private_chat_only(
    client: Client, telegram: FakeChat
) -> None:
    post(client, command("/weather", chat_id=5, chat_type="private"))
    post(client, command("/weather"))
    post(client, command("hello there", chat_id=5, chat_type="private"))
    post(client, command("hello there"))

    assert replies(telegram, 5) == [
        "I do not know that command. /help lists mine.",
        "Send /help to see what I can do.",
    ]
    assert replies(telegram) == []


def test_the_bot_kicked_from_the_chat_stops_its_channel(client: Client, telegram: FakeChat) -> None:
    post(client, command("/subscribe"))

    assert post(client, bot_status("kicked")).status_code == 200

    assert chat_channel().status == Channel.Status.STOPPED


def test_the_bot_added_to_a_group_introduces_itself(client: Client, telegram: FakeChat) -> None:
    post(client, bot_status("member", old="left"))

    assert "/subscribe" in replies(telegram)[0]
    assert not Channel.objects.exists()


def test_a_group_that_became_a_supergroup_keeps_its_channel(
    client: Client, telegram: FakeChat
) -> None:
    post(client, command("/subscribe", chat_id=-4242, chat_type="group"))
    migrated = command("", chat_id=-4242, chat_type="group")
    migrated["message"]["migrate_to_chat_id"] = GROUP

    post(client, migrated)

    assert chat_channel(GROUP).status == Channel.Status.ACTIVE


def test_a_failed_reply_is_no_error_for_telegram(client: Client, telegram: FakeChat) -> None:
    telegram.script("telegram", str(GROUP), 403)

    assert post(client, command("/subscribe")).status_code == 200
    assert chat_channel().status == Channel.Status.ACTIVE


# --- manage.py telegram_webhook and the check ----------------------------------------------------


def test_the_command_registers_the_webhook_with_its_secret(telegram: FakeChat) -> None:
    out = StringIO()

    call_command("telegram_webhook", "--url", "https://news.example.org/", stdout=out)

    assert telegram.webhook == {
        "url": "https://news.example.org/telegram/webhook/",
        "secret_token": SECRET,
        "allowed_updates": ["message", "my_chat_member"],
    }
    assert "Webhook was set" in out.getvalue()


def test_the_command_deletes_the_webhook(telegram: FakeChat) -> None:
    call_command("telegram_webhook", "--url", "https://news.example.org", stdout=StringIO())
    out = StringIO()

    call_command("telegram_webhook", "--delete", stdout=out)

    assert telegram.webhook == {}
    assert "Webhook was deleted" in out.getvalue()


@pytest.mark.parametrize("secret", ["", "has spaces", "x" * 257, "ünïcode"])
def test_the_command_refuses_a_missing_or_malformed_secret(
    telegram: FakeChat, settings: Any, secret: str
) -> None:
    settings.TELEGRAM_WEBHOOK_SECRET = secret

    with pytest.raises(CommandError, match="TELEGRAM_WEBHOOK_SECRET"):
        call_command("telegram_webhook", "--url", "https://news.example.org", stdout=StringIO())
    assert telegram.calls == []


def test_the_command_says_what_telegram_refused(telegram: FakeChat, settings: Any) -> None:
    settings.TELEGRAM_BOT_TOKEN = "999:wrong-token"

    with pytest.raises(CommandError, match="Unauthorized"):
        call_command("telegram_webhook", "--url", "https://news.example.org", stdout=StringIO())


def test_the_check_warns_of_a_bot_without_a_webhook_secret(settings: Any) -> None:
    settings.TELEGRAM_BOT_TOKEN = TELEGRAM_TOKEN
    settings.TELEGRAM_WEBHOOK_SECRET = ""

    assert [m.id for m in check_telegram_webhook_secret()] == ["subscribers.W004"]

    settings.TELEGRAM_WEBHOOK_SECRET = SECRET
    assert check_telegram_webhook_secret() == []
    settings.TELEGRAM_BOT_TOKEN = ""
    settings.TELEGRAM_WEBHOOK_SECRET = ""
    assert check_telegram_webhook_secret() == []
