"""Team chats on the web: Telegram's webhook for the bot, and the "Team chats" section of a
reader's preferences page (subscribers/views.py's `preferences` calls `team_chats_post` for the
section's forms, and shows `team_chats_context`). Thin: the services act."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
)
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .channels.services import (
    CHANNELS_PER_READER,
    ChannelRefused,
    reader_channel_add,
    reader_channel_confirm,
    reader_channel_remove,
    reader_channels,
)
from .channels.telegram_bot import update_handle
from .forms import ChannelAddForm, ChannelChoiceForm, ChannelConfirmForm
from .models import Channel, Subscriber

logger = logging.getLogger(__name__)

# An update is a few kilobytes; a long message with its entities stays far below this.
TELEGRAM_UPDATE_MAX_BYTES = 256 * 1024
AUTH_HEADER = "X-Telegram-Bot-Api-Secret-Token"

# --- Telegram's webhook -----------------------------------------------------------------------


def _secret_valid(request: HttpRequest) -> bool:
    expected = settings.TELEGRAM_WEBHOOK_SECRET or ""
    given = request.headers.get(AUTH_HEADER, "")
    # Without a secret configured nothing is accepted: anyone could post updates.
    return bool(expected) and constant_time_compare(given, expected)


def _body_read(request: HttpRequest) -> bytes | None:
    """The body, or None when it is larger than an update can be."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if declared > TELEGRAM_UPDATE_MAX_BYTES:
        return None
    body = request.read(TELEGRAM_UPDATE_MAX_BYTES + 1)
    return body if len(body) <= TELEGRAM_UPDATE_MAX_BYTES else None


@csrf_exempt
@require_POST
def telegram_webhook(request: HttpRequest) -> HttpResponse:
    """Telegram posts each update here (`manage.py telegram_webhook` registers the URL with the
    secret). Answers 200 to every update it could read, handled or not: anything else makes
    Telegram send the same update again and again."""
    if not settings.TELEGRAM_BOT_TOKEN:
        raise Http404("no Telegram bot")
    if not _secret_valid(request):
        return HttpResponseForbidden("wrong secret token")
    body = _body_read(request)
    if body is None:
        return HttpResponse("too large", status=413)
    try:
        update = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return HttpResponseBadRequest("invalid JSON")
    if not isinstance(update, dict):
        return HttpResponseBadRequest("an update is a JSON object")
    try:
        update_handle(update)
    except Exception:  # logged, and still 200: a retry would fail the same way
        logger.exception("telegram bot: update %r failed", update.get("update_id"))
    return HttpResponse("ok")


# --- The preferences page's "Team chats" ------------------------------------------------------

CHANNEL_ACTIONS = frozenset({"channel_add", "channel_confirm", "channel_remove"})


def team_chats_context(
    subscriber: Subscriber,
    *,
    add_form: ChannelAddForm | None = None,
    notice: str = "",
    noticed: Channel | None = None,
) -> dict[str, Any]:
    """What the section shows: the reader's channels (a list: the template runs no query), the
    add form, and what the last action did (`chats_notice`, about the channel `chats_channel`)."""
    channels = reader_channels(subscriber=subscriber)
    return {
        "channels": channels,
        "channels_room": len(channels) < CHANNELS_PER_READER,
        "channels_max": CHANNELS_PER_READER,
        "channel_add_form": add_form or ChannelAddForm(),
        "chats_notice": notice,
        "chats_channel": noticed,
    }


def team_chats_post(request: HttpRequest, subscriber: Subscriber, action: str) -> dict[str, Any]:
    """Does one of the section's forms (`action` in CHANNEL_ACTIONS) in the active language."""
    if action == "channel_add":
        return _channel_add(request, subscriber)
    choice = (ChannelConfirmForm if action == "channel_confirm" else ChannelChoiceForm)(
        request.POST
    )
    if not choice.is_valid():
        notice = "code_wrong" if action == "channel_confirm" else ""
        return team_chats_context(subscriber, notice=notice)
    channel_id = choice.cleaned_data["channel"]
    if action == "channel_confirm":
        confirmed = reader_channel_confirm(
            subscriber=subscriber, channel_id=channel_id, code=choice.cleaned_data["code"]
        )
        return team_chats_context(subscriber, notice="confirmed" if confirmed else "code_wrong")
    removed = reader_channel_remove(subscriber=subscriber, channel_id=channel_id)
    return team_chats_context(subscriber, notice="removed" if removed else "")


def _channel_add(request: HttpRequest, subscriber: Subscriber) -> dict[str, Any]:
    form = ChannelAddForm(request.POST)
    if form.is_valid():
        try:
            channel = reader_channel_add(subscriber=subscriber, url=form.cleaned_data["url"])
        except ChannelRefused as refused:
            form.add_error("url", str(refused.message))
        else:
            return team_chats_context(subscriber, notice="added", noticed=channel)
    return team_chats_context(subscriber, add_form=form)
