"""The security settings (HTTPS behind a TLS proxy) from the environment: production defaults
that pass `manage.py check --deploy`, development defaults that do none of it."""

from __future__ import annotations

import secrets
import subprocess
import sys
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings

from tests.test_settings import REPO_ROOT, clean_environ, settings_read

SECURITY_SETTINGS = (
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_SSL_REDIRECT",
    "SECURE_REDIRECT_EXEMPT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
)
# What an operator sets in production (.env.example), none of the security variables among them.
PRODUCTION_ENVIRON = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "news.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://news.example.com",
    "SITE_URL": "https://news.example.com",
    "CELERY_BROKER_URL": "redis://redis.invalid:6379/0",
    "REDIS_CACHE_URL": "redis://redis.invalid:6379/1",
    "OPENAI_API_KEY": "sk-test",
    "EMAIL_BACKEND": "anymail.backends.mailgun.EmailBackend",
    "ANYMAIL_MAILGUN_API_KEY": "key-test",
    "ANYMAIL_MAILGUN_SENDER_DOMAIN": "mg.news.example.com",
    "ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY": "signing-key-test",
    "ANYMAIL_WEBHOOK_SECRET": "user:password",
}


def without_security_variables(environ: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k not in SECURITY_SETTINGS}


def production_security() -> dict[str, Any]:
    read = settings_read(**PRODUCTION_ENVIRON)
    return {name: read[name] for name in SECURITY_SETTINGS}


def test_production_defaults_pass_check_deploy_behind_a_tls_proxy(tmp_path: Any) -> None:
    environ = clean_environ(**PRODUCTION_ENVIRON, DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3")
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_ROOT,
        env=without_security_variables(environ),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_production_trusts_the_proxys_https_header_and_sends_hsts_for_a_year() -> None:
    security = production_security()

    assert security["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
    assert security["SECURE_SSL_REDIRECT"] is True
    assert security["SECURE_HSTS_SECONDS"] == 365 * 24 * 3600
    assert security["SESSION_COOKIE_SECURE"] is security["CSRF_COOKIE_SECURE"] is True


def test_development_defaults_neither_redirect_nor_send_hsts() -> None:
    read = settings_read()

    assert read["DEBUG"] is True
    assert read["SECURE_SSL_REDIRECT"] is False
    assert read["SECURE_HSTS_SECONDS"] == 0
    assert read["SECURE_PROXY_SSL_HEADER"] is None
    assert read["SESSION_COOKIE_SECURE"] is read["CSRF_COOKIE_SECURE"] is False


def test_each_security_setting_can_be_set_from_the_environment() -> None:
    read = settings_read(
        **PRODUCTION_ENVIRON,
        SECURE_SSL_REDIRECT="false",
        SECURE_HSTS_SECONDS="3600",
        SECURE_HSTS_PRELOAD="false",
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_SCHEME,https",
    )

    assert (read["SECURE_SSL_REDIRECT"], read["SECURE_HSTS_SECONDS"]) == (False, 3600)
    assert read["SECURE_HSTS_PRELOAD"] is False
    assert read["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_SCHEME", "https")
    assert settings_read(SECURE_SSL_REDIRECT="true")["SECURE_SSL_REDIRECT"] is True


def test_a_malformed_proxy_header_stops_start_up_naming_the_variable() -> None:
    with pytest.raises(ImproperlyConfigured, match="SECURE_PROXY_SSL_HEADER"):
        settings_read(SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")


@pytest.mark.django_db
def test_in_production_plain_http_is_redirected_except_the_load_balancers_healthz() -> None:
    with override_settings(**production_security()):
        health = Client().get("/healthz")
        page = Client().get("/subscribe/")
        proxied = Client().get("/subscribe/", headers={"x-forwarded-proto": "https"})

    assert health.status_code == 200
    assert page.status_code == 301 and page["Location"] == "https://testserver/subscribe/"
    assert proxied.status_code == 200
    assert proxied["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
