"""Is a text written in the language it should be? Catches what LLMs leak into Korean prose.

The sample issue and real small models show the failures: Chinese (重大한), Japanese (연구者は),
Vietnamese fused with Hangul (dân족) and plain Vietnamese (giám sát), Cyrillic words inside Korean
sentences, English fragments fused into Hangul words (모델의performance개선, 연구ing) and whole
English paragraphs under Korean headings. English technical terms (LLM, Transformer, GPT-4o),
also with a particle (LLM은, Transformer를), are normal in Korean AI writing and pass; accented
Latin words pass only when they are allowed terms, such as authors' names or paper titles.

Prose is told from a list of names or terms by its function words ("the", "of"; "les", "des";
"der", "und" ...), with a small profile for each of English, French, German, Spanish, Portuguese
and Italian: a Korean (or Japanese, Russian ...) digest flags a paragraph of any of them, and a
digest in one of them flags a report or paragraph that reads as another. Another Latin-script
digest language (Dutch, Vietnamese ...) gets the script check only: without its own profile its
prose cannot be told from theirs. Quoted titles and names (allowed terms) are not prose.

The scripts a language may use are its own (LANGUAGE_SCRIPTS): a Japanese report is written in
kana and kanji, and Hangul in it is foreign; a Korean report is written in Hangul, and kana or
Chinese characters in it are foreign; Latin is foreign to none (technical terms).

Each problem comes back with a code: "language" (letters of a script or language that does not
belong), "fused_latin" (Latin fragments inside Hangul words), "wrong_language" (the text, or a
paragraph of prose, is in another language).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property, partial
from itertools import groupby, pairwise

from django.utils.translation import gettext_noop

from .editor_text import EditorText, plural_text

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
# The names editors read (gettext_noop: translated where the admin shows a flag).
_SCRIPT_NAMES = {
    HANGUL: gettext_noop("Korean"),
    HAN: gettext_noop("Chinese"),
    KANA: gettext_noop("Japanese"),
    ASCII: gettext_noop("Latin"),
    CYRILLIC: gettext_noop("Cyrillic"),
    GREEK: gettext_noop("Greek"),
    "arabic": gettext_noop("Arabic"),
    "hebrew": gettext_noop("Hebrew"),
    "thai": gettext_noop("Thai"),
    "devanagari": gettext_noop("Devanagari"),
}
_SCRIPT_ORDER = (HAN, KANA, HANGUL, CYRILLIC, GREEK, "arabic", "hebrew", "thai", "devanagari")
_LANGUAGE_NAMES = {
    "ko": gettext_noop("Korean"),
    "en": gettext_noop("English"),
    "ja": gettext_noop("Japanese"),
    "zh": gettext_noop("Chinese"),
    "fr": gettext_noop("French"),
    "de": gettext_noop("German"),
    "es": gettext_noop("Spanish"),
    "pt": gettext_noop("Portuguese"),
    "it": gettext_noop("Italian"),
    "ru": gettext_noop("Russian"),
    "uk": gettext_noop("Ukrainian"),
    "el": gettext_noop("Greek"),
}
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


def _profile(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Prose, not a list of names or terms: words in nearly every sentence of a language (elided
# French and Italian articles as "l'", "dell'"). A word several languages share counts for each;
# the language with the most of them is the one a text reads as.
_FUNCTION_WORDS: dict[str, frozenset[str]] = {
    "en": _profile(
        "the a an of to in and or is are was were be been we our this that these those with for "
        "on by from as it its which can has have their than into also"
    ),
    "fr": _profile(
        "le la les de des du un une et est sont en dans pour par sur avec au aux que qui ce "
        "cette ces ne pas nous leur leurs ou mais il elle ils se son sa ses été être comme sans "
        "très aussi l' d' qu' n' s' c'"
    ),
    "de": _profile(
        "der die das und ist sind den dem des ein eine einen einem einer zu zur zum mit von für "
        "auf nicht sich im auch wir werden wird wurde wurden als durch bei oder dass diese "
        "dieser dieses sowie über unter nach kann können"
    ),
    "es": _profile(
        "el la los las de del un una unos unas y es son en por para con que se su sus al lo "
        "como más pero sobre entre este esta estos estas también sin ha han fue muy"
    ),
    "pt": _profile(
        "o a os as de do da dos das um uma e é são em no na nos nas por para com que se seu sua "
        "seus suas ao aos pelo pela como mais mas sobre entre este esta também sem foi muito "
        "não"
    ),
    "it": _profile(
        "il lo la gli le di del della dei degli delle un una uno e è sono per con che si non da "
        "dal dalla nel nella nei al alla alle sul come più ma anche questo questa questi tra fra "
        "l' dell' all' nell' un' sull' dall'"
    ),
}
_ALL_FUNCTION_WORDS = frozenset().union(*_FUNCTION_WORDS.values())
_LANGUAGES_OF = {
    word: tuple(code for code, words in _FUNCTION_WORDS.items() if word in words)
    for word in _ALL_FUNCTION_WORDS
}
_PROSE_MIN_WORDS = 8
_PROSE_MIN_FUNCTION_WORDS = 3


@dataclass(frozen=True)
class Word:
    text: str
    index: int
    scripts: frozenset[str]
    start: int = 0  # where it begins in the text


@dataclass(frozen=True)
class Paragraph:
    start: int
    text: str

    def holds(self, word: Word) -> bool:
        return self.start <= word.start < self.start + len(self.text)


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
    terms = list(allowed_terms)
    allowed = allowed_words(terms)
    checked = [w for w in words if w.text.casefold() not in allowed]
    name = language_name(language)
    problems = [
        LanguageProblem(
            "language",
            EditorText(
                gettext_noop("%(script)s characters in %(language)s text: %(words)s"),
                {"script": label, "language": name, "words": listing(runs)},
            ),
        )
        for label, runs in foreign_runs(words=checked, expected=expected)
    ]
    wrong, foreign = wrong_language_problem(
        text=text, language=language, words=words, allowed=allowed, terms=terms
    )
    if language == "ko":
        # A French paragraph is one problem, not also a list of its accented words.
        native = [w for w in checked if not any(p.holds(w) for p in foreign)]
        problems += korean_word_problems(words=native)
    if wrong:
        problems.append(LanguageProblem("wrong_language", wrong))
    return problems


def korean_word_problems(*, words: list[Word]) -> list[LanguageProblem]:
    problems = []
    if accented := accented_phrases(words):
        if any(map(looks_vietnamese, accented)):
            template = gettext_noop("Vietnamese words: %(words)s")
        else:
            template = gettext_noop("Accented words: %(words)s")
        message = EditorText(template, {"words": listing(accented)})
        problems.append(LanguageProblem("language", message))
    if fused := [w.text for w in words if is_fused_latin(w)]:
        message = EditorText(
            gettext_noop("English fragments fused into Korean words: %(words)s"),
            {"words": listing(unique(fused))},
        )
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
    name = _SCRIPT_NAMES.get(script)
    return EditorText(name) if name else script.capitalize()


# --- Words ------------------------------------------------------------------------------------


def words_split(text: str) -> list[Word]:
    return [
        Word(text=m.group(), index=index, scripts=scripts_of(m.group()), start=m.start())
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


def wrong_language_problem(
    *, text: str, language: str, words: list[Word], allowed: set[str], terms: Sequence[str] = ()
) -> tuple[str | None, list[Paragraph]]:
    """Mostly another language overall, or whole paragraphs of prose in another language (an
    English or French paragraph under Korean headings, a Spanish one in an English report);
    with the paragraphs that are. `terms`: the allowed terms as given (titles, names)."""
    name = language_name(language)
    checked = [w for w in words if w.text.casefold() not in allowed]
    if not checked:
        return (None if text.strip() else EditorText(gettext_noop("text is empty"))), []
    expected = LANGUAGE_SCRIPTS[language]
    reader = ProseReader(terms)
    share = sum(1 for w in checked if w.scripts & expected) / len(checked)
    whole = [Paragraph(0, text)]
    if share < 0.5:
        params = {"language": name, "share": f"{share:.0%}"}
        if other := reads_as(reader.function_words(text), language):
            template = gettext_noop(
                "text is mostly not %(language)s (%(share)s of words are %(language)s); "
                "it reads as %(other)s"
            )
            return EditorText(template, params | {"other": language_name(other)}), whole
        template = gettext_noop(
            "text is mostly not %(language)s (%(share)s of words are %(language)s)"
        )
        # In no profiled language: its words may still name it (Vietnamese).
        return EditorText(template, params), []
    if expected & LATIN:
        if language not in _FUNCTION_WORDS:
            return None, []  # no profile: its prose cannot be told from a profiled language's
        counts = reader.function_words(text)
        if other := reads_as(counts, language):
            return mostly_message(counts, language=language, other=other), whole
    # A title's "the", "of", "in" still mark prose: only its other words are terms.
    not_terms = [w for w in words if w.text.casefold() not in allowed - _ALL_FUNCTION_WORDS]
    found = [
        (paragraph, other)
        for paragraph, inside in paragraphs_with_words(text, not_terms)
        if is_prose_sized(inside, expected)
        and (other := reads_as(reader.function_words(paragraph.text), language))
    ]
    return paragraphs_message(found, name=name), [p for p, _ in found]


def is_prose_sized(words: list[Word], expected: frozenset[str]) -> bool:
    """Enough Latin words to be prose, and, in a language with its own script, more of them
    than of that script's (not Korean with English terms)."""
    latin = sum(1 for w in words if w.scripts <= LATIN)
    if latin < _PROSE_MIN_WORDS:
        return False
    return bool(expected & LATIN) or latin > sum(1 for w in words if w.scripts & expected)


@dataclass
class ProseReader:
    """Counts a text's function words, its quoted titles and names (allowed terms of more than
    one word, such as "Un modelo de lenguaje para el español") taken out: they are not prose."""

    terms: Sequence[str]

    @cached_property
    def phrases(self) -> list[str]:
        folded = (" ".join(unicodedata.normalize("NFC", t).casefold().split()) for t in self.terms)
        return [phrase for phrase in folded if " " in phrase]

    def function_words(self, text: str) -> Counter[str]:
        folded = " ".join(text.casefold().split())
        for phrase in self.phrases:
            if phrase in folded:
                folded = folded.replace(phrase, " ")
        return function_word_counts(_WORD.findall(folded))


def function_word_counts(words: Iterable[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for word in words:
        counts.update(_LANGUAGES_OF.get(function_key(word), ()))
    return counts


def function_key(word: str) -> str:
    """A folded word as the profiles list it: "l'apprentissage" is the article "l'"."""
    head, apostrophe, _ = word.replace("’", "'").partition("'")
    return head + apostrophe if apostrophe and head + apostrophe in _ALL_FUNCTION_WORDS else word


def reads_as(counts: Counter[str], language: str) -> str | None:
    """The profiled language other than `language` whose function words clearly dominate."""
    if not counts:
        return None
    other, found = counts.most_common(1)[0]
    own = counts[language]
    if other == language or found < _PROSE_MIN_FUNCTION_WORDS or found < 2 * own:
        return None
    return other


def paragraphs_with_words(text: str, words: list[Word]) -> list[tuple[Paragraph, list[Word]]]:
    """The text's paragraphs (split at blank lines), each with those of `words` inside it."""
    breaks = list(_PARAGRAPH_BREAK.finditer(text))
    starts = [0, *(m.end() for m in breaks)]
    ends = [*(m.start() for m in breaks), len(text)]
    found, i = [], 0
    for start, end in zip(starts, ends, strict=True):
        first = i
        while i < len(words) and words[i].start < end:
            i += 1
        if text[start:end].strip():
            found.append((Paragraph(start, text[start:end]), words[first:i]))
    return found


def mostly_message(counts: Counter[str], *, language: str, other: str) -> str:
    return EditorText(
        gettext_noop(
            "text is mostly not %(language)s: it reads as %(other)s (%(other_count)s %(other)s "
            "function words, %(count)s %(language)s)"
        ),
        {
            "language": language_name(language),
            "other": language_name(other),
            "other_count": counts[other],
            "count": counts[language],
        },
    )


def paragraphs_message(found: list[tuple[Paragraph, str]], *, name: str) -> str | None:
    if not found:
        return None
    count = len(found)
    codes = unique([other for _, other in found])
    first = " ".join(found[0][0].text.split())
    return plural_text(
        gettext_noop(
            "%(count)s paragraph written in %(languages)s instead of %(language)s: “%(paragraph)s”"
        ),
        gettext_noop(
            "%(count)s paragraphs written in %(languages)s instead of %(language)s: “%(paragraph)s”"
        ),
        count,
        {
            "count": count,
            "languages": names_joined([language_name(code) for code in codes]),
            "language": name,
            "paragraph": shorten(first, 80),
        },
    )


def names_joined(names: list[str]) -> str:
    """ "French and German", each name translatable."""
    if len(names) == 1:
        return names[0]
    return EditorText(
        gettext_noop("%(first)s and %(second)s"),
        {"first": names_joined(names[:-1]), "second": names[-1]},
    )


# --- Helpers ----------------------------------------------------------------------------------


def allowed_words(terms: Iterable[str]) -> set[str]:
    return {
        m.group().casefold()
        for term in terms
        for m in _WORD.finditer(unicodedata.normalize("NFC", term))
    }


def language_name(language: str) -> str:
    name = _LANGUAGE_NAMES.get(language)
    return EditorText(name) if name else language


def unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    if more > 0:
        return EditorText(
            gettext_noop("%(shown)s (+%(more)s more)"), {"shown": shown, "more": more}
        )
    return shown
