"""Shared fixtures: every test gets its own store under tmp_path, offline, and optionally a real Chroma server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Point every store at tmp_path and clear RAG_* settings from the caller's shell: tests never touch the
    real vectorstore/."""
    for key in list(os.environ):
        if key.startswith("RAG_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RAG_STORE_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("RAG_DOCS_DIR", str(tmp_path / "docs"))
    # The cross-lingual index embeds with a 300M-parameter model (~5x MiniLM's cost); tests of it turn it
    # on themselves (tests/test_crosslingual.py), every other test stores English text and goes without.
    monkeypatch.setenv("RAG_CROSSLINGUAL", "off")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")


@pytest.fixture
def seed_docs(tmp_path) -> Path:
    """A copy of seeds/ in tmp_path (tests change and delete files in it)."""
    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs)
    return docs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, proc: subprocess.Popen, timeout: float = 60) -> bool:
    """Wait until ``host:port`` accepts connections: True; False if ``proc`` exits first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return True
        except OSError:
            if proc.poll() is not None:
                return False
            time.sleep(0.2)
    return False


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """A real `chroma run` on 127.0.0.1, for the whole session: yields (host, port)."""
    exe = Path(sys.executable).with_name("chroma")
    path = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    log = open(path / "server.log", "wb")
    proc = subprocess.Popen(
        [str(exe), "run", "--path", str(path / "data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    if not wait_for_port("127.0.0.1", port, proc, timeout=60):
        if proc.poll() is not None:
            raise RuntimeError(f"chroma run exited: {(path / 'server.log').read_text()[-2000:]}")
        proc.kill()
        raise RuntimeError("chroma run did not start listening within 60s")
    yield "127.0.0.1", port
    stop(proc)
    log.close()


def stop(proc: subprocess.Popen) -> None:
    """Terminate a server started by a fixture; kill it if it does not exit within 10 s."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


_collections = iter(range(10**6))


@pytest.fixture(params=["embedded", "server"])
def mode(request, monkeypatch) -> str:
    """Run a test against the embedded store and against a real Chroma server (own collection per test)."""
    if request.param == "server":
        host, port = request.getfixturevalue("chroma_server")
        monkeypatch.setenv("RAG_CHROMA_HOST", host)
        monkeypatch.setenv("RAG_CHROMA_PORT", str(port))
        monkeypatch.setenv("RAG_COLLECTION", f"test-{os.getpid()}-{next(_collections)}")
    return request.param
