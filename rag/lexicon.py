"""Is a word ordinary English? A question naming something neither the corpus nor the language knows is
naming a thing (``zstd``, ``kopia``), which a corpus that never mentions it cannot be about.

How common a word is in English comes from `wordfreq` (word frequencies over Wikipedia, subtitles, news,
books and the web; a Zipf value is log10 of occurrences per billion words: "the" is 7.7, "headcount" 2.4,
"nginx" 2.2, "zram" 0). A word is ordinary when it is at least `RARE`, or is made from a common word the
way English makes words: an affix ("overclocked", British "normalise"), two words run together
("passwordless", "subfolder", "keybinding"), or a typo of an English word ("chaneg"). What is left is a
name, a product, a command or jargon no dictionary would list; `rag.answer.question` asks the corpus
about it.

Example:
    >>> [w for w in ("headcount", "passwordless", "chaneg", "zstd", "kopia") if not ordinary(w)]
    ['zstd', 'kopia']
"""

from __future__ import annotations

import functools
import re

from rag.text import one_edit

# Zipf frequency under which a word is rare in English: ~0.2 occurrences per million words. Chosen on the
# development batches' questions (every word they use that their corpus lacks); "headcount" (2.4) stays ordinary.
RARE = 2.3
COMMON = 3.0  # a word this frequent is one everybody knows: each part of a compound must be one
_PREFIXES = ("un", "non", "re", "pre", "de", "dis", "mis", "over", "under", "sub", "super", "multi", "inter", "auto")
_SUFFIXES = (  # ending, what the word it comes from ends with instead
    ("iest", "y"),
    ("ier", "y"),
    ("ness", ""),
    ("less", ""),
    ("ly", ""),
    ("ed", ""),
    ("ed", "e"),
    ("ing", ""),
    ("ing", "e"),
    ("es", ""),
    ("s", ""),
    ("er", ""),
    ("est", ""),
    ("able", ""),
    ("ise", "ize"),
    ("ised", "ized"),
    ("isation", "ization"),
    ("ization", "ize"),
)


@functools.lru_cache(maxsize=65536)
def zipf(word: str) -> float:
    """How common ``word`` is in English (log10 per billion words; 0 when never seen)."""
    from wordfreq import zipf_frequency  # its word list loads on first use (~0.2 s), only when needed

    return zipf_frequency(word, "en")


def _derived(word: str, bar: float) -> bool:
    """``word`` is a word of at least ``bar`` with a prefix or an ending added."""
    for prefix in _PREFIXES:
        if word.startswith(prefix) and len(word) - len(prefix) >= 4 and zipf(word[len(prefix) :]) >= bar:
            return True
    for ending, base in _SUFFIXES:
        stem = word[: -len(ending)]
        if word.endswith(ending) and len(stem) >= 3 and zipf(stem + base) >= bar:
            return True
    return False


def _compound(word: str) -> bool:
    """``word`` is two common words run together ("passwordless" is "password" + "less")."""
    return any(
        zipf(word[:i]) >= COMMON and (zipf(word[i:]) >= COMMON or _derived(word[i:], COMMON))
        for i in range(3, len(word) - 2)
    )


def ordinary(word: str, name_like: bool = False) -> bool:
    """Is ``word`` (letters only) ordinary English, or made from ordinary English? See the module's doc.
    With ``name_like`` (a word written with a capital inside a sentence) neither two words run together nor
    a word one letter from an English one counts: "Nextcloud" and "Dropbox" are products' names where
    "passwordless" is a word, and "Bazel" or "Splunk" is a name, not a typo of "basel" or "plunk"."""
    word = word.lower()
    if zipf(word) >= RARE or _derived(word, RARE):
        return True
    if name_like:
        return False
    return _compound(word) or (len(word) >= 5 and any(zipf(v) >= RARE for v in one_edit(word)))  # or a typo


# British and American spellings of the same word, one systematic difference each way: colour / color,
# initialise / initialize, analyse / analyze, licence / license, centre / center, catalogue / catalog,
# labelled / labeled. Hong Kong writes British English; most software documentation is American.
_VARIANTS = [
    (re.compile(pattern), replacement)
    for pattern, replacement in [
        (r"our(?=(s|ed|ing|ite|ites|able|ful|less)?$)", "or"),
        (r"(?<=[^aeiou])or(?=(s|ed|ing|ite|ites|able|ful|less)?$)", "our"),
        (r"is(?=(e|es|ed|ing|er|ers|ation|ations)$)", "iz"),
        (r"iz(?=(e|es|ed|ing|er|ers|ation|ations)$)", "is"),
        (r"ys(?=(e|es|ed|ing)$)", "yz"),
        (r"yz(?=(e|es|ed|ing)$)", "ys"),
        (r"ence(?=s?$)", "ense"),
        (r"ense(?=s?$)", "ence"),
        (r"(?<=[^aeiou])tre(?=s?$)", "ter"),
        (r"(?<=[^aeiou])ter(?=s?$)", "tre"),
        (r"ogue(?=s?$)", "og"),
        (r"og(?=s?$)", "ogue"),
        (r"(?<=[aeiou])ll(?=(ed|ing|er|ers)$)", "l"),
        (r"(?<=[aeiou])l(?=(ed|ing|er|ers)$)", "ll"),
    ]
]


def spelling_variants(word: str) -> list[str]:
    """The other side's spelling of ``word`` (lower case), British for American and American for British:
    each systematic difference applied once. Not every result is a word ("motor" -> "motour"): callers keep
    one only where a corpus uses it.

    Example:
        >>> spelling_variants("colour"), spelling_variants("initialised"), spelling_variants("licence")
        (['color'], ['initialized'], ['license'])
    """
    out = []
    for pattern, replacement in _VARIANTS:
        variant = pattern.sub(replacement, word, count=1)
        if variant != word and variant not in out:
            out.append(variant)
    return out
