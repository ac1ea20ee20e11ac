"""Reading the text of a picture of a page with Tesseract: a scanned PDF page, or an image file.

OCR is for pages that have no text layer: `rag.ingest.loaders` asks for it only there, one page at a time, each
in the parsing worker (`rag.ingest.sandbox`) under the time limit of one page. A PDF page is rendered at 300 dpi
with PDFium (`pypdfium2`), scaled down if that would pass the pixel limit; an image file is refused when
its header declares more pixels than the limit, before Pillow decodes anything (a "decompression bomb":
a 50 KB PNG can declare 50,000 x 50,000 pixels, 2.5 GB once decoded).

A page's text is remembered by the hash of its file (`CACHE_PAGES` pages, in the process that read it):
an uploaded scan is read once to check it (`rag.app.uploads`) and the ingest that follows reuses that reading.
Across runs the ingest's ledger does the same for every file: an unchanged file is not read again.

Tesseract (Debian's ``tesseract-ocr`` with the ``eng``, ``chi_sim`` and ``chi_tra`` language data) is a
program, not a Python package; a machine without it gets one line saying what to install, and the file is
left for the next ingest.

Example:
    >>> tidy("灯塔 看 守 人 记录 了 十 七 场 风暴 。 It was 1893.")
    '灯塔看守人记录了十七场风暴。 It was 1893.'
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from rag.errors import DocumentError
from rag.text import close_gaps

if TYPE_CHECKING:
    from PIL.Image import Image

    from rag.limits import Limits

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff"})
DPI = 300  # Tesseract reads body text best at 300 dpi; a 12 pt line is then ~50 pixels high
CACHE_PAGES = 1000  # pages' texts remembered, a few MB at most
INSTALL = "apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim tesseract-ocr-chi-tra"


def pdf_page(data: bytes, number: int, rel: str, limits: Limits) -> str:
    """The text Tesseract reads on page ``number`` (1-based) of the PDF ``data``; "" when it finds none."""
    return _remembered(_read_pdf_page, data, number, rel, limits)


def image_page(data: bytes, number: int, rel: str, limits: Limits) -> str:
    """The text Tesseract reads on page ``number`` (1-based) of the image ``data``; "" when it finds none."""
    return _remembered(_read_image_page, data, number, rel, limits)


_cache: OrderedDict[tuple, str] = OrderedDict()
_cache_lock = threading.Lock()


def _remembered(
    read: Callable[[bytes, int, str, Limits], str], data: bytes, number: int, rel: str, limits: Limits
) -> str:
    # Everything the text depends on: the file, the page, and how it is read.
    key = (hashlib.sha256(data).hexdigest(), number, limits.ocr_languages, limits.max_image_pixels, read.__name__)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    text = read(data, number, rel, limits)
    with _cache_lock:
        _cache[key] = text
        while len(_cache) > CACHE_PAGES:
            _cache.popitem(last=False)
    return text


def _read_pdf_page(data: bytes, number: int, rel: str, limits: Limits) -> str:
    import pypdfium2 as pdfium

    try:
        page = pdfium.PdfDocument(data)[number - 1]
        width, height = page.get_size()  # in points, 72 to the inch
        # The page's size is the PDF's to choose: a 200 x 200 inch page at 300 dpi is 3.6 billion pixels.
        scale = min(DPI / 72, (limits.max_image_pixels / max(width * height, 1.0)) ** 0.5)
        while math.ceil(width * scale) * math.ceil(height * scale) > limits.max_image_pixels:
            scale *= 0.99  # PDFium rounds the bitmap's sides up
        image = page.render(scale=scale, grayscale=True).to_pil()
    except pdfium.PdfiumError as e:
        raise DocumentError(rel, f"cannot render page {number} for OCR ({e})") from e
    return recognise(image, rel, f"page {number}", limits)


def image_pages(data: bytes, rel: str, limits: Limits) -> int:
    """How many pages (frames: a TIFF may hold several) the image ``data`` has, each checked against the
    pixel limit from its header alone, nothing decoded.

    Raises:
        DocumentError: not an image Pillow reads, too many pages, or a page past the pixel limit.
    """
    image = _open(data, rel, limits)
    pages = getattr(image, "n_frames", 1)
    if pages > limits.pdf_pages:
        raise DocumentError(rel, f"has {pages:,} pages, more than {limits.pdf_pages:,}; not read")
    for index in range(pages):
        image.seek(index)
        _check_pixels(image, rel, limits)
    return pages


def _read_image_page(data: bytes, number: int, rel: str, limits: Limits) -> str:
    image = _open(data, rel, limits)
    try:
        image.seek(number - 1)
        _check_pixels(image, rel, limits)
        if image.mode == "P" and "transparency" in image.info:  # Pillow warns converting these to "L"
            image = image.convert("RGBA")
        image = image.convert("L")  # decodes; a truncated or corrupt file fails here
    except MemoryError:
        raise
    except Exception as e:  # Pillow raises OSError, ValueError, SyntaxError, ... on damaged images
        raise DocumentError(rel, f"not a valid image ({_why(e)})") from e
    return recognise(image, rel, f"page {number}", limits)


def recognise(image: Image, rel: str, where: str, limits: Limits) -> str:
    """Tesseract's text for ``image`` in `Limits.ocr_languages`, within `Limits.ocr_timeout` seconds.

    Raises:
        DocumentError: Tesseract or a language's data is not installed, it failed, or it ran too long.
    """
    import pytesseract

    _check_installed(rel, limits.ocr_languages)
    # One thread per page: Tesseract's OpenMP threads make it slower, not faster, on a busy small machine.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    try:
        text = pytesseract.image_to_string(image, lang=limits.ocr_languages, timeout=limits.ocr_timeout)
    except pytesseract.TesseractNotFoundError:  # uninstalled since the check
        raise DocumentError(rel, f"needs OCR, but Tesseract is not installed ({INSTALL}); not read") from None
    except pytesseract.TesseractError as e:  # a RuntimeError too, so caught first
        raise DocumentError(rel, f"OCR of {where} failed ({_why(e)})") from None
    except RuntimeError as e:
        if "timeout" not in str(e).lower():
            raise
        raise DocumentError(
            rel, f"OCR of {where} took longer than {limits.ocr_timeout:g} s (RAG_OCR_TIMEOUT); not read"
        ) from None
    return tidy(text)


def tidy(text: str) -> str:
    """Tesseract's text without the spaces it puts between Chinese characters (``"记录 了"`` -> ``"记录了"``)."""
    return close_gaps(text)


def _installed() -> frozenset[str] | None:
    """The language data Tesseract has, or None when the program itself is missing. Asked every time (a
    few ms beside a second of OCR), so Tesseract installed while the app runs is found."""
    import pytesseract

    try:
        return frozenset(pytesseract.get_languages(config=""))
    except (pytesseract.TesseractNotFoundError, OSError):
        return None


def _check_installed(rel: str, languages: str) -> None:
    have = _installed()
    if have is None:
        raise DocumentError(rel, f"needs OCR, but Tesseract is not installed ({INSTALL}); not read")
    if missing := [lang for lang in languages.split("+") if lang not in have]:
        packages = " ".join("tesseract-ocr-" + lang.replace("_", "-") for lang in missing)
        raise DocumentError(
            rel, f"needs OCR in {'+'.join(missing)}, whose language data is not installed ({packages}); not read"
        )


def _open(data: bytes, rel: str, limits: Limits) -> Image:
    from PIL import Image, UnidentifiedImageError

    # Pillow's own guard against decompression bombs, at this limit: it warns past it and refuses an image
    # past twice it as it opens; `_check_pixels` refuses the ones in between, before decoding.
    Image.MAX_IMAGE_PIXELS = limits.max_image_pixels
    try:
        return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as e:  # "Image size (1600000000 pixels) exceeds limit of ..."
        pixels = re.search(r"\((\d+) pixels\)", str(e))
        raise _too_many(rel, int(pixels[1]) if pixels else 0, limits) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise DocumentError(rel, f"not a valid image ({_why(e)})") from None


def _check_pixels(image: Image, rel: str, limits: Limits) -> None:
    width, height = image.size
    if width * height > limits.max_image_pixels:
        raise _too_many(rel, width * height, limits)


def _too_many(rel: str, pixels: int, limits: Limits) -> DocumentError:
    return DocumentError(
        rel, f"image of {pixels:,} pixels, more than {limits.max_image_pixels:,} (RAG_MAX_IMAGE_PIXELS); not read"
    )


def _why(e: BaseException) -> str:
    text = str(e).strip().split("\n")[0] or type(e).__name__
    return text if len(text) <= 120 else text[:117] + "..."
