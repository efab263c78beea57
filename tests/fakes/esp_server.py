"""A fake Mailgun sending API on localhost, for tests and `bench/send.py`.

It answers `POST /v3/<domain>/messages` (the multipart form anymail's Mailgun backend posts)
with Mailgun's 200 `{"id": "<uuid@domain>", "message": "Queued. Thank you."}` and records what
each accepted call carried: the recipients (`to`), `recipient-variables`, `h:` headers,
`v:` variables, `o:tag`, subject, html, text and inline files.

Faults, for the delivery fault tests:
- `fail_rate` (seeded) or `script` (the status of the first calls, in order; 200 = answer
  normally): 429 or 5xx answers, nothing recorded as sent;
- `reject`: addresses Mailgun refuses; a call naming any of them gets 400
  `{"message": "'to' parameter is not a valid address. ..."}` for the whole call, as Mailgun does;
- `latency`: seconds each call takes before it is answered.

Inspection over HTTP (for a server in another process): `GET /_stats` (counters),
`GET /_recipients` (every accepted recipient, repeats included), `POST /_reset`.

    python -m tests.fakes.esp_server --port 8025 [--latency 0.05] [--fail-rate 0.1]
        [--fail-status 429,500] [--seed 1] [--reject bad@example.com]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from email.utils import parseaddr
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl

from tests.fakes.local import LocalServer

INVALID_TO = "'to' parameter is not a valid address. please check documentation"


@dataclass
class InlineFile:
    filename: str
    content_type: str
    content: bytes


@dataclass
class Call:
    """One accepted API call, as Mailgun would have received it."""

    domain: str
    to: list[str]
    recipient_variables: dict[str, dict[str, Any]]
    headers: dict[str, str]  # h:Name -> value, without the "h:"
    variables: dict[str, str]  # v:name -> value, without the "v:"
    tags: list[str]
    subject: str
    html: str
    text: str
    inline: list[InlineFile] = field(default_factory=list)
    message_id: str = ""
    received_at: float = 0.0  # time.time() when the call was answered (accepted)

    @property
    def addresses(self) -> list[str]:
        return [parseaddr(to)[1].lower() for to in self.to]

    def substituted(self, template: str, address: str) -> str:
        """`template` with this recipient's `%recipient.KEY%` values, as Mailgun fills them in."""
        values = self.recipient_variables.get(address, {})
        for key, value in values.items():
            template = template.replace(f"%recipient.{key}%", str(value))
        return template


def form_parse(content_type: str, body: bytes) -> list[tuple[str, str | None, str, bytes]]:
    """(name, filename, content type, bytes) of each field of the form: multipart/form-data
    (anymail's requests sends that when there are files) or urlencoded (when there are none)."""
    if content_type.startswith("application/x-www-form-urlencoded"):
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True)
        return [(name, None, "text/plain", value.encode()) for name, value in pairs]
    boundary = re.search(r'boundary="?([^";]+)"?', content_type)
    if boundary is None:
        raise ValueError(f"no boundary in {content_type!r}")
    # The form as requests (urllib3) writes it: raw bytes per part, no transfer encoding, so a
    # split on the boundary is the whole parse (the email package takes ten times longer).
    parts = []
    for chunk in body.split(b"--" + boundary.group(1).encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, payload = chunk[2:].partition(b"\r\n\r\n")
        headers = head.decode("utf-8")
        if "content-transfer-encoding" in headers.lower():
            raise ValueError("a transfer-encoded part: not how requests writes a form")
        name = re.search(r'\bname="([^"]*)"', headers)
        filename = re.search(r'\bfilename="([^"]*)"', headers)
        kind = re.search(r"(?im)^content-type:\s*([^;\r\n]+)", headers)
        parts.append(
            (
                name.group(1) if name else "",
                filename.group(1) if filename else None,
                kind.group(1).strip() if kind else "text/plain",
                payload[:-2],  # the CRLF before the next boundary
            )
        )
    return parts


def call_build(domain: str, parts: list[tuple[str, str | None, str, bytes]]) -> Call:
    fields: dict[str, list[str]] = {}
    inline = []
    for name, filename, content_type, payload in parts:
        if name in {"inline", "attachment"}:
            inline.append(InlineFile(filename or "", content_type, payload))
            continue
        fields.setdefault(name, []).append(payload.decode("utf-8"))

    def one(name: str) -> str:
        return fields.get(name, [""])[0]

    return Call(
        domain=domain,
        to=fields.get("to", []),
        recipient_variables=json.loads(one("recipient-variables") or "{}"),
        headers={k[2:]: v[0] for k, v in fields.items() if k.startswith("h:")},
        variables={k[2:]: v[0] for k, v in fields.items() if k.startswith("v:")},
        tags=fields.get("o:tag", []),
        subject=one("subject"),
        html=one("html"),
        text=one("text"),
        inline=inline,
    )


class FakeESP(LocalServer):
    """The server and what it saw. Thread-safe; use as a context manager or start()/stop()."""

    def __init__(
        self,
        *,
        port: int = 0,
        latency: float = 0.0,
        fail_rate: float = 0.0,
        fail_statuses: tuple[int, ...] = (429, 500),
        seed: int = 0,
        script: list[int] | None = None,
        reject: set[str] | None = None,
        keep_bodies: bool = True,
    ) -> None:
        self.latency = latency
        self.fail_rate = fail_rate
        self.fail_statuses = fail_statuses
        self.script = list(script or [])
        self.reject = {address.lower() for address in reject or set()}
        self.keep_bodies = keep_bodies
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.calls: list[Call] = []
        self.statuses: Counter[int] = Counter()
        self.attempted: list[list[str]] = []  # the addresses of every call, answered or not
        self.first_call_at: float | None = None  # time.time() of the first call, any answer
        self.serve(self._handler_class(), port=port)

    # --- what it saw ---------------------------------------------------------------------------

    def recipients(self) -> list[str]:
        """Every address of every accepted call, repeats included."""
        with self._lock:
            return [address for call in self.calls for address in call.addresses]

    def recipient_times(self) -> list[tuple[float, str]]:
        """(time accepted, address) of every accepted recipient, in order of arrival."""
        with self._lock:
            return sorted((c.received_at, a) for c in self.calls for a in c.addresses)

    def call_for(self, address: str) -> Call:
        with self._lock:
            found = [call for call in self.calls if address.lower() in call.addresses]
        assert len(found) == 1, f"{address} is in {len(found)} accepted calls"
        return found[0]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            sent = [address for call in self.calls for address in call.addresses]
            counts = Counter(sent)
            return {
                "calls": sum(self.statuses.values()),
                "accepted_calls": len(self.calls),
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "recipients": len(sent),
                "distinct_recipients": len(counts),
                "duplicates": sum(n - 1 for n in counts.values() if n > 1),
                "first_call_at": self.first_call_at,
            }

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.statuses.clear()
            self.attempted.clear()
            self.first_call_at = None

    # --- answering -----------------------------------------------------------------------------

    def answer(self, domain: str, call: Call) -> tuple[int, dict[str, str]]:
        if self.latency:
            time.sleep(self.latency)
        with self._lock:
            now = time.time()
            if self.first_call_at is None:
                self.first_call_at = now
            self.attempted.append(call.addresses)
            status = self._fault()
            if status is None and self.reject.intersection(call.addresses):
                status = 400
            if status is not None:
                self.statuses[status] += 1
                message = INVALID_TO if status == 400 else f"fake fault {status}"
                return status, {"message": message}
            call.message_id = f"<{uuid.uuid4()}@{domain}>"
            call.received_at = now
            if not self.keep_bodies:
                call.html = call.text = ""
                call.inline = []
            self.calls.append(call)
            self.statuses[200] += 1
            return 200, {"id": call.message_id, "message": "Queued. Thank you."}

    def _fault(self) -> int | None:
        if self.script:
            scripted = self.script.pop(0)
            return None if scripted == 200 else scripted
        if self.fail_rate and self._random.random() < self.fail_rate:
            return self._random.choice(self.fail_statuses)
        return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Without TCP_NODELAY every reply on a kept-alive connection waits ~40 ms (Nagle).
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/_stats":
                    self._reply(200, fake.stats())
                elif self.path == "/_recipients":
                    self._reply(200, fake.recipients())
                else:
                    self._reply(404, {"message": "not found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.path == "/_reset":
                    fake.reset()
                    self._reply(200, {"message": "reset"})
                    return
                segments = self.path.strip("/").split("/")
                if len(segments) != 3 or segments[0] != "v3" or segments[2] != "messages":
                    self._reply(404, {"message": "Mailgun Magnificent API"})
                    return
                if not (self.headers.get("Authorization") or "").startswith("Basic "):
                    self._reply(401, {"message": "Forbidden"})
                    return
                parts = form_parse(self.headers.get("Content-Type") or "", body)
                status, answer = fake.answer(segments[1], call_build(segments[1], parts))
                self._reply(status, answer)

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--fail-status", default="429,500")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reject", action="append", default=[])
    parser.add_argument("--keep-bodies", action="store_true", help="keep html/text of each call")
    args = parser.parse_args()
    fake = FakeESP(
        port=args.port,
        latency=args.latency,
        fail_rate=args.fail_rate,
        fail_statuses=tuple(int(s) for s in args.fail_status.split(",") if s),
        seed=args.seed,
        reject=set(args.reject),
        keep_bodies=args.keep_bodies,
    )
    print(f"Fake Mailgun API listening on {fake.base_url}/v3", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        fake._server.serve_forever()


if __name__ == "__main__":
    main()
