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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rag.answer import overview
from rag.answer.answerer import NOT_FOUND, Answerer, build_messages, stream_deltas
from rag.answer.conversation import History, condense
from rag.answer.question import correct_spelling, focus
from rag.config import Settings
from rag.errors import NotIngestedError, RagError
from rag.index import crosslingual
from rag.index.embedding import Embedder
from rag.index.keyword import KeywordIndex
from rag.index.layout import embedding_text
from rag.index.store import Store
from rag.ingest.pipeline import Ingestor, Progress
from rag.language import language
from rag.llms import LLM, make_llm
from rag.messages import say
from rag.retrieval.hybrid import Retrieval, Retriever, nanoranker_scores
from rag.retrieval.scope import Scope, resolve
from rag.types import Answer, IngestReport, Passage

if TYPE_CHECKING:  # llama-index costs ~2.7 s to import: only the as_* methods below import it
    from rag.llamaindex import RagChatEngine, RagQueryEngine, RagRetriever

LOCAL_PROMPT_CHARS = 1200  # ~300 tokens of passages: the in-process model's first token p50 ~1.1 s on 2 cores
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
        self.embedder = Embedder(settings.embed_model, settings.embed_batch_size, settings.embed_fast_path)
        # The multilingual model of the cross-lingual index; loaded only when that index is used.
        self.xl_embedder = Embedder(settings.crosslingual_model, crosslingual.BATCH)
        self._store: Store | None = None
        self._llm: LLM | None = None
        self._sentence_cache: dict = {}
        self._keyword: KeywordIndex | None = None
        self._checked_at = 0.0
        self._lock = threading.RLock()
        self._router: overview.Router | None = None

    # --- plumbing, all lazy ----------------------------------------------------------------------
    @property
    def store(self) -> Store:
        if self._store is None:
            with self._lock:  # Chroma's client is not safe to create from several threads at once
                if self._store is None:
                    self._store = Store(self.settings)
        return self._store

    def with_settings(self, **overrides) -> RAG:
        """A `RAG` with some settings changed that shares this one's model, store and keyword index when
        those settings allow (e.g. another backend or k for one browser tab)."""
        other = RAG(self.settings, **overrides)
        shared = ("docs_dir", "store_dir", "collection", "chroma_host", "chroma_port")
        if all(getattr(other.settings, f) == getattr(self.settings, f) for f in shared):
            other._store, other._keyword, other._lock = self.store, self._keyword, self._lock
            other._sentence_cache = self._sentence_cache
        if other.settings.embed_model == self.settings.embed_model:
            other.embedder = self.embedder
        if other.settings.crosslingual_model == self.settings.crosslingual_model:
            other.xl_embedder = self.xl_embedder
        if other.settings.llm == self.settings.llm and overrides.keys().isdisjoint(
            {"llm_base_url", "llm_model", "llm_api_key", "llm_timeout"}
        ):
            other._llm = self._llm
        return other

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
                    for cid, meta, text in self.store.all_chunks():  # searched under its title and heading too
                        ids.append(cid)
                        texts.append(embedding_text(text, meta.get("section"), meta.get("title")))
                    index = KeywordIndex.build(ids, texts, version)
                    index.save(self.keyword_dir)
                self._keyword = index
            return self._keyword

    def _reindex(self) -> None:
        """After an ingest changed the store: rebuild the keyword index now, not on the next question."""
        self.keyword_index(force=True)

    def _retriever(self) -> Retriever:
        reranker = nanoranker_scores if self.settings.rerank else None
        return Retriever(self.settings, self.store, self.embedder, self.keyword_index, reranker, self.xl_embedder)

    # --- documents -------------------------------------------------------------------------------
    def ingest(self, *, reset: bool = False, dry_run: bool = False, progress: Progress | None = None) -> IngestReport:
        """Bring the store in line with ``docs_dir``: embed new and changed files, drop deleted ones."""
        ingestor = Ingestor(
            self.settings, lambda: self.store, self.embedder, on_change=self._reindex, after=self._sync_crosslingual
        )
        return ingestor.run(reset=reset, dry_run=dry_run, progress=progress)

    def _sync_crosslingual(self, store: Store) -> str | None:
        report = crosslingual.sync(self.settings, store, lambda: self.xl_embedder)
        return report.line() if report.held or report.removed or report.left_out else None

    def documents(self) -> list[DocumentInfo]:
        """Every ingested document with its chunk count and ingest time, by path."""
        self.store.open()
        return sorted(
            (
                DocumentInfo(r.source, r.chunks, r.ingested_at)
                for r in self.store.ledger().values()
                if r.state == "done"
            ),
            key=lambda d: d.source,
        )

    # --- retrieval -----------------------------------------------------------------------------
    def _require_store(self) -> None:
        if not self.store.open() or self.store.count() == 0:
            raise NotIngestedError(
                f"no documents ingested yet in {self.store.location} (collection {self.settings.collection!r}); "
                "run `python ingest.py` first"
            )

    def search(
        self,
        question: str,
        k: int | None = None,
        fusion: str | None = None,
        documents: Sequence[str] | None = None,
        folder: str | None = None,
    ) -> Retrieval:
        """Retrieve with the full trace (ranks and scores per retriever, timings); within ``documents``
        and/or ``folder`` when given (see `rag.retrieval.scope`)."""
        if self._store is None or self.store._chunks is None:
            self._require_store()
        self.keyword_index()  # first: re-reads the store if another process ingested (at most every 2 s)
        return self._retriever().retrieve(question, k, fusion, self.scope(documents, folder))

    def retrieve(
        self, question: str, k: int | None = None, documents: Sequence[str] | None = None, folder: str | None = None
    ) -> list[Passage]:
        """The ``k`` passages most relevant to ``question``, best first (within ``documents``/``folder``)."""
        return self.search(question, k, documents=documents, folder=folder).passages

    def scope(self, documents: Sequence[str] | None = None, folder: str | None = None) -> Scope | None:
        """The ingested documents named by ``documents`` and ``folder``; None for all of them. Raises
        `ScopeError` when a name matches no ingested document."""
        if not documents and not folder:
            return None
        return resolve([d.source for d in self.documents()], documents, folder)

    # --- answering -----------------------------------------------------------------------------------
    @property
    def llm(self) -> LLM | None:
        """The generation backend of ``settings.llm``; None for the extractive default."""
        if self._llm is None and self.settings.llm != "extractive":
            with self._lock:
                if self._llm is None:
                    self._llm = make_llm(self.settings)
        return self._llm

    def answerer(self) -> Answerer:
        index = self.keyword_index()
        return Answerer(
            self.embedder.embed,
            index.idf,
            self.settings.abstain_threshold,
            cache=self._sentence_cache,
            vocabulary=index.doc_freq.keys(),
            xl_embed=self.xl_embedder.embed,
        )

    def router(self) -> overview.Router:
        """What recognises a whole-document question ("summarize X", "which documents mention Z")."""
        if self._router is None:
            # Its weights read the vectors of the model they were fitted with, not those of another
            # RAG_EMBED_MODEL (768-d mpnet vectors made every question fail here).
            embedder = self.embedder
            if embedder.model_name != overview.ROUTER_MODEL:
                embedder = Embedder(
                    overview.ROUTER_MODEL, self.settings.embed_batch_size, self.settings.embed_fast_path
                )
            self._router = overview.Router(lambda texts: embedder.embed(texts, role="query"))
        return self._router

    def standalone(self, question: str, history: History | None = None) -> str:
        """What is searched for ``question``: a follow-up made standalone, a greeting before it dropped, and
        a word the corpus never uses but spells one letter away from a word it does, corrected.

        Spelling is judged against the corpus's words only when most of the corpus is English, like the
        question: a Chinese manual uses few English words, so "stays" was "corrected" to "stats" there."""
        query = focus(condense(question, history, self.llm) if history else question)
        if self._store is None or self.store._chunks is None:
            self._require_store()
        if self._retriever().chinese_share() > 0.5:
            return query
        index = self.keyword_index()
        return correct_spelling(query, index.doc_freq.keys(), lambda w: index.doc_freq.get(w, 0))

    def ask(
        self, question: str, k: int | None = None, documents: Sequence[str] | None = None, folder: str | None = None
    ) -> Answer:
        """Answer ``question`` from the documents (only from ``documents`` and/or the documents inside
        ``folder`` when given), every sentence citing a passage that supports it.

        Example:
            >>> a = rag.ask("When did Hong Kong issue its virtual asset policy statement?")  # doctest: +SKIP
            >>> a.answered, a.citations[0].source  # doctest: +SKIP
            (True, 'hashkey-interview.txt')
        """
        return _last(self.stream(question, k=k, documents=documents, folder=folder))

    def chat(
        self,
        message: str,
        history: History | None = None,
        k: int | None = None,
        documents: Sequence[str] | None = None,
        folder: str | None = None,
    ) -> Answer:
        """Like `ask`, but a follow-up ("and in Europe?") is first made standalone using ``history``
        (Gradio's messages format, or (user, assistant) pairs)."""
        return _last(self.stream(message, history=history, k=k, documents=documents, folder=folder))

    def stream(
        self,
        question: str,
        history: History | None = None,
        k: int | None = None,
        documents: Sequence[str] | None = None,
        folder: str | None = None,
    ) -> Iterator[str | Answer]:
        """Yield the answer's text as it is written (str deltas), then the verified `Answer` last.

        The final text can differ from the streamed one: sentences that fail verification are marked
        ``[unverified]`` and citation numbers are those of the checked citations.
        """
        question = (question or "").strip()
        if not question:
            raise RagError("the question is empty")
        started = time.perf_counter()
        query = self.standalone(question, history)
        scope = self.scope(documents, folder)
        routed = overview.route(self, question, query, scope)  # a summary, a listing, or a narrower scope
        if routed.answer is not None:
            yield from stream_deltas(routed.answer)
            routed.answer.question, routed.answer.query, routed.answer.scope = question, query, str(scope or "")
            routed.answer.intent, routed.answer.timings = (
                routed.intent,
                {"total_ms": (time.perf_counter() - started) * 1000},
            )
            yield routed.answer
            return
        scope, query = routed.scope or scope, routed.query or query
        retriever = self._retriever()
        retrieval = retriever.retrieve(query, k, scope=scope)
        answerer = self.answerer()
        vector = retrieval.vector if retrieval.vector is not None else self.embedder.embed_query(query)
        t = time.perf_counter()
        # With a model: no call at all for what the corpus never mentions (`extract` checks that itself).
        outside = answerer.outside(query, retrieval.passages) if self.llm is not None else None
        if self.llm is None or outside:
            answer = outside or answerer.extract(query, retrieval.passages, vector, retrieval.xl_vector)
            yield from stream_deltas(answer)
        elif self.settings.llm_role == "chooser":
            answer = answerer.choose(query, retrieval.passages, vector, self.llm, retrieval.xl_vector)
            answer.backend = f"{self.llm.name}, choosing"
            yield from stream_deltas(answer)
        else:
            draft = []
            budget = LOCAL_PROMPT_CHARS if self.settings.llm == "local" else None
            messages = build_messages(query, retrieval.passages, budget)
            for delta in self.llm.stream(messages, max_tokens=200):
                draft.append(delta)
                yield delta
            answer = answerer.verify(query, "".join(draft), retrieval.passages)
            answer.backend = self.llm.name
            if not answer.answered:  # the model found nothing checkable: fall back to quoting
                answer = answerer.extract(query, retrieval.passages, vector, retrieval.xl_vector)
                answer.backend = f"{self.llm.name}, extractive fallback"
        if not answer.answered and language(query) != "en" and not retriever.uses_xl(query):
            if self.keyword_index().known_share(query) < 0.5:  # the documents are not in the question's language
                answer.text = f"{answer.text} {say('no_crosslingual', query)}"
        answer.question, answer.query, answer.scope = question, query, str(scope) if scope else ""
        answer.intent = routed.intent
        answer.timings = {
            **retrieval.timings,
            "answer_ms": (time.perf_counter() - t) * 1000,
            "total_ms": (time.perf_counter() - started) * 1000,
        }
        yield answer

    # --- llama-index ---------------------------------------------------------------------------------
    def as_retriever(
        self,
        k: int | None = None,
        fusion: str | None = None,
        documents: list[str] | None = None,
        folder: str | None = None,
    ) -> RagRetriever:
        """This RAG's fused retrieval as a llama-index ``BaseRetriever`` (``NodeWithScore``s whose nodes carry
        text, source, page, section and character offsets). See `rag.llamaindex`."""
        from rag.llamaindex import RagRetriever

        return RagRetriever(self, k=k, fusion=fusion, documents=documents, folder=folder)

    def as_query_engine(
        self,
        k: int | None = None,
        streaming: bool = False,
        documents: list[str] | None = None,
        folder: str | None = None,
    ) -> RagQueryEngine:
        """`ask` as a llama-index query engine: ``response.source_nodes`` are the cited passages in marker
        order, ``response.metadata["answer"]`` the checked `Answer`. See `rag.llamaindex.engines`."""
        from rag.llamaindex import RagQueryEngine

        return RagQueryEngine(rag=self, k=k, streaming=streaming, documents=documents, folder=folder)

    def as_chat_engine(
        self, k: int | None = None, documents: list[str] | None = None, folder: str | None = None
    ) -> RagChatEngine:
        """`chat` as a llama-index chat engine that keeps the conversation (``chat``, ``stream_chat``)."""
        from rag.llamaindex import RagChatEngine

        return RagChatEngine(self, k=k, documents=documents, folder=folder)


def _last(events: Iterator[str | Answer]) -> Answer:
    answer = None
    for answer in events:  # noqa: B007 - the generator's last item is the answer
        pass
    assert isinstance(answer, Answer)
    return answer


__all__ = ["RAG", "DocumentInfo", "NOT_FOUND"]
