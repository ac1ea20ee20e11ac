"""rag: chat with a folder of documents, with answers whose every citation can be checked.

Example:
    >>> from rag import RAG
    >>> rag = RAG(docs_dir="seeds")  # doctest: +SKIP
    >>> rag.ingest()  # doctest: +SKIP
"""

import logging

from rag.config import Settings
from rag.engine import RAG, DocumentInfo
from rag.errors import BackendError, DocumentError, NotIngestedError, RagError, StoreError, StoreLockedError
from rag.retrieval.scope import ScopeError
from rag.types import Answer, Citation, IngestReport, Passage, Sentence

__all__ = [
    "RAG",
    "Settings",
    "Passage",
    "Answer",
    "Citation",
    "Sentence",
    "IngestReport",
    "DocumentInfo",
    "RagError",
    "DocumentError",
    "StoreError",
    "StoreLockedError",
    "ScopeError",
    "NotIngestedError",
    "BackendError",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
