"""The page a PDF citation comes from, as a picture with its quoted sentences highlighted.

A citation of ``guide.pdf, p. 2`` opens, beside its passage, page 2 of ``guide.pdf`` rendered by PDFium
(`pypdfium2`) at a modest resolution, with the quoted sentences' lines tinted yellow. The picture is a
``data:image/png;base64,…`` ``<img>`` (JPEG for a page that is mostly a photo): the browser fetches
nothing, from the app or elsewhere.

Finding the quote: the stored quote was extracted by pypdf, the page's characters come from PDFium, and
the two differ in whitespace, line breaks, hyphens and ligatures. Both are reduced to their visible
characters, NFKC-folded (``"ﬁ"`` -> ``"fi"``), each remembering the page character it came from::

    page  "Issued in\\r\\n2022 by the HKMA."   quote "Issued in 2022 by the HKMA."
    keys  "issuedin2022bythehkma."            keys  "issuedin2022bythehkma."  -> page chars 0..27

and the quote is highlighted where its keys occur on the page; where they do not (the file changed, the
quote crosses a page break, a scanned page has no text layer), nothing is highlighted rather than a guess.

Rendering runs in the parsing worker (`rag.ingest.sandbox`, its memory ceiling and time limit), only for the final
answer's citations, and is remembered per (file, modification time, size, page, quotes). Any failure (the
file deleted, changed into something else, encrypted) leaves the citation with its text view alone.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rag.config import Settings
from rag.ingest import sandbox
from rag.limits import Limits
from rag.types import Citation

log = logging.getLogger(__name__)

DPI = 110  # readable on a laptop screen; a full A4 page of text is ~85 KB as a 32-colour PNG
MAX_SIDE = 1400  # pixels on the longer side, whatever size the PDF says its page is
MAX_PAGES = 6  # page images per answer; further cited pages keep their text view
CACHE_SIZE = 64  # rendered pages remembered (per process), least recently used dropped
COLOURS = 32  # a page of text needs few: black, white, their anti-aliasing, the tint
QUALITY = 75  # JPEG quality, for pages a palette would posterise (photos, scans)
TIMEOUT = 20.0  # seconds one page may take to render (or the parse timeout, if shorter)
MIN_KEYS = 4  # a shorter quote would match too much of a page to be highlighted honestly
TINT = (255, 214, 64)  # multiplied into the page: white paper turns yellow, black text stays black

Box = tuple[int, int, int, int]  # (left, top, right, bottom) in image pixels


@dataclass(frozen=True)
class PageImage:
    """One rendered page: its picture (``mime`` type and bytes), size in pixels and highlighted boxes."""

    source: str
    page: int
    mime: str
    data: bytes
    width: int
    height: int
    boxes: tuple[Box, ...]

    @property
    def data_url(self) -> str:
        return f"data:{self.mime};base64," + base64.b64encode(self.data).decode("ascii")

    def html(self) -> str:
        alt = html.escape(f"{self.source}, page {self.page}", quote=True)
        return (
            f'<figure class="rag-page"><img class="rag-page-img" src="{self.data_url}" alt="{alt}" '
            f'width="{self.width}" height="{self.height}" loading="lazy"></figure>'
        )


# --- finding a quote on a page ----------------------------------------------------------------------


def _keys(chars: Iterable[tuple[str, int]]) -> tuple[str, list[int]]:
    """Visible characters, folded, each with the index it came from: ``[("A", 0), (" ", 1), ("ﬁ", 2)]``
    -> ``("afi", [0, 2, 2])``. Whitespace, hyphens (a line-end hyphen is on the page, not in the quote, or
    the reverse) and control characters (PDFium's generated ones) are left out."""
    out: list[str] = []
    where: list[int] = []
    for ch, i in chars:
        if ch.isspace() or ch in "-\xad\u2010\u2011" or unicodedata.category(ch).startswith("C"):
            continue
        for k in unicodedata.normalize("NFKC", ch).casefold():
            if not k.isspace():
                out.append(k)
                where.append(i)
    return "".join(out), where


def find_quote(textpage, quote: str) -> tuple[int, int] | None:
    """The page characters ``quote`` covers, as (first index, count), or None when it is not on the page."""
    import pypdfium2.raw as pdfium_c

    wanted, _ = _keys((ch, i) for i, ch in enumerate(quote))
    if len(wanted) < MIN_KEYS:
        return None
    n = textpage.count_chars()
    page, where = _keys((chr(pdfium_c.FPDFText_GetUnicode(textpage.raw, i)), i) for i in range(n))
    at = page.find(wanted)
    if at < 0:
        return None
    first, last = where[at], where[at + len(wanted) - 1]
    return first, last - first + 1


def quote_rects(textpage, quote: str) -> list[tuple[float, float, float, float]]:
    """The quote's lines on the page, in PDF points as PDFium gives them: (left, bottom, right, top)."""
    found = find_quote(textpage, quote)
    if found is None:
        return []
    first, count = found
    return [textpage.get_rect(i) for i in range(textpage.count_rects(first, count))]


# --- rendering (in the parsing worker) --------------------------------------------------------------


def _encode(image) -> tuple[str, bytes]:
    """The smaller of a palette PNG (sharp and small for text: a full A4 page ~85 KB, as JPEG ~350 KB)
    and a JPEG (smaller for a photo, which a palette would posterise anyway)."""
    png, jpeg = io.BytesIO(), io.BytesIO()
    image.quantize(colors=COLOURS).save(png, "PNG")  # optimize=True: twice the time for 1% less
    image.save(jpeg, "JPEG", quality=QUALITY, optimize=True)
    return min(("image/png", png.getvalue()), ("image/jpeg", jpeg.getvalue()), key=lambda pair: len(pair[1]))


def _render(data: bytes, number: int, quotes: tuple[str, ...]) -> tuple[str, bytes, int, int, tuple[Box, ...]]:
    """Page ``number`` (1-based) of the PDF ``data`` as a picture with every quote found on it tinted."""
    import pypdfium2 as pdfium
    from PIL import Image, ImageChops

    pdf = pdfium.PdfDocument(data)
    try:
        page = pdf[number - 1]
        width, height = page.get_size()
        scale = min(DPI / 72, MAX_SIDE / max(width, height, 1.0))
        image = page.render(scale=scale).to_pil().convert("RGB")
        boxes: list[Box] = []
        if page.get_rotation() == 0:  # a rotated page's text coordinates need turning too: highlight nothing
            left, _, _, top = page.get_bbox()  # the visible area (cropbox), as the bitmap shows it
            textpage = page.get_textpage()
            for quote in quotes:
                for x0, y0, x1, y1 in quote_rects(textpage, quote):
                    box = (
                        max(0, int((x0 - left) * scale) - 2),
                        max(0, int((top - y1) * scale) - 2),
                        min(image.width, int((x1 - left) * scale + 0.999) + 2),
                        min(image.height, int((top - y0) * scale + 0.999) + 2),
                    )
                    if box[2] > box[0] and box[3] > box[1]:
                        boxes.append(box)
        for box in boxes:
            region = image.crop(box)
            image.paste(ImageChops.multiply(region, Image.new("RGB", region.size, TINT)), box[:2])
        return (*_encode(image), image.width, image.height, tuple(boxes))
    finally:
        pdf.close()


# --- the pages of an answer -------------------------------------------------------------------------

_cache: OrderedDict[tuple, PageImage] = OrderedDict()
_cache_lock = threading.Lock()


def resolve(docs_dir: Path, source: str) -> Path | None:
    """``source`` (as the store names it) as a PDF file inside ``docs_dir``, or None: never a path outside
    it (``../x.pdf``, ``/etc/x.pdf``, a link pointing out)."""
    top = Path(docs_dir).resolve()
    try:
        path = (top / source).resolve()
    except (OSError, RuntimeError):
        return None
    if path.suffix.lower() != ".pdf" or not path.is_relative_to(top) or not path.is_file():
        return None
    return path


def render_page(settings: Settings, source: str, page: int, quotes: tuple[str, ...]) -> PageImage | None:
    """Page ``page`` of ``source`` (in ``settings.docs_dir``) with ``quotes`` highlighted, remembered; None
    when it cannot be shown."""
    path = resolve(settings.docs_dir, source)
    if path is None or page < 1:
        return None
    try:
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size, page, quotes)
        with _cache_lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _cache[key]
        if stat.st_size > settings.max_file_mb * 2**20:
            return None
        data = path.read_bytes()
        limits = Limits.of(settings)
        timeout = min(limits.timeout, TIMEOUT)
        mime, picture, width, height, boxes = sandbox.run(
            _render, data, page, quotes, rel=source, memory_mb=limits.memory_mb, timeout=timeout
        )
    except Exception as exc:  # noqa: BLE001 - deleted, damaged, encrypted, too large: the text view stays
        log.info("no page view of %s p. %s: %s", source, page, exc)
        return None
    image = PageImage(source, page, mime, picture, width, height, boxes)
    with _cache_lock:
        _cache[key] = image
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return image


def page_views(citations: list[Citation], settings: Settings) -> dict[int, str]:
    """Marker number -> the HTML of its page (every quote of the answer on that page highlighted), for
    the citations from PDF pages; at most `MAX_PAGES` pages, in order of first citation."""
    pages: dict[tuple[str, int], list[Citation]] = {}
    for c in citations:
        if c.page is not None and c.source.lower().endswith(".pdf"):
            pages.setdefault((c.source, c.page), []).append(c)
    out: dict[int, str] = {}
    for (source, page), cited in list(pages.items())[:MAX_PAGES]:
        quotes = tuple(dict.fromkeys(c.quote for c in cited if c.quote))
        image = render_page(settings, source, page, quotes)
        if image is not None:
            out.update((c.n, image.html()) for c in cited)
    return out
