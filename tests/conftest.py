from __future__ import annotations

import os
import socket

import pytest

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
