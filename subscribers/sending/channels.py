"""The team chats' part of a send: one ChannelDelivery per active channel of the digest's cadence,
made when the send starts (in the same transaction as the first readers' rows), sent in chunks
of CHANNEL_BATCH_SIZE channels next to the emails' chunks, through the same ledger rules.

queued -> sending (one row at a time, just before its first post: a conditional UPDATE under
the task's claim uuid) -> sent | failed | skipped | unknown. A message in several parts
(Telegram's 4,096-character limit, Discord's 6,000 per message) records each part as it is
posted (`parts_sent`, one UPDATE per part), so a retry goes on from the next part: no part is
posted twice by a retry. A worker killed during a
post leaves its row "sending"; the resume turns it into "unknown" as it does an email's (the part
in flight may have been posted), listed for the editor, never reposted blindly.

What the services answer (`subscribers.channels.transports.PostResult`):
- posted: the next part, then "sent";
- try later (429 with Retry-After, 5xx, a network error): a wait up to CHANNEL_RETRY_AFTER_WAIT
  is waited out here, a longer one puts the row back to "queued" (its posted parts counted) and
  raises `ChannelRetry` with the service's delay, so the task retries then;
- revoked (Slack 404/410, Discord 404, Telegram 403 or "chat not found"): the row failed and the
  channel suppressed (status revoked), as a hard bounce suppresses a reader;
- a Telegram group upgraded to a supergroup: the channel's chat id follows, the part is posted
  there;
- any other refusal: that channel's row failed.
Telegram's rate (TELEGRAM_RATE_PER_SECOND, shared by every worker in Redis): a wait up to
RATE_WAIT_INLINE is slept in the posting thread; a longer one (or more than RATE_WAIT_BUDGET
of waits in one chunk) stops the chunk (its rows not
posted go back to "queued") and `ChannelRetry(deferred=True)` has the task enqueue the chunk
again after the wait, so the worker sends emails meanwhile instead of sleeping.
Failures count in the digest's run of errors (`pace.errors_record`), so a send whose channels
all fail pauses like one whose emails do. Nothing here enqueues: `tasks.py` does.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from digests.models import Digest

from .. import rendering
from ..channels.messages import ChannelMessage, channel_message
from ..channels.transports import ChatPace, PostResult, channel_post
from ..models import Channel, ChannelDelivery, Delivery, channel_destination
from . import ledger, pace
from .transports import Outcome

logger = logging.getLogger(__name__)

# Posts of one part tried in a row within a task (waiting out short Retry-Afters) before the
# task is retried later.
PART_TRIES = 3
# How often a chunk reads whether the send was paused meanwhile (a query), between channels.
PAUSE_CHECK_SECONDS = 1.0
# A wait for Telegram's rate up to this long is slept in the posting thread; a longer one, or
# more than RATE_WAIT_BUDGET of them in one chunk, hands the worker back (the chunk goes on in a
# new task after the wait): a worker does not spend its time waiting on the rate while emails
# wait for it.
RATE_WAIT_INLINE = 0.25
RATE_WAIT_BUDGET = 1.0


class ChannelRetry(Exception):
    """A service asked us to come back later; the claimed rows wait for the task's retry."""

    def __init__(self, *, reason: str, countdown: float, deferred: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.countdown = countdown
        # Only our own pace asked for later (no service refused anything): the chunk is sent
        # on later as a new task, not counted as a retry.
        self.deferred = deferred


@dataclass
class ChannelReport:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    released: int = 0
    revoked: int = 0
    parts: int = 0  # messages posted


# --- Planning -----------------------------------------------------------------------------------


def channels_plan(*, digest_id: int, cadence: str) -> list[list[int]]:
    """A queued ChannelDelivery for every active channel of the cadence (a channel that already
    has its row is left alone), and the chunks of every queued row of the digest."""
    channels = Channel.objects.filter(status=Channel.Status.ACTIVE, cadence=cadence).order_by("pk")
    found = list(channels.values_list("pk", "kind", "url", "chat_id", "keywords_key", "language"))
    if not found:
        return []  # one query for a newsletter without channels
    chosen: dict[int, list[int]] = {}
    through = Channel.categories.through
    pairs = through.objects.filter(channel_id__in=[row[0] for row in found])
    for channel_id, category_id in pairs.values_list("channel_id", "category_id"):
        chosen.setdefault(channel_id, []).append(category_id)
    rows = [
        ChannelDelivery(
            digest_id=digest_id,
            channel_id=pk,
            kind=kind,
            destination=channel_destination(kind, url, chat_id)[:200],
            variant=rendering.variant_key(chosen.get(pk, []), keywords_key),
            language=language,
        )
        for pk, kind, url, chat_id, keywords_key, language in found
    ]
    ChannelDelivery.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    return channel_chunks(digest_id=digest_id)


def channel_chunks(*, digest_id: int) -> list[list[int]]:
    """The digest's queued channel rows in chunks of CHANNEL_BATCH_SIZE, by kind then id (a
    chunk posts to one service), Telegram's first: its rate limit makes them the longest."""
    size = max(1, int(settings.CHANNEL_BATCH_SIZE))
    queued = ChannelDelivery.objects.filter(digest_id=digest_id, status=Delivery.Status.QUEUED)
    chunks: list[list[int]] = []
    current_kind = None
    rows = queued.values_list("pk", "kind")
    ordered = sorted(rows, key=lambda row: (row[1] != Channel.Kind.TELEGRAM, row[1], row[0]))
    for pk, kind in ordered:
        if kind != current_kind or len(chunks[-1]) >= size:
            chunks.append([])
            current_kind = kind
        chunks[-1].append(pk)
    return chunks


# --- Sending ------------------------------------------------------------------------------------


def channel_deliveries_send(
    *,
    digest_id: int,
    ids: Sequence[int],
    claim: str,
    chat_pace: ChatPace | None = None,
    sleep: Callable[[float], None] | None = None,
) -> ChannelReport:
    """Posts and records the queued rows among `ids`. Each row is claimed (queued -> sending, a
    conditional UPDATE) just before its first post, so "sending" means a post in flight, and a
    worker that dies leaves at most its posts in flight in doubt; the chunk's other rows stay
    queued for the resume. Up to CHANNEL_CONCURRENCY channels are posted to at once (threads
    that only talk HTTP: every database change is made here, in this thread). Raises
    ChannelRetry when a service asked for a later try: those rows went back to "queued" (their
    posted parts counted) for the task's retry."""
    report = ChannelReport()
    digest = Digest.objects.filter(pk=digest_id).first()
    if digest is None or digest.status == Digest.Status.PAUSED:
        return report
    queued = ChannelDelivery.objects.filter(pk__in=list(ids), status=Delivery.Status.QUEUED)
    rows = list(queued.select_related("channel").order_by("pk"))
    if not rows:
        ledger.digest_finish_if_done(digest_id=digest_id)
        return report
    _rules_remember(rows)
    chunk = _Chunk(
        digest=digest,
        claim=claim,
        report=report,
        chat_pace=chat_pace or pace_get(),
        sleep=sleep or _sleep,
    )
    threads = max(1, min(int(settings.CHANNEL_CONCURRENCY), len(rows)))
    try:
        chunk.run(rows, threads)
    finally:
        ledger.digest_finish_if_done(digest_id=digest_id)
    if chunk.retry_after is not None:
        raise ChannelRetry(
            reason=chunk.retry_reason,
            countdown=chunk.retry_after,
            deferred=chunk.deferred,
        )
    return report


@dataclass
class _Event:
    """What a posting thread tells the recording thread."""

    row: ChannelDelivery
    kind: str  # "part" (one posted), "migrate", "sent", "failed", "revoked", "later"
    result: PostResult | None = None
    chat_id: str = ""
    delay: float = 0.0
    reason: str = ""
    deferred: bool = False  # "later" because of our own pace (Telegram's rate), not an error


class _Chunk:
    """One chunk's rows: claimed, rendered and recorded in the calling thread, posted in up to
    `threads` threads (inline for one)."""

    def __init__(
        self,
        *,
        digest: Digest,
        claim: str,
        report: ChannelReport,
        chat_pace: ChatPace,
        sleep: Callable[[float], None],
    ) -> None:
        self.digest = digest
        self.claim = claim
        self.report = report
        self.chat_pace = chat_pace
        self.sleep = sleep
        self.telegram_rate: pace.Limiter | None = None
        self.retry_after: float | None = None
        self.retry_reason = ""
        self.paused = False
        self.deferred = False  # our own pace said later: claim no more rows now
        self.rate_waited = 0.0  # seconds the posting threads waited for Telegram's rate
        self.checked_at = time.monotonic()  # the digest was read as the chunk started

    def run(self, rows: list[ChannelDelivery], threads: int) -> None:
        """Up to `threads` rows posted at once; every event recorded here, as it comes. A pause
        or a deferral stops the claiming of more rows (those stay queued); the posts under way
        finish."""
        events: queue.SimpleQueue[_Event | None] = queue.SimpleQueue()
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="channels") as pool:
            in_flight = 0
            waiting = list(reversed(rows))
            while waiting or in_flight:
                while waiting and in_flight < threads and not (self.paused or self.deferred):
                    if self._paused_now():
                        self.paused = True
                        break
                    job = self._prepare(waiting.pop())
                    if job is not None:
                        pool.submit(_post_thread, job, events.put)
                        in_flight += 1
                if self.paused or self.deferred:
                    if self.paused:
                        self.report.released += len(waiting)  # queued, for the resume
                    waiting = []
                if not in_flight:
                    continue
                event = events.get()
                if event is None:
                    in_flight -= 1
                    continue
                self._record(event)

    def _prepare(self, row: ChannelDelivery) -> _Job | None:
        """Claims the row and renders its message; None when there is nothing to post (skipped,
        or taken by another task)."""
        if not _row_claim(row, self.claim):
            return None  # taken by another task (a resume)
        self.report.claimed += 1
        channel = row.channel
        if channel is None or channel.status != Channel.Status.ACTIVE:
            self.report.skipped += _mark(row, Delivery.Status.SKIPPED, "channel no longer active")
            return None
        message = channel_message(
            digest=self.digest, kind=row.kind, key=row.variant, language=row.language
        )
        if message.empty:
            self.report.skipped += _mark(
                row, Delivery.Status.SKIPPED, "no section for the channel's categories"
            )
            return None
        if len(message.parts) != row.parts_total:
            row.parts_total = len(message.parts)
            ChannelDelivery.objects.filter(pk=row.pk).update(parts_total=row.parts_total)
        limiter = None
        if row.kind == Channel.Kind.TELEGRAM:
            if self.telegram_rate is None:
                self.telegram_rate = pace.telegram_limiter()
            limiter = self.telegram_rate
        return _Job(row, channel.kind, channel.url, channel.chat_id, message, self, limiter)

    def _paused_now(self) -> bool:
        """Whether an editor or the error count paused the send: read at most every
        PAUSE_CHECK_SECONDS (this chunk's own errors pause it at once, in `_record`)."""
        now = time.monotonic()
        if now - self.checked_at < PAUSE_CHECK_SECONDS:
            return False
        self.checked_at = now
        return pace.digest_state(digest_id=self.digest.pk)[0] == Digest.Status.PAUSED

    def _record(self, event: _Event) -> None:
        """A posting thread's news, written down (this thread: the database's)."""
        row, report = event.row, self.report
        if event.kind == "part" and event.result is not None:
            report.parts += 1
            if row.parts_sent + 1 < row.parts_total:
                _part_record(row, row.parts_sent + 1, event.result)
            else:  # the last part: "sent" follows at once and records it with the status
                row.parts_sent += 1
                row.message_id = event.result.message_id or row.message_id
            return
        if event.kind == "migrate":
            _chat_migrate(row.channel, event.chat_id)
            return
        if event.kind == "later":
            # Our own pace is no attempt: the claim is taken back with its count.
            channels_release(
                claim=row.claim, ids=[row.pk], reason=event.reason, attempted=not event.deferred
            )
            self.retry_after = max(self.retry_after or 0.0, event.delay)
            self.retry_reason = self.retry_reason or event.reason
            self.deferred = self.deferred or event.deferred
            return
        if event.kind == "sent":
            report.sent += _mark_sent(row)
        elif event.kind == "revoked" and event.result is not None:
            _revoke(row.channel, event.result)
            report.revoked += 1
            report.failed += _mark(row, Delivery.Status.FAILED, f"revoked: {event.result.error}")
        else:
            report.failed += _mark(row, Delivery.Status.FAILED, event.reason or "refused")
        if pace.errors_record(digest_id=self.digest.pk, outcome=_outcome_of(row), errors_before=0):
            self.paused = True


@dataclass(frozen=True)
class _Job:
    row: ChannelDelivery
    kind: str
    url: str
    chat_id: str
    message: ChannelMessage
    chunk: _Chunk
    limiter: pace.Limiter | None


def _post_thread(job: _Job, emit: Callable[[_Event | None], None]) -> None:
    try:
        _post_parts(job, emit=emit)
    except Exception as error:  # a bug must not leave the recording thread waiting forever
        logger.exception("channel %s: posting failed", job.row.channel_id)
        emit(_Event(job.row, "failed", reason=f"{type(error).__name__}: {error}"))
    finally:
        emit(None)


def _post_parts(job: _Job, *, emit: Callable[[_Event], None]) -> None:
    """Posts one channel's message from its first part not yet posted; says what happened
    through `emit` (no database here: this may run in a thread)."""
    row, message, chunk = job.row, job.message, job.chunk
    chat_id = job.chat_id
    part, tries = row.parts_sent, 0
    while part < len(message.parts):
        chunk.chat_pace.wait(job.kind, job.url or chat_id)
        # The bot's messages per second across every worker, after the chat's own pace (so
        # that the permit is used at once), without taking the chat's slot again.
        while job.limiter is not None and (wait := job.limiter.try_acquire(1)) > 0:
            chunk.rate_waited += wait
            if wait > RATE_WAIT_INLINE or chunk.rate_waited > RATE_WAIT_BUDGET:
                # The window is full for a while: the worker does other work meanwhile (an
                # email chunk) and this chunk comes back when the window has room.
                reason = f"Telegram's rate ({settings.TELEGRAM_RATE_PER_SECOND}/s): later"
                emit(_Event(row, "later", delay=wait, reason=reason, deferred=True))
                return
            chunk.sleep(wait)
        result = channel_post(kind=job.kind, url=job.url, chat_id=chat_id, body=message.parts[part])
        if result.ok:
            part, tries = part + 1, 0
            emit(_Event(row, "part", result=result))
            continue
        if result.migrate_to_chat_id and result.migrate_to_chat_id != chat_id:
            chat_id = result.migrate_to_chat_id
            emit(_Event(row, "migrate", chat_id=chat_id))
            continue
        if result.revoked:
            emit(_Event(row, "revoked", result=result))
            return
        if result.retry_after is not None:
            tries += 1
            delay = max(0.0, float(result.retry_after))
            if delay <= settings.CHANNEL_RETRY_AFTER_WAIT and tries < PART_TRIES:
                chunk.sleep(delay)
                continue
            emit(
                _Event(
                    row, "later", delay=delay, reason=f"{result.error} (retry after {delay:g} s)"
                )
            )
            return
        emit(_Event(row, "failed", reason=result.error or "refused"))
        return
    emit(_Event(row, "sent"))


def _rules_remember(rows: list[ChannelDelivery]) -> None:
    """The keyword rules of the chunk's channels, for the renderings."""
    keyed = [row.channel for row in rows if row.channel is not None and row.channel.keywords_key]
    rendering.keyword_rules_remember(
        (c.keywords_key, c.keywords_include, c.keywords_exclude, c.keywords_all_categories)
        for c in keyed
        if c is not None
    )


def _row_claim(row: ChannelDelivery, claim: str) -> bool:
    """queued -> sending for this row under `claim`, if nobody took it meanwhile."""
    now = timezone.now()
    taken = ChannelDelivery.objects.filter(pk=row.pk, status=Delivery.Status.QUEUED).update(
        status=Delivery.Status.SENDING, claim=claim, claimed_at=now, attempts=F("attempts") + 1
    )
    row.status, row.claim, row.claimed_at = Delivery.Status.SENDING, claim, now
    return taken == 1


def _part_record(row: ChannelDelivery, parts_sent: int, result: PostResult) -> None:
    """One part posted: counted at once (one UPDATE), so a retry starts after it."""
    ChannelDelivery.objects.filter(pk=row.pk).update(
        parts_sent=parts_sent, message_id=(result.message_id or row.message_id)[:200]
    )
    row.parts_sent = parts_sent
    row.message_id = result.message_id or row.message_id


def _mark_sent(row: ChannelDelivery) -> int:
    """Sent, with the count of parts and the last message id, in one UPDATE."""
    rows = ChannelDelivery.objects.filter(
        pk=row.pk, claim=row.claim, status__in=[Delivery.Status.SENDING, Delivery.Status.UNKNOWN]
    )
    row.status = Delivery.Status.SENT
    return rows.update(
        status=Delivery.Status.SENT,
        parts_sent=row.parts_sent,
        message_id=row.message_id[:200],
        sent_at=timezone.now(),
        error="",
    )


def _mark(row: ChannelDelivery, status: str, reason: str) -> int:
    rows = ChannelDelivery.objects.filter(
        pk=row.pk, claim=row.claim, status=Delivery.Status.SENDING
    )
    row.status, row.error = status, reason[:2000]
    return rows.update(status=status, error=row.error)


def _outcome_of(row: ChannelDelivery) -> Outcome:
    """The row's result as the send engine's error count reads it."""
    outcome = Outcome()
    if row.status == Delivery.Status.SENT:
        outcome.success()
    elif row.status == Delivery.Status.FAILED:
        outcome.failed[row.pk] = row.error
        outcome.error()
    return outcome


def _revoke(channel: Channel | None, result: PostResult) -> None:
    """The service says the destination is gone: the channel is suppressed."""
    if channel is None:
        return
    now = timezone.now()
    Channel.objects.filter(pk=channel.pk).update(
        status=Channel.Status.REVOKED,
        suppressed_at=now,
        suppressed_reason=result.error[:2000],
        updated_at=now,
    )
    channel.status = Channel.Status.REVOKED
    logger.warning("channel %s revoked: %s", channel.pk, result.error)


def _chat_migrate(channel: Channel | None, chat_id: str) -> None:
    """A Telegram group became a supergroup with a new id: the channel follows it."""
    if channel is None:
        return
    Channel.objects.filter(pk=channel.pk).update(chat_id=chat_id, updated_at=timezone.now())
    channel.chat_id = chat_id


# --- The ledger's part --------------------------------------------------------------------------


def channels_release(*, claim: str, ids: Sequence[int], reason: str, attempted: bool = True) -> int:
    """Rows of `claim` not finished go back to "queued" without their claim, for the task's
    retry (a service said later); parts already posted stay counted. Not `attempted`: the
    claim's count of attempts is taken back too (the rate said later before any post)."""
    rows = ChannelDelivery.objects.filter(
        pk__in=list(ids), claim=claim, status=Delivery.Status.SENDING
    )
    changes: dict[str, Any] = {"status": Delivery.Status.QUEUED, "claim": "", "claimed_at": None}
    if not attempted:
        changes["attempts"] = F("attempts") - 1
    return rows.update(**changes, error=reason)


def channels_give_up(*, ids: Sequence[int], reason: str) -> int:
    """After the last retry: the chunk's rows still waiting (queued) failed."""
    rows = ChannelDelivery.objects.filter(pk__in=list(ids), status=Delivery.Status.QUEUED)
    return rows.update(status=Delivery.Status.FAILED, error=f"gave up after retries: {reason}")


_pace: ChatPace | None = None
# How a short Retry-After is waited out (tests record it instead).
_sleep: Callable[[float], None] = time.sleep


def pace_get() -> ChatPace:
    """One pace per process, shared by the chunks a worker runs."""
    global _pace
    if _pace is None:
        _pace = ChatPace(bot_rate=False)  # the bot's rate: pace.telegram_limiter, shared
    return _pace
