"""Asking within chosen documents: the stored sources a question may be answered from.

A scope is named by documents (their paths as the Documents tab lists them) and/or a folder (every document
inside it, at any depth). Retrieval then considers only chunks of those sources: the dense and cross-lingual
searches through a Chroma metadata filter, the keyword search by masking its scores, so the best passages
*within* the scope are found, not the scope's share of the best overall. No scope means every document.

Example:
    >>> resolve(["a.md", "notes/b.md", "notes/old/c.md"], folder="notes").sources == {"notes/b.md", "notes/old/c.md"}
    True
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from rag.errors import RagError


class ScopeError(RagError):
    """A scope that names no ingested document: said plainly instead of answering from everything."""


@dataclass(frozen=True)
class Scope:
    sources: frozenset[str]
    named: str  # how it was asked for, for the trace: "a.md, folder notes/"

    def __str__(self) -> str:
        return f"{self.named} ({len(self.sources)} document{'s' * (len(self.sources) != 1)})"


def resolve(known: Collection[str], documents: Sequence[str] | None = None, folder: str | None = None) -> Scope | None:
    """The scope of ``documents`` and ``folder`` among the ``known`` sources; None when neither is given.

    Raises `ScopeError` naming what matched nothing: a document that is not ingested, or a folder with no
    ingested document inside it.
    """
    documents = [d.strip() for d in documents or [] if d and d.strip()]
    folder = (folder or "").strip().replace("\\", "/").strip("/")
    if not documents and not folder:
        return None
    known = set(known)
    if unknown := [d for d in documents if d not in known]:
        raise ScopeError(f"not among the ingested documents: {', '.join(unknown)}")
    chosen = set(documents)
    named = list(documents)
    if folder:
        inside = {s for s in known if s.startswith(folder + "/")}
        if not inside:
            raise ScopeError(f"folder {folder!r}: no ingested document is inside it")
        chosen |= inside
        named.append(f"folder {folder}/")
    return Scope(frozenset(chosen), ", ".join(named))
