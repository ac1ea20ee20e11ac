"""rag: chat with a folder of documents, with answers whose every citation can be checked.

Example:
    >>> from rag import RAG
    >>> rag = RAG(docs_dir="seeds")  # doctest: +SKIP
    >>> rag.ingest()  # doctest: +SKIP
"""

import logging

from .config import Settings
from .engine import RAG, DocumentInfo
from .errors import BackendError, DocumentError, NotIngestedError, RagError, StoreError, StoreLockedError
from .types import IngestReport, Passage

__all__ = [
    "RAG",
    "Settings",
    "Passage",
    "IngestReport",
    "DocumentInfo",
    "RagError",
    "DocumentError",
    "StoreError",
    "StoreLockedError",
    "NotIngestedError",
    "BackendError",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
