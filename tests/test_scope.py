"""Asking within chosen documents (rag/retrieval/scope.py): retrieval considers only the chosen files or folder, in the
embedded store and on a real Chroma server, and a scope that matches nothing says so."""

from __future__ import annotations

import pytest

from rag import RAG
from rag.app.render import render_trace
from rag.retrieval.scope import ScopeError, resolve

FERRY = (
    "# Ferry timetable\n\nThe night ferry to Lamma Island leaves the Central pier at 23:30 every day. "
    "Tickets for the night ferry cost 22 dollars and are sold at the pier.\n"
)
FERRY_NOTES = (
    "# Ferry notes\n\nOn public holidays the ferry to Lamma Island runs every forty minutes. "
    "Bicycles are carried on the ferry for a small fee.\n"
)
LIBRARY = (
    "# Library hours\n\nThe city library opens at 10:00 and closes at 21:00 on weekdays. "
    "Books borrowed from the library are due back after three weeks.\n"
)


@pytest.fixture
def scoped(tmp_path, mode) -> RAG:
    docs = tmp_path / "docs"
    (docs / "transport").mkdir(parents=True)
    (docs / "transport" / "ferry.md").write_text(FERRY, encoding="utf-8")
    (docs / "transport" / "ferry-notes.md").write_text(FERRY_NOTES, encoding="utf-8")
    (docs / "library.md").write_text(LIBRARY, encoding="utf-8")
    rag = RAG(docs_dir=docs, store_dir=tmp_path / "store")
    rag.ingest()
    return rag


def test_resolve_names_documents_and_folders():
    known = ["a.md", "notes/b.md", "notes/old/c.md", "notesheet.md"]
    assert resolve(known) is None and resolve(known, [], "") is None
    assert resolve(known, folder="notes/").sources == {"notes/b.md", "notes/old/c.md"}  # not notesheet.md
    both = resolve(known, ["a.md"], "notes/old")
    assert both is not None and both.sources == {"a.md", "notes/old/c.md"}
    assert str(both) == "a.md, folder notes/old/ (2 documents)"
    with pytest.raises(ScopeError, match=r"not among the ingested documents: missing\.md"):
        resolve(known, ["a.md", "missing.md"])
    with pytest.raises(ScopeError, match=r"folder 'empty': no ingested document is inside it"):
        resolve(known, folder="empty")


def test_retrieval_considers_only_the_chosen_documents(scoped):
    question = "When does the night ferry to Lamma leave?"
    everywhere = scoped.retrieve(question, k=3)
    assert everywhere[0].source == "transport/ferry.md"
    within = scoped.search(question, k=3, documents=["library.md"])
    assert within.passages and {p.source for p in within.passages} == {"library.md"}
    # Both retrievers search inside the scope: the keyword list too, not only the dense one.
    notes = scoped.search(question, k=5, documents=["transport/ferry-notes.md"]).passages
    assert {p.source for p in notes} == {"transport/ferry-notes.md"}
    assert any("bm25" in p.ranks for p in notes) and any("dense" in p.ranks for p in notes)
    folder = scoped.retrieve(question, k=5, folder="transport")
    assert {p.source for p in folder} == {"transport/ferry.md", "transport/ferry-notes.md"}


def test_an_answer_within_a_document_cites_only_it_and_the_trace_says_so(scoped):
    answer = scoped.ask("How long can I keep a borrowed book?", documents=["library.md"])
    assert answer.answered and answer.citations
    assert {c.source for c in answer.citations} == {"library.md"}
    assert answer.scope == "library.md (1 document)"
    assert "<b>Within:</b> library.md (1 document)" in render_trace(answer)
    outside = scoped.ask("When does the night ferry to Lamma leave?", documents=["library.md"])
    assert all(c.source == "library.md" for c in outside.citations)
    assert "23:30" not in outside.text  # the answer lives in a document outside the scope


def test_a_scope_that_matches_nothing_says_so(scoped):
    with pytest.raises(ScopeError, match=r"nope\.md"):
        scoped.ask("When does the night ferry leave?", documents=["nope.md"])
    with pytest.raises(ScopeError, match=r"folder 'archive'"):
        scoped.retrieve("ferry", folder="archive")
    unscoped = scoped.chat("When does the night ferry to Lamma leave?", documents=[], folder="")
    assert unscoped.answered and unscoped.scope == ""
