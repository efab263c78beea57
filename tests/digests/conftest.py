from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.openai_server import FakeOpenAI


def point_llm_at(settings, server: FakeOpenAI) -> None:  # type: ignore[no-untyped-def]
    """The real openai client, talking to the fake server over HTTP."""
    settings.OPENAI_API_KEY = "test-key"
    settings.OPENAI_BASE_URL = server.base_url
    settings.OPENAI_MAX_RETRIES = 2
    settings.OPENAI_TIMEOUT = 5.0
    settings.LLM_CONCURRENCY = 4
    settings.LLM_DAILY_TOKEN_BUDGET = 2_000_000
    settings.CLASSIFY_BATCH_SIZE = 50


@pytest.fixture
def fake(settings) -> Iterator[FakeOpenAI]:  # type: ignore[no-untyped-def]
    with FakeOpenAI() as server:
        point_llm_at(settings, server)
        yield server


@pytest.fixture
def offline(settings) -> None:  # type: ignore[no-untyped-def]
    settings.OPENAI_API_KEY = ""
