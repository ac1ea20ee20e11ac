"""`RagEmbedding`: rag's embedder (`rag.index.embedding.Embedder`) as a llama-index ``BaseEmbedding``.

Queries and documents keep their roles: a model trained with a prompt for each (EmbeddingGemma) gets the
query prompt for ``get_query_embedding`` and the document prompt for ``get_text_embedding(s)``. Vectors are
unit length, as rag stores them.

Example:
    >>> from llama_index.core import Settings as LlamaSettings  # doctest: +SKIP
    >>> LlamaSettings.embed_model = RagEmbedding(rag.embedder)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

from rag.index.embedding import Embedder


class RagEmbedding(BaseEmbedding):
    """Args:
    embedder: an `Embedder` to share (e.g. ``rag.embedder``, already loaded); else one for ``model_name``.
    model_name: a sentence-transformers model name or folder, as ``RAG_EMBED_MODEL``.
    """

    _embedder: Embedder = PrivateAttr()

    def __init__(
        self,
        embedder: Embedder | None = None,
        model_name: str = "all-MiniLM-L6-v2",
        embed_batch_size: int = 64,
        **kwargs: Any,
    ):
        embedder = embedder or Embedder(model_name, embed_batch_size)
        super().__init__(model_name=embedder.model_name, embed_batch_size=embedder.batch_size, **kwargs)
        self._embedder = embedder

    @classmethod
    def class_name(cls) -> str:
        return "RagEmbedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embedder.embed_query(query).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await asyncio.to_thread(self._get_query_embedding, query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embedder.embed([text], role="document")[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embedder.embed(texts, role="document").tolist()
