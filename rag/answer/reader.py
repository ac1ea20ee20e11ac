"""The reader: which span of the retrieved passages answers the question, and how likely it is that one does.

No reading-comprehension, reranking or NLI model installs offline from the registries here, so the reader
is a small linear model over features that mean the same on every corpus: how much of the question a
span and its neighbourhood cover (rare words weigh more), how similar it is to the question in embedding
space, how high its passage was retrieved, whether it holds the kind of thing asked for (a date for "when":
a soft feature, not a filter), whether it reads as prose or as code. Its weights are fitted on the pooled
*development* batches of the question sets in ``eval/`` (``python -m rag.eval.fit_reader``; the sets are listed
in ``reader_weights.json``) and checked on the blind batches, never tuned on them.

It reads in two steps, each a small linear model: the first ranks the spans of the question against each
other (a softmax over them); the second looks at the best span (its score, its lead over the next, its
coverage and similarity, and how close the best passage came) and gives the probability that it answers
the question at all. Below the fitted threshold rag says the documents do not contain the answer.

A span is a sentence of a passage, or a lead-in ending in ":" together with what it introduces (the
command or code block right after "To find leaks, run:"), so a lead-in is never an answer on its own. A
sentence that is itself a question is never a span (nor a lead-in joined with one, "Reporter:" and what
was asked), nor is a heading, nor the rest of a sentence on its own
(cut by the passage's start, or a clause after a colon or semicolon; a passage that starts inside a
bracket, cut in a line of code), nor a diagram drawn in characters, nor
a word standing alone ("INSTALL."), nor a "See also" list of pointers.

Example:
    >>> spans([Passage("Run this: make all. Is it fast? Yes, it is fast.", "a.txt", 0.0)])[0].text
    'Run this: make all.'
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.answer.injection import is_instruction  # text addressed to an assistant is data, never quoted
from rag.answer.question import Question
from rag.text import (
    BULLET,
    CJK,
    HOWTO,
    PROMPT,
    code_share,
    is_heading_of,
    is_prose_line,
    split_sentences,
    tokenize,
)
from rag.types import Passage

WEIGHTS_FILE = Path(__file__).with_name("reader_weights.json")
MAX_SPANS = 3  # spans of the best passage in an extractive answer, at most
# A span of another passage joins the answer when its score is this close to the best one's: on the dev
# batches 0.5 raised facts on 4 of 7 sets (+5 to +9 points) for 0 to 4 points of citation precision. 0.75 was
# tried in session 11 (eight sets): 1.4 points more facts for 1.3 points less citation precision; not kept.
OTHER_GAP = 0.5
EMBED_CHARS = 300  # a span's cosine to the question is over its first characters (a code block can be long)
# What ranks the spans of one question against each other (a softmax over them, so no bias).
FEATURES = (
    "cover",  # idf-weighted share of the question's words in the span
    "cover_near",  # ... in the span, its neighbours and its section heading
    "cover_passage",  # ... anywhere in the passage
    "cover_section",  # ... in the passage's section heading
    "bigrams",  # share of the question's adjacent word pairs found adjacent in the span
    "cosine",  # embedding similarity of span and question
    "passage_rank",  # 1 / the passage's retrieval rank
    "kind_fit",  # the question wants a kind of thing (date, quantity, name, money) and the span has one
    "kind_miss",  # the question wants a kind of thing and the span has none
    "code",  # share of the span's words that are code-like (identifiers, options, punctuation)
    "howto_code",  # a "how do I" question and a span with code in it (the command it asks for)
    "unfinished",  # no final punctuation: a title, a signature line, a table row (not a lead-in's block)
    "novelty",  # share of the span's words that are not the question's: an answer adds something
    "length",  # log of the span's length in words
    "lead_in",  # a lead-in joined with what it introduces
)
# Whether the best span answers at all (a logistic model): its ranking score and lead over the next span,
# its similarity and coverage, and the best embedding similarity of any retrieved passage (richer sets of
# features did no better on corpora left out of the fit: see docs/BENCHMARKS.md).
ANSWER_FEATURES = ("bias", "score", "margin", "cosine", "cover", "dense_best")
_BLOCK_AFTER = re.compile(r"[:：][ \t]*\n")  # a lead-in whose colon ends its line: a block follows
# Ended: by a full stop (or ! ? : ; … and their CJK forms, a closing bracket), or a closing quote after one
# ('He said "stop."'). A quote alone ends a line of code as often ('ProxyPass "/" "http://example.com/"').
_ENDED = re.compile(r"[.!?。！？…)\]:;]$|[.!?…,;:][\"”’]$")
_WORDS = re.compile(r"\S+")

Idf = Callable[[str], float]


@dataclass
class Span:
    passage: int  # index into the passages
    start: int  # offsets inside the passage text
    end: int
    text: str
    lead_in: bool = False
    features: np.ndarray = field(default_factory=lambda: np.zeros(len(FEATURES)))
    score: float = 0.0  # ranking score among the question's spans


def _is_question(text: str) -> bool:
    """Ends in a question mark, before closing quotes or brackets, or a stray full stop after it ("FAQ: Should
    I use retry?." as reStructuredText renders a question heading)."""
    return text.rstrip(' "”’)').removesuffix(".").rstrip(' "”’)').endswith(("?", "？"))


_LETTER = re.compile(r"[^\W\d_]")
_TITLE_LINE = re.compile(r"[^\n]{1,80}(?<![.!?:;,])\n(?=[A-Z0-9•])")
_NUMBERED = re.compile(r"\d+(\.\d+)*\.?\s")
TITLE_CASE = 0.6  # share of capitalised words that makes a long line a title
_PAGE_NUMBER = re.compile(r"\n\s*\d{1,4}\s*$")


def _trim(text: str, s: int, e: int) -> tuple[int, int]:
    """Without a title line stuck to its front ("3 Copying commands\\nIf you want ...", from a PDF, where a
    heading and its paragraph are one line apart) or a page number at its end. A long line of prose is no
    title: it is the first line of a sentence wrapped before a capital (`_is_title`)."""
    if m := _PAGE_NUMBER.search(text, s, e):
        e = m.start()
    if (
        (m := _TITLE_LINE.match(text, s, e))
        and _is_title(text[s : m.end() - 1])
        and re.search(r"[^\W\d]", text[m.end() : e])
        and not PROMPT.match(text, s)
    ):
        s = m.end()
    return s, e


def _is_title(line: str) -> bool:
    """A line that can be a title: short, or code, or numbered ("4.2 The function tapply() and ragged arrays"),
    or mostly capitalised words; a long line of ordinary prose is a sentence wrapped before a capital."""
    words = line.split()
    return (
        not is_prose_line(line)
        or bool(_NUMBERED.match(line))
        or sum(w[:1].isupper() for w in words) >= TITLE_CASE * len(words)
    )


_MARKDOWN_HEADING = re.compile(r"#{1,6}\s")
# Drawn in characters: runs of rule, edge and corner characters, a bar or a colon standing alone (a box's
# side, a dotted line going down).
_DRAWN = re.compile(r"[-=_+|~*#:.\u2500-\u257f]{2,}|(?<!\S)[|:\u2502](?!\S)")
_DRAWN_RUN = re.compile(r"[-=_+|~*#\u2500-\u257f]{3,}")
_LONE_COLON = re.compile(r"(?<!\S):(?!\S)")


def _is_picture(text: str) -> bool:
    """A diagram or a ruled table drawn in characters ("+-------+  | gateway |  +-------+"): what is drawn is
    at least three tenths of what is not a space, with two runs of rule characters, or one and colons
    standing alone (a dotted line going down, never prose's colon after a word)."""
    ink = len(text) - sum(c.isspace() for c in text)
    drawn = sum(len(m) for m in _DRAWN.findall(text))
    runs = len(_DRAWN_RUN.findall(text))
    return drawn >= 0.3 * ink and (runs >= 2 or (runs == 1 and len(_LONE_COLON.findall(text)) >= 2))


# A list of pointers to other places ("See also: [meshgrid], page 373.", Sphinx's "See also" boxes), which
# Texinfo and Sphinx put under every function's description: where to read on, never the answer itself.
_SEE_ALSO = re.compile(r"\s*(?:see\s+also\b|另请参阅|另請參閱)", re.I)


def _is_fragment(text: str) -> bool:
    """A single word ("INSTALL.", "cc."): a stray piece of a line, not a sentence; but a one-word lead-in
    ("Run:") still takes what it introduces. (Chinese is written without spaces: a sentence of it is never
    one word here.)"""
    return not CJK.search(text) and len(text.split()) < 2 and not text.endswith((":", "："))


def _is_heading(text: str, heading: str | None) -> bool:
    """A markdown heading line ("## `os.EOL`"), or the passage's own section ``heading`` (whitespace folded)
    standing as a line: a location, which the citation already gives, not an answer."""
    return bool(_MARKDOWN_HEADING.match(" ".join(text.split()))) or is_heading_of(text, heading)


_PAIRS = {")": "(", "]": "[", "}": "{"}
_LIST_MARKER = re.compile(r"^[ \t]*\w{1,3}[.)]?\)(?=\s)", re.M)


def _starts_inside(text: str) -> int:
    """Where a text that starts inside a bracket leaves it (a passage cut in a line of code, "'b': 2} get(p)":
    7), looking through its first paragraph; 0 if it does not. A list's marker ("1) Open it") opens nothing."""
    first = text[:400].split("\n\n", 1)[0]
    depth = dict.fromkeys(_PAIRS.values(), 0)
    for i, ch in enumerate(_LIST_MARKER.sub(lambda m: " " * len(m.group()), first)):
        if ch in depth:
            depth[ch] += 1
        elif ch in _PAIRS:
            if depth[_PAIRS[ch]] == 0:
                return i + 1
            depth[_PAIRS[ch]] -= 1
    return 0


def spans(passages: list[Passage]) -> list[Span]:
    """Candidate answers: sentences, a lead-in joined with the sentence or block after it; no questions."""
    out = []
    for i, p in enumerate(passages):
        sentences = [_trim(p.text, s, e) for s, e in split_sentences(p.text, brackets=True)]
        heading = p.section
        inside = _starts_inside(p.text)
        for j, (s, e) in enumerate(sentences):
            text = p.text[s:e]
            if _is_question(text) or not _LETTER.search(text) or is_instruction(text) or _is_heading(text, heading):
                continue  # a question, a bare number (a page's), an instruction to an assistant, a heading
            if _is_fragment(text) or _SEE_ALSO.match(text):
                continue  # a word standing alone; a list of places to read on
            before = p.text[:s].rstrip()[-1:]
            if text[:1].islower() and (j == 0 or before in (":", ";", ",")):
                continue  # the rest of a sentence (the passage starts inside it, or a clause after ":"/";")
            first = text.lstrip("*_`'\"“‘([")[:1]  # the first letter, inside emphasis or a quote
            if before in (":", ";") and not (first.isupper() or first.isdigit() or CJK.match(first)):
                continue  # ... or one starting with a symbol ("Default: #f (meaning none).", "Run: $ make")
            if s < inside:
                continue  # the passage starts inside a bracket ("'b': 2}" and what follows on its line)
            lead_in = text.endswith((":", "："))
            k = j  # a lead-in takes what it introduces (a list: its items); a clause ending in ";" the clauses after it
            while (
                k + 1 < len(sentences)
                and k - j < 3
                and (
                    p.text[s : sentences[k][1]].endswith((":", "：", ";", "；"))
                    or (lead_in and BULLET.match(p.text, sentences[k + 1][0]))
                )
            ):
                k += 1
            if lead_in and k == j:
                continue  # a lead-in with nothing after it in this passage says nothing
            e = sentences[k][1]
            if k > j and (is_instruction(p.text[s:e]) or _is_question(p.text[s:e])):
                continue  # "IMPORTANT:" joined with the order it introduces; "Reporter:" with the question asked
            if _is_picture(p.text[s:e]):
                continue  # a diagram drawn in characters (a colon in it is no lead-in)
            out.append(Span(i, s, e, p.text[s:e], lead_in=lead_in))
    return out


def coverage(claim: Collection[str], evidence: Collection[str], idf: Idf) -> float:
    """Share of the claim's words found in the evidence, each weighted by its rarity (idf)."""
    total = sum(idf(t) for t in claim)
    return sum(idf(t) for t in claim if t in evidence) / total if total else 0.0


def _bigrams(tokens: list[str]) -> set[tuple[str, str]]:
    return set(zip(tokens, tokens[1:], strict=False))


def featurize(
    asked: Question,
    cands: list[Span],
    passages: list[Passage],
    idf: Idf,
    cosines: np.ndarray | None = None,
) -> np.ndarray:
    """One row of `FEATURES` per span (``cosines`` of each span to the question; 0 where not computed)."""
    q = asked.terms
    q_pairs = _bigrams([t for t in tokenize(asked.text) if t in q])
    howto = bool(HOWTO.search(asked.text))
    rows = np.zeros((len(cands), len(FEATURES)))
    sentence_stems: dict[int, list[set[str]]] = {}
    bounds: dict[int, list[tuple[int, int]]] = {}
    passage_cover, section_cover, section_stems = {}, {}, {}
    for i, p in enumerate(passages):
        bounds[i] = split_sentences(p.text, brackets=True)
        sentence_stems[i] = [set(tokenize(p.text[s:e])) for s, e in bounds[i]]
        section_stems[i] = set(tokenize(p.section or ""))
        passage_cover[i] = coverage(q, section_stems[i].union(*sentence_stems[i]), idf)
        section_cover[i] = coverage(q, section_stems[i], idf)
    for r, c in enumerate(cands):
        tokens = tokenize(c.text)
        words = set(tokens)
        near = words | section_stems[c.passage]
        for k, (s, e) in enumerate(bounds[c.passage]):  # the sentences just before and after the span
            if e <= c.start and (k + 1 == len(bounds[c.passage]) or bounds[c.passage][k + 1][0] >= c.start):
                near |= sentence_stems[c.passage][k]
            if s >= c.end and (k == 0 or bounds[c.passage][k - 1][1] <= c.end):
                near |= sentence_stems[c.passage][k]
        fits = asked.fits(c.text) if asked.kind else False
        code = code_share(c.text)
        rows[r] = [
            coverage(q, words, idf),
            coverage(q, near, idf),
            passage_cover[c.passage],
            section_cover[c.passage],
            len(q_pairs & _bigrams(tokens)) / len(q_pairs) if q_pairs else 0.0,
            0.0 if cosines is None else float(cosines[r]),
            1.0 / (1 + c.passage),
            float(bool(asked.kind) and fits),
            float(bool(asked.kind) and not fits),
            code,
            code if howto else 0.0,
            float(not _ENDED.search(c.text.rstrip()) and not (c.lead_in and _BLOCK_AFTER.search(c.text))),
            len(words - q) / len(words) if words else 0.0,
            math.log1p(len(_WORDS.findall(c.text))) / 4,
            float(c.lead_in),
        ]
    return rows


_COSINE = FEATURES.index("cosine")


def set_cosines(rows: np.ndarray, which: np.ndarray, cosines: np.ndarray) -> None:
    """Fill in the cosines of the spans ``which``; the others keep 0 (far from the question)."""
    rows[which, _COSINE] = cosines


def answer_row(rows: np.ndarray, scores: np.ndarray, passages: list[Passage], dense: str = "dense") -> np.ndarray:
    """The `ANSWER_FEATURES` of a question whose spans have ``rows`` and ranking ``scores``; ``dense`` names
    the dense list whose best similarity counts ("xl" for the cross-lingual index)."""
    order = np.argsort(-scores, kind="stable")
    top = rows[order[0]]
    margin = float(scores[order[0]] - scores[order[1]]) if len(order) > 1 else 5.0
    dense_best = max((p.scores.get(dense, 0.0) for p in passages), default=0.0)
    values = {
        "bias": 1.0,
        "score": float(scores[order[0]]),
        "margin": margin,
        "cosine": top[FEATURES.index("cosine")],
        "cover": top[FEATURES.index("cover")],
        "dense_best": dense_best,
    }
    return np.array([values[name] for name in ANSWER_FEATURES])


@functools.lru_cache(maxsize=8)
def _weights(path: Path, _mtime_ns: int) -> dict:
    """The parsed weights file, read once per version of it (an answerer is made for every question)."""
    return json.loads(path.read_text())


@dataclass(frozen=True)
class Model:
    """The fitted reader: span ranking weights, answer weights, the abstention threshold on the answer
    probability, and how close (in ranking score) a further span of the same passage must come to join.

    There are two: ``"same"`` for a question and passages in English, where words can be matched, and
    ``"xl"`` (cross-lingual) for a question or passages in another language, where the multilingual
    model's similarity carries the weight that shared words carry in English (fitted on the Chinese and
    cross-lingual development batches, see ``rag.eval.fit_reader --mode xl``).
    """

    rank: np.ndarray
    answer: np.ndarray
    threshold: float
    extra_gap: float
    dense: str = "dense"  # the dense list whose best similarity is an answer feature

    @classmethod
    def load(cls, path: Path = WEIGHTS_FILE, mode: str = "same") -> Model:
        data = _weights(path, path.stat().st_mtime_ns)
        for key, names in (("features", FEATURES), ("answer_features", ANSWER_FEATURES)):
            if list(data.get(key, [])) != list(names):
                raise ValueError(f"{path}: fitted for other {key} than this version of rag; refit it")
        fitted = data.get("xl", data) if mode == "xl" else data
        return cls(
            np.array(fitted["rank_weights"], dtype=float),
            np.array(fitted["answer_weights"], dtype=float),
            float(fitted["threshold"]),
            float(fitted["extra_gap"]),
            "xl" if mode == "xl" else "dense",
        )

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return rows @ self.rank

    def answer_probability(self, rows: np.ndarray, scores: np.ndarray, passages: list[Passage]) -> float:
        row = answer_row(rows, scores, passages, self.dense)
        return float(1.0 / (1.0 + math.exp(-float(row @ self.answer))))
