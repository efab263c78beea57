"""Keyword rules: parsed, checked, normalised, keyed and matched against a paper. A reader's
rules (`subscribers.keywords` re-exports these names) and the archive's keyword feed
(`/archive/atom.xml?q=`, `feed_rules_parse`) share them.

The syntax, one rule per line (the signup and preferences pages say the same):

- `diffusion`: the word, whole (`RL` does not match `URL`), in any letter case;
- `"graph neural network"` or `graph neural network`: the words in this order, whole, with any
  spacing between them (the quotes are optional; they keep a phrase's spaces readable);
- `transform*`: a word that starts so (`transformer`, `transformers`);
- blank lines are ignored.

A paper (title and abstract) matches a rule set's include rules when any of them is found, and
its exclude rules the same way; exclude wins over include. `rules_key` is a short digest of
the normalised rules ("" for none): readers with the same key share one rendering.

In the keyword feed's query (`?q=`) rules are separated by commas or newlines (so a rule there
cannot hold a comma) and a rule starting with `-` excludes: `diffusion, "graph neural
network", -survey`. At most KEYWORDS_MAX rules in all, FEED_QUERY_MAX_CHARS characters, and at
least one rule that includes.
"""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_left
from dataclasses import dataclass
from functools import cached_property

from django.conf import settings
from django.utils.translation import gettext as _

_SPACE = re.compile(r"\s+")


class KeywordError(ValueError):
    """What is wrong with a rule list, in words for the reader (line numbers from 1)."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


def _rule_parse(line: str, number: int) -> tuple[str, str]:
    """(the rule normalised, "") or ("", the error for that line)."""
    text = _SPACE.sub(" ", line).strip()
    if text.startswith('"') or text.endswith('"'):
        if len(text) < 2 or not (text.startswith('"') and text.endswith('"')):
            return "", _("Line %(line)s: a quotation mark is not closed.") % {"line": number}
        text = text[1:-1].strip()
        if not text:
            return "", _("Line %(line)s: the quotation marks are empty.") % {"line": number}
    if '"' in text:
        return "", _("Line %(line)s: put a quoted phrase alone on its line.") % {"line": number}
    if len(text) > settings.KEYWORD_MAX_CHARS:
        return "", _("Line %(line)s: a keyword can have at most %(max)s characters.") % {
            "line": number,
            "max": settings.KEYWORD_MAX_CHARS,
        }
    if text.strip("*") == "" or "*" in text.rstrip("*") or text.endswith("**"):
        return "", _("Line %(line)s: use * only once, at the end of a word.") % {"line": number}
    return text.casefold(), ""


def rules_parse(text: str) -> tuple[str, ...]:
    """The rules of one list (one per line), normalised (lower case, single spaces, no quotes),
    sorted, without repeats. Raises KeywordError naming every bad line."""
    rules: set[str] = set()
    errors: list[str] = []
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if len(lines) > settings.KEYWORDS_MAX:
        errors.append(
            _("At most %(max)s keywords, one per line (this list has %(count)s).")
            % {"max": settings.KEYWORDS_MAX, "count": len(lines)}
        )
    for number, line in lines:
        rule, error = _rule_parse(line, number)
        if error:
            errors.append(error)
        else:
            rules.add(rule)
    if errors:
        raise KeywordError(errors)
    return tuple(sorted(rules))


def rules_text(rules: tuple[str, ...]) -> str:
    """The normalised rules as they are stored: one per line, phrases quoted."""
    return "\n".join(f'"{rule}"' if " " in rule else rule for rule in rules)


def _pattern(rules: tuple[str, ...]) -> re.Pattern[str] | None:
    if not rules:
        return None
    parts = []
    for rule in rules:
        prefix = rule.endswith("*")
        words = rule.rstrip("*").split(" ")
        body = r"\s+".join(re.escape(word) for word in words)
        parts.append(body + (r"\w*" if prefix else ""))
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.IGNORECASE)


@dataclass(frozen=True)
class KeywordRules:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    all_categories: bool = False  # include matches also from categories not chosen

    @property
    def empty(self) -> bool:
        return not self.include and not self.exclude

    @cached_property
    def key(self) -> str:
        return rules_key(self)

    @cached_property
    def _include_pattern(self) -> re.Pattern[str] | None:
        return _pattern(self.include)

    @cached_property
    def _exclude_pattern(self) -> re.Pattern[str] | None:
        return _pattern(self.exclude)

    def includes(self, text: str) -> bool:
        pattern = self._include_pattern
        return pattern is not None and pattern.search(text) is not None

    def excludes(self, text: str) -> bool:
        pattern = self._exclude_pattern
        return pattern is not None and pattern.search(text) is not None

    def match(self, *, title: str, abstract: str) -> str:
        """ "exclude", "include" or "" for a paper; exclude wins over include."""
        text = f"{title}\n{abstract}"
        if self.excludes(text):
            return "exclude"
        return "include" if self.includes(text) else ""


NO_RULES = KeywordRules()


def rules_make(*, include: str, exclude: str, all_categories: bool) -> KeywordRules:
    """The rules of a reader's two lists (raises KeywordError); `all_categories` only counts
    with include rules."""
    included, excluded = rules_parse(include), rules_parse(exclude)
    return KeywordRules(included, excluded, bool(all_categories and included))


def rules_key(rules: KeywordRules) -> str:
    """16 hex digits naming the normalised rules; "" for none."""
    if rules.empty:
        return ""
    source = "\n".join(
        ["include", *rules.include, "exclude", *rules.exclude, f"all={rules.all_categories:d}"]
    )
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def _rules_lenient(text: str) -> tuple[str, ...]:
    rules = set()
    for number, line in enumerate(text.splitlines(), start=1):
        rule, error = _rule_parse(line, number) if line.strip() else ("", "blank")
        if not error:
            rules.add(rule)
    return tuple(sorted(rules))


def rules_of_fields(*, include: str, exclude: str, all_categories: bool) -> KeywordRules:
    """The rules as stored on a reader (checked when saved); a list that no longer parses
    (limits lowered since) keeps its good lines, so an exclude rule is never dropped for a
    neighbour's fault."""
    try:
        return rules_make(include=include, exclude=exclude, all_categories=all_categories)
    except KeywordError:
        included = _rules_lenient(include)
        return KeywordRules(included, _rules_lenient(exclude), bool(all_categories and included))


_WORD = re.compile(r"\w+")


class PaperIndex:
    """The papers of an issue (title and abstract each), indexed by word, so that thousands of
    rule sets are matched against a day's papers in milliseconds: a rule's candidates are the
    papers holding each of its words (for `word*`, any word so starting), then each candidate
    is checked with the rule's own pattern, as `KeywordRules.match` checks one paper."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self._postings: dict[str, set[int]] = {}
        for number, text in enumerate(texts):
            for word in set(_WORD.findall(text.casefold())):
                self._postings.setdefault(word, set()).add(number)
        self._vocabulary = sorted(self._postings)
        self._found: dict[str, frozenset[int]] = {}

    def _candidates(self, rule: str) -> set[int]:
        words = _WORD.findall(rule.rstrip("*"))
        if not words:
            return set(range(len(self.texts)))
        if rule.endswith("*") and _WORD.fullmatch(rule.rstrip("*")[-1:]):
            *whole, start = words
            found: set[int] = set()
            for word in self._vocabulary[bisect_left(self._vocabulary, start) :]:
                if not word.startswith(start):
                    break
                found |= self._postings[word]
        else:
            whole, found = words[1:], set(self._postings.get(words[0], ()))
        for word in whole:
            found &= self._postings.get(word, set())
        return found

    def matches(self, rule: str) -> frozenset[int]:
        """The numbers of the papers the rule matches (cached per rule)."""
        if rule not in self._found:
            pattern = _pattern((rule,))
            assert pattern is not None
            self._found[rule] = frozenset(
                n for n in self._candidates(rule) if pattern.search(self.texts[n])
            )
        return self._found[rule]

    def rules_matches(self, rules: KeywordRules) -> tuple[frozenset[int], frozenset[int]]:
        """(papers included and not excluded, papers excluded): exclude wins."""
        excluded = frozenset().union(*(self.matches(rule) for rule in rules.exclude))
        included = frozenset().union(*(self.matches(rule) for rule in rules.include))
        return included - excluded, excluded


FEED_QUERY_MAX_CHARS = 1000
_FEED_SEPARATOR = re.compile(r"[,\n]")


def feed_rules_parse(query: str) -> KeywordRules:
    """The rules of the keyword feed's `q` (see the module's docstring). Raises KeywordError."""
    if len(query) > FEED_QUERY_MAX_CHARS:
        raise KeywordError(
            [_("At most %(max)s characters of keywords.") % {"max": FEED_QUERY_MAX_CHARS}]
        )
    parts = [part.strip() for part in _FEED_SEPARATOR.split(query) if part.strip()]
    include = "\n".join(part for part in parts if not part.startswith("-"))
    exclude = "\n".join(part[1:] for part in parts if part.startswith("-"))
    if len(parts) > settings.KEYWORDS_MAX:
        raise KeywordError(
            [
                _("At most %(max)s keywords (this list has %(count)s).")
                % {"max": settings.KEYWORDS_MAX, "count": len(parts)}
            ]
        )
    rules = rules_make(include=include, exclude=exclude, all_categories=True)
    if not rules.include:
        raise KeywordError([_("Give at least one keyword to look for.")])
    return rules


def feed_query(rules: KeywordRules) -> str:
    """The normalised rules as the keyword feed's `q` (the feed's own address, its title)."""
    return ",".join([*rules.include, *(f"-{rule}" for rule in rules.exclude)])
