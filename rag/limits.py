"""Bounds on what reading one document may cost: how far a compressed file inflates, how many XML or HTML
elements it holds, how many PDF pages, how many pixels an image, how much memory and time the process that
parses it may take, and how long OCR may spend on one page (with the languages it reads: `rag.ingest.ocr`).

A 3 MB .docx can hold 1.1 GB of XML (a "zip bomb"), and parsing that takes gigabytes of memory. So the zip
of a .docx (or .pptx, .xlsx, .odt, .epub) is checked before anything opens it: the sizes its directory
declares, each part's compression ratio, then the bytes it actually inflates to and the XML elements they
hold, counted as they stream and stopped at the limit. A PDF's pages and extracted text are bounded the
same way, and an HTML page's elements are counted before it is parsed. The parse itself runs in a worker
process whose address space is capped (`rag.ingest.sandbox`), so a file that gets past these checks can
fail, never take the app down.

Example:
    >>> Limits(expand_mb=1).refuse("notes.docx").reason
    'expands to more than 1 MB; not read'
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rag.errors import DocumentError

if TYPE_CHECKING:
    from rag.config import Settings

MB = 2**20  # one unit for every limit rag states in MB: the browser's upload check counts the same way
RATIO_FLOOR = MB  # a part that inflates to less than this may compress at any ratio: it cannot hurt
MAX_PARTS = 10_000  # zip members: a real .docx has a few dozen


@dataclass(frozen=True)
class Limits:
    """What parsing one document may cost. `Settings` holds the same values as ``RAG_*`` fields.

    Attributes:
        expand_mb: the most a compressed document (.docx) may inflate to, all its parts together, and the
            most text any document may yield.
        ratio: the highest compression ratio of one part that inflates to more than `RATIO_FLOOR`.
        elements: the most XML (.docx) or HTML elements one document may hold.
        pdf_pages: the most pages a PDF may have.
        memory_mb: the address-space ceiling of the worker process that parses .docx, .pdf and large .html
            files; 0 parses in-process, without a ceiling.
        timeout: seconds one parse in the worker may take.
        max_image_pixels: the most pixels one image (or one page of it) may have; a PDF page is rendered
            for OCR at 300 dpi or at this size, whichever is smaller.
        ocr_timeout: seconds Tesseract may take to read one page.
        ocr_languages: Tesseract's languages, joined with ``+`` (``eng+chi_sim+chi_tra``).
    """

    expand_mb: float = 200.0
    ratio: float = 200.0
    elements: int = 2_000_000
    pdf_pages: int = 2_000
    memory_mb: int = 2_048
    timeout: float = 120.0
    max_image_pixels: int = 100_000_000
    ocr_timeout: float = 60.0
    ocr_languages: str = "eng+chi_sim+chi_tra"

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            expand_mb=settings.max_expand_mb,
            ratio=settings.max_compression_ratio,
            elements=settings.max_elements,
            pdf_pages=settings.max_pdf_pages,
            memory_mb=settings.parse_memory_mb,
            timeout=settings.parse_timeout,
            max_image_pixels=settings.max_image_pixels,
            ocr_timeout=settings.ocr_timeout,
            ocr_languages=settings.ocr_languages,
        )

    def refuse(self, rel: str) -> DocumentError:
        """The one line for a document that inflates past `expand_mb`."""
        return DocumentError(rel, f"expands to more than {self.expand_mb:g} MB; not read")

    def check_text(self, rel: str, length: int) -> None:
        """`DocumentError` when text extracted so far (``length`` characters) is past `expand_mb`."""
        if length > self.expand_mb * MB:
            raise self.refuse(rel)

    def check_elements(self, rel: str, markup: bytes) -> None:
        """`DocumentError` when ``markup`` (HTML or XML) opens more than `elements` elements."""
        if _elements(markup) > self.elements:
            raise DocumentError(rel, f"holds more than {self.elements:,} elements; not read")

    def check_zip(self, rel: str, data: bytes, kind: str = ".docx") -> None:
        """Check a zip-based document (.docx, .pptx, .xlsx, .odt, .epub) before anything parses it: declared
        sizes, ratios, then the actual inflated bytes and XML elements, counted as they stream.

        Raises:
            DocumentError: ``"notes.docx: expands to more than 200 MB; not read"`` and the like.
        """
        try:
            zf = zipfile.ZipFile(io.BytesIO(data))
            parts = zf.infolist()
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise DocumentError(rel, f"not a valid {kind} file ({exc})") from None
        if len(parts) > MAX_PARTS:
            raise DocumentError(rel, f"holds {len(parts):,} parts, more than {MAX_PARTS:,}; not read")
        cap = self.expand_mb * MB
        if sum(p.file_size for p in parts) > cap:  # what the zip's directory says
            raise self.refuse(rel)
        for p in parts:
            if p.file_size > RATIO_FLOOR and p.file_size > self.ratio * max(p.compress_size, 1):
                ratio = p.file_size / max(p.compress_size, 1)
                raise DocumentError(
                    rel, f"{p.filename} is compressed {ratio:,.0f} to 1, more than {self.ratio:g} to 1; not read"
                )
        # The directory can lie: count what actually comes out, and stop at the cap.
        inflated = elements = 0
        try:
            for p in parts:
                with zf.open(p) as f:
                    while block := f.read(MB):
                        inflated += len(block)
                        if inflated > cap:
                            raise self.refuse(rel)
                        if p.filename.endswith((".xml", ".rels")):
                            elements += _elements(block)
                            if elements > self.elements:
                                raise DocumentError(rel, f"holds more than {self.elements:,} elements; not read")
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise DocumentError(rel, f"not a valid {kind} file ({exc})") from None


def _elements(markup: bytes) -> int:
    """Elements opened in ``markup``: ``b"<p><b>x</b></p>"`` -> 2 (each ``<`` not starting ``</``)."""
    return markup.count(b"<") - markup.count(b"</")
