"""A build against a slow CPU server: 6 tokens per second, as a 1.5B model writes on this machine.

Each answer here takes longer than OPENAI_TIMEOUT; the build still finishes with the LLM's
classification and reports, because a streamed answer that keeps making progress is waited for
(only LLM_STALL_SECONDS without a token cuts it off). It runs in the integration group: it spends
about 25 seconds waiting on the server, on PostgreSQL as in production.
"""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import pytest

from digests.build import digest_build
from digests.models import ClassifiedBy, Digest, LLMCall, Paper, SummarySource
from tests.digests.conftest import point_llm_at
from tests.factories import paper_create
from tests.fakes.openai_server import FakeOpenAI

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

DAY = date(2026, 8, 13)
TOKENS_PER_SECOND = 6


def test_a_build_against_a_server_streaming_6_tokens_per_second_completes_with_llm_reports(
    settings: Any,
) -> None:
    paper_create(
        title="Neural machine translation for low-resource languages",
        abstract="We improve translation quality for low-resource language pairs.",
        categories=["cs.CL"],
        announced_on=DAY,
    )
    with FakeOpenAI(tokens_per_second=TOKENS_PER_SECOND) as server:
        point_llm_at(settings, server)
        settings.OPENAI_TIMEOUT = 3.0  # shorter than every answer below
        settings.LLM_STALL_SECONDS = 2.0  # a token comes every 1/6 s

        started = time.monotonic()
        report = digest_build(day=DAY)
        took = time.monotonic() - started

    digest = Digest.objects.get(date=DAY)
    sections = list(digest.sections.all())
    assert sections and {s.summary_source for s in sections} == {SummarySource.LLM}
    assert all(s.summary.strip() for s in sections)
    assert set(Paper.objects.values_list("classified_by", flat=True)) == {ClassifiedBy.LLM}
    calls = list(LLMCall.objects.filter(cached=False))
    assert calls and all(call.ok for call in calls), [call.error for call in calls]
    # Every report streamed for longer than OPENAI_TIMEOUT, at the server's pace.
    report_calls = [c for c in calls if c.purpose == LLMCall.Purpose.SUMMARIZE]
    assert report_calls
    for call in report_calls:
        assert call.duration_ms / 1000 > settings.OPENAI_TIMEOUT
        assert call.completion_tokens / (call.duration_ms / 1000) < TOKENS_PER_SECOND + 1
    assert took > settings.OPENAI_TIMEOUT
    assert report.llm_calls == len(calls)
