"""Small result types returned at the library's boundary, instead of framework objects."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Passage:
    """A retrieved chunk of a document.

    Attributes:
        text: the chunk's text, exactly as stored.
        source: file path relative to the docs folder.
        score: retrieval score (higher is better; its scale depends on the retriever).
        page: 1-based PDF page, or None.
        section: nearest heading above the chunk, or None.
        start, end: character offsets of the chunk in the document's extracted text.
        id: the stable chunk id in the store.
    """

    text: str
    source: str
    score: float
    page: int | None = None
    section: str | None = None
    start: int = 0
    end: int = 0
    id: str = ""
    ranks: dict[str, int] = field(default_factory=dict)  # e.g. {"dense": 1, "bm25": 4}
    scores: dict[str, float] = field(default_factory=dict)  # e.g. {"dense": 0.61, "rerank": 0.9}

    @property
    def location(self) -> str:
        """Where a person finds it: ``guide.pdf, p. 3`` or ``notes.md, § Setup``."""
        where = self.source
        if self.page is not None:
            where += f", p. {self.page}"
        if self.section:
            where += f", § {self.section}"
        return where


@dataclass
class IngestReport:
    """What one ingest did. Lists hold source paths relative to the docs folder."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): not a document type
    # (path, reason): read, but no text in it (an icon, a blank scan); stored with no chunks, not a failure
    no_text: list[tuple[str, str]] = field(default_factory=list)
    chunks: int = 0  # chunks in the store after the run
    embedded: int = 0  # chunks embedded by this run
    reused: int = 0  # chunks this run stored with a vector embedded before (the same model, the same text)
    seconds: float = 0.0
    rebuilt: str | None = None  # why everything was re-embedded, if it was
    dry_run: bool = False
    derived: str | None = None  # what the run did to derived indexes (the cross-lingual one), for people
    # path -> (pages read by OCR, pages with no text even so), for files this run read with OCR
    ocr: dict[str, tuple[int, list[int]]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    def plan_line(self) -> str:
        """``+3 added ~1 changed -2 removed =40 unchanged``"""
        return (
            f"+{len(self.added)} added ~{len(self.updated)} changed "
            f"-{len(self.removed)} removed ={len(self.unchanged)} unchanged"
        )

    @property
    def links_refused(self) -> list[str]:
        """Links to outside the documents folder that were not followed (see `rag.ingest.scan`)."""
        return [path for path, reason in self.skipped if reason.startswith("a link to outside")]

    def summary(self) -> str:
        line = f"{self.plan_line()}, {len(self.failed)} failed; {self.chunks} chunks in store"
        if refused := self.links_refused:
            line = line.replace(
                " failed;", f" failed, {len(refused)} link(s) to outside the documents folder not followed;"
            )
        if not self.dry_run:
            reused = f" ({self.reused} kept the vectors they had)" if self.reused else ""
            line += f", {self.embedded} embedded{reused} in {self.seconds:.1f}s"
        if self.no_text:
            line += f"; {len(self.no_text)} without text"
        if self.derived:
            line += f"; {self.derived}"
        return line + self._ocr_line()

    def _ocr_line(self) -> str:
        """``"; 3 pages read by OCR; no text found on scan.pdf p. 2, 5"``, or "" when nothing was OCRed."""
        if not self.ocr:
            return ""
        pages = sum(n for n, _ in self.ocr.values())
        line = f"; {pages} page{'s' if pages != 1 else ''} read by OCR"
        if empty := [f"{path} p. {', '.join(map(str, e))}" for path, (_, e) in sorted(self.ocr.items()) if e]:
            line += f"; no text found on {'; '.join(empty)}"
        return line


@dataclass
class Citation:
    """The evidence behind one ``[n]`` marker of an answer.

    Attributes:
        n: the marker number as it appears in the answer text.
        source, page, section: where the passage is (see `Passage.location`).
        text: the whole retrieved passage.
        quote: the sentence of the passage that supports the answer sentence(s) citing it.
        score: how strongly the quote supports the cited sentence (0..1).
        start, end: offsets of the passage in the document's text; quote_start/quote_end of the quote.
    """

    n: int
    source: str
    text: str
    quote: str
    score: float
    page: int | None = None
    section: str | None = None
    start: int = 0
    end: int = 0
    quote_start: int = 0
    quote_end: int = 0
    passage_id: str = ""

    @property
    def location(self) -> str:
        return Passage(self.text, self.source, 0.0, self.page, self.section).location


@dataclass
class Sentence:
    """One sentence of an answer and whether its citations were verified to support it."""

    text: str
    citations: list[int]
    supported: bool
    support: float = 0.0


@dataclass
class Answer:
    """An answer whose every sentence cites a retrieved passage, or an honest "not in the documents".

    ``text`` carries inline markers ``[1]``; sentences that could not be verified are marked
    ``[unverified]`` rather than shown as sourced. ``answered`` is False when rag abstained.
    """

    question: str
    text: str
    citations: list[Citation]
    answered: bool
    sentences: list[Sentence] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)  # everything retrieved, cited or not
    query: str = ""  # the standalone question actually searched (differs from `question` in a chat)
    backend: str = "extractive"
    timings: dict[str, float] = field(default_factory=dict)
    scope: str = ""  # the documents it was asked within ("a.md, folder notes/ (3 documents)"); "" for all
    intent: str = "question"  # or "summary", "about", "mention": a whole-document question (rag.answer.overview)

    def to_markdown(self) -> str:
        """The answer with its citations as footnotes, e.g. for Jupyter or a chat window."""
        lines = [self.text, ""]
        for c in self.citations:
            lines.append(f"[{c.n}] **{c.location}** — “{c.quote}”")
        return "\n".join(lines).strip()

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def __str__(self) -> str:
        return self.to_markdown()
