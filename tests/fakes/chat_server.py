"""A fake of the three chat services on localhost, speaking their real HTTP APIs.

- Slack incoming webhooks: `POST /services/T…/B…/<secret>`, JSON; 200 and the plain text `ok`.
  400 `invalid_payload` (not JSON), `no_text` (neither text nor blocks), `invalid_blocks` (more
  than 50 blocks, a section's text over 3,000 characters, a header not plain text or over 150).
- Discord webhooks: `POST /api/webhooks/<id>/<token>`; with `?wait=true` 200 and the message
  (its "id"), else 204. 400 `{"code": 50035, "message": "Invalid Form Body", "errors": ...}`
  for more than 10 embeds, a title over 256, a description over 4,096, a field's value over
  1,024, more than 6,000 characters across the embeds, content over 2,000; 50006 for an empty
  message.
- Telegram Bot API: `POST /bot<token>/<method>` (JSON or a form) for sendMessage, setWebhook
  (records url, secret_token, allowed_updates), deleteWebhook, getMe, getWebhookInfo. Each
  sendMessage is checked as Telegram does: HTML with only Telegram's tags, balanced ("Bad
  Request: can't parse entities: ..."), at most 4,096 characters of visible text (UTF-16 units,
  after the tags are stripped and entities read; "Bad Request: message is too long").

Scripts per destination (Slack: the webhook's name, Discord: the webhook's id, Telegram: the
chat id): `script(kind, destination, 429, Fault(503), ...)` answers the next calls with those
statuses and the service's real bodies (Slack 404 `no_service`, 410 `channel_is_archived`;
Discord 404 `Unknown Webhook` 10015; Telegram 403 "Forbidden: bot was kicked from the group
chat", 400 "Bad Request: chat not found"; 429 with Retry-After in each service's shape), 200 =
answer normally. `migrate(old, new)`: a Telegram group upgraded to a supergroup. `latency`:
seconds before each answer.

    with FakeChat() as chat:
        url = chat.slack_url("team")
        ...
        assert chat.messages_for("team")[0]["blocks"]
"""

from __future__ import annotations

import html
import itertools
import json
import math
import re
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from tests.fakes.local import LocalServer

TELEGRAM_TOKEN = "123456:TEST-fake-bot-token"
TELEGRAM_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-spoiler",
        "tg-emoji",
        "span",
    }
)


@dataclass(frozen=True)
class Fault:
    """A scripted answer: a status, a Retry-After for 429 (seconds), or a body of one's own."""

    status: int
    retry_after: float = 1.0
    body: Any = None


@dataclass
class Call:
    kind: str  # slack | discord | telegram
    destination: str  # Slack: the webhook's name; Discord: the webhook id; Telegram: chat id
    body: Any  # the JSON (or form) received
    status: int
    time: float  # time.monotonic() when answered
    method: str = ""  # Telegram's method; "" for webhooks
    query: dict[str, str] = field(default_factory=dict)


# --- What the services check ---------------------------------------------------------------------


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def slack_problem(body: Any) -> str:
    """Slack's error text for a body it refuses, "" for one it takes."""
    if not isinstance(body, dict):
        return "invalid_payload"
    blocks = body.get("blocks")
    text = body.get("text")
    if not (isinstance(text, str) and text.strip()) and not blocks:
        return "no_text"
    if blocks is None:
        return ""
    if not isinstance(blocks, list) or len(blocks) > 50:
        return "invalid_blocks"
    for block in blocks:
        if not isinstance(block, dict) or not _slack_block_ok(block):
            return "invalid_blocks"
    return ""


def _slack_block_ok(block: dict[str, Any]) -> bool:
    kind = block.get("type")
    text = block.get("text") or {}
    if kind == "header":
        return text.get("type") == "plain_text" and 0 < len(text.get("text", "")) <= 150
    if kind == "section":
        return 0 < len(text.get("text", "")) <= 3000
    if kind == "context":
        elements = block.get("elements") or []
        return 0 < len(elements) <= 10 and all(len(e.get("text", "")) <= 3000 for e in elements)
    return kind in {"divider", "image", "actions"}


def _discord_error(path: str, code: str, message: str) -> dict[str, Any]:
    errors: dict[str, Any] = {}
    node = errors
    for key in path.split("."):
        node = node.setdefault(key, {})
    node["_errors"] = [{"code": code, "message": message}]
    return {"code": 50035, "errors": errors, "message": "Invalid Form Body"}


def discord_problem(body: Any) -> dict[str, Any] | None:
    """Discord's 400 body for a message it refuses, None for one it takes."""
    if not isinstance(body, dict):
        return {"code": 50109, "message": "The request body contains invalid JSON."}
    content = body.get("content") or ""
    embeds = body.get("embeds") or []
    if len(content) > 2000:
        return _discord_error("content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
    if len(embeds) > 10:
        return _discord_error("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    total = 0
    for n, embed in enumerate(embeds):
        limits = (("title", 256), ("description", 4096))
        for name, limit in limits:
            if len(embed.get(name) or "") > limit:
                message = f"Must be {limit} or fewer in length."
                return _discord_error(f"embeds.{n}.{name}", "BASE_TYPE_MAX_LENGTH", message)
        for m, one in enumerate(embed.get("fields") or []):
            if len(one.get("value") or "") > 1024:
                message = "Must be 1024 or fewer in length."
                return _discord_error(
                    f"embeds.{n}.fields.{m}.value", "BASE_TYPE_MAX_LENGTH", message
                )
        total += sum(len(embed.get(name) or "") for name, _ in limits)
        total += sum(
            len(f.get("name", "")) + len(f.get("value", "")) for f in embed.get("fields") or []
        )
        total += len((embed.get("footer") or {}).get("text", ""))
        total += len((embed.get("author") or {}).get("name", ""))
    if total > 6000:
        return _discord_error(
            "embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"
        )
    if not content.strip() and not embeds:
        return {"code": 50006, "message": "Cannot send an empty message"}
    return None


class TelegramHTML(HTMLParser):
    """Reads a message as Telegram's HTML parse mode does: its tags only, balanced; the text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.text: list[str] = []
        self.problem = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.problem:
            return
        if tag not in TELEGRAM_TAGS:
            self.problem = f'Unsupported start tag "{tag}" at byte offset {self.getpos()[1]}'
            return
        if tag == "a" and not dict(attrs).get("href"):
            self.problem = "Can't find end of the entity starting at byte offset 0"
            return
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.problem:
            return
        if not self.open or self.open[-1] != tag:
            self.problem = f'Unexpected end tag at byte offset {self.getpos()[1]}: "{tag}"'
            return
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def telegram_problem(text: Any, parse_mode: str | None) -> str:
    """Telegram's description for a sendMessage text it refuses, "" for one it takes."""
    if not isinstance(text, str) or not text.strip():
        return "Bad Request: message text is empty"
    visible = text
    if (parse_mode or "").upper() == "HTML":
        # A "<" that opens no tag, or a "&" that starts no entity, is refused.
        stray = re.search(r"<(?![a-zA-Z/])|&(?![a-zA-Z]+;|#\d+;|#x[0-9a-fA-F]+;)", text)
        if stray:
            offset = len(text[: stray.start()].encode())
            return (
                "Bad Request: can't parse entities: Can't find end of the entity starting "
                f"at byte offset {offset}"
            )
        parser = TelegramHTML()
        parser.feed(text)
        parser.close()
        if parser.problem:
            return f"Bad Request: can't parse entities: {parser.problem}"
        if parser.open:
            return (
                "Bad Request: can't parse entities: Can't find end tag corresponding to start "
                f'tag "{parser.open[-1]}"'
            )
        visible = html.unescape("".join(parser.text))
    if utf16(visible.strip()) > 4096:
        return "Bad Request: message is too long"
    return ""


# --- Answers the services give when they refuse ---------------------------------------------------

SLACK_TEXTS = {
    400: "invalid_payload",
    403: "action_prohibited",
    404: "no_service",
    410: "channel_is_archived",
    429: "rate_limited",
}
DISCORD_BODIES = {
    400: {"code": 50035, "message": "Invalid Form Body"},
    401: {"message": "Invalid Webhook Token", "code": 50027},
    403: {"message": "Missing Access", "code": 50001},
    404: {"message": "Unknown Webhook", "code": 10015},
}
TELEGRAM_DESCRIPTIONS = {
    400: "Bad Request: chat not found",
    401: "Unauthorized",
    403: "Forbidden: bot was kicked from the group chat",
    404: "Not Found",
    500: "Internal Server Error",
}


def fault_answer(kind: str, fault: Fault) -> tuple[int, dict[str, str], Any]:
    """(status, headers, body) of a scripted fault, as the service would answer it."""
    status = fault.status
    headers: dict[str, str] = {}
    if status == 429:
        headers["Retry-After"] = str(math.ceil(fault.retry_after))
    if fault.body is not None:
        return status, headers, fault.body
    if kind == "slack":
        return status, headers, SLACK_TEXTS.get(status, "rollup_error")
    if kind == "discord":
        if status == 429:
            headers["X-RateLimit-Scope"] = "user"
            body = {
                "message": "You are being rate limited.",
                "retry_after": fault.retry_after,
                "global": False,
            }
            return status, headers, body
        default = {"message": f"{status}: Internal Server Error", "code": 0}
        return status, headers, DISCORD_BODIES.get(status, default)
    if status == 429:
        seconds = math.ceil(fault.retry_after)
        body = {
            "ok": False,
            "error_code": 429,
            "description": f"Too Many Requests: retry after {seconds}",
            "parameters": {"retry_after": seconds},
        }
        return status, headers, body
    description = TELEGRAM_DESCRIPTIONS.get(status, "Bad Gateway")
    return status, headers, {"ok": False, "error_code": status, "description": description}


# --- The server -------------------------------------------------------------------------------


class FakeChat(LocalServer):
    """The server and every call it answered. Thread-safe; a context manager or start()/stop()."""

    def __init__(self, *, latency: float = 0.0, telegram_token: str = TELEGRAM_TOKEN) -> None:
        self.latency = latency
        self.telegram_token = telegram_token
        self._lock = threading.Lock()
        self._scripts: dict[tuple[str, str], list[Fault]] = {}
        self._migrated: dict[str, str] = {}
        self._ids = itertools.count(1_100_000_000_000_000_001)
        self._message_ids: dict[str, int] = {}
        self.calls: list[Call] = []
        self.webhook: dict[str, Any] = {}  # Telegram's setWebhook: url, secret_token, ...
        self.serve(self._handler_class())

    # --- addresses and scripts ----------------------------------------------------------------

    def slack_url(self, name: str) -> str:
        return f"{self.base_url}/services/T0FAKE/B{name}/slack-secret-{name}"

    def discord_url(self, name: str) -> str:
        return f"{self.base_url}/api/webhooks/{name}/discord-token-{name}"

    @property
    def telegram_api_url(self) -> str:
        """For settings.TELEGRAM_API_URL (with settings.TELEGRAM_BOT_TOKEN = telegram_token)."""
        return self.base_url

    def script(self, kind: str, destination: str, *answers: int | Fault) -> None:
        """The statuses of the next calls to `destination`, in order (200: answer normally)."""
        faults = [a if isinstance(a, Fault) else Fault(a) for a in answers]
        with self._lock:
            self._scripts.setdefault((kind, str(destination)), []).extend(faults)

    def migrate(self, chat_id: str, new_chat_id: str) -> None:
        """The Telegram group `chat_id` was upgraded to the supergroup `new_chat_id`."""
        with self._lock:
            self._migrated[str(chat_id)] = str(new_chat_id)

    # --- what it saw --------------------------------------------------------------------------

    def messages_for(self, destination: str, kind: str | None = None) -> list[dict[str, Any]]:
        """The bodies of the messages `destination` accepted, in order."""
        with self._lock:
            return [
                c.body
                for c in self.calls
                if c.destination == str(destination)
                and c.status in (200, 204)
                and c.method in ("", "sendMessage")
                and (kind is None or c.kind == kind)
            ]

    def statuses(self, destination: str) -> list[int]:
        with self._lock:
            return [c.status for c in self.calls if c.destination == str(destination)]

    # --- answering ----------------------------------------------------------------------------

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def _scripted(self, kind: str, destination: str) -> Fault | None:
        with self._lock:
            queue = self._scripts.get((kind, destination))
            fault = queue.pop(0) if queue else None
        return None if fault is None or fault.status == 200 else fault

    def answer(
        self, path: str, query: dict[str, str], body: Any
    ) -> tuple[int, dict[str, str], Any]:
        if self.latency:
            time.sleep(self.latency)
        segments = path.strip("/").split("/")
        if len(segments) == 4 and segments[0] == "services":
            return self._slack(segments[2][1:], body)
        if len(segments) == 4 and segments[:2] == ["api", "webhooks"]:
            return self._discord(segments[2], query, body)
        if len(segments) == 2 and segments[0].startswith("bot"):
            return self._telegram(segments[0][3:], segments[1], body)
        return 404, {}, "not found"

    def _slack(self, name: str, body: Any) -> tuple[int, dict[str, str], Any]:
        fault = self._scripted("slack", name)
        if fault is not None:
            status, headers, text = fault_answer("slack", fault)
        else:
            problem = slack_problem(body)
            status, headers, text = (400, {}, problem) if problem else (200, {}, "ok")
        self._record(Call("slack", name, body, status, time.monotonic()))
        return status, headers, text

    def _discord(
        self, webhook_id: str, query: dict[str, str], body: Any
    ) -> tuple[int, dict[str, str], Any]:
        fault = self._scripted("discord", webhook_id)
        problem = None if fault else discord_problem(body)
        if fault is not None:
            status, headers, answer = fault_answer("discord", fault)
        elif problem is not None:
            status, headers, answer = 400, {}, problem
        elif query.get("wait", "").lower() == "true":
            message_id = str(next(self._ids))
            status, headers = 200, {}
            answer = {"id": message_id, "type": 0, "channel_id": "1", "webhook_id": webhook_id}
            answer.update({k: body.get(k) for k in ("content", "embeds") if k in body})
        else:
            status, headers, answer = 204, {}, None
        self._record(Call("discord", webhook_id, body, status, time.monotonic(), query=query))
        return status, headers, answer

    def _telegram(self, token: str, method: str, body: Any) -> tuple[int, dict[str, str], Any]:
        params = body if isinstance(body, dict) else {}
        chat_id = str(params.get("chat_id", ""))
        status, headers, answer = self._telegram_answer(token, method, params, chat_id)
        self._record(Call("telegram", chat_id, params, status, time.monotonic(), method=method))
        return status, headers, answer

    def _telegram_answer(
        self, token: str, method: str, params: dict[str, Any], chat_id: str
    ) -> tuple[int, dict[str, str], Any]:
        if token != self.telegram_token:
            return fault_answer("telegram", Fault(401))
        if method == "sendMessage":
            return self._send_message(params, chat_id)
        if method == "setWebhook":
            with self._lock:
                self.webhook = {
                    "url": params.get("url", ""),
                    "secret_token": params.get("secret_token", ""),
                    "allowed_updates": params.get("allowed_updates"),
                }
            return 200, {}, {"ok": True, "result": True, "description": "Webhook was set"}
        if method == "deleteWebhook":
            with self._lock:
                self.webhook = {}
            return 200, {}, {"ok": True, "result": True, "description": "Webhook was deleted"}
        if method == "getMe":
            me = {
                "id": int(self.telegram_token.split(":")[0]),
                "is_bot": True,
                "first_name": "Daily AI Insights",
                "username": "daily_ai_insights_bot",
            }
            return 200, {}, {"ok": True, "result": me}
        if method == "getWebhookInfo":
            with self._lock:
                info = {
                    "url": self.webhook.get("url", ""),
                    "has_custom_certificate": False,
                    "pending_update_count": 0,
                }
                if self.webhook.get("allowed_updates"):
                    info["allowed_updates"] = self.webhook["allowed_updates"]
            return 200, {}, {"ok": True, "result": info}
        return fault_answer("telegram", Fault(404))

    def _send_message(
        self, params: dict[str, Any], chat_id: str
    ) -> tuple[int, dict[str, str], Any]:
        if not chat_id:
            return 400, {}, _telegram_refusal(400, "Bad Request: chat_id is empty")
        fault = self._scripted("telegram", chat_id)
        if fault is not None:
            return fault_answer("telegram", fault)
        with self._lock:
            moved = self._migrated.get(chat_id)
        if moved:
            refusal = _telegram_refusal(
                400, "Bad Request: group chat was upgraded to a supergroup chat"
            )
            refusal["parameters"] = {"migrate_to_chat_id": int(moved)}
            return 400, {}, refusal
        problem = telegram_problem(params.get("text"), params.get("parse_mode"))
        if problem:
            return 400, {}, _telegram_refusal(400, problem)
        with self._lock:
            number = self._message_ids.get(chat_id, 0) + 1
            self._message_ids[chat_id] = number
        message = {
            "message_id": number,
            "date": int(time.time()),
            "chat": {"id": int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id},
            "text": params.get("text"),
        }
        return 200, {}, {"ok": True, "result": message}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, status: int, headers: dict[str, str], body: Any) -> None:
                if body is None:
                    data, kind = b"", ""
                elif isinstance(body, str):
                    data, kind = body.encode(), "text/html"
                else:
                    data, kind = json.dumps(body).encode(), "application/json"
                self.send_response(status)
                if kind:
                    self.send_header("Content-Type", kind)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                content_type = self.headers.get("Content-Type") or ""
                if content_type.startswith("application/x-www-form-urlencoded"):
                    return dict(parse_qsl(raw.decode()))
                try:
                    return json.loads(raw.decode() or "null")
                except ValueError:
                    return None

            def _serve(self, body: Any) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                if parts.path.startswith("/bot") and not isinstance(body, dict):
                    body = query  # Bot API methods take query parameters too
                self._reply(*fake.answer(parts.path, query, body))

            def do_POST(self) -> None:
                self._serve(self._body())

            def do_GET(self) -> None:
                self._serve(None)

        return Handler


def _telegram_refusal(status: int, description: str) -> dict[str, Any]:
    return {"ok": False, "error_code": status, "description": description}
