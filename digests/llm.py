"""The one module that talks to the LLM: client, cache, usage, token budget and concurrency.

Every call is bounded. Its prompt is measured before sending (`tokens_estimate`, a conservative
count: see there) and refused when prompt + answer cannot fit the server's context window
(LLM_CONTEXT_TOKENS); every request sets `max_tokens`; the daily budget counts what a call may cost
(prompt estimate + max_tokens) before it is made. Answers are streamed (LLM_STREAM), so a slow
server that keeps producing tokens is waited for, while one silent for LLM_STALL_SECONDS, or one
generating the same sentence (up to numbers, punctuation and case) LLM_REPEAT_LIMIT times, is cut
off. Usage comes from the stream's last chunk, or is estimated when the server sends none. Without
streaming a call waits OPENAI_TIMEOUT for the whole answer, which gets the same checks.

Callers describe calls as `LLMRequest`s and get one `LLMOutcome` each from `llm_run_many`; a call
that fails (no key, budget, HTTP errors after the client's own retries, garbage output) comes back
as an outcome with an error, never as an exception, so a build always finishes with fallbacks.

Only the HTTP requests run in worker threads. Cache look-ups and every database write happen on
the calling thread: database connections are per thread, and SQLite test transactions would not
see (or would lock against) writes from another thread.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections import Counter, deque
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import pydantic
from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from .models import LLMCacheEntry, LLMCall

if TYPE_CHECKING:  # imported where used: 0.6 s at every process start otherwise
    import openai

logger = logging.getLogger(__name__)

ErrorKind = Literal[
    "", "disabled", "budget", "api", "invalid", "refusal", "context", "length", "stalled", "loop"
]
# Tokens a chat template adds around each message, and around the whole prompt.
MESSAGE_OVERHEAD_TOKENS = 8
# What servers say when the prompt does not fit: llama.cpp, OpenAI, vLLM, Ollama and others.
_CONTEXT_EXCEEDED = re.compile(
    r"context[_ ]length[_ ]exceeded|exceeds the available context|maximum context length"
    r"|context (?:window|size|length)|too many tokens|prompt is too long",
    re.IGNORECASE,
)
# Where an answer's sentences and lines end, for spotting an answer that loops; `}` ends an item
# of a JSON answer.
_UNIT_END = re.compile(r"(?<=[.!?。])\s+|\n+|(?<=\})\s*,?\s*")
_UNIT_MIN_CHARS = 16  # letters and spaces of a unit: shorter ones are headings or list labels
# What a unit is compared by: its words without digits or punctuation, and its citations.
_NOT_LETTERS = re.compile(r"[\W\d_]+")
_CITATION = re.compile(r"\[\d+(?:\s*[,\-–]\s*\d+)*\]")
# JSON Schema keywords kept in the schema sent in OpenAI's strict mode: its documented subset,
# less the validation keywords (bounds, lengths, patterns, formats), which OpenAI refuses for
# fine-tuned models and the subset common to providers lacks (see classify.PaperLabel). What the
# schema sent leaves out, pydantic still checks when the answer is parsed.
_STRICT_KEYWORDS = frozenset(
    {"type", "properties", "items", "anyOf", "enum", "const", "$ref", "$defs"}
    | {"title", "description"}
)
# Validation keywords kept as well when LLM_GRAMMAR_SCHEMA is on: a server that turns the whole
# schema into a grammar (llama.cpp, vLLM, Ollama) then cannot write a value outside them.
_GRAMMAR_KEYWORDS = frozenset(
    {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems"}
    | {"minLength", "maxLength", "pattern"}
)
_MILLION = Decimal(1_000_000)


class LLMUnavailable(Exception):
    """No LLM answer can be had: no key configured, or the calls failed."""


class BudgetExceeded(LLMUnavailable):
    """Today's token budget (LLM_DAILY_TOKEN_BUDGET, per UTC day) is spent."""


@dataclass(frozen=True)
class LLMRequest:
    purpose: str  # an LLMCall.Purpose value
    digest_date: date | None
    prompt_version: str
    system: str
    user: str
    # A pydantic model: structured output through `chat.completions.parse`. None: plain text.
    schema: type[pydantic.BaseModel] | None = None
    # False: always ask the LLM (an editor wants another answer to the same prompt); the new
    # answer still replaces the cached one, so a later rebuild reuses the latest text.
    use_cache: bool = True
    # The answer's ceiling (sent as max_tokens); 0: LLM_REPORT_MAX_TOKENS.
    max_tokens: int = 0
    # A JSON schema sent to the server instead of `schema`'s, when tighter (one batch's ids and
    # slugs fixed): a server with a grammar keeps to it, while the answer is parsed with
    # `schema`, so that the good items of a loose answer are kept.
    schema_sent: dict[str, Any] | None = None


@dataclass(frozen=True)
class LLMOutcome:
    request: LLMRequest
    value: pydantic.BaseModel | None = None  # the parsed answer, for a request with a schema
    text: str = ""  # the raw answer
    error: str = ""
    error_kind: ErrorKind = ""
    cached: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    truncated: bool = False  # a plain answer cut off at max_tokens (finish_reason "length")
    refused: bool = False  # refused before sending: no HTTP request was made

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def budget_exceeded(self) -> bool:
        return self.error_kind == "budget"

    @property
    def called(self) -> bool:
        """Whether an HTTP request was made for it (not cached, not refused before sending)."""
        return not (self.cached or self.refused) and self.error_kind not in ("disabled", "budget")

    @property
    def too_big(self) -> bool:
        """The prompt did not fit the context, or the answer was cut off at max_tokens."""
        return self.error_kind in ("context", "length")


@dataclass(frozen=True)
class Usage:
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class _Reply:
    """What a worker thread brings back from one HTTP call. No database objects in here."""

    text: str = ""
    value: pydantic.BaseModel | None = None
    error: str = ""
    error_kind: ErrorKind = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    duration_ms: int = 0
    truncated: bool = False


@dataclass
class _Pending:
    index: int
    request: LLMRequest
    key: str


# --- Configuration ----------------------------------------------------------------------------


def llm_enabled() -> bool:
    return bool(settings.OPENAI_API_KEY)


def llm_model() -> str:
    return str(settings.OPENAI_MODEL)


def llm_streams() -> bool:
    return bool(settings.LLM_STREAM)


def read_timeout_setting() -> str:
    """The setting that bounds a read: the wait for a stream's next bytes, or for a whole answer
    (without streaming there is no progress to watch)."""
    return "LLM_STALL_SECONDS" if llm_streams() else "OPENAI_TIMEOUT"


def read_timeout_seconds() -> float:
    return float(getattr(settings, read_timeout_setting()))


def llm_client_build() -> openai.OpenAI:
    """The client retries 429, 5xx and timeouts itself, with backoff (OPENAI_MAX_RETRIES)."""
    if not llm_enabled():
        raise LLMUnavailable("LLM disabled: OPENAI_API_KEY is not set")
    import openai

    # No total timeout: a slow answer that keeps streaming is waited for. A read waits at most
    # LLM_STALL_SECONDS for the next bytes; max_tokens and the loop watch bound the rest. Without
    # streaming, a read waits OPENAI_TIMEOUT for the whole answer.
    timeout = openai.Timeout(settings.OPENAI_TIMEOUT, read=read_timeout_seconds())
    return openai.OpenAI(
        api_key=settings.OPENAI_API_KEY,
        base_url=settings.OPENAI_BASE_URL or None,
        timeout=timeout,
        max_retries=settings.OPENAI_MAX_RETRIES,
    )


# --- Sizes: measured before sending -----------------------------------------------------------


def tokens_estimate(text: str) -> int:
    """A conservative token count, without a tokenizer: every character outside ASCII (Hangul,
    CJK, Cyrillic, accents) counts as one token, and ASCII text as one token per 3 characters.
    BPE tokenizers give about 4 characters per token for English and at most one token per
    Hangul or CJK character, so this over-counts English by about a third: a prompt sized with it
    fits a real server's context."""
    ascii_chars = len(text.encode("ascii", "ignore"))
    return -(-ascii_chars // 3) + (len(text) - ascii_chars)


def prompt_tokens_estimate(request: LLMRequest) -> int:
    """The request's prompt tokens as `tokens_estimate` counts them, the schema included (some
    servers put it in the prompt)."""
    if request.schema_sent is not None:
        schema = json.dumps(request.schema_sent)
    else:
        schema = json.dumps(request.schema.model_json_schema()) if request.schema else ""
    text_tokens = sum(tokens_estimate(t) for t in (request.system, request.user, schema))
    return text_tokens + 3 * MESSAGE_OVERHEAD_TOKENS


def answer_tokens_max(request: LLMRequest) -> int:
    return request.max_tokens or int(settings.LLM_REPORT_MAX_TOKENS)


def call_cost_max(request: LLMRequest) -> int:
    """The most tokens the call may cost: what the budget counts before it is made."""
    return prompt_tokens_estimate(request) + answer_tokens_max(request)


def context_tokens() -> int:
    return int(settings.LLM_CONTEXT_TOKENS)


def context_fits(request: LLMRequest) -> bool:
    return call_cost_max(request) <= context_tokens()


# --- Usage, cost and budget -------------------------------------------------------------------


def llm_cost(*, prompt_tokens: int, completion_tokens: int) -> Decimal:
    price_in = Decimal(str(settings.LLM_PRICE_INPUT_PER_MTOK))
    price_out = Decimal(str(settings.LLM_PRICE_OUTPUT_PER_MTOK))
    cost = (prompt_tokens * price_in + completion_tokens * price_out) / _MILLION
    return cost.quantize(Decimal("0.000001"))


def llm_usage_for(*, digest_date: date) -> Usage:
    """Calls actually made for a digest date (cache hits excluded), their tokens and cost."""
    calls = LLMCall.objects.filter(digest_date=digest_date, cached=False)
    totals = calls.aggregate(
        prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"), cost=Sum("cost")
    )
    return Usage(
        calls=calls.count(),
        prompt_tokens=totals["prompt"] or 0,
        completion_tokens=totals["completion"] or 0,
        cost=totals["cost"] or Decimal("0"),
    )


def llm_tokens_used_today() -> int:
    """Tokens of all calls made since 00:00 UTC today."""
    start = datetime.combine(timezone.now().astimezone(UTC).date(), dt_time.min, tzinfo=UTC)
    totals = LLMCall.objects.filter(
        created_at__gte=start, created_at__lt=start + timedelta(days=1)
    ).aggregate(prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"))
    return (totals["prompt"] or 0) + (totals["completion"] or 0)


def llm_budget_left(*, used: int, cost: int = 0) -> bool:
    """Whether a call that may cost `cost` tokens fits in what is left of today's budget."""
    budget = int(settings.LLM_DAILY_TOKEN_BUDGET)
    if budget <= 0:  # 0 or less: no limit
        return True
    return used < budget and used + cost <= budget


def llm_budget_check() -> None:
    """Raises BudgetExceeded when today's token budget is spent."""
    used = llm_tokens_used_today()
    if not llm_budget_left(used=used):
        raise BudgetExceeded(budget_message(used=used))


def budget_message(*, used: int, cost: int = 0) -> str:
    budget = settings.LLM_DAILY_TOKEN_BUDGET
    text = f"token budget hit: {used:,} of {budget:,} tokens used today (UTC)"
    return f"{text}; the next call may cost up to {cost:,}" if cost else text


# --- The cache --------------------------------------------------------------------------------


def llm_cache_key(*, request: LLMRequest, model: str) -> str:
    schema = request.schema.model_json_schema() if request.schema else None
    material = [request.prompt_version, model, request.system, request.user, schema]
    blob = json.dumps(material, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def cached_outcome(*, request: LLMRequest, entry: LLMCacheEntry) -> LLMOutcome | None:
    """The cached answer as an outcome; None when it no longer fits the request's schema."""
    value = None
    if request.schema is not None:
        try:
            value = request.schema.model_validate_json(entry.response)
        except pydantic.ValidationError:
            return None
    return LLMOutcome(request=request, value=value, text=entry.response, cached=True)


# --- Running requests -------------------------------------------------------------------------


def llm_run(*, request: LLMRequest) -> LLMOutcome:
    return llm_run_many(requests=[request])[0]


def llm_run_many(*, requests: Sequence[LLMRequest]) -> list[LLMOutcome]:
    """One outcome per request, in order: cache hits first, the rest over HTTP, concurrently."""
    model = llm_model()
    keys = [llm_cache_key(request=r, model=model) for r in requests]
    outcomes: dict[int, LLMOutcome] = cache_hits_serve(requests=requests, keys=keys, model=model)
    misses = [
        _Pending(index=i, request=r, key=keys[i])
        for i, r in enumerate(requests)
        if i not in outcomes
    ]
    if misses:
        outcomes.update(misses_run(misses=misses, model=model))
    return [outcomes[i] for i in range(len(requests))]


def cache_hits_serve(
    *, requests: Sequence[LLMRequest], keys: list[str], model: str
) -> dict[int, LLMOutcome]:
    wanted = {key for request, key in zip(requests, keys, strict=True) if request.use_cache}
    entries = {e.key: e for e in LLMCacheEntry.objects.filter(key__in=wanted)} if wanted else {}
    hits: dict[int, LLMOutcome] = {}
    for index, (request, key) in enumerate(zip(requests, keys, strict=True)):
        entry = entries.get(key) if request.use_cache else None
        outcome = cached_outcome(request=request, entry=entry) if entry else None
        if outcome is not None:
            hits[index] = outcome
    LLMCall.objects.bulk_create(
        LLMCall(
            digest_date=requests[i].digest_date,
            purpose=requests[i].purpose,
            model=model,
            cached=True,
        )
        for i in hits
    )
    return hits


def misses_run(*, misses: list[_Pending], model: str) -> dict[int, LLMOutcome]:
    """HTTP calls on at most LLM_CONCURRENCY threads; the budget is checked before each one."""
    try:
        client = llm_client_build()
    except LLMUnavailable as exc:
        return {m.index: _refused(m, str(exc), "disabled") for m in misses}
    concurrency = max(1, int(settings.LLM_CONCURRENCY))
    used = llm_tokens_used_today()
    outcomes: dict[int, LLMOutcome] = {}
    for item in misses:
        if refused := context_refuse(item):
            outcomes[item.index] = refused
    pending = deque(m for m in misses if m.index not in outcomes)
    running: dict[Future[_Reply], tuple[_Pending, int]] = {}
    with client, ThreadPoolExecutor(max_workers=concurrency) as pool:
        while pending or running:
            while pending and len(running) < concurrency:
                # What the calls in flight may still cost counts as spent until they answer.
                reserved = used + sum(cost for _, cost in running.values())
                cost = call_cost_max(pending[0].request)
                if not llm_budget_left(used=reserved, cost=cost):
                    outcomes.update(budget_refuse(pending=pending, used=reserved, cost=cost))
                    break
                item = pending.popleft()
                future = pool.submit(completion_fetch, client, item.request, model)
                running[future] = (item, cost)
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                item, _ = running.pop(future)
                reply = reply_of(future)
                used += reply.prompt_tokens + reply.completion_tokens
                outcomes[item.index] = reply_record(item=item, reply=reply, model=model)
    return outcomes


def context_refuse(item: _Pending) -> LLMOutcome | None:
    """An outcome refusing a request that cannot fit the context window; None when it fits."""
    if context_fits(item.request):
        return None
    prompt, answer = prompt_tokens_estimate(item.request), answer_tokens_max(item.request)
    message = (
        f"prompt too long: about {prompt:,} tokens + {answer:,} for the answer exceed the "
        f"context of {context_tokens():,} (LLM_CONTEXT_TOKENS)"
    )
    return LLMOutcome(request=item.request, error=message, error_kind="context", refused=True)


def budget_refuse(*, pending: deque[_Pending], used: int, cost: int = 0) -> dict[int, LLMOutcome]:
    message = budget_message(used=used, cost=cost)
    refused = {m.index: _refused(m, message, "budget") for m in pending}
    pending.clear()
    logger.warning("%s; %d LLM calls not made", message, len(refused))
    return refused


def _refused(item: _Pending, message: str, kind: ErrorKind) -> LLMOutcome:
    return LLMOutcome(request=item.request, error=message, error_kind=kind)


def reply_of(future: Future[_Reply]) -> _Reply:
    try:
        return future.result()
    except Exception as exc:  # a bug in the worker must not kill the build
        logger.exception("LLM worker failed")
        return _Reply(error=f"unexpected error: {exc!r}", error_kind="api")


def reply_record(*, item: _Pending, reply: _Reply, model: str) -> LLMOutcome:
    """Writes the LLMCall row (and the cache entry on success): on the calling thread."""
    request = item.request
    LLMCall.objects.create(
        digest_date=request.digest_date,
        purpose=request.purpose,
        model=model,
        prompt_tokens=reply.prompt_tokens,
        completion_tokens=reply.completion_tokens,
        cost=llm_cost(prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens),
        ok=not reply.error,
        error=reply.error,
        duration_ms=reply.duration_ms,
    )
    if not reply.error:
        cache_store(item=item, reply=reply, model=model)
    else:
        logger.warning("LLM %s call failed: %s", request.purpose, reply.error)
    return LLMOutcome(
        request=request,
        value=reply.value,
        text=reply.text,
        error=reply.error,
        error_kind=reply.error_kind,
        prompt_tokens=reply.prompt_tokens,
        completion_tokens=reply.completion_tokens,
        truncated=reply.truncated,
    )


def cache_store(*, item: _Pending, reply: _Reply, model: str) -> None:
    LLMCacheEntry.objects.update_or_create(
        key=item.key,
        defaults={
            "prompt_version": item.request.prompt_version,
            "model": model,
            "response": reply.text,
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
        },
    )


# --- The HTTP call (runs in a worker thread: no database access here) --------------------------


def completion_fetch(client: openai.OpenAI, request: LLMRequest, model: str) -> _Reply:
    started = time.monotonic()
    reply = _completion_fetch(client, request, model)
    reply.duration_ms = round((time.monotonic() - started) * 1000)
    return reply


def _completion_fetch(client: openai.OpenAI, request: LLMRequest, model: str) -> _Reply:
    import openai

    params = completion_params(request, model, stream=llm_streams())
    try:
        answer = answer_fetch(client, params, watch_repeats=request.schema is None)
    except openai.APIError as exc:
        return _Reply(error=api_error_describe(exc), error_kind=api_error_kind(exc))
    reply = answer.reply(request)
    prompt_tokens, completion_tokens = answer.usage
    reply.prompt_tokens = prompt_tokens or prompt_tokens_estimate(request)
    reply.completion_tokens = completion_tokens or tokens_estimate(answer.text)
    return reply


def answer_fetch(client: openai.OpenAI, params: dict[str, Any], *, watch_repeats: bool) -> _Answer:
    """The answer, streamed or whole. A structured answer is not watched for repeats: its lines
    repeat by design (`"category": "nlp",` in every item), and its schema bounds it (ids from the
    batch, as many items as papers) where the server has a grammar, max_tokens where it has not.
    Raises openai.APIError when the request fails."""
    response = completion_create(client, params)
    if not params.get("stream"):
        return completion_read(response, watch_repeats=watch_repeats)
    with response:
        return stream_read(response, watch_repeats=watch_repeats)


def completion_create(client: openai.OpenAI, params: dict[str, Any]) -> Any:
    """The response (a stream when asked for). Some older OpenAI-compatible servers answer 400
    to `stream_options`: that call is made once more without it (the usage is then estimated)."""
    import openai

    try:
        return client.chat.completions.create(**params)
    except openai.APIStatusError as exc:
        if "stream_options" not in params or not stream_options_rejected(exc):
            raise
    logger.info("the LLM server rejects stream_options: asking again without them")
    params = {name: value for name, value in params.items() if name != "stream_options"}
    return client.chat.completions.create(**params)


def stream_options_rejected(exc: openai.APIStatusError) -> bool:
    # 422: the validation error of servers built on FastAPI.
    return exc.status_code in (400, 422) and "stream_options" in f"{exc.message} {exc.body}"


def completion_params(request: LLMRequest, model: str, *, stream: bool = True) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": model,
        "messages": [
            {"role": "system", "content": request.system},
            {"role": "user", "content": request.user},
        ],
        "max_tokens": answer_tokens_max(request),
    }
    if stream:
        params.update(stream=True, stream_options={"include_usage": True})
    if request.schema is not None:
        params["response_format"] = response_format_strict(request.schema)
        if request.schema_sent is not None:
            params["response_format"]["json_schema"]["schema"] = request.schema_sent
    return params


def response_format_strict(schema: type[pydantic.BaseModel]) -> dict[str, Any]:
    """The model's JSON schema (pydantic's `model_json_schema`) as a `response_format` for
    OpenAI's Structured Outputs in strict mode; with LLM_GRAMMAR_SCHEMA its bounds kept too."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", schema.__name__)[:64]
    keywords = _STRICT_KEYWORDS
    if settings.LLM_GRAMMAR_SCHEMA:
        keywords = _STRICT_KEYWORDS | _GRAMMAR_KEYWORDS
    return {
        "type": "json_schema",
        "json_schema": {
            "name": name,
            "strict": True,
            "schema": schema_strict(schema.model_json_schema(), keywords=keywords),
        },
    }


def schema_strict(
    node: dict[str, Any], *, keywords: frozenset[str] = _STRICT_KEYWORDS
) -> dict[str, Any]:
    """A node of a JSON schema in strict mode's rules: every object closed
    (`additionalProperties: false`) with all its properties required (pydantic's `default`s are
    dropped: the parsed answer must carry every field); only `keywords`; nothing beside
    a `$ref`; pydantic's `oneOf` (tagged unions) as `anyOf`. Strict mode has no object with
    free keys: a model with a `dict` field raises ValueError."""
    if "$ref" in node:
        return {"$ref": node["$ref"]}
    if isinstance(node.get("additionalProperties"), dict):
        raise ValueError(f"strict mode has no object with free keys (a dict field): {node}")
    strict = {key: value for key, value in node.items() if key in keywords}
    if "oneOf" in node:
        strict["anyOf"] = node["oneOf"]
    for key in ("properties", "$defs"):
        if key in strict:
            strict[key] = {
                name: schema_strict(child, keywords=keywords) for name, child in strict[key].items()
            }
    if isinstance(strict.get("items"), dict):
        strict["items"] = schema_strict(strict["items"], keywords=keywords)
    if "anyOf" in strict:
        strict["anyOf"] = [schema_strict(child, keywords=keywords) for child in strict["anyOf"]]
    if strict.get("type") == "object":
        strict["required"] = list(strict.setdefault("properties", {}))
        strict["additionalProperties"] = False
    return strict


@dataclass
class _Answer:
    """What came back for one call, streamed or whole: the text, and why it ended."""

    text: str = ""
    refusal: str = ""
    finish_reason: str = ""
    usage: tuple[int, int] = (0, 0)
    error: str = ""
    error_kind: ErrorKind = ""

    def reply(self, request: LLMRequest) -> _Reply:
        if self.error:
            return _Reply(text=self.text, error=self.error, error_kind=self.error_kind)
        if self.refusal or self.finish_reason == "content_filter":
            reason = self.refusal or "stopped by the content filter"
            return _Reply(error=f"model refused: {reason}", error_kind="refusal")
        cut = self.finish_reason == "length"
        if cut and request.schema is not None:
            limit = answer_tokens_max(request)
            return _Reply(error=f"answer cut off at the token limit ({limit})", error_kind="length")
        if not self.text.strip():
            return _Reply(error="empty answer", error_kind="invalid")
        if request.schema is None:
            return _Reply(text=self.text, truncated=cut)
        try:
            value = request.schema.model_validate_json(self.text)
        except pydantic.ValidationError as exc:
            error = validation_error_describe(exc)
            return _Reply(text=self.text, error=error, error_kind="invalid")
        return _Reply(text=self.text, value=value)


def stream_read(stream: Any, *, watch_repeats: bool = True) -> _Answer:
    """Reads the chunks until the end, a stall (the client's read timeout) or a loop."""
    import httpx2  # openai's HTTP library: its errors surface while a stream is read
    import openai

    streamed = _Answer()
    parts: list[str] = []
    watch = RepeatWatch(limit=int(settings.LLM_REPEAT_LIMIT))
    try:
        for chunk in stream:
            if chunk.usage is not None:
                streamed.usage = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
            for choice in chunk.choices[:1]:
                piece = choice.delta.content or ""
                parts.append(piece)
                streamed.refusal += getattr(choice.delta, "refusal", None) or ""
                streamed.finish_reason = choice.finish_reason or streamed.finish_reason
                if watch_repeats and (repeated := watch.feed(piece)):
                    streamed.error = f"answer cut off: it repeats itself ({repeated[:80]!r})"
                    streamed.error_kind = "loop"
                    break
            if streamed.error:
                break
    except (httpx2.TimeoutException, openai.APITimeoutError):
        streamed.error = (
            f"answer cut off: no progress for {settings.LLM_STALL_SECONDS}s (LLM_STALL_SECONDS)"
        )
        streamed.error_kind = "stalled"
    except (httpx2.HTTPError, openai.APIError) as exc:
        streamed.error, streamed.error_kind = f"answer stream broke: {exc}", "api"
    streamed.text = "".join(parts)
    return streamed


def completion_read(completion: Any, *, watch_repeats: bool = True) -> _Answer:
    """A whole answer (LLM_STREAM off), with the checks a streamed one gets: a loop is found
    only once it is all in, so nothing is cut off, but it is reported as a loop all the same."""
    answer = _Answer()
    if completion.usage is not None:
        answer.usage = (completion.usage.prompt_tokens, completion.usage.completion_tokens)
    for choice in completion.choices[:1]:
        answer.text = choice.message.content or ""
        answer.refusal = getattr(choice.message, "refusal", None) or ""
        answer.finish_reason = choice.finish_reason or ""
    watch = RepeatWatch(limit=int(settings.LLM_REPEAT_LIMIT))
    if watch_repeats and (repeated := watch.feed(answer.text)):
        answer.error = f"the answer repeats itself ({repeated[:80]!r})"
        answer.error_kind = "loop"
    return answer


class RepeatWatch:
    """Spots an answer that loops: one sentence, line or JSON item seen `limit` times. Units are
    compared by their words, so "Step 12: the model improves." and "step 13 - the model
    improves!" count as one; by their citations too, so the same sentence about another paper
    ([1], [2]) is not a loop."""

    def __init__(self, *, limit: int) -> None:
        self.limit = max(2, limit)
        self.tail = ""
        self.seen: Counter[str] = Counter()

    def feed(self, piece: str) -> str:
        """The repeated unit, as written, once one is seen `limit` times; "" until then."""
        if not piece:
            return ""
        units = _UNIT_END.split(self.tail + piece)
        self.tail = units.pop()
        for unit in units:
            words = _NOT_LETTERS.sub(" ", unit.casefold()).strip()
            if len(words) < _UNIT_MIN_CHARS:
                continue
            key = words + "".join(_CITATION.findall(unit)).replace(" ", "")
            self.seen[key] += 1
            if self.seen[key] >= self.limit:
                return " ".join(unit.split())
        return ""


def api_error_kind(exc: openai.APIError) -> ErrorKind:
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return "stalled"
    too_long = isinstance(exc, openai.APIStatusError) and exc.status_code in (400, 413)
    if too_long and _CONTEXT_EXCEEDED.search(f"{exc.message} {exc.body}"):
        return "context"
    return "api"


def api_error_describe(exc: openai.APIError) -> str:
    import openai

    if isinstance(exc, openai.APITimeoutError):
        seconds, name = read_timeout_seconds(), read_timeout_setting()
        retries = settings.OPENAI_MAX_RETRIES
        return f"timed out: no answer for {seconds:g}s ({name}; {retries} retries)"
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code} from the LLM API: {exc.message}"
    if isinstance(exc, openai.APIConnectionError):
        return f"could not reach the LLM API: {exc.__cause__ or exc}"
    return f"LLM API error: {exc}"


def validation_error_describe(exc: pydantic.ValidationError) -> str:
    errors = exc.errors()
    if any(e["type"] == "json_invalid" for e in errors):
        return "answer is not valid JSON"
    details = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}" for e in errors[:5]
    )
    return f"answer does not match the schema: {details}"
