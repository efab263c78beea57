"""Browser tests: Playwright (Python) driving Debian's Chromium against pytest-django's live server.

They are marked `integration` and `browser` and run in the integration group of
`bash scripts/test.sh`, on PostgreSQL, with a real Celery worker on the Redis broker: the live
server enqueues the confirmation email as in production, the worker renders it and Django's file
backend writes it to a folder, from which the test reads the link, as a reader would.

Chromium is Debian's package (/usr/bin/chromium, which .ci/run installs with fonts-nanum for
Hangul); Playwright's own browser download is not used. Locally a missing Chromium, Playwright,
PostgreSQL or Redis skips these tests; on CI (CI=true) that is a failure, as with
`require_service`.

Screenshots go to test-artifacts/screenshots/ (ignored by git): the pages the tests name, and
one for every test that fails.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import time
from collections.abc import Callable, Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis
from django.apps import apps as django_apps
from django.conf import settings
from django.db import connection

from newsletter.celery import app as celery_app
from tests.conftest import ON_CI
from tests.integration.conftest import Service, database_url_for, real_stack_required
from tests.integration.conftest import unmet as integration_unmet
from tests.processes import celery_worker_start

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
# As root in a container, without the machine's (closed) network: no sandbox, no background
# connections to Google, no GPU.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 800}
TIMEOUT_MS = 15_000


def unmet(message: str) -> None:
    integration_unmet(message, "the browser tests")


def chromium_missing() -> None:
    """No browser: say how to get one (`bash scripts/test.sh`, which skipped, installs none)."""
    message = (
        f"no Chromium at {CHROMIUM}: install it with `apt-get install chromium fonts-nanum` "
        "(fonts-nanum for Hangul), or run `bash .ci/run`, which installs both; CHROMIUM_PATH "
        "names another binary"
    )
    if ON_CI:
        pytest.fail(f"{message} (CI=true: the browser tests must run)")
    pytest.skip(message)


@pytest.fixture(scope="module", autouse=True)
def browser_preconditions() -> None:
    real_stack_required("the browser tests")
    if not CHROMIUM.exists():
        chromium_missing()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unmet("the Python package playwright is not installed (requirements-dev.txt)")


@pytest.fixture(scope="module", autouse=True)
def migration_data_restored(
    browser_preconditions: None, django_db_setup: None, django_db_blocker: Any
) -> Iterator[None]:
    """Puts back the rows of the data migrations (default categories and feed, the Editors and
    Viewers groups) after the module.

    A transactional test ends with a flush of every table, which removes them too; tests that
    run later in the session and expect the migrated database (tests/integration/
    test_build_race.py) would find no categories.
    """
    yield
    with django_db_blocker.unblock():
        defaults = importlib.import_module("digests.migrations.0002_default_categories_and_feeds")
        defaults.create_defaults(django_apps, None)
        roles = importlib.import_module("digests.migrations.0005_editor_groups")
        roles.groups_create(django_apps, None)


@pytest.fixture(scope="module")
def browser(browser_preconditions: None) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread, so Django's ORM, called from the
    # test between browser steps, would refuse to run ("cannot call this from an async
    # context"). The test is synchronous code; the live server answers in its own threads.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000
            )
            try:
                yield chromium
            finally:
                chromium.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_failed_key] = report.failed
    return report


_failed_key = pytest.StashKey[bool]()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context (no cookies) at desktop size, Korean locale."""
    context = browser.new_context(viewport=DESKTOP, locale="ko-KR")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
        if request.node.stash.get(_failed_key, False):
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
            page.screenshot(path=SCREENSHOTS / f"FAILED-{name}.png", full_page=True)
        assert not errors, f"JavaScript errors on the page: {errors}"
    finally:
        context.close()


@pytest.fixture
def screenshot() -> Callable[..., Path]:
    """screenshot(page, name, viewport=None) -> the PNG under test-artifacts/screenshots/."""

    def take(page: Page, name: str, *, viewport: dict[str, int] | None = None) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        if viewport is not None:
            page.set_viewport_size(viewport)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=path, full_page=True)
        return path

    return take


@pytest.fixture
def default_categories(db: None) -> None:
    """The categories the data migration creates. A transactional test's flush removes them."""
    defaults = importlib.import_module("digests.migrations.0002_default_categories_and_feeds")
    defaults.create_defaults(django_apps, None)


class Mailbox:
    """The folder where the worker's file email backend writes each message."""

    SEPARATOR = b"\n" + b"-" * 79 + b"\n"  # what Django's file backend writes after a message

    def __init__(self, folder: Path, worker: Service) -> None:
        self.folder = folder
        self.worker = worker

    def messages(self) -> list[EmailMessage]:
        found = []
        for path in sorted(self.folder.glob("*.log")):
            for chunk in path.read_bytes().split(self.SEPARATOR):
                if chunk.strip():
                    message = BytesParser(policy=policy.default).parsebytes(chunk)
                    assert isinstance(message, EmailMessage)
                    found.append(message)
        return found

    def wait_for(self, to: str, *, timeout: float = 60) -> EmailMessage:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.messages():
                if to.lower() in str(message["To"]).lower() and message.get_body(("plain",)):
                    return message
            time.sleep(0.25)
        pytest.fail(
            f"no email to {to} in {timeout}s in {self.folder}. Worker log:\n"
            f"{self.worker.log_tail()}"
        )


def worker_env(live_server: Any, **extra: str) -> dict[str, str]:
    """The environment of a real Celery worker on the test database, plus `extra`."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "newsletter.settings",
        "DATABASE_URL": database_url_for(connection.settings_dict["NAME"]),
        "DATABASE_CONN_MAX_AGE": "0",  # the session drops the test database at the end
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "SITE_URL": live_server.url,  # links lead to the server under test
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


@contextlib.contextmanager
def worker_running(name: str, *, env: dict[str, str], log_dir: Path) -> Iterator[Service]:
    """A real Celery worker (one process, solo pool) for a module's tests, stopped after."""
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()  # no tasks of an earlier run
    worker = celery_worker_start(name, env=env, log_dir=log_dir, pool="solo")
    try:
        yield worker
    finally:
        celery_app.control.purge()
        worker.stop()


EDITOR_PASSWORD = "a long editor passphrase"


def editor_login(page: Page, live_server: Any, next_url: str) -> None:
    """Makes the editor "editor" (Editors group) and signs in through the admin's form."""
    from django.urls import reverse

    from tests.admin_forms import staff_in

    staff_in("Editors", "editor", password=EDITOR_PASSWORD)
    page.goto(live_server.url + reverse("admin:login") + f"?next={next_url}")
    page.locator("#id_username").fill("editor")
    page.locator("#id_password").fill(EDITOR_PASSWORD)
    page.locator("input[type=submit]").click()


@pytest.fixture(scope="module")
def mailbox(
    browser_preconditions: None,
    django_db_setup: None,
    live_server: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Mailbox]:
    """A real Celery worker on the test database that sends email into a folder."""
    folder = tmp_path_factory.mktemp("browser-emails")
    logs = tmp_path_factory.mktemp("browser-services")
    env = worker_env(
        live_server,
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH=str(folder),
    )
    with worker_running("browser-celery-worker", env=env, log_dir=logs) as worker:
        yield Mailbox(folder, worker)
