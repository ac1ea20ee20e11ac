"""Example questions for an empty chat, drawn from the documents themselves and kept only if answered.

Without a language model to write questions, the candidates are the questions the documents ask
themselves (an interview's, a FAQ's: a question that ends its line, not a rhetorical one inside a
paragraph), then their headings as "What does the document say about <heading>?", one document at a
time. Markup is taken out (a Markdown link keeps its text), numbering ("Chapter 3.", "A.1.") is dropped,
and a word is written in the case the corpus mostly uses it in ("Founding" -> "founding", "JSON" stays);
a heading that looks like a file name, or a single word the document hardly uses, is no question. Each
candidate is asked once and kept only if rag answers it citing the document it came from.

Example:
    >>> from rag import RAG
    >>> examples_for(RAG(docs_dir="seeds")).get()  # doctest: +SKIP
    ['How does Hash Key view the recent discussions?', ...]
"""

from __future__ import annotations

import html
import itertools
import re
import threading
import time
import weakref
from collections import Counter
from pathlib import Path

from rag.engine import RAG

EXAMPLES = 4

# A question that ends its line (or the chunk): an interviewer's or a FAQ's, not a rhetorical one that
# the paragraph goes on to answer ("Where does the large-scale layoffs come from? The annual ...").
_QUESTION = re.compile(r"[A-Z][^.!?\n]{12,160}\?(?=[\"'”’)]*[ \t]*(?:\n|$))")
_SPEAKER = re.compile(r"^[\w .'-]{1,24}:\s*")  # "Reporter: How ...?" -> "How ...?"
_ASKS = re.compile(r"^(what|how|why|when|who|where|which|is|are|does|do|can|should|will)\b", re.IGNORECASE)
# A question that points back at its context ("How does HashKey see this?") means nothing on its own.
_VAGUE = re.compile(r"\b(this|that|these|those|it|its|we|us|our|they|them|their|you|your|he|she|here)\b", re.I)
# Examples are plain sentences: markup or an address in one (``<img src=http://…>``, ``![logo](http://…)``,
# ``**bold**``, `` `code` ``) would be rendered by the chat, or shown as stray marks, so such a candidate
# is never offered.
_MARKUP = re.compile(r"[<>\[\]`]|\*\*|(?<!\w)__|://|\bwww\.|&#?\w+;", re.I)

# Markdown and HTML taken out of a heading or question, leaving its words: "[libcbor](https://…)" -> "libcbor".
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_TAG = re.compile(r"<[^>]*>")
_EMPHASIS = re.compile(r"(\*{1,3}|(?<!\w)_{1,3}|`+)(\S(?:.*?\S)?)\1(?!\w)")
_HEADING_MARK = re.compile(r"^\s*#{1,6}\s+|\s+#+\s*$")
# "Chapter 3. ", "Appendix A. ", "A.1. ", "10.1.1. ", "2 ": numbering, not part of the subject.
_NUMBERING = re.compile(
    r"^(?:(?:chapter|appendix|section|part)\s+[A-Z0-9]+[.:]?\s+|(?:[A-Z]|\d+)(?:\.\d+)*\.\s+|\d+(?:\.\d+)*\s+)",
    re.I,
)
# A file's name rather than a subject: "setup.py", "docs/api/index", "fonts-dejavu-core", "my_notes".
_FILE_LIKE = re.compile(
    r"\w\.(?:md|markdown|txt|rst|html?|pdf|docx?|odt|json|ya?ml|toml|py|csv|tsv|ini|cfg)\b"
    r"|\w_\w|\w/\w+/\w|^[/~]|\b[a-z0-9]+(?:-[a-z0-9]+){2,}\b",
    re.I,
)
_WORD = re.compile(r"[^\W\d_][\w'’-]*")
_Stats = tuple[Counter[str], Counter[str], dict[str, Counter[str]]]  # lower-case words, names, each document's words


def plain(question: str) -> bool:
    """True when ``question`` is a plain sentence, safe to offer as an example.

    Example:
        >>> plain("What is the monthly price of the Gold plan?"), plain("What about ![logo](http://x/y.png)?")
        (True, False)
    """
    return not _MARKUP.search(question)


def unmark(text: str) -> str:
    """``text`` without Markdown or HTML marks: links keep their text, images and tags go.

    Example:
        >>> unmark("## Built on [libcbor](https://github.com/PJK/libcbor) and **CBOR** `v2`")
        'Built on libcbor and CBOR v2'
    """
    text = _TAG.sub("", _LINK.sub(r"\1", _IMAGE.sub("", text)))
    for _ in range(3):  # nested emphasis: "***a***", "**`b`**"
        text = _EMPHASIS.sub(r"\2", text)
    return " ".join(html.unescape(_HEADING_MARK.sub("", text)).split())


def _file_like(subject: str, sources: set[str]) -> bool:
    """True when ``subject`` reads as a file name: a path or an extension, a slug, or a file's own stem
    ("fonts dejavu core README", where a document is called ``fonts-dejavu-core/README``)."""
    if _FILE_LIKE.search(subject):
        return True
    words = {w.lower() for w in subject.split()}
    for source in sources:
        for part in Path(source).with_suffix("").parts:
            stem = re.sub(r"[-_.]+", " ", part).strip().lower()
            if (" " in stem and stem == subject.lower()) or (stem.isalpha() and part.isupper() and stem in words):
                return True
    return False


def _recase(subject: str, lower: Counter[str], names: Counter[str]) -> str:
    """Each capitalised word of a heading in the case the corpus writes it in mid-sentence, so a subject
    reads well inside a question: "The Debian maze" -> "the Debian maze", "Blueprint Objects" ->
    "blueprint objects". ``lower`` counts the corpus's lower-case words; ``names`` its capitalised words
    that follow a lower-case one (a name, not a sentence's or a title's first word)."""

    def word(m: re.Match) -> str:
        w = m.group(0)
        if w[:1].isupper() and w[1:] == w[1:].lower() and lower[w.lower()] > 2 * names[w]:
            return w.lower()
        return w

    return _WORD.sub(word, subject)


def _count(text: str, lower: Counter[str], names: Counter[str], doc: Counter[str]) -> None:
    """Add ``text``'s words to the counts `_recase` and `_from_heading` use."""
    for line in text.splitlines():
        prev = ""
        for token in line.split():
            w = token.strip(".,;:!?()[]{}\"'“”‘’*_`#")
            if w:
                doc[w.lower()] += 1
                if w.islower():
                    lower[w] += 1
                elif w[:1].isupper() and prev.isalpha() and prev.islower():
                    names[w] += 1
            prev = token.rstrip(",;")


def _from_heading(section: str, source: str, stats: _Stats) -> str | None:
    """The question a heading of ``source`` makes, or None when it makes no good one."""
    lower, names, docs = stats
    subject = _NUMBERING.sub("", unmark(section)).strip().rstrip(":").strip()
    subject = re.sub(r"^about\s+", "", subject, flags=re.I)  # "About this project": the template says "about"
    words = subject.split()
    if not subject or not plain(subject) or len(words) > 10 or _file_like(subject, set(docs)):
        return None
    if _VAGUE.search(subject) or not _WORD.search(subject):  # "Your first app", "Tell Flask it is …"
        return None
    asks = _ASKS.match(subject)
    if asks and (subject.endswith("?") or (len(words) > 2 and words[1].lower() != "to")):
        return subject.rstrip("?") + "?" if len(words) >= 3 else None  # "What is Debian": the heading asks
    if subject.endswith("?"):
        return None
    if len(words) == 1:
        # A lone word ("Founding", "Running") is a subject only when its document keeps using it and others
        # hardly do ("libcbor" in libcbor's README).
        w = subject.lower()
        here, everywhere = docs[source][w], sum(d[w] for d in docs.values())
        if len(w) < 3 or here < 3 or here * 2 < everywhere:
            return None
    return f"What does the document say about {_recase(subject, lower, names)}?"


def _candidates(rag: RAG, scan: int) -> list[tuple[str, str]]:
    """(question, source) pairs, the questions of each document in order, taken one document at a time."""
    chunks: list[tuple[str, str, str]] = []
    lower: Counter[str] = Counter()
    names: Counter[str] = Counter()
    docs: dict[str, Counter[str]] = {}  # each document's words, lower-cased
    for i, (_, meta, text) in enumerate(rag.store.all_chunks()):
        if i >= scan:
            break
        source = meta.get("source", "?")
        chunks.append((source, (meta.get("section") or "").strip(), text or ""))
        _count(text or "", lower, names, docs.setdefault(source, Counter()))
    per_source: dict[str, list[str]] = {}
    for source, section, text in chunks:
        found = per_source.setdefault(source, [])
        for q in _QUESTION.findall(text):
            q = unmark(_SPEAKER.sub("", unmark(q.strip())))
            if _ASKS.match(q) and not _VAGUE.search(q) and 4 <= len(q.split()) <= 20:
                found.append(q[0].upper() + q[1:])
        if section and (q := _from_heading(section, source, (lower, names, docs))):
            found.append(q)
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for group in itertools.zip_longest(*[[(q, s) for q in qs] for s, qs in per_source.items()]):
        for pair in group:
            if pair and pair[0] not in seen and plain(pair[0]) and pair[0].endswith("?"):
                seen.add(pair[0])
                out.append(pair)
    return out


def candidate_questions(rag: RAG, scan: int = 2000) -> list[str]:
    """Questions a person could ask of the current documents, found without a language model: questions
    the documents ask themselves (an interview's, a FAQ's), then their headings, taking one per document
    in turn. Reads at most ``scan`` chunks, so a big store costs the same."""
    try:
        return [q for q, _ in _candidates(rag, scan)]
    except Exception:  # noqa: BLE001 - no store yet, or unreadable: no examples, never an error
        return []


class Examples:
    """The example questions shown in an empty chat: candidates that the documents actually answer.

    Each candidate is asked once (``rag.ask``) and kept if the answer cites the document the question came
    from with a sentence that is not itself a question; none is offered unchecked. The result is cached
    until the documents change, within a time ``budget`` per change.
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
        try:
            candidates = _candidates(self.rag, 2000)
        except Exception:  # noqa: BLE001 - no store yet, or unreadable: no examples, never an error
            return []
        good: list[str] = []
        deadline = None  # the budget starts after the first answer: that one loads the models the app needs anyway
        for q, source in candidates:
            if len(good) == self.n or (deadline is not None and time.monotonic() > deadline) or self.budget < 0:
                break
            try:
                a = self.rag.ask(q)
            except Exception:  # noqa: BLE001
                continue
            finally:
                deadline = deadline or time.monotonic() + self.budget
            # Answered from the document the question came from, by sentences ("Appendix A." is a heading)
            # none of which is a question (the question found again is no answer).
            quotes = [c.quote.rstrip() for c in a.citations]
            if (
                a.answered
                and not any(quote.endswith("?") for quote in quotes)
                and any(c.source == source and len(c.quote.split()) >= 4 for c in a.citations)
            ):
                good.append(q)
        return good


_examples: weakref.WeakKeyDictionary[RAG, Examples] = weakref.WeakKeyDictionary()


def examples_for(rag: RAG) -> Examples:
    """The one `Examples` cache of ``rag`` (shared by every page and by the warm-up)."""
    with _examples_lock:
        if rag not in _examples:
            _examples[rag] = Examples(rag)
        return _examples[rag]


_examples_lock = threading.Lock()
