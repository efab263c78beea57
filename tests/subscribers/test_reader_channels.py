"""A reader's team chats, from the preferences page: a Slack or Discord webhook added, confirmed
with the code of the test message posted there, removed; only those services' hosts; the
channel following its reader. And the staff's side in the admin. Slack and Discord are the local
fake (tests/fakes/chat_server.py), let in by CHANNEL_WEBHOOK_HOSTS_EXTRA."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from digests.models import Category
from subscribers.channels.services import (
    CHANNELS_PER_READER,
    ChannelRefused,
    reader_channel_add,
    reader_channel_confirm,
    webhook_kind,
)
from subscribers.models import Channel, ChannelDelivery, Subscriber, webhook_shown
from subscribers.tokens import Purpose
from tests.fakes.chat_server import FakeChat

from .factories import path_of, subscriber_create

pytestmark = pytest.mark.django_db

Status = Channel.Status
DISCORD_ID = "112233445566778899"
CHANNELS = "/admin/subscribers/channel/"


@pytest.fixture
def chat(settings: Any) -> Iterator[FakeChat]:
    with FakeChat() as fake:
        settings.CHANNEL_WEBHOOK_HOSTS_EXTRA = [fake.base_url.removeprefix("http://")]
        yield fake


def categories() -> list[Category]:
    return list(Category.objects.filter(active=True).order_by("position", "name"))


def reader(**fields: Any) -> Subscriber:
    """A reader who reads the pages in English (the words the tests look for)."""
    fields.setdefault("language", "en")
    return subscriber_create(categories=categories()[:2], **fields)


def page_post(client: Client, subscriber: Subscriber, **data: Any) -> Any:
    return client.post(path_of(subscriber, Purpose.PREFERENCES), data)


def text_of(response: Any) -> str:
    return " ".join(response.content.decode().split())


def added(client: Client, subscriber: Subscriber, url: str) -> Channel:
    response = page_post(client, subscriber, action="channel_add", url=url)
    assert response.status_code == 200
    assert "We posted a test message to" in text_of(response), text_of(response)
    return Channel.objects.get(url=url)


def posted_to(chat: FakeChat, destination: str) -> str:
    return " ".join(json.dumps(body, ensure_ascii=False) for body in chat.messages_for(destination))


# --- Adding and confirming --------------------------------------------------------------------


def test_a_slack_webhook_added_gets_a_test_message_with_the_code_and_waits(
    visitor: Client, chat: FakeChat
) -> None:
    subscriber = reader(cadence=Subscriber.Cadence.WEEKLY)

    channel = added(visitor, subscriber, chat.slack_url("team"))

    assert channel.kind == Channel.Kind.SLACK
    assert channel.status == Status.PENDING
    assert channel.subscriber == subscriber
    assert re.fullmatch(r"[A-HJ-NP-Z2-9]{6}", channel.confirm_code)
    assert channel.confirm_code in posted_to(chat, "team")
    assert set(channel.categories.all()) == set(categories()[:2])
    assert (channel.language, channel.cadence) == ("en", Subscriber.Cadence.WEEKLY)


def test_the_page_lists_the_channel_without_the_webhooks_secret(
    visitor: Client, chat: FakeChat
) -> None:
    subscriber = reader()
    added(visitor, subscriber, chat.slack_url("team"))

    page = text_of(visitor.get(path_of(subscriber, Purpose.PREFERENCES)))

    assert "Slack" in page
    assert webhook_shown(chat.slack_url("team")) in page
    assert "slack-secret-team" not in page
    assert 'name="code"' in page


def test_a_discord_webhook_is_added_the_same_way(visitor: Client, chat: FakeChat) -> None:
    subscriber = reader()

    channel = added(visitor, subscriber, chat.discord_url(DISCORD_ID))

    assert channel.kind == Channel.Kind.DISCORD
    assert channel.status == Status.PENDING
    assert channel.confirm_code in posted_to(chat, DISCORD_ID)


def test_a_wrong_code_leaves_the_channel_pending_and_the_right_one_makes_it_active(
    visitor: Client, chat: FakeChat
) -> None:
    subscriber = reader()
    channel = added(visitor, subscriber, chat.slack_url("team"))

    wrong = page_post(
        visitor, subscriber, action="channel_confirm", channel=channel.pk, code="AAAAAA"
    )
    channel.refresh_from_db()
    assert channel.status == Status.PENDING
    assert "That code is not right" in text_of(wrong)

    typed = " ".join(channel.confirm_code.lower())  # any case, spaces ignored
    right = page_post(visitor, subscriber, action="channel_confirm", channel=channel.pk, code=typed)
    channel.refresh_from_db()
    assert channel.status == Status.ACTIVE
    assert channel.confirmed_at is not None
    assert "Confirmed: the channel will get the digest." in text_of(right)


def test_after_five_wrong_codes_the_right_one_no_longer_works(chat: FakeChat) -> None:
    subscriber = reader()
    channel = reader_channel_add(subscriber=subscriber, url=chat.slack_url("team"))
    code = channel.confirm_code

    for _ in range(5):
        assert not reader_channel_confirm(
            subscriber=subscriber, channel_id=channel.pk, code="22222Z"
        )

    assert not reader_channel_confirm(subscriber=subscriber, channel_id=channel.pk, code=code)
    channel.refresh_from_db()
    assert channel.status == Status.PENDING


def test_adding_the_same_webhook_again_sends_a_new_code(chat: FakeChat) -> None:
    subscriber = reader()
    first = reader_channel_add(subscriber=subscriber, url=chat.slack_url("team"))

    again = reader_channel_add(subscriber=subscriber, url=chat.slack_url("team"))

    assert again.pk == first.pk
    assert len(chat.messages_for("team")) == 2
    assert Channel.objects.count() == 1


def test_a_code_older_than_a_week_is_void(chat: FakeChat) -> None:
    subscriber = reader()
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        channel = reader_channel_add(subscriber=subscriber, url=chat.slack_url("team"))
    with time_machine.travel(start + timedelta(days=8), tick=False):
        assert not reader_channel_confirm(
            subscriber=subscriber, channel_id=channel.pk, code=channel.confirm_code
        )


def test_another_reader_cannot_confirm_or_remove_the_channel(
    visitor: Client, chat: FakeChat
) -> None:
    owner, other = reader(), reader()
    channel = reader_channel_add(subscriber=owner, url=chat.slack_url("team"))

    page_post(
        visitor, other, action="channel_confirm", channel=channel.pk, code=channel.confirm_code
    )
    page_post(visitor, other, action="channel_remove", channel=channel.pk)

    channel.refresh_from_db()
    assert channel.status == Status.PENDING


def test_the_remove_button_deletes_the_channel(visitor: Client, chat: FakeChat) -> None:
    subscriber = reader()
    channel = added(visitor, subscriber, chat.slack_url("team"))

    response = page_post(visitor, subscriber, action="channel_remove", channel=channel.pk)

    assert "The channel is removed." in text_of(response)
    assert not Channel.objects.exists()


# --- What is refused --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/services/T000/B000/XXXX",
        "http://hooks.slack.com/services/T000/B000/XXXX",
        "https://hooks.slack.com.evil.example/services/T000/B000/XXXX",
        "https://user:pw@hooks.slack.com/services/T000/B000/XXXX",
        "https://hooks.slack.com:8443/services/T000/B000/XXXX",
        "https://discord.com/api/users/@me",
        "https://hooks.slack.com/services/T000/B000/XXXX?redirect=https://example.com",
        "ftp://hooks.slack.com/services/T000/B000/XXXX",
        "https://169.254.169.254/latest/meta-data/",
    ],
)
def test_a_url_on_another_host_is_refused_and_nothing_is_posted(
    visitor: Client, chat: FakeChat, url: str
) -> None:
    subscriber = reader()

    response = page_post(visitor, subscriber, action="channel_add", url=url)

    assert response.status_code == 200
    assert "This is not a Slack or Discord webhook address." in text_of(response)
    assert not Channel.objects.exists()
    assert chat.calls == []


def test_the_fakes_host_is_refused_when_it_is_not_listed(
    visitor: Client, chat: FakeChat, settings: Any
) -> None:
    settings.CHANNEL_WEBHOOK_HOSTS_EXTRA = ()

    response = page_post(visitor, reader(), action="channel_add", url=chat.slack_url("team"))

    assert "This is not a Slack or Discord webhook address." in text_of(response)
    assert chat.calls == []


def test_the_real_services_addresses_are_recognised() -> None:
    slack = "https://hooks.slack.com/services/T0001/B0001/abcdefABCDEF123"
    discord = "https://discord.com/api/webhooks/112233445566778899/abc-DEF_123"
    assert webhook_kind(slack) == Channel.Kind.SLACK
    assert webhook_kind(discord) == Channel.Kind.DISCORD
    assert webhook_kind(discord.replace("discord.com", "discordapp.com")) == Channel.Kind.DISCORD


def test_a_sixth_channel_is_refused(visitor: Client, chat: FakeChat) -> None:
    subscriber = reader()
    for n in range(CHANNELS_PER_READER):
        Channel.objects.create(
            kind=Channel.Kind.SLACK, url=chat.slack_url(f"t{n}"), subscriber=subscriber
        )

    with pytest.raises(ChannelRefused) as refused:
        reader_channel_add(subscriber=subscriber, url=chat.slack_url("sixth"))
    assert refused.value.code == "limit"
    page = text_of(visitor.get(path_of(subscriber, Purpose.PREFERENCES)))

    assert "You have 5 team chats, the most allowed." in page
    assert 'value="channel_add"' not in page
    assert chat.calls == []


def test_a_webhook_the_service_refuses_is_not_saved(visitor: Client, chat: FakeChat) -> None:
    chat.script("slack", "gone", 404)

    response = page_post(visitor, reader(), action="channel_add", url=chat.slack_url("gone"))

    assert "Slack did not accept our test message, so nothing was saved." in text_of(response)
    assert not Channel.objects.exists()


def test_a_webhook_another_reader_added_is_refused(chat: FakeChat) -> None:
    reader_channel_add(subscriber=reader(), url=chat.slack_url("team"))

    with pytest.raises(ChannelRefused) as refused:
        reader_channel_add(subscriber=reader(), url=chat.slack_url("team"))
    assert refused.value.code == "taken"


def test_the_forms_need_the_csrf_token(strict_visitor: Client, chat: FakeChat) -> None:
    subscriber = reader()

    response = page_post(strict_visitor, subscriber, action="channel_add", url=chat.slack_url("t"))

    assert response.status_code == 403
    assert not Channel.objects.exists()
    assert chat.calls == []


def test_a_forged_or_expired_preferences_link_gets_nothing(visitor: Client, chat: FakeChat) -> None:
    subscriber = reader()
    forged = visitor.post(
        "/preferences/forged-token/", {"action": "channel_add", "url": chat.slack_url("a")}
    )
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        path = path_of(subscriber, Purpose.PREFERENCES)
    with time_machine.travel(start + timedelta(days=400), tick=False):
        expired = visitor.post(path, {"action": "channel_add", "url": chat.slack_url("b")})

    assert forged.status_code == 400
    assert expired.status_code == 410
    assert not Channel.objects.exists()
    assert chat.calls == []


def test_an_unsubscribed_reader_cannot_add_a_channel(visitor: Client, chat: FakeChat) -> None:
    subscriber = reader(status=Subscriber.Status.UNSUBSCRIBED)

    page_post(visitor, subscriber, action="channel_add", url=chat.slack_url("team"))

    assert not Channel.objects.exists()
    assert chat.calls == []


# --- The channel follows its reader -----------------------------------------------------------


def test_a_change_of_preferences_reaches_the_readers_channels(
    visitor: Client, chat: FakeChat, settings: Any
) -> None:
    settings.DIGEST_LANGUAGES = ["ko", "en"]
    subscriber = reader()
    channel = reader_channel_add(subscriber=subscriber, url=chat.slack_url("team"))
    wanted = categories()[2:4]

    page_post(
        visitor,
        subscriber,
        action="save",
        categories=[c.pk for c in wanted],
        language="en",
        cadence="weekly",
        keywords_include="diffusion\ntransformer*",
    )

    channel.refresh_from_db()
    assert set(channel.categories.all()) == set(wanted)
    assert (channel.language, channel.cadence) == ("en", "weekly")
    assert channel.keywords_include == "diffusion\ntransformer*"
    assert channel.keywords_key and channel.keywords_key == Subscriber.objects.get().keywords_key


def test_unsubscribing_stops_the_readers_channels(visitor: Client, chat: FakeChat) -> None:
    subscriber = reader()
    channel = reader_channel_add(subscriber=subscriber, url=chat.slack_url("team"))
    reader_channel_confirm(subscriber=subscriber, channel_id=channel.pk, code=channel.confirm_code)

    visitor.post(path_of(subscriber, Purpose.UNSUBSCRIBE))

    channel.refresh_from_db()
    assert channel.status == Status.STOPPED


def test_deleting_the_reader_deletes_their_channels(visitor: Client, chat: FakeChat) -> None:
    subscriber = reader()
    reader_channel_add(subscriber=subscriber, url=chat.slack_url("team"))

    visitor.post(f"{path_of(subscriber, Purpose.PREFERENCES)}delete/")

    assert not Channel.objects.exists()


# --- The admin --------------------------------------------------------------------------------


def test_a_channel_staff_add_is_active_at_once(admin_client: Client, chat: FakeChat) -> None:
    url = chat.slack_url("staff")
    response = admin_client.post(
        f"{CHANNELS}add/",
        {
            "kind": "slack",
            "name": "Lab Slack",
            "url": url,
            "chat_id": "",
            "status": "active",
            "categories": [c.pk for c in categories()[:3]],
            "language": "ko",
            "cadence": "daily",
            "keywords_include": "",
            "keywords_exclude": "",
        },
    )

    assert response.status_code == 302, text_of(response)
    channel = Channel.objects.get()
    assert (channel.status, channel.url, channel.subscriber) == (Status.ACTIVE, url, None)
    assert channel.confirmed_at is not None
    assert channel.categories.count() == 3


def test_the_admin_refuses_a_webhook_on_another_host(admin_client: Client) -> None:
    response = admin_client.post(
        f"{CHANNELS}add/",
        {
            "kind": "slack",
            "url": "https://example.com/services/a/b/c",
            "status": "active",
            "language": "ko",
            "cadence": "daily",
        },
    )

    assert response.status_code == 200
    assert "This is not a Slack or Discord webhook address." in text_of(response)
    assert not Channel.objects.exists()


def test_the_admin_list_shows_where_a_channel_posts_but_not_the_webhooks_secret(
    admin_client: Client, chat: FakeChat
) -> None:
    Channel.objects.create(kind=Channel.Kind.SLACK, name="Lab", url=chat.slack_url("lab"))
    Channel.objects.create(kind=Channel.Kind.DISCORD, url=chat.discord_url(DISCORD_ID))
    Channel.objects.create(kind=Channel.Kind.TELEGRAM, name="AI group", chat_id="-1009")

    page = text_of(admin_client.get(CHANNELS))

    assert webhook_shown(chat.slack_url("lab")) in page
    assert webhook_shown(chat.discord_url(DISCORD_ID)) in page
    assert "-1009" in page
    assert "slack-secret-lab" not in page
    assert f"discord-token-{DISCORD_ID}" not in page


def test_the_admin_action_posts_a_test_message_to_each_channel(
    admin_client: Client, chat: FakeChat
) -> None:
    ok = Channel.objects.create(
        kind=Channel.Kind.SLACK, name="Lab", url=chat.slack_url("lab"), language="en"
    )
    gone = Channel.objects.create(kind=Channel.Kind.SLACK, name="Old", url=chat.slack_url("old"))
    chat.script("slack", "old", 404)

    response = admin_client.post(
        CHANNELS,
        {"action": "post_test_message", "_selected_action": [ok.pk, gone.pk]},
        follow=True,
    )

    page = text_of(response)
    assert "Lab: posted." in page
    assert "Old: not posted (404" in page
    assert "A test message from Daily AI Insights" in posted_to(chat, "lab")


def test_channel_deliveries_are_read_only_in_the_admin(admin_client: Client) -> None:
    assert admin_client.get("/admin/subscribers/channeldelivery/").status_code == 200
    assert admin_client.get("/admin/subscribers/channeldelivery/add/").status_code == 403
    assert not ChannelDelivery.objects.exists()


def test_download_my_data_lists_the_readers_channels_without_the_secret(
    visitor: Client, chat: FakeChat
) -> None:
    subscriber = reader()
    reader_channel_add(subscriber=subscriber, url=chat.slack_url("team"))

    data = visitor.get(f"{path_of(subscriber, Purpose.PREFERENCES)}data.json").json()

    [team_chat] = data["team_chats"]
    assert team_chat["kind"] == "slack"
    assert team_chat["status"] == "pending"
    assert team_chat["destination"] == webhook_shown(chat.slack_url("team"))
    assert "slack-secret-team" not in json.dumps(data)
