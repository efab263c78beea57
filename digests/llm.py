"""The one module that talks to the LLM: client, cache, usage, token budget and concurrency.

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
import time
from collections import deque
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

ErrorKind = Literal["", "disabled", "budget", "api", "invalid", "refusal"]
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

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def budget_exceeded(self) -> bool:
        return self.error_kind == "budget"

    @property
    def called(self) -> bool:
        """Whether an HTTP request was made for it (not cached, not refused before sending)."""
        return not self.cached and self.error_kind not in ("disabled", "budget")


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


def llm_client_build() -> openai.OpenAI:
    """The client retries 429, 5xx and timeouts itself, with backoff (OPENAI_MAX_RETRIES)."""
    if not llm_enabled():
        raise LLMUnavailable("LLM disabled: OPENAI_API_KEY is not set")
    import openai

    return openai.OpenAI(
        api_key=settings.OPENAI_API_KEY,
        base_url=settings.OPENAI_BASE_URL or None,
        timeout=settings.OPENAI_TIMEOUT,
        max_retries=settings.OPENAI_MAX_RETRIES,
    )


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


def llm_budget_left(*, used: int) -> bool:
    budget = int(settings.LLM_DAILY_TOKEN_BUDGET)
    return budget <= 0 or used < budget  # 0 or less: no limit


def llm_budget_check() -> None:
    """Raises BudgetExceeded when today's token budget is spent."""
    used = llm_tokens_used_today()
    if not llm_budget_left(used=used):
        raise BudgetExceeded(budget_message(used=used))


def budget_message(*, used: int) -> str:
    budget = settings.LLM_DAILY_TOKEN_BUDGET
    return f"token budget hit: {used:,} of {budget:,} tokens used today (UTC)"


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
    pending = deque(misses)
    running: dict[Future[_Reply], _Pending] = {}
    outcomes: dict[int, LLMOutcome] = {}
    with client, ThreadPoolExecutor(max_workers=concurrency) as pool:
        while pending or running:
            while pending and len(running) < concurrency:
                if not llm_budget_left(used=used):
                    outcomes.update(budget_refuse(pending=pending, used=used))
                    break
                item = pending.popleft()
                running[pool.submit(completion_fetch, client, item.request, model)] = item
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                item = running.pop(future)
                reply = reply_of(future)
                used += reply.prompt_tokens + reply.completion_tokens
                outcomes[item.index] = reply_record(item=item, reply=reply, model=model)
    return outcomes


def budget_refuse(*, pending: deque[_Pending], used: int) -> dict[int, LLMOutcome]:
    message = budget_message(used=used)
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

    messages: list[Any] = [
        {"role": "system", "content": request.system},
        {"role": "user", "content": request.user},
    ]
    raw: Any
    try:
        # The raw response keeps the usage even when the answer then fails to parse.
        if request.schema is None:
            raw = client.chat.completions.with_raw_response.create(model=model, messages=messages)
        else:
            raw = client.chat.completions.with_raw_response.parse(
                model=model, messages=messages, response_format=request.schema
            )
    except openai.APIError as exc:
        return _Reply(error=api_error_describe(exc), error_kind="api")
    prompt_tokens, completion_tokens = usage_read(raw.text)
    reply = _answer_read(raw, request)
    reply.prompt_tokens, reply.completion_tokens = prompt_tokens, completion_tokens
    return reply


def _answer_read(raw: Any, request: LLMRequest) -> _Reply:
    try:
        completion = raw.parse()
    except pydantic.ValidationError as exc:
        return _Reply(error=validation_error_describe(exc), error_kind="invalid")
    except openai.LengthFinishReasonError:
        return _Reply(error="answer cut off at the token limit", error_kind="invalid")
    except openai.ContentFilterFinishReasonError:
        return _Reply(error="answer stopped by the content filter", error_kind="refusal")
    except (openai.OpenAIError, ValueError) as exc:
        return _Reply(error=f"unreadable answer: {exc}", error_kind="invalid")
    if not completion.choices:
        return _Reply(error="answer has no choices", error_kind="invalid")
    message = completion.choices[0].message
    if getattr(message, "refusal", None):
        return _Reply(error=f"model refused: {message.refusal}", error_kind="refusal")
    text = message.content or ""
    if not text.strip():
        return _Reply(error="empty answer", error_kind="invalid")
    value = getattr(message, "parsed", None) if request.schema is not None else None
    return _Reply(text=text, value=value)


def usage_read(body: str) -> tuple[int, int]:
    try:
        usage = json.loads(body).get("usage") or {}
        return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    except (ValueError, AttributeError, TypeError):
        return 0, 0


def api_error_describe(exc: openai.APIError) -> str:
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return f"timed out after {settings.OPENAI_TIMEOUT}s ({settings.OPENAI_MAX_RETRIES} retries)"
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
