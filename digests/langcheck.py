"""Is a text written in the language it should be? Catches what LLMs leak into Korean prose.

The sample issue shows the failure: Chinese (重大한), Vietnamese fused with Hangul (dân족) and plain
Vietnamese (giám sát) inside Korean sentences. English technical terms (LLM, Transformer, GPT-4o)
are normal in Korean AI writing and pass; accented Latin words pass only when they are allowed
terms, such as authors' names or paper titles.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

# Letters, with inner hyphens or apostrophes; digits and punctuation split words.
_WORD = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*")
_MAX_LISTED = 8

HANGUL, HAN, KANA, ASCII, LATIN_ACCENTED, CYRILLIC, GREEK, OTHER = (
    "hangul",
    "han",
    "kana",
    "ascii",
    "latin-accented",
    "cyrillic",
    "greek",
    "other",
)

# Which script the majority of words must be in, per language code.
LANGUAGE_SCRIPTS: dict[str, frozenset[str]] = {
    "ko": frozenset({HANGUL}),
    "ja": frozenset({KANA, HAN}),
    "zh": frozenset({HAN}),
    "ru": frozenset({CYRILLIC}),
    "uk": frozenset({CYRILLIC}),
    "el": frozenset({GREEK}),
    **{
        code: frozenset({ASCII, LATIN_ACCENTED})
        for code in ("en", "fr", "de", "es", "it", "pt", "nl", "sv", "da", "no", "pl", "vi", "tr")
    },
}
_SCRIPT_NAMES = {
    HANGUL: "Korean",
    HAN: "Chinese",
    KANA: "Japanese",
    CYRILLIC: "Cyrillic",
    GREEK: "Greek",
    ASCII: "Latin",
    LATIN_ACCENTED: "Latin",
}
_LANGUAGE_NAMES = {"ko": "Korean", "en": "English", "ja": "Japanese", "zh": "Chinese"}
# Letters only Vietnamese uses among Latin-script languages, and its hook-above / dot-below tones.
_VIETNAMESE_LETTERS = frozenset("ăâđêôơưĂÂĐÊÔƠƯ")
_VIETNAMESE_MARKS = frozenset("\u0309\u0323\u031b")
# Letters that never belong in any Latin-script text: the CJK scripts.
_CJK = frozenset({HANGUL, HAN, KANA})


@dataclass(frozen=True)
class Word:
    text: str
    index: int
    scripts: frozenset[str]


def language_problems(*, text: str, language: str, allowed_terms: Iterable[str] = ()) -> list[str]:
    """Human-readable reasons why `text` is not clean `language`; empty when it is fine."""
    words = words_split(unicodedata.normalize("NFC", text))
    allowed = allowed_words(allowed_terms)
    if language == "ko":
        return korean_problems(words=words, allowed=allowed)
    return script_problems(words=words, language=language, allowed=allowed)


def korean_problems(*, words: list[Word], allowed: set[str]) -> list[str]:
    problems = []
    if han := runs_of(words, HAN):
        problems.append(f"Chinese characters in Korean text: {listing(han)}")
    if kana := runs_of(words, KANA):
        problems.append(f"Japanese characters in Korean text: {listing(kana)}")
    if accented := accented_phrases(words=words, allowed=allowed):
        label = "Vietnamese words" if any(map(looks_vietnamese, accented)) else "Accented words"
        problems.append(f"{label}: {listing(accented)}")
    if majority := majority_problem(words=words, language="ko", allowed=allowed):
        problems.append(majority)
    return problems


def script_problems(*, words: list[Word], language: str, allowed: set[str]) -> list[str]:
    expected = LANGUAGE_SCRIPTS.get(language)
    if expected is None:
        return []  # An unknown language code: nothing sensible to check.
    problems = []
    name = _LANGUAGE_NAMES.get(language, language)
    for script in sorted(foreign_scripts(expected)):
        if runs := runs_of(words, script):
            problems.append(f"{_SCRIPT_NAMES[script]} characters in {name} text: {listing(runs)}")
    if majority := majority_problem(words=words, language=language, allowed=allowed):
        problems.append(majority)
    return problems


def foreign_scripts(expected: frozenset[str]) -> set[str]:
    """Scripts that are an error, not just a minority, in a language written in `expected`."""
    if expected & {ASCII, LATIN_ACCENTED}:
        return set(_CJK)
    if expected == {HANGUL}:
        return {HAN, KANA}
    if expected == {HAN}:
        return {HANGUL, KANA}
    if expected == {KANA, HAN}:
        return {HANGUL}
    return set(_CJK)


def majority_problem(*, words: list[Word], language: str, allowed: set[str]) -> str | None:
    """Most words must be in the language's script; allowed terms (titles, names) do not count."""
    expected = LANGUAGE_SCRIPTS[language]
    counted = [w for w in words if w.text.casefold() not in allowed]
    if not counted:
        return None if words else "text is empty"
    native = sum(1 for w in counted if w.scripts & expected)
    share = native / len(counted)
    if share >= 0.5:
        return None
    name = _LANGUAGE_NAMES.get(language, language)
    return f"text is mostly not {name} ({share:.0%} of words are {name})"


def words_split(text: str) -> list[Word]:
    return [
        Word(text=m.group(), index=index, scripts=scripts_of(m.group()))
        for index, m in enumerate(_WORD.finditer(text))
    ]


def scripts_of(word: str) -> frozenset[str]:
    return frozenset(char_script(ch) for ch in word if ch.isalpha())


def char_script(ch: str) -> str:
    cp = ord(ch)
    if 0xAC00 <= cp <= 0xD7A3 or 0x1100 <= cp <= 0x11FF or 0x3130 <= cp <= 0x318F:
        return HANGUL
    if 0xA960 <= cp <= 0xA97F or 0xD7B0 <= cp <= 0xD7FF:
        return HANGUL
    if 0x3040 <= cp <= 0x30FF or 0x31F0 <= cp <= 0x31FF or 0xFF66 <= cp <= 0xFF9F:
        return KANA
    if 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0xF900 <= cp <= 0xFAFF:
        return HAN
    if 0x20000 <= cp <= 0x2FFFF:
        return HAN
    if ch.isascii():
        return ASCII
    return _named_script(unicodedata.name(ch, ""))


def _named_script(name: str) -> str:
    for prefix, script in (("LATIN", LATIN_ACCENTED), ("CYRILLIC", CYRILLIC), ("GREEK", GREEK)):
        if name.startswith(prefix):
            return script
    return OTHER


def runs_of(words: list[Word], script: str) -> list[str]:
    """Unique runs of consecutive characters of `script`, in order of appearance."""
    runs: list[str] = []
    for word in words:
        if script not in word.scripts:
            continue
        for run in re.findall(_run_pattern(script), word.text):
            if run not in runs:
                runs.append(run)
    return runs


def _run_pattern(script: str) -> str:
    return "(?:" + "|".join(_script_classes(script)) + ")+"


def _script_classes(script: str) -> list[str]:
    ranges = {
        HAN: [r"[\u4e00-\u9fff\u3400-\u4dbf\uf900-\ufaff]", r"[\U00020000-\U0002ffff]"],
        KANA: [r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]"],
        HANGUL: [r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\ud7b0-\ud7ff]"],
        CYRILLIC: [r"[\u0400-\u04ff]"],
        GREEK: [r"[\u0370-\u03ff]"],
    }
    return ranges[script]


def accented_phrases(*, words: list[Word], allowed: set[str]) -> list[str]:
    """Accented Latin words, and words fusing them with Hangul; neighbours joined: 'giám sát'."""
    flagged = [w for w in words if LATIN_ACCENTED in w.scripts and w.text.casefold() not in allowed]
    phrases: list[list[Word]] = []
    for word in flagged:
        previous = phrases[-1][-1] if phrases else None
        if previous is not None and _adjacent(previous, word):
            phrases[-1].append(word)
        else:
            phrases.append([word])
    texts = [" ".join(w.text for w in phrase) for phrase in phrases]
    return list(dict.fromkeys(texts))


def _adjacent(left: Word, right: Word) -> bool:
    """Next to each other, and neither fused with Hangul (those are listed on their own)."""
    fused = HANGUL in left.scripts or HANGUL in right.scripts
    return not fused and right.index == left.index + 1


def looks_vietnamese(phrase: str) -> bool:
    decomposed = unicodedata.normalize("NFD", phrase)
    return any(ch in _VIETNAMESE_LETTERS for ch in phrase) or any(
        ch in _VIETNAMESE_MARKS for ch in decomposed
    )


def allowed_words(terms: Iterable[str]) -> set[str]:
    return {
        m.group().casefold()
        for term in terms
        for m in _WORD.finditer(unicodedata.normalize("NFC", term))
    }


def listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return f"{shown} (+{more} more)" if more > 0 else shown
