"""The notebook in notebooks/ runs top to bottom against a fresh store and shows what it promises."""

from __future__ import annotations

import re
import shutil

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import ROOT, SEEDS

pytestmark = pytest.mark.slow


def _tree(folder) -> dict[str, tuple[int, int]]:
    """{relative path: (size, mtime in ns)} of every file under ``folder`` (empty when it does not exist)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()
    }


def test_quickstart_notebook_executes(tmp_path, monkeypatch):
    real_store = _tree(ROOT / "vectorstore")
    shutil.copytree(SEEDS, tmp_path / "docs", dirs_exist_ok=True)
    monkeypatch.setenv("RAG_DOCS_DIR", str(tmp_path / "docs"))
    monkeypatch.setenv("RAG_STORE_DIR", str(tmp_path / "store"))
    nb = nbformat.read(ROOT / "notebooks" / "quickstart.ipynb", as_version=4)
    NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "notebooks")}}
    ).execute()
    outputs = {i: cell.outputs for i, cell in enumerate(nb.cells) if cell.cell_type == "code"}
    assert not any(o.get("output_type") == "error" for outs in outputs.values() for o in outs)
    text = "\n".join(
        o.get("text", "")
        + str(o.get("data", {}).get("text/markdown", ""))
        + str(o.get("data", {}).get("text/plain", ""))
        for outs in outputs.values()
        for o in outs
    )
    assert "+1 added" in text  # the ingest ran on the fresh store
    assert "2022" in text and "[1] **hashkey-interview.txt**" in text  # the answer rendered with footnotes
    assert "The documents do not contain an answer" in text
    # A whole-document question: recognised as one and answered from every passage of the document.
    assert "\nsummary\n" in f"\n{text}" and re.search(r"Covered all \d+ passages of hashkey-interview.txt", text)
    # The llama-index part: nodes with rag's metadata and offsets, and verify() flagging the invented sentence.
    assert "TextNode hashkey-interview.txt" in text
    assert "over 600 today. [1]" in text and "in 1850. [unverified]" in text
    # RAG_STORE_DIR took effect: the notebook wrote its store under tmp_path and left the real one untouched
    assert f"PosixPath('{tmp_path / 'store'}')" in text and (tmp_path / "store" / "chroma.sqlite3").is_file()
    assert _tree(ROOT / "vectorstore") == real_store
