"""What a question asks for: the words an answer must be about, the kind of answer, the names it mentions.

The extractive answerer has no reading-comprehension model (none ships in a registry package that runs
offline here), so it reads a question the way classic question-answering systems did:

* **terms**: the question's content words, stemmed, without stop words and without the words people use
  to *phrase* a question ("according to", "describe", "roughly", "kind of"). Those phrasing words rarely
  appear in the answer, and counting them made every paraphrased question look unanswered.
* **expected kind**: "when"/"what year" wants a date, "how many"/"what share" a quantity, "what price"/"in
  dollars" an amount of money, "who"/"which company" a name. A sentence without that kind of thing does
  not answer the question, however many of its words it shares.
* **names**: capitalised words, acronyms and numbers in the question (``SFC``, ``WireGuard``, ``2024``).
  One the documents never mention at all means they are not about it: rag says so instead of quoting a
  sentence about something else.

Example:
    >>> q = Question.parse("In what year was HashKey Group established?")
    >>> q.kind, sorted(q.terms), q.names
    ('year', ['establish', 'group', 'hashkey'], ['HashKey', 'Group'])
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import cached_property

from .keyword import tokenize

# Function words and question phrasing, beyond the keyword index's short stop list.
_PHRASING = frozenset(
    tokenize(
        "about above again against all almost also although am among any anyone anything around "
        "because been being were both each else ever every few further here however just "
        "many more most much must nor now off once other others ourselves out own per "
        "quite rather same several shall some still those though through too upon very "
        "whether while whose yet "
        "according approximately roughly exactly basically actually really currently "
        "describe describes described mention mentioned mentions say says said tell tells told "
        "kind kinds sort way ways thing things guide interview passage "
        "take takes took taken make makes made get gets got give gives gave given put puts go goes went"
    )
)

_CAPITALISED = re.compile(r"(?<![\w'])[A-Z][\w'+.-]*[\w+]|\b\d{3,}\b|\b[a-z]+[A-Z]\w*")

# The kind of answer a question wants, first match wins ("When ..., how many bytes ...?" wants a quantity).
_KINDS: list[tuple[str, re.Pattern]] = [
    (kind, re.compile("|".join(alternatives), re.I))
    for kind, alternatives in [
        (
            "money",
            [
                r"\b(price|prices|cost|costs|revenue|revenues|income|worth|valuation|salary|fees?)\b",
                r"\b(dollars?|usd|euros?)\b",
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
        ("date", [r"^\s*(when|since when)\b", r"\b(what|which) (month|date|day)\b"]),
        ("quote", [r"\b(what|which)\s+(\w+\s+)?(quote|quotation|saying|proverb|motto|slogan|catchphrase|maxim)\b"]),
        (
            "figure",
            [
                r"\b(metaphor|analogy|imagery)\b",
                r"\b(what|which)\s+image\b.{0,60}\bto (say|describe|express|convey|illustrate|show)\b",
            ],
        ),
        ("name", [r"^\s*who\b", r"\b(which|what)\s+(\w+\s+){0,2}(company|companies|city|country|firm|insurer|bank)\b"]),
    ]
]
_INFLECTED = re.compile(r"\w{3}(ed|ing|ly)$")
_PLACE = re.compile(r"\b(city|cities|country|countries)\b", re.I)
_CONTINENTS = ["europe", "asia", "africa", "america", "oceania", "antarctica"]

_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|spring|summer|"
    "autumn|winter|quarter"
)
_TIMES = (
    "ago|today|yesterday|tomorrow|tonight|noon|midnight|o'clock|morning|afternoon|evening|night|daily|weekly|"
    "monthly|yearly|annually|\\d{1,2} ?(am|pm)|monday|tuesday|wednesday|thursday|friday|saturday|sunday|weekend|"
    "boot|startup|login|shutdown"
)
_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|"
    "hundred|hundreds|thousand|thousands|million|millions|billion|billions|dozen|dozens|half|double|twice|"
    "triple|single|several|tenfold|first|second|third"
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
    "quote": re.compile(r"[\"“”«»„]"),  # a quotation is in quotation marks
    "figure": re.compile(r"\b(is|are|was|were|like)\s+(a|an)\b", re.I),  # "X is a bridge", "like a ..."
}


@dataclass(frozen=True)
class Question:
    text: str
    terms: frozenset[str]
    kind: str | None  # "money", "year", "date", "quantity", "quote", "figure", "name" or None (anything)
    names: list[str]

    @classmethod
    def parse(cls, text: str) -> Question:
        terms = frozenset(t for t in tokenize(text) if t not in _PHRASING)
        kind = next((k for k, pattern in _KINDS if pattern.search(text)), None)
        first = text.split(maxsplit=1)[0] if text.split() else ""
        names = [m for m in _CAPITALISED.findall(text) if m != first]
        return cls(text, terms, kind, names)

    def fits(self, sentence: str) -> bool:
        """Could ``sentence`` answer this kind of question? (A date for "when", a name for "who", ...)"""
        if self.kind is None:
            return True
        if self.kind == "name":  # a name the question does not already contain
            asked = self._asked_words
            words = re.findall(r"[\w+-]+", sentence)  # "HashKeyExchange's": the name asked about, run together
            return any(
                w[0].isupper() and i > 0 and not any(a in w.lower() for a in asked) and not _CALENDAR.fullmatch(w)
                for i, w in enumerate(words)
            )
        return bool(_EVIDENCE[self.kind].search(sentence))

    @cached_property
    def _asked_words(self) -> list[str]:
        """The question's own words (a name among them is not an answer), read once for all its sentences."""
        asked = [w.lower() for w in re.findall(r"\w+", self.text) if len(w) > 3]
        if _PLACE.search(self.text):  # a continent is not the city or country asked for
            asked += _CONTINENTS
        return asked

    def unknown_names(self, known: Collection[str], pieces: Callable[[str], int] | None = None) -> list[str]:
        """Names in the question that the corpus never mentions, so the documents cannot be about them.

        ``known`` is the corpus's stemmed vocabulary. A name is a capitalised word, an acronym or a number of
        three or more characters (``WireGuard``, ``SFC``, ``2024``). With ``pieces`` (word-piece count from
        the embedding model's tokenizer) a lower-case word counts too when the model's vocabulary does not
        know it either (three or more pieces: ``nginx``, ``certbot``) and it is not an inflected English word
        ("garbled", "rebooting", "silently": programs are not conjugated). Either is unknown only when no corpus
        word even begins the same way, so spellings and affixes ("PostgreSQL" in a corpus that says
        "Postgres", "synchronised", "unfragmented") are not mistaken for names the documents lack.
        """
        out = [n for n in self.names if len(n) >= 3 and _never_seen(tokenize(n), known)]
        if pieces is not None:
            for word in re.findall(r"\b[a-z][a-z0-9_-]{2,}\b", self.text):
                stems = tokenize(word)
                if (
                    stems
                    and stems[0] in self.terms
                    and word not in out
                    and not _INFLECTED.search(word)
                    and pieces(word) >= 3
                    and _never_seen(stems, known)
                ):
                    out.append(word)
        return out


def _never_seen(stems: list[str], known: Collection[str]) -> bool:
    """True when no stem is in ``known`` and none of them begins (after a negating or repeating prefix) the
    way a known word does; a stem shorter than four characters must match exactly."""
    if not stems or any(s in known for s in stems):
        return False
    cores = [re.sub(r"^(un|non|dis|re|pre)(?=\w{4})", "", s) for s in stems]
    return not any(len(c) >= 4 and any(k.startswith(c[:5]) for k in known) for c in cores)
