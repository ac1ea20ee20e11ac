"""Hostile files (rag/limits.py, rag/ingest/sandbox.py): zip bombs, element floods, too many pages, and a parse
that needs more memory than its worker may have. Every one is refused with one line, in the library, the
app's upload path and `ingest.py`, and leaves nothing behind."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from rag.app.uploads import add_files
from rag.errors import DocumentError
from rag.ingest.loaders import load
from rag.limits import MB, Limits
from tests.conftest import ROOT, SEEDS, text_pdf

PARAGRAPH = b"<w:p><w:r><w:t>bomb</w:t></w:r></w:p>"


def docx_bomb(path: Path, xml_mb: float, *, paragraph: bytes = PARAGRAPH, one_text: bool = False) -> Path:
    """A real .docx (made by python-docx) whose word/document.xml is rewritten to inflate to ``xml_mb`` MB:
    the repeated paragraph of the bomb that took the app down, or one huge text node (``one_text``)."""
    import docx

    made = io.BytesIO()
    document = docx.Document()
    document.add_paragraph("A harmless first paragraph.")
    document.save(made)
    size = int(xml_mb * MB)
    with zipfile.ZipFile(made) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "word/document.xml":
                head, tail = data.split(b"<w:body>")
                body = (
                    b"<w:p><w:r><w:t>" + b"b" * size + b"</w:t></w:r></w:p>"
                    if one_text
                    else paragraph * (size // len(paragraph))
                )
                data = head + b"<w:body>" + body + tail
            out.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    return path


def test_a_docx_bomb_is_refused_by_its_declared_size_with_one_line(tmp_path):
    """Regression: a 3 MB .docx inflating to 1.1 GB grew the app to 9 GB until it was killed."""
    bomb = docx_bomb(tmp_path / "notes.docx", 12)
    assert bomb.stat().st_size < MB  # small on disk
    with pytest.raises(DocumentError) as info:
        load(bomb, "notes.docx", 20 * MB, Limits(expand_mb=5))
    assert str(info.value) == "notes.docx: expands to more than 5 MB; not read"


def test_a_docx_compressed_far_beyond_any_real_document_is_refused(tmp_path):
    bomb = docx_bomb(tmp_path / "notes.docx", 12)
    with pytest.raises(
        DocumentError, match=r"^notes\.docx: word/document\.xml is compressed [\d,]+ to 1, more than 50 to 1"
    ):
        load(bomb, "notes.docx", 20 * MB, Limits(ratio=50))


def test_a_docx_whose_directory_lies_about_its_sizes_is_stopped_at_what_it_really_inflates_to(tmp_path):
    """The sizes in a zip's directory are the attacker's to write: the bytes that come out are counted too."""
    bomb = docx_bomb(tmp_path / "liar.docx", 3)
    data = bytearray(bomb.read_bytes())
    with zipfile.ZipFile(bomb) as zf:
        info = zf.getinfo("word/document.xml")
    declared = info.file_size.to_bytes(4, "little")
    end = data.rindex(b"PK\x05\x06")  # the central directory: make every entry declare 1,000 bytes
    data[:end] = data[:end].replace(declared, (1000).to_bytes(4, "little"))
    bomb.write_bytes(bytes(data))
    with zipfile.ZipFile(bomb) as zf:
        assert zf.getinfo("word/document.xml").file_size == 1000  # the lie is what zipfile reads
    with pytest.raises(DocumentError, match=r"^liar\.docx: (expands to more than 1 MB|not a valid \.docx file)"):
        load(bomb, "liar.docx", 20 * MB, Limits(expand_mb=1, ratio=10**9))


def test_a_docx_flooded_with_elements_is_refused(tmp_path):
    flood = docx_bomb(tmp_path / "flood.docx", 0.5)
    with pytest.raises(DocumentError, match=r"^flood\.docx: holds more than 1,000 elements; not read$"):
        load(flood, "flood.docx", 20 * MB, Limits(elements=1000))


def test_one_huge_text_node_is_one_line_not_lxmls_message(tmp_path):
    huge = docx_bomb(tmp_path / "huge.docx", 11, one_text=True)
    with pytest.raises(DocumentError) as info:
        load(huge, "huge.docx", 20 * MB, Limits(ratio=10**9))
    assert str(info.value) == "huge.docx: holds a run of text longer than 10 MB; not read"


def test_an_html_page_flooded_with_elements_is_refused(tmp_path):
    page = tmp_path / "flood.html"
    page.write_text("<html><body>" + "<div><span>x</span></div>" * 5000 + "</body></html>")
    with pytest.raises(DocumentError, match=r"^flood\.html: holds more than 1,000 elements; not read$"):
        load(page, "flood.html", 20 * MB, Limits(elements=1000))


def test_a_pdf_with_more_pages_than_allowed_is_refused(tmp_path):
    from tests.test_loaders import make_pdf

    pdf = tmp_path / "long.pdf"
    pdf.write_bytes(make_pdf([[f"Page {i} text."] for i in range(5)]))
    with pytest.raises(DocumentError, match=r"^long\.pdf: has 5 pages, more than 3; not read$"):
        load(pdf, "long.pdf", 20 * MB, Limits(pdf_pages=3))
    assert load(pdf, "long.pdf", 20 * MB, Limits(pdf_pages=5)).text.startswith("Page 0 text.")


def test_a_parse_past_the_memory_ceiling_fails_in_its_worker_not_in_this_process(tmp_path):
    """Past every size bound (raised here), the worker's memory ceiling still holds: the parse of 40 MB
    of paragraphs needs more than 400 MB, the worker fails, this process carries on, and the next file
    gets a fresh worker."""
    bomb = docx_bomb(tmp_path / "big.docx", 40)
    open_limits = Limits(expand_mb=1000, ratio=10**9, elements=10**9, memory_mb=400)
    with pytest.raises(DocumentError) as info:
        load(bomb, "big.docx", 20 * MB, open_limits)
    assert str(info.value) == "big.docx: needs more than 400 MB of memory to read (RAG_PARSE_MEMORY_MB); not read"
    small = docx_bomb(tmp_path / "small.docx", 0.01)
    assert "bomb" in load(small, "small.docx", 20 * MB, open_limits).text


def test_a_users_script_without_a_main_guard_still_has_its_pdfs_parsed(tmp_path):
    """The parse worker is a spawned process, and a spawned process imports its parent's main module again:
    a plain script calling ``RAG().ingest()`` (no ``if __name__ == "__main__":``) ran a second ingest inside
    the worker, which waited for the store its parent had locked, and every PDF failed ("did not start")."""
    docs = Path(os.environ["RAG_DOCS_DIR"])
    docs.mkdir(parents=True)
    (docs / "ferry.pdf").write_bytes(text_pdf("The ferry to Peng Chau leaves at nine."))
    script = tmp_path / "my_ingest.py"
    script.write_text("from rag import RAG\nprint(RAG().ingest().summary())\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=os.environ, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "+1 added" in done.stdout and "0 failed" in done.stdout, done.stdout + done.stderr[-2000:]
    assert "StoreLockedError" not in done.stderr


def test_an_uploaded_bomb_is_refused_and_leaves_nothing_in_the_documents_folder(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs)
    before = sorted(p.name for p in docs.iterdir())
    upload = docx_bomb(tmp_path / "gradio-tmp", 12)  # Gradio keeps uploads under names of its own
    result = add_files([("notes.docx", upload)], docs, 20.0, Limits(expand_mb=5))
    assert result.refused == [("notes.docx", "expands to more than 5 MB; not read")] and not result.saved
    assert sorted(p.name for p in docs.iterdir()) == before  # no notes.docx, no hidden .upload-* file


def test_a_staged_upload_left_by_a_killed_app_is_removed_when_the_app_starts(tmp_path, monkeypatch):
    """Regression: each crash of the app while it read an upload left a hidden .upload-*.docx behind."""
    from rag import RAG
    from rag.app.handlers import handlers

    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs)
    (docs / ".upload-k3j2.docx").write_bytes(b"half a file")
    handlers(RAG(docs_dir=docs, store_dir=tmp_path / "store"))
    assert not (docs / ".upload-k3j2.docx").exists()


@pytest.mark.slow
def test_ingest_py_refuses_a_bomb_in_one_line_and_ingests_the_rest(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs)
    docx_bomb(docs / "notes.docx", 12)
    env = {**os.environ, "RAG_DOCS_DIR": str(docs), "RAG_STORE_DIR": str(tmp_path / "store"), "RAG_MAX_EXPAND_MB": "5"}
    out = subprocess.run(
        [sys.executable, str(ROOT / "ingest.py"), "-q"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 1, out.stderr
    assert out.stderr.strip() == "failed  notes.docx: expands to more than 5 MB; not read"
    assert "+1 added" in out.stdout
    assert sorted(p.name for p in docs.iterdir()) == ["hashkey-interview.txt", "notes.docx"]
