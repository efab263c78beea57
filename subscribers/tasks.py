"""Thin Celery tasks: they take ids, load the row, call one function and own the retry policy."""

from __future__ import annotations

from smtplib import SMTPException

from anymail.exceptions import AnymailAPIError
from celery import shared_task
from django.db import OperationalError

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
