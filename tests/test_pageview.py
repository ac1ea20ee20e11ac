"""The page view of a PDF citation: a real PDF (fpdf2) ingested into a real embedded store, asked about,
and its cited page rendered with the quote's lines highlighted; nothing when the quote is not on the page,
the text view alone when the file is gone or cannot be opened."""

from __future__ import annotations

import base64
import io
import math
import re
from pathlib import Path

import pytest
from PIL import Image

from rag import RAG
from rag.app import pageview
from rag.app.render import render_answer

BREAKWATER = (
    "The north breakwater was rebuilt in 1987 with granite blocks quarried on the island of Tresk, "
    "each weighing about eleven tonnes."
)
GULLS = "Gulls nest on the south pier every April."


def harbour_pdf(path: Path, encrypt: bool = False) -> None:
    """Two A4 pages: a timetable note on page 1, the breakwater sentence (two lines long) on page 2."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 7, "Harbour report. The ferry timetable changes every spring. " * 3)
    pdf.add_page()
    pdf.multi_cell(0, 7, f"Winter notes for the harbour crew. {BREAKWATER} {GULLS} The quay lamp is green.")
    if encrypt:
        pdf.set_encryption(owner_password="owner", user_password="secret")
    path.write_bytes(bytes(pdf.output()))


@pytest.fixture(autouse=True)
def no_pages_remembered(monkeypatch):
    monkeypatch.setattr(pageview, "_cache", type(pageview._cache)())


@pytest.fixture
def harbour(tmp_path):
    """The harbour PDF ingested, and an answer citing its page 2: (rag, answer)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    harbour_pdf(docs / "harbour.pdf")
    rag = RAG(docs_dir=docs, store_dir=tmp_path / "store")
    assert rag.ingest().added == ["harbour.pdf"]
    answer = rag.ask("In which year was the north breakwater rebuilt, and with what stone?")
    assert answer.answered and answer.citations
    cited = answer.citations[0]
    assert (cited.source, cited.page) == ("harbour.pdf", 2) and "1987" in cited.quote
    return rag, answer


def _image(html: str) -> Image.Image:
    """The one page image in ``html``, decoded from its data: URL."""
    sources = re.findall(r'<img class="rag-page-img" src="([^"]*)"', html)
    assert len(sources) == 1 and sources[0].startswith("data:image/png;base64,")  # a page of text: a PNG
    return Image.open(io.BytesIO(base64.b64decode(sources[0].split(",", 1)[1]))).convert("RGB")


def _char_boxes(pdf: Path, number: int, text: str, scale: float) -> list[tuple[float, float, float, float]]:
    """PDFium's boxes of ``text``'s characters on page ``number``, in image pixels (left, top, right, bottom),
    found by PDFium's own search (``text`` must be on one line of the page)."""
    import pypdfium2 as pdfium

    page = pdfium.PdfDocument(pdf)[number - 1]
    textpage = page.get_textpage()
    found = textpage.search(text, match_case=True).get_next()
    assert found is not None, text
    top = page.get_bbox()[3]
    boxes = [textpage.get_charbox(i) for i in range(found[0], found[0] + found[1])]
    return [(x0 * scale, (top - y1) * scale, x1 * scale, (top - y0) * scale) for x0, y0, x1, y1 in boxes if x1 > x0]


def _inside(box, boxes) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return any(b[0] <= cx <= b[2] and b[1] <= cy <= b[3] for b in boxes)


def _yellow(image: Image.Image, box) -> float:
    """The share of ``box``'s pixels that are tinted yellow (paper: red high, blue low)."""
    pixels = list(image.crop(tuple(round(v) for v in box)).getdata())
    return sum(r > 200 and g > 170 and b < 140 for r, g, b in pixels) / max(len(pixels), 1)


def test_a_pdf_citation_shows_its_page_with_the_quote_highlighted(harbour):
    rag, answer = harbour
    pages = pageview.page_views(answer.citations, rag.settings)
    html = render_answer(answer, pages)
    assert '<div class="rag-src-body"><div class="rag-passage">' in html and "\n" not in html
    image = _image(html)
    shown = pageview.render_page(rag.settings, "harbour.pdf", 2, (answer.citations[0].quote,))
    assert shown is not None and shown.boxes
    assert image.size == (shown.width, shown.height) == (math.ceil(595.28 * 110 / 72), math.ceil(841.89 * 110 / 72))

    # Every character of the quote, as PDFium places it, lies in a highlighted box; a sentence that is not
    # quoted (the answer quotes the one after the quote too) does not.
    scale = shown.width / 595.28
    pdf = rag.settings.docs_dir / "harbour.pdf"
    quoted = _char_boxes(pdf, 2, "The north breakwater was rebuilt in 1987", scale)
    quoted += _char_boxes(pdf, 2, "each weighing about eleven tonnes.", scale)  # the quote's second line
    assert quoted and all(_inside(box, shown.boxes) for box in quoted)
    assert not any("lamp" in c.quote for c in answer.citations)
    lamp = _char_boxes(pdf, 2, "The quay lamp is green.", scale)
    assert lamp and not any(_inside(box, shown.boxes) for box in lamp)
    # ...and the picture in the HTML is tinted there, and not where no quote is.
    assert all(_yellow(image, box) > 0.3 for box in shown.boxes)
    assert sum(_yellow(image, box) for box in lamp) / len(lamp) < 0.05  # (its first letter touches a highlight)

    # The stored quote's whitespace need not be the page's: line breaks and doubled spaces find it too.
    respaced = pageview.render_page(rag.settings, "harbour.pdf", 2, (BREAKWATER.replace(" ", "\n  ", 3),))
    assert respaced is not None and respaced.boxes == shown.boxes


def test_a_quote_that_is_not_on_the_page_highlights_nothing(harbour):
    rag, _ = harbour
    for wrong in ("The south breakwater was rebuilt in 1990.", BREAKWATER + " And more.", "The"):
        shown = pageview.render_page(rag.settings, "harbour.pdf", 2, (wrong,))
        assert shown is not None and shown.boxes == ()
        image = Image.open(io.BytesIO(shown.data)).convert("RGB")
        assert _yellow(image, (0, 0, image.width, image.height)) == 0
    # The right quote on the wrong page: not there either.
    assert pageview.render_page(rag.settings, "harbour.pdf", 1, (BREAKWATER,)).boxes == ()


def test_a_deleted_or_unreadable_pdf_falls_back_to_the_text_view(harbour, tmp_path):
    rag, answer = harbour
    pdf = rag.settings.docs_dir / "harbour.pdf"
    assert pageview.page_views(answer.citations, rag.settings)  # shown while the file is there

    def text_view_only() -> None:
        html = render_answer(answer, pageview.page_views(answer.citations, rag.settings))
        assert "<img" not in html and "rag-src-body" not in html
        assert f"<mark>{BREAKWATER}</mark>" in html  # the passage, with its quote, as before

    harbour_pdf(pdf, encrypt=True)  # replaced by a password-protected version (a new mtime: not remembered)
    text_view_only()
    pdf.write_bytes(b"%PDF-1.4 damaged")
    text_view_only()
    pdf.unlink()
    text_view_only()


def test_only_pdfs_inside_the_documents_folder_are_opened(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    harbour_pdf(tmp_path / "outside.pdf")
    (docs / "link.pdf").symlink_to(tmp_path / "outside.pdf")
    (docs / "notes.txt").write_text("x")
    harbour_pdf(docs / "inside.pdf")
    assert pageview.resolve(docs, "inside.pdf") == (docs / "inside.pdf").resolve()
    for source in ("../outside.pdf", str(tmp_path / "outside.pdf"), "link.pdf", "notes.txt", "missing.pdf"):
        assert pageview.resolve(docs, source) is None, source
