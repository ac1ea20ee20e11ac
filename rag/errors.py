"""The exceptions rag raises. Each message is one line a person can act on."""

from __future__ import annotations

from pydantic import ValidationError


class RagError(Exception):
    """Base class: catch this to catch anything rag raises on purpose."""


class DocumentError(RagError):
    """One file could not be read; the rest of an ingest goes on.

    Example:
        >>> str(DocumentError("notes/a.pdf", "not a valid PDF (EOF marker not found)"))
        'notes/a.pdf: not a valid PDF (EOF marker not found)'
    """

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason

    def __reduce__(self):  # rebuilt from both fields when it comes back from a worker process (rag.ingest.sandbox)
        return (type(self), (self.path, self.reason))


class NoTextError(DocumentError):
    """The file was read and holds no text: an icon, a blank scan, an HTML page of scripts. It is not a
    failure: the ingest records it with no chunks (so the next run does not read it again) and lists it apart.

    Example:
        >>> str(NoTextError("icons/home.png", "no text, not even by OCR"))
        'icons/home.png: no text, not even by OCR'
    """


class StoreError(RagError):
    """The vector store cannot be opened or written (missing folder, unreachable server, ...)."""


class StoreLockedError(StoreError):
    """Another process is writing to the same store."""


class NotIngestedError(RagError):
    """A question was asked before any document was ingested."""


class BackendError(RagError):
    """The answering backend (LLM server, local model) failed or cannot be reached."""


class ChatError(RagError):
    """A saved conversation cannot be found (or is someone else's), renamed or written (`rag.app.chats`)."""


def one_line(exc: Exception) -> str:
    """``RAG_CHUNK_SIZE=5`` -> ``chunk_size: Input should be greater than or equal to 32 (got 5)``."""
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']} (got {e.get('input')!r})" for e in exc.errors()
        )
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
