"""A fake Slack-compatible incoming webhook on localhost, for the editors' notices.

It answers `POST <any path>` with a JSON body `{"text": ...}` as Slack does: 200 and the plain
text `ok`, recording the text. A body without a string `text` gets Slack's 400
`invalid_payload`. Told to fail (`fail_with`), it answers that status instead (500: Slack's
`rollup_error`, 404: `no_service`, the answer of a webhook that was removed) and records
nothing; `script` lists the status of the first calls, in order (200 = answer normally).

    with FakeWebhook() as hook:
        settings.NOTIFY_WEBHOOK_URL = hook.url
        ...
        assert hook.texts == [...]
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.local import LocalServer

# What Slack answers with each status, as plain text.
ANSWERS = {200: "ok", 400: "invalid_payload", 403: "action_prohibited", 404: "no_service"}


class FakeWebhook(LocalServer):
    """The server and what it received. Thread-safe; a context manager or start()/stop()."""

    def __init__(self, *, fail_with: int | None = None, script: list[int] | None = None) -> None:
        self.fail_with = fail_with
        self.script = list(script or [])
        self._lock = threading.Lock()
        self.texts: list[str] = []  # the text of each accepted call
        self.statuses: list[int] = []  # the status of every call, accepted or not
        self.content_types: list[str] = []
        self.serve(self._handler_class())

    @property
    def url(self) -> str:
        return f"{self.base_url}/services/T000/B000/XXXX"

    def answer(self, body: bytes, content_type: str) -> tuple[int, str]:
        with self._lock:
            self.content_types.append(content_type)
            status = self.script.pop(0) if self.script else (self.fail_with or 200)
            if status == 200:
                try:
                    text = json.loads(body.decode()).get("text")
                except (ValueError, AttributeError):
                    text = None
                if not isinstance(text, str) or not text:
                    status = 400
                else:
                    self.texts.append(text)
            self.statuses.append(status)
            return status, ANSWERS.get(status, "rollup_error")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                content_type = self.headers.get("Content-Type") or ""
                status, answer = fake.answer(self.rfile.read(length), content_type)
                data = answer.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
