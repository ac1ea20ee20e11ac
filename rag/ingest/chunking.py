"""Text -> chunks: sentence-aligned windows of at most ``chunk_size`` model tokens, with stable ids.

A window is filled with whole sentences; when the next one does not fit, it ends at the last paragraph
break instead, if that leaves it at least half full, and never right after a lead-in ending with ":".

Every chunk is an exact slice ``text[start:end]`` of the document's extracted text, so a citation can
point at the very characters it came from. Chunks never straddle a section (a PDF page, a heading), so
each carries exactly one page and one heading.

Worked example (chunk_size=6 tokens, overlap=2, one token per word)::

    "A b c. D e f. G h. I j k l."   sentences: [A b c.](3) [D e f.](3) [G h.](2) [I j k l.](4)
    chunk 0: "A b c. D e f."          (3+3 = 6)
    chunk 1: "G h. I j k l."          (the 2-token overlap would be "D e f." = 3 > 2, so none is kept)
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from rag.index.layout import embedding_text
from rag.ingest.loaders import LoadedDocument, Section
from rag.text import is_heading_of, split_sentences

_WORD = re.compile(r"\S+\s*")
_PARAGRAPH = re.compile(r"\n\s*\n")
# A title line: "Note", "Tip", "1.2.3. Filesystem permissions" (capitalised, at most five words, no end
# punctuation, no code). Like a lead-in ending with ":", it introduces what follows.
_TITLE = re.compile(r"(\d+(\.\d+)*\.?\s+)?[A-Z][\w'’-]*(\s+[\w'’-]+){0,4}")


@dataclass(frozen=True)
class Chunk:
    id: str
    text: str
    start: int
    end: int
    index: int
    page: int | None
    section: str | None
    title: str | None = None  # the document's (see `document_title`)

    def embedding_text(self) -> str:
        """What the embedding model reads (see `embedding_text`); the stored text is unchanged."""
        return embedding_text(self.text, self.section, self.title)


def document_title(doc: LoadedDocument, source: str) -> str:
    """What a document is called: the title it declares (an HTML ``<title>``), else its first heading, else
    its file name in words. Where the declared title and the first heading name one another ("Templates" and
    "Templates — Flask Documentation"), the heading, the shorter: a site's name is not a document's. Where
    they differ, the first heading is often only the first section's ("1. Overview").

    Example:
        >>> from rag.ingest.loaders import Section
        >>> document_title(LoadedDocument("Some text.", [Section(0)]), "notes/release_notes-2024.txt")
        'release notes 2024'
        >>> overview = LoadedDocument("1. Overview", [Section(0, None, "1. Overview")], title="Write-Ahead Logging")
        >>> document_title(overview, "wal.html")
        'Write-Ahead Logging'
    """
    first = next((s.heading for s in doc.sections if s.heading), None)
    if doc.title and not (first and _names_one_another(first, doc.title)):
        return doc.title
    return first or " ".join(re.split(r"[-_.\s]+", PurePosixPath(source).stem)).strip() or source


def _names_one_another(a: str, b: str) -> bool:
    """One holds the other, letters and digits compared ("fetch , and" is "fetch, and")."""
    a, b = re.sub(r"\W+", "", a.casefold()), re.sub(r"\W+", "", b.casefold())
    return bool(a and b) and (a in b or b in a)


def heading(doc: LoadedDocument, section: Section, start: int) -> str | None:
    """A chunk's heading: its section's, followed by the definition term it lies inside when it starts past
    that term (an option's description continued from the chunk before: ``OPTIONS › --force-with-lease``).

    Example:
        >>> from rag.ingest.loaders import Term
        >>> text = "--all: List all. Then sort them."
        >>> doc = LoadedDocument(text, [Section(0, None, "OPTIONS")], terms=[Term(0, len(text), "--all")])
        >>> heading(doc, doc.sections[0], 0), heading(doc, doc.sections[0], text.index("Then"))
        ('OPTIONS', 'OPTIONS › --all')
    """
    term = doc.term_at(start)
    if term is None:
        return section.heading
    return f"{section.heading} › {term.text}" if section.heading else term.text


def chunk_id(source: str, text: str, occurrence: int) -> str:
    """Stable id from the source path and the chunk's content (and which repeat of that content it is).

    Example:
        >>> chunk_id("a.txt", "hello", 0) == chunk_id("a.txt", "hello", 0) != chunk_id("b.txt", "hello", 0)
        True
    """
    return hashlib.sha256(f"{source}\x00{occurrence}\x00{text}".encode()).hexdigest()[:32]


def _split_long(text: str, span: tuple[int, int], n_tokens: int, limit: int) -> list[tuple[int, int]]:
    """Cut a sentence longer than ``limit`` tokens into roughly equal parts at word boundaries."""
    s, e = span
    parts = -(-n_tokens // limit) + 1  # one spare part: the tokens-per-character rate is not uniform
    words = [(m.start(), m.end()) for m in _WORD.finditer(text, s, e)]
    if len(words) < parts:  # scripts without spaces (Chinese): cut by characters
        step = max(1, (e - s) // parts)
        return [(i, min(i + step, e)) for i in range(s, e, step)]
    per = -(-len(words) // parts)
    out = []
    for i in range(0, len(words), per):
        group = words[i : i + per]
        ws, we = group[0][0], group[-1][1]
        while we > ws and text[we - 1].isspace():
            we -= 1
        out.append((ws, we))
    return out


class Chunker:
    """Splits a `LoadedDocument` into `Chunk`s.

    Args:
        count_tokens: maps a list of strings to their token counts (the embedding model's tokenizer).
        chunk_size: the most tokens in one chunk.
        chunk_overlap: the most tokens a chunk repeats from the end of the previous one.
    """

    def __init__(self, count_tokens: Callable[[list[str]], list[int]], chunk_size: int, chunk_overlap: int):
        if chunk_overlap >= chunk_size:
            raise ValueError(f"chunk_overlap ({chunk_overlap}) must be smaller than chunk_size ({chunk_size})")
        self.count_tokens = count_tokens
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap

    def split(self, doc: LoadedDocument, source: str) -> list[Chunk]:
        """The document's chunks, section by section. A section that holds nothing but its heading ("4
        Relational databases" right before "4.1 SQL queries") is no chunk of its own: its heading starts the
        next section's first chunk, which is cited under the heading that holds its text; at the document's end
        it is dropped, unless it is all the document holds."""
        text, chunks, seen, title = doc.text, list[Chunk](), Counter[str](), document_title(doc, source)
        bounds = [s.start for s in doc.sections[1:]] + [len(text)]
        start = None  # where an empty section's heading waits for the next section
        for index, (section, end) in enumerate(zip(doc.sections, bounds, strict=True)):
            start = section.start if start is None else start
            spans = split_sentences(text, start, end)
            if _only_heading(text, spans, section.heading) and (index + 1 < len(doc.sections) or chunks):
                continue  # at the end, with text before it: a heading of nothing ("Index" without its entries)
            windows, start = self._windows(text, spans, section.heading), None
            for s, e in windows:
                piece = text[s:e]
                cid = chunk_id(source, piece, seen[piece])
                seen[piece] += 1
                chunks.append(Chunk(cid, piece, s, e, len(chunks), section.page, heading(doc, section, s), title))
        return chunks

    def _windows(self, text: str, spans: list[tuple[int, int]], heading: str | None) -> list[tuple[int, int]]:
        """The chunks' spans over a section's sentences ``spans``, each at most `chunk_size` tokens."""
        if not spans:
            return []
        counts = self.count_tokens([text[s:e] for s, e in spans])
        units: list[tuple[int, int, int]] = []  # (start, end, tokens), none longer than chunk_size
        for span, n in zip(spans, counts, strict=True):
            if n <= self.chunk_size:
                units.append((*span, n))
                continue
            parts = _split_long(text, span, n, self.chunk_size)
            units += [
                (s, e, c) for (s, e), c in zip(parts, self.count_tokens([text[s:e] for s, e in parts]), strict=False)
            ]
        windows, i, done = [], 0, 0  # done: how many units the windows so far hold
        while i < len(units):
            j = self._end(text, units, i, heading)
            if j <= done:
                # The overlap leaves no room for anything new (a long block follows a short paragraph): a
                # window of it would only repeat the last one's tail, so the next starts after it instead.
                i = done
                continue
            windows.append((units[i][0], units[j - 1][1]))
            done = j
            if j >= len(units):
                break
            # Step back over whole sentences worth at most chunk_overlap tokens, but always move forward.
            k, back = j, 0
            while k - 1 > i and back + units[k - 1][2] <= self.chunk_overlap:
                k -= 1
                back += units[k][2]
            i = k
        return windows

    def _end(self, text: str, units: list[tuple[int, int, int]], i: int, heading: str | None) -> int:
        """Where the window starting at ``units[i]`` ends: as many units as fit, cut where the text pauses."""
        j, total = i, 0
        while j < len(units) and (j == i or total + units[j][2] <= self.chunk_size):
            total += units[j][2]
            j += 1
        if j < len(units):
            j = self._cut(text, units, i, j)
            last = units[j - 1]
            if _leads_in(text, last) or is_heading_of(text[last[0] : last[1]], heading):
                j += 1  # only a heading fits: it goes with what it heads, whatever the size
        return j

    def _cut(self, text: str, units: list[tuple[int, int, int]], i: int, j: int) -> int:
        """Where a full window ``units[i:j]`` should end instead, so that it ends where the text pauses.

        The last paragraph break that keeps the window at least half full wins: a question and its answer, or
        a heading and its paragraph, stay together. Either way the window does not end on a lead-in (a
        sentence ending with ":" or a title line such as "Note"), whose point is in what follows.
        """
        tokens = list(itertools.accumulate(u[2] for u in units[i:j]))
        for c in range(j, i, -1):
            if tokens[c - 1 - i] * 2 < self.chunk_size:
                break
            if _PARAGRAPH.search(text, units[c - 1][1], units[c][0]) and not _leads_in(text, units[c - 1]):
                return c
        for c in range(j, i, -1):
            if not _leads_in(text, units[c - 1]):
                return c
        return j


def _only_heading(text: str, spans: list[tuple[int, int]], heading: str | None) -> bool:
    """True when the sentences ``spans`` are headings only: the section's own, or title lines and lead-ins."""
    if not spans or is_heading_of(text[spans[0][0] : spans[-1][1]], heading):
        return True
    return all(_leads_in(text, (s, e, 0)) for s, e in spans)


def _leads_in(text: str, unit: tuple[int, int, int]) -> bool:
    """True for a sentence ending with ":" and for a title line on its own ("Tip", "2.1. Basics")."""
    s, e = unit[0], unit[1]
    if text[s:e].endswith(":"):
        return True
    if e < len(text) and text[e] != "\n":
        return False  # a title ends its line ("1.2.3." and "Filesystem permissions" are two units of one)
    return bool(_TITLE.fullmatch(text, text.rfind("\n", 0, s) + 1, e))
