"""An operator's first hour: `scripts/run.sh` and the commands it runs (run_daily's way out when
no feed answers, local_admin for `--serve`). The script itself is run only with --help and
--dry-run here: a real run sets up the virtualenv and takes minutes."""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from digests.models import DailyRun

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = "tests/fixtures/feeds/arxiv_rss2_sample.xml"


def run_script(*args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in {"PORT", "SITE_URL"}}
    return subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "run.sh"), *args],
        env={**env, **environ},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_run_sh_help_names_its_flags_and_the_offline_feed() -> None:
    done = run_script("--help")

    assert done.returncode == 0, done.stderr
    for words in ("--serve", "--dry-run", "--feed", SAMPLE, "PORT"):
        assert words in done.stdout


def test_run_sh_serve_builds_previews_makes_an_account_then_starts_the_site() -> None:
    done = run_script("--dry-run", "--serve", "--feed", SAMPLE, PORT="8123")

    assert done.returncode == 0, done.stderr
    assert re.findall(r"^==> (.*)$", done.stdout, flags=re.MULTILINE) == [
        "manage.py migrate --noinput --verbosity 0",
        f"manage.py run_daily --feed {SAMPLE}",
        "manage.py email_preview",
        "manage.py local_admin",
        "the site: http://localhost:8123/admin/ (Ctrl-C stops it)",
        "manage.py runserver 127.0.0.1:8123",
    ]


def test_run_sh_without_serve_stops_after_the_preview_and_refuses_a_bad_port() -> None:
    done = run_script("--dry-run")
    bad_port = run_script("--dry-run", PORT="eighty")

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-2:] == [
        "==> manage.py email_preview",
        "==> to open the draft in the admin: bash scripts/run.sh --serve",
    ]
    assert bad_port.returncode == 2 and "PORT must be a number" in bad_port.stderr


# --- run_daily when no feed answers ---------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.django_db
def test_when_every_feed_fails_run_daily_says_how_to_try_it_offline() -> None:
    url = f"http://127.0.0.1:{closed_port()}/"
    out = io.StringIO()

    with pytest.raises(CommandError) as failure:
        call_command("run_daily", "--feed", url, stdout=out)

    for said in (str(failure.value), out.getvalue(), DailyRun.objects.get().reasons[0]):
        assert "Every feed failed; nothing built." in said
        assert f"`bash scripts/run.sh --feed {SAMPLE}`" in said
        assert "--feed FILE_OR_URL" in said
    assert f"{url}: network error" in str(failure.value)


# --- local_admin (run.sh --serve) ---------------------------------------------------------------


@pytest.mark.django_db
def test_local_admin_prints_a_password_once_that_opens_the_admin(settings) -> None:  # type: ignore[no-untyped-def]
    settings.DEBUG = True  # as on a development machine (pytest-django turns it off)
    first, second = io.StringIO(), io.StringIO()

    call_command("local_admin", stdout=first)
    stored = get_user_model().objects.get(username="admin").password
    call_command("local_admin", stdout=second)

    password = re.search(r"Admin account: admin, password: (\S+)", first.getvalue())
    assert password is not None, first.getvalue()
    assert password.group(1) not in second.getvalue()
    assert "password is not shown again" in second.getvalue()
    assert get_user_model().objects.get(username="admin").password == stored
    client = Client()
    assert client.login(username="admin", password=password.group(1))
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_local_admin_refuses_in_production(settings) -> None:  # type: ignore[no-untyped-def]
    settings.DEBUG = False

    with pytest.raises(CommandError, match="createsuperuser"):
        call_command("local_admin")

    assert not get_user_model().objects.exists()


# --- The browser tests' skip -------------------------------------------------------------------


def test_browser_tests_without_chromium_say_how_to_install_it(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tests.browser import conftest as browser

    monkeypatch.setattr(browser, "ON_CI", False)

    with pytest.raises(pytest.skip.Exception) as skipped:
        browser.chromium_missing()

    assert "`apt-get install chromium fonts-nanum`" in str(skipped.value)
    assert "`bash .ci/run`" in str(skipped.value)
    assert "scripts/test.sh" not in str(skipped.value)
