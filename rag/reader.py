"""The reader: which span of the retrieved passages answers the question, and how likely it is that one does.

No reading-comprehension, reranking or NLI model installs offline from the registries here, so the reader
is a small logistic model over features that mean the same on every corpus: how much of the question a
span and its neighbourhood cover (rare words weigh more), how similar it is to the question in embedding
space, how high its passage was retrieved, whether it holds the kind of thing asked for (a date for "when":
a soft feature, not a filter), whether it reads as prose or as code, and how much of the question the
corpus has never heard of. Its weights are fitted on the pooled *development* batches of every question set
in ``eval/`` (``python -m rag.fit_reader``) and checked on the blind batches, never tuned on them.

A span is a sentence of a passage, or a lead-in ending in ":" together with what it introduces (the
command or code block right after "To find leaks, run:"), so a lead-in is never an answer on its own. A
sentence that is itself a question is never a span.

Example:
    >>> spans([Passage("Run this: make all. Is it fast? Yes, it is fast.", "a.txt", 0.0)])[0].text
    'Run this: make all.'
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .chunking import split_sentences
from .keyword import tokenize
from .question import Question
from .types import Passage

WEIGHTS_FILE = Path(__file__).with_name("reader_weights.json")
FEATURES = (
    "bias",
    "cover",  # idf-weighted share of the question's words in the span
    "cover_near",  # ... in the span, its neighbours and its section heading
    "cover_passage",  # ... anywhere in the passage
    "cosine",  # embedding similarity of span and question
    "passage_rank",  # 1 / the passage's retrieval rank
    "kind_fit",  # the question wants a kind of thing (date, quantity, name, money) and the span has one
    "kind_miss",  # the question wants a kind of thing and the span has none
    "code",  # share of the span's words that are code-like (identifiers, options, punctuation)
    "unfinished",  # no sentence-ending punctuation: a title, a signature line, a table row
    "novelty",  # share of the span's words that are not the question's: an answer adds something
    "length",  # log of the span's length in words
    "unknown",  # idf-weighted share of the question's words the corpus never uses
    "lead_in",  # a lead-in joined with what it introduces
    "fragment",  # the passage starts inside this sentence (a chunk's overlap): its beginning is missing
)
_CODE_WORD = re.compile(r"[(){}\[\]=<>|$#;`\\¶]|\w[./:_]\w|^--?\w|^\W+$")
_ENDED = re.compile(r"[.!?。！？…)\]\"”’:;]$")
_WORDS = re.compile(r"\S+")
# Text addressed to an assistant inside a document is data, never quoted as an answer.
_INJECTION = re.compile(
    r"\b(ignore|disregard|forget)\b.{0,40}\b(instructions?|prompts?|rules)\b|\byou are (now )?(an?|the) "
    r"(assistant|ai|model|chatbot)\b|\bsystem prompt\b",
    re.IGNORECASE,
)

Idf = Callable[[str], float]


@dataclass
class Span:
    passage: int  # index into the passages
    start: int  # offsets inside the passage text
    end: int
    text: str
    lead_in: bool = False
    features: np.ndarray = field(default_factory=lambda: np.zeros(len(FEATURES)))
    prob: float = 0.0


def _is_question(text: str) -> bool:
    return text.rstrip(" \"”’)").endswith(("?", "？"))


def spans(passages: list[Passage]) -> list[Span]:
    """Candidate answers: sentences, a lead-in joined with the sentence or block after it; no questions."""
    out = []
    for i, p in enumerate(passages):
        sentences = split_sentences(p.text, brackets=True)
        for j, (s, e) in enumerate(sentences):
            text = p.text[s:e]
            if _is_question(text) or not tokenize(text) or _INJECTION.search(text):
                continue
            if text.endswith((":", "：")):
                if j + 1 < len(sentences):
                    e = sentences[j + 1][1]
                    out.append(Span(i, s, e, p.text[s:e], lead_in=True))
                continue  # a lead-in with nothing after it in this passage says nothing
            out.append(Span(i, s, e, text))
    return out


def code_share(text: str) -> float:
    """Share of words that look like code: ``"run make -j4 all"`` -> 0.25; prose -> 0."""
    words = _WORDS.findall(text)
    return sum(bool(_CODE_WORD.search(w.rstrip(".,;:"))) for w in words) / len(words) if words else 0.0


def coverage(claim: Collection[str], evidence: Collection[str], idf: Idf) -> float:
    """Share of the claim's words found in the evidence, each weighted by its rarity (idf)."""
    total = sum(idf(t) for t in claim)
    return sum(idf(t) for t in claim if t in evidence) / total if total else 0.0


def unknown_share(terms: Collection[str], known: Collection[str] | None, idf: Idf) -> float:
    """The idf-weighted share of ``terms`` that the corpus never uses (0 when the vocabulary is unknown)."""
    if not known:
        return 0.0
    return coverage([t for t in terms], [t for t in terms if t not in known], idf)


def featurize(
    asked: Question,
    cands: list[Span],
    passages: list[Passage],
    idf: Idf,
    unknown: float,
    cosines: np.ndarray | None = None,
) -> np.ndarray:
    """One row of `FEATURES` per span (``cosines`` of each span to the question; 0 where not computed)."""
    q = asked.terms
    rows = np.zeros((len(cands), len(FEATURES)))
    sentence_stems: dict[int, list[set[str]]] = {}
    passage_cover = {}
    first_start = {}
    for i, p in enumerate(passages):
        spans_i = split_sentences(p.text, brackets=True)
        sentence_stems[i] = [set(tokenize(p.text[s:e])) for s, e in spans_i]
        first_start[i] = spans_i[0][0] if spans_i else 0
        passage_cover[i] = coverage(q, set(tokenize(f"{p.section or ''} {p.text}")), idf)
    for r, c in enumerate(cands):
        p = passages[c.passage]
        words = set(tokenize(c.text))
        near = set(words) | set(tokenize(p.section or ""))
        bounds = split_sentences(p.text, brackets=True)
        for k, (s, e) in enumerate(bounds):  # the sentences just before and after the span
            if e <= c.start and k + 1 < len(bounds) and bounds[k + 1][0] >= c.start:
                near |= sentence_stems[c.passage][k]
            if s >= c.end and (k == 0 or bounds[k - 1][1] <= c.end):
                near |= sentence_stems[c.passage][k]
        fits = asked.fits(c.text) if asked.kind else False
        n_words = len(_WORDS.findall(c.text))
        rows[r] = [
            1.0,
            coverage(q, words, idf),
            coverage(q, near, idf),
            passage_cover[c.passage],
            0.0 if cosines is None else float(cosines[r]),
            1.0 / (1 + c.passage),
            float(bool(asked.kind) and fits),
            float(bool(asked.kind) and not fits),
            code_share(c.text),
            float(not _ENDED.search(c.text.rstrip())),
            len(words - q) / len(words) if words else 0.0,
            math.log1p(n_words) / 4,
            unknown,
            float(c.lead_in),
            float(c.start == first_start[c.passage] and c.text[:1].islower()),
        ]
    return rows


def load_weights(path: Path = WEIGHTS_FILE) -> tuple[np.ndarray, float]:
    """The fitted weights (in `FEATURES` order) and the abstention threshold on the probability."""
    data = json.loads(path.read_text())
    if list(data["features"]) != list(FEATURES):
        raise ValueError(f"{path}: fitted for features {data['features']}, not {list(FEATURES)}; refit it")
    return np.array(data["weights"], dtype=float), float(data["threshold"])


def probabilities(rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(rows @ weights)))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 50) -> np.ndarray:
    """L2-regularised logistic regression by Newton's method (the bias is not penalised).

    Example:
        >>> x = np.array([[1, 0.0], [1, 1.0], [1, 0.1], [1, 0.9]]); y = np.array([0, 1, 0, 1])
        >>> bool(fit_logistic(x, y)[1] > 0)
        True
    """
    w = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        grad = x.T @ (p - y) + penalty * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w
