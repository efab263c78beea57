from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client, TestCase

from subscribers.rendering import render_caches_clear


class CommittingClient(Client):
    """A test client whose requests commit: on-commit callbacks (the email tasks) run at the end
    of each request, as they do outside the test transaction."""

    def request(self, **request: Any) -> Any:
        with TestCase.captureOnCommitCallbacks(execute=True):
            return super().request(**request)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Rate-limit counters, and the renderings each process keeps (keyed by an issue's id and
    time of change, which a new test's issue may share), must not leak from test to test."""
    cache.clear()
    render_caches_clear()
    yield
    cache.clear()
    render_caches_clear()


# Named apart from pytest-django's `client`, which other tests in this folder use as it is.
@pytest.fixture
def visitor() -> CommittingClient:
    return CommittingClient()


@pytest.fixture
def strict_visitor() -> CommittingClient:
    """Enforces CSRF as a real browser session meets it."""
    return CommittingClient(enforce_csrf_checks=True)
