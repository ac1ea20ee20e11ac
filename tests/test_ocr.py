"""rag.ingest.ocr through rag.ingest.loaders: real scanned pages (a PDF page rendered to a picture), real Tesseract."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import pytesseract
import pytest
from PIL import Image
from pypdf import PdfReader

from rag.errors import DocumentError
from rag.ingest import ocr
from rag.ingest.loaders import SUPPORTED_SUFFIXES, load
from rag.limits import Limits

from .conftest import blank_page, image_pdf, join_pdfs, render_chinese, render_page, text_pdf

LIMIT = 20 * 2**20
STORMS = "Harbour log, winter 1893. The keeper counted seventeen storms and lit the lamp at dusk."


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def words(text: str) -> list[str]:
    return " ".join(text.split()).split(" ")


def test_a_scanned_page_is_read_by_ocr_and_keeps_its_page_number(tmp_path):
    scanned = image_pdf([render_page(STORMS)])
    assert PdfReader(io.BytesIO(scanned)).pages[0].extract_text().strip() == ""  # really no text layer
    path = write(tmp_path, "log.pdf", join_pdfs(text_pdf("Foreword of the harbour log."), scanned))
    doc = load(path, "log.pdf", LIMIT)
    assert doc.text.startswith("Foreword of the harbour log.\n\n")
    assert words(doc.text.split("\n\n", 1)[1]) == words(STORMS)  # every word, in order
    assert doc.locate(doc.text.index("seventeen storms")).page == 2
    assert doc.locate(doc.text.index("Foreword")).page == 1
    assert (doc.ocr_pages, doc.empty_pages) == (1, [])  # page 1 has a text layer: not OCRed


def test_a_pdf_with_a_text_layer_is_never_ocred(tmp_path, monkeypatch):
    """With Tesseract gone, a text PDF still loads: nothing asked for OCR."""
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(tmp_path / "no-tesseract"))
    path = write(tmp_path, "text.pdf", join_pdfs(text_pdf("First page."), text_pdf("Second page.")))
    doc = load(path, "text.pdf", LIMIT, Limits(memory_mb=0))  # in-process: the patch holds there
    assert doc.text == "First page.\n\nSecond page."
    assert (doc.ocr_pages, doc.empty_pages) == (0, [])


def test_a_blank_scanned_page_is_reported_empty(tmp_path):
    path = write(tmp_path, "scan.pdf", image_pdf([render_page(STORMS), blank_page()]))
    doc = load(path, "scan.pdf", LIMIT)
    assert "seventeen storms" in doc.text
    assert (doc.ocr_pages, doc.empty_pages) == (2, [2])


def test_a_scan_with_no_text_at_all_is_refused(tmp_path):
    path = write(tmp_path, "blank.pdf", image_pdf([blank_page()]))
    with pytest.raises(DocumentError) as info:
        load(path, "blank.pdf", LIMIT)
    assert str(info.value) == "blank.pdf: no text, not even by OCR"


@pytest.mark.parametrize("suffix, kind", [(".png", "PNG"), (".jpg", "JPEG"), (".jpeg", "JPEG"), (".tiff", "TIFF")])
def test_an_image_file_is_a_document(tmp_path, suffix, kind):
    assert suffix in SUPPORTED_SUFFIXES
    out = io.BytesIO()
    render_page(STORMS).save(out, kind)
    doc = load(write(tmp_path, "photo" + suffix, out.getvalue()), "photo" + suffix, LIMIT)
    assert words(doc.text) == words(STORMS)
    assert doc.sections[0].page is None  # one picture: no page numbers to cite
    assert doc.ocr_pages == 1


def test_a_palette_png_with_transparency_is_read_without_a_warning(tmp_path):
    """Icons and diagrams in HTML documentation folders are often palette PNGs whose transparency is a byte
    table; Pillow warns on every such file unless it goes through RGBA, and the warnings filled the ingest log."""
    page = render_page(STORMS).convert("P")
    out = io.BytesIO()
    page.save(out, "PNG", transparency=bytes([255] + [0] * 255))
    reopened = Image.open(io.BytesIO(out.getvalue()))
    assert reopened.mode == "P" and isinstance(reopened.info["transparency"], bytes)  # the case Pillow warns on
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        doc = load(write(tmp_path, "icon.png", out.getvalue()), "icon.png", LIMIT, Limits(memory_mb=0))
    assert words(doc.text) == words(STORMS)


def test_pages_of_a_multipage_tiff_are_numbered(tmp_path):
    out = io.BytesIO()
    render_page("Lantern oil was ordered in March.").save(
        out, "TIFF", save_all=True, append_images=[render_page(STORMS)]
    )
    doc = load(write(tmp_path, "fax.tif", out.getvalue()), "fax.tif", LIMIT)
    assert doc.locate(doc.text.index("Lantern oil")).page == 1
    assert doc.locate(doc.text.index("seventeen storms")).page == 2


def test_a_chinese_scanned_page_is_read(tmp_path):
    """Simplified and Traditional Chinese on one page, read with the default languages (eng+chi_sim+chi_tra);
    Tesseract's spaces between the characters are dropped."""
    page = render_chinese(["港口日志记录了十七场风暴。", "Harbour log 1893", "港口日誌記錄了十七場風暴。"])
    doc = load(write(tmp_path, "日志.pdf", image_pdf([page])), "日志.pdf", LIMIT)
    assert "港口日志记录了十七场风暴。" in doc.text
    assert "港口日誌記錄了十七場風暴。" in doc.text
    assert "Harbour log 1893" in doc.text
    assert doc.sections[0].page == 1


def test_missing_tesseract_is_one_line_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(tmp_path / "no-tesseract"))
    path = write(tmp_path, "scan.pdf", image_pdf([render_page(STORMS)]))
    with pytest.raises(DocumentError) as info:
        load(path, "scans/scan.pdf", LIMIT, Limits(memory_mb=0))
    assert str(info.value) == (
        "scans/scan.pdf: needs OCR, but Tesseract is not installed (apt-get install tesseract-ocr "
        "tesseract-ocr-eng tesseract-ocr-chi-sim tesseract-ocr-chi-tra); not read"
    )


def test_a_page_read_once_is_remembered_by_its_content(tmp_path, monkeypatch):
    """An upload is loaded to check it, then ingested: the second load reuses the first one's OCR."""
    scan = image_pdf([render_page(STORMS)])
    first = load(write(tmp_path, "upload.pdf", scan), "upload.pdf", LIMIT, Limits(memory_mb=0))
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(tmp_path / "no-tesseract"))
    again = load(write(tmp_path, "scan.pdf", scan), "scan.pdf", LIMIT, Limits(memory_mb=0))
    assert again.text == first.text and "seventeen storms" in again.text
    assert again.ocr_pages == 1  # still counted as read by OCR
    other = image_pdf([render_page(STORMS.replace("seventeen", "sixteen"))])
    with pytest.raises(DocumentError, match="Tesseract is not installed"):  # other content: not remembered
        load(write(tmp_path, "other.pdf", other), "other.pdf", LIMIT, Limits(memory_mb=0))


def test_missing_language_data_names_its_package(tmp_path):
    path = write(tmp_path, "scan.png", _png(render_page(STORMS)))
    with pytest.raises(DocumentError) as info:
        load(path, "scan.png", LIMIT, Limits(ocr_languages="eng+kat_old", memory_mb=0))
    assert info.value.reason == (
        "needs OCR in kat_old, whose language data is not installed (tesseract-ocr-kat-old); not read"
    )


def test_ocr_past_its_time_limit_refuses_the_file(tmp_path):
    """Tesseract cannot even start in a millisecond: the page is stopped at the limit, and the file says so."""
    path = write(tmp_path, "slow.png", _png(render_page(STORMS)))
    with pytest.raises(DocumentError) as info:
        load(path, "slow.png", LIMIT, Limits(ocr_timeout=0.001, memory_mb=0))  # in-process: no worker remembers it
    assert info.value.reason == "OCR of page 1 took longer than 0.001 s (RAG_OCR_TIMEOUT); not read"


def test_an_image_past_the_pixel_limit_is_refused_before_decoding(tmp_path):
    """A decompression bomb: a PNG of a few hundred bytes whose header declares 40,000 x 40,000 pixels."""
    path = write(tmp_path, "bomb.png", _png_header_only(40_000, 40_000))
    assert path.stat().st_size < 1000
    with pytest.raises(DocumentError) as info:
        load(path, "bomb.png", LIMIT)
    assert info.value.reason == "image of 1,600,000,000 pixels, more than 100,000,000 (RAG_MAX_IMAGE_PIXELS); not read"


@pytest.mark.parametrize("limit", [400_000, 600_000])  # Pillow refuses past twice its limit, warns past it
def test_an_image_past_a_lower_pixel_limit_is_refused(tmp_path, limit):
    image = render_page(STORMS)
    pixels = image.width * image.height
    assert 2 * 400_000 < pixels < 2 * 600_000  # one case on each side of Pillow's own refusal
    with pytest.raises(DocumentError) as info:
        load(write(tmp_path, "scan.png", _png(image)), "scan.png", LIMIT, Limits(max_image_pixels=limit))
    assert info.value.reason == f"image of {pixels:,} pixels, more than {limit:,} (RAG_MAX_IMAGE_PIXELS); not read"


def test_a_tiff_with_more_pages_than_the_limit_is_refused(tmp_path):
    out = io.BytesIO()
    blank_page().save(out, "TIFF", save_all=True, append_images=[blank_page(), blank_page()])
    with pytest.raises(DocumentError) as info:
        load(write(tmp_path, "fax.tiff", out.getvalue()), "fax.tiff", LIMIT, Limits(pdf_pages=2))
    assert info.value.reason == "has 3 pages, more than 2; not read"


def test_a_pdf_page_is_rendered_within_the_pixel_limit(monkeypatch):
    """A PDF chooses its page size; the render is scaled down to the limit instead of 300 dpi."""
    seen: list[tuple[int, int]] = []
    monkeypatch.setattr(ocr, "recognise", lambda image, rel, where, limits: seen.append(image.size) or "")
    data = image_pdf([render_page(STORMS)])
    assert ocr.pdf_page(data, 1, "a.pdf", Limits(max_image_pixels=200_000)) == ""
    assert ocr.pdf_page(data, 1, "a.pdf", Limits()) == ""
    (w, h), (w300, h300) = seen
    assert 190_000 < w * h <= 200_000
    box = PdfReader(io.BytesIO(data)).pages[0].mediabox  # in points, 72 to the inch
    assert abs(w300 - box.width * 300 / 72) < 1.5 and abs(h300 - box.height * 300 / 72) < 1.5  # 300 dpi


def test_a_damaged_image_is_not_a_valid_image(tmp_path):
    data = _png(render_page(STORMS))
    with pytest.raises(DocumentError) as info:
        load(write(tmp_path, "cut.png", data[: len(data) // 2]), "cut.png", LIMIT)
    assert info.value.reason.startswith("not a valid image (")


def test_tidy_drops_spaces_between_chinese_characters_only():
    assert ocr.tidy("记录 了 十 七 场 风暴 。 In 1893 the keeper") == "记录了十七场风暴。 In 1893 the keeper"


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and header for a ``width`` x ``height`` grayscale image, with one tiny IDAT."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")
