"""Sentences for editors that are stored (a section's flags, a run's reasons, a day's integrity)
and shown later in the editor's language.

The checks and the daily run write English: the LLM's retry prompt quotes a flag's message, the
build's output prints the reasons, and both must read the same whatever language an editor
chose. So an `EditorText` is that English sentence (a `str`, equal to it everywhere) that also
keeps the template it was made from (an English msgid marked with `gettext_noop`) and its
parameters; stored beside the English text (`text_json`), the admin shows it translated at
display time (`text_shown`). Rows stored before templates were kept show their English text.

A parameter is a value shown as it is (a number, a title, an arXiv id) or a nested `EditorText`
(a language's name, "(+3 more)"). Plurals are two templates chosen by the count when the text
is made (`plural_text`): the offered languages (ko, en, ja) need no more forms than English.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext, gettext_noop


class EditorText(str):
    """An English sentence that remembers its template and parameters."""

    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, params: Mapping[str, Any] | None = None) -> EditorText:
        values = dict(params or {})
        english = template % {k: str(v) for k, v in values.items()} if values else template
        text = super().__new__(cls, english)
        text.template = template
        text.params = values
        return text

    def as_json(self) -> dict[str, Any]:
        params = {
            key: value.as_json() if isinstance(value, EditorText) else value
            for key, value in self.params.items()
        }
        return {"template": self.template, "params": params}


def plural_text(
    singular: str, plural: str, count: int, params: Mapping[str, Any] | None = None
) -> EditorText:
    """`singular` or `plural` (both marked with gettext_noop) by `count`, as English chooses."""
    return EditorText(singular if count == 1 else plural, params)


def text_json(text: str) -> dict[str, Any] | None:
    """What to store beside the English text so it can be shown translated; None for a plain
    string (an error's own words, a feed's URL)."""
    return text.as_json() if isinstance(text, EditorText) else None


def text_shown(stored: Any, english: str = "") -> str:
    """The stored template translated into the active language with its parameters, else the
    English text (rows stored before templates were kept, or a template its catalogue breaks)."""
    if not isinstance(stored, Mapping) or not isinstance(stored.get("template"), str):
        return english
    params = stored.get("params") or {}
    if not isinstance(params, Mapping):
        return english
    shown = {key: text_shown(value, str(value)) for key, value in params.items()}
    template: str = stored["template"]
    try:
        return gettext(template) % shown if shown or "%(" in template else gettext(template)
    except (KeyError, ValueError, TypeError):
        return english


def joined(texts: list[str]) -> str:
    """ "a; b; c", each part kept translatable."""
    if len(texts) <= 1:
        return texts[0] if texts else ""
    return EditorText(
        gettext_noop("%(first)s; %(second)s"), {"first": joined(texts[:-1]), "second": texts[-1]}
    )


INDENT = "  %(line)s"  # not a sentence: no msgid


def indent(text: str) -> str:
    """A line of the build's output under its heading line."""
    return EditorText(INDENT, {"line": text})


def unindent(line: str) -> str:
    """The line without its indent (a run's reason), its template kept."""
    if isinstance(line, EditorText) and line.template == INDENT:
        found: str = line.params["line"]
        return found
    return line.strip()


def texts_shown(english: Any, stored: Any) -> list[str]:
    """Stored English texts, each shown through its stored template (same order) if it has one."""
    texts = list(english or [])
    templates = list(stored or [])
    templates += [None] * (len(texts) - len(templates))
    return [text_shown(t, str(e)) for e, t in zip(texts, templates, strict=False)]
