"""The receiver of anymail's `tracking` signal: store each ESP event once, apply it in a task.

anymail's webhook views (`/anymail/<esp>/tracking/`) authenticate the post (basic auth from
WEBHOOK_SECRET, plus Mailgun's HMAC signature or SendGrid's ECDSA signature when configured) and
normalise it before this module sees it. A post that fails there never reaches this receiver.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from anymail import urls as anymail_urls
from anymail.signals import AnymailTrackingEvent, EventType, tracking
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern

from .models import EmailEvent
from .services import email_normalise
from .tasks import email_event_apply_enqueue

EVENT_ID_MAX_LENGTH = EmailEvent._meta.get_field("event_id").max_length or 200
RECIPIENT_MAX_LENGTH = EmailEvent._meta.get_field("recipient").max_length or 254


def email_event_record(*, esp: str, event: AnymailTrackingEvent) -> EmailEvent | None:
    """Store `event` once per (esp, event key). Returns the new row, or None for a duplicate."""
    recipient = email_normalise(event.recipient or "")[:RECIPIENT_MAX_LENGTH]
    try:
        with transaction.atomic():
            return EmailEvent.objects.create(
                esp=esp,
                event_id=event_key(event=event, recipient=recipient),
                event_type=stored_event_type(esp=esp, event=event),
                recipient=recipient,
                reject_reason=event.reject_reason or "",
                description=event.description or event.mta_response or "",
                occurred_at=event.timestamp,
                metadata=_json_safe(event.metadata or {}),
                tags=_json_safe(list(event.tags or [])),
            )
    except IntegrityError:
        return None  # the ESP delivered this event before


def event_key(*, event: AnymailTrackingEvent, recipient: str) -> str:
    """The ESP's event id, made unique per recipient; a stable hash when the ESP gives none.

    Amazon SES gives one id to a notification that names several recipients, so the recipient
    is part of the key. Postmark sends no id for deliveries, opens or subscription changes: the
    hash of the event's identifying fields is the same each time the ESP retries the post."""
    if event.event_id:
        key = f"{event.event_id}/{recipient}" if recipient else str(event.event_id)
    else:
        identity = [
            event.event_type,
            recipient,
            event.timestamp.isoformat() if event.timestamp else None,
            event.message_id,
            event.description,
            event.mta_response,
            event.click_url,
        ]
        key = "sha256:" + _sha256(json.dumps(identity, default=str))
    if len(key) > EVENT_ID_MAX_LENGTH:
        key = "sha256:" + _sha256(key)
    return key


def stored_event_type(*, esp: str, event: AnymailTrackingEvent) -> str:
    """anymail's event type, except that a temporary bounce is stored as `deferred`.

    anymail already does this for Mailgun ("failed" with severity "temporary"); for the other
    ESPs it reports the ESP's soft bounces as `bounced`, and the ESP's own field tells them apart.
    """
    if event.event_type == EventType.BOUNCED and is_temporary_bounce(esp=esp, event=event):
        return EventType.DEFERRED
    return str(event.event_type)


def is_temporary_bounce(*, esp: str, event: AnymailTrackingEvent) -> bool:
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    if esp == "Postmark":
        return bool(raw.get("Type") == "SoftBounce")
    if esp == "Amazon SES":
        bounce = raw.get("bounce") or {}
        return bool(bounce.get("bounceType") in {"Transient", "Undetermined"})
    if esp == "SendGrid":
        # SendGrid's bounce events are "bounce" (hard) or "blocked" (refused for now).
        return bool(raw.get("type") == "blocked")
    return False


def tracking_received(
    sender: object, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any
) -> None:
    """anymail `tracking` signal receiver: the least work, so the webhook answers fast."""
    row = email_event_record(esp=esp_name, event=event)
    if row is not None:
        email_event_apply_enqueue(row.pk)


def tracking_receiver_connect() -> None:
    tracking.connect(tracking_received, dispatch_uid="subscribers.tracking_received")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _json_safe(value: Any) -> Any:
    """ESP metadata is JSON already; this guards the column against anything that is not."""
    return json.loads(json.dumps(value, default=str))


# --- The webhook URLs -----------------------------------------------------------------------------

# anymail's name for an ESP whose backend module has another (Brevo was Sendinblue).
ESP_ALIASES = {"sendinblue": "brevo"}


def esps_configured() -> set[str]:
    """The ESPs whose events this site takes: EMAIL_BACKEND's, and any in EMAIL_WEBHOOK_ESPS
    (e.g. Amazon SES's events while sending through its SMTP endpoint)."""
    names = {str(name) for name in settings.EMAIL_WEBHOOK_ESPS}
    module = str(settings.EMAIL_BACKEND).rsplit(".", 1)[0]
    if module.startswith("anymail.backends."):
        names.add(module.rsplit(".", 1)[1])
    return names | {ESP_ALIASES[name] for name in names if name in ESP_ALIASES}


def _esp_only(esp: str, view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if esp not in esps_configured():
            raise Http404("no such webhook")  # not an error to log: nothing is configured here
        return view(request, *args, **kwargs)

    return guarded


def webhook_urlpatterns() -> list[URLPattern]:
    """anymail's tracking webhooks (`/anymail/<esp>/tracking/`), each answering 404 unless its
    ESP is configured; a configured one keeps anymail's authentication. Inbound mail is not a
    feature here, so its URLs are not routed at all."""
    patterns = []
    for pattern in anymail_urls.urlpatterns:
        if not isinstance(pattern, URLPattern) or not str(pattern.name).endswith(
            "tracking_webhook"
        ):
            continue
        esp = str(pattern.pattern).split("/", 1)[0].lstrip("^")
        patterns.append(
            URLPattern(pattern.pattern, _esp_only(esp, pattern.callback), name=pattern.name)
        )
    return patterns
