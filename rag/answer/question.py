"""What a question asks for: the words an answer must be about, the kind of answer, the names it mentions.

The extractive answerer has no reading-comprehension model (none ships in a registry package that runs
offline here), so it reads a question the way classic question-answering systems did:

* **terms**: the question's content words, stemmed, without stop words and without the words people use
  to *phrase* a question ("according to", "describe", "roughly", "kind of"). Those phrasing words rarely
  appear in the answer, and counting them made every paraphrased question look unanswered.
* **expected kind**: "when"/"what year" wants a date, "how many"/"what share" a quantity, "what price"/"in
  dollars" an amount of money, "which version"/"since which release" a version number, "who"/"which
  company" a name, "what is X?"/"what does X mean?" a definition ("X is …").
* **names**: capitalised words and identifiers in the question (``SFC``, ``WireGuard``, ``missing_ok``).
  An identifier-like one the documents never mention at all means they are not about it: rag says so
  instead of quoting a sentence about something else.

The kind is a soft signal for the reader (`rag.answer.reader`), which weighs it with everything else.

Example:
    >>> q = Question.parse("In which year was HashKey Group set up?")
    >>> q.kind, sorted(q.terms), q.names
    ('year', ['group', 'hash', 'hashkey', 'key', 'set', 'up', 'year'], ['HashKey', 'Group'])
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import cached_property

from rag.language import language, simplified
from rag.lexicon import RARE, ordinary, spelling_variants, zipf
from rag.text import one_edit, tokenize

# Function words and question phrasing, beyond the keyword index's short stop list. Matched as the words
# written, not as stems: "quite" stems to "quit", "several" to "sever", "currently" to "current", "exactly" to
# "exact", and the question's own "quit", "severity", "current" or "exact" must stay ("quite" and "several"
# are stop words of `rag.text.tokenize`, so not listed here). "kind" and "sort" are phrasing only before "of"
# ("what kind of", "sort of"); "How do I sort a list?" asks about sorting.
_PHRASING_WORDS = (
    "about above again against all almost also although am among any anyone anything around "
    "because been being were both each else ever every few further here however just "
    "many more most much must nor now off once other others ourselves out own per "
    "rather same shall some still those though through too upon very "
    "whether while whose yet "
    "according approximately roughly exactly basically actually really currently "
    "describe describes described describing mention mentioned mentions mentioning say says said saying "
    "tell tells told telling way ways thing things take takes took taken taking make makes made making "
    "get gets got getting give gives gave given giving put puts putting go goes went going"
).split()
_PHRASING = re.compile(
    r"(?<![\w\-./])(?:" + "|".join(_PHRASING_WORDS) + r"|(?:kinds?|sorts?)\s+of)(?![\w\-/]|\.\w)", re.I
)


# The kind of answer a question wants, first match wins ("When ..., how many bytes ...?" wants a quantity).
_KINDS: list[tuple[str, re.Pattern]] = [
    (kind, re.compile("|".join(alternatives), re.I))
    for kind, alternatives in [
        (
            "money",
            [
                r"\b(price|prices|revenue|revenues|income|worth|valuation|salary|fees?)\b",
                r"\b(dollars?|usd|euros?)\b",
                # "cost" is money when asked how much something costs; "the default bcrypt cost" is a setting.
                r"\bhow much\b[^?]*\bcosts?\b|\bcosts?\s+(of|to)\b|\bcosts?\s*\?",
            ],
        ),
        ("year", [r"\b(what|which) year\b", r"\bwhen (was|were) .{0,60}\b(founded|established|born|created)\b"]),
        (
            "quantity",
            [
                r"\bhow (many|much|long|old|often|big|large|far|fast)\b",
                r"\bby (how much|what factor|what percentage)\b",
                r"\b(what|which) (percentage|proportion|share|number|amount|size|rate|factor)\b",
            ],
        ),
        # "Which release dropped it?", "since which kernel version", "what minimum Python version": a version.
        ("version", [r"\b(what|which)\s+((is|are|was|were)\s+the\s+)?(\w+\s+){0,2}(version|release)s?\b"]),
        # "What is the maximum length of …", "which buffer size": a quantity (after "version": "the minimum
        # compiler version" is a version).
        (
            "quantity",
            [
                r"\b(what|which)\s+((is|are|was|were)\s+the\s+)?(\w+\s+){0,2}"
                r"(percentage|proportion|share|number|amount|size|length|limit|maximum|minimum|port|timeout|interval|"
                r"delay|depth|capacity|duration)s?\b"
            ],
        ),
        ("date", [r"^\s*(when|since when)\b", r"\b(what|which) (month|date|day)\b"]),
        ("name", [r"^\s*who\b", r"\b(which|what)\s+(\w+\s+){0,2}(company|companies|city|country|firm|person)\b"]),
    ]
]
# The same kinds asked in Chinese (Simplified; a Traditional question is folded first). English patterns
# never run on a Chinese question and these never on an English one.
_KINDS_ZH: list[tuple[str, re.Pattern]] = [
    ("money", re.compile(r"多少钱|价格|价钱|费用|成本|收入|估值|薪")),
    ("year", re.compile(r"哪一?年|何年|年份")),
    ("quantity", re.compile(r"多少|几[个位次天年种]?|多[大长久高快远]|百分之|比例")),
    ("version", re.compile(r"(哪|什么|哪一)个?(版本|发行版|发布)")),
    ("date", re.compile(r"什么时候|何时|哪一?天|几月|日期")),
    ("name", re.compile(r"谁|哪家|哪个公司|哪个人")),
]
# "What is RainerScript?", "What are hard links?", "What does fsync mean?": a term to define, when no kind above
# matched ("What is the maximum size?" wants a quantity). Its definition reads "<the term> is/are/means …".
# "What is the turnover rate?" and "What is HashKey's coverage?" ask for a value of something, and "What is
# X about/for?" for a summary or a purpose: no definitions.
_DEFINE = re.compile(
    r"^\s*(?:what\s+(?:is|are)\s+(?:an?\s+)?(?!the\s)(?P<term>[^?]{1,60}?)|what\s+does\s+(?P<word>[^?]{1,60}?)\s+mean)"
    r"\s*\?\s*$",
    re.I,
)
_NOT_A_TERM = re.compile(r"['’]s\b|\s(?:about|for|from|in|into|like|of|on|to|with)$", re.I)
DEFINE_WORDS = 4  # a term to define is a name or a short phrase, not a clause ("what is it that makes X slow")
_DEFINITION = re.compile(
    r"^\W*(?:(?:the|an?)\s+)?(?P<subject>(?:\S+\s+){0,5}?\S+?)\s+(?:is|are|means|refers\s+to|stands\s+for|denotes)\s",
    re.I,
)
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]+")

# An identifier-like name: inner capitals (WireGuard), letters and digits (ext4), dotted, underscored or
# dashed parts (asyncio.Runner, missing_ok, --leak-check), an acronym (SFC), or a year (2024).
# A hyphen between lower-case words makes an English compound ("fast-growing", "bash-specific"), not a name;
# a slash joins alternatives, paths and fractions ("TikZ/PGF", "data/out.txt", "7/2"), each part read alone.
_IDENTIFIER = re.compile(
    r"[a-z][A-Z]|[A-Za-z]\d|\d[A-Za-z]|\w[._:]\w|[A-Z]\w*-\w|\w-\w*[A-Z]|^--\w|^[A-Z]{3,}$|^(1[5-9]|20)\d\d$"
)
# A string value in code: quoted right after "(", "=" or "," (an argument, an assignment), on one line.
_LITERAL = re.compile(r"""(?<=[(=,])\s*(["'])[^"'\n]{1,200}\1""")
_PLAIN_WORD = re.compile(r"(?<![\w.'-])[A-Za-z]{3,}(?![\w'-]|\.\w)")  # letters only, not part of an identifier
_LATIN_WORDS = re.compile(r"(?<![\w.-])(?:--?)?[A-Za-z][\w+]*(?:[._:-][\w+]+)*")
_NAMES = re.compile(
    r"(?<![\w.-])(?:--)?\w+(?:[._:-]\w+)+|(?<![\w'])[A-Z][\w'+-]*[\w+]|\b[a-z]+[A-Z]\w*|\b[a-z]+\d\w*|\b\w+_\w+"
    r"|\b(?:1[5-9]|20)\d\d\b"
)

_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|spring|summer|"
    "autumn|winter|quarter"
)
_TIMES = (
    "ago|today|yesterday|tomorrow|tonight|noon|midnight|o'clock|morning|afternoon|evening|night|daily|weekly|"
    "monthly|yearly|annually|\\d{1,2} ?(am|pm)|monday|tuesday|wednesday|thursday|friday|saturday|sunday|weekend"
)
_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|"
    "hundred|hundreds|thousand|thousands|million|millions|billion|billions|dozen|dozens|half|double|twice|"
    "triple|single|several|tenfold"
)
_CALENDAR = re.compile(rf"({_MONTHS}|{_TIMES})", re.I)  # "May" is a month, not a name
_EVIDENCE = {
    "money": re.compile(r"[$€£¥]|\b(dollars?|usd|hkd|euros?|eur|yuan|rmb|pounds?|cents?)\b", re.I),
    "year": re.compile(r"\b(1[5-9]|20)\d\d\b"),
    "date": re.compile(
        rf"\b(1[5-9]|20)\d\d\b|\b({_MONTHS}|{_TIMES})\b|\b\d{{1,2}}[/.:-]\d{{1,2}}\b"
        r"|\b(this|last|next) (year|month|week)\b",
        re.I,
    ),
    "quantity": re.compile(rf"\d|\b({_NUMBER_WORDS})\b|%", re.I),
    # A version number (2.6.30, v1.8.4, 3.0; not a section number, "Section 9.6.3") or a numbered version or
    # release ("version 2"; "Debian 12" is not one: release names and numbers without the word are left to the
    # other features).
    "version": re.compile(
        r"(?<!section )(?<!chapter )(?<!figure )(?<!table )(?<!example )(?<![§\d.])\bv?\d+\.\d+(\.\d+)*\b"
        r"|\b(version|release|v)\s?\d+\b|版本?\s?\d",
        re.I,
    ),
}


@dataclass(frozen=True)
class Question:
    text: str
    terms: frozenset[str]
    kind: str | None  # "money", "year", "quantity", "version", "date", "name", "definition" or None (anything)
    names: list[str]
    lang: str = "en"  # `rag.language.language` of the text
    term: str = ""  # what a "definition" question asks to define

    @classmethod
    def parse(cls, text: str) -> Question:
        terms = frozenset(tokenize(_PHRASING.sub(" ", text)))
        lang = language(text)
        kinds, asked = (_KINDS_ZH, simplified(text)) if lang == "zh" else (_KINDS, text)
        kind = next((k for k, pattern in kinds if pattern.search(asked)), None) if lang != "other" else None
        term = ""
        if kind is None and lang == "en" and (m := _DEFINE.match(text)):
            term = m.group("term") or m.group("word")
            if len(term.split()) <= DEFINE_WORDS and tokenize(term) and not _NOT_A_TERM.search(term):
                kind = "definition"
            else:
                term = ""
        latin = _HAN.sub(" ", text)  # names are read from the Latin-script words only
        if lang == "zh":  # in Chinese text every Latin-script word is a name, a command or an acronym
            names = _LATIN_WORDS.findall(latin)
        else:
            first = latin.split(maxsplit=1)[0] if latin.split() else ""
            names = [m for m in _NAMES.findall(latin) if m != first]
        return cls(text, terms, kind, names, lang, term)

    def fits(self, sentence: str) -> bool:
        """Could ``sentence`` answer this kind of question? (A date for "when", a name for "who", ...)"""
        if self.kind is None:
            return True
        if self.kind == "name":  # a name the question does not already contain
            asked = self._asked_words
            words = re.findall(r"[\w+-]+", sentence)  # "HashKeyExchange's": the name asked about, run together
            return any(
                w[0].isupper()
                and i > 0
                and len(w) > 1  # "I", the "I" of "I/O": no name
                and not any(a in w.lower() for a in asked)
                and not _CALENDAR.fullmatch(w)
                for i, w in enumerate(words)
            )
        if self.kind == "definition":  # the sentence starts with the term, the subject of "… is/are/means …"
            term = tokenize(self.term)
            m = _DEFINITION.match(sentence)
            return m is not None and tokenize(m.group("subject"))[: len(term)] == term
        return bool(_EVIDENCE[self.kind].search(sentence))

    @cached_property
    def _asked_words(self) -> list[str]:
        """The question's own words (a name among them is not an answer), read once for all its sentences."""
        return [w.lower() for w in re.findall(r"\w+", self.text) if len(w) > 3]

    def unknown_names(self, known: Collection[str]) -> list[str]:
        """Identifier-like names in the question that the corpus never mentions, so it cannot be about them.

        ``known`` is the corpus's vocabulary as the keyword index tokenizes it (stems, and identifiers
        whole). A name is a word shaped like an identifier (``WireGuard``, ``ext4``, ``asyncio.Runner``,
        ``--leak-check``, ``SFC``) or, in an English question, a word English does not know either
        (``ufw``, ``zram``: `rag.lexicon.ordinary`), or knows only as two words run together or as a typo of
        a word when it is written with a capital inside the question (``Nextcloud``, a product, not
        ``passwordless``; ``Bazel``, not a typo of "basel"). An
        unknown ordinary word (a greeting, a synonym such as "headcount", a word in another language) proves
        nothing and is left to the reader. In a Chinese question every Latin-script word is taken for a name
        (``mokutil``, ``Flathub``): Chinese text switches script for names, commands and acronyms, not for
        ordinary words. A name is known when the corpus has it whole, or, for a single word, when a corpus
        word of five letters or more begins it ("PostgreSQL" in a corpus that says "Postgres"). What the
        question's own code passes as a string (``open("notes/todo.txt")``, ``name='demo'``) is the asker's
        data, not a topic, and names nothing.

        Example:
            >>> Question.parse('Why does open("data/todo.txt") fail?').unknown_names({"open", "fail"})
            []
        """
        asked = _LITERAL.sub(" ", self.text)  # names in the asker's own string values are not topics
        named = [n for n in self.names if len(n) >= 3 and (self.lang == "zh" or _IDENTIFIER.search(n)) and n in asked]
        unknown = [n for n in named if _never_seen(n, known)]
        if self.lang == "en":  # a plain word the corpus never uses and English does not know is a name too
            plain = dict.fromkeys(w for w in _PLAIN_WORD.findall(asked) if w not in named)
            unknown += [w for w in plain if _never_seen(w, known) and not ordinary(w, name_like=w in self.names)]
        return unknown


def _never_seen(name: str, known: Collection[str]) -> bool:
    """True when the corpus has neither ``name`` whole (as the keyword index keeps it), nor a word one letter
    away from it (a typo, "AppImgae"; a plural, "T-encodings"), nor, for a single word, its stem or a word of
    five letters or more that begins it (so a spelling or affix variant, "PostgreSQL" for "Postgres", is not
    taken for new). Names with digits must match whole: "ext5" is not "ext4", nor 3.14 3.13."""
    whole = name.lower().strip("-'_")
    if whole in known:
        return False
    if len(whole) >= 5 and not any(ch.isdigit() for ch in whole) and not one_edit(whole).isdisjoint(known):
        return False
    if re.search(r"\w[._:-]\w", whole):  # an identifier with parts is known only whole
        return True
    stems = tokenize(name)
    if len(stems) == 1 and stems[0] in known:  # a plain word, known under its stem ("EPS" -> "ep")
        return False
    return not any(len(k) >= 5 and whole.startswith(k) for k in known)


# --- what to search for --------------------------------------------------------------------------------
# A short exclamation before the question itself: "Hi!", "Hello there!", "你好！".
_WORD_AFTER = r"\s+[^\s.!?:,！？。，]+"  # one more word of an opening (no punctuation ends it)
_OPENING = re.compile(rf"^\s*(?:[^\s.!?:,！？。，]+(?:{_WORD_AFTER}){{0,2}})\s*(?:!+\s+|！+\s*)(?=\S)")
# ... and a greeting before a comma: "hi there, how do I X?", "你好，如何…？" (words of greeting in English and
# Chinese, as a dictionary lists them; not taken from any question set).
_GREETING = re.compile(
    r"^\s*(?:hi|hello|hey|hiya|howdy|greetings|good\s+(?:morning|afternoon|evening|day)|dear|thanks|thank\s+you|"
    rf"你好|您好|嗨|哈喽|早上好|下午好|晚上好|谢谢)(?:{_WORD_AFTER}){{0,2}}\s*[,，]\s*(?=\S)",
    re.I,
)
_WORD = re.compile(r"[^\W\d_]{5,}")


def focus(text: str) -> str:
    """The question without a short exclamation or greeting before it: ``"Hi! How do I X?"`` and ``"hi there,
    how do I X?"`` -> ``"How do I X?"``, ``"how do I X?"``.

    An exclamation is at most three words ended by "!"; a greeting is at most three words ended by a comma,
    the first of them a word of greeting (`_GREETING`); either way the rest of the text must still be a
    question of its own (ending in "?"). An opening that is not a greeting is context and stays ("In Python,
    how do I sort a list?"). Anything else is left as it is.
    """
    rest = text
    while (m := _OPENING.match(rest) or _GREETING.match(rest)) and _standalone(rest[m.end() :]):
        rest = rest[m.end() :]
    return rest


def _standalone(rest: str) -> bool:
    return rest.rstrip().endswith(("?", "？")) and _long(rest)


def _long(question: str) -> bool:
    """Long enough to stand alone: three words, or six characters of Chinese (written without spaces)."""
    return len(question.split()) >= 3 or (language(question) == "zh" and len(question.strip()) >= 6)


# How much more common in English a word one edit away must be than a word English knows for that word to
# be read as a typo of it: 10**1.5, ~30 times (people mistype perhaps one word in a few dozen). Without this,
# ordinary words the corpus lacked became other words one letter away, or non-words whose stem is a corpus
# word's ("staking" became "stating"); with it the common misspelling "recieve" (2.75) still becomes "receive" (4.85).
TYPO_ODDS = 1.5


def correct_spelling(text: str, known: Collection[str], frequency: Callable[[str], int]) -> str:
    """``text`` with each word the corpus never uses replaced by its other spelling where the corpus uses
    that one (British "colour" for a corpus that says "color", `rag.lexicon.spelling_variants`, and the
    reverse), or else by the corpus word one edit away from it (the most frequent such word), so a typo
    ("braches", "comand") still finds what it meant. Words under five
    letters, identifiers and words with no such neighbour are left alone, and so is a word English knows
    (`rag.lexicon.zipf` at least `rag.lexicon.RARE`: "complaint" is no typo of "compliant") unless the
    neighbour is far more common (`TYPO_ODDS`): the corpus lacking a word is no sign it was mistyped.

    Example:
        >>> correct_spelling("delete old braches", {"branch", "delet", "old"}, lambda w: 1)
        'delete old branches'
        >>> correct_spelling("is staking allowed", {"state", "allow"}, lambda w: 1)
        'is staking allowed'
        >>> correct_spelling("Initialise the colour", {"initi", "color"}, lambda w: 1)
        'Initialize the color'
    """

    def fix(m: re.Match) -> str:
        word = m.group()
        stems = tokenize(word)
        if not stems or any(s in known for s in stems) or _IDENTIFIER.search(word):
            return word
        for variant in spelling_variants(word.lower()):  # the corpus spells it the other side's way
            if (vs := tokenize(variant)) and all(s in known for s in vs):
                return variant.capitalize() if word[0].isupper() else variant
        typed = zipf(word.lower())
        bar = typed + TYPO_ODDS if typed >= RARE else typed  # an unknown word: any neighbour as common
        found = [
            (frequency(s), c)
            for c in one_edit(word.lower())
            if len(c) >= 4
            for s in tokenize(c)[:1]
            if s in known and zipf(c) >= bar
        ]
        return max(found)[1] if found else word

    if language(text) != "en":  # an English word list says nothing about another language's spelling
        return text
    return _WORD.sub(fix, text)
