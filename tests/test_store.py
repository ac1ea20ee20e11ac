"""The Chroma store (rag/index/store.py) against a server that stops answering: a real `chroma run` on 127.0.0.1,
frozen with SIGSTOP. Questions fail within `store_timeout` with one plain line, their answer slots are
freed, and everything works again once the server is resumed."""

from __future__ import annotations

import os
import signal

import pytest

from rag import RAG
from rag.errors import StoreError
from tests.conftest import start_chroma, stop

pytestmark = pytest.mark.slow

QUESTION = "When was the Virtual Assets Policy Statement issued?"


@pytest.fixture
def hangable_server(tmp_path):
    """A `chroma run` of this test's own (it is frozen, so not the session's): yields (process, port)."""
    proc, port = start_chroma(tmp_path)
    try:
        yield proc, port
    finally:
        os.kill(proc.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        stop(proc)


def test_a_hung_chroma_server_gives_a_plain_message_and_frees_the_slot(seed_docs, tmp_path, hangable_server):
    """Regression: with the Chroma server SIGSTOPped, questions waited ~90 s with no message and held all
    4 answer slots."""
    from rag.app.handlers import handlers

    proc, port = hangable_server
    rag = RAG(docs_dir=seed_docs, chroma_host="127.0.0.1", chroma_port=port, store_timeout=2)
    rag.ingest()
    assert "2022" in rag.ask(QUESTION).text
    respond = handlers(rag).respond
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        with pytest.raises(StoreError) as info:
            rag.ask(QUESTION, k=3)
        assert str(info.value) == (
            f"the document store is unreachable: the Chroma server at http://127.0.0.1:{port} failed "
            "(no answer within 2 s (RAG_STORE_TIMEOUT))"
        )
        # In the chat: the question's turn ends (its slot is free) with that one line, no traceback.
        turns = list(respond(QUESTION, [], [], "extractive", "", "", "", 3))
        last = turns[-1][1][-1]["content"]
        assert "the document store is unreachable" in last and "Traceback" not in last
        # A process started while the server hangs says the same, instead of hanging in Chroma's client.
        with pytest.raises(StoreError, match="the document store is unreachable"):
            RAG(docs_dir=seed_docs, chroma_host="127.0.0.1", chroma_port=port, store_timeout=2).ask(QUESTION)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    assert "2022" in rag.ask(QUESTION).text  # and it recovers once the server answers again


def test_a_search_that_fails_is_retried_once_only_when_the_store_reopens(tmp_path, monkeypatch):
    """Chroma may fail a search on an index another process changed ("Error finding id"): then the store
    reads its state again, and only if that gave it a fresh client is the search run once more."""
    from rag.config import Settings
    from rag.index.store import Store

    store = Store(Settings(store_dir=tmp_path / "store"))
    calls = []

    def search():
        calls.append(store.client)
        if len(calls) == 1:
            raise RuntimeError("Error executing plan: Internal error: Error finding id")
        return "found"

    monkeypatch.setattr(store, "open", lambda: setattr(store, "client", object()))  # another process wrote
    assert store._current(search) == "found" and len(calls) == 2 and calls[0] is not calls[1]

    calls.clear()
    monkeypatch.setattr(store, "open", lambda: True)  # the state did not move: the failure is real
    with pytest.raises(RuntimeError, match="Error finding id"):
        store._current(search)
    assert len(calls) == 1
