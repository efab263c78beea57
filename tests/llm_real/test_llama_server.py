"""The project's LLM code against a real server: llama.cpp's llama-server with SmolLM2-135M.

The fake server (tests/fakes/openai_server.py) answers exactly what a test asks for; these tests
show what happens with a real server and a real, small model: structured answers come through the
server's grammar, `max_tokens` is honoured, usage is the server's own count, a prompt that does not
fit the server's context is refused (by us before sending, or by the server) and a batch too big
for the context is split, not sent to the rules, and what a 135M model writes in Korean is
flagged or replaced by the extractive fallback, never shipped as if it were fine.

Few and small calls: the model writes ~80 tokens/s on 2 cores.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any, Literal

import pydantic
import pytest

from digests.build import digest_build
from digests.classify import classify_request, papers_classify
from digests.llm import LLMRequest, llm_run, prompt_tokens_estimate
from digests.models import Category, ClassifiedBy, Digest, LLMCall, Paper, SummarySource
from digests.summarize import SectionInput, sections_summarize
from tests.factories import paper_create
from tests.llm_real.conftest import LLM_SERVER_CONTEXT, MODEL_NAME, LlamaServer

pytestmark = [pytest.mark.llm_real, pytest.mark.django_db]

DAY = date(2026, 8, 13)

PAPERS = [
    (
        "Sparse attention makes long-context language models cheaper",
        ["cs.CL", "cs.LG"],
        "Large language models spend most of their inference time on attention over long "
        "prompts. We propose a sparse attention scheme that keeps the few keys each query "
        "needs and skips the rest. On three long-context benchmarks it halves the cost of "
        "decoding while matching the accuracy of dense attention. The savings grow with the "
        "length of the prompt, and the scheme needs no retraining of the model. The code is "
        "public.",
    ),
    (
        "Segmenting objects in video with a streaming image backbone",
        ["cs.CV"],
        "We segment and track objects across the frames of a video with an image backbone "
        "that processes frames as a stream. A memory of past frames keeps the masks of "
        "occluded objects. The method outperforms earlier trackers on two video segmentation "
        "benchmarks and runs in real time on one GPU. We study which parts of the memory "
        "matter most and release the trained models.",
    ),
    (
        "Instruction tuning small language models with synthetic dialogues",
        ["cs.CL"],
        "We generate a million synthetic dialogues with a large language model and use them to "
        "instruction-tune models of 100 million to 1 billion parameters. The tuned models "
        "follow instructions better than models tuned on human data of the same size, and "
        "the gain is largest for the smallest models. We describe the prompts used to make the "
        "dialogues and release the data set.",
    ),
    (
        "Depth estimation from a single image with diffusion priors",
        ["cs.CV"],
        "We estimate the depth of every pixel of a single photograph with a diffusion model "
        "trained on synthetic scenes. Fine-tuned for a few hours on one GPU, it generalises "
        "to real indoor and outdoor images and sets a new state of the art on two benchmarks. "
        "The depth maps are sharp at object edges, where earlier methods blur them.",
    ),
]


def papers_create(count: int = len(PAPERS)) -> list[Paper]:
    made = []
    for n in range(count):
        title, arxiv, abstract = PAPERS[n % len(PAPERS)]
        suffix = f" (variant {n // len(PAPERS) + 1})" if n >= len(PAPERS) else ""
        made.append(
            paper_create(
                title=title + suffix, abstract=abstract, categories=arxiv, announced_on=DAY
            )
        )
    return made


def two_sections_only() -> None:
    """An editor's choice of sections, so that a day of four papers makes two reports."""
    Category.objects.exclude(slug__in=["llm", "computer-vision"]).update(active=False)


class Topic(pydantic.BaseModel):
    topic: Literal["vision", "language", "robotics"]
    importance: int = pydantic.Field(ge=1, le=10)


def topic_request(*, title: str, max_tokens: int = 60, schema: type | None = Topic) -> LLMRequest:
    return LLMRequest(
        purpose=LLMCall.Purpose.OTHER,
        digest_date=DAY,
        prompt_version="llm-real-test-1",
        system="You label research papers. Answer in JSON with the paper's topic and importance.",
        user=f"Paper title: {title}",
        schema=schema,
        max_tokens=max_tokens,
    )


def test_structured_answers_come_through_the_servers_grammar(real_llm: LlamaServer) -> None:
    outcomes = [llm_run(request=topic_request(title=title)) for title, _, _ in PAPERS[:2]]

    for outcome in outcomes:
        assert outcome.ok, outcome.error
        assert isinstance(outcome.value, Topic)
        # The grammar made from the JSON schema admits nothing else: an enum value, 1..10.
        assert outcome.value.topic in ("vision", "language", "robotics")
        assert 1 <= outcome.value.importance <= 10
        assert set(json.loads(outcome.text)) == {"topic", "importance"}


def test_max_tokens_is_honoured(real_llm: LlamaServer) -> None:
    essay = LLMRequest(
        purpose=LLMCall.Purpose.OTHER,
        digest_date=DAY,
        prompt_version="llm-real-test-1",
        system="You are a helpful assistant.",
        user="Write a long essay, at least 1,000 words, on the history of computing.",
        max_tokens=24,
    )
    plain = llm_run(request=essay)
    assert plain.ok, plain.error
    assert plain.truncated  # finish_reason "length": the server stopped at max_tokens
    assert 0 < plain.completion_tokens <= 24

    # A structured answer cut off at the limit is no answer: an error, never half a JSON value.
    cut = llm_run(request=topic_request(title=PAPERS[0][0], max_tokens=3))
    assert not cut.ok
    assert cut.error_kind == "length", cut.error
    assert cut.value is None


def test_usage_is_the_servers_count_and_is_recorded(real_llm: LlamaServer) -> None:
    request = topic_request(title=PAPERS[1][0])
    outcome = llm_run(request=request)
    assert outcome.ok, outcome.error

    call = LLMCall.objects.get(cached=False)
    assert call.ok and call.model == MODEL_NAME and call.purpose == LLMCall.Purpose.OTHER
    assert call.prompt_tokens == outcome.prompt_tokens
    assert call.completion_tokens == outcome.completion_tokens
    assert call.cost > 0 and call.duration_ms > 0
    # The prompt tokens are what the model's tokenizer counts, plus the chat template's few
    # tokens around the messages and the schema the server adds: not our own estimate.
    counted = real_llm.tokens(request.system) + real_llm.tokens(request.user)
    assert counted < call.prompt_tokens < counted + 200
    assert 0 < call.completion_tokens <= request.max_tokens
    # Our estimate, used to size prompts before sending, does not under-count this tokenizer.
    assert prompt_tokens_estimate(request) >= call.prompt_tokens

    # The same request again is served from the cache: recorded, no tokens spent.
    again = llm_run(request=request)
    assert again.cached and again.value == outcome.value
    cached = LLMCall.objects.get(cached=True)
    assert cached.prompt_tokens == cached.completion_tokens == 0


def test_the_prompt_estimate_covers_a_real_classification_batch(real_llm: LlamaServer) -> None:
    """What sizes a classification batch before sending must not under-count the real
    tokenizer, or a batch "measured to fit" would still be refused by the server."""
    categories = list(Category.objects.filter(active=True))
    request = classify_request(papers=papers_create(), categories=categories, digest_date=DAY)
    real = sum(real_llm.tokens(text) for text in (request.system, request.user))
    assert prompt_tokens_estimate(request) >= real


def test_a_prompt_over_the_context_is_refused_by_us_or_by_the_server(
    real_llm: LlamaServer,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    long_text = " ".join(abstract for _, _, abstract in PAPERS) * 24  # ~5,500 tokens
    request = LLMRequest(
        purpose=LLMCall.Purpose.OTHER,
        digest_date=DAY,
        prompt_version="llm-real-test-1",
        system="Summarise the text.",
        user=long_text,
        max_tokens=50,
    )
    assert real_llm.tokens(long_text) > LLM_SERVER_CONTEXT

    # Measured before sending: refused without a request.
    ours = llm_run(request=request)
    assert ours.error_kind == "context" and ours.refused and not ours.called

    # An operator who set LLM_CONTEXT_TOKENS too high: the server's own refusal is recognised.
    settings.LLM_CONTEXT_TOKENS = 128_000
    theirs = llm_run(request=request)
    assert theirs.called
    assert theirs.error_kind == "context", theirs.error
    assert theirs.too_big


def test_the_classification_schema_sent_bounds_the_answer(settings: Any) -> None:
    """What lets the server's grammar force a usable answer: as many items as papers
    (`maxItems`) and ids from the batch (`enum`). Without it, SmolLM2-135M never closes the list
    (it goes on inventing ids: 2608.10003, 2608.10004, ...) until max_tokens, so every batch is
    cut off and sorted by rules. (LLM_GRAMMAR_SCHEMA, which the operator of such a server sets.)"""
    settings.LLM_GRAMMAR_SCHEMA = True
    papers = [
        Paper(arxiv_id=f"2608.0000{n}", title="A paper", abstract="An abstract.") for n in (1, 2)
    ]
    for paper in papers:
        paper.categories = ["cs.LG"]
    category = Category(slug="llm", name="LLM", description="Large language models")
    request = classify_request(papers=papers, categories=[category], digest_date=None)
    assert request.schema_sent is not None
    answer = request.schema_sent["properties"]["items"]
    assert (answer["minItems"], answer["maxItems"]) == (2, 2)
    ids = [item["properties"]["id"]["enum"] for item in answer["prefixItems"]]
    assert ids == [["2608.00001"], ["2608.00002"]]


def test_classification_through_the_server(real_llm: LlamaServer) -> None:
    two_sections_only()
    papers = papers_create()

    report = papers_classify(papers=papers, digest_date=DAY)

    assert report.llm_calls >= 1
    calls = LLMCall.objects.filter(purpose=LLMCall.Purpose.CLASSIFY, cached=False)
    assert calls.exists()
    assert all(c.prompt_tokens > 0 and c.completion_tokens > 0 for c in calls)
    slugs = {"llm", "computer-vision"}
    for paper in Paper.objects.all():
        assert paper.category is not None and paper.category.slug in slugs
        assert paper.importance is not None and 1 <= paper.importance <= 10
    # Whatever the model got wrong was caught and sorted by rules, with a reason.
    by_rules = Paper.objects.filter(classified_by=ClassifiedBy.RULES).count()
    assert by_rules == 0 or report.fallback_reasons
    assert Paper.objects.filter(classified_by=ClassifiedBy.LLM).exists(), report.summary()


# Enough papers that one classification batch is over the server's 4,096 tokens of context.
BIG_DAY = 32


def classify_calls() -> list[LLMCall]:
    return list(
        LLMCall.objects.filter(purpose=LLMCall.Purpose.CLASSIFY, cached=False).order_by("pk")
    )


def test_a_batch_over_the_context_is_planned_in_parts_not_sent_to_the_rules(
    real_llm: LlamaServer,
) -> None:
    papers = papers_create(BIG_DAY)
    categories = list(Category.objects.filter(active=True))
    whole = classify_request(papers=papers, categories=categories, digest_date=DAY)
    assert real_llm.tokens(whole.system) + real_llm.tokens(whole.user) > LLM_SERVER_CONTEXT

    report = papers_classify(papers=papers, digest_date=DAY)

    calls = classify_calls()
    assert len(calls) >= 2, report.summary()
    # Sized before sending: the server refused nothing as too long.
    assert not report.splits, report.summary()
    assert all("context" not in c.error for c in calls)
    assert all(c.prompt_tokens + c.completion_tokens <= LLM_SERVER_CONTEXT for c in calls)
    assert not any("context" in r for r in report.fallback_reasons), report.summary()
    by_llm = Paper.objects.filter(classified_by=ClassifiedBy.LLM).count()
    assert by_llm >= BIG_DAY // 2, report.summary()


def test_a_batch_the_server_refuses_as_too_long_is_split_not_sent_to_the_rules(
    real_llm: LlamaServer,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.LLM_CONTEXT_TOKENS = 32_768  # set too high: one batch, which the server refuses
    papers = papers_create(BIG_DAY)

    report = papers_classify(papers=papers, digest_date=DAY)

    calls = classify_calls()
    first = calls[0]
    assert not first.ok and "context" in first.error, first.error  # the server's own 400
    assert report.splits and "context" in report.splits[0], report.summary()
    answered = [c for c in calls if c.ok]
    assert answered, report.summary()
    assert all(c.prompt_tokens <= LLM_SERVER_CONTEXT for c in answered)
    assert not any("context" in r for r in report.fallback_reasons), report.summary()
    by_llm = Paper.objects.filter(classified_by=ClassifiedBy.LLM).count()
    assert by_llm >= BIG_DAY // 2, report.summary()


def test_a_small_models_korean_is_flagged_or_replaced_never_shipped_as_fine(
    real_llm: LlamaServer,
) -> None:
    papers = papers_create()
    section = SectionInput(category=Category.objects.get(slug="llm"), papers=papers[:3])

    [summary] = sections_summarize(sections=[section], language="ko", digest_date=DAY)

    assert summary.text.strip()
    assert summary.source == "fallback" or summary.flags, summary.text
    calls = LLMCall.objects.filter(purpose=LLMCall.Purpose.SUMMARIZE, cached=False)
    assert calls.exists()  # the model was asked: this is its answer judged, not an outage
    assert all(c.completion_tokens <= 400 for c in calls)  # LLM_REPORT_MAX_TOKENS


def test_a_day_built_against_the_server(real_llm: LlamaServer) -> None:
    two_sections_only()
    papers_create()

    report = digest_build(day=DAY)

    assert report.built and report.paper_count == len(PAPERS)
    digest = Digest.objects.get(date=DAY)
    assert digest.llm_calls >= 2  # classification and at least one report
    assert digest.prompt_tokens > 0 and digest.completion_tokens > 0
    assert digest.estimated_cost > 0
    sections = list(digest.sections.all())
    assert sections
    for section in sections:
        assert section.summary.strip()
        assert section.summary_source == SummarySource.FALLBACK or section.flags, (
            f"unflagged LLM text from a 135M model:\n{section.summary}"
        )
