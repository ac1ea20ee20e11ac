"""Tests for rag.ingest.loaders: real files of every format, every encoding, every way a file can be bad."""

from __future__ import annotations

import gzip
import io
import os
import random
import threading
import zipfile
from pathlib import Path

import docx
import pytest
from pypdf import PdfReader, PdfWriter
from pypdf.errors import DependencyError
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

from rag.errors import DocumentError, NoTextError
from rag.ingest import loaders
from rag.ingest.encoding import decode_text
from rag.ingest.loaders import RECORD_ROWS, SUPPORTED_SUFFIXES, LoadedDocument, Section, load
from rag.limits import Limits
from rag.text import unwrap

from .conftest import handbook_pdf, manual_pdf, plotting_pdf

LIMIT = 20 * 2**20


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def load_file(tmp_path: Path, name: str, data: bytes | str) -> LoadedDocument:
    return load(write(tmp_path, name, data), name, LIMIT)


def load_error(path: Path, rel: str = "doc", max_bytes: int = LIMIT) -> DocumentError:
    with pytest.raises(DocumentError) as info:
        load(path, rel, max_bytes)
    assert info.value.path == rel
    assert str(info.value) == f"{rel}: {info.value.reason}"
    return info.value


def make_pdf(pages: list[list[str]], user_password: str | None = None, owner_password: str | None = None) -> bytes:
    """A real PDF whose pages hold the given lines as Helvetica text (pypdf alone, no PDF library)."""
    writer = PdfWriter()
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    font_ref = writer._add_object(font)
    for lines in pages:
        page = writer.add_blank_page(612, 792)
        escaped = (line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for line in lines)
        ops = ["BT /F1 12 Tf 14 TL 72 720 Td", *(f"({line}) Tj T*" for line in escaped), "ET"]
        stream = DecodedStreamObject()
        stream.set_data("\n".join(ops).encode("latin-1"))
        page[NameObject("/Contents")] = writer._add_object(stream)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font_ref})}
        )
    if user_password is not None or owner_password is not None:
        writer.encrypt(user_password or "", owner_password, algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_every_supported_suffix_has_a_reader():
    assert set(loaders._READERS) <= SUPPORTED_SUFFIXES
    assert {loaders.format_of(f"a{suffix}" if suffix != ".gz" else "a.txt.gz") for suffix in SUPPORTED_SUFFIXES} <= set(
        loaders._READERS
    )


# --- plain text -------------------------------------------------------------------------------------


def test_txt_is_normalised_into_one_section(tmp_path):
    doc = load_file(tmp_path, "a.txt", "Line one  \r\nline\ttwo\x07\x1b\rthree\n\n\n\n\nfour\fpage two \n\n")
    assert doc.text == "Line one\nline\ttwo\nthree\n\nfour\npage two"
    assert doc.sections == [Section(0, None, None)]


def test_uppercase_suffix_and_non_ascii_file_name_load(tmp_path):
    doc = load_file(tmp_path, "Größe der Datei 香港.TXT", "Grüße aus 香港")
    assert doc.text == "Grüße aus 香港"


# --- markdown ---------------------------------------------------------------------------------------

MARKDOWN = """Intro before any heading.

# Getting started #

Install it.

## Setup

```bash
# not a heading: a comment in a code block
pip install rag
```

###### Deep heading
Last words.
"""


def test_markdown_sections_start_at_atx_headings(tmp_path):
    doc = load_file(tmp_path, "guide.md", MARKDOWN)
    assert doc.text == MARKDOWN.rstrip("\n")  # the markdown itself is kept
    assert [(s.start, s.heading) for s in doc.sections] == [
        (0, None),
        (doc.text.index("# Getting"), "Getting started"),
        (doc.text.index("## Setup"), "Setup"),
        (doc.text.index("###### Deep"), "Deep heading"),
    ]
    assert doc.locate(doc.text.index("Intro")).heading is None
    assert doc.locate(doc.text.index("Install it")).heading == "Getting started"
    assert doc.locate(doc.text.index("pip install")).heading == "Setup"
    assert doc.locate(len(doc.text)).heading == "Deep heading"


def test_markdown_html_comments_are_dropped_outside_code_blocks(tmp_path):
    text = (
        "# Tool\n\n<!-- YAML\nadded: v1.2\n-->\n\nRuns it <!-- inline -->fast.\n\n```html\n<!-- an example -->\n```\n"
    )
    doc = load_file(tmp_path, "tool.md", text)
    assert doc.text == "# Tool\n\nRuns it fast.\n\n```html\n<!-- an example -->\n```"
    assert doc.sections == [Section(0, None, "Tool")]
    with pytest.raises(DocumentError, match="empty file"):
        load_file(tmp_path, "hidden.md", "<!-- nothing a reader sees -->\n")


def test_markdown_starting_with_a_heading_has_no_empty_first_section(tmp_path):
    doc = load_file(tmp_path, "notes.markdown", "# Title\nBody\n#hashtag is not a heading")
    assert doc.sections == [Section(0, None, "Title")]


# --- HTML -------------------------------------------------------------------------------------------

HTML = """<!DOCTYPE html>
<html><head><title>Policy page title</title><style>body { color: red }</style>
<script>var tracking = "SCRIPT_TEXT";</script></head>
<body>
<header>HEADER_TEXT</header>
<nav><a href="/">NAV_TEXT</a></nav>
<div role="navigation">ROLE_NAV_TEXT</div>
<ul role="menu"><li role="none"><button role="menuitem">MENU_TEXT</button></li></ul>
<div role="toolbar"><button>TOOLBAR_TEXT</button></div>
<main>
  <h1>Virtual   assets</h1>
  <p>First    paragraph
     spans lines.</p>
  <p>Second<br>line after a break.</p>
  <noscript>NOSCRIPT_TEXT</noscript>
  <form><label>FORM_TEXT</label><input></form>
  <svg><text>SVG_TEXT</text></svg>
  <template><p>TEMPLATE_TEXT</p></template>
  <!-- COMMENT_TEXT -->
  <h2>Licensing <em>rules</em></h2>
  <div><div><p>Nested paragraph.</p></div></div>
  <table><tr><th>Name</th><th>Fee</th></tr><tr><td>Licence</td><td>HK$ 100</td></tr></table>
  <aside>ASIDE_TEXT</aside>
</main>
<footer>FOOTER_TEXT</footer>
<script>console.log("SCRIPT_TEXT")</script>
</body></html>
"""


def test_html_keeps_readable_text_and_drops_boilerplate(tmp_path):
    doc = load_file(tmp_path, "page.html", HTML)
    boilerplates = ("SCRIPT", "HEADER", "NAV", "ROLE_NAV", "MENU", "TOOLBAR", "NOSCRIPT", "FORM", "SVG", "TEMPLATE")
    for boilerplate in (*boilerplates, "ASIDE", "FOOTER"):
        assert f"{boilerplate}_TEXT" not in doc.text
    assert "COMMENT_TEXT" not in doc.text and "color: red" not in doc.text
    assert "Policy page title" not in doc.text
    assert doc.text == (
        "Virtual assets\n\nFirst paragraph spans lines.\n\nSecond\nline after a break.\n\n"
        "Licensing rules\n\nNested paragraph.\n\nName: Licence | Fee: HK$ 100"
    )


def test_html_sections_start_at_headings(tmp_path):
    doc = load_file(tmp_path, "page.htm", "<p>Before.</p><h1>One</h1><p>a</p><h3>Three</h3><p>b</p>")
    assert doc.text == "Before.\n\nOne\n\na\n\nThree\n\nb"
    assert doc.sections == [Section(0), Section(9, None, "One"), Section(17, None, "Three")]
    assert doc.locate(doc.text.index("b")).heading == "Three"
    assert doc.locate(doc.text.index("a")).heading == "One"


OPTIONS_PAGE = (
    "<h2>OPTIONS</h2><p>Options:</p><dl>"
    "<dt>-n</dt><dt>--dry-run</dt><dd><p>Show what would be done.</p></dd>"
    "<dt>--keep</dt><dd><p>Keep the old copy.</p><p>It is renamed.</p>"
    "<dl><dt>keep.suffix</dt><dd>The suffix added.</dd></dl></dd>"
    "</dl><p>After the list.</p>"
    '<div class="toc"><dl><dt><a href="#o">1. OPTIONS</a></dt><dd>Every option.</dd></dl></div>'
    "<dl><dd>A list without terms.</dd></dl>"
)


def test_html_definition_lists_give_terms_covering_their_entries(tmp_path):
    doc = load_file(tmp_path, "tool.html", OPTIONS_PAGE)
    assert [t.text for t in doc.terms] == ["keep.suffix", "-n, --dry-run", "--keep"]  # inner list first
    at = doc.text.index
    assert doc.term_at(at("Show what")).text == "-n, --dry-run"  # two names of one entry, joined
    assert doc.term_at(at("It is renamed")).text == "--keep"  # the second paragraph of an entry
    assert doc.term_at(at("The suffix added")).text == "keep.suffix"  # the innermost entry
    assert doc.term_at(at("--keep")) is None  # at the term itself: the text already says it
    assert doc.term_at(at("After the list")) is None
    assert "Every option" not in doc.text  # a table of contents is no text of the page
    assert doc.term_at(at("without terms")) is None


def test_html_tables_of_contents_are_dropped_but_a_body_called_contents_is_read(tmp_path):
    """A table of contents (DocBook's "toc", Sphinx's "contents" topic) is a list of links to the sections
    below: not text of the page. Doxygen names a page's whole body "contents": that is read."""
    toc = '<div class="contents topic"><p>Table of Contents</p><ul><li><a href="#a">1. Install</a></li>'
    toc += '<li><a href="#b">2. Use</a></li></ul></div>'
    body = '<h2 id="a">1. Install</h2><p>Run the installer.</p><h2 id="b">2. Use</h2><p>Start it.</p>'
    doc = load_file(tmp_path, "guide.html", toc + body)
    assert doc.text.count("Install") == 1 and "Run the installer." in doc.text
    assert "Table of Contents" not in doc.text  # nor its title
    doxygen = '<div class="contents"><p>The frobnicate() function turns the widget over, keeping its children.'
    doxygen += ' See <a href="#x">widget</a>.</p></div>'
    assert "turns the widget over" in load_file(tmp_path, "api.html", doxygen).text


def test_html_tables_of_links_within_the_manual_are_dropped_but_tables_linking_elsewhere_are_read(tmp_path):
    """Texinfo puts a bar of links above every section and writes its indexes as tables of links to the
    sections: navigation, not text. Debian Reference links each package of its tables to the archive: text."""
    bar = '<table class="header"><tr><td>[<a href="Files.html"> &lt; </a>]</td><td>[<a href="Top.html">Up</a>]'
    bar += '</td><td>[<a href="Index.html">Index</a>]</td></tr></table>'
    index = '<table class="index-vr"><tr><th>Index Entry</th><th>Section</th></tr>'
    index += "".join(
        f'<tr><td><a href="Params.html#{n}">{n}</a></td><td><a href="Params.html">15.6 Parameters</a></td></tr>'
        for n in ("HISTCHARS", "HISTFILE", "HISTORY_IGNORE", "HISTSIZE", "SAVEHIST", "WORDCHARS")
    )
    index += "</table>"
    body = "<h2>15.6 Parameters</h2><p>HISTSIZE is the number of lines of history kept in memory.</p>"
    packages = '<table><tr><th>package</th><th>description</th></tr><tr><td><a href="https://packages.debian.org/'
    packages += (
        'remmina">remmina</a></td><td><a href="https://en.wikipedia.org/wiki/RDP">RDP</a> client</td></tr></table>'
    )
    doc = load_file(tmp_path, "params.html", f"<html><body>{bar}{body}{index}{packages}</body></html>")
    assert doc.text.count("HISTSIZE") == 1 and "Index Entry" not in doc.text and "Up" not in doc.text
    assert "package: remmina | description: RDP client" in doc.text


def test_an_html_page_that_only_redirects_has_no_text_but_a_page_with_its_own_text_is_read(tmp_path):
    """Texinfo writes a page per node that only sends the browser on (`<meta http-equiv="refresh">`)."""
    stub = (
        '<html><head><meta http-equiv="Refresh" content="0; url=Grammar.html#Aliasing"><title>Aliasing</title>'
        "</head><body><p>The node you are looking for is at Aliasing.</p></body></html>"
    )
    error = load_error(write(tmp_path, "Aliasing.html", stub), "Aliasing.html")
    assert isinstance(error, NoTextError) and "redirects to Grammar.html#Aliasing" in error.reason
    prose = "A word is checked for an alias before the command runs. " * 20
    head = '<head><meta http-equiv="refresh" content="30; URL=\'next.html\'"></head>'
    page = f"<html>{head}<body><p>{prose}</p></body></html>"
    assert "checked for an alias" in load_file(tmp_path, "news.html", page).text  # a page of its own, refreshed
    reload = '<html><head><meta http-equiv="refresh" content="60"></head><body><p>Queue: 3 jobs.</p></body></html>'
    assert "Queue: 3 jobs." in load_file(tmp_path, "status.html", reload).text  # refreshed in place: no redirect


@pytest.mark.parametrize(
    "head, encoding",
    [
        ('<meta charset="gbk">', "gbk"),
        ("<meta http-equiv='Content-Type' content='text/html; charset=GB2312'>", "gb18030"),
        ('<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">', "cp1252"),
        ("", "cp1252"),  # no declaration: decode_text guesses
    ],
)
def test_html_is_decoded_by_its_meta_charset(tmp_path, head, encoding):
    body = "香港是国际金融中心" if encoding.startswith("gb") else "Le café “spécial” coûte 5 €"
    data = f"<html><head>{head}</head><body><p>{body}</p></body></html>".encode(encoding)
    assert load_file(tmp_path, "page.html", data).text == body


def test_html_with_a_wrong_meta_charset_falls_back_to_guessing(tmp_path):
    data = '<meta charset="utf-8"><p>Le café “spécial”</p>'.encode("cp1252")
    assert load_file(tmp_path, "page.html", data).text == "Le café “spécial”"


def test_html_block_ends_its_paragraph(tmp_path):
    doc = load_file(tmp_path, "page.html", "<div>In a <b>block</b>.</div>Loose text<ul><li>one</li><li>two</li></ul>")
    assert doc.text == "In a block.\n\nLoose text\n\none\n\ntwo"


def test_html_pre_keeps_its_lines(tmp_path):
    doc = load_file(tmp_path, "code.html", "<p>Run:</p><pre>pip install rag\n  rag ingest docs/</pre>")
    assert doc.text == "Run:\n\npip install rag\n  rag ingest docs/"


def test_html_permalink_marks_are_dropped(tmp_path):
    """Sphinx and MkDocs end headings and signatures with a "¶" link, Sphinx's viewcode adds "[source]": not
    text. A definition's term ends with ":", so it reads as the lead-in of its definition."""
    html = (
        '<h2>Timeouts<a class="headerlink" href="#t">¶</a></h2><dl><dt>coroutine timeout(delay)'
        '<a class="reference internal" href="_modules/t.html#timeout"><span class="viewcode-link">'
        '<span class="pre">[source]</span></span></a><a class="headerlink" href="#x">¶</a></dt>'
        '<dd><p>Return a <a href="#cm">context manager</a>.</p></dd></dl>'
    )
    doc = load_file(tmp_path, "api.html", html)
    assert doc.text == "Timeouts\n\ncoroutine timeout(delay):\n\nReturn a context manager."
    assert doc.sections[-1].heading == "Timeouts"
    assert [t.text for t in doc.terms] == ["coroutine timeout(delay)"]


def test_html_footers_and_navigation_drawn_as_divs_are_dropped(tmp_path):
    html = (
        '<div class="navheader">Prev Up Next</div><p>Body text.</p><div role="navigation">Contents</div>'
        '<div class="footer" role="contentinfo">© 2024. | Powered by Sphinx</div><div class="navfooter">Home</div>'
        '<div class="footnotes">1. A footnote.</div>'
    )
    assert load_file(tmp_path, "page.html", html).text == "Body text.\n\n1. A footnote."


def test_html_bars_of_shortcut_links_and_banners_are_dropped_and_the_body_kept(tmp_path):
    """Texinfo's and Publican's navigation carries keyboard shortcuts (accesskey) in a bar of its own, and
    Publican's banner is a <div id="banner">: neither is text of the page. A shortcut link inside the body's
    prose drops no more than its own short line."""
    html = (
        '<div id="banner"><a href="get.html"><span>Download the ebook</span></a></div>'
        '<ul class="docnav top"><li><a accesskey="p" href="a.html">Prev</a></li><li>The Ferry Book</li>'
        '<li><a accesskey="n" href="c.html">Next</a></li></ul>'
        "<h2>Fares</h2><p>A single ticket costs four dollars.</p>"
        '<div class="nav-panel"><p>Next: <a accesskey="n" href="d.html">Moorings</a>, '
        'Up: <a accesskey="u" href="index.html">Top</a></p></div>'
        f"<p>{'Tickets are sold on board. ' * 20}</p>"
        '<p>See <a accesskey="x" href="x.html">the timetable</a>.</p>'
    )
    doc = load_file(tmp_path, "fares.html", html)
    assert doc.text == f"Fares\n\nA single ticket costs four dollars.\n\n{'Tickets are sold on board. ' * 19}" + (
        "Tickets are sold on board."
    )


def test_a_pdf_is_read_without_its_contents_and_index_entries(tmp_path):
    """A table of contents and an index list every topic and say nothing about any (see `rag.ingest.pdf`):
    their entries are not text of the document; the title and the line above the contents are."""
    doc = load_file(tmp_path, "manual.pdf", manual_pdf())
    assert doc.text.startswith("Harbour Ferry Manual\n")
    assert ". ." not in doc.text and "Timetables 2" not in doc.text
    assert "This manual tells the crews of the harbour ferries" in doc.text
    assert doc.text.count("north pier") == 2  # the two sentences, not the index's entry
    assert doc.locate(doc.text.index("The first ferry")).heading == "1.1 Timetables"


def test_deeply_nested_html_loads(tmp_path):
    """Regression: a recursive walk hit RecursionError on pages with thousands of unclosed tags."""
    doc = load_file(tmp_path, "deep.html", "<div><font>" * 3000 + "deep text" + "</font></div>" * 3000)
    assert doc.text == "deep text"


def test_html_with_a_utf16_bom_is_decoded(tmp_path):
    assert load_file(tmp_path, "page.html", "<p>Zürich 香港</p>".encode("utf-16")).text == "Zürich 香港"


def test_html_without_readable_text_has_no_text(tmp_path):
    assert load_error(write(tmp_path, "a.html", "<script>x=1</script><nav>menu</nav>")).reason == "no text"


# --- PDF --------------------------------------------------------------------------------------------


def test_pdf_pages_become_sections_with_page_numbers(tmp_path):
    pages = [["Page one text", "second line"], [], ["Page three (final)"]]
    doc = load_file(tmp_path, "report.pdf", make_pdf(pages))
    assert doc.text == "Page one text\nsecond line\n\nPage three (final)"
    assert doc.sections == [Section(0, 1, None), Section(doc.text.index("Page three"), 3, None)]
    assert doc.locate(doc.text.index("second")).page == 1
    assert doc.locate(doc.text.index("final")).page == 3


def test_pdf_lines_of_a_paragraph_are_rejoined_into_sentences(tmp_path):
    """A printed line break inside a sentence is a space and a hyphenated word is whole again, so a quote
    reads as a sentence; a heading's line break stays."""
    lines = [
        "2.2 Describing argument types",
        "In order to allow each argument to be defined on its own, the parser",
        "does not simply need to know the number of arguments for a func-",
        "tion, but also the nature of each one.",
    ]
    doc = load_file(tmp_path, "guide.pdf", make_pdf([lines]))
    assert doc.text == (
        "2.2 Describing argument types\nIn order to allow each argument to be defined on its own, the parser "
        "does not simply need to know the number of arguments for a function, but also the nature of each one."
    )


def test_pdf_locked_for_editing_only_opens(tmp_path):
    data = make_pdf([["Readable by anyone"]], owner_password="owner")
    assert PdfReader(io.BytesIO(data)).is_encrypted
    assert load_file(tmp_path, "locked.pdf", data).text == "Readable by anyone"


def test_pdf_needing_a_password_is_refused(tmp_path):
    path = write(tmp_path, "secret.pdf", make_pdf([["Secret"]], user_password="pw"))
    assert load_error(path).reason == "encrypted PDF, a password is needed to open it"


def test_pdf_that_cannot_be_decrypted_says_why(tmp_path, monkeypatch):
    def decrypt(self, password):
        raise DependencyError("cryptography>=3.1 is required for AES algorithm")

    monkeypatch.setattr(PdfReader, "decrypt", decrypt)
    path = write(tmp_path, "aes.pdf", make_pdf([["Secret"]], user_password="pw"))
    with pytest.raises(DocumentError) as info:  # in-process (memory_mb=0): the patch is in this process only
        load(path, "doc", LIMIT, Limits(memory_mb=0))
    assert info.value.reason == "encrypted PDF, cannot decrypt (cryptography>=3.1 is required for AES algorithm)"


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"just some text", "not a valid PDF (no %PDF header)"),
        (b"%PDF-1.7\n\x93garbage without objects", "not a valid PDF ("),
        (make_pdf([["Cut short"]])[:300], "not a valid PDF ("),
    ],
)
def test_corrupt_pdf_is_not_a_valid_pdf(tmp_path, data, reason):
    assert load_error(write(tmp_path, "bad.pdf", data)).reason.startswith(reason)


def test_pdf_without_text_even_by_ocr_is_refused(tmp_path):
    """Both pages lack a text layer, so both are read by OCR (tests/test_ocr.py), which finds nothing."""
    path = write(tmp_path, "scan.pdf", make_pdf([[], []]))
    assert load_error(path).reason == "no text, not even by OCR"


# --- DOCX -------------------------------------------------------------------------------------------


def test_docx_paragraphs_tables_and_headings_in_order(tmp_path):
    document = docx.Document()
    document.add_paragraph("Preface.")
    document.add_heading("Annual report", 0)  # the Title style
    document.add_paragraph("Summary paragraph.")
    document.add_heading("Fees", 1)
    table = document.add_table(rows=2, cols=3)
    table.cell(0, 0).merge(table.cell(0, 1)).text = "Item"
    table.cell(0, 2).text = "Cost"
    for cell, text in zip(table.rows[1].cells, ["Licence", "annual", "HK$ 100"], strict=True):
        cell.text = text
    document.add_paragraph("")
    document.add_heading("Notes   on fees", 3)
    document.add_paragraph("After the table.")
    document.save(tmp_path / "report.docx")

    doc = load(tmp_path / "report.docx", "report.docx", LIMIT)
    assert doc.text == (
        "Preface.\n\nAnnual report\n\nSummary paragraph.\n\nFees\n\nItem | Cost\nLicence | annual | HK$ 100"
        "\n\nNotes   on fees\n\nAfter the table."
    )
    assert [s.heading for s in doc.sections] == [None, "Annual report", "Fees", "Notes on fees"]
    assert [s.start for s in doc.sections] == [0, 10, doc.text.index("Fees"), doc.text.index("Notes")]
    assert doc.locate(doc.text.index("HK$")).heading == "Fees"
    assert doc.locate(doc.text.index("After")).heading == "Notes on fees"


@pytest.mark.parametrize("kind", ["not a zip", "a zip without a document"])
def test_corrupt_docx_is_refused(tmp_path, kind):
    data = b"PK\x03\x04 broken zip" * 10
    if kind != "not a zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("hello.txt", "not word")
        data = buffer.getvalue()
    assert load_error(write(tmp_path, "bad.docx", data)).reason.startswith("not a valid .docx file (")


def test_docx_without_text_has_no_text(tmp_path):
    document = docx.Document()
    document.add_paragraph("   ")
    document.save(tmp_path / "blank.docx")
    assert load_error(tmp_path / "blank.docx").reason == "no text"


# --- decoding ---------------------------------------------------------------------------------------

FRENCH = "Café crème à Zürich"
GERMAN = "Die Größe der Datei ist übermäßig. Grüße aus München, sagt Jürgen – 5 € für den Kaffee."
CHINESE = "香港是一个国际金融中心，虚拟资产政策宣言"
CHINESE_PARAGRAPH = (
    "香港是一个国际金融中心。政府于二零二二年发表虚拟资产政策宣言，阐明发展香港虚拟资产行业的政策立场和方针，"
    "并致力与全球虚拟资产业界携手推动金融创新。"
)
BOMS = {
    "utf-16-le": b"\xff\xfe",
    "utf-16-be": b"\xfe\xff",
    "utf-32-le": b"\xff\xfe\x00\x00",
    "utf-32-be": b"\x00\x00\xfe\xff",
}


@pytest.mark.parametrize(
    "text, encoding",
    [
        (GERMAN + CHINESE, "utf-8"),
        (GERMAN + CHINESE, "utf-8-sig"),
        *((GERMAN + CHINESE, encoding) for encoding in BOMS),
        (FRENCH, "latin-1"),
        (FRENCH, "cp1252"),
        (GERMAN, "cp1252"),
        ("He said “it’s naïve” — déjà vu…", "cp1252"),
        ("El niño comió jamón y la señora bebió café en la estación.", "latin-1"),
        (CHINESE, "gbk"),
        (CHINESE, "gb18030"),
        (CHINESE_PARAGRAPH, "gbk"),
        (CHINESE_PARAGRAPH, "gb18030"),
        ("会议纪要：3月5日 下午2点，讨论Q1预算。", "gbk"),
        ("繁體中文測試，香港特別行政區政府。", "big5"),
        ("日本語のテキストです。文字コードの判定をテストします。", "shift_jis"),
        ("Привет, как дела? Это короткий текст на русском языке.", "cp1251"),
        ("Zażółć gęślą jaźń. Wszystkie prawa zastrzeżone, proszę o kontakt.", "cp1250"),
    ],
)
def test_decode_text_decodes_without_mangling(text, encoding):
    data = BOMS.get(encoding, b"") + text.encode(encoding)
    assert decode_text(data) == text


@pytest.mark.parametrize(
    "text",
    ["Zürich", "Résumé", "Preis: 5€", "“Quoted” text", "Я и ты в городе. Он с ней у дома, а я к тебе."],
)
def test_decode_text_short_one_byte_text_is_not_read_as_chinese(text):
    """Regression: charset-normalizer alone read cp1252 "Zürich" as "嫼物捨" and "Résumé" as "勩獵淩"."""
    encoding = "cp1251" if text.startswith("Я") else "cp1252"
    assert decode_text(text.encode(encoding)) == text


@pytest.mark.parametrize("encoding", ["utf-16", "gb18030", "cp1252"])
def test_txt_files_in_legacy_encodings_load(tmp_path, encoding):
    text = "Größe: 5 €" if encoding == "cp1252" else CHINESE
    assert load_file(tmp_path, "legacy.txt", f"{text}\r\n".encode(encoding)).text == text


def test_decode_text_never_fails():
    assert decode_text(bytes(range(256))) == bytes(range(256)).decode("latin-1")


# --- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, data",
    [
        ("empty.txt", b""),
        ("spaces.md", b"  \n\t\r\n  "),
        ("bom.txt", "   \n ".encode("utf-16")),
        ("empty.pdf", b""),
        ("blank.html", b"\n\n"),
    ],
)
def test_empty_or_whitespace_file_is_empty(tmp_path, name, data):
    assert load_error(write(tmp_path, name, data)).reason == "empty file"


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"


@pytest.mark.parametrize(
    "data",
    [
        PNG + bytes(200),
        b"text with a NUL\x00 byte in it",
        random.Random(7).randbytes(4000).replace(b"\x00", b"\x01"),  # no NUL, mostly not text
    ],
)
def test_binary_content_in_a_text_file_is_refused(tmp_path, data):
    assert load_error(write(tmp_path, "picture.txt", data)).reason == "binary content, not text"


def test_too_large_file_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "huge.txt"
    with path.open("wb") as f:
        f.truncate(50 * 2**20)  # sparse: 50 MB on paper, nothing on disk
    monkeypatch.setattr(Path, "open", lambda *args, **kwargs: pytest.fail("read a file that is too large"))
    assert load_error(path, max_bytes=20 * 2**20).reason == "too large (50.0 MB > limit 20.0 MB)"


def test_too_large_small_file_names_exact_sizes(tmp_path):
    path = write(tmp_path, "a.md", "x" * 1001)
    assert load_error(path, max_bytes=1000).reason == "too large (1001 bytes > limit 1000 bytes)"
    assert load(path, "a.md", 1001).text == "x" * 1001


def test_unreadable_file_gives_the_os_reason(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    path = write(tmp_path, "private.txt", "secret")
    monkeypatch.setattr(Path, "open", refuse)
    assert load_error(path).reason == "cannot read: Permission denied"


def test_file_without_read_permission_cannot_be_read(tmp_path):
    """A real chmod 000 file. Root reads any file, so as root the reader runs without the capabilities that
    let it (util-linux's setpriv drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from its bounding set)."""
    import shutil
    import subprocess
    import sys

    path = write(tmp_path, "private.txt", "secret")
    path.chmod(0)
    code = (
        "import sys; from pathlib import Path; from rag.ingest.loaders import load\n"
        "from rag.errors import DocumentError\n"
        "try:\n    load(Path(sys.argv[1]), 'private.txt', 10**6)\nexcept DocumentError as e:\n    print(e.reason)"
    )
    command = [sys.executable, "-c", code, str(path)]
    if os.geteuid() == 0:
        assert shutil.which("setpriv"), "util-linux's setpriv is needed to test permissions as root"
        command = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *command]
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "cannot read: Permission denied", result.stderr


def test_dangling_symlink_cannot_be_read(tmp_path):
    (tmp_path / "link.txt").symlink_to(tmp_path / "gone.txt")
    assert load_error(tmp_path / "link.txt").reason == "cannot read: No such file or directory (a broken symlink)"


def test_missing_file_cannot_be_read(tmp_path):
    assert load_error(tmp_path / "gone.pdf").reason == "cannot read: No such file or directory"


def test_directory_cannot_be_read(tmp_path):
    (tmp_path / "folder.md").mkdir()
    assert load_error(tmp_path / "folder.md").reason == "cannot read: is a directory"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_is_refused_without_blocking(tmp_path):
    """Opening a FIFO for reading blocks until a writer appears; the loader must never open one."""
    os.mkfifo(tmp_path / "pipe.txt")
    errors = []
    thread = threading.Thread(target=lambda: errors.append(load_error(tmp_path / "pipe.txt")), daemon=True)
    thread.start()
    thread.join(timeout=5)
    assert not thread.is_alive(), "load() blocked on a FIFO"
    assert errors[0].reason == "cannot read: not a regular file (a FIFO, socket or device)"


@pytest.mark.parametrize(
    "name, suffix", [("photo.xyz", "'.xyz'"), ("archive.tar.GZ", "'.tar.gz'"), ("a.out", "'.out'")]
)
def test_unsupported_file_type(tmp_path, name, suffix):
    reason = load_error(write(tmp_path, name, "text")).reason
    assert reason == f"unsupported file type {suffix}"


# --- text files as Unix names them, compressed files ------------------------------------------------

README = "Frobnicator\n===========\n\nThe frobnicator turns widgets.\n\nInstallation\n------------\n\nRun it.\n"


@pytest.mark.parametrize("name", ["README", "NEWS.Debian", "INSTALL.unix", "copyright", "changelog.Debian"])
def test_text_files_without_a_format_suffix_are_read_as_text(tmp_path, name):
    doc = load_file(tmp_path, name, README)
    assert doc.text == "Frobnicator\n\nThe frobnicator turns widgets.\n\nInstallation\n\nRun it."
    assert doc.locate(doc.text.index("Run it")).heading == "Installation"


def test_a_binary_file_without_a_suffix_is_refused_as_binary(tmp_path):
    assert load_error(write(tmp_path, "core", bytes(range(256)) * 40)).reason == "binary content, not text"


@pytest.mark.parametrize("inner", ["guide.md", "README", "notes.txt"])
def test_a_gzip_file_is_read_as_what_it_compresses(tmp_path, inner):
    doc = load_file(tmp_path, inner + ".gz", gzip.compress(README.encode()))
    assert "The frobnicator turns widgets." in doc.text
    assert doc.locate(doc.text.index("Run it")).heading == "Installation"


def test_a_compressed_pdf_keeps_its_pages(tmp_path):
    doc = load_file(tmp_path, "manual.pdf.gz", gzip.compress(make_pdf([["First page."], ["Second page."]])))
    assert doc.locate(doc.text.index("Second")).page == 2


def test_bad_gzip_files_are_refused_with_the_reason(tmp_path):
    assert load_error(write(tmp_path, "a.txt.gz", b"not gzip at all")).reason.startswith("not a readable gzip file")
    cut = gzip.compress(b"some text " * 1000)[:40]
    assert load_error(write(tmp_path, "b.txt.gz", cut)).reason.startswith("not a readable gzip file")
    bomb = gzip.compress(b"a" * 5000)  # ~40 bytes that unpack to 5,000: refused without unpacking it all
    reason = load_error(write(tmp_path, "c.txt.gz", bomb), max_bytes=1000).reason
    assert reason == "too large once decompressed (over the limit of 1000 bytes)"


# --- underlined titles: reStructuredText, setext markdown, plain-text READMEs -------------------------

RST = """=========
 The Tool
=========

Usage
=====

Call ``tool --fast``.

Options
-------

Name     Meaning
-------  -----------
--fast   go fast

A sentence that ends a paragraph
----

Done.
"""


def test_rst_titles_start_sections_and_their_adornments_are_dropped(tmp_path):
    for name in ("tool.rst", "tool.rst.txt"):
        doc = load_file(tmp_path, name, RST)
        assert "=====" not in doc.text and doc.text.startswith("The Tool\n\nUsage\n\nCall")
        heading = [doc.locate(doc.text.index(t)).heading for t in ("Call", "--fast   go", "Done.")]
        assert heading == ["Usage", "Options", "Options"]  # a table's ruler and a short rule are no titles
        assert "-------  -----------" in doc.text and "----" in doc.text.split("paragraph")[1]


def test_a_changelogs_separator_rule_and_an_underlined_sentence_are_not_titles(tmp_path):
    text = (
        "Release notes\n=============\n\n"
        "a.  The parser is faster.\n" + "-" * 78 + "\nThis document details the changes in version 2.\n\n"
        "See the list below:\n-------------------\n\nDone.\n"
    )
    doc = load_file(tmp_path, "CHANGES", text)
    assert {doc.locate(doc.text.index(t)).heading for t in ("parser", "This document", "Done")} == {"Release notes"}
    assert "-" * 78 in doc.text  # a separator is text, kept where it was


def test_markdown_setext_titles_are_sections_but_not_inside_code(tmp_path):
    md = "Intro\n=====\n\nHello.\n\n```\nnot a title\n---\n```\n\n## Setup\n\nRun it.\n\nMore\n----\n\nEnd.\n"
    doc = load_file(tmp_path, "a.md", md)
    assert [doc.locate(doc.text.index(t)).heading for t in ("Hello", "not a title", "Run it", "End.")] == [
        "Intro",
        "Intro",
        "Setup",
        "More",
    ]
    assert "not a title\n---" in doc.text and "## Setup" in doc.text and "=====" not in doc.text


def test_error_names_the_relative_path(tmp_path):
    error = load_error(write(tmp_path, "Größe der Datei 香港.txt", b""), rel="sub dir/Größe der Datei 香港.txt")
    assert str(error) == "sub dir/Größe der Datei 香港.txt: empty file"


# --- LoadedDocument ---------------------------------------------------------------------------------


def test_locate_finds_the_section_around_an_offset():
    doc = LoadedDocument("aaaa\n\nbbbb", [Section(0, 1), Section(6, 2)])
    assert [doc.locate(i).page for i in (0, 5, 6, 9, 10)] == [1, 1, 2, 2, 2]
    with pytest.raises(ValueError, match=r"offset \(11\) is outside the text \(0..10\)"):
        doc.locate(11)
    with pytest.raises(ValueError, match="outside"):
        doc.locate(-1)


def test_sections_must_start_at_zero():
    with pytest.raises(ValueError, match="first section must start at 0"):
        LoadedDocument("text", [Section(2)])
    with pytest.raises(ValueError):
        LoadedDocument("text", [])


def test_html_table_cells_are_separated_and_prose_pipes_kept(tmp_path):
    html = (
        "<p>Use ls | grep foo |</p>"
        "<table><tr><th>Key</th><th></th><th>Meaning</th></tr><tr><td>F1</td><td>x</td><td>help</td></tr></table>"
    )
    assert load_file(tmp_path, "t.html", html).text == "Use ls | grep foo |\n\nKey | | Meaning\nF1 | x | help"


DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # fonts-dejavu-core, which fontconfig pulls in


def test_ligatures_in_a_pdf_and_in_a_text_file_are_spelled_out(tmp_path):
    """PDFs set by TeX often carry "ﬁ" and "ﬂ" as single characters: "ﬁle" matched no "file" in the keyword
    index, and the embedding model has no word piece for it."""
    assert DEJAVU.exists(), f"{DEJAVU} is not installed (apt-get install fonts-dejavu-core)"
    from fpdf import FPDF

    pdf = FPDF(format=(105, 148))
    pdf.add_font("DejaVu", fname=str(DEJAVU))  # a font with the ligature glyphs, embedded with their code points
    pdf.set_font("DejaVu", size=11)
    pdf.add_page()
    pdf.multi_cell(0, 6, "The conﬁguration ﬁle is deﬁned on the ﬁrst ﬂoor.")
    path = tmp_path / "ligatures.pdf"
    path.write_bytes(bytes(pdf.output()))
    assert "ﬁ" in PdfReader(path).pages[0].extract_text()  # the PDF really holds the ligature characters
    text = load(path, "ligatures.pdf", LIMIT).text
    assert " ".join(text.split()) == "The configuration file is defined on the first floor."
    note = tmp_path / "note.txt"
    note.write_text("Eﬀects of the ﬁrst oﬃce.", encoding="utf-8")
    assert load(note, "note.txt", LIMIT).text == "Effects of the first office."


def test_a_numbered_heading_keeps_its_own_line_when_the_pdf_is_reflowed():
    page = "4.2 Choosing between the two ferry piers\nBoth piers sell tickets for the night ferry to the\nislands."
    assert loaders.reflow(page) == (
        "4.2 Choosing between the two ferry piers\nBoth piers sell tickets for the night ferry to the islands."
    )
    # a wrapped line that begins with a number is still joined to the next
    assert loaders.reflow("2024 was the year the ferry company moved to a\nnew pier.") == (
        "2024 was the year the ferry company moved to a new pier."
    )


def test_spaces_between_chinese_characters_are_closed_in_pdf_and_html_text(tmp_path):
    # as pdfium reads a justified line of a Chinese manual: gaps inside words, a space beside Latin text
    page = "通过这项特点，估 计 debhelper 软件可以直接制作约 90% 的软件包。所以打包也不是看起来那 样复杂。"
    assert loaders.reflow(page) == (
        "通过这项特点，估计 debhelper 软件可以直接制作约 90% 的软件包。所以打包也不是看起来那样复杂。"
    )
    assert loaders.reflow("Read the ferry timetable before you go.") == "Read the ferry timetable before you go."
    # HTML source wraps Chinese paragraphs like any other; the line break is no space between two characters
    html = tmp_path / "guide.html"
    html.write_text("<p>所以打包也不\n    是看起来那样复杂。 Run dh_make\n  first.</p>", "utf8")
    assert load(html, "guide.html", LIMIT).text == "所以打包也不是看起来那样复杂。 Run dh_make first."
    # plain text keeps its lines as written; a quote from it joins a wrapped Chinese line, whatever indents it
    assert unwrap("就要确保其支持变量，虽\n\xa0\xa0\xa0 然默认情况下没有设置。\n  make install") == (
        "就要确保其支持变量，虽然默认情况下没有设置。\n  make install"
    )


def test_pdf_text_is_read_by_pdfium_with_its_hyphenation_marks_joined(tmp_path, monkeypatch):
    """PDFium reads a PDF's text layer (pypdf ran the words of justified DocBook/FOP lines together: see
    docs/BENCHMARKS.md); it marks a word hyphenated at a line's end with U+FFFE and ends lines with CRLF."""
    from fpdf import FPDF

    pdf = FPDF(format=(105, 148))
    pdf.set_font("Helvetica", size=10)
    pdf.add_page()
    pdf.multi_cell(0, 5, "The ferry company and its manage-\nment sail the night route to the islands twice a week.")
    data = bytes(pdf.output())
    layers = loaders._pdfium_text_layers(data, 1)
    assert layers is not None and "manage\ufffement" not in layers[0][0] and "\r" not in layers[0][0]
    path = tmp_path / "ferry.pdf"
    path.write_bytes(data)
    assert load(path, "ferry.pdf", LIMIT).text == (
        "The ferry company and its management sail the night route to the islands twice a week."
    )
    assert loaders._pdfium_text_layers(data, 2) is None  # a page count pypdf disagrees with: pypdf reads it

    def no_pypdf_text(*args, **kwargs):
        raise AssertionError("pypdf's text extraction was used")

    monkeypatch.setattr("pypdf.PageObject.extract_text", no_pypdf_text)
    assert "management sail" in load(path, "ferry.pdf", LIMIT, Limits(memory_mb=0)).text  # in-process: patched


def test_a_pdf_is_read_without_its_running_heads_and_in_the_sections_its_outline_names(tmp_path):
    path = tmp_path / "handbook.pdf"
    path.write_bytes(handbook_pdf())
    doc = load(path, "handbook.pdf", LIMIT)
    lines = doc.text.split("\n")
    assert not [line for line in lines if "Handbook" in line or line.strip().isdigit()]  # heads and page numbers
    assert "Timetables 1" in lines  # the table of contents is text, not the heading it lists

    def where(words: str) -> tuple[int | None, str | None]:
        section = doc.locate(doc.text.index(words))
        return section.page, section.heading

    assert where("Contents") == (1, None)
    assert where("The first ferry") == (1, "1 Timetables")
    assert where("Night sailings") == (2, "1 Timetables")  # a section goes on across pages
    assert where("A single ticket") == (2, "2 Fares")  # ... and starts where its heading stands, mid-page
    assert where("Pensioners") == (3, "2 Fares")


def test_a_pdfs_lines_of_code_stay_lines_while_its_prose_is_rejoined(tmp_path):
    """Before, a line of 40 characters or more was joined to the next one as wrapped prose, and every line after
    it too (the lines already joined counted as one long line): a code example ran into one line with the
    sentence after it."""
    doc = load_file(tmp_path, "plotting.pdf", plotting_pdf())
    assert "# tics at y=20 y=40 y=60 and so on up to y=200\nset log y\nset yrange [20:200]\nset ytics 20\n" in doc.text
    assert "with any base you like; the tic marks of a log-scaled axis are not spaced evenly" in doc.text  # rejoined
    assert "The logscale attribute of the tics is set automatically by the set log command" in doc.text


def test_html_table_cells_written_as_paragraphs_stay_in_their_row_but_a_page_laid_out_in_a_table_does_not(tmp_path):
    """Sphinx wraps every cell in <p>: the row still reads as a row, each cell named by its column, so a
    parameter's "default" stays with its value. A long cell holding a page's text (a layout table) keeps its
    paragraphs."""
    parameter = (
        "<h4>RateLimit.Burst</h4><table><thead><tr><th><p>type</p></th><th><p>default</p></th><th><p>max</p></th>"
        "</tr></thead><tbody><tr><td><p>integer</p></td><td><p>200</p></td><td><p>(2^31)-1</p></td></tr></tbody>"
        "</table><p>Specifies the rate-limiting burst in number of messages.</p>"
    )
    long = " ".join(["The ferry leaves from the central pier every hour on the hour."] * 10)
    layout = f"<table><tr><td><p>{long}</p><p>Tickets are sold on board.</p></td></tr></table>"
    doc = load_file(tmp_path, "params.html", f"<html><body>{parameter}{layout}</body></html>")
    assert "type: integer | default: 200 | max: (2^31)-1" in doc.text
    assert f"{long}\n\nTickets are sold on board." in doc.text


def test_html_rows_of_a_short_table_under_a_header_row_name_their_columns(tmp_path):
    """A record: each cell of a row starts with its column's name (an empty one is left out). A first row that
    is not all <th>, a row whose cells do not line up with the header, or a listing of many rows (its column
    names repeated on every row would match any question using them) leaves the table as it is."""
    named = (
        "<table><tr><th>package</th><th>popcon</th><th>description</th></tr>"
        "<tr><td>dpkg</td><td></td><td>low level package manager</td></tr>"
        "<tr><td>apt</td><td>V:874</td><td>front-end</td></tr></table>"
    )
    vertical = "<table><tr><th>Module:</th><td>core</td></tr><tr><th>Default:</th><td>KeepAlive 5</td></tr></table>"
    spanned = '<table><tr><th>a</th><th>b</th></tr><tr><td colspan="2">both</td></tr></table>'
    doc = load_file(tmp_path, "t.html", f"<html><body>{named}<p>x</p>{vertical}<p>y</p>{spanned}</body></html>")
    assert "package: dpkg | description: low level package manager\npackage: apt | popcon: V:874 |" in doc.text
    assert "package | popcon" not in doc.text  # the header row went into the rows
    assert "Module: | core\nDefault: | KeepAlive 5" in doc.text
    assert "a | b\nboth" in doc.text
    listing = "<table><tr><th>package</th><th>size</th></tr>"
    listing += "".join(f"<tr><td>tool{i}</td><td>{i}</td></tr>" for i in range(RECORD_ROWS + 1)) + "</table>"
    doc = load_file(tmp_path, "listing.html", f"<html><body>{listing}</body></html>")
    assert doc.text.startswith("package | size\ntool0 | 0\ntool1 | 1")


def test_html_a_box_drawn_as_a_table_of_one_cell_rows_keeps_its_paragraphs(tmp_path):
    """DocBook draws a "Tip" as a table: the title in one row, the text in a row of its own. Its paragraph is
    no cell of a data row, and is not run into the title ("Tip iconv(1) is …")."""
    tip = (
        '<table summary="Tip"><tr><td rowspan="2"><img alt="[Tip]" src="tip.png"></td><th>Tip</th></tr>'
        "<tr><td><p>iconv(1) is provided as a part of the libc6 package.</p></td></tr></table>"
    )
    doc = load_file(tmp_path, "tip.html", f"<html><body>{tip}</body></html>")
    assert "Tip\n\niconv(1) is provided as a part of the libc6 package." in doc.text
