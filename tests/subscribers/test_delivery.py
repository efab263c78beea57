"""Sending a digest through anymail's real Mailgun backend to a fake Mailgun API on localhost."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from digests.models import Category, Digest
from subscribers import emails, rendering
from subscribers.models import Delivery, EmailEvent, Subscriber
from subscribers.sending import chunk, ledger, plan, recovery
from subscribers.services import ReaderChoice, keywords_apply
from subscribers.tasks import send_chunk, send_due_digests, send_start
from subscribers.tokens import Purpose, token_make, token_read, token_url, tokens_make
from tests.fakes.esp_server import FakeESP
from tests.issue_factory import issue_create
from tests.subscribers.factories import subscriber_create

pytestmark = pytest.mark.django_db

DOMAIN = "mg.example.com"


@pytest.fixture
def fake_esp() -> Iterator[FakeESP]:
    with FakeESP() as fake:
        yield fake


@pytest.fixture
def mailgun(settings: Any, fake_esp: FakeESP, monkeypatch: pytest.MonkeyPatch) -> FakeESP:
    monkeypatch.setattr("subscribers.tasks.EAGER_RETRY_MAX_SLEEP", 0.0)
    settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
    settings.ANYMAIL = {
        "MAILGUN_API_KEY": "key",
        "MAILGUN_SENDER_DOMAIN": DOMAIN,
        "MAILGUN_API_URL": fake_esp.base_url + "/v3",
    }
    settings.DEFAULT_FROM_EMAIL = f"Daily AI Insights <digest@{DOMAIN}>"
    settings.SITE_URL = "https://insights.example.org"
    settings.LIST_ID = "Daily AI Insights <daily-ai-insights.example.org>"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.DELIVERY_MAX_RETRIES = 8
    return fake_esp


def categories() -> list[Category]:
    return list(Category.objects.order_by("position", "name"))


def marker(category: Category) -> str:
    return f"SECTIONMARK{category.pk}X"


def approved_issue(**fields: Any) -> Digest:
    summaries = {c.pk: f"The day in {marker(c)}: new papers." for c in categories()}
    digest = issue_create(papers_per_section=2, summaries=summaries)
    Digest.objects.filter(pk=digest.pk).update(
        status=Digest.Status.APPROVED, send_at=timezone.now() - timedelta(minutes=1), **fields
    )
    digest.refresh_from_db()
    return digest


def readers(count: int, chosen: list[Category], prefix: str = "reader") -> list[Subscriber]:
    return [
        subscriber_create(email=f"{prefix}{n}@example.com", categories=chosen) for n in range(count)
    ]


@pytest.fixture
def send(django_capture_on_commit_callbacks: Callable[..., Any]) -> Callable[[Digest], Any]:
    """Starts the send as the beat does; the chunk tasks run eagerly after commit."""

    def run(digest: Digest) -> plan.Plan:
        with django_capture_on_commit_callbacks(execute=True):
            return send_start(digest.pk)

    return run


def statuses(digest: Digest) -> Counter[str]:
    return Counter(Delivery.objects.filter(digest=digest).values_list("status", flat=True))


LINK = re.compile(r"https?://[^\s\"<>]+")


# --- what a reader sees ---------------------------------------------------------------------------


def test_each_reader_gets_their_categories_personal_links_and_headers(
    mailgun: FakeESP, send
) -> None:  # type: ignore[no-untyped-def]
    cats = categories()
    digest = approved_issue()
    first = subscriber_create(email="first@example.com", categories=cats[:2])
    second = subscriber_create(email="second@example.com", categories=cats[3:4])

    report = send(digest)

    assert report.started and report.deliveries == 2 and len(report.chunks) == 2
    assert len(mailgun.calls) == 2  # one per variant
    call = mailgun.call_for("first@example.com")
    assert call.domain == DOMAIN
    assert call.to == ["first@example.com"]
    html = call.substituted(call.html, "first@example.com")
    text = call.substituted(call.text, "first@example.com")
    for part in (html, text):
        assert marker(cats[0]) in part and marker(cats[1]) in part
        assert marker(cats[3]) not in part and marker(cats[2]) not in part
        assert "%recipient." not in part and "@@" not in part
    links = LINK.findall(text)
    unsubscribe = [link for link in links if "/unsubscribe/" in link]
    assert unsubscribe, text
    token = unsubscribe[0].rstrip("/").rsplit("/", 1)[1]
    assert token_read(token=token, purpose=Purpose.UNSUBSCRIBE) == first
    headers = {k: call.substituted(v, "first@example.com") for k, v in call.headers.items()}
    assert headers["List-Unsubscribe"] == f"<{unsubscribe[0]}>"
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["List-Id"] == "Daily AI Insights <daily-ai-insights.example.org>"
    delivery_row = Delivery.objects.get(subscriber=first)
    assert call.substituted(call.variables["delivery_id"], "first@example.com") == str(
        delivery_row.pk
    )
    assert call.variables["digest"] == str(digest.pk)
    assert call.tags == ["digest", f"digest-{digest.date:%Y-%m-%d}"]
    # The chart: inline, its Content-ID (Mailgun takes it from the file name) named in the HTML.
    assert len(call.inline) == 1
    cid = call.inline[0].filename
    assert f'src="cid:{cid}"' in html
    assert call.inline[0].content.startswith(b"\x89PNG")
    other = mailgun.call_for("second@example.com")
    assert marker(cats[3]) in other.html and marker(cats[0]) not in other.html

    digest.refresh_from_db()
    assert digest.status == Digest.Status.SENT and digest.sent_at is not None
    rows = Delivery.objects.filter(digest=digest)
    assert {row.status for row in rows} == {Delivery.Status.SENT}
    assert {row.esp_message_id for row in rows} == {c.message_id for c in mailgun.calls}
    assert second.deliveries.get().variant == str(cats[3].pk)


def test_one_call_carries_up_to_the_batch_size_per_variant(
    mailgun: FakeESP, send, settings: Any
) -> None:  # type: ignore[no-untyped-def]
    settings.DELIVERY_BATCH_SIZE = 10
    cats = categories()
    digest = approved_issue()
    readers(25, cats[:1], "a")
    readers(5, cats[1:3], "b")

    report = send(digest)

    assert len(report.chunks) == 4  # 10 + 10 + 5 of one variant, 5 of the other
    assert sorted(len(call.to) for call in mailgun.calls) == [5, 5, 10, 10]
    assert statuses(digest) == {"sent": 30}
    for call in mailgun.calls:
        assert len(set(call.recipient_variables)) == len(call.to)


def test_a_chunk_of_1000_readers_costs_a_handful_of_queries(
    mailgun: FakeESP, settings: Any
) -> None:  # type: ignore[no-untyped-def]
    cats = categories()
    digest = approved_issue()
    subscribers = [
        Subscriber(email=f"bulk{n}@example.com", status=Subscriber.Status.ACTIVE)
        for n in range(1000)
    ]
    Subscriber.objects.bulk_create(subscribers)
    through = Subscriber.categories.through
    ids = Subscriber.objects.filter(email__startswith="bulk").values_list("pk", flat=True)
    through.objects.bulk_create([through(subscriber_id=pk, category_id=cats[0].pk) for pk in ids])
    with CaptureQueriesContext(connection) as start_queries:
        report = send_start(digest.pk)
    assert len(report.chunks) == 1
    chunk = list(Delivery.objects.filter(digest=digest).values_list("pk", flat=True))
    # Warm the per-process content and render caches as the first chunk of a send does.
    digest.refresh_from_db()
    content = rendering.digest_context(digest=digest)
    key = str(cats[0].pk)
    cid = rendering.chart_cid_make(digest_id=digest.pk, key=key)
    rendering.variant_render(content=content, key=key, language="ko", chart_cid=cid)

    with CaptureQueriesContext(connection) as chunk_queries:
        send_chunk.delay(digest.pk, chunk)

    assert len(mailgun.calls) == 1 and len(mailgun.calls[0].to) == 1000
    assert statuses(digest) == {"sent": 1000}
    # The start: claim, the digest's kind, the active team-chat channels (none), the range
    # bound, the row watermark, the readers' distinct keyword rules, the rows, the chunks,
    # "planned".
    assert len(statements(start_queries)) <= 12, "\n".join(statements(start_queries))
    assert len(statements(chunk_queries)) <= 8, "\n".join(statements(chunk_queries))


def statements(queries: CaptureQueriesContext) -> list[str]:
    """The SQL statements, savepoints aside; SQLite's split of one bulk INSERT (at most 999
    parameters per statement) counts once, as PostgreSQL runs it."""
    kept: list[str] = []
    for query in queries.captured_queries:
        sql = query["sql"]
        if sql.startswith(("SAVEPOINT", "RELEASE SAVEPOINT")):
            continue
        if kept and sql.startswith("INSERT") and kept[-1] == sql[:60]:
            continue
        kept.append(sql[:60])
    return kept


# --- faults ---------------------------------------------------------------------------------------


def test_429_and_500_answers_are_retried_and_everyone_gets_one_copy(
    mailgun: FakeESP, send, settings: Any
) -> None:  # type: ignore[no-untyped-def]
    settings.DELIVERY_BATCH_SIZE = 5
    mailgun.fail_rate = 0.4
    mailgun.fail_statuses = (429, 500, 503)
    digest = approved_issue()
    cats = categories()
    readers(40, cats[:2])
    readers(20, cats[2:3], "other")

    send(digest)

    assert set(mailgun.statuses) >= {200, 429} and (mailgun.statuses[500] + mailgun.statuses[503])
    sent = mailgun.recipients()
    assert len(sent) == len(set(sent)) == 60
    assert statuses(digest) == {"sent": 60}
    assert Delivery.objects.filter(digest=digest, attempts__gt=1).exists()
    digest.refresh_from_db()
    assert digest.status == Digest.Status.SENT


def test_network_errors_are_retried(mailgun: FakeESP, send, settings: Any) -> None:  # type: ignore[no-untyped-def]
    digest = approved_issue()
    readers(3, categories()[:1])
    url = settings.ANYMAIL["MAILGUN_API_URL"]
    settings.ANYMAIL = {**settings.ANYMAIL, "MAILGUN_API_URL": "http://127.0.0.1:9/v3"}
    settings.DELIVERY_MAX_RETRIES = 1
    with pytest.raises(chunk.DeliveryRetry):
        send(digest)
    # Out of retries: the ESP never accepted them, so they failed; the digest is done.
    assert statuses(digest) == {"failed": 3}
    assert "gave up after retries" in Delivery.objects.filter(digest=digest).first().error  # type: ignore[union-attr]
    settings.ANYMAIL = {**settings.ANYMAIL, "MAILGUN_API_URL": url}
    assert mailgun.recipients() == []


def test_a_permanently_rejected_address_fails_alone(mailgun: FakeESP, send) -> None:  # type: ignore[no-untyped-def]
    mailgun.reject = {"bad7@example.com"}
    digest = approved_issue()
    readers(20, categories()[:1], "bad")

    send(digest)

    bad = Delivery.objects.get(email="bad7@example.com")
    assert bad.status == Delivery.Status.FAILED
    assert "not a valid address" in bad.error
    assert statuses(digest) == {"sent": 19, "failed": 1}
    sent = mailgun.recipients()
    assert "bad7@example.com" not in sent and len(sent) == len(set(sent)) == 19
    assert len(mailgun.calls) <= 6  # the bisection: log2(20) levels


def test_readers_suppressed_after_the_start_are_skipped(
    mailgun: FakeESP, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:  # type: ignore[no-untyped-def]
    digest = approved_issue()
    cats = categories()
    stay = readers(3, cats[:1], "stay")
    leaver, bouncer, complainer = readers(3, cats[:1], "gone")
    deleted = subscriber_create(email="deleted@example.com", categories=cats[:1])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        send_start(digest.pk)
    for subscriber, status in (
        (leaver, Subscriber.Status.UNSUBSCRIBED),
        (bouncer, Subscriber.Status.BOUNCED),
        (complainer, Subscriber.Status.COMPLAINED),
    ):
        Subscriber.objects.filter(pk=subscriber.pk).update(status=status)
    deleted.delete()
    for callback in callbacks:
        callback()

    assert sorted(mailgun.recipients()) == sorted(s.email for s in stay)
    assert statuses(digest) == {"sent": 3, "skipped": 4}


def test_suppressed_and_pending_readers_get_no_delivery(mailgun: FakeESP, send) -> None:  # type: ignore[no-untyped-def]
    digest = approved_issue()
    cats = categories()
    subscriber_create(email="active@example.com", categories=cats[:1])
    for status in ("pending", "unsubscribed", "bounced", "complained"):
        subscriber_create(email=f"{status}@example.com", categories=cats[:1], status=status)
    send(digest)
    assert mailgun.recipients() == ["active@example.com"]
    assert Delivery.objects.filter(digest=digest).count() == 1


def test_a_daily_issue_goes_to_daily_readers_and_a_weekly_one_to_weekly_readers(
    mailgun: FakeESP, send
) -> None:  # type: ignore[no-untyped-def]
    cats = categories()
    subscriber_create(email="daily@example.com", categories=cats[:1])
    weekly = subscriber_create(email="weekly@example.com", categories=cats[:1])
    Subscriber.objects.filter(pk=weekly.pk).update(cadence=Subscriber.Cadence.WEEKLY)

    send(approved_issue())
    assert mailgun.recipients() == ["daily@example.com"]

    Digest.objects.update(date=date(2026, 8, 12))  # the next issue takes the factory's date
    digest = approved_issue()
    Digest.objects.filter(pk=digest.pk).update(kind=Digest.Kind.WEEKLY, date=date(2026, 8, 16))
    send(digest)
    assert mailgun.recipients() == ["daily@example.com", "weekly@example.com"]
    assert list(Delivery.objects.filter(digest=digest).values_list("email", flat=True)) == [
        "weekly@example.com"
    ]


def test_two_starts_at_once_send_once(mailgun: FakeESP, send) -> None:  # type: ignore[no-untyped-def]
    digest = approved_issue()
    readers(4, categories()[:1])
    first = send(digest)
    second = send(digest)
    assert first.started and not second.started
    assert len(mailgun.recipients()) == 4
    assert Delivery.objects.filter(digest=digest).count() == 4


def test_a_digest_not_due_or_not_approved_is_not_started(mailgun: FakeESP, send) -> None:  # type: ignore[no-untyped-def]
    later = approved_issue()
    Digest.objects.filter(pk=later.pk).update(send_at=timezone.now() + timedelta(hours=1))
    readers(2, categories()[:1])
    assert not send(later).started
    Digest.objects.filter(pk=later.pk).update(status=Digest.Status.DRAFT, send_at=None)
    assert not send(later).started
    assert mailgun.recipients() == []


def test_a_duplicate_chunk_task_sends_nothing_twice(mailgun: FakeESP, send) -> None:  # type: ignore[no-untyped-def]
    digest = approved_issue()
    readers(5, categories()[:1])
    send(digest)
    ids = list(Delivery.objects.filter(digest=digest).values_list("pk", flat=True))
    result = send_chunk.delay(digest.pk, ids).get()
    assert result["claimed"] == 0
    assert len(mailgun.recipients()) == 5


def test_a_stale_claim_becomes_unknown_and_is_not_resent(
    mailgun: FakeESP, settings: Any, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:  # type: ignore[no-untyped-def]
    settings.DELIVERY_BATCH_SIZE = 3
    digest = approved_issue()
    readers(6, categories()[:1])
    with django_capture_on_commit_callbacks(execute=False):
        report = send_start(digest.pk)
    assert len(report.chunks) == 2
    # A worker claimed the first chunk and died in its ESP call, ten minutes ago.
    first = list(Delivery.objects.filter(digest=digest).order_by("pk")[:3])
    long_ago = timezone.now() - timedelta(seconds=settings.DELIVERY_STALE_AFTER_SECONDS + 60)
    Delivery.objects.filter(pk__in=[d.pk for d in first]).update(
        status=Delivery.Status.SENDING, claim="dead-worker", claimed_at=long_ago, attempts=1
    )
    Digest.objects.filter(pk=digest.pk).update(sending_started_at=long_ago)

    with django_capture_on_commit_callbacks(execute=True):
        result = send_due_digests.delay().get()

    assert result["resumed"] == [digest.pk]
    assert statuses(digest) == {"unknown": 3, "sent": 3}
    unknown = ledger.deliveries_unknown(digest_id=digest.pk)
    assert [d.email for d in unknown] == sorted(d.email for d in first)
    assert not {d.email for d in first} & set(mailgun.recipients())
    digest.refresh_from_db()
    assert digest.status == Digest.Status.SENT  # unknowns are listed, not waited for


def test_a_live_send_is_not_resumed(
    mailgun: FakeESP, settings: Any, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    digest = approved_issue()
    readers(2, categories()[:1])
    with django_capture_on_commit_callbacks(execute=False):
        send_start(digest.pk)
    assert recovery.digests_stalled() == []


def test_the_beat_task_starts_due_digests(
    mailgun: FakeESP, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    digest = approved_issue()
    readers(2, categories()[:1])
    with django_capture_on_commit_callbacks(execute=True):
        result = send_due_digests.delay().get()
    assert result["started"] == [digest.pk]
    digest.refresh_from_db()
    assert digest.status == Digest.Status.SENT
    assert len(mailgun.recipients()) == 2


def test_an_empty_variant_is_skipped_when_the_policy_says_so(
    mailgun: FakeESP, send, settings: Any
) -> None:  # type: ignore[no-untyped-def]
    settings.DELIVERY_EMPTY_POLICY = "skip"
    cats = categories()
    digest = issue_create(categories=cats[:2], papers_per_section=1, summary_length=300)
    Digest.objects.filter(pk=digest.pk).update(
        status=Digest.Status.APPROVED, send_at=timezone.now()
    )
    subscriber_create(email="has@example.com", categories=cats[:1])
    subscriber_create(email="none@example.com", categories=cats[4:5])
    send(digest)
    assert mailgun.recipients() == ["has@example.com"]
    assert Delivery.objects.get(email="none@example.com").status == Delivery.Status.SKIPPED


def test_an_empty_variant_gets_the_note_by_default(mailgun: FakeESP, send) -> None:  # type: ignore[no-untyped-def]
    cats = categories()
    digest = issue_create(categories=cats[:2], papers_per_section=1, summary_length=300)
    Digest.objects.filter(pk=digest.pk).update(
        status=Digest.Status.APPROVED, send_at=timezone.now()
    )
    subscriber_create(email="none@example.com", categories=cats[4:5])
    send(digest)
    call = mailgun.call_for("none@example.com")
    assert call.inline == []
    assert "unsubscribe" in call.substituted(call.text, "none@example.com")


# --- events ---------------------------------------------------------------------------------------


def test_bounce_and_open_events_map_back_to_the_delivery(mailgun: FakeESP, send) -> None:  # type: ignore[no-untyped-def]
    digest = approved_issue()
    one, two = readers(2, categories()[:1])
    send(digest)
    first = Delivery.objects.get(subscriber=one)
    second = Delivery.objects.get(subscriber=two)

    def event(kind: str, row: Delivery) -> EmailEvent:
        return EmailEvent.objects.create(
            esp="Mailgun",
            event_id=f"{kind}-{row.pk}",
            event_type=kind,
            recipient=row.email,
            metadata={"digest": str(digest.pk), "delivery_id": str(row.pk)},
        )

    assert ledger.delivery_events_apply(event=event("bounced", first))
    assert ledger.delivery_events_apply(event=event("opened", second))
    assert not ledger.delivery_events_apply(
        event=EmailEvent.objects.create(esp="Mailgun", event_id="x", event_type="bounced")
    )
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == Delivery.Status.BOUNCED
    assert second.status == Delivery.Status.SENT and second.opened_at is not None


# --- the fast paths give what the plain ones give -------------------------------------------------


def test_personal_links_are_the_ones_token_url_makes(settings: Any) -> None:
    settings.SITE_URL = "https://insights.example.org"
    reader = subscriber_create(email="Links@Example.com")
    with mock.patch("time.time", return_value=1_800_000_000.0):  # one timestamp for both
        links = emails.personal_links(reader, emails.link_templates())
        expected = {
            name: token_url(subscriber=reader, purpose=purpose)
            for name, purpose in emails.LINK_PURPOSES.items()
        }
        tokens = tokens_make(subscriber=reader, purposes=[Purpose.UNSUBSCRIBE, "confirm"])
        assert tokens == {
            Purpose.UNSUBSCRIBE: token_make(subscriber=reader, purpose=Purpose.UNSUBSCRIBE),
            Purpose.CONFIRM: token_make(subscriber=reader, purpose=Purpose.CONFIRM),
        }
    assert links == expected
    token = links["unsubscribe_url"].rstrip("/").rsplit("/", 1)[1]
    assert token_read(token=token, purpose=Purpose.UNSUBSCRIBE) == reader


def test_deliveries_and_chunks_match_the_portable_path(settings: Any) -> None:
    """On PostgreSQL the start uses one INSERT ... SELECT and an aggregate for the chunks;
    both must give the rows and chunks the portable path gives."""
    settings.DELIVERY_BATCH_SIZE = 2
    settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
    cats = categories()
    readers(3, [cats[2], cats[0]], prefix="two")
    readers(1, [], prefix="none")
    subscriber_create(email="en@example.com", language="en", categories=[cats[0], cats[2]])
    subscriber_create(email="one@example.com", categories=[cats[1]])
    subscriber_create(email="left@example.com", status=Subscriber.Status.UNSUBSCRIBED)
    # Keyword rules that match today's papers ("reasoning", twice: one variant) and that do not.
    for number, include in enumerate(["reasoning", "Reasoning", "quantum"]):
        reader = subscriber_create(email=f"kw{number}@example.com", categories=[cats[1]])
        keywords_apply(reader, choice=ReaderChoice(include))
        reader.save()
    fast = issue_create(day=date(2026, 8, 13), papers_per_section=1)
    plain = issue_create(day=date(2026, 8, 14), papers_per_section=1)
    keys = plan.keywords_in_effect(digest_id=plain.pk, cadence="daily")

    assert plan.deliveries_create(digest_id=fast.pk) == 9
    assert plan._deliveries_create_portable(plain.pk, 0, None, "daily", keys) == 9
    assert plan.deliveries_create(digest_id=fast.pk) in {0, 9}  # nothing new either way

    def rows(digest: Digest) -> list[tuple[Any, ...]]:
        fields = ("subscriber_id", "email", "variant", "status", "attempts", "claim", "error")
        return sorted(Delivery.objects.filter(digest=digest).values_list(*fields))

    assert rows(fast) == rows(plain)
    variants = dict(Delivery.objects.filter(digest=fast).values_list("email", "variant"))
    assert variants["none0@example.com"] == ""
    assert variants["two0@example.com"] == ",".join(
        str(c.pk) for c in sorted([cats[0], cats[2]], key=lambda c: c.pk)
    )
    matching = Subscriber.objects.get(email="kw0@example.com").keywords_key
    assert variants["kw0@example.com"] == variants["kw1@example.com"] == f"{cats[1].pk}+{matching}"
    assert variants["kw2@example.com"] == variants["one@example.com"] == str(cats[1].pk)

    ids = dict(Delivery.objects.filter(digest=fast).values_list("pk", "email"))
    by_email = dict(Delivery.objects.filter(digest=plain).values_list("email", "pk"))
    fast_groups = {
        group: [by_email[ids[pk]] for pk in rows]
        for group, rows in plan._queued_groups(digest_id=fast.pk, from_row=0).items()
    }
    assert fast_groups == plan._queued_groups_portable(digest_id=plain.pk, from_row=0)
    chunks = plan.chunks_plan(digest_id=fast.pk)
    assert sorted(len(rows) for rows in chunks) == [1, 1, 1, 2, 2, 2]


def test_a_large_list_is_planned_in_ranges_while_it_sends_everyone_once(
    mailgun: FakeESP, send, settings: Any
) -> None:  # type: ignore[no-untyped-def]
    """The first readers' rows are made and sent before the rest are planned; a group's
    partial chunk waits for the next range, so ranges cost no extra ESP calls."""
    settings.DELIVERY_PLAN_FIRST = 5
    settings.DELIVERY_PLAN_RANGE = 7
    settings.DELIVERY_BATCH_SIZE = 4
    digest = approved_issue()
    cats = categories()
    readers(11, cats[:1], "one")
    readers(9, cats[1:2], "two")
    readers(6, cats[:2], "both")

    report = send(digest)

    assert report.deliveries == 5 and report.next_reader is not None  # the first range only
    sent = mailgun.recipients()
    assert len(sent) == len(set(sent)) == 26
    # As few calls as one plan of the whole list would make: ceil(11/4) + ceil(9/4) + ceil(6/4).
    assert len(mailgun.calls) == 3 + 3 + 2
    digest.refresh_from_db()
    assert digest.status == Digest.Status.SENT and digest.send_planned_at is not None
    assert statuses(digest) == {"sent": 26}


def test_a_send_is_not_finished_while_readers_are_still_being_planned(
    mailgun: FakeESP, settings: Any, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    settings.DELIVERY_PLAN_FIRST = 2
    settings.DELIVERY_BATCH_SIZE = 2
    digest = approved_issue()
    readers(5, categories()[:1])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        report = send_start(digest.pk)
    assert len(report.chunks) == 1
    first_chunk, next_range = callbacks

    with django_capture_on_commit_callbacks(execute=True):
        first_chunk()
    digest.refresh_from_db()
    # Every row made so far is sent, but three readers have no row yet: not finished.
    assert statuses(digest) == {"sent": 2}
    assert digest.status == Digest.Status.SENDING

    with django_capture_on_commit_callbacks(execute=True):
        next_range()
    digest.refresh_from_db()
    assert digest.status == Digest.Status.SENT
    assert sorted(mailgun.recipients()) == sorted(f"reader{n}@example.com" for n in range(5))


def test_a_planner_that_died_is_taken_over_by_the_resume(
    mailgun: FakeESP, settings: Any, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    """The worker that was to plan the next range died with its task: beat's resume, once the
    send looks stalled, plans the rest from the last reader that has a row."""
    settings.DELIVERY_PLAN_FIRST = 3
    settings.DELIVERY_BATCH_SIZE = 3
    digest = approved_issue()
    readers(8, categories()[:1])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        send_start(digest.pk)
    first_chunk, _lost_range = callbacks
    with django_capture_on_commit_callbacks(execute=True):
        first_chunk()
    assert statuses(digest) == {"sent": 3}
    long_ago = timezone.now() - timedelta(seconds=settings.DELIVERY_STALE_AFTER_SECONDS + 60)
    Delivery.objects.filter(digest=digest).update(claimed_at=long_ago)
    Digest.objects.filter(pk=digest.pk).update(sending_started_at=long_ago)

    with django_capture_on_commit_callbacks(execute=True):
        result = send_due_digests.delay().get()

    assert result["resumed"] == [digest.pk]
    digest.refresh_from_db()
    assert digest.status == Digest.Status.SENT
    sent = mailgun.recipients()
    assert sorted(sent) == sorted(f"reader{n}@example.com" for n in range(8))
