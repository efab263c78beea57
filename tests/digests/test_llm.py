from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pydantic
import pytest
from django.utils import timezone

from digests.llm import (
    BudgetExceeded,
    LLMRequest,
    call_cost_max,
    llm_budget_check,
    llm_enabled,
    llm_run,
    llm_run_many,
    llm_usage_for,
    prompt_tokens_estimate,
    tokens_estimate,
)
from digests.models import LLMCacheEntry, LLMCall
from tests.digests.conftest import point_llm_at
from tests.fakes.openai_server import LOOP_SENTENCE, FakeOpenAI

pytestmark = pytest.mark.django_db

DAY = date(2026, 8, 13)


class Verdict(pydantic.BaseModel):
    answer: str
    score: int


@pytest.fixture
def fake(settings) -> Iterator[FakeOpenAI]:  # type: ignore[no-untyped-def]
    with FakeOpenAI(responder=lambda body: json.dumps({"answer": "yes", "score": 7})) as server:
        point_llm_at(settings, server)
        yield server


def structured(user: str = "Is this fine?", version: str = "test-v1") -> LLMRequest:
    return LLMRequest(
        purpose=LLMCall.Purpose.OTHER,
        digest_date=DAY,
        prompt_version=version,
        system="Answer as JSON.",
        user=user,
        schema=Verdict,
    )


def plain(user: str = "Say hello.") -> LLMRequest:
    return LLMRequest(
        purpose=LLMCall.Purpose.OTHER,
        digest_date=DAY,
        prompt_version="test-v1",
        system="Be brief.",
        user=user,
    )


def test_a_structured_request_sends_a_strict_json_schema_and_parses_the_answer(
    fake: FakeOpenAI,
) -> None:
    outcome = llm_run(request=structured())

    assert outcome.ok and not outcome.cached
    assert outcome.value == Verdict(answer="yes", score=7)
    sent = fake.calls[0]
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["strict"] is True
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]


def test_a_plain_request_returns_the_text(fake: FakeOpenAI) -> None:
    fake.responder = lambda body: "안녕하세요"

    outcome = llm_run(request=plain())

    assert outcome.ok and outcome.text == "안녕하세요" and outcome.value is None
    assert "response_format" not in fake.calls[0]


def test_a_429_is_retried_by_the_client_and_then_succeeds(fake: FakeOpenAI) -> None:
    fake.fail_next("429")

    outcome = llm_run(request=structured())

    assert outcome.ok
    assert len(fake.calls) == 2
    assert LLMCall.objects.get().ok


def test_server_errors_beyond_the_client_retries_become_an_error_outcome(
    fake: FakeOpenAI, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.OPENAI_MAX_RETRIES = 1
    fake.fail_next("500", "500")

    outcome = llm_run(request=structured())

    assert not outcome.ok and outcome.error_kind == "api"
    assert "HTTP 500" in outcome.error
    assert len(fake.calls) == 2
    call = LLMCall.objects.get()
    assert not call.ok and "HTTP 500" in call.error


def test_a_timeout_becomes_an_error_outcome(fake: FakeOpenAI, settings) -> None:  # type: ignore[no-untyped-def]
    settings.LLM_STALL_SECONDS = 0.2
    settings.OPENAI_MAX_RETRIES = 0
    fake.fail_next("timeout")

    outcome = llm_run(request=structured())

    assert not outcome.ok and "timed out" in outcome.error


def test_invalid_json_is_an_error_outcome_and_its_tokens_are_still_counted(
    fake: FakeOpenAI,
) -> None:
    fake.fail_next("invalid_json")

    outcome = llm_run(request=structured())

    assert outcome.error_kind == "invalid"
    assert outcome.error == "answer is not valid JSON"
    call = LLMCall.objects.get()
    assert not call.ok and call.prompt_tokens > 0 and call.completion_tokens > 0
    assert not LLMCacheEntry.objects.exists()


def test_an_answer_that_does_not_fit_the_schema_is_an_error_outcome(fake: FakeOpenAI) -> None:
    fake.fail_next(lambda body: json.dumps({"answer": "yes"}))

    outcome = llm_run(request=structured())

    assert outcome.error_kind == "invalid"
    assert "does not match the schema" in outcome.error and "score" in outcome.error


def test_a_refusal_is_an_error_outcome(fake: FakeOpenAI) -> None:
    fake.fail_next("refusal")

    outcome = llm_run(request=structured())

    assert outcome.error_kind == "refusal" and "refused" in outcome.error


def test_a_second_identical_run_is_served_from_the_cache_without_http_calls(
    fake: FakeOpenAI,
) -> None:
    first = llm_run_many(requests=[structured("a"), structured("b")])
    second = llm_run_many(requests=[structured("a"), structured("b")])

    assert len(fake.calls) == 2
    assert [o.cached for o in first] == [False, False]
    assert [o.cached for o in second] == [True, True]
    assert [o.value for o in second] == [o.value for o in first]
    assert llm_usage_for(digest_date=DAY).calls == 2
    assert LLMCall.objects.filter(cached=True, prompt_tokens=0).count() == 2


def test_a_new_prompt_version_misses_the_cache(fake: FakeOpenAI) -> None:
    llm_run(request=structured(version="v1"))
    llm_run(request=structured(version="v2"))

    assert len(fake.calls) == 2


def test_usage_is_recorded_per_digest_date_and_costed_from_the_prices(
    fake: FakeOpenAI, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.LLM_PRICE_INPUT_PER_MTOK = 1.0
    settings.LLM_PRICE_OUTPUT_PER_MTOK = 2.0

    outcomes = llm_run_many(requests=[structured("a"), structured("b"), plain()])

    usage = llm_usage_for(digest_date=DAY)
    assert usage.calls == 3
    assert usage.prompt_tokens == sum(o.prompt_tokens for o in outcomes) > 0
    assert usage.completion_tokens == sum(o.completion_tokens for o in outcomes) > 0
    expected = (Decimal(usage.prompt_tokens) + 2 * Decimal(usage.completion_tokens)) / 10**6
    assert usage.cost == expected.quantize(Decimal("0.000001"))
    assert llm_usage_for(digest_date=DAY + timedelta(days=1)).calls == 0


def test_when_todays_budget_is_spent_no_http_call_is_made(fake: FakeOpenAI, settings) -> None:  # type: ignore[no-untyped-def]
    settings.LLM_DAILY_TOKEN_BUDGET = 1000
    LLMCall.objects.create(purpose="other", model="m", prompt_tokens=900, completion_tokens=100)

    outcomes = llm_run_many(requests=[structured("a"), structured("b")])

    assert fake.calls == []
    assert all(o.budget_exceeded for o in outcomes)
    assert "token budget hit" in outcomes[0].error
    with pytest.raises(BudgetExceeded):
        llm_budget_check()


def test_the_budget_stops_a_batch_part_way(fake: FakeOpenAI, settings) -> None:  # type: ignore[no-untyped-def]
    settings.LLM_DAILY_TOKEN_BUDGET = call_cost_max(structured("a"))  # room for one call
    settings.LLM_CONCURRENCY = 1

    outcomes = llm_run_many(requests=[structured("a"), structured("b"), structured("c")])

    assert len(fake.calls) == 1
    assert [o.ok for o in outcomes] == [True, False, False]
    assert [o.budget_exceeded for o in outcomes] == [False, True, True]


def test_yesterdays_calls_do_not_count_against_todays_budget(fake: FakeOpenAI, settings) -> None:  # type: ignore[no-untyped-def]
    settings.LLM_DAILY_TOKEN_BUDGET = 5000
    LLMCall.objects.create(purpose="other", model="m", prompt_tokens=50_000)
    LLMCall.objects.update(created_at=timezone.now() - timedelta(days=1))

    assert llm_run(request=structured()).ok
    llm_budget_check()


def test_without_a_key_nothing_is_called_and_every_outcome_says_why(
    fake: FakeOpenAI, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.OPENAI_API_KEY = ""

    outcomes = llm_run_many(requests=[structured("a"), plain()])

    assert not llm_enabled()
    assert fake.calls == []
    assert {o.error_kind for o in outcomes} == {"disabled"}
    assert "OPENAI_API_KEY" in outcomes[0].error
    assert not LLMCall.objects.exists()


def test_http_calls_run_concurrently_but_never_more_than_the_limit(
    fake: FakeOpenAI, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.LLM_CONCURRENCY = 3
    fake.latency = 0.05

    outcomes = llm_run_many(requests=[structured(str(n)) for n in range(9)])

    assert all(o.ok for o in outcomes)
    assert len(fake.calls) == 9
    assert fake.max_in_flight == 3
    assert LLMCall.objects.count() == 9


def test_outcomes_come_back_in_the_order_of_the_requests(fake: FakeOpenAI) -> None:
    fake.responder = lambda body: body["messages"][1]["content"].upper()

    outcomes = llm_run_many(requests=[plain(f"word {n}") for n in range(6)])

    assert [o.text for o in outcomes] == [f"WORD {n}" for n in range(6)]


# --- Bounded calls (issue 10) -----------------------------------------------------------------


def test_the_token_estimate_counts_a_token_per_hangul_and_per_three_ascii_characters() -> None:
    assert tokens_estimate("가나다") == 3
    assert tokens_estimate("a" * 30) == 10
    assert tokens_estimate("요약 report") == 2 + 3  # "요약" + " report" (7 ASCII -> 3)


def test_every_request_streams_with_max_tokens_and_its_usage_is_recorded(
    fake: FakeOpenAI,
) -> None:
    outcome = llm_run(request=replace(structured(), max_tokens=300))

    sent = fake.calls[0]
    assert sent["max_tokens"] == 300 and sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    call = LLMCall.objects.get()
    assert outcome.ok and call.prompt_tokens == outcome.prompt_tokens > 0
    assert call.completion_tokens == outcome.completion_tokens > 0


def test_without_usage_from_the_server_the_tokens_are_estimated(fake: FakeOpenAI) -> None:
    fake.send_usage = False
    request = structured()

    outcome = llm_run(request=request)

    assert outcome.prompt_tokens == prompt_tokens_estimate(request)
    assert outcome.completion_tokens == tokens_estimate(outcome.text)


def test_a_prompt_that_cannot_fit_the_context_is_refused_without_a_call(
    fake: FakeOpenAI, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.LLM_CONTEXT_TOKENS = 1000

    outcome = llm_run(request=replace(structured("long " * 900), max_tokens=100))

    assert fake.calls == [] and not outcome.called
    assert outcome.error_kind == "context" and outcome.too_big
    assert "LLM_CONTEXT_TOKENS" in outcome.error


def test_a_context_exceeded_answer_from_the_server_is_told_apart(fake: FakeOpenAI) -> None:
    fake.fail_next("context")

    outcome = llm_run(request=structured())

    assert outcome.error_kind == "context" and outcome.too_big and outcome.called
    assert "exceeds the available context size" in outcome.error


def test_a_slow_server_that_keeps_streaming_is_waited_for(fake: FakeOpenAI, settings) -> None:  # type: ignore[no-untyped-def]
    settings.OPENAI_TIMEOUT = 0.2
    settings.LLM_STALL_SECONDS = 0.3
    fake.tokens_per_second = 25
    fake.responder = lambda body: "천천히 그러나 꾸준히 답합니다. " * 2  # 36 chars: 9 tokens

    started = time.monotonic()
    outcome = llm_run(request=plain())

    assert outcome.ok and outcome.text.startswith("천천히")
    assert time.monotonic() - started > 0.4  # longer than both the timeout and the stall time


def test_an_answer_that_stops_making_progress_is_cut_off_as_stalled(
    fake: FakeOpenAI, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.LLM_STALL_SECONDS = 0.3
    fake.stall_sleep = 3.0
    fake.fail_next("stall")

    started = time.monotonic()
    outcome = llm_run(request=plain())

    assert time.monotonic() - started < 1.5
    assert outcome.error_kind == "stalled" and "LLM_STALL_SECONDS" in outcome.error
    assert LLMCall.objects.get().ok is False


def test_an_answer_that_repeats_itself_is_cut_off_and_its_tokens_counted(
    fake: FakeOpenAI, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.LLM_REPEAT_LIMIT = 4
    fake.fail_next("loop")

    outcome = llm_run(request=replace(plain(), max_tokens=4000))

    assert outcome.error_kind == "loop" and LOOP_SENTENCE.strip()[:40] in outcome.error
    assert 0 < outcome.completion_tokens < 1000  # cut off long before max_tokens


def test_a_plain_answer_cut_off_at_max_tokens_is_marked_truncated(fake: FakeOpenAI) -> None:
    fake.fail_next("length")

    outcome = llm_run(request=plain())

    assert outcome.ok and outcome.truncated


def test_the_budget_refuses_a_call_that_may_cost_more_than_is_left(
    fake: FakeOpenAI, settings
) -> None:  # type: ignore[no-untyped-def]
    request = structured()
    settings.LLM_DAILY_TOKEN_BUDGET = call_cost_max(request) - 1

    outcome = llm_run(request=request)

    assert fake.calls == [] and outcome.budget_exceeded
    assert "may cost up to" in outcome.error
