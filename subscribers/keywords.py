"""A reader's keyword rules. The syntax, parsing, key and matching live in `digests.keywords`
(the archive's keyword feed uses them too, and `digests` never imports this app); every name is
importable from here as before."""

from __future__ import annotations

from digests.keywords import (
    NO_RULES,
    KeywordError,
    KeywordRules,
    PaperIndex,
    rules_key,
    rules_make,
    rules_of_fields,
    rules_parse,
    rules_text,
)

__all__ = [
    "NO_RULES",
    "KeywordError",
    "KeywordRules",
    "PaperIndex",
    "rules_key",
    "rules_make",
    "rules_of_fields",
    "rules_parse",
    "rules_text",
]
