"""`RAG`: the one object the CLI, the app and a notebook all use.

Example:
    >>> from rag import RAG
    >>> rag = RAG(docs_dir="seeds", store_dir="vectorstore")  # doctest: +SKIP
    >>> rag.ingest().summary()  # doctest: +SKIP
    '+1 added ~0 changed -0 removed =0 unchanged, 0 failed; 19 chunks in store, 19 embedded in 0.4s'
    >>> rag.retrieve("When was the policy statement issued?", k=3)[0].source  # doctest: +SKIP
    'hashkey-interview.txt'
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .config import Settings
from .embedding import Embedder
from .errors import NotIngestedError
from .ingest import Ingestor, Progress
from .keyword import KeywordIndex
from .retrieve import Retrieval, Retriever
from .store import Store
from .types import IngestReport, Passage

VERSION_CHECK_SECONDS = 2.0  # how stale the keyword index may be when another process ingests


@dataclass
class DocumentInfo:
    source: str
    chunks: int
    ingested_at: float  # Unix time


class RAG:
    """Ingest a folder, retrieve passages, answer with checked citations.

    Args:
        settings: a `Settings`; when omitted, one is built from ``RAG_*`` environment variables.
        **overrides: any `Settings` field, e.g. ``docs_dir="notes"``, ``top_k=8``.
    """

    def __init__(self, settings: Settings | None = None, **overrides):
        if settings is None:
            settings = Settings(**overrides)
        elif overrides:
            settings = Settings(**{**settings.model_dump(exclude_unset=True), **overrides})
        self.settings = settings
        self.embedder = Embedder(settings.embed_model, settings.embed_batch_size)
        self._store: Store | None = None
        self._keyword: KeywordIndex | None = None
        self._checked_at = 0.0
        self._lock = threading.RLock()

    # --- plumbing, all lazy ----------------------------------------------------------------------
    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.settings)
        return self._store

    @property
    def keyword_dir(self) -> Path:
        s = self.settings
        name = f"{s.chroma_host}-{s.chroma_port}-{s.collection}" if s.server_mode else s.collection
        return s.store_dir / "keyword" / name

    def keyword_index(self, force: bool = False) -> KeywordIndex:
        """The BM25 index, reloaded or rebuilt when the store's version moved on."""
        with self._lock:
            if not force and self._keyword is not None and time.monotonic() - self._checked_at < VERSION_CHECK_SECONDS:
                return self._keyword
            self.store.refresh()
            version = self.store.version()
            self._checked_at = time.monotonic()
            if self._keyword is None or self._keyword.version != version:
                index = KeywordIndex.load(self.keyword_dir)
                if index is None or index.version != version:
                    ids, texts = [], []
                    for cid, _, text in self.store.all_chunks():
                        ids.append(cid)
                        texts.append(text)
                    index = KeywordIndex.build(ids, texts, version)
                    index.save(self.keyword_dir)
                self._keyword = index
            return self._keyword

    def _retriever(self) -> Retriever:
        return Retriever(self.settings, self.store, self.embedder, self.keyword_index)

    # --- documents -------------------------------------------------------------------------------
    def ingest(self, *, reset: bool = False, dry_run: bool = False, progress: Progress | None = None) -> IngestReport:
        """Bring the store in line with ``docs_dir``: embed new and changed files, drop deleted ones."""
        ingestor = Ingestor(self.settings, self.store, self.embedder, on_change=lambda: self.keyword_index(force=True))
        return ingestor.run(reset=reset, dry_run=dry_run, progress=progress)

    def documents(self) -> list[DocumentInfo]:
        """Every ingested document with its chunk count and ingest time, by path."""
        self.store.open()
        return sorted(
            (DocumentInfo(r.source, r.chunks, r.ingested_at) for r in self.store.ledger().values() if r.state == "done"),
            key=lambda d: d.source,
        )

    # --- retrieval -----------------------------------------------------------------------------
    def _require_store(self) -> None:
        if not self.store.open() or self.store.count() == 0:
            raise NotIngestedError(
                f"no documents ingested yet in {self.store.location} (collection {self.settings.collection!r}); "
                "run `python ingest.py` first"
            )

    def search(self, question: str, k: int | None = None, fusion: str | None = None) -> Retrieval:
        """Retrieve with the full trace (ranks and scores per retriever, timings)."""
        if self._store is None or self.store._chunks is None:
            self._require_store()
        return self._retriever().retrieve(question, k, fusion)

    def retrieve(self, question: str, k: int | None = None) -> list[Passage]:
        """The ``k`` passages most relevant to ``question``, best first."""
        return self.search(question, k).passages
