from __future__ import annotations

import contextlib
import fcntl
import functools
import gc
import os
import socket
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client

from tests.admin_forms import staff_in

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


def pytest_collection_finish(session: pytest.Session) -> None:
    """The objects alive once the tests are collected (Django, the project, the test modules)
    live until the end: frozen, the garbage collector no longer scans them at every full
    collection, and collecting the young generation every 10,000 allocations (not 700) spares
    the rest. The unit group's collections cost 3 s of CPU instead of 6.6 s (of some 50)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


@pytest.fixture(scope="session", autouse=True)
def _sqlite_test_database_migrated_once(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """Under pytest-xdist each worker makes its own in-memory SQLite test database. Migrating
    one (Django's migrations and the apps' squashed ones, data and permissions included) costs
    0.8 s of CPU; the first worker to get there migrates and saves a copy (SQLite's backup API),
    the others load that copy. Only for an in-memory SQLite test database, and only within one
    run: the copy lives in the run's temporary folder, which the workers share."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        yield
        return
    from django.db.backends.sqlite3.creation import DatabaseCreation

    folder = tmp_path_factory.getbasetemp().parent
    original = DatabaseCreation.create_test_db

    def create_test_db(  # type: ignore[no-untyped-def]
        self, verbosity=1, autoclobber=False, serialize=True, keepdb=False
    ):
        test_name = self._get_test_db_name()
        if keepdb or not self.is_in_memory_db(test_name):
            return original(self, verbosity, autoclobber, serialize, keepdb)
        template = folder / f"migrated-{self.connection.alias}.sqlite3"
        with (folder / f"migrated-{self.connection.alias}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not template.exists():
                name = original(self, verbosity, autoclobber, serialize, keepdb)
                partial = template.with_suffix(".partial")
                with contextlib.closing(sqlite3.connect(partial)) as copy:
                    self.connection.connection.backup(copy)
                os.replace(partial, template)
                return name
        self.connection.close()
        django_settings.DATABASES[self.connection.alias]["NAME"] = test_name
        self.connection.settings_dict["NAME"] = test_name
        self.connection.ensure_connection()
        with contextlib.closing(sqlite3.connect(template)) as source:
            source.backup(self.connection.connection)
        if serialize:
            self.connection._test_serialized_contents = self.serialize_db_to_string()
        return test_name

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DatabaseCreation, "create_test_db", create_test_db)
        yield


@pytest.fixture(autouse=True)
def _email_to_tmp(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.EMAIL_FILE_PATH = tmp_path / "emails"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _editors_read_english(settings):  # type: ignore[no-untyped-def]
    """The tests read the admin's and the notices' English words: their editors chose English.
    tests/test_locale.py checks the admin in the default Korean and the choice of language."""
    settings.EDITOR_LANGUAGE = "en"


@pytest.fixture(scope="session", autouse=True)
def _client_tls_context_built_once() -> Iterator[None]:
    """Each `openai.OpenAI` client (one per LLM call site, 80 in the unit group) builds a fresh
    TLS context and loads the system's CA bundle into it: 25-45 ms each, although the tests only
    talk plain HTTP to local fakes. The default context is built once per session instead."""
    import httpcore2

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            httpcore2, "default_ssl_context", functools.cache(httpcore2.default_ssl_context)
        )
        yield


# --- The digest's admin pages (tests/digests/test_admin_workflow.py, tests/subscribers/...) ---


@pytest.fixture
def editor() -> Any:
    return staff_in("Editors", "ed")


@pytest.fixture
def editor_client(client: Any, editor: Any) -> Any:
    client.force_login(editor)
    return client


@pytest.fixture
def viewer_client() -> Any:
    client = Client()
    client.force_login(staff_in("Viewers", "vi"))
    return client
