from __future__ import annotations

import functools
import os
import socket
import sys
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest

from tests.fakes import esp_server

ON_CI = os.environ.get("CI", "").lower() == "true"


def service_reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip a test whose service is absent, except on CI, where that is a failure."""
    if service_reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if ON_CI:
        pytest.fail(f"{message} (CI=true: a test that needs a service must not skip)")
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _email_to_tmp(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.EMAIL_FILE_PATH = tmp_path / "emails"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


class _QuickShutdownHTTPServer(ThreadingHTTPServer):
    """`serve_forever` polls for `shutdown()` every 20 ms instead of the standard 500 ms."""

    def serve_forever(self, poll_interval: float = 0.02) -> None:
        super().serve_forever(poll_interval)


@pytest.fixture(scope="session", autouse=True)
def _fake_esp_stops_quickly() -> Iterator[None]:
    """FakeESP serves with the standard library's 0.5 s shutdown poll, so stopping it (every test
    that uses one) took half a second. Until tests/fakes/esp_server.py passes `poll_interval`
    itself, as the fake OpenAI server does, its server class is swapped for one that polls
    every 20 ms. Nothing else about the server changes."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(esp_server, "ThreadingHTTPServer", _QuickShutdownHTTPServer)
        yield


@pytest.fixture(scope="session", autouse=True)
def _client_tls_context_built_once() -> Iterator[None]:
    """Each `openai.OpenAI` client (one per LLM call site, 80 in the unit group) builds a fresh
    TLS context and loads the system's CA bundle into it: 25-45 ms each, although the tests only
    talk plain HTTP to local fakes. The default context is built once per session instead."""
    try:
        import httpcore2 as httpcore
    except ImportError:  # pragma: no cover - the openai client on plain httpx/httpcore
        try:
            import httpcore  # type: ignore[no-redef]
        except ImportError:
            yield
            return
    original = getattr(httpcore, "default_ssl_context", None)
    if original is None:
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(httpcore, "default_ssl_context", functools.cache(original))
        yield


@pytest.fixture(scope="session", autouse=True)
def _charts_drawn_once_per_session() -> Iterator[None]:
    """Drawing a chart (matplotlib layout and PNG encoding) is the costliest deterministic step
    in the unit group, and many tests draw the same chart (same bars, title and subtitle): 83
    draws, 32 different. The app's modules get a chart_render that draws each distinct chart
    once per session and returns the same PNG bytes after that. tests/digests/test_chart.py keeps
    the real function (it imports it itself), so drawing and recolouring stay tested as they
    are; a test that patches chart_render in a module still replaces this one."""
    from digests import chart

    original = chart.chart_render
    drawn: dict[tuple[object, ...], bytes] = {}

    @functools.wraps(original)
    def chart_render(*, bars, title, subtitle=""):  # type: ignore[no-untyped-def]
        key = (tuple(bars), title, subtitle)
        png = drawn.get(key)
        if png is None:
            png = drawn[key] = original(bars=bars, title=title, subtitle=subtitle)
        return png

    with pytest.MonkeyPatch.context() as patch:
        for name, module in list(sys.modules.items()):
            if name.split(".")[0] in {"digests", "subscribers"} and name != "digests.chart":
                if getattr(module, "chart_render", None) is original:
                    patch.setattr(module, "chart_render", chart_render)
        yield
