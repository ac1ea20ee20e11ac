"""Slides, spreadsheets, CSV tables, OpenDocument text and e-books (rag/ingest/office.py).

Each file is written by the library people make such files with (python-pptx, openpyxl, odfpy, ebooklib,
the csv module), read into text and sections, then ingested into a real store (Chroma, the packaged MiniLM)
and asked about.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

import pytest

from rag import RAG
from rag.errors import DocumentError
from rag.ingest.loaders import load
from rag.limits import Limits

MAX = 20 * 2**20


def make_deck(path: Path) -> Path:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[1])  # title and content
    first.shapes.title.text = "Quarterly results"
    first.placeholders[1].text = "Revenue grew 12% to HK$3.4 billion.\nThe Tsuen Wan warehouse opened in March."
    first.notes_slide.notes_text_frame.text = "Mention the typhoon delay."
    second = deck.slides.add_slide(deck.slide_layouts[5])  # title only
    second.shapes.title.text = "Offices"
    cells = second.shapes.add_table(3, 2, Inches(1), Inches(2), Inches(6), Inches(2)).table
    for r, row in enumerate([("City", "Staff"), ("Hong Kong", "420"), ("Singapore", "85")]):
        for c, value in enumerate(row):
            cells.cell(r, c).text = value
    caption = second.shapes.add_textbox(Inches(1), Inches(0.9), Inches(6), Inches(0.5))  # above the table
    caption.text_frame.text = "Headcount by office at the end of June."
    deck.save(path)
    return path


def make_workbook(path: Path) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    prices = book.active
    prices.title = "Prices"
    prices.append(["Product", "Price", "Launched"])
    prices.append(["Jasmine tea", 12.5, dt.date(2021, 5, 3)])
    prices.append(["Oolong", 30.0, dt.datetime(2019, 1, 1)])
    book.create_sheet("Empty")
    readings = book.create_sheet("Readings")
    readings.append([1, 2.25, None, "ok"])  # no header: numbers in the first row
    book.save(path)
    return path


def make_book(path: Path) -> Path:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("field-guide-1")
    book.set_title("A Field Guide to Hong Kong Plants")
    book.set_language("en")
    ferns = epub.EpubHtml(title="Ferns", file_name="ferns.xhtml", lang="en")
    ferns.content = "<h1>Ferns</h1><p>The tree fern grows to ten metres in shaded valleys.</p>"
    mosses = epub.EpubHtml(title="Mosses", file_name="text/mosses.xhtml", lang="en")
    mosses.content = "<h1>Mosses</h1><p>Sphagnum holds twenty times its weight in water.</p>"
    for chapter in (ferns, mosses):
        book.add_item(chapter)
    book.toc = (mosses, ferns)
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", mosses, ferns]  # reading order, not the order the files were added in
    epub.write_epub(str(path), book)
    return path


def make_odt(path: Path) -> Path:
    from odf.opendocument import OpenDocumentText
    from odf.table import Table, TableCell, TableColumn, TableRow
    from odf.text import H, List, ListItem, P, S

    doc = OpenDocumentText()
    doc.text.addElement(H(outlinelevel=1, text="Leave policy"))
    paragraph = P(text="Staff receive 18 days")
    paragraph.addElement(S(c=1))
    paragraph.addText("of annual leave.")
    doc.text.addElement(paragraph)
    items = List()
    item = ListItem()
    item.addElement(P(text="Sick leave needs a doctor's note after two days."))
    items.addElement(item)
    doc.text.addElement(items)
    doc.text.addElement(H(outlinelevel=1, text="Public holidays"))
    table = Table(name="Holidays")
    table.addElement(TableColumn(numbercolumnsrepeated=2))
    for row in [("Holiday", "Date"), ("Tuen Ng Festival", "10 June")]:
        tr = TableRow()
        for value in row:
            cell = TableCell()
            cell.addElement(P(text=value))
            tr.addElement(cell)
        table.addElement(tr)
    doc.text.addElement(table)
    doc.save(str(path))
    return path


def headings(doc) -> list[str | None]:
    return [s.heading for s in doc.sections]


def section_text(doc, heading: str) -> str:
    starts = [s.start for s in doc.sections] + [len(doc.text)]
    i = headings(doc).index(heading)
    return doc.text[starts[i] : starts[i + 1]]


def test_a_slide_deck_is_read_slide_by_slide_in_reading_order_with_tables_and_notes(tmp_path):
    doc = load(make_deck(tmp_path / "deck.pptx"), "deck.pptx", MAX)
    assert headings(doc) == ["Slide 1: Quarterly results", "Slide 2: Offices"]
    first = section_text(doc, "Slide 1: Quarterly results")
    assert "Revenue grew 12% to HK$3.4 billion." in first and first.rstrip().endswith(
        "Notes: Mention the typhoon delay."
    )
    second = section_text(doc, "Slide 2: Offices")
    # the caption sits above the table on the slide, so it is read first, though it was added last
    assert second.index("Headcount by office") < second.index("City: Hong Kong | Staff: 420")
    assert "City: Singapore | Staff: 85" in second


def test_a_workbook_is_read_sheet_by_sheet_and_rows_name_their_columns(tmp_path):
    doc = load(make_workbook(tmp_path / "prices.xlsx"), "prices.xlsx", MAX)
    assert headings(doc) == ["Prices", "Readings"]  # the empty sheet has no section
    prices = section_text(doc, "Prices").splitlines()
    assert "Product: Jasmine tea | Price: 12.5 | Launched: 2021-05-03" in prices
    assert "Product: Oolong | Price: 30 | Launched: 2019-01-01" in prices
    assert "1 | 2.25 |  | ok" in section_text(doc, "Readings")  # no header row: the cells as they are


def test_csv_and_tsv_tables_read_with_their_header_and_delimiter(tmp_path):
    semicolons = tmp_path / "staff.csv"
    semicolons.write_text("name;office;joined\nAda Lovelace;Central;2019\n陳大文;Kowloon Bay;2021\n", encoding="utf-8")
    assert load(semicolons, "staff.csv", MAX).text.splitlines() == [
        "name: Ada Lovelace | office: Central | joined: 2019",
        "name: 陳大文 | office: Kowloon Bay | joined: 2021",
    ]
    tabs = tmp_path / "rates.tsv"
    tabs.write_text("2019\t1.5\n2020\t1.75\n", encoding="utf-8")  # numbers first: no header
    assert load(tabs, "rates.tsv", MAX).text == "2019 | 1.5\n2020 | 1.75"
    blank = tmp_path / "blank.csv"
    blank.write_text(",,\n,,\n", encoding="utf-8")
    with pytest.raises(DocumentError, match="blank.csv: no cell holds anything"):
        load(blank, "blank.csv", MAX)


def test_an_opendocument_text_reads_headings_lists_and_tables(tmp_path):
    doc = load(make_odt(tmp_path / "policy.odt"), "policy.odt", MAX)
    assert headings(doc) == ["Leave policy", "Public holidays"]
    leave = section_text(doc, "Leave policy")
    assert "Staff receive 18 days of annual leave." in leave  # <text:s/> is the space it stands for
    assert "Sick leave needs a doctor's note after two days." in leave
    assert "Holiday: Tuen Ng Festival | Date: 10 June" in section_text(doc, "Public holidays")


def test_an_epub_is_read_in_its_spine_order_under_the_books_title(tmp_path):
    doc = load(make_book(tmp_path / "guide.epub"), "guide.epub", MAX)
    assert headings(doc) == ["Mosses", "Ferns"]
    assert doc.text.index("Sphagnum") < doc.text.index("tree fern")
    assert doc.title == "A Field Guide to Hong Kong Plants"


def test_a_zip_bomb_in_a_spreadsheet_is_refused_before_it_is_inflated(tmp_path):
    path = make_workbook(tmp_path / "bomb.xlsx")
    with zipfile.ZipFile(path, "a") as zf:  # a part of 8 MB of zeros, compressed ~1000 to 1
        zf.writestr("xl/padding.bin", b"\0" * (8 * 2**20), compress_type=zipfile.ZIP_DEFLATED)
    with pytest.raises(DocumentError, match=r"bomb.xlsx: .*padding.bin is compressed .* to 1"):
        load(path, "bomb.xlsx", MAX, Limits(memory_mb=0))


def test_broken_office_files_each_get_one_line_and_the_rest_is_answered_with_its_slide_and_sheet(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    make_deck(docs / "deck.pptx")
    make_workbook(docs / "prices.xlsx")
    (docs / "staff.csv").write_text("name,office,joined\nAda Lovelace,Central,2019\nAlan Turing,Kowloon Bay,2021\n")
    (docs / "fake.pptx").write_bytes(b"this was never a slide deck")
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("mimetype", "application/epub+zip")
    (docs / "empty.epub").write_bytes(zipped.getvalue())  # a zip without its container file
    rag = RAG(docs_dir=docs, store_dir=tmp_path / "store")
    report = rag.ingest()
    failed = dict(report.failed)
    assert set(failed) == {"fake.pptx", "empty.epub"}, failed
    assert failed["fake.pptx"].startswith("not a valid .pptx file")
    assert failed["empty.epub"].startswith("not a valid .epub file")
    assert {d.source for d in rag.documents()} == {"deck.pptx", "prices.xlsx", "staff.csv"}

    answer = rag.ask("How many staff work in the Singapore office?")
    cited = answer.citations[0]
    assert (cited.source, cited.section) == ("deck.pptx", "Slide 2: Offices")
    assert cited.quote == "City: Singapore | Staff: 85"  # the row, whole: not cut at its colons
    cited = rag.ask("When did Alan Turing join?").citations[0]
    assert cited.source == "staff.csv" and "Alan Turing" in cited.quote and "2021" in cited.quote
    cited = rag.ask("What does jasmine tea cost?").citations[0]
    assert (cited.source, cited.section) == ("prices.xlsx", "Prices") and "12.5" in cited.quote
