"""Thin Celery tasks, and the only place that enqueues: they take ids, call one function, own the
retry policy, and enqueue what that function returns after the transaction commits
(`delay_on_commit`). Nothing that this module imports imports it back.

The send (subscribers.sending):
- `send_due_digests` (beat, every minute): start due digests, resume stalled sends, close
  finished ones.
- `digest_send_start` -> the first range of readers planned -> `send_chunk` per chunk, and
  `send_plan_range` for the next range, which enqueues its chunks and the range after it.
- `send_chunk`: one chunk; retried with backoff on a transient failure, under its claim.
- `send_channels`: a chunk of team-chat channels (made at the start with the first range);
  retried after the service's Retry-After, under its claim.
- `digest_send_resume`: a stalled or paused send, planned again.

The editors' notices (subscribers.notices): `notices_send` (beat, every five minutes, and right
after a send pauses or finishes) claims a notice for each new event and sends what is due.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import asdict
from smtplib import SMTPException
from typing import Any

from anymail.exceptions import AnymailAPIError
from celery import Task, shared_task
from celery.contrib.django.task import DjangoTask
from django.conf import settings
from django.db import OperationalError, transaction

from .emails import already_subscribed_email_send, confirmation_email_send
from .models import EmailEvent, Subscriber
from .notices import notices_scan
from .sending import channels, ledger, plan, recovery
from .sending.chunk import DeliveryRetry, deliveries_send
from .services import SignupEmail, pending_purge
from .suppression import email_event_apply

logger = logging.getLogger(__name__)

# Worth another try later: a busy database, a mail server or ESP that did not answer.
TRANSIENT = (OperationalError, SMTPException, ConnectionError, TimeoutError, AnymailAPIError)
# Longest wait between two inline retries of a chunk when tasks run eagerly (no broker).
EAGER_RETRY_MAX_SLEEP = 5.0


# --- Readers ------------------------------------------------------------------------------------


@shared_task(autoretry_for=TRANSIENT, retry_backoff=True, max_retries=5)
def confirmation_email_task(subscriber_id: int) -> None:
    # Only while still pending: a reader who confirmed or left meanwhile needs no such email.
    subscriber = Subscriber.objects.filter(
        pk=subscriber_id, status=Subscriber.Status.PENDING
    ).first()
    if subscriber is not None:
        confirmation_email_send(subscriber=subscriber)


@shared_task(autoretry_for=TRANSIENT, retry_backoff=True, max_retries=5)
def already_subscribed_email_task(subscriber_id: int) -> None:
    subscriber = Subscriber.objects.filter(
        pk=subscriber_id, status=Subscriber.Status.ACTIVE
    ).first()
    if subscriber is not None:
        already_subscribed_email_send(subscriber=subscriber)


def _enqueue_safely(task: Any, *args: Any) -> None:
    """After commit; a broker that is down is logged and never turns a reader's page into a 500
    (the confirmation can be asked for again)."""

    def enqueue() -> None:
        try:
            task.delay(*args)
        except Exception:
            logger.exception("could not enqueue %s%s", task.name, args)

    transaction.on_commit(enqueue)


def signup_email_enqueue(email: SignupEmail | None) -> None:
    """The email a signup calls for (services.subscriber_signup), after commit."""
    if email is None:
        return
    tasks = {
        "confirmation": confirmation_email_task,
        "already_subscribed": already_subscribed_email_task,
    }
    _enqueue_safely(tasks[email.kind], email.subscriber_id)


def confirmation_emails_enqueue(subscriber_ids: list[int]) -> None:
    """Confirmation emails for readers imported as pending (csv_io), after commit."""
    for subscriber_id in subscriber_ids:
        _enqueue_safely(confirmation_email_task, subscriber_id)


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def purge_pending() -> int:
    return pending_purge()


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def apply_email_event(email_event_id: int) -> None:
    event = EmailEvent.objects.filter(pk=email_event_id).first()
    if event is None:
        logger.warning("email event %s is gone; nothing to apply", email_event_id)
        return
    email_event_apply(event=event)


def email_event_apply_enqueue(email_event_id: int) -> None:
    """An ESP event stored by the webhook, applied in a task after commit."""
    transaction.on_commit(lambda: apply_email_event.delay(email_event_id))


# --- The send -----------------------------------------------------------------------------------


def _chunks_enqueue(
    digest_id: int, chunks: list[list[int]], channel_chunks: list[list[int]] | None = None
) -> None:
    """The emails' chunks with the channels' spread evenly among them: a channel chunk mostly
    waits on the services (Telegram's rate), so the workers keep sending emails meanwhile
    rather than all waiting at the end."""
    channel_chunks = channel_chunks or []
    every = max(1, len(chunks) // (len(channel_chunks) + 1))
    waiting = list(reversed(channel_chunks))
    for number, ids in enumerate(chunks):
        if waiting and number % every == 0:
            send_channels.delay_on_commit(digest_id, waiting.pop())
        send_chunk.delay_on_commit(digest_id, ids)
    for ids in reversed(waiting):
        send_channels.delay_on_commit(digest_id, ids)


def _plan_enqueue(digest_id: int, result: plan.Plan) -> None:
    _chunks_enqueue(digest_id, result.chunks, result.channel_chunks)
    if result.next_reader is not None:
        send_plan_range.delay_on_commit(digest_id, result.next_reader, result.carry)


def _finish(digest_id: int) -> None:
    """Closes a send whose rows are all done, and tells the editors."""
    if ledger.digest_finish_if_done(digest_id=digest_id):
        notices_send.delay_on_commit()


def send_start(digest_id: int) -> plan.Plan:
    """Starts a due send and enqueues its first chunks (the command and the admin call this)."""
    with transaction.atomic():
        result = plan.digest_send_start(digest_id=digest_id)
        if result.started:
            _plan_enqueue(digest_id, result)
    if (
        result.started
        and not result.chunks
        and not result.channel_chunks
        and result.next_reader is None
    ):
        _finish(digest_id)
    return result


def send_resume(digest_id: int) -> recovery.Resume:
    """Resumes a stalled or paused send and enqueues what is left."""
    with transaction.atomic():
        result = recovery.digest_send_resume(digest_id=digest_id)
        _chunks_enqueue(digest_id, result.chunks, result.channel_chunks)
        if result.next_reader is not None:
            send_plan_range.delay_on_commit(digest_id, result.next_reader, {})
        if result.finished:
            notices_send.delay_on_commit()
    return result


def unknown_resend(digest_id: int) -> int:
    """The editor's "resend to the unknown": requeues those rows and enqueues them."""
    with transaction.atomic():
        resent, chunks, channel_chunks = recovery.deliveries_unknown_resend(digest_id=digest_id)
        _chunks_enqueue(digest_id, chunks, channel_chunks)
    return resent


def send_due_now() -> None:
    """ "Approve and send now": the due-send check right after the approval commits, rather
    than at beat's next minute."""
    send_due_digests.delay_on_commit()


@shared_task(base=DjangoTask, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def send_due_digests() -> dict[str, list[int]]:
    """Beat, every minute: start due approved digests, resume stalled sends, close done ones."""
    started = [pk for pk in recovery.digests_due() if send_start(pk).started]
    resumed = recovery.digests_stalled()
    for pk in resumed:
        send_resume(pk)
    finished = recovery.digests_finish()
    if finished:
        notices_send.delay_on_commit()
    return {"started": started, "resumed": resumed, "finished": finished}


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def digest_send_start(digest_id: int) -> dict[str, object]:
    result = send_start(digest_id)
    return {
        "started": result.started,
        "deliveries": result.deliveries,
        "chunks": len(result.chunks),
    }


@shared_task(base=DjangoTask, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def send_plan_range(digest_id: int, from_reader: int, carry: dict[str, int]) -> dict[str, int]:
    """The next range of readers of a send: their rows, their chunks, and the range after."""
    with transaction.atomic():
        result = plan.plan_range(
            digest_id=digest_id,
            from_reader=from_reader,
            size=settings.DELIVERY_PLAN_RANGE,
            carry=carry,
        )
        _plan_enqueue(digest_id, result)
    if result.next_reader is None and not result.chunks:
        _finish(digest_id)
    return {"deliveries": result.deliveries, "chunks": len(result.chunks)}


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def digest_send_resume(digest_id: int) -> dict[str, object]:
    result = send_resume(digest_id)
    return {"unknown": result.unknown, "chunks": len(result.chunks), "finished": result.finished}


@shared_task(base=DjangoTask, bind=True, max_retries=None)
def send_chunk(
    self: Task, digest_id: int, delivery_ids: list[int], claim: str | None = None
) -> dict[str, int]:
    """One chunk of one digest. The claim is made here, so every retry (ESP or database
    trouble) finds the rows this task took, and only those."""
    retry = claim is not None
    claim = claim or uuid.uuid4().hex
    try:
        report = deliveries_send(
            digest_id=digest_id, delivery_ids=delivery_ids, claim=claim, retry=retry
        )
    except (DeliveryRetry, OperationalError) as error:
        if self.request.retries >= settings.DELIVERY_MAX_RETRIES:
            ledger.deliveries_give_up(claim=claim, ids=delivery_ids, reason=str(error))
            _finish(digest_id)
            raise
        kwargs = {"digest_id": digest_id, "delivery_ids": delivery_ids, "claim": claim}
        return _retry(self, kwargs=kwargs, error=error, wait=0.0)
    if report.released:
        notices_send.delay_on_commit()  # rows given back: the send paused
    return asdict(report)


@shared_task(base=DjangoTask, bind=True, max_retries=None)
def send_channels(
    self: Task, digest_id: int, ids: list[int], claim: str | None = None
) -> dict[str, int]:
    """One chunk of a digest's team-chat channels, each row claimed as its turn comes. A
    service's Retry-After is the countdown of the retry, which takes the rows still queued.
    When only Telegram's rate asks for later, the chunk goes on in a new task after the wait
    (not a retry: nothing failed), and the worker sends emails meanwhile."""
    claim = claim or uuid.uuid4().hex
    try:
        report = channels.channel_deliveries_send(digest_id=digest_id, ids=ids, claim=claim)
    except channels.ChannelRetry as error:
        if not error.deferred:
            return _channels_retry(self, digest_id, ids, claim, error, error.countdown)
        if self.request.is_eager:
            time.sleep(error.countdown)  # the rate's window: about a second at most
            later: dict[str, int] = send_channels.apply(
                kwargs={"digest_id": digest_id, "ids": ids}
            ).get(disable_sync_subtasks=False)
            return later
        send_channels.apply_async(
            kwargs={"digest_id": digest_id, "ids": ids}, countdown=error.countdown
        )
        return {"deferred": 1}
    except OperationalError as error:
        return _channels_retry(self, digest_id, ids, claim, error, 0.0)
    if report.released:
        notices_send.delay_on_commit()
    return asdict(report)


def _channels_retry(
    task: Task, digest_id: int, ids: list[int], claim: str, error: Exception, wait: float
) -> dict[str, int]:
    """The chunk again, counted as a retry: after the service's Retry-After, or with backoff
    (the database). After DELIVERY_MAX_RETRIES its rows still waiting fail."""
    if task.request.retries >= settings.DELIVERY_MAX_RETRIES:
        channels.channels_give_up(ids=ids, reason=str(error))
        _finish(digest_id)
        raise error
    return _retry(
        task, kwargs={"digest_id": digest_id, "ids": ids, "claim": claim}, error=error, wait=wait
    )


def _retry(task: Task, *, kwargs: dict[str, Any], error: Exception, wait: float) -> dict[str, int]:
    """A send task again with the same arguments (its claim among them), counted as a retry:
    after `wait` (a service's Retry-After) or exponential backoff, whichever is longer. With no
    broker to wait in (the embedded default) it waits here and runs again inline."""
    countdown = max(2**task.request.retries + random.uniform(0, 1), wait)
    if task.request.is_eager:
        time.sleep(min(countdown, EAGER_RETRY_MAX_SLEEP))
        result: dict[str, int] = task.apply(kwargs=kwargs, retries=task.request.retries + 1).get(
            disable_sync_subtasks=False
        )
        return result
    raise task.retry(args=(), kwargs=kwargs, countdown=countdown, exc=error) from error


# --- The editors' notices -------------------------------------------------------------------------


@shared_task(base=DjangoTask, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def notices_send() -> dict[str, object]:
    """Beat, every five minutes (and after a send pauses or finishes): the editors' notices."""
    report = notices_scan()
    return {"claimed": report.claimed, "delivered": dict(report.delivered)}
