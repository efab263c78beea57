#!/usr/bin/env bash
# The translation catalogues (locale/<lang>/LC_MESSAGES/django.po and .mo), after changing a
# translatable string: `bash scripts/messages.sh`, then translate the new empty msgstr of each
# language other than English and run it again. Needs GNU gettext (Debian: apt-get install gettext).
# English is the source language: its catalogue repeats each msgid (msgen), so every offered
# language has a full catalogue. tests/test_locale.py checks the result.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/_venv.sh
source scripts/_venv.sh
venv_ensure

languages=$(python -c 'from newsletter import settings; print(" ".join(c for c, _ in settings.LANGUAGES))')
args=()
for language in $languages; do args+=(-l "$language"); done
python manage.py makemessages "${args[@]}" --no-obsolete --no-location \
    -i ".venv/*" -i "tests/*" -i "bench/*" -i "staticfiles/*" -i "media/*" -i "test-artifacts/*"
# English repeats the msgids: no fuzzy guess from msgmerge, every msgstr its msgid.
msgattrib --clear-fuzzy --empty --clear-previous -o locale/en/LC_MESSAGES/django.po \
    locale/en/LC_MESSAGES/django.po
msgen -o locale/en/LC_MESSAGES/django.po locale/en/LC_MESSAGES/django.po
for language in $languages; do
    po="locale/$language/LC_MESSAGES/django.po"
    msgfmt --check -o "${po%.po}.mo" "$po"
    untranslated=$(msgattrib --untranslated --no-wrap "$po" | grep -c '^msgid ' || true)
    fuzzy=$(msgattrib --only-fuzzy --no-wrap "$po" | grep -c '^msgid ' || true)
    # msgattrib prints the header (an empty msgid) with any entry it finds.
    echo "$language: $((untranslated > 0 ? untranslated - 1 : 0)) untranslated, $((fuzzy > 0 ? fuzzy - 1 : 0)) fuzzy"
done
