"""The facade: first use from several threads, and derived engines that share the heavy parts."""

from __future__ import annotations

import threading

from rag import RAG


def test_first_use_from_several_threads(seed_docs, tmp_path):
    """Pins: three threads' first `search` on a new RAG raced to create Chroma clients ("no attribute
    'bindings'", "Could not connect to tenant")."""
    RAG().ingest()
    rag, errors, results = RAG(), [], []

    def ask():
        try:
            results.append(rag.search("insurance coverage", k=3).passages[0].source)
        except Exception as exc:  # noqa: BLE001 - the test reports whatever a thread raised
            errors.append(repr(exc))

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and results == ["hashkey-interview.txt"] * 3


def test_with_settings_shares_model_and_store(seed_docs):
    rag = RAG()
    rag.ingest()
    other = rag.with_settings(top_k=2)
    assert other.embedder is rag.embedder and other.store is rag.store
    assert len(other.retrieve("insurance coverage")) == 2 and rag.settings.top_k == 5
    elsewhere = rag.with_settings(collection="another")
    assert elsewhere.store is not rag.store and elsewhere.embedder is rag.embedder
