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
