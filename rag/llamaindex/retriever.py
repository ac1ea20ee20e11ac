"""`RagRetriever`: rag's fused retrieval (dense + BM25, reciprocal rank fusion; `rag.retrieval.hybrid`) as a
llama-index ``BaseRetriever``, so it plugs into any llama-index query engine, chat engine or agent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle

from rag.llamaindex.nodes import to_node

if TYPE_CHECKING:
    from rag.engine import RAG


class RagRetriever(BaseRetriever):
    """The ``k`` passages `RAG.search` finds for a query, as ``NodeWithScore``s, best first (scores are rag's
    fused scores; their scale depends on ``fusion``).

    Args:
        rag: the `RAG` to search (it must have ingested).
        k: passages per query; ``rag.settings.top_k`` when None.
        fusion: ``"rrf"``, ``"dense"`` or ``"bm25"``; ``rag.settings.fusion`` when None.

    Example:
        >>> nodes = RagRetriever(rag, k=3).retrieve("insurance coverage")  # doctest: +SKIP
        >>> nodes[0].node.metadata["source"], nodes[0].node.start_char_idx  # doctest: +SKIP
        ('hashkey-interview.txt', 1510)
    """

    def __init__(
        self,
        rag: RAG,
        k: int | None = None,
        fusion: str | None = None,
        callback_manager: CallbackManager | None = None,
        documents: list[str] | None = None,
        folder: str | None = None,
    ):
        super().__init__(callback_manager=callback_manager)
        self.rag = rag
        self.k = k
        self.fusion = fusion
        self.documents, self.folder = documents, folder  # only these documents (`rag.retrieval.scope`)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        query = query_bundle.query_str
        found = self.rag.search(query, self.k, self.fusion, documents=self.documents, folder=self.folder)
        return [to_node(p) for p in found.passages]
