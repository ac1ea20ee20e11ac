"""Crash safety: a real `python ingest.py` killed with SIGKILL mid-run, then run again, must leave exactly the
store a clean run leaves: the same chunk ids and texts, no duplicates, nothing missing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from rag import RAG

from .conftest import ROOT
from .test_ingest import snapshot, write_corpus

pytestmark = pytest.mark.slow


def ingest_env(store) -> dict:
    return {**os.environ, "RAG_STORE_DIR": str(store)}


def killed_run(store, after_lines: int, extra_delay: float) -> int:
    """Start an ingest, SIGKILL it after it reported ``after_lines`` written batches (+ a delay).
    Returns the process's exit status: -9 when the kill landed before it finished."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "ingest.py"), "--verbose"],
        cwd=ROOT,
        env={**ingest_env(store), "RAG_EMBED_BATCH_SIZE": "4"},
        stdout=subprocess.PIPE,
        text=True,
    )
    seen = []
    while len(seen) < after_lines:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
    time.sleep(extra_delay)
    proc.send_signal(signal.SIGKILL)
    return proc.wait(30)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    docs = tmp_path_factory.mktemp("crash") / "docs"
    write_corpus(docs, 24)
    return docs


@pytest.fixture(scope="module")
def clean(corpus, tmp_path_factory):
    """The store a clean, uninterrupted run produces."""
    store = tmp_path_factory.mktemp("clean") / "store"
    result = subprocess.run(
        [sys.executable, str(ROOT / "ingest.py"), "--docs", str(corpus)],
        cwd=ROOT,
        env=ingest_env(store),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("written") == 0 and "24 added" in result.stdout
    return snapshot(RAG(docs_dir=corpus, store_dir=store))


@pytest.mark.parametrize(("after_lines", "delay"), [(0, 0.0), (1, 0.05), (3, 0.3), (6, 0.0)])
def test_killed_ingest_resumes_to_the_clean_result(corpus, clean, tmp_path, monkeypatch, after_lines, delay):
    monkeypatch.setenv("RAG_DOCS_DIR", str(corpus))
    store = tmp_path / "store"
    assert killed_run(store, after_lines, delay) == -signal.SIGKILL
    rag = RAG(store_dir=store)
    rerun = rag.ingest()
    assert rerun.ok and not rerun.rebuilt
    got = snapshot(rag)
    assert got.keys() == clean.keys()  # same chunk ids, none missing, none extra
    assert {k: v[4] for k, v in got.items()} == {k: v[4] for k, v in clean.items()}
    assert rerun.chunks == len(clean)
    assert sorted(rag.keyword_index().ids) == sorted(clean)  # the keyword index follows, even killed at the end
    assert all(d.chunks > 0 for d in rag.documents()) and len(rag.documents()) == 24
    assert rag.ingest().embedded == 0  # and now it is settled


def test_killed_during_an_update_then_files_change_again(corpus, tmp_path, monkeypatch):
    """Kill while files are being replaced, change them once more, rerun: the store matches the new files."""
    docs = tmp_path / "docs"
    write_corpus(docs, 10)
    monkeypatch.setenv("RAG_DOCS_DIR", str(docs))
    store = tmp_path / "store"
    RAG(store_dir=store).ingest()
    for i in range(10):
        (docs / f"doc{i:02d}.md").write_text(f"# Changed {i}\n\nThe otter number {i} swims in river {i}.\n" * 30)
    assert killed_run(store, 1, 0.1) == -signal.SIGKILL
    (docs / "doc03.md").unlink()
    (docs / "doc04.md").write_text("Final version: the heron stands still.")
    rag = RAG(store_dir=store)
    assert rag.ingest().ok
    got = snapshot(rag)
    fresh = RAG(store_dir=tmp_path / "fresh")
    fresh.ingest()
    assert got == snapshot(fresh)


CANARY = "The canary of Skellig Rock sings exactly seventeen songs at dawn."
CANARY_QUESTION = "How many songs does the canary of Skellig Rock sing at dawn?"


def _raw_state(store, source: str) -> tuple[str | None, int]:
    """(ledger state, stored chunks) of ``source``, read with Chroma itself: what a killed run left."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.PersistentClient(path=str(store), settings=ChromaSettings(anonymized_telemetry=False))
    ledger = client.get_collection("rag-files").get(ids=[source], include=["metadatas"])
    chunks = client.get_collection("rag").get(where={"source": source}, include=[])
    return (ledger["metadatas"][0]["state"] if ledger["ids"] else None), len(chunks["ids"])


def test_a_document_killed_in_its_write_phase_is_never_half_listed_or_retrieved(seed_docs, tmp_path):
    """Regression: an ingest killed after the store wrote part of canary.txt left it `pending`: missing from
    the Documents tab, impossible to delete, but retrieved and cited by every question. On start, a pending
    document is rolled back (listed and searchable again after the next ingest), and until then it is never
    retrieved, even while an ingest that holds the lock is still writing it."""
    from rag.store import ingest_lock

    store = tmp_path / "store"
    RAG(docs_dir=seed_docs, store_dir=store).ingest()
    (seed_docs / "canary.txt").write_text(f"Field notes.\n\n{CANARY}\n\n" + "The sea was calm. " * 300)
    env = {**ingest_env(store), "RAG_DOCS_DIR": str(seed_docs), "RAG_TEST_EXIT_AFTER_WRITES": "1"}
    killed = subprocess.run(
        [sys.executable, str(ROOT / "ingest.py"), "-q"], cwd=ROOT, env=env, capture_output=True, timeout=300
    )
    assert killed.returncode == 137, killed.stderr  # exited right after writing canary.txt's chunks
    state, chunks = _raw_state(store, "canary.txt")
    assert state == "pending" and chunks > 0  # the half-written document the probe found

    # An ingest still holds the lock (it may be finishing the document): nothing is rolled back, and
    # nothing pending is retrieved, by either retriever.
    settings = RAG(docs_dir=seed_docs, store_dir=store).settings
    with ingest_lock(settings, timeout=0):
        busy = RAG(docs_dir=seed_docs, store_dir=store)
        for fusion in ("dense", "bm25", "rrf"):
            assert all(p.source != "canary.txt" for p in busy.search(CANARY_QUESTION, k=10, fusion=fusion).passages)
        assert "canary.txt" not in [d.source for d in busy.documents()]
        assert _raw_state(store, "canary.txt")[0] == "pending"

    # A fresh start rolls it back: absent from the ledger and the store, so never cited.
    rag = RAG(docs_dir=seed_docs, store_dir=store)
    answer = rag.ask(CANARY_QUESTION)
    assert all(c.source != "canary.txt" for c in answer.citations) and "seventeen" not in answer.text
    assert _raw_state(store, "canary.txt") == (None, 0)
    assert [d.source for d in rag.documents()] == ["hashkey-interview.txt"]

    # The next ingest adds it whole.
    report = rag.ingest()
    assert report.added == ["canary.txt"] and report.ok
    answer = rag.ask(CANARY_QUESTION)
    assert "seventeen" in answer.text and answer.citations[0].source == "canary.txt"
