"""Server-side checks of uploaded files, and adding/deleting document files (rag/app/uploads.py)."""

from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path

import pytest

from rag import RAG
from rag.app.uploads import (
    UploadError,
    add_files,
    check_size,
    check_type,
    delete_file,
    document_path,
    has_documents,
    safe_name,
)


@pytest.mark.parametrize(
    ("name", "saved_as"),
    [
        ("report.pdf", "report.pdf"),
        ("Résumé final (v2).docx", "Résumé final (v2).docx"),
        ("日本語のメモ.md", "日本語のメモ.md"),
        ("Ελληνικά σημειώσεις.txt", "Ελληνικά σημειώσεις.txt"),
        ("notes/sub/a.md", "a.md"),  # a dropped folder: keep the name, drop the folders
        ("notes\\a.md", "a.md"),
        ("e\u0301te\u0301.txt", "\u00e9t\u00e9.txt"),  # decomposed accents -> one NFC name
        ("  spaced name.txt ", "spaced name.txt"),
    ],
)
def test_safe_name_keeps_plain_names_of_any_script(name, saved_as):
    assert safe_name(name) == saved_as


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../../etc/passwd", "'..'"),
        ("..", "'..'"),
        ("a/../../b.txt", "'..'"),
        ("..\\..\\win.ini", "'..'"),
        ("/etc/passwd", "absolute path"),
        ("\\\\server\\share\\a.txt", "absolute path"),
        ("C:\\Windows\\a.txt", "absolute path"),
        ("c:a.txt", "absolute path"),
        ("a\x00.txt", "control"),
        ("line\nbreak.txt", "control"),
        ("bell\x07.txt", "control"),
        ("invoice\u202etxt.exe", "invisible"),  # right-to-left override: shows as "invoiceexe.txt"
        ("zero\u200bwidth.txt", "invisible"),
        (".env", "hidden"),
        ("notes/.secret.md", "hidden"),
        ("", "no name"),
        ("   ", "no name"),
        ("folder/", "only a folder"),
        ("a" * 300 + ".txt", "too long"),
    ],
)
def test_safe_name_refuses_paths_control_characters_and_hidden_names(name, reason):
    with pytest.raises(UploadError, match=reason):
        safe_name(name)


def test_refusal_is_one_printable_line():
    with pytest.raises(UploadError) as info:
        safe_name("evil\n\x1b[31mname.txt")
    message = str(info.value)
    assert "\n" not in message and "\x1b" not in message
    assert message.endswith("a file name may not contain control or invisible characters")


@pytest.mark.parametrize(
    "name",
    ["a.txt", "B.MD", "c.markdown", "d.html", "e.HTM", "f.pdf", "g.docx", "README", "h.md.gz", "i.rst"]
    + ["deck.pptx", "sheet.XLSX", "t.csv", "t.tsv", "letter.odt", "book.epub"],
)
def test_supported_types_pass(name):
    check_type(name)


@pytest.mark.parametrize(("name", "shown"), [("x.exe", "'.exe'"), ("x.docx.sh", "'.sh'"), ("x.tar.gz", "'.tar.gz'")])
def test_other_types_are_refused_with_the_supported_list(name, shown):
    with pytest.raises(UploadError, match=shown) as info:
        check_type(name)
    assert ".pdf" in str(info.value) and ".md" in str(info.value)


def test_size_limits():
    check_size("a.txt", 1, 1.0)
    check_size("a.txt", 2**20, 1.0)  # MB = 2**20 bytes, as the browser's own check counts
    with pytest.raises(UploadError, match=r"too large \(1\.5 MB > limit 1 MB\)"):
        check_size("a.txt", 3 * 2**19, 1.0)
    with pytest.raises(UploadError, match="empty"):
        check_size("a.txt", 0, 1.0)


def _upload(tmp_path: Path, data: bytes | str) -> Path:
    """A file as Gradio leaves an upload: under a name of its own in its own temporary folder."""
    path = Path(tempfile.mkdtemp(dir=tmp_path, prefix="gradio-")) / "upload"
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _listing(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_add_files_saves_good_files_and_refuses_bad_ones_without_touching_anything(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "keep.txt").write_text("An existing document that must not change.")
    (docs / "guide.pdf").write_bytes(b"%PDF-1.4 pretend this is the real guide")
    before = _listing(docs)

    result = add_files(
        [
            ("new notes.md", _upload(tmp_path, "# Notes\n\nThe launch code word is PELICAN.")),
            ("../../escape.txt", _upload(tmp_path, "should never be written")),
            ("tool.exe", _upload(tmp_path, b"MZ\x90\x00")),
            ("big.txt", _upload(tmp_path, "x" * 2_000)),
            ("guide.pdf", _upload(tmp_path, b"not a pdf at all")),  # would replace a document: must not
            (".hidden.txt", _upload(tmp_path, "hidden")),
            ("empty.txt", _upload(tmp_path, b"")),
            ("README", _upload(tmp_path, "Notes\n=====\n\nA text file named the Unix way.")),
            ("core", _upload(tmp_path, bytes(range(256)) * 3)),  # no suffix, but not text
            ("bomb.txt.gz", _upload(tmp_path, gzip.compress(b"a" * 100_000))),  # 100 kB from a few hundred bytes
        ],
        docs,
        max_file_mb=0.001,  # 1000 bytes: big.txt is over
    )

    assert result.saved == ["new notes.md", "README"] and result.replaced == []
    refused = dict(result.refused)
    assert set(refused) == {
        *("../../escape.txt", "tool.exe", "big.txt", "guide.pdf", ".hidden.txt", "empty.txt", "core", "bomb.txt.gz")
    }
    assert refused["core"] == "binary content, not text" and "once decompressed" in refused["bomb.txt.gz"]
    assert "too large" in refused["big.txt"] and "'.exe'" in refused["tool.exe"]
    assert "PDF" in refused["guide.pdf"] or "pdf" in refused["guide.pdf"]
    after = _listing(docs)
    assert after.pop("new notes.md") == b"# Notes\n\nThe launch code word is PELICAN."
    assert after.pop("README").startswith(b"Notes\n=====")
    assert after == before  # nothing else changed: no partial or staged file left, nothing replaced
    assert not (tmp_path / "escape.txt").exists()


def test_add_files_replaces_an_existing_document_with_a_good_new_version(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("old version")
    result = add_files([("a.txt", _upload(tmp_path, "new version of the text"))], docs, 1.0)
    assert result.saved == ["a.txt"] and result.replaced == ["a.txt"]
    assert (docs / "a.txt").read_text() == "new version of the text"


def test_add_files_will_not_write_through_a_symlink(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("outside the docs folder")
    (docs / "link.txt").symlink_to(outside)
    result = add_files([("link.txt", _upload(tmp_path, "overwrite attempt"))], docs, 1.0)
    assert result.saved == [] and "link" in dict(result.refused)["link.txt"]
    assert outside.read_text() == "outside the docs folder"


def test_delete_file_removes_only_known_documents_inside_the_folder(tmp_path):
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "sub" / "a.txt").write_text("a")
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")

    assert delete_file(docs, "sub/a.txt", {"sub/a.txt"}) is True
    assert not (docs / "sub" / "a.txt").exists()
    assert delete_file(docs, "sub/a.txt", {"sub/a.txt"}) is False  # already gone: the ingest still prunes it
    with pytest.raises(UploadError, match="not an ingested document"):
        delete_file(docs, "secret.txt", set())
    with pytest.raises(UploadError, match="outside"):  # even if a forged name slipped into the known set
        document_path(docs, "../secret.txt", {"../secret.txt"})
    assert secret.exists()


def test_deleting_a_symlinked_document_removes_the_link_not_its_target(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    target = tmp_path / "elsewhere.md"
    target.write_text("# Kept")
    (docs / "linked.md").symlink_to(target)
    assert delete_file(docs, "linked.md", {"linked.md"})
    assert not (docs / "linked.md").is_symlink() and target.read_text() == "# Kept"


def test_has_documents(tmp_path):
    docs = tmp_path / "docs"
    (docs / ".git").mkdir(parents=True)
    (docs / ".git" / "x.md").write_text("hidden folder")
    (docs / "song.mp3").write_bytes(b"ID3")  # not a type rag reads (images are, by OCR)
    (docs / "loop").symlink_to(docs)  # a symlink loop must not hang it
    assert not has_documents(docs)
    (docs / "a.txt").write_text("a")
    assert has_documents(docs)


@pytest.mark.slow
def test_uploaded_file_becomes_searchable_and_deleting_it_removes_it(seed_docs, tmp_path):
    """The whole path with the real store and model: add -> ingest -> found; delete -> ingest -> gone."""
    rag = RAG(docs_dir=seed_docs, store_dir=tmp_path / "store")
    rag.ingest()
    fact = "The lighthouse keeper on Skellig Rock feeds exactly forty-two puffins every morning."
    result = add_files([("lighthouse.txt", _upload(tmp_path, fact))], seed_docs, rag.settings.max_file_mb)
    assert result.saved == ["lighthouse.txt"]
    assert rag.ingest().added == ["lighthouse.txt"]
    assert rag.search("How many puffins does the lighthouse keeper feed?", k=1).passages[0].source == "lighthouse.txt"

    known = {d.source for d in rag.documents()}
    assert delete_file(seed_docs, "lighthouse.txt", known)
    assert rag.ingest().removed == ["lighthouse.txt"]
    assert "lighthouse.txt" not in {d.source for d in rag.documents()}
    hits = rag.search("How many puffins does the lighthouse keeper feed?", k=5).passages
    assert all(p.source != "lighthouse.txt" for p in hits)
    assert os.listdir(seed_docs) == ["hashkey-interview.txt"]


@pytest.mark.slow
def test_an_uploaded_scan_is_ocred_once_when_checked_and_not_again_by_the_ingest(tmp_path, monkeypatch):
    """The app checks an upload by loading it, then ingests it; a scan's OCR is remembered in between."""
    import pytesseract

    from rag.limits import Limits

    from .conftest import image_pdf, render_page

    monkeypatch.setenv("RAG_PARSE_MEMORY_MB", "0")  # in-process, so Tesseract can be taken away in between
    rag = RAG()
    scan = image_pdf([render_page("Ferry tickets are sold at the kiosk beside the north pier.")])
    result = add_files([("tickets.pdf", _upload(tmp_path, scan))], rag.settings.docs_dir, 20, Limits.of(rag.settings))
    assert result.saved == ["tickets.pdf"]
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(tmp_path / "no-tesseract"))
    report = rag.ingest()
    assert report.added == ["tickets.pdf"] and report.failed == [] and report.ocr == {"tickets.pdf": (1, [])}
    hit = rag.retrieve("Where are ferry tickets sold?", k=1)[0]
    assert (hit.source, hit.page) == ("tickets.pdf", 1) and "kiosk beside the north pier" in hit.text
