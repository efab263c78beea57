"""The Telegram bot: one update from Telegram's webhook (subscribers/channel_views.py) at a time.

Commands, in a private chat, a group or a supergroup (also as `/subscribe@OurBot`):

- `/start`, `/help`: what the bot does and its commands;
- `/subscribe [categories]`: this chat gets the digest (a `Channel` of kind telegram, active at
  once). A new chat gets every active category, or those named (slug or name); the language is
  the sender's Telegram language when the newsletter offers it, else the first offered. A chat
  that stopped and subscribes again keeps its categories and language unless it names others;
- `/categories`: lists the categories with their slugs, marking the ones this chat gets;
  `/categories <names>` chooses them. An unknown name is answered and nothing changes;
- `/stop`: status stopped, nothing more is posted.

Telegram's own notices: the bot removed from a chat or blocked (`my_chat_member`, left or
kicked) stops the chat's channel; added to a group, the bot posts its help there; a group that
became a supergroup (`migrate_to_chat_id`) keeps its channel under the new id.

Who may change a chat's subscription: anyone who can send the bot a command in that chat. In a
private chat that is its only person; in a group, every member. Asking Telegram whether the
sender is an administrator (`getChatMember`) costs a call per command and fails for anonymous
admins, and what a member can do is small and undone by one command (the digest in a chat they
already read); a group that wants it restricted can take the bot's rights away from members
through Telegram's own command permissions.

Updates are untrusted: a field missing or of the wrong type, a huge text, a command unknown to
the bot end in a polite answer or nothing, never an exception. Telegram retries an update that
was not answered 200: each `update_id` is handled once (remembered in the cache for a day), and
a repeated /subscribe is harmless anyway. Replies go out through `channel_post` as
`text_message`s in the sender's language.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from digests.models import Category

from ..models import Channel
from .messages import text_message
from .services import message_post
from .transports import TelegramError, telegram_call

logger = logging.getLogger(__name__)

Kind = Channel.Kind
ChannelStatus = Channel.Status

CHAT_TYPES = frozenset({"private", "group", "supergroup"})
TEXT_MAX = 2000  # more is not a command the bot understands
ARGUMENTS_MAX = 1000
NAME_MAX = 200
UPDATE_SEEN_SECONDS = 24 * 60 * 60
BOT_USERNAME_SECONDS = 24 * 60 * 60
COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]{1,64}))?(?:\s+(.*))?$", re.DOTALL)
# What Telegram allows as a webhook's secret_token.
SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
ALLOWED_UPDATES = ["message", "my_chat_member"]
GONE = frozenset({"left", "kicked"})
PRESENT = frozenset({"member", "administrator"})


@dataclass(frozen=True)
class Chat:
    """Where a command came from: the chat's id as text, its type and name, and the language
    to answer in (the sender's, when offered)."""

    chat_id: str
    type: str
    name: str
    language: str


def update_handle(update: Any) -> None:
    """Handles one update from Telegram (the decoded JSON); never raises on a malformed one."""
    if not isinstance(update, dict) or not _update_first_seen(update.get("update_id")):
        return
    member = update.get("my_chat_member")
    if isinstance(member, dict):
        _member_changed(member)
        return
    message = update.get("message")
    if isinstance(message, dict):
        _message_handle(message)


def _update_first_seen(update_id: Any) -> bool:
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        return True
    return bool(cache.add(f"telegram:update:{update_id}", 1, timeout=UPDATE_SEEN_SECONDS))


# --- Reading an update ------------------------------------------------------------------------


def _field(data: Any, name: str) -> dict[str, Any]:
    value = data.get(name) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else {}


def _text(data: dict[str, Any], name: str, limit: int = NAME_MAX) -> str:
    value = data.get(name)
    return value[:limit] if isinstance(value, str) else ""


def _chat_id(chat: dict[str, Any]) -> str:
    value = chat.get("id")
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= 10**20:
        return ""
    return str(value)


def offered_language(language_code: str) -> str:
    """The Telegram user's language (`en`, `en-US`) when the newsletter offers it, else the
    first offered (DIGEST_LANGUAGES, within LANGUAGES)."""
    codes = {code for code, _name in settings.LANGUAGES}
    offered = [code for code in settings.DIGEST_LANGUAGES if code in codes]
    primary = language_code.split("-", 1)[0].lower()
    if primary in offered:
        return primary
    return offered[0] if offered else settings.DIGEST_LANGUAGE


def _chat_of(message: dict[str, Any]) -> Chat | None:
    chat = _field(message, "chat")
    chat_id, chat_type = _chat_id(chat), _text(chat, "type")
    if not chat_id or chat_type not in CHAT_TYPES:
        return None
    sender = _field(message, "from")
    full_name = " ".join(filter(None, [_text(chat, "first_name"), _text(chat, "last_name")]))
    name = _text(chat, "title") or _text(chat, "username") or full_name
    language = offered_language(_text(sender, "language_code", 16))
    return Chat(chat_id=chat_id, type=chat_type, name=name[:NAME_MAX], language=language)


def _channel(chat: Chat) -> Channel | None:
    return Channel.objects.filter(kind=Kind.TELEGRAM, chat_id=chat.chat_id).first()


# --- Messages ---------------------------------------------------------------------------------


def _message_handle(message: dict[str, Any]) -> None:
    migrate_to = message.get("migrate_to_chat_id")
    if isinstance(migrate_to, int) and not isinstance(migrate_to, bool):
        _chat_migrated(_chat_id(_field(message, "chat")), str(migrate_to))
        return
    chat = _chat_of(message)
    text = _text(message, "text", TEXT_MAX).strip()
    if chat is None or not text:
        return
    match = COMMAND.match(text)
    if match is None:
        if chat.type == "private":
            _reply(chat, lambda: gettext("Send /help to see what I can do."))
        return
    name, addressed_to, arguments = match.group(1).lower(), match.group(2) or "", match.group(3)
    if addressed_to and not _addressed_to_us(addressed_to):
        return
    handler = COMMANDS.get(name)
    if handler is None:
        if chat.type == "private" or addressed_to:
            _reply(chat, lambda: gettext("I do not know that command. /help lists mine."))
        return
    arguments = (arguments or "").strip()[:ARGUMENTS_MAX]
    with translation.override(chat.language):
        answer = handler(chat, arguments)
    _reply(chat, lambda: answer)


def _addressed_to_us(username: str) -> bool:
    """Whether `/command@username` is meant for this bot (getMe, remembered for a day; when
    Telegram cannot say, the command is taken)."""
    ours = cache.get("telegram:bot-username")
    if ours is None:
        try:
            answer = telegram_call("getMe", {})
        except TelegramError:
            return True
        result = answer.get("result", answer) if isinstance(answer, dict) else {}
        ours = _text(result if isinstance(result, dict) else {}, "username", 64)
        if not ours:
            return True
        cache.set("telegram:bot-username", ours, timeout=BOT_USERNAME_SECONDS)
    return str(ours).lower() == username.lower()


def _reply(chat: Chat, words: Any) -> None:
    """Posts `words()` (translated in the chat's language) to the chat; a failed post is
    logged, not raised: Telegram would only retry the update."""
    with translation.override(chat.language):
        text = str(words())
    message = text_message(kind=Kind.TELEGRAM, text=text)
    result = message_post(kind=Kind.TELEGRAM, url="", chat_id=chat.chat_id, message=message)
    if not result.ok:
        logger.info("telegram bot: reply to chat %s failed: %s", chat.chat_id, result.error)


# --- Commands (each returns the answer, in the active language) -------------------------------


def _help(chat: Chat, arguments: str) -> str:
    channel = _channel(chat)
    active = channel is not None and channel.status == ChannelStatus.ACTIVE
    state = (
        gettext("This chat gets the digest.")
        if active
        else gettext("This chat does not get the digest yet.")
    )
    return "\n".join(
        [
            gettext("Daily AI Insights posts a digest of the day's arXiv AI papers to this chat."),
            state,
            "",
            gettext("/subscribe – get the digest here (every category, or name some)"),
            gettext("/categories – list the categories; /categories <slugs> chooses them"),
            gettext("/stop – no more digests in this chat"),
            gettext("/help – this message"),
        ]
    )


def _subscribe(chat: Chat, arguments: str) -> str:
    chosen: list[Category] | None = None
    if arguments:
        chosen, unknown = categories_named(arguments)
        if unknown:
            return _unknown_answer(unknown)
    channel = _channel(chat)
    if channel is not None and channel.status == ChannelStatus.ACTIVE and chosen is None:
        return gettext("This chat already gets the digest: %(categories)s.") % {
            "categories": _names(_chat_categories(channel))
        }
    channel = _channel_activate(chat, channel, chosen)
    if channel is None:
        return gettext("Something went wrong. Please try again.")
    return gettext(
        "Subscribed. This chat will get the digest with: %(categories)s. "
        "/categories changes them, /stop stops."
    ) % {"categories": _names(_chat_categories(channel))}


def _channel_activate(
    chat: Chat, channel: Channel | None, chosen: list[Category] | None
) -> Channel | None:
    now = timezone.now()
    if channel is None:
        channel = Channel(kind=Kind.TELEGRAM, chat_id=chat.chat_id, language=chat.language)
        chosen = chosen if chosen is not None else list(_active_categories())
    channel.name = chat.name
    channel.status = ChannelStatus.ACTIVE
    channel.confirmed_at = channel.confirmed_at or now
    channel.suppressed_at, channel.suppressed_reason = None, ""
    try:
        with transaction.atomic():
            channel.save()
    except IntegrityError:  # the same chat's /subscribe handled twice at once
        return _channel(chat)
    if chosen is not None:
        channel.categories.set(chosen)
    logger.info("telegram bot: chat %s subscribed (channel %s)", chat.chat_id, channel.pk)
    return channel


def _categories(chat: Chat, arguments: str) -> str:
    channel = _channel(chat)
    if not arguments:
        return _categories_list(channel)
    chosen, unknown = categories_named(arguments)
    if unknown:
        return _unknown_answer(unknown)
    if channel is None:
        return gettext("This chat does not get the digest yet. Send /subscribe %(slugs)s.") % {
            "slugs": " ".join(category.slug for category in chosen)
        }
    channel.categories.set(chosen)
    answer = gettext("This chat will get: %(categories)s.") % {"categories": _names(chosen)}
    if channel.status != ChannelStatus.ACTIVE:
        answer += " " + gettext("The digest is stopped here: /subscribe starts it again.")
    return answer


def _categories_list(channel: Channel | None) -> str:
    gets = {category.pk for category in _chat_categories(channel)} if channel else set()
    categories = _active_categories()
    lines = [gettext("Categories (✓ = this chat gets it):")]
    for category in categories:
        mark = "✓" if category.pk in gets else "·"
        lines.append(f"{mark} {category.slug} – {category.name}")
    hint = gettext("Choose with /categories followed by slugs, e.g. /categories %(slug)s")
    example = categories[0].slug if categories else "llm"
    return "\n".join([*lines, "", hint % {"slug": example}])


def _stop(chat: Chat, arguments: str) -> str:
    stopped = Channel.objects.filter(
        kind=Kind.TELEGRAM, chat_id=chat.chat_id, status=ChannelStatus.ACTIVE
    ).update(status=ChannelStatus.STOPPED, updated_at=timezone.now())
    if not stopped:
        return gettext("This chat does not get the digest.")
    logger.info("telegram bot: chat %s stopped", chat.chat_id)
    return gettext("Stopped. This chat gets no more digests; /subscribe starts them again.")


COMMANDS = {
    "start": _help,
    "help": _help,
    "subscribe": _subscribe,
    "categories": _categories,
    "stop": _stop,
}


# --- Categories by name -----------------------------------------------------------------------


def _active_categories() -> list[Category]:
    return list(Category.objects.filter(active=True).order_by("position", "name"))


def _chat_categories(channel: Channel) -> list[Category]:
    return list(channel.categories.filter(active=True).order_by("position", "name"))


def categories_named(text: str) -> tuple[list[Category], list[str]]:
    """The active categories named in `text` (slugs or names, any case, separated by spaces or
    commas; a name with spaces between commas) and the words that name none."""
    known: dict[str, Category] = {}
    for category in _active_categories():
        known[category.name.casefold()] = category
        known[category.slug.casefold()] = category
    found: dict[int, Category] = {}
    unknown: list[str] = []
    for piece in filter(None, (p.strip() for p in re.split(r"[,\n]", text))):
        whole = known.get(piece.casefold())
        words = [piece] if whole else piece.split()
        for word in words:
            named = known.get(word.casefold())
            if named is None:
                unknown.append(word[:50])
            else:
                found.setdefault(named.pk, named)
    return list(found.values()), unknown


def _unknown_answer(unknown: list[str]) -> str:
    return gettext(
        "I do not know these categories: %(names)s. Nothing was changed. /categories lists them."
    ) % {"names": ", ".join(dict.fromkeys(unknown[:10]))}


def _names(categories: list[Category]) -> str:
    return ", ".join(category.name for category in categories) or gettext("none")


# --- Telegram's notices -----------------------------------------------------------------------


def _member_changed(member: dict[str, Any]) -> None:
    chat = _field(member, "chat")
    chat_id, chat_type = _chat_id(chat), _text(chat, "type")
    new_status = _text(_field(member, "new_chat_member"), "status", 32)
    old_status = _text(_field(member, "old_chat_member"), "status", 32)
    if not chat_id:
        return
    if new_status in GONE:
        stopped = Channel.objects.filter(
            kind=Kind.TELEGRAM,
            chat_id=chat_id,
            status__in=[ChannelStatus.ACTIVE, ChannelStatus.PENDING],
        ).update(status=ChannelStatus.STOPPED, updated_at=timezone.now())
        logger.info("telegram bot: removed from chat %s (%s stopped)", chat_id, stopped)
    elif new_status in PRESENT and old_status in GONE and chat_type in ("group", "supergroup"):
        sender = _field(member, "from")
        language = offered_language(_text(sender, "language_code", 16))
        welcome = Chat(chat_id=chat_id, type=chat_type, name="", language=language)
        _reply(welcome, lambda: _help(welcome, ""))


def _chat_migrated(old_id: str, new_id: str) -> None:
    if not old_id:
        return
    try:
        with transaction.atomic():
            Channel.objects.filter(kind=Kind.TELEGRAM, chat_id=old_id).update(
                chat_id=new_id, updated_at=timezone.now()
            )
    except IntegrityError:
        logger.info("telegram bot: chat %s became %s, which has its own channel", old_id, new_id)


# --- The webhook, registered with Telegram ----------------------------------------------------


class WebhookSetupError(Exception):
    """The webhook cannot be registered as configured."""


def webhook_url(base_url: str) -> str:
    return base_url.rstrip("/") + reverse("subscribers:telegram-webhook")


def webhook_register(*, base_url: str) -> dict[str, Any]:
    """setWebhook: Telegram posts the bot's updates to `<base_url>/telegram/webhook/` with
    TELEGRAM_WEBHOOK_SECRET in its secret header. Returns Telegram's answer; raises
    WebhookSetupError (no token, no or a malformed secret, not an http(s) URL) or TelegramError."""
    secret = settings.TELEGRAM_WEBHOOK_SECRET or ""
    if not settings.TELEGRAM_BOT_TOKEN:
        raise WebhookSetupError("TELEGRAM_BOT_TOKEN is not set.")
    if not SECRET_TOKEN.match(secret):
        raise WebhookSetupError(
            "TELEGRAM_WEBHOOK_SECRET must be set, 1-256 characters of A-Z, a-z, 0-9, _ and -."
        )
    if not base_url.startswith(("https://", "http://")):
        raise WebhookSetupError("--url must be the site's address, e.g. https://news.example.org")
    params = {
        "url": webhook_url(base_url),
        "secret_token": secret,
        "allowed_updates": ALLOWED_UPDATES,
    }
    return telegram_call("setWebhook", params)


def webhook_unregister() -> dict[str, Any]:
    """deleteWebhook: Telegram stops posting updates. Raises WebhookSetupError or TelegramError."""
    if not settings.TELEGRAM_BOT_TOKEN:
        raise WebhookSetupError("TELEGRAM_BOT_TOKEN is not set.")
    return telegram_call("deleteWebhook", {})
