"""One post to a team chat service and what it answered; the pace each service allows. No
database.

- Slack incoming webhook: POST the JSON to the URL; 200 "ok". 404/410 (`no_service`,
  `channel_not_found`, `channel_is_archived`, `team_disabled`, ...): the webhook is gone.
- Discord webhook: POST to the URL with `?wait=true`, 200 with the message (its "id"); 429 with
  `{"retry_after": 1.5, "global": false}` and a Retry-After header; 404 `Unknown Webhook`
  (code 10015): gone.
- Telegram Bot API: POST the JSON with its chat_id to `{TELEGRAM_API_URL}/bot<token>/sendMessage`;
  `{"ok": true, "result": {"message_id": N}}`; 429 with `parameters.retry_after`; 403 (the bot was
  kicked or blocked) and 400 "chat not found": gone; 400 with `parameters.migrate_to_chat_id`:
  the group became a supergroup with a new id.

429, 5xx and network errors ask for a later try (`retry_after`); any other refusal is final for
that message. A webhook URL and the bot token are secrets: no error text carries them.
"""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings

DEFAULT_BACKOFF = 5.0  # seconds, when a service asks for a later try without saying when
ERROR_CHARS = 300
USER_AGENT = "DailyAIInsights (+https://github.com/daily-ai-insights)"

SLACK_GONE = frozenset(
    {
        "no_service",
        "no_service_id",
        "no_team",
        "team_disabled",
        "channel_not_found",
        "channel_is_archived",
        "invalid_token",
    }
)
DISCORD_GONE = frozenset({10015, 50027})  # Unknown Webhook, Invalid Webhook Token
TELEGRAM_GONE_400 = ("chat not found", "group chat was deleted", "peer_id_invalid")


@dataclass(frozen=True)
class PostResult:
    ok: bool
    message_id: str = ""
    # Set when the service said to try later (429, 5xx, a network error): seconds to wait.
    retry_after: float | None = None
    revoked: bool = False  # the destination is gone (suppress the channel)
    migrate_to_chat_id: str = ""  # Telegram: the group became a supergroup with this id
    error: str = ""  # a short reason for the editors: the status and the service's text


class TelegramError(Exception):
    """The Bot API refused a call (ok=false) or could not be reached."""

    def __init__(
        self, description: str, *, error_code: int = 0, retry_after: float | None = None
    ) -> None:
        super().__init__(description)
        self.description = description
        self.error_code = error_code
        self.retry_after = retry_after


@dataclass(frozen=True)
class Answer:
    """What came back over HTTP: status 0 for a network error (`text` says which)."""

    status: int
    text: str
    headers: dict[str, str]

    def json(self) -> dict[str, Any]:
        try:
            data = json.loads(self.text)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "…")
    return " ".join(text.split())[:ERROR_CHARS]


def http_post(url: str, body: dict[str, Any]) -> Answer:
    """POST `body` as JSON; every outcome an Answer (no exception for a status or the network).
    Status 0: no answer (try later); -1: the URL itself is wrong (no use trying again)."""
    if urlsplit(url).scheme not in ("http", "https"):
        return Answer(-1, "not an http(s) URL", {})
    data = json.dumps(body, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT}
    # The scheme is checked above: only http(s) is opened.
    request = urllib.request.Request(url, data=data, method="POST", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=settings.CHANNEL_TIMEOUT) as response:  # noqa: S310
            text = response.read().decode("utf-8", "replace")
            return Answer(response.status, text, dict(response.headers.items()))
    except urllib.error.HTTPError as error:
        text = error.read().decode("utf-8", "replace") if error.fp else ""
        return Answer(error.code, text, dict(error.headers.items()) if error.headers else {})
    except (urllib.error.URLError, HTTPException, OSError) as error:
        reason = getattr(error, "reason", error)
        return Answer(0, f"network error: {type(error).__name__}: {reason}", {})
    except ValueError:
        return Answer(-1, "not a valid URL", {})


def _seconds(value: Any) -> float | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _header(answer: Answer, name: str) -> str:
    wanted = name.lower()
    return next((v for k, v in answer.headers.items() if k.lower() == wanted), "")


def _later(answer: Answer, *candidates: Any) -> float | None:
    """The wait a 429, a 5xx or a network error asks for (the first number the service gave,
    then Retry-After, else DEFAULT_BACKOFF); None when the answer is not of that sort."""
    if answer.status not in (0, 429) and answer.status < 500:
        return None
    for candidate in (*candidates, _header(answer, "Retry-After")):
        seconds = _seconds(candidate)
        if seconds is not None:
            return seconds
    return DEFAULT_BACKOFF


def _error(answer: Answer, text: str, secrets: tuple[str, ...]) -> str:
    status = str(answer.status) if answer.status > 0 else "no answer"
    return _scrub(f"{status} {text}".strip(), secrets)


# --- Slack ----------------------------------------------------------------------------------------


def slack_post(url: str, body: dict[str, Any]) -> PostResult:
    answer = http_post(url, body)
    text = answer.text.strip()
    if 200 <= answer.status < 300:
        return PostResult(ok=True)
    error = _error(answer, text, (url, urlsplit(url).path))
    gone = answer.status in (404, 410) or text in SLACK_GONE
    if gone and answer.status < 500:
        return PostResult(ok=False, revoked=True, error=error)
    return PostResult(ok=False, retry_after=_later(answer), error=error)


# --- Discord --------------------------------------------------------------------------------------


def discord_wait_url(url: str) -> str:
    """The webhook URL with wait=true (Discord then answers with the message), its query kept."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "wait"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("wait", "true")])))


def discord_post(url: str, body: dict[str, Any]) -> PostResult:
    answer = http_post(discord_wait_url(url), body)
    data = answer.json()
    if 200 <= answer.status < 300:
        return PostResult(ok=True, message_id=str(data.get("id") or ""))
    text = str(data.get("message") or answer.text.strip())
    if data.get("code"):
        text = f"{text} (code {data['code']})"
    error = _error(answer, text, (url, urlsplit(url).path))
    if answer.status == 404 or (answer.status < 500 and data.get("code") in DISCORD_GONE):
        return PostResult(ok=False, revoked=True, error=error)
    return PostResult(ok=False, retry_after=_later(answer, data.get("retry_after")), error=error)


# --- Telegram -------------------------------------------------------------------------------------


def telegram_url(method: str) -> str:
    return f"{settings.TELEGRAM_API_URL}/bot{settings.TELEGRAM_BOT_TOKEN}/{method}"


def _telegram_secrets() -> tuple[str, ...]:
    token = str(settings.TELEGRAM_BOT_TOKEN or "")
    return (f"bot{token}", token) if token else ()


def telegram_post(chat_id: str, body: dict[str, Any]) -> PostResult:
    answer = http_post(telegram_url("sendMessage"), {**body, "chat_id": chat_id})
    data = answer.json()
    if 200 <= answer.status < 300 and data.get("ok"):
        result = data.get("result") or {}
        return PostResult(ok=True, message_id=str(result.get("message_id") or ""))
    description = str(data.get("description") or answer.text.strip())
    parameters = data.get("parameters") or {}
    error = _error(answer, description, _telegram_secrets())
    if parameters.get("migrate_to_chat_id"):
        return PostResult(
            ok=False, migrate_to_chat_id=str(parameters["migrate_to_chat_id"]), error=error
        )
    lowered = description.lower()
    if answer.status == 403 or (
        answer.status == 400 and any(reason in lowered for reason in TELEGRAM_GONE_400)
    ):
        return PostResult(ok=False, revoked=True, error=error)
    return PostResult(
        ok=False, retry_after=_later(answer, parameters.get("retry_after")), error=error
    )


def telegram_call(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """Any Bot API method (getMe, setWebhook, sendMessage ...): Telegram's whole answer
    (`{"ok": true, "result": ...}`). Raises TelegramError when it says ok=false or cannot be
    reached; the token is in no error."""
    answer = http_post(telegram_url(method), params)
    data = answer.json()
    if 200 <= answer.status < 300 and data.get("ok"):
        return data
    parameters = data.get("parameters") or {}
    description = _error(
        answer, str(data.get("description") or answer.text.strip()), _telegram_secrets()
    )
    raise TelegramError(
        description,
        error_code=int(data.get("error_code") or answer.status or 0),
        retry_after=_later(answer, parameters.get("retry_after")),
    )


# --- Any service ----------------------------------------------------------------------------------


def channel_post(*, kind: str, url: str, chat_id: str, body: dict[str, Any]) -> PostResult:
    """One message (one part of a ChannelMessage) to one destination."""
    if kind == "slack":
        return slack_post(url, body)
    if kind == "discord":
        return discord_post(url, body)
    if kind == "telegram":
        return telegram_post(chat_id, body)
    raise ValueError(f"unknown channel kind {kind!r}")


# --- The pace -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    count: int  # at most this many messages
    period: float  # in any window of this many seconds


SLACK_RATE = Rate(1, 1.0)  # per webhook
DISCORD_RATE = Rate(5, 2.0)  # per webhook
TELEGRAM_CHAT_RATE = Rate(1, 1.0)  # per chat; across chats TELEGRAM_RATE_PER_SECOND
PACE_DESTINATIONS = 10_000  # destinations remembered (the oldest forgotten first)


class ChatPace:
    """The pace each service allows, for one process: `wait(kind, destination)` before each
    post sleeps until the post is allowed and takes its slot. Slack: 1 message a second per
    webhook; Discord: 5 per 2 seconds per webhook; Telegram: 1 a second per chat and
    TELEGRAM_RATE_PER_SECOND across chats. Thread-safe; the clock and the sleep are injectable."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        bot_rate: bool = True,
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        # False: the bot's rate across chats is kept elsewhere (the send's limiter shared by
        # every worker, subscribers.sending.pace.telegram_limiter); each chat's still here.
        self.bot_rate = bot_rate
        self._lock = threading.Lock()
        self._sent: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self._telegram_last: float | None = None

    def _log(self, kind: str, destination: str, rate: Rate) -> deque[float]:
        key = (kind, destination)
        log = self._sent.get(key)
        if log is None:
            log = self._sent[key] = deque(maxlen=rate.count)
            while len(self._sent) > PACE_DESTINATIONS:
                self._sent.popitem(last=False)
        self._sent.move_to_end(key)
        return log

    def _slot(self, kind: str, destination: str, now: float) -> float:
        """The time of this post's slot, taken (the caller holds the lock)."""
        rate = {"slack": SLACK_RATE, "discord": DISCORD_RATE}.get(kind, TELEGRAM_CHAT_RATE)
        log = self._log(kind, destination, rate)
        at = now
        if len(log) >= rate.count:
            at = max(at, log[0] + rate.period)
        if kind == "telegram" and self.bot_rate:
            per_second = float(settings.TELEGRAM_RATE_PER_SECOND)
            if per_second > 0 and self._telegram_last is not None:
                at = max(at, self._telegram_last + 1.0 / per_second)
            self._telegram_last = at
        log.append(at)
        return at

    def wait(self, kind: str, destination: str) -> float:
        """Sleeps until a post to `destination` is allowed; returns the seconds slept."""
        with self._lock:
            now = self.clock()
            delay = self._slot(kind, destination, now) - now
        if delay > 0:
            self.sleep(delay)
            return delay
        return 0.0
