"""rag's Chroma collection opened by llama-index's own ``ChromaVectorStore`` (see `rag.index.layout`).

Example:
    >>> index = vector_index(rag)  # doctest: +SKIP
    >>> hit = index.as_retriever(similarity_top_k=1).retrieve("insurance coverage")[0]  # doctest: +SKIP
    >>> hit.node.metadata["source"], hit.node.start_char_idx  # doctest: +SKIP
    ('hashkey-interview.txt', 4576)

This is dense search alone, over every record: rag's own retrieval (`RAG.as_retriever`) adds BM25 and fusion,
and hides a document while an ingest is writing it. rag's ingest stays the only writer: its ledger is the
source of truth, and a store changed through llama-index would not be in it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llama_index.core import VectorStoreIndex
from llama_index.vector_stores.chroma import ChromaVectorStore

from rag.errors import NotIngestedError
from rag.llamaindex.embedding import RagEmbedding

if TYPE_CHECKING:
    from rag.engine import RAG


def vector_store(rag: RAG) -> ChromaVectorStore:
    """A ``ChromaVectorStore`` over ``rag``'s chunk collection. A store written before the llama-index layout
    gets it first (metadata only, under the ingest lock; `rag.index.store.Store.upgrade_layout`)."""
    store = rag.store
    if not store.open() or store.count() == 0:
        raise NotIngestedError(f"no documents ingested yet in {store.location}; run `python ingest.py` first")
    if not store.has_layout():
        with store.lock():
            store.open()
            store.upgrade_layout()
    return ChromaVectorStore(chroma_collection=store.chunks)


def vector_index(rag: RAG) -> VectorStoreIndex:
    """A ``VectorStoreIndex`` over ``rag``'s store that embeds queries with rag's model (`RagEmbedding`)."""
    return VectorStoreIndex.from_vector_store(vector_store(rag), embed_model=RagEmbedding(rag.embedder))
