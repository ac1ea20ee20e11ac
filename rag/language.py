"""Which language a text is written in, as far as rag's rules need to know, and Chinese script folding.

rag's text rules (stemming, stop words, question words, follow-up rewriting, name detection) are English.
Before one runs, the text's language is checked so that no English rule fires on Chinese, German or
Spanish text: ``language`` tells Chinese (``"zh"``, any run of Han characters dominating the letters),
English (``"en"``) and another language written in Latin letters (``"other"``, told by its most common
function words, which English never uses).

Simplified and Traditional Chinese are one language with two scripts; ``simplified`` folds Traditional
characters into Simplified ones (OpenCC's ``t2s``) so that keyword search and comparisons meet across them.

Example:
    >>> language("HashKey的保險額度是多少？"), language("How many staff?"), language("Wie viele Mitarbeiter?")
    ('zh', 'en', 'other')
    >>> simplified("軟體套件")
    '软体套件'
"""

from __future__ import annotations

import functools
import re
from typing import Literal

Language = Literal["en", "zh", "other"]

HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # Han characters (both Chinese scripts), as a class body
_HAN = re.compile(f"[{HAN}]")
_LATIN_WORD = re.compile(r"[A-Za-zÀ-ÿ]+")
# Frequent function words of German, French, Spanish, Italian, Portuguese and Dutch that are not English
# words: one of them among a text's first words marks it as not English.
_OTHER_WORDS = frozenset(
    "der das und ist nicht wie viele welche warum wer wo wann wieso mit ein eine einen auf für ich sie wir "
    "le la les des est une avec pour pourquoi quand quel quelle combien qui où dans sur "
    "el los las del es una con por qué cuál cuándo cuántos cuántas dónde cómo quién para está "
    "il di che della perché quanti sono "
    "os não é um uma quantos onde porque "
    "het een niet waarom wat welke zijn".split()
)

_ENGLISH_WORDS = frozenset(
    "the a an and or of to in on at for with is are was were be been do does did how what which who why "
    "when where can could should would will i you we it this that these those my your there their not".split()
)


def han_share(text: str) -> float:
    """Share of Han characters among the text's letters (Han and Latin): 0 for English, ~1 for Chinese."""
    han = len(_HAN.findall(text))
    latin = sum(len(w) for w in _LATIN_WORD.findall(text))
    # A Han character carries about a word; a Latin word about five letters.
    return han / (han + latin / 5) if han or latin else 0.0


def language(text: str) -> Language:
    """``"zh"`` when Han characters carry most of the text, else ``"other"`` when a Latin-script text uses
    more function words of another European language than of English, else ``"en"``."""
    if han_share(text) >= 0.5:
        return "zh"
    words = [w.lower() for w in _LATIN_WORD.findall(text)]
    other = sum(w in _OTHER_WORDS for w in words)
    return "other" if other and other > sum(w in _ENGLISH_WORDS for w in words) else "en"


def is_english(text: str) -> bool:
    return language(text) == "en"


@functools.lru_cache(maxsize=1)
def _converter():
    import opencc

    return opencc.OpenCC("t2s")


@functools.lru_cache(maxsize=100_000)
def simplified(text: str) -> str:
    """Traditional Chinese characters folded into Simplified ones; other text unchanged."""
    return _converter().convert(text) if _HAN.search(text) else text


def is_traditional(text: str) -> bool:
    """True when the text has Han characters that Simplified Chinese writes differently."""
    return bool(_HAN.search(text)) and simplified(text) != text
