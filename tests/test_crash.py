"""Crash safety: a real `python ingest.py` killed mid-run, then run again, must leave exactly the store a clean
run leaves: the same chunk ids and texts, no duplicates, nothing missing.

The kill lands at an exact point: RAG_TEST_EXIT_AT_WRITE=N makes the ingest exit at once, as SIGKILL leaves
it, right after its Nth write to the store (rag/ingest/pipeline.py `_wrote`), so each case is the same every run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rag import RAG

from .conftest import ROOT
from .test_ingest import snapshot, write_corpus

pytestmark = pytest.mark.slow


def killed_run(docs, store, at_write: int) -> int:
    """Run `python ingest.py` on ``docs`` into ``store``, killed right after its ``at_write``-th write to the
    store. Returns its exit status: 137 when it was killed there (0 if it finished first)."""
    env = {**os.environ, "RAG_DOCS_DIR": str(docs), "RAG_STORE_DIR": str(store), "RAG_EMBED_BATCH_SIZE": "4"}
    env["RAG_TEST_EXIT_AT_WRITE"] = str(at_write)
    return subprocess.run(
        [sys.executable, str(ROOT / "ingest.py"), "-q"], cwd=ROOT, env=env, capture_output=True, timeout=300
    ).returncode


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    docs = tmp_path_factory.mktemp("crash") / "docs"
    write_corpus(docs, 6)
    return docs


@pytest.fixture(scope="module")
def clean(corpus, tmp_path_factory):
    """The store a clean, uninterrupted run produces."""
    rag = RAG(docs_dir=corpus, store_dir=tmp_path_factory.mktemp("clean") / "store")
    assert rag.ingest().added == [f"doc{i:02d}.md" for i in range(6)]
    return snapshot(rag)


# The writes of an ingest of the 6-document corpus, 4 chunks a model batch (two flushes, of 4 and 2 files):
# 1 dirty flag; 2 ledger pending (doc00-03); 3 their chunks; 4-7 each one's older versions deleted;
# 8 ledger done; 9 pending (doc04-05); 10 chunks; 11-12 deletions; 13 done; 14 dirty flag cleared.
KILL_POINTS = {
    1: "store-flagged-dirty",
    2: "first-files-pending-no-chunks",
    3: "chunks-written-still-pending",
    5: "among-the-deletions-of-old-versions",
    8: "first-flush-done-second-untouched",
    13: "all-done-but-the-dirty-flag",
}


@pytest.mark.parametrize("at_write", KILL_POINTS, ids=KILL_POINTS.values())
def test_killed_ingest_resumes_to_the_clean_result(corpus, clean, tmp_path, at_write):
    store = tmp_path / "store"
    assert killed_run(corpus, store, at_write) == 137
    rag = RAG(docs_dir=corpus, store_dir=store)
    rerun = rag.ingest()
    assert rerun.ok and not rerun.rebuilt
    got = snapshot(rag)
    assert got.keys() == clean.keys()  # same chunk ids, none missing, none extra
    assert {k: v[4] for k, v in got.items()} == {k: v[4] for k, v in clean.items()}
    assert rerun.chunks == len(clean)
    assert sorted(rag.keyword_index().ids) == sorted(clean)  # the keyword index follows, even killed at the end
    assert all(d.chunks > 0 for d in rag.documents()) and len(rag.documents()) == 6
    assert rag.ingest().embedded == 0  # and now it is settled


def test_the_kill_points_are_where_they_say(corpus, tmp_path, monkeypatch):
    """The writes of a clean run, seen in-process: each store write is counted by the hook, in the order
    KILL_POINTS describes, 14 in all."""
    import rag.ingest.pipeline
    from rag.index.store import Store

    seen: list[str] = []

    def spy(name: str):
        write = getattr(Store, name)

        def recorded(self, *args, **kwargs):
            seen.append(f"mark {args[0][0].state}" if name == "mark" else name)
            return write(self, *args, **kwargs)

        return recorded

    for name in ("begin_write", "mark", "upsert", "delete_source", "forget", "end_write"):
        monkeypatch.setattr(Store, name, spy(name))
    monkeypatch.setattr(rag.ingest.pipeline, "_wrote", lambda: seen.append("counted"))
    monkeypatch.setenv("RAG_EMBED_BATCH_SIZE", "4")
    RAG(docs_dir=corpus, store_dir=tmp_path / "store").ingest()
    writes, counted = seen[0::2], seen[1::2]
    assert counted == ["counted"] * len(writes)  # every write, and only a write, is counted right after it
    first = ["mark pending", "upsert"] + ["delete_source"] * 4 + ["mark done"]
    second = ["mark pending", "upsert"] + ["delete_source"] * 2 + ["mark done"]
    assert writes == ["begin_write", *first, *second, "end_write"]


def test_killed_during_an_update_then_files_change_again(tmp_path):
    """Kill while files are being replaced (after the first one's old version was deleted, the others' not
    yet), change them once more, rerun: the store matches the new files."""
    docs = tmp_path / "docs"
    write_corpus(docs, 6)
    store = tmp_path / "store"
    RAG(docs_dir=docs, store_dir=store).ingest()
    for i in range(6):
        (docs / f"doc{i:02d}.md").write_text(f"# Changed {i}\n\nThe otter number {i} swims in river {i}.\n" * 30)
    assert killed_run(docs, store, 4) == 137  # 1 dirty flag, 2 pending, 3 new chunks, 4 doc00's old ones gone
    (docs / "doc03.md").unlink()
    (docs / "doc04.md").write_text("Final version: the heron stands still.")
    rag = RAG(docs_dir=docs, store_dir=store)
    assert rag.ingest().ok
    got = snapshot(rag)
    fresh = RAG(docs_dir=docs, store_dir=tmp_path / "fresh")
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
    from rag.index.store import ingest_lock

    store = tmp_path / "store"
    RAG(docs_dir=seed_docs, store_dir=store).ingest()
    (seed_docs / "canary.txt").write_text(f"Field notes.\n\n{CANARY}\n\n" + "The sea was calm. " * 300)
    assert killed_run(seed_docs, store, 3) == 137  # 1 dirty flag, 2 canary.txt pending, 3 its chunks written
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
