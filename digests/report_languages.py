"""Which languages an issue's reports are written in.

The first of DIGEST_LANGUAGES always (DigestSection.summary); each other offered language only
when a reader uses it (SectionReport). Readers are the audience app's, which this app does not
know: `subscribers` registers a function that names the languages its active readers use, the
way it extends this app's admin. Without one registered, only the first language is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.conf import settings

ReadersLanguages = Callable[[], Iterable[str]]

_readers_languages: list[ReadersLanguages] = []


def readers_languages_register(source: ReadersLanguages) -> None:
    """`source` names the languages active readers use (called at every build)."""
    if source not in _readers_languages:
        _readers_languages.append(source)


def extra_languages() -> list[str]:
    """The offered languages after the first, in the order DIGEST_LANGUAGES gives them."""
    first = settings.DIGEST_LANGUAGE
    return [code for code in dict.fromkeys(settings.DIGEST_LANGUAGES) if code != first]


def report_languages() -> list[str]:
    """The languages a build writes beyond the first: offered and read by someone active."""
    offered = extra_languages()
    if not offered:
        return []
    read = {code for source in _readers_languages for code in source()}
    return [code for code in offered if code in read]
