"""Is a text written in the language it should be? Catches what LLMs leak into Korean prose.

The sample issue and real small models show the failures: Chinese (重大한), Japanese (연구者は),
Vietnamese fused with Hangul (dân족) and plain Vietnamese (giám sát), Cyrillic words inside Korean
sentences, English fragments fused into Hangul words (모델의performance개선, 연구ing) and whole
English paragraphs under Korean headings. English technical terms (LLM, Transformer, GPT-4o),
also with a particle (LLM은, Transformer를), are normal in Korean AI writing and pass; accented
Latin words pass only when they are allowed terms, such as authors' names or paper titles.

Each problem comes back with a code: "language" (letters of a script or language that does not
belong), "fused_latin" (Latin fragments inside Hangul words), "wrong_language" (the text, or a
paragraph of prose, is in another language).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from itertools import groupby, pairwise

# Letters (with the combining signs of the Indic, Thai, Hebrew and Arabic blocks, which are not
# letters to Python), with inner hyphens or apostrophes; digits and punctuation split words.
_LETTER = r"(?:[^\W\d_]|[\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0900-\u0963\u0e31-\u0e4e])"
_WORD = re.compile(rf"{_LETTER}+(?:['’\-]{_LETTER}+)*")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
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
LATIN = frozenset({ASCII, LATIN_ACCENTED})
# Scripts found by the first word of a character's Unicode name; any of them is a foreign script
# wherever the language is not written in it. Other letter-like signs (µ, ℓ) are left alone.
_NAMED_SCRIPTS = frozenset(
    [
        "cyrillic",
        "greek",
        "arabic",
        "hebrew",
        "thai",
        "devanagari",
        "bengali",
        "gurmukhi",
        "gujarati",
        "oriya",
        "tamil",
        "telugu",
        "kannada",
        "malayalam",
        "sinhala",
        "lao",
        "tibetan",
        "myanmar",
        "georgian",
        "armenian",
        "ethiopic",
        "khmer",
        "mongolian",
        "syriac",
        "thaana",
    ]
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
        code: LATIN
        for code in ("en", "fr", "de", "es", "it", "pt", "nl", "sv", "da", "no", "pl", "vi", "tr")
    },
}
_CJK = "cjk"  # Chinese characters and kana in one run, when both are foreign
_SCRIPT_NAMES = {HANGUL: "Korean", HAN: "Chinese", KANA: "Japanese", ASCII: "Latin"}
_SCRIPT_ORDER = (HAN, KANA, HANGUL, CYRILLIC, GREEK, "arabic", "hebrew", "thai", "devanagari")
_LANGUAGE_NAMES = {"ko": "Korean", "en": "English", "ja": "Japanese", "zh": "Chinese"}
# Letters only Vietnamese uses among Latin-script languages, and its hook-above / dot-below tones.
_VIETNAMESE_LETTERS = frozenset("ăâđêôơưĂÂĐÊÔƠƯ")
_VIETNAMESE_MARKS = frozenset("\u0309\u0323\u031b")

# Fused Latin: a Latin piece inside a Hangul word is fine as a whole term (an acronym, a name)
# or before a particle or suffix (LLM은, codealign은, fine-tuning된); a lowercase fragment after
# Hangul (연구ing) or before a Korean noun (performance개선) is a fusion.
_SEGMENT = re.compile(r"[A-Za-z][A-Za-z'’\-]*|[\uac00-\ud7a3]+")
_PARTICLE_STARTS = frozenset(
    "은는이가을를의에와과로으도만나라란랑께보처까부들등하한할함해했된되될됨적화형식용기계류급인일임입였다며고요뿐마조밖"
)
# English prose, not a list of names: these words are in nearly every English sentence.
_ENGLISH_FUNCTION_WORDS = frozenset(
    [
        "the",
        "a",
        "an",
        "of",
        "to",
        "in",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "we",
        "our",
        "this",
        "that",
        "these",
        "those",
        "with",
        "for",
        "on",
        "by",
        "from",
        "as",
        "it",
        "its",
        "which",
        "can",
        "has",
        "have",
        "their",
        "than",
        "into",
        "also",
    ]
)
_PROSE_MIN_WORDS = 8
_PROSE_MIN_FUNCTION_WORDS = 3


@dataclass(frozen=True)
class Word:
    text: str
    index: int
    scripts: frozenset[str]


@dataclass(frozen=True)
class LanguageProblem:
    code: str
    message: str


def language_problems(*, text: str, language: str, allowed_terms: Iterable[str] = ()) -> list[str]:
    """Human-readable reasons why `text` is not clean `language`; empty when it is fine."""
    return [
        p.message
        for p in language_issues(text=text, language=language, allowed_terms=allowed_terms)
    ]


def language_issues(
    *, text: str, language: str, allowed_terms: Iterable[str] = ()
) -> list[LanguageProblem]:
    """What is wrong with the language of `text`, one problem per script or kind of fault."""
    expected = LANGUAGE_SCRIPTS.get(language)
    if expected is None:
        return []  # An unknown language code: nothing sensible to check.
    text = unicodedata.normalize("NFC", text)
    words = words_split(text)
    allowed = allowed_words(allowed_terms)
    checked = [w for w in words if w.text.casefold() not in allowed]
    name = _LANGUAGE_NAMES.get(language, language)
    problems = [
        LanguageProblem("language", f"{label} characters in {name} text: {listing(runs)}")
        for label, runs in foreign_runs(words=checked, expected=expected)
    ]
    if language == "ko":
        problems += korean_word_problems(words=checked)
    if wrong := wrong_language_problem(text=text, language=language, allowed=allowed):
        problems.append(LanguageProblem("wrong_language", wrong))
    return problems


def korean_word_problems(*, words: list[Word]) -> list[LanguageProblem]:
    problems = []
    if accented := accented_phrases(words):
        label = "Vietnamese words" if any(map(looks_vietnamese, accented)) else "Accented words"
        problems.append(LanguageProblem("language", f"{label}: {listing(accented)}"))
    if fused := [w.text for w in words if is_fused_latin(w)]:
        message = f"English fragments fused into Korean words: {listing(unique(fused))}"
        problems.append(LanguageProblem("fused_latin", message))
    return problems


# --- Foreign scripts --------------------------------------------------------------------------


def foreign_runs(*, words: list[Word], expected: frozenset[str]) -> list[tuple[str, list[str]]]:
    """(label, runs) for each script that does not belong, in a fixed order.

    Latin is never foreign (technical terms are usual in every language); Chinese characters
    next to kana are Japanese (연구者は lists 者は once, as Japanese)."""
    foreign = {s for w in words for s in w.scripts} - expected - LATIN - {OTHER}
    merge_cjk = {HAN, KANA} <= foreign
    found: dict[str, list[str]] = {}
    for word in words:
        if word.scripts & foreign:
            for script, run in script_runs(word.text, foreign=foreign, merge_cjk=merge_cjk):
                found.setdefault(script, [])
                if run not in found[script]:
                    found[script].append(run)
    order = [s for s in _SCRIPT_ORDER if s in found] + sorted(set(found) - set(_SCRIPT_ORDER))
    return [(script_label(s), found[s]) for s in order]


def script_runs(word: str, *, foreign: set[str], merge_cjk: bool) -> list[tuple[str, str]]:
    """Runs of consecutive characters of one foreign script; a lone Greek letter is a symbol."""
    runs = []
    for key, chars in groupby(word, key=partial(_run_key, merge_cjk=merge_cjk)):
        run = "".join(chars)
        script = _cjk_script(run) if key == _CJK else key
        if script in foreign and not (script == GREEK and len(run) == 1):
            runs.append((script, run))
    return runs


def _run_key(ch: str, *, merge_cjk: bool) -> str:
    script = char_script(ch)
    return _CJK if merge_cjk and script in (HAN, KANA) else script


def _cjk_script(run: str) -> str:
    return KANA if any(char_script(ch) == KANA for ch in run) else HAN


def script_label(script: str) -> str:
    return _SCRIPT_NAMES.get(script, script.capitalize())


# --- Words ------------------------------------------------------------------------------------


def words_split(text: str) -> list[Word]:
    return [
        Word(text=m.group(), index=index, scripts=scripts_of(m.group()))
        for index, m in enumerate(_WORD.finditer(text))
    ]


def scripts_of(word: str) -> frozenset[str]:
    if word.isascii():
        return frozenset({ASCII})
    return frozenset(char_script(ch) for ch in word if ch.isalpha())


def char_script(ch: str) -> str:
    cp = ord(ch)
    if cp < 0x80:
        return ASCII
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
    return _named_script(unicodedata.name(ch, ""))


def _named_script(name: str) -> str:
    first = name.split(" ", 1)[0].casefold()
    if first == "latin":
        return LATIN_ACCENTED
    return first if first in _NAMED_SCRIPTS else OTHER


def accented_phrases(words: list[Word]) -> list[str]:
    """Accented Latin words, and words fusing them with Hangul; neighbours joined: 'giám sát'."""
    flagged = [w for w in words if LATIN_ACCENTED in w.scripts]
    phrases: list[list[Word]] = []
    for word in flagged:
        previous = phrases[-1][-1] if phrases else None
        if previous is not None and _adjacent(previous, word):
            phrases[-1].append(word)
        else:
            phrases.append([word])
    return unique([" ".join(w.text for w in phrase) for phrase in phrases])


def _adjacent(left: Word, right: Word) -> bool:
    """Next to each other, and neither fused with Hangul (those are listed on their own)."""
    fused = HANGUL in left.scripts or HANGUL in right.scripts
    return not fused and right.index == left.index + 1


def looks_vietnamese(phrase: str) -> bool:
    decomposed = unicodedata.normalize("NFD", phrase)
    return any(ch in _VIETNAMESE_LETTERS for ch in phrase) or any(
        ch in _VIETNAMESE_MARKS for ch in decomposed
    )


def is_fused_latin(word: Word) -> bool:
    """A Hangul word with a Latin fragment in it that is not a whole term before a particle."""
    if word.scripts != {HANGUL, ASCII}:
        return False  # accented Latin with Hangul (dân족) is reported as a foreign word
    segments = _SEGMENT.findall(word.text)
    for left, right in pairwise(segments):
        if _is_latin(right) and not is_whole_term(right):
            return True  # 연구ing, 모델의performance
        if _is_latin(left) and not is_whole_term(left) and right[0] not in _PARTICLE_STARTS:
            return True  # performance개선
    return False


def _is_latin(segment: str) -> bool:
    return segment.isascii()


def is_whole_term(latin: str) -> bool:
    """An acronym or a name as models write them: LLM, LoRA, vLLM, Transformer, GPT."""
    return latin[0].isupper() or sum(ch.isupper() for ch in latin) >= 2


# --- The text as a whole, and its paragraphs --------------------------------------------------


def wrong_language_problem(*, text: str, language: str, allowed: set[str]) -> str | None:
    """Mostly another language overall, or whole paragraphs of English prose in a language that
    is not written in Latin letters (English paragraphs under Korean headings)."""
    name = _LANGUAGE_NAMES.get(language, language)
    words = [w for w in words_split(text) if w.text.casefold() not in allowed]
    if not words:
        return None if text.strip() else "text is empty"
    expected = LANGUAGE_SCRIPTS[language]
    share = sum(1 for w in words if w.scripts & expected) / len(words)
    if share < 0.5:
        return f"text is mostly not {name} ({share:.0%} of words are {name})"
    if expected & LATIN:
        return None
    # Titles are allowed terms, but their "the", "of", "in" still mark English prose.
    terms = allowed - _ENGLISH_FUNCTION_WORDS
    paragraphs = [p for p in _PARAGRAPH_BREAK.split(text) if is_english_prose(p, expected, terms)]
    if not paragraphs:
        return None
    count = len(paragraphs)
    first = " ".join(paragraphs[0].split())
    return (
        f"{count} paragraph{'s' if count > 1 else ''} written in English instead of {name}: "
        f"“{shorten(first, 80)}”"
    )


def is_english_prose(paragraph: str, expected: frozenset[str], allowed: set[str]) -> bool:
    words = [w for w in words_split(paragraph) if w.text.casefold() not in allowed]
    latin = [w for w in words if w.scripts <= LATIN]
    native = sum(1 for w in words if w.scripts & expected)
    if len(latin) < _PROSE_MIN_WORDS or len(latin) <= native:
        return False
    function_words = sum(1 for w in latin if w.text.casefold() in _ENGLISH_FUNCTION_WORDS)
    return function_words >= _PROSE_MIN_FUNCTION_WORDS


# --- Helpers ----------------------------------------------------------------------------------


def allowed_words(terms: Iterable[str]) -> set[str]:
    return {
        m.group().casefold()
        for term in terms
        for m in _WORD.finditer(unicodedata.normalize("NFC", term))
    }


def unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return f"{shown} (+{more} more)" if more > 0 else shown
