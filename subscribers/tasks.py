"""Thin Celery tasks: they take ids, load the row, call one function and own the retry policy."""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import asdict
from smtplib import SMTPException

from anymail.exceptions import AnymailAPIError
from celery import Task, shared_task
from django.conf import settings
from django.db import OperationalError

from . import delivery
from .emails import already_subscribed_email_send, confirmation_email_send
from .models import Subscriber
from .services import pending_purge

# Worth another try later: a busy database, a mail server or ESP that did not answer.
TRANSIENT = (OperationalError, SMTPException, ConnectionError, TimeoutError, AnymailAPIError)


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


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def purge_pending() -> int:
    return pending_purge()


# --- Delivery (subscribers.delivery) -----------------------------------------------------------

# Longest wait between two inline retries of a chunk when tasks run eagerly (no broker).
EAGER_RETRY_MAX_SLEEP = 5.0


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def send_due_digests() -> dict[str, list[int]]:
    """Beat, every minute: start due approved digests, resume stalled sends."""
    return delivery.digests_due_send()


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def digest_send_start(digest_id: int) -> dict[str, object]:
    report = delivery.digest_send_start(digest_id=digest_id)
    return {"started": report.started, "deliveries": report.deliveries, "chunks": report.chunks}


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def digest_send_resume(digest_id: int) -> dict[str, object]:
    report = delivery.digest_send_resume(digest_id=digest_id)
    return {"unknown": report.unknown, "chunks": report.chunks, "finished": report.finished}


@shared_task(bind=True, max_retries=None)
def send_chunk(
    self: Task, digest_id: int, delivery_ids: list[int], claim: str | None = None
) -> dict[str, int]:
    """One chunk of one digest. The claim is made here, so every retry (ESP or database
    trouble) finds the rows this task took, and only those."""
    retry = claim is not None
    claim = claim or uuid.uuid4().hex
    try:
        report = delivery.deliveries_send(
            digest_id=digest_id, delivery_ids=delivery_ids, claim=claim, retry=retry
        )
    except (delivery.DeliveryRetry, OperationalError) as error:
        if self.request.retries >= settings.DELIVERY_MAX_RETRIES:
            delivery.deliveries_give_up(claim=claim, reason=str(error))
            delivery.digest_finish_if_done(digest_id=digest_id)
            raise
        countdown = 2**self.request.retries + random.uniform(0, 1)
        kwargs = {"digest_id": digest_id, "delivery_ids": delivery_ids, "claim": claim}
        if self.request.is_eager:
            # No broker to wait in (the embedded default): wait here, then run again inline.
            time.sleep(min(countdown, EAGER_RETRY_MAX_SLEEP))
            result: dict[str, int] = send_chunk.apply(
                kwargs=kwargs, retries=self.request.retries + 1
            ).get(disable_sync_subtasks=False)
            return result
        raise self.retry(args=(), kwargs=kwargs, countdown=countdown, exc=error) from error
    return asdict(report)
