"""rag on llama-index's interfaces, for people who build their own pipelines.

Importing this subpackage imports llama-index (~2.7 s), so ``import rag`` never does: the `RAG` methods
``as_retriever``, ``as_query_engine`` and ``as_chat_engine`` import it on first use.

Example:
    >>> from rag import RAG
    >>> rag = RAG(docs_dir="seeds")  # doctest: +SKIP
    >>> rag.as_retriever(k=3).retrieve("insurance coverage")[0].node.metadata["source"]  # doctest: +SKIP
    'hashkey-interview.txt'
    >>> response = rag.as_query_engine().query("How many employees does HashKey have?")  # doctest: +SKIP
    >>> response.metadata["answer"].citations[0].quote  # doctest: +SKIP

What lives where:

* `rag.llamaindex.nodes`: `Passage` <-> ``NodeWithScore``, and `verify`, rag's answer check over any
  llama-index ``Response.source_nodes``;
* `rag.llamaindex.retriever`: `RagRetriever`, rag's fused retrieval as a ``BaseRetriever``;
* `rag.llamaindex.engines`: `RagQueryEngine` and `RagChatEngine`, rag's checked answers as a query engine and
  a chat engine;
* `rag.llamaindex.parser`: `read_documents` (a folder -> ``Document``s by rag's loaders) and `RagNodeParser`,
  rag's chunker as a ``NodeParser`` for any ``IngestionPipeline``;
* `rag.llamaindex.embedding`: `RagEmbedding`, rag's embedder as a ``BaseEmbedding``;
* `rag.llamaindex.store`: `vector_store` / `vector_index`, rag's Chroma collection through llama-index's own
  ``ChromaVectorStore`` (the records carry its layout, `rag.index.layout`);
* `rag.llamaindex.llms`: the llama-index LLMs under rag's openai and ollama backends (``OpenAILike``,
  ``Ollama``), and `GGUFLLM`, the in-process GGUF model (xllamacpp) as a ``CustomLLM``.
"""

from rag.llamaindex.embedding import RagEmbedding
from rag.llamaindex.engines import RagChatEngine, RagQueryEngine
from rag.llamaindex.nodes import to_node, to_passage, verify
from rag.llamaindex.parser import RagNodeParser, read_documents, to_document
from rag.llamaindex.retriever import RagRetriever
from rag.llamaindex.store import vector_index, vector_store

__all__ = [
    "RagRetriever",
    "RagQueryEngine",
    "RagChatEngine",
    "RagNodeParser",
    "RagEmbedding",
    "read_documents",
    "to_document",
    "to_node",
    "to_passage",
    "verify",
    "vector_store",
    "vector_index",
]
