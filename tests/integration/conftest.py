"""The integration group: PostgreSQL, Redis, a real Celery worker and a fake OpenAI server.

`bash scripts/test.sh` runs this group with DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL
(Redis db 15) set. The worker and the fake OpenAI server are separate processes, started once
per module. The worker uses the test session's database (pytest-django's `test_<name>`), so tests
here use `django_db(transaction=True)`: the worker only sees committed rows.

Locally a missing service or setting skips the group; on CI (CI=true) it fails.
"""

from __future__ import annotations

import importlib
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from celery.exceptions import TimeoutError as TaskTimeout
from celery.result import AsyncResult
from django.apps import apps as django_apps
from django.conf import settings
from django.db import connection

from newsletter.celery import app as celery_app
from tests.conftest import ON_CI, require_service
from tests.processes import Service, celery_worker_start, service_start

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE_FEED = REPO_ROOT / "tests" / "fixtures" / "feeds" / "arxiv_rss2_sample.xml"
# The worker stores task results here, so a test can wait for a task and see its exception.
RESULT_BACKEND_URL = "redis://127.0.0.1:6379/14"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def unmet(message: str, group: str = "the integration group") -> None:
    """A precondition is missing: skip locally, fail on CI."""
    if ON_CI:
        pytest.fail(f"{message} (CI=true: {group} must run)")
    pytest.skip(f"{message}; run `bash scripts/test.sh`")


def real_stack_required(group: str) -> None:
    """PostgreSQL, and a local Redis broker that a real worker reads (tasks not eager)."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    require_service("Redis", "127.0.0.1", 6379)
    engine = settings.DATABASES["default"]["ENGINE"]
    if engine != "django.db.backends.postgresql":
        unmet(f"PostgreSQL (DATABASE_URL) is required for {group}, not {engine}", group)
    broker = urlsplit(settings.CELERY_BROKER_URL)
    if broker.scheme != "redis" or broker.hostname not in LOCAL_HOSTS:
        unmet(f"a local Redis broker is required for {group}, not {broker}", group)
    if settings.CELERY_TASK_ALWAYS_EAGER:
        unmet("CELERY_TASK_ALWAYS_EAGER is on: tasks would not reach the worker", group)


@pytest.fixture(scope="module", autouse=True)
def integration_services() -> None:
    real_stack_required("the integration group")


@pytest.fixture
def default_categories(db: None) -> None:
    """The categories the data migration creates. A transactional test's flush removes them."""
    defaults = importlib.import_module("digests.migrations.0002_default_categories_and_feeds")
    defaults.create_defaults(django_apps, None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def service_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="module")
def fake_openai(service_logs: Path) -> Iterator[str]:
    """The fake OpenAI-compatible server (tests/fakes/openai_server.py); yields its base URL."""
    port = free_port()
    server = service_start(
        "fake-openai",
        [sys.executable, "-m", "tests.fakes.openai_server", "--port", str(port), "--latency", "0"],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        log_dir=service_logs,
    )
    try:
        found = server.wait_for_log(r"https?://\S+", timeout=30)
        base_url = found.group(0).rstrip(".,")
        yield base_url
    finally:
        server.stop(timeout=5)


def database_url_for(name: str) -> str:
    """DATABASE_URL of this session, pointing at the database the session really uses."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="module")
def service_env(
    integration_services: None,
    django_db_setup: None,
    fake_openai: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str]:
    """The environment for processes that must share this session's database and broker."""
    var = tmp_path_factory.mktemp("var")
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "newsletter.settings",
        "DATABASE_URL": database_url_for(connection.settings_dict["NAME"]),
        # No pooled connections left open: the session drops the test database at the end.
        "DATABASE_CONN_MAX_AGE": "0",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CELERY_RESULT_BACKEND": RESULT_BACKEND_URL,
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": fake_openai,
        "EMAIL_FILE_PATH": str(var / "emails"),
        "MEDIA_ROOT": str(var / "media"),
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture(scope="module")
def celery_worker(service_env: dict[str, str], service_logs: Path) -> Iterator[Service]:
    """A real Celery worker (prefork, 2 processes) on the Redis broker, stopped after the module."""
    for url in (settings.CELERY_BROKER_URL, RESULT_BACKEND_URL):
        redis.Redis.from_url(url).flushdb()  # no tasks or results left from an earlier run
    worker = celery_worker_start("celery-worker", env=service_env, log_dir=service_logs)
    try:
        yield worker
    finally:
        celery_app.control.purge()
        worker.stop()


@pytest.fixture
def task_wait(celery_worker: Service) -> Callable[..., Any]:
    """Waits for a task the worker runs and returns its result (re-raising its exception)."""
    from celery.backends.redis import RedisBackend

    backend = RedisBackend(app=celery_app, url=RESULT_BACKEND_URL)

    def wait(sent: AsyncResult, timeout: float = 120) -> Any:
        result = AsyncResult(sent.id, backend=backend, app=celery_app)
        try:
            return result.get(timeout=timeout, propagate=True, disable_sync_subtasks=False)
        except TaskTimeout:
            log = celery_worker.log_tail()
            pytest.fail(f"task {sent.id} not done in {timeout}s. Worker log:\n{log}")

    return wait


def wait_until(
    condition: Callable[[], bool], *, timeout: float, what: str, log: Callable[[], str]
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    pytest.fail(f"{what} did not happen in {timeout}s. Logs:\n{log()}")


def run_at_once(work: Callable[[], Any], times: int = 2) -> tuple[list[Any], list[BaseException]]:
    """Runs `work` in `times` threads released together, each on its own database connection;
    returns what they returned and what they raised."""
    barrier = threading.Barrier(times)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(work())
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors
