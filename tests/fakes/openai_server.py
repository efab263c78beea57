"""A fake OpenAI-compatible HTTP server: the real `openai` client talks to it over HTTP.

    with FakeOpenAI() as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        fake.fail_next("429", "bad_schema")   # the next two calls answer with these faults
        ...
        assert len(fake.calls) == 3

Faults: "429" and "500" (with a 1 ms retry-after-ms header, so client retries are quick),
"timeout" (sleeps `timeout_sleep` seconds, longer than the client's timeout), "invalid_json"
(200 with text that is not JSON), "bad_schema" (valid JSON breaking the rules: the first paper gets
an unknown category, the last is missing, an extra id appears), "foreign_words" (a summary with
重大한 / dân족 / giám sát), "bad_refs" (a summary citing [9]), "refusal". A callable in the queue
answers that call: it gets the request body and returns the message content.

Like real servers it honours `max_tokens` (an answer longer than that is cut, finish_reason
"length") and streams when asked (`stream=True`: server-sent events, the usage in a last chunk when
`stream_options.include_usage`), `tokens_per_second` apart when that is set (a slow CPU server).
A token here is 4 characters. Faults of real servers: "stall" (streams half the answer, then
says nothing for `stall_sleep` seconds), "loop" (the same sentence again and again until
max_tokens), "length" (half the answer, finish_reason "length"), "context" (HTTP 400 as llama.cpp
says it); `context_tokens` answers that 400 to every prompt longer than that many tokens;
`reject_stream_options` answers HTTP 400 to every request with `stream_options`, as older
OpenAI-compatible servers do (such a rejected call takes no fault from the queue). Without
`stream` the answer comes whole, as one JSON body.

Without faults it answers like a well-behaved model: a valid classification for structured
classification requests (keyword overlap with the categories listed in the prompt), a Korean (or
English) Markdown report in the sample's shape for summary requests.

Standalone: python -m tests.fakes.openai_server --port 8765 --latency 0.3
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes.local import POLL_INTERVAL

Responder = Callable[[dict[str, Any]], str]
Fault = str | Responder
FAULTS = (
    "429",
    "500",
    "timeout",
    "invalid_json",
    "bad_schema",
    "foreign_words",
    "bad_refs",
    "refusal",
    "stall",
    "loop",
    "length",
    "context",
)
LOOP_SENTENCE = "The proposed method improves the results on every benchmark. "
CHARS_PER_TOKEN = 4
UNKNOWN_SLUG = "quantum-cooking"
EXTRA_ID = "9999.99999"
_WORD = re.compile(r"[a-z][a-z0-9\-]{2,}")
_STOPWORDS = frozenset(
    {"and", "the", "for", "with", "that", "this", "from", "are", "not", "their", "them"}
    | {"what", "models", "model", "learning", "mainly", "about", "across", "made", "how"}
    | {"which", "these", "its", "into", "such"}
)


class FakeOpenAI:
    def __init__(
        self,
        *,
        latency: float = 0.0,
        port: int = 0,
        timeout_sleep: float = 3.0,
        responder: Responder | None = None,
        tokens_per_second: float = 0.0,
        context_tokens: int = 0,
        stall_sleep: float = 3.0,
    ) -> None:
        self.latency = latency
        self.timeout_sleep = timeout_sleep
        self.tokens_per_second = tokens_per_second  # 0: as fast as possible
        self.context_tokens = context_tokens  # 0: no limit
        self.stall_sleep = stall_sleep
        self.send_usage = True  # False: a server that reports no usage, even when asked
        self.reject_stream_options = False  # True: a server that does not know stream_options
        self.responder = responder  # replaces the default smart answers when set
        self.max_in_flight = 0
        self._port = port
        self._lock = threading.Lock()
        self._calls: list[dict[str, Any]] = []
        self._faults: deque[Fault] = deque()
        self._in_flight = 0
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> FakeOpenAI:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._server = _Server(("127.0.0.1", self._port), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in a "timeout" fault
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def serve_forever(self) -> None:
        """Blocks until the process is stopped; the server must be started."""
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(timeout=1)
        finally:
            self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the server first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    # --- what tests look at and script ----------------------------------------------------------

    @property
    def calls(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._calls)

    def fail_next(self, *faults: Fault) -> None:
        for fault in faults:
            if isinstance(fault, str) and fault not in FAULTS:
                raise ValueError(f"unknown fault {fault!r}; one of {FAULTS}")
        with self._lock:
            self._faults.extend(faults)

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._faults.clear()
            self.max_in_flight = 0

    # --- serving --------------------------------------------------------------------------------

    def _enter(self, body: dict[str, Any]) -> Fault | None:
        with self._lock:
            self._calls.append(body)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            if self._rejects(body):
                return None
            return self._faults.popleft() if self._faults else None

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def answer(self, body: dict[str, Any], fault: Fault | None) -> tuple[int, dict[str, Any], str]:
        """(status, headers, body text) for one request."""
        if self.latency:
            self._stopping.wait(self.latency)
        if self._rejects(body):
            return _error(400, STREAM_OPTIONS_MESSAGE, "unknown_parameter")
        if fault == "429":
            return _error(429, "Rate limit reached for requests", "rate_limit_exceeded")
        if fault == "500":
            return _error(500, "The server had an error processing your request", "server_error")
        if fault == "timeout":
            self._stopping.wait(self.timeout_sleep)
            fault = None
        if fault == "context" or self._too_long(body):
            return _error(400, CONTEXT_MESSAGE, "exceed_context_size_error")
        if callable(fault):
            return 200, {}, json.dumps(completion(body=body, content=fault(body)))
        if fault == "refusal":
            return 200, {}, json.dumps(completion(body=body, content=None, refusal="I can't."))
        if fault == "loop":
            limit = int(body.get("max_tokens") or 4096) * CHARS_PER_TOKEN
            content = LOOP_SENTENCE * (limit // len(LOOP_SENTENCE) + 1)
            return 200, {}, json.dumps(completion(body=body, content=content))
        content = self._content(body, None if fault in ("stall", "length") else fault)
        if fault == "length":
            half = content[: len(content) // 2]
            return 200, {}, json.dumps(completion(body=body, content=half, finish="length"))
        return 200, {}, json.dumps(completion(body=body, content=content))

    def _rejects(self, body: dict[str, Any]) -> bool:
        return self.reject_stream_options and "stream_options" in body

    def _too_long(self, body: dict[str, Any]) -> bool:
        return bool(self.context_tokens) and prompt_tokens_of(body) > self.context_tokens

    def _content(self, body: dict[str, Any], fault: str | None) -> str:
        if fault == "invalid_json":
            return "Sure! Here is the classification you asked for: {items: [oops"
        if self.responder is not None and fault is None:
            return self.responder(body)
        if is_structured(body):
            return classification_answer(body=body, broken=fault == "bad_schema")
        return summary_answer(body=body, fault=fault)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeOpenAI


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(*_error(404, f"Unknown path {self.path}", "not_found"))
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send(*_error(400, "Request body is not JSON", "invalid_request"))
            return
        fake = self.server.fake
        fault = fake._enter(body)
        try:
            status, headers, text = fake.answer(body, fault)
            if status == 200 and body.get("stream"):
                self._stream(body, json.loads(text), stall=fault == "stall")
            else:
                self._send(status, headers, text)
        finally:
            fake._leave()

    def _stream(self, body: dict[str, Any], answer: dict[str, Any], *, stall: bool) -> None:
        """The answer as server-sent events, `tokens_per_second` apart when that is set."""
        fake = self.server.fake
        self.close_connection = True  # no Content-Length: the body ends when the socket closes
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            one_token = stall or bool(fake.tokens_per_second)
            piece_chars = CHARS_PER_TOKEN if one_token else 256
            if not fake.send_usage:
                body = {**body, "stream_options": None}
            events = stream_events(body, answer, piece_chars=piece_chars)
            for number, event in enumerate(events):
                if stall and number == 2:
                    fake._stopping.wait(fake.stall_sleep)
                    return
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                self.wfile.flush()
                if fake.tokens_per_second:
                    fake._stopping.wait(1 / fake.tokens_per_second)
            self.wfile.write(b"data: [DONE]\n\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client cut the answer off

    def _send(self, status: int, headers: dict[str, str], text: str) -> None:
        data = text.encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a "timeout" fault): nobody is listening

    def log_message(self, format: str, *args: Any) -> None:
        pass


# --- response bodies --------------------------------------------------------------------------


def _error(status: int, message: str, code: str) -> tuple[int, dict[str, str], str]:
    body = {"error": {"message": message, "type": "server_error", "param": None, "code": code}}
    # retry-after-ms wins over Retry-After in the client: retries in 1 ms keep tests fast.
    return status, {"Retry-After": "0", "retry-after-ms": "1"}, json.dumps(body)


CONTEXT_MESSAGE = "the request exceeds the available context size, try increasing it"
# As an OpenAI-compatible proxy's upstream said it (QuantumNous/new-api issue 418).
STREAM_OPTIONS_MESSAGE = "Unknown parameter: 'stream_options'."


def tokens_estimate(text: str) -> int:
    return max(1, len(text) // CHARS_PER_TOKEN)


def prompt_text(body: dict[str, Any]) -> str:
    return "".join(str(m.get("content") or "") for m in body.get("messages", []))


def prompt_tokens_of(body: dict[str, Any]) -> int:
    return tokens_estimate(prompt_text(body))


def completion(
    *,
    body: dict[str, Any],
    content: str | None,
    refusal: str | None = None,
    finish: str = "stop",
) -> dict[str, Any]:
    """A chat completion; content beyond `max_tokens` is cut, with finish_reason "length"."""
    limit = body.get("max_tokens") or body.get("max_completion_tokens")
    if content is not None and limit and len(content) > limit * CHARS_PER_TOKEN:
        content, finish = content[: limit * CHARS_PER_TOKEN], "length"
    prompt = prompt_text(body)
    prompt_tokens = tokens_estimate(prompt)
    completion_tokens = tokens_estimate(content or refusal or "")
    digest = hashlib.sha256(prompt.encode()).hexdigest()[:24]
    return {
        "id": f"chatcmpl-{digest}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "gpt-4o-mini"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "system_fingerprint": "fp_fake",
    }


def stream_events(
    body: dict[str, Any], answer: dict[str, Any], *, piece_chars: int = 256
) -> list[dict[str, Any]]:
    """A completion as the chunks of a stream, `piece_chars` of the content each."""
    choice = answer["choices"][0]
    message = choice["message"]
    content = message.get("content") or ""
    size = piece_chars
    base = {k: answer[k] for k in ("id", "created", "model", "system_fingerprint")}
    base["object"] = "chat.completion.chunk"

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    events = [chunk({"role": "assistant", "content": ""})]
    if message.get("refusal"):
        events.append(chunk({"refusal": message["refusal"]}))
    events += [chunk({"content": content[i : i + size]}) for i in range(0, len(content), size)]
    events.append(chunk({}, choice["finish_reason"]))
    if (body.get("stream_options") or {}).get("include_usage"):
        events.append({**base, "choices": [], "usage": answer["usage"]})
    return events


def is_structured(body: dict[str, Any]) -> bool:
    response_format = body.get("response_format") or {}
    return bool(response_format.get("type") == "json_schema")


def user_payload(body: dict[str, Any]) -> dict[str, Any]:
    """The JSON object the prompts put in the user message ({} when it is not JSON)."""
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    try:
        payload = json.loads(users[-1]["content"]) if users else {}
    except (ValueError, TypeError):
        return {}
    return payload if isinstance(payload, dict) else {}


# --- classification ---------------------------------------------------------------------------


def classification_answer(*, body: dict[str, Any], broken: bool = False) -> str:
    payload = user_payload(body)
    categories = payload.get("categories") or []
    papers = payload.get("papers") or []
    items = [
        {"id": p["id"], "category": best_slug(p, categories), "importance": importance_of(p)}
        for p in papers
    ]
    if broken and items:
        items[0]["category"] = UNKNOWN_SLUG
        if len(items) > 1:
            items.pop()
        items.append({"id": EXTRA_ID, "category": items[0]["category"], "importance": 5})
    return json.dumps({"items": items})


def best_slug(paper: dict[str, Any], categories: list[dict[str, Any]]) -> str:
    """The category whose name, slug and description share most words with the paper."""
    text = f"{paper.get('title', '')} {paper.get('title', '')} {paper.get('abstract', '')}"
    words = set(_WORD.findall(text.lower()))
    best, best_score = (categories[0]["slug"] if categories else "none"), -1
    for category in categories:
        blob = f"{category['slug']} {category.get('name', '')} {category.get('description', '')}"
        vocabulary = set(_WORD.findall(blob.lower())) - _STOPWORDS
        score = sum(1 for w in vocabulary if any(x.startswith(w[:6]) for x in words))
        if score > best_score:
            best, best_score = category["slug"], score
    return best


def importance_of(paper: dict[str, Any]) -> int:
    return 1 + int(hashlib.sha256(str(paper.get("id")).encode()).hexdigest(), 16) % 10


# --- summaries --------------------------------------------------------------------------------


def summary_answer(*, body: dict[str, Any], fault: str | None = None) -> str:
    payload = user_payload(body)
    papers = payload.get("papers") or []
    count = max(1, len(papers))
    name = (payload.get("category") or {}).get("name", "AI")
    language = str(payload.get("language", "ko")).lower()
    if language.startswith("en"):
        text = english_report(name, count)
    elif language.startswith("ja"):
        text = japanese_report(name, count)
    else:
        text = korean_report(name, count)
    if fault == "foreign_words":
        text = text.replace("중요한 영향을", "重大한 영향을").replace(
            "이러한 연구는", "이러한 dân족 연구는 giám sát 학습과 함께"
        )
    if fault == "bad_refs":
        text = text.replace("[1]", "[9]", 1)
    return text


def _cites(count: int) -> list[str]:
    return [f"[{n}]" for n in range(1, count + 1)]


def korean_report(name: str, count: int) -> str:
    cites = _cites(count)
    themes = "\n\n".join(
        f"{i}. **주제 {i}**\n\n이 논문은 {name} 분야의 새로운 방법을 제안하고 "
        f"기존 방법보다 나은 성능을 보고합니다 {cite}."
        for i, cite in enumerate(cites, start=1)
    )
    return (
        f"**요약 보고서**\n\n오늘 {name} 분야에서 {count}편의 논문을 살펴보았습니다. "
        f"연구들은 효율성과 신뢰성을 함께 높이는 방향으로 나아가고 있습니다 {cites[0]}.\n\n"
        f"**주제별 요약**\n\n{themes}\n\n"
        f"**추세와 패턴**\n\n* 여러 연구가 대규모 모델(LLM)의 효율을 다룹니다 {''.join(cites)}.\n"
        f"* 평가 방법의 정확성이 중요한 영향을 미칩니다 {cites[-1]}.\n\n"
        f"**결론**\n\n이러한 연구는 {name} 분야의 실제 적용을 앞당길 것으로 보입니다."
    )


def english_report(name: str, count: int) -> str:
    cites = _cites(count)
    themes = "\n\n".join(
        f"{i}. **Theme {i}**\n\nThis paper proposes a new method in {name} and reports "
        f"better results than earlier work {cite}."
        for i, cite in enumerate(cites, start=1)
    )
    return (
        f"**Summary report**\n\nToday we read {count} papers in {name}. The work moves "
        f"towards methods that are both efficient and reliable {cites[0]}.\n\n"
        f"**Themes**\n\n{themes}\n\n"
        f"**Trends and patterns**\n\n* Several papers study efficiency {''.join(cites)}.\n"
        f"* Evaluation quality has an important effect {cites[-1]}.\n\n"
        f"**Conclusion**\n\nThis research should bring {name} closer to practice."
    )


def japanese_report(name: str, count: int) -> str:
    cites = _cites(count)
    themes = "\n\n".join(
        f"{i}. **テーマ {i}**\n\nこの論文は{name}分野の新しい手法を提案し、"
        f"従来の手法より優れた結果を報告しています {cite}。"
        for i, cite in enumerate(cites, start=1)
    )
    return (
        f"**要約レポート**\n\n本日は{name}分野の論文{count}本を読みました。"
        f"研究は効率と信頼性を両立する方向に進んでいます {cites[0]}。\n\n"
        f"**テーマ別の要約**\n\n{themes}\n\n"
        f"**傾向とパターン**\n\n* 多くの研究がLLMの効率を扱っています {''.join(cites)}。\n"
        f"* 評価の正確さが重要な影響を与えます {cites[-1]}。\n\n"
        f"**結論**\n\nこれらの研究は{name}分野の実用化を早めると考えられます。"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake OpenAI chat completions server")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per call")
    args = parser.parse_args()
    fake = FakeOpenAI(latency=args.latency, port=args.port)
    fake.start()
    print(fake.base_url, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        fake.serve_forever()


if __name__ == "__main__":
    main()
