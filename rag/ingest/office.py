"""Slides, spreadsheets, CSV tables, OpenDocument text and e-books -> clean text and sections.

A folder of real documents holds more than prose: a company's has slide decks and spreadsheets beside its
reports. Each reader here gives a `LoadedDocument` whose sections let a chunk be cited where a person finds
it again:

* ``.pptx``: a section per slide, headed ``Slide 3: <its title>``; the text of every shape in reading order
  (top to bottom, then left to right), tables a line per row, then the slide's speaker notes.
* ``.xlsx``: a section per sheet, headed by the sheet's name; a row per line. When the first row is a
  header (text in every cell), each later row names its columns (``Product: Tea | Price: 12.5``), so a
  passage cut from the middle of a long table still says what its numbers are.
* ``.csv`` / ``.tsv``: one table, read the same way; the delimiter is sniffed for ``.csv``.
* ``.odt``: headings start sections, paragraphs and list items are blocks, tables a line per row.
* ``.epub``: the book's chapters in reading order (its spine), each read as the HTML page it is.

The zip-based formats are checked by `Limits.check_zip` before anything inflates them, and are parsed in
the worker process like .docx (`rag.ingest.loaders.load`).

Example:
    >>> table("name,price\\nTea,12.5\\n", "menu.csv", Limits()).text
    'name: Tea | price: 12.5'
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import posixpath
import re
import zipfile
from collections.abc import Iterable, Sequence
from typing import Any

from rag.errors import DocumentError, NoTextError
from rag.ingest.loaders import LoadedDocument, Section, Term, _Builder, _plain_text, _read_html, _why
from rag.limits import Limits

MAX_COLUMNS = 200  # cells of one row kept: a sheet's formatting can reach column XFD (16,384) with nothing in it


def _cell(value: Any) -> str:
    """A cell as a person reads it: ``12.0`` -> ``"12"``, a date without a midnight time, text unwrapped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.15g}"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return " ".join(str(value).split())


_NUMBER = re.compile(r"[-+]?[\d.,]+%?")


def _is_header(cells: Sequence[str]) -> bool:
    """A header row: two or more cells, each holding text that is not a number."""
    filled = [c for c in cells if c]
    return len(filled) >= 2 and len(filled) == len(cells) and not any(_NUMBER.fullmatch(c) for c in filled)


def rows_text(rows: Iterable[Sequence[Any]]) -> str:
    """Table rows as lines: ``"a | b"``; after a header row, ``"Name: a | Fee: b"`` (empty cells left out)."""
    header: list[str] | None = None
    lines: list[str] = []
    for raw in rows:
        cells = [_cell(v) for v in list(raw)[:MAX_COLUMNS]]
        while cells and not cells[-1]:
            cells.pop()
        if not any(cells):
            continue
        if header is None and not lines and _is_header(cells):
            header = cells
            continue
        if header:
            named = [f"{header[i]}: {c}" if i < len(header) and header[i] else c for i, c in enumerate(cells) if c]
            lines.append(" | ".join(named))
        else:
            lines.append(" | ".join(cells))
    return "\n".join(lines)


def _invalid(rel: str, kind: str, e: Exception) -> DocumentError:
    if isinstance(e, DocumentError):
        return e
    return DocumentError(rel, f"not a valid {kind} file ({_why(e)})")


# --- slides ------------------------------------------------------------------------------------------


def pptx(data: bytes, rel: str, limits: Limits) -> LoadedDocument:
    from pptx import Presentation

    limits.check_zip(rel, data, ".pptx")
    doc = _Builder()
    try:
        deck = Presentation(io.BytesIO(data))
        for number, slide in enumerate(deck.slides, 1):
            title_shape = slide.shapes.title
            title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None else ""
            heading = f"Slide {number}: {title}" if title else f"Slide {number}"
            doc.add(heading, heading=heading, new_section=True)
            shapes = [s for s in _flat(slide.shapes) if title_shape is None or s.shape_id != title_shape.shape_id]
            shapes.sort(key=lambda s: (s.top or 0, s.left or 0))  # reading order: top to bottom, left to right
            for shape in shapes:
                if shape.has_text_frame:
                    doc.add(shape.text_frame.text)
                elif getattr(shape, "has_table", False):  # a graphic frame: a table, a chart, a diagram
                    doc.add(rows_text([cell.text for cell in row.cells] for row in shape.table.rows))
            if (
                slide.has_notes_slide
                and (notes := slide.notes_slide.notes_text_frame) is not None
                and notes.text.strip()
            ):
                doc.add(f"Notes: {notes.text}")
    except MemoryError:
        raise
    except Exception as e:  # a bad zip, a missing part, broken XML
        raise _invalid(rel, ".pptx", e) from None
    return doc.build(rel, "no text on any slide")


def _flat(shapes: Iterable[Any]) -> list[Any]:
    """The shapes of a slide with groups opened: each member is placed by its own position."""
    from pptx.shapes.group import GroupShape

    out = []
    for shape in shapes:
        out.extend(_flat(shape.shapes) if isinstance(shape, GroupShape) else [shape])
    return out


# --- spreadsheets and tables ---------------------------------------------------------------------------


def xlsx(data: bytes, rel: str, limits: Limits) -> LoadedDocument:
    import openpyxl

    limits.check_zip(rel, data, ".xlsx")
    doc = _Builder()
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        for sheet in book.worksheets:
            text = rows_text(sheet.iter_rows(values_only=True))
            if text:
                doc.add(sheet.title, heading=sheet.title, new_section=True)
                doc.add(text)
        book.close()
    except MemoryError:
        raise
    except Exception as e:
        raise _invalid(rel, ".xlsx", e) from None
    return doc.build(rel, "no cell holds anything")


def table(text: str, rel: str, limits: Limits) -> LoadedDocument:
    """A CSV or TSV table's text (a ``.tsv`` name means tabs; otherwise the delimiter is sniffed)."""
    delimiter = "\t" if rel.lower().removesuffix(".gz").endswith(".tsv") else _delimiter(text)
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as e:
        raise DocumentError(rel, f"not a readable table ({e})") from None
    doc = _Builder()
    doc.add(rows_text(rows))
    return doc.build(rel, "no cell holds anything")


def _delimiter(text: str) -> str:
    try:
        return csv.Sniffer().sniff(text[:20_000], delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def csv_file(data: bytes, rel: str, limits: Limits) -> LoadedDocument:
    return table(_plain_text(data, rel), rel, limits)


# --- OpenDocument text ---------------------------------------------------------------------------------

_ODF_OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_ODF_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_ODF_TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"


def odt(data: bytes, rel: str, limits: Limits) -> LoadedDocument:
    from lxml import etree

    limits.check_zip(rel, data, ".odt")
    doc = _Builder()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            root = etree.fromstring(zf.read("content.xml"), etree.XMLParser(resolve_entities=False, huge_tree=False))
        body = root.find(f".//{{{_ODF_OFFICE}}}text")
        for kind, element in _odf_blocks(body if body is not None else root):
            if kind == "h":
                heading = " ".join(_odf_text(element).split())
                doc.add(heading, heading=heading, new_section=True)
            elif kind == "table":
                rows = [
                    [_odf_text(cell) for cell in row.iter(f"{{{_ODF_TABLE}}}table-cell")]
                    for row in element.iter(f"{{{_ODF_TABLE}}}table-row")
                ]
                doc.add(rows_text(rows))
            else:
                doc.add(_odf_text(element))
    except MemoryError:
        raise
    except Exception as e:
        raise _invalid(rel, ".odt", e) from None
    return doc.build(rel, "no text")


def _odf_blocks(node: Any) -> Iterable[tuple[str, Any]]:
    """Headings, paragraphs and tables in document order (a list's items and a section's paragraphs too)."""
    for child in node:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag == f"{{{_ODF_TEXT}}}h":
            yield "h", child
        elif tag == f"{{{_ODF_TEXT}}}p":
            yield "p", child
        elif tag == f"{{{_ODF_TABLE}}}table":
            yield "table", child
        else:
            yield from _odf_blocks(child)


def _odf_text(element: Any) -> str:
    """The text of a paragraph: ``<text:s text:c="3"/>`` is three spaces, a tab and a line break are kept."""
    out = [element.text or ""]
    for child in element:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag == f"{{{_ODF_TEXT}}}s":
            out.append(" " * int(child.get(f"{{{_ODF_TEXT}}}c", "1")))
        elif tag == f"{{{_ODF_TEXT}}}tab":
            out.append("\t")
        elif tag == f"{{{_ODF_TEXT}}}line-break":
            out.append("\n")
        elif tag.endswith(("}note", "}annotation")):
            pass  # a footnote's or comment's text is not part of the sentence it is anchored in
        else:
            out.append(_odf_text(child))
        out.append(child.tail or "")
    return "".join(out)


# --- e-books -----------------------------------------------------------------------------------------

_CONTAINER = "urn:oasis:names:tc:opendocument:xmlns:container"
_OPF = "http://www.idpf.org/2007/opf"
_DC = "http://purl.org/dc/elements/1.1/"


def epub(data: bytes, rel: str, limits: Limits) -> LoadedDocument:
    from lxml import etree

    limits.check_zip(rel, data, ".epub")
    parser = etree.XMLParser(resolve_entities=False, huge_tree=False)
    chapters = []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            container = etree.fromstring(zf.read("META-INF/container.xml"), parser)
            rootfile = container.find(f".//{{{_CONTAINER}}}rootfile")
            if rootfile is None:
                raise DocumentError(rel, "not a valid .epub file (META-INF/container.xml names no package)")
            opf_path = rootfile.get("full-path", "")
            package = etree.fromstring(zf.read(opf_path), parser)
            base = posixpath.dirname(opf_path)
            title = package.find(f".//{{{_DC}}}title")
            items = {
                item.get("id"): posixpath.normpath(posixpath.join(base, item.get("href", "")))
                for item in package.iter(f"{{{_OPF}}}item")
            }
            for ref in package.iter(f"{{{_OPF}}}itemref"):
                name = items.get(ref.get("idref"))
                if name is None or ref.get("linear") == "no":
                    continue
                try:
                    chapters.append(_read_html(zf.read(name), f"{rel}:{name}", limits))
                except NoTextError:
                    continue  # a cover picture, a blank page
    except MemoryError:
        raise
    except Exception as e:
        raise _invalid(rel, ".epub", e) from None
    book = joined(chapters, rel, "no text in any chapter")
    if title is not None and title.text and title.text.strip():
        book.title = " ".join(title.text.split())  # the book's, not its first chapter's
    return book


def joined(parts: list[LoadedDocument], rel: str, empty_reason: str) -> LoadedDocument:
    """Documents one after another as one, a blank line between, their sections and terms moved along."""
    if not parts:
        raise NoTextError(rel, empty_reason)
    texts, sections, terms, offset = [], [], [], 0
    for part in parts:
        texts.append(part.text)
        sections += [Section(s.start + offset, s.page, s.heading) for s in part.sections]
        terms += [Term(t.start + offset, t.end + offset, t.text) for t in part.terms]
        offset += len(part.text) + 2
    return LoadedDocument("\n\n".join(texts), sections, terms=terms, title=parts[0].title)
