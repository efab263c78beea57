from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

import pydantic
import pytest
from django.utils import timezone

from digests.classify import classify_request
from digests.llm import (
    BudgetExceeded,
    LLMRequest,
    RepeatWatch,
    call_cost_max,
    llm_budget_check,
    llm_enabled,
    llm_run,
    llm_run_many,
    llm_usage_for,
    prompt_tokens_estimate,
    tokens_estimate,
)
from digests.models import Category, LLMCacheEntry, LLMCall
from tests.digests.conftest import point_llm_at
from tests.factories import paper_create
from tests.fakes.openai_server import (
    LOOP_SENTENCE,
    FakeOpenAI,
    english_report,
    korean_report,
    prompt_tokens_of,
)

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


# --- The strict JSON schema --------------------------------------------------------------------

# What OpenAI's Structured Outputs take in strict mode (its "supported schemas" documentation).
STRICT_SUBSET = frozenset(
    {"type", "properties", "required", "additionalProperties", "items", "anyOf", "enum", "const"}
    | {"$ref", "$defs", "title", "description", "pattern", "format", "minItems", "maxItems"}
    | {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
)


def strict_mode_breaches(schema: dict[str, Any], also: frozenset[str] = frozenset()) -> list[str]:
    """Where a schema breaks strict mode's rules, as paths; [] when it keeps them all. `also`:
    keywords allowed beyond the common subset."""
    breaches = [] if schema.get("type") == "object" else ["$: the root is not an object"]
    defs = schema.get("$defs", {})

    def walk(node: dict[str, Any], path: str) -> None:
        if "$ref" in node:
            if len(node) > 1 or node["$ref"].removeprefix("#/$defs/") not in defs:
                breaches.append(f"{path}: {node}")
            return
        breaches.extend(f"{path}: {key}" for key in node if key not in STRICT_SUBSET | also)
        if node.get("type") == "object":
            if node.get("additionalProperties") is not False:
                breaches.append(f"{path}: open object")
            if node.get("required") != list(node.get("properties", {})):
                breaches.append(f"{path}: not every property required")
        children = {**node.get("properties", {}), **node.get("$defs", {})}
        children |= {f"|{n}": child for n, child in enumerate(node.get("anyOf", []))}
        if isinstance(node.get("items"), dict):
            children["[]"] = node["items"]
        for name, child in children.items():
            walk(child, f"{path}.{name}")

    walk(schema, "$")
    return breaches


def classify_sample_request() -> LLMRequest:
    papers = [paper_create(title=f"Vision transformers for robots, part {n}") for n in range(3)]
    categories = list(Category.objects.filter(active=True))
    return classify_request(papers=papers, categories=categories, digest_date=DAY)


# Every request with a schema that the project makes (`schema=` in classify.py and summarize.py).
PROJECT_SCHEMA_REQUESTS = [pytest.param(classify_sample_request, id="classification")]


@pytest.mark.parametrize("request_build", PROJECT_SCHEMA_REQUESTS)
def test_each_schema_of_the_project_reaches_the_server_in_strict_modes_rules(
    fake: FakeOpenAI, request_build: Callable[[], LLMRequest]
) -> None:
    fake.responder = None  # the fake's own answers: a classification for a classification
    request = request_build()

    outcome = llm_run(request=request)

    sent = fake.calls[0]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["strict"] is True
    assert strict_mode_breaches(sent["json_schema"]["schema"]) == []
    assert outcome.ok and isinstance(outcome.value, request.schema)


class Source(pydantic.BaseModel):
    title: str
    year: int = pydantic.Field(ge=1990, le=2100)


class Review(pydantic.BaseModel):
    verdict: Literal["accept", "reject"]
    note: str | None = None
    tags: list[str] = pydantic.Field(default_factory=list, max_length=3)
    source: Source = pydantic.Field(description="Where the claim comes from")
    confidence: float = pydantic.Field(default=0.5, ge=0, le=1)


def test_defaults_bounds_and_keywords_beside_a_ref_are_left_out_of_the_strict_schema(
    fake: FakeOpenAI,
) -> None:
    answer = {
        "verdict": "accept",
        "note": None,
        "tags": ["rl"],
        "source": {"title": "A paper", "year": 2025},
        "confidence": 0.9,
    }
    fake.responder = lambda body: json.dumps(answer)

    outcome = llm_run(request=replace(structured(), schema=Review))

    schema = fake.calls[0]["response_format"]["json_schema"]["schema"]
    assert strict_mode_breaches(schema) == []
    assert schema["properties"]["source"] == {"$ref": "#/$defs/Source"}
    sent = json.dumps(schema)
    assert '"minimum"' not in sent and '"maxItems"' not in sent  # left to pydantic
    assert outcome.value == Review.model_validate(answer)


def test_with_a_grammar_server_the_bounds_stay_in_the_strict_schema(
    fake: FakeOpenAI, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.LLM_GRAMMAR_SCHEMA = True  # llama.cpp, vLLM, Ollama: the schema becomes a grammar
    answer = {"verdict": "accept", "note": None, "tags": ["rl"], "confidence": 0.9}
    answer["source"] = {"title": "A paper", "year": 2025}
    fake.responder = lambda body: json.dumps(answer)

    outcome = llm_run(request=replace(structured(), schema=Review))

    schema = fake.calls[0]["response_format"]["json_schema"]["schema"]
    # Bounds are in OpenAI's documented strict subset too, though not in every provider's.
    assert strict_mode_breaches(schema, also=frozenset({"minimum", "maximum", "maxItems"})) == []
    sent = json.dumps(schema)
    assert '"minimum"' in sent and '"maxItems"' in sent  # the grammar keeps values in bounds
    assert '"default"' not in sent
    assert outcome.value == Review.model_validate(answer)


# --- Without streaming, and servers that do not take stream_options ----------------------------


def test_without_streaming_the_answer_comes_whole_and_the_servers_usage_is_recorded(
    fake: FakeOpenAI, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.LLM_STREAM = False

    outcome = llm_run(request=structured())

    sent = fake.calls[0]
    assert "stream" not in sent and "stream_options" not in sent
    assert outcome.ok and outcome.value == Verdict(answer="yes", score=7)
    call = LLMCall.objects.get()
    assert call.prompt_tokens == outcome.prompt_tokens == prompt_tokens_of(sent)
    assert call.completion_tokens == len(outcome.text) // 4  # the fake's count, not ours


def test_without_streaming_a_plain_answer_cut_at_max_tokens_is_marked_truncated(
    fake: FakeOpenAI, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.LLM_STREAM = False
    fake.responder = lambda body: "아주 긴 답변입니다. " * 50

    outcome = llm_run(request=replace(plain(), max_tokens=10))

    assert "stream" not in fake.calls[0]
    assert outcome.ok and outcome.truncated
    assert len(outcome.text) == 40  # 10 of the fake's 4-character tokens


def test_without_streaming_a_plain_answer_that_loops_is_still_reported_as_a_loop(
    fake: FakeOpenAI, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.LLM_STREAM = False
    settings.LLM_REPEAT_LIMIT = 4
    fake.fail_next("loop")

    outcome = llm_run(request=replace(plain(), max_tokens=400))

    assert "stream" not in fake.calls[0]
    assert outcome.error_kind == "loop" and LOOP_SENTENCE.strip()[:40] in outcome.error
    assert not LLMCacheEntry.objects.exists()


def test_without_streaming_a_call_waits_up_to_openai_timeout_for_the_whole_answer(
    fake: FakeOpenAI, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.LLM_STREAM = False
    settings.LLM_STALL_SECONDS = 0.03
    settings.OPENAI_TIMEOUT = 0.3
    settings.OPENAI_MAX_RETRIES = 0
    fake.latency = 0.1  # longer than LLM_STALL_SECONDS: no stall without a stream

    assert llm_run(request=plain()).ok
    fake.latency = 0
    fake.fail_next("timeout")
    outcome = llm_run(request=plain("Say it again."))

    assert outcome.error_kind == "stalled" and "OPENAI_TIMEOUT" in outcome.error


def test_a_server_that_rejects_stream_options_is_asked_again_without_them(
    fake: FakeOpenAI,
) -> None:
    fake.reject_stream_options = True
    request = structured()

    outcome = llm_run(request=request)

    rejected, answered = fake.calls
    assert "stream_options" in rejected and "stream_options" not in answered
    assert answered["stream"] is True
    assert outcome.ok and outcome.value == Verdict(answer="yes", score=7)
    assert outcome.prompt_tokens == prompt_tokens_estimate(request)  # no usage came
    assert LLMCall.objects.get().ok


# --- Loops with small variations ----------------------------------------------------------------


def repeats_found(text: str, *, piece: int, limit: int) -> list[str]:
    """What RepeatWatch flags when `text` streams in in pieces of `piece` characters."""
    watch = RepeatWatch(limit=limit)
    found = (watch.feed(text[i : i + piece]) for i in range(0, len(text), piece))
    return [repeated for repeated in found if repeated]


def test_sentences_that_differ_only_in_numbers_punctuation_or_case_count_as_one() -> None:
    text = (
        "Step 12: the model improves on the task. step 13 - The model improves on the task! "
        "STEP 14: the model, improves on the task. Step 15: the model improves on the task.\n"
    )

    assert repeats_found(text, piece=5, limit=4) == ["Step 15: the model improves on the task."]
    assert repeats_found(text, piece=5, limit=5) == []


def test_a_numbered_near_repeat_loop_is_cut_off_as_a_loop(fake: FakeOpenAI, settings) -> None:  # type: ignore[no-untyped-def]
    settings.LLM_REPEAT_LIMIT = 4
    loop = "".join(f"{n}단계: 모델의 성능이 {n}% 더 향상되었습니다. " for n in range(1, 2000))
    fake.fail_next(lambda body: loop)

    outcome = llm_run(request=replace(plain(), max_tokens=4000))

    assert outcome.error_kind == "loop" and "모델의 성능이 4% 더 향상되었습니다" in outcome.error
    assert 0 < outcome.completion_tokens < 1000  # cut off long before max_tokens


# A report as a good model writes one: parallel sentences, numbers, lists, [n] citations.
GOOD_KOREAN_REPORT = """\
**요약 보고서**

오늘 강화 학습 분야에서는 LLM 정렬, 로봇 제어, 오프라인 학습, 보상 설계, 다중 에이전트 협력을 \
다룬 논문 다섯 편이 발표되었습니다 [1][2][3][4][5]. 전반적으로 적은 데이터와 계산으로 안정적인 \
정책을 얻으려는 시도가 두드러집니다.

**주제별 요약**

1. **AI 피드백으로 LLM 정렬하기**

첫 번째 연구는 사람의 선호 데이터 없이 AI 피드백만으로 7B와 13B 모델을 정렬하는 방법을 \
제안합니다 [1]. 저자들은 PPO 대신 DPO를 사용해 학습 비용을 약 40% 줄였으며, MT-Bench 점수는 \
6.8에서 7.4로 올랐습니다.

2. **로봇 팔 제어의 시뮬레이션-실제 전이**

두 번째 연구는 시뮬레이션에서 학습한 정책을 실제 로봇 팔에 옮길 때 생기는 성능 저하를 \
다룹니다 [2]. 도메인 무작위화와 2단계 미세 조정을 결합해 실제 환경의 성공률을 52%에서 81%로 \
높였습니다.

3. **오프라인 강화 학습의 과대평가 문제**

오프라인 데이터셋만으로 학습하면 가치 함수가 보지 못한 행동을 과대평가하는 경향이 있습니다 [3]. \
본 논문은 불확실성에 비례하는 페널티를 더해 D4RL 벤치마크 12개 과제 중 9개에서 기존 최고 성능을 \
넘었습니다.

4. **보상 해킹을 막는 보상 모델 앙상블**

보상 모델이 하나뿐이면 정책이 그 약점을 파고드는 보상 해킹이 쉽게 일어납니다 [4]. 연구진은 서로 \
다른 시드로 학습한 5개의 보상 모델을 앙상블하여 보상 해킹 사례를 절반 이상 줄였다고 보고합니다.

5. **통신 없는 다중 에이전트 협력**

마지막 논문은 여러 에이전트가 통신 없이 협력할 때 역할을 자동으로 나누는 방법을 제시합니다 [5]. \
StarCraft II의 SMAC 환경에서 평균 승률이 기존 방법보다 8.5%p 높았습니다.

**추세와 패턴**

* 사람의 피드백을 AI 피드백이나 자동 평가로 대신하려는 연구가 늘고 있습니다 [1][4].
* 시뮬레이션과 실제 환경의 차이를 줄이는 기법이 로봇 분야의 핵심 과제로 남아 있습니다 [2].
* 불확실성을 명시적으로 다루는 방법이 오프라인 학습과 보상 모델 모두에서 효과를 보였습니다 [3, 4].
* 다중 에이전트 협력은 아직 평가 환경이 몇몇 게임에 한정되어 있다는 한계가 있습니다 [5].

**결론**

오늘의 논문들은 강화 학습을 실제 문제에 적용하기 위해 비용, 안정성, 안전성을 함께 개선하려는 \
흐름을 보여줍니다. 특히 보상 설계와 불확실성 추정은 LLM 정렬과 로봇 제어 양쪽에서 공통으로 \
중요한 주제가 되고 있습니다. 다음 단계로는 이러한 방법이 더 큰 모델과 더 다양한 환경에서도 \
유지되는지 확인하는 연구가 필요합니다.
"""


def test_a_good_korean_report_streamed_in_small_pieces_is_never_flagged() -> None:
    for piece in (1, 3, 16):
        assert repeats_found(GOOD_KOREAN_REPORT, piece=piece, limit=2) == []


def test_the_same_sentence_about_each_paper_in_turn_is_not_a_loop() -> None:
    # The fake's reports say "이 논문은 ... 보고합니다 [n]." once for each of the papers.
    for report in (korean_report("강화 학습", 8), english_report("Robotics", 8)):
        assert repeats_found(report, piece=4, limit=2) == []
