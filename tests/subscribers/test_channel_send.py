"""Team chats in a send: each active channel gets the approved issue exactly once, through the
same ledger as the emails, against a local fake that speaks Slack's, Discord's and Telegram's
real HTTP APIs (tests/fakes/chat_server.py). Retry-After honoured, revoked destinations
suppressed, a message in parts never posted twice, the pause and the resume, the panel."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from digests.keywords import rules_key, rules_make
from digests.models import Category, Digest, SectionReport
from subscribers import rendering
from subscribers.channels.messages import channel_message, messages_cache_clear
from subscribers.models import Channel, ChannelDelivery, Delivery
from subscribers.sending import channels as channel_send
from subscribers.sending import recovery
from subscribers.tasks import send_start, unknown_resend
from tests.fakes.chat_server import FakeChat, Fault
from tests.issue_factory import issue_create
from tests.subscribers.factories import subscriber_create

pytestmark = pytest.mark.django_db


waits: list[float] = []


@pytest.fixture
def chat(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeChat]:
    waits.clear()
    monkeypatch.setattr("subscribers.tasks.EAGER_RETRY_MAX_SLEEP", 0.0)
    # No waiting between posts: the pace is tested on its own (test_channel_transports.py).
    monkeypatch.setattr(channel_send, "_pace", _NoPace())
    monkeypatch.setattr(channel_send, "_sleep", waits.append)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SITE_URL = "https://insights.example.org"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.TELEGRAM_RATE_PER_SECOND = 1000
    settings.CHANNEL_RETRY_AFTER_WAIT = 5.0
    settings.DELIVERY_MAX_RETRIES = 4
    messages_cache_clear()
    with FakeChat() as fake:
        settings.TELEGRAM_API_URL = fake.telegram_api_url
        settings.TELEGRAM_BOT_TOKEN = fake.telegram_token
        yield fake


class _NoPace:
    def wait(self, kind: str, destination: str) -> float:
        return 0.0


def categories() -> list[Category]:
    return list(Category.objects.filter(active=True).order_by("position")[:3])


def approved(papers: int = 2, **days: Any) -> Digest:
    chosen = categories()
    summaries = {c.pk: f"The day in {c.name}: **new** papers, where a < b & c." for c in chosen}
    digest = issue_create(categories=chosen, papers_per_section=papers, summaries=summaries, **days)
    Digest.objects.filter(pk=digest.pk).update(
        status=Digest.Status.APPROVED, send_at=timezone.now() - timedelta(minutes=1)
    )
    digest.refresh_from_db()
    return digest


def channel(kind: str, destination: str, chat: FakeChat, **fields: Any) -> Channel:
    place = {
        "slack": {"url": chat.slack_url(destination)},
        "discord": {"url": chat.discord_url(destination)},
        "telegram": {"chat_id": destination},
    }[kind]
    made = Channel.objects.create(kind=kind, name=destination, **place, **fields)
    made.categories.set(categories())
    return made


@pytest.fixture
def send(django_capture_on_commit_callbacks: Callable[..., Any]) -> Callable[[Digest], Any]:
    def run(digest: Digest) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return send_start(digest.pk)

    return run


def rows(digest: Digest) -> dict[str, ChannelDelivery]:
    return {r.destination: r for r in ChannelDelivery.objects.filter(digest=digest)}


def telegram_text(chat: FakeChat, chat_id: str) -> str:
    return "\n".join(body["text"] for body in chat.messages_for(chat_id, "telegram"))


def test_each_channel_gets_the_issue_once_with_the_emails_in_one_send(
    chat: FakeChat, send: Callable[[Digest], Any]
) -> None:
    digest = approved()
    subscriber_create(email="reader@example.com", categories=categories())
    slack = channel("slack", "lab", chat)
    channel("discord", "d1", chat)
    channel("telegram", "-1001", chat)

    plan = send(digest)

    assert plan.started and len(plan.channel_chunks) == 3  # one chunk per service
    digest.refresh_from_db()
    assert digest.status == Digest.Status.SENT
    assert Delivery.objects.get(digest=digest).status == Delivery.Status.SENT
    by_destination = rows(digest)
    assert {r.status for r in by_destination.values()} == {"sent"}
    # The Slack row names the webhook without its secret.
    assert "slack-secret" not in by_destination[slack.destination].destination
    assert len(chat.messages_for("lab", "slack")) == 1
    assert len(chat.messages_for("d1", "discord")) == 1
    text = telegram_text(chat, "-1001")
    names = [c.name for c in categories()]
    assert all(name in text for name in names)
    # The report's text from the LLM arrives escaped for Telegram's HTML.
    assert "where a &lt; b &amp; c" in text


def test_a_channel_reads_the_report_in_its_language(
    chat: FakeChat, send: Callable[[Digest], Any], settings: Any
) -> None:
    settings.DIGEST_LANGUAGES = ["ko", "en"]
    digest = approved()
    for section in digest.sections.all():
        SectionReport.objects.create(
            section=section, language="en", summary=f"ENGLISH REPORT {section.category.name}."
        )
    channel("telegram", "-1", chat, language="en")
    channel("telegram", "-2", chat, language="ko")

    send(digest)

    assert "ENGLISH REPORT" in telegram_text(chat, "-1")
    assert "ENGLISH REPORT" not in telegram_text(chat, "-2")
    assert "The day in" in telegram_text(chat, "-2")


def test_a_short_retry_after_is_waited_out_and_the_message_posted_once(
    chat: FakeChat, send: Callable[[Digest], Any]
) -> None:
    digest = approved()
    channel("slack", "busy", chat)
    chat.script("slack", "busy", Fault(429, retry_after=2))

    send(digest)

    assert waits == [2.0]  # the service's Retry-After, waited out in the task
    assert chat.statuses("busy") == [429, 200]
    assert len(chat.messages_for("busy")) == 1
    row = ChannelDelivery.objects.get(digest=digest)
    assert row.status == "sent" and row.attempts == 1


def test_a_long_retry_after_retries_the_task_and_never_posts_twice(
    chat: FakeChat, send: Callable[[Digest], Any]
) -> None:
    digest = approved()
    channel("discord", "slow", chat)
    chat.script("discord", "slow", Fault(429, retry_after=30), Fault(503))

    send(digest)

    assert chat.statuses("slow") == [429, 503, 200]
    assert len(chat.messages_for("slow")) == 1
    assert waits == [5.0]  # 429 for 30 s: the task retried; then a 503 waited out (5 s)
    row = ChannelDelivery.objects.get(digest=digest)
    assert row.status == "sent" and row.attempts == 2
    digest.refresh_from_db()
    assert digest.status == Digest.Status.SENT


def test_parts_already_posted_are_not_posted_again_by_the_retry(
    chat: FakeChat, send: Callable[[Digest], Any]
) -> None:
    digest = approved(papers=12)  # long enough for a Telegram message in parts
    channel("telegram", "-500", chat)
    # The second part meets a server error and then a long wait.
    chat.script("telegram", "-500", 200, Fault(500, retry_after=30))

    send(digest)

    digest.refresh_from_db()
    messages_cache_clear()
    key = ",".join(str(pk) for pk in sorted(c.pk for c in categories()))
    message = channel_message(digest=digest, kind="telegram", key=key, language="ko")
    parts = len(message.parts)
    assert parts >= 2, "the issue is long enough to need parts"
    bodies = chat.messages_for("-500", "telegram")
    assert len(bodies) == parts  # each part once
    assert [b["text"] for b in bodies] == [p["text"] for p in message.parts]  # in order
    row = ChannelDelivery.objects.get(digest=digest)
    assert (row.status, row.parts_sent, row.parts_total) == ("sent", parts, parts)


def test_a_revoked_destination_is_suppressed_like_a_hard_bounce(
    chat: FakeChat, send: Callable[[Digest], Any]
) -> None:
    digest = approved()
    gone = channel("discord", "gone", chat)
    kicked = channel("telegram", "-77", chat)
    channel("slack", "fine", chat)
    chat.script("discord", "gone", 404)
    chat.script("telegram", "-77", 403)

    send(digest)

    gone.refresh_from_db()
    kicked.refresh_from_db()
    assert gone.status == kicked.status == Channel.Status.REVOKED
    assert "Unknown Webhook" in gone.suppressed_reason
    assert "kicked" in kicked.suppressed_reason
    by = rows(digest)
    assert by[gone.destination].status == "failed"
    assert by["-77"].status == "failed"
    assert len(chat.messages_for("fine")) == 1
    digest.refresh_from_db()
    assert digest.status == Digest.Status.SENT

    # The next issue leaves them out.
    later = approved(day=digest.date + timedelta(days=1))
    send(later)
    assert set(rows(later)) == {Channel.objects.get(name="fine").destination}


def test_a_telegram_group_upgraded_to_a_supergroup_is_followed(
    chat: FakeChat, send: Callable[[Digest], Any]
) -> None:
    digest = approved()
    group = channel("telegram", "-300", chat)
    chat.migrate("-300", "-100300")

    send(digest)

    group.refresh_from_db()
    assert group.chat_id == "-100300" and group.status == Channel.Status.ACTIVE
    assert chat.messages_for("-100300", "telegram")
    assert ChannelDelivery.objects.get(digest=digest).status == "sent"


def test_channels_that_all_fail_pause_the_send_and_the_resume_finishes_it(
    chat: FakeChat, send: Callable[[Digest], Any], settings: Any
) -> None:
    settings.DELIVERY_PAUSE_AFTER_ERRORS = 2
    settings.CHANNEL_BATCH_SIZE = 10
    settings.CHANNEL_CONCURRENCY = 1  # one post at a time: the pause lands between two
    digest = approved()
    for n in range(4):
        channel("slack", f"bad{n}", chat)
    chat.script("slack", "bad0", 400)
    chat.script("slack", "bad1", 400)

    send(digest)

    digest.refresh_from_db()
    assert digest.status == Digest.Status.PAUSED
    statuses = sorted(
        ChannelDelivery.objects.filter(digest=digest).values_list("status", flat=True)
    )
    assert statuses == ["failed", "failed", "queued", "queued"]  # nobody skipped

    resumed = recovery.digest_send_resume(digest_id=digest.pk)
    assert resumed.resumed and len(resumed.channel_chunks) == 1
    channel_send.channel_deliveries_send(
        digest_id=digest.pk, ids=resumed.channel_chunks[0], claim="resume"
    )
    digest.refresh_from_db()
    assert digest.status == Digest.Status.SENT
    assert [len(chat.messages_for(f"bad{n}")) for n in range(4)] == [0, 0, 1, 1]


def test_a_post_in_flight_when_its_worker_died_is_unknown_and_resent_from_its_part(
    chat: FakeChat, settings: Any, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    settings.DELIVERY_STALE_AFTER_SECONDS = 60
    digest = approved()
    Digest.objects.filter(pk=digest.pk).update(
        status=Digest.Status.SENDING, send_planned_at=timezone.now()
    )
    slack = channel("slack", "crash", chat)
    row = ChannelDelivery.objects.create(
        digest=digest,
        channel=slack,
        kind="slack",
        destination=slack.destination,
        variant=rendering.variant_key(c.pk for c in categories()),
        language="ko",
        status=Delivery.Status.SENDING,
        claim="dead-worker",
        claimed_at=timezone.now() - timedelta(minutes=5),
        attempts=1,
    )

    resumed = recovery.digest_send_resume(digest_id=digest.pk)

    row.refresh_from_db()
    assert resumed.unknown == 1 and row.status == Delivery.Status.UNKNOWN
    assert resumed.channel_chunks == [] and chat.calls == []  # never reposted blindly
    digest.refresh_from_db()
    assert digest.status == Digest.Status.SENT  # unknown rows do not hold the issue back

    with django_capture_on_commit_callbacks(execute=True):
        assert unknown_resend(digest.pk) == 1  # the editor's explicit choice
    row.refresh_from_db()
    assert row.status == "sent" and len(chat.messages_for("crash")) == 1


def test_a_stopped_channel_is_skipped_and_a_weekly_issue_goes_to_weekly_channels_only(
    chat: FakeChat, send: Callable[[Digest], Any]
) -> None:
    digest = approved()
    stopped = channel("slack", "stopped", chat)
    channel("slack", "weekly", chat, cadence="weekly")
    channel("slack", "daily", chat)
    channel_send.channels_plan(digest_id=digest.pk, cadence="daily")  # made before it stopped
    Channel.objects.filter(pk=stopped.pk).update(status=Channel.Status.STOPPED)
    Digest.objects.filter(pk=digest.pk).update(status=Digest.Status.APPROVED)

    send(digest)

    by = rows(digest)
    assert by[stopped.destination].status == "skipped"
    assert {r.status for d, r in by.items() if d != stopped.destination} == {"sent"}
    assert not chat.messages_for("weekly") and not chat.messages_for("stopped")


def test_the_deliveries_panel_shows_the_channels_and_why_one_failed(
    chat: FakeChat, send: Callable[[Digest], Any], admin_client: Any
) -> None:
    digest = approved()
    channel("slack", "ok", chat)
    channel("discord", "broken", chat)
    chat.script("discord", "broken", 404)
    send(digest)

    page = admin_client.get(reverse("admin:digests_digest_deliveries_panel", args=[digest.pk]))
    text = page.content.decode()

    assert page.status_code == 200
    assert "Team chats" in text
    assert "2 channels, 1 messages posted." in text
    assert "Unknown Webhook" in text
    assert "discord-token" not in text and "slack-secret" not in text


def test_a_channel_with_keyword_rules_leaves_out_the_papers_it_excludes(
    chat: FakeChat, send: Callable[[Digest], Any]
) -> None:
    digest = approved()
    rules = rules_make(include="", exclude="scaling", all_categories=False)
    channel("telegram", "-900", chat, keywords_exclude="scaling", keywords_key=rules_key(rules))
    channel("telegram", "-901", chat)

    send(digest)

    assert "arxiv.org/abs" in telegram_text(chat, "-901")
    # Every paper of the issue is about "Scaling laws ...": none reaches the channel.
    assert "arxiv.org/abs" not in telegram_text(chat, "-900")
    assert "The day in" in telegram_text(chat, "-900")  # the reports stay the editors' text


def test_telegrams_rate_hands_the_worker_back_and_the_chunk_goes_on_later(
    chat: FakeChat, send: Callable[[Digest], Any], settings: Any
) -> None:
    settings.TELEGRAM_RATE_PER_SECOND = 3
    settings.CHANNEL_CONCURRENCY = 1
    digest = approved()
    for n in range(5):
        channel("telegram", f"-70{n}", chat)

    send(digest)

    times = sorted(call.time for call in chat.calls if call.method == "sendMessage")
    assert len(times) == 5 and all(len(chat.messages_for(f"-70{n}")) == 1 for n in range(5))
    # At most 3 in any 1.1-second window: the last two waited for the window, not in a sleep
    # of the task but in a new task after it (each row once, never failed).
    assert times[3] - times[0] >= 1.0
    rows = ChannelDelivery.objects.filter(digest=digest)
    assert sorted(rows.values_list("status", "attempts")) == [("sent", 1)] * 5
