"""Settings read from the environment, and the system checks that guard a production setup."""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from digests.checks import check_production_settings
from newsletter.settings import env_bool, env_float, env_int, env_list

REPO_ROOT = Path(__file__).resolve().parents[1]
SETTINGS_VARIABLES = (
    "DEBUG",
    "SECRET_KEY",
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_TASK_ALWAYS_EAGER",
    "CELERY_RESULT_BACKEND",
    "REDIS_CACHE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "EMAIL_BACKEND",
    "SITE_URL",
)


def clean_environ(**overrides: str) -> dict[str, str]:
    """This process's environment without the project's own variables, plus `overrides`."""
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in SETTINGS_VARIABLES and not key.startswith("ANYMAIL_")
    }
    return {**environ, "DJANGO_SETTINGS_MODULE": "newsletter.settings", **overrides}


def django_setup(**overrides: str) -> subprocess.CompletedProcess[str]:
    """Starts Django in a fresh interpreter, as `manage.py` or gunicorn would."""
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=REPO_ROOT,
        env=clean_environ(**overrides),
        capture_output=True,
        text=True,
        timeout=60,
    )


def settings_read(**overrides: str) -> dict[str, Any]:
    """The settings module run afresh, in this process, with the given environment: what
    `DJANGO_SETTINGS_MODULE` gives a new process (settings.py reads nothing but os.environ),
    without the second of a new interpreter per case. Raises what start-up would raise."""
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(clean_environ(**overrides))
        return runpy.run_path(str(REPO_ROOT / "newsletter" / "settings.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def settings_value(name: str, **overrides: str) -> Any:
    """The value of one setting, read with the given environment."""
    return settings_read(**overrides)[name]


# --- env helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), ("Yes", True), (" on ", True), ("0", False), ("off", False)],
)
def test_env_bool_reads_the_usual_spellings(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool
) -> None:
    monkeypatch.setenv("SOME_FLAG", raw)
    assert env_bool("SOME_FLAG", not expected) is expected


def test_env_bool_uses_the_default_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOME_FLAG", raising=False)
    assert env_bool("SOME_FLAG", True) is True


def test_env_bool_rejects_a_typo_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_FLAG", "ture")
    with pytest.raises(ImproperlyConfigured, match=r"SOME_FLAG.*'ture'"):
        env_bool("SOME_FLAG", False)


def test_env_int_reads_a_number_and_rejects_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_COUNT", "42")
    assert env_int("SOME_COUNT", 1) == 42
    monkeypatch.setenv("SOME_COUNT", "")
    assert env_int("SOME_COUNT", 7) == 7
    monkeypatch.setenv("SOME_COUNT", "forty")
    with pytest.raises(ImproperlyConfigured, match="SOME_COUNT"):
        env_int("SOME_COUNT", 1)


def test_env_float_rejects_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_RATE", "2.5")
    assert env_float("SOME_RATE", 1.0) == 2.5
    monkeypatch.setenv("SOME_RATE", "fast")
    with pytest.raises(ImproperlyConfigured, match="SOME_RATE"):
        env_float("SOME_RATE", 1.0)


def test_env_list_splits_on_commas_and_drops_blanks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_HOSTS", " a.example, b.example ,,")
    assert env_list("SOME_HOSTS", ["x"]) == ["a.example", "b.example"]
    monkeypatch.delenv("SOME_HOSTS")
    assert env_list("SOME_HOSTS", ["x"]) == ["x"]


# --- start-up ------------------------------------------------------------------------------------


def test_production_without_secret_key_stops_start_up_naming_it() -> None:
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY"):
        settings_read(DEBUG="false")


def test_production_with_a_secret_key_starts() -> None:
    done = django_setup(DEBUG="false", SECRET_KEY="a-long-random-production-secret")
    assert done.returncode == 0, done.stderr


def test_a_misspelt_debug_stops_start_up_naming_it() -> None:
    with pytest.raises(ImproperlyConfigured, match="DEBUG"):
        settings_read(DEBUG="ture")


@pytest.mark.parametrize(
    ("name", "value"), [("WEEKLY_SEND_DAY", "someday"), ("WEEKLY_SEND_TIME", "9 am")]
)
def test_a_malformed_weekly_send_time_stops_start_up_naming_it(name: str, value: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=name):
        settings_read(**{name: value})


def test_the_weekly_send_time_is_read_from_the_environment() -> None:
    read = settings_read(WEEKLY_SEND_DAY="Friday", WEEKLY_SEND_TIME="18:30")
    assert (read["WEEKLY_SEND_DAY"], read["WEEKLY_SEND_TIME"]) == ("Friday", "18:30")


def test_celery_runs_tasks_eagerly_without_a_broker() -> None:
    assert settings_value("CELERY_TASK_ALWAYS_EAGER") is True


def test_celery_uses_the_broker_when_one_is_set() -> None:
    broker = "redis://127.0.0.1:6379/0"
    assert settings_value("CELERY_TASK_ALWAYS_EAGER", CELERY_BROKER_URL=broker) is False


def test_anymail_variables_become_the_anymail_setting() -> None:
    anymail = settings_value(
        "ANYMAIL",
        ANYMAIL_MAILGUN_API_KEY="key-123",
        ANYMAIL_MAILGUN_SENDER_DOMAIN="mg.example.com",
    )
    assert anymail == {"MAILGUN_API_KEY": "key-123", "MAILGUN_SENDER_DOMAIN": "mg.example.com"}


def test_an_smtp_relay_is_configured_from_the_environment() -> None:
    names = ["EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER"]
    names += ["EMAIL_HOST_PASSWORD", "EMAIL_USE_TLS", "EMAIL_USE_SSL", "EMAIL_TIMEOUT"]
    names += [
        "DELIVERY_SMTP_CONNECTIONS",
        "DELIVERY_RATE_PER_SECOND",
        "DELIVERY_PAUSE_AFTER_ERRORS",
    ]
    read = settings_read(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="email-smtp.eu-west-1.amazonaws.com",
        EMAIL_PORT="587",
        EMAIL_HOST_USER="AKIAEXAMPLE",
        EMAIL_HOST_PASSWORD="smtp-password",
        EMAIL_USE_TLS="true",
        EMAIL_TIMEOUT="20",
        DELIVERY_SMTP_CONNECTIONS="8",
        DELIVERY_RATE_PER_SECOND="14",
        DELIVERY_PAUSE_AFTER_ERRORS="100",
    )
    assert [read[name] for name in names] == [
        "django.core.mail.backends.smtp.EmailBackend",
        "email-smtp.eu-west-1.amazonaws.com",
        587,
        "AKIAEXAMPLE",
        "smtp-password",
        True,
        False,
        20,
        8,
        14,
        100,
    ]


def test_the_embedded_default_database_is_sqlite() -> None:
    assert settings_value("DATABASES")["default"]["ENGINE"] == "django.db.backends.sqlite3"


def test_env_example_lists_every_variable_settings_reads() -> None:
    source = (REPO_ROOT / "newsletter" / "settings.py").read_text(encoding="utf-8")
    read = set(re.findall(r"\benv(?:_bool|_int|_float|_list)?\(\s*\"([A-Z0-9_]+)\"", source))
    example = (REPO_ROOT / ".env.example").read_text(encoding="utf-8")
    listed = set(re.findall(r"^#?\s*([A-Z0-9_]+)=", example, flags=re.MULTILINE))
    assert read, "found no env(...) calls in settings.py"
    assert sorted(read - listed) == []


# --- system checks (digests/checks.py) ----------------------------------------------------------

PRODUCTION = {
    "DEBUG": False,
    "EMAIL_BACKEND": "anymail.backends.mailgun.EmailBackend",
    "CELERY_BROKER_URL": "redis://redis:6379/0",
    "OPENAI_API_KEY": "sk-test",
    "SITE_URL": "https://news.example.com",
}


def check_ids(**changes: Any) -> list[str]:
    with override_settings(**{**PRODUCTION, **changes}):
        return [message.id or "" for message in check_production_settings()]


def test_a_sound_production_configuration_passes_the_checks() -> None:
    assert check_ids() == []


def test_development_settings_raise_nothing_while_debug_is_on() -> None:
    changes = {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    assert (
        check_ids(DEBUG=True, CELERY_BROKER_URL="", SITE_URL="http://localhost:8000", **changes)
        == []
    )


@pytest.mark.parametrize(
    "backend",
    [
        "django.core.mail.backends.console.EmailBackend",
        "django.core.mail.backends.filebased.EmailBackend",
    ],
)
def test_a_local_email_backend_in_production_is_a_warning(backend: str) -> None:
    assert check_ids(EMAIL_BACKEND=backend) == ["digests.W001"]


def test_an_empty_broker_in_production_is_an_error() -> None:
    assert check_ids(CELERY_BROKER_URL="") == ["digests.E001"]


def test_no_openai_key_in_production_is_a_warning() -> None:
    assert check_ids(OPENAI_API_KEY="") == ["digests.W002"]


@pytest.mark.parametrize(
    "site_url", ["http://localhost:8000", "http://127.0.0.1", "http://[::1]:8000"]
)
def test_a_localhost_site_url_in_production_is_an_error(site_url: str) -> None:
    assert check_ids(SITE_URL=site_url) == ["digests.E002"]


def test_a_per_process_cache_in_production_warns_that_rate_limits_are_loose() -> None:
    from subscribers.checks import check_rate_limit_cache

    locmem = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    redis = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://redis:6379/1",
        }
    }
    with override_settings(DEBUG=False, CACHES=locmem):
        assert [m.id for m in check_rate_limit_cache()] == ["subscribers.W003"]
    with override_settings(DEBUG=False, CACHES=redis):
        assert check_rate_limit_cache() == []
    with override_settings(DEBUG=True, CACHES=locmem):
        assert check_rate_limit_cache() == []
