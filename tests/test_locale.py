"""The translation catalogues (locale/<lang>/LC_MESSAGES/django.po, .mo committed): one per offered
language, complete, the same strings in each, every string the code marks in them, and the
compiled .mo files what the .po files say. `bash scripts/messages.sh` keeps them so.

Needs GNU gettext's tools (msgfmt, msgattrib, msgcmp, xgettext, msgmerge): CI installs them
(.ci/run)."""

from __future__ import annotations

import gettext
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import ON_CI

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "locale"
LANGUAGES = [code for code, _name in settings.LANGUAGES]
# What scripts/messages.sh reads for strings: the apps, the project and the templates.
SOURCES = ["digests", "subscribers", "newsletter", "templates", "manage.py"]
MAKEMESSAGES_IGNORE = ["*/migrations/*", "*/__pycache__/*", "*/static/*"]


def gettext_tools() -> None:
    tools = ("msgfmt", "msgattrib", "msgcmp", "xgettext", "msgmerge")
    missing = [tool for tool in tools if not shutil.which(tool)]
    if missing:
        message = f"GNU gettext's {', '.join(missing)} not installed (apt-get install gettext)"
        if ON_CI:
            pytest.fail(f"{message} (CI=true: this check must not skip)")
        pytest.skip(message)


def po_path(language: str, root: Path = LOCALE) -> Path:
    return root / language / "LC_MESSAGES" / "django.po"


def entries(po: Path, *options: str) -> list[str]:
    """The msgids msgattrib selects (`options`), without the header."""
    out = subprocess.run(
        ["msgattrib", "--no-wrap", *options, str(po)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line for line in out.splitlines() if line.startswith("msgid ") and line != 'msgid ""']


def not_in(catalogue: Path, used: Path) -> list[str]:
    """The messages of `used` (translated or not) that `catalogue` lacks, as msgcmp tells them."""
    result = subprocess.run(
        ["msgcmp", "--no-fuzzy-matching", "--use-untranslated", str(catalogue), str(used)],
        capture_output=True,
        text=True,
    )
    return [line for line in result.stderr.splitlines() if "used but not defined" in line]


def messages(mo: Path) -> dict[str, str]:
    """A compiled catalogue's messages (msgctxt\\x04msgid -> msgstr), without the header."""
    with mo.open("rb") as file:
        found = dict(gettext.GNUTranslations(file)._catalog)  # type: ignore[attr-defined]
    found.pop("", None)
    return {str(key): value for key, value in found.items()}


def compiled(po: Path, tmp_path: Path) -> dict[str, str]:
    mo = tmp_path / f"{po.parent.parent.name}.mo"
    subprocess.run(["msgfmt", "--check", "-o", str(mo), str(po)], check=True)
    return messages(mo)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_offered_language_has_a_complete_catalogue(language: str) -> None:
    gettext_tools()
    po = po_path(language)
    assert po.exists(), f"{language} is offered (LANGUAGES) but has no {po}"
    assert entries(po, "--untranslated") == []
    assert entries(po, "--only-fuzzy") == []


def test_the_catalogues_hold_the_same_strings_in_every_language() -> None:
    gettext_tools()
    first, *others = LANGUAGES
    for language in others:
        assert not_in(po_path(first), po_path(language)) == [], f"only in {language}"
        assert not_in(po_path(language), po_path(first)) == [], f"missing from {language}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_committed_mo_files_are_the_po_files_compiled(language: str, tmp_path: Path) -> None:
    gettext_tools()
    po = po_path(language)
    assert messages(po.with_suffix(".mo")) == compiled(po, tmp_path)


def test_every_string_the_code_marks_is_in_the_catalogues(tmp_path: Path) -> None:
    """makemessages over a copy of the sources finds no string the catalogues lack, and the
    catalogues keep none the code no longer has."""
    gettext_tools()
    copy = tmp_path / "src"
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, copy / name)
    shutil.copytree(LOCALE, copy / "locale")
    ignore = [arg for pattern in MAKEMESSAGES_IGNORE for arg in ("-i", pattern)]
    languages = [arg for language in LANGUAGES for arg in ("-l", language)]
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    command = ["manage.py", "makemessages", *languages, "--no-obsolete", "--no-location", *ignore]
    subprocess.run(
        [sys.executable, *command],
        cwd=copy,
        env=env,
        check=True,
        capture_output=True,
    )
    for language in LANGUAGES:
        found, committed = po_path(language, copy / "locale"), po_path(language)
        assert not_in(committed, found) == [], f"marked in the code, not in {committed}"
        assert not_in(found, committed) == [], f"in {committed}, gone from the code"
