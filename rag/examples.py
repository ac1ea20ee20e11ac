"""Example questions for an empty chat, drawn from the documents themselves and kept only if answered.

Without a language model to write questions, the candidates are the questions the documents ask
themselves (an interview's, a FAQ's), then their headings, then "What is <file> about?", one document at a
time. Each candidate is asked once, and kept if rag answers it with a quote that is not itself a question.

Example:
    >>> from rag import RAG
    >>> examples_for(RAG(docs_dir="seeds")).get()  # doctest: +SKIP
    ['In what year did the Hong Kong government publish its policy statement on virtual assets?', ...]
"""

from __future__ import annotations

import itertools
import re
import threading
import time
import weakref
from pathlib import Path

from .engine import RAG

EXAMPLES = 4

_QUESTION = re.compile(r"[A-Z][^.!?\n]{12,160}\?")
_SPEAKER = re.compile(r"^[\w .'-]{1,24}:\s*")  # "Reporter: How ...?" -> "How ...?"
_ASKS = re.compile(r"^(what|how|why|when|who|where|which|is|are|does|do|can|should|will)\b", re.IGNORECASE)
# A question that points back at its context ("How does HashKey see this?") means nothing on its own.
_VAGUE = re.compile(r"\b(this|that|these|those|it|its|we|us|our|they|them|their|you|your|he|she|here)\b", re.I)
# Examples are plain sentences: markup or an address in one (``<img src=http://…>``, ``![logo](http://…)``)
# would be rendered by the chat and fetched by the browser, so such a candidate is never offered.
_MARKUP = re.compile(r"[<>]|!\[|\]\(|://|\bwww\.|&#?\w+;", re.I)


def plain(question: str) -> bool:
    """True when ``question`` is a plain sentence, safe to offer as an example.

    Example:
        >>> plain("What is the monthly price of the Gold plan?"), plain("What about ![logo](http://x/y.png)?")
        (True, False)
    """
    return not _MARKUP.search(question)


def candidate_questions(rag: RAG, scan: int = 2000) -> list[str]:
    """Questions a person could ask of the current documents, found without a language model: questions
    the documents ask themselves (an interview's, a FAQ's), then their headings, then "What is <file>
    about?", taking one per document in turn. Reads at most ``scan`` chunks, so a big store costs the same."""
    per_source: dict[str, list[str]] = {}
    try:
        for i, (_, meta, text) in enumerate(rag.store.all_chunks()):
            if i >= scan:
                break
            found = per_source.setdefault(meta.get("source", "?"), [])
            for q in _QUESTION.findall((text or "").replace("*", "")):
                q = _SPEAKER.sub("", q.strip())
                if _ASKS.match(q) and not _VAGUE.search(q) and 4 <= len(q.split()) <= 20:
                    found.append(q[0].upper() + q[1:])
            section = (meta.get("section") or "").strip().rstrip(":")
            if section and len(section.split()) <= 10:
                found.append(f"What does the document say about {section}?")
    except Exception:  # noqa: BLE001 - no store yet, or unreadable: no examples, never an error
        return []
    for source, found in per_source.items():
        found.append(f"What is {Path(source).stem.replace('-', ' ').replace('_', ' ')} about?")
    out: list[str] = []
    for group in itertools.zip_longest(*per_source.values()):
        out += [q for q in group if q and q not in out and plain(q)]
    return out


class Examples:
    """The example questions shown in an empty chat: candidates that the documents actually answer.

    Each candidate is asked once (``rag.ask``) and kept if the answer quotes a sentence that is not itself
    a question; the result is cached until the documents change, within a time ``budget`` per change.
    """

    def __init__(self, rag: RAG, n: int = EXAMPLES, budget: float = 4.0):
        self.rag, self.n, self.budget = rag, n, budget
        self._key: tuple | None = None
        self._questions: list[str] = []
        self._lock = threading.Lock()

    def get(self) -> list[str]:
        with self._lock:
            try:
                key = tuple((d.source, d.ingested_at) for d in self.rag.documents())
            except Exception:  # noqa: BLE001
                return []
            if key != self._key:
                self._questions, self._key = self._find(), key
            return list(self._questions)

    def _find(self) -> list[str]:
        candidates = candidate_questions(self.rag)
        good: list[str] = []
        deadline = time.monotonic() + self.budget
        for q in candidates:
            if len(good) == self.n or time.monotonic() > deadline:
                break
            try:
                a = self.rag.ask(q)
            except Exception:  # noqa: BLE001
                continue
            if a.answered and not any(c.quote.rstrip().endswith("?") for c in a.citations):
                good.append(q)
        return good or candidates[: self.n]


_examples: weakref.WeakKeyDictionary[RAG, Examples] = weakref.WeakKeyDictionary()


def examples_for(rag: RAG) -> Examples:
    """The one `Examples` cache of ``rag`` (shared by every page and by the warm-up)."""
    with _examples_lock:
        if rag not in _examples:
            _examples[rag] = Examples(rag)
        return _examples[rag]


_examples_lock = threading.Lock()
