"""One document file → clean text, plus where its pages and headings start.

A PDF page without a text layer (a scan) and an image file are read with OCR (`rag.ingest.ocr`), a page at a time.

`load` reads a file, picks the reader for its name (`format_of`) and returns a `LoadedDocument`: the text,
and the `Section`s that let a chunk at any offset be cited as ``guide.pdf, p. 3`` or ``notes.md, § Setup``.
A ``.gz`` file is read as the file it compresses, and the plain-text files Unix and Debian name without a
format suffix (``README``, ``copyright``, ``NEWS.Debian``) as text.
Every failure is a `DocumentError` whose reason a person can act on; the ingest records it and goes on.

Example:
    >>> doc = load(Path("notes.md"), "notes.md", max_bytes=20 * 2**20)  # doctest: +SKIP
    >>> doc.locate(doc.text.index("pip install")).heading  # doctest: +SKIP
    'Setup'
"""

from __future__ import annotations

import bisect
import functools
import gzip
import io
import re
import stat
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.errors import DocumentError, NoTextError
from rag.ingest import markup, ocr, pdf, sandbox
from rag.ingest.encoding import CONTROL_CHARS, UTF16_32_BOMS, control_share, decode_html, decode_text
from rag.limits import Limits
from rag.text import CODE_LINE, WRAP_MIN_LINE, close_gaps, code_share, is_prose_line

if TYPE_CHECKING:
    from docx.table import _Row

# .gz: the file it compresses; files without a format suffix (README) are text too (`format_of`)
SUPPORTED_SUFFIXES = (
    frozenset({".txt", ".text", ".md", ".markdown", ".rst", ".html", ".htm", ".pdf", ".docx", ".gz"})
    | frozenset({".pptx", ".xlsx", ".csv", ".tsv", ".odt", ".epub"})  # rag.ingest.office
    | ocr.IMAGE_SUFFIXES
)
ZIPPED = frozenset({".docx", ".pptx", ".xlsx", ".odt", ".epub"})  # zip containers: checked, parsed in the worker
ISOLATE_HTML_BYTES = 2**20  # HTML above this is parsed in the worker: bs4 trees take ~100x the page in memory


@dataclass(frozen=True)
class Section:
    """A stretch of a document's text that shares one page and one heading.

    Attributes:
        start: offset in `LoadedDocument.text` where the section begins; it runs until the next one's start.
        page: 1-based PDF page, else None.
        heading: text of the nearest heading above (markdown ``#``, HTML h1-h6, docx Heading styles), or None.
    """

    start: int
    page: int | None = None
    heading: str | None = None


@dataclass(frozen=True)
class Term:
    """A definition-list entry of an HTML page (``<dt>``/``<dd>``): the term (an option, a function's
    signature, a word of a glossary) and the stretch of text it covers, from the term to the next term of
    its list or the list's end. A manual page's option list or an API reference is such a list: text deep
    in an entry is about its term, though the term is written only once, above it.
    """

    start: int
    end: int
    text: str


@dataclass
class LoadedDocument:
    """A document's clean text and its sections, sorted by start, the first one starting at 0.

    ``ocr_pages`` counts the pages read by OCR (they had no text layer); ``empty_pages`` lists the pages
    that have no text even so (a blank page, a photo), for the ingest summary. ``terms`` are its
    definition-list entries (`Term`), nested ones after the entry that holds them. ``title`` is the title the
    file declares apart from its text (an HTML page's ``<title>``), if any.
    """

    text: str
    sections: list[Section]
    ocr_pages: int = 0
    empty_pages: list[int] = field(default_factory=list)
    terms: list[Term] = field(default_factory=list)
    title: str | None = None

    def __post_init__(self) -> None:
        if not self.sections or self.sections[0].start != 0:
            raise ValueError(f"the first section must start at 0, got {self.sections[:1]}")

    def locate(self, offset: int) -> Section:
        """The section that contains ``offset`` (``len(text)`` is allowed: a chunk's end)."""
        if not 0 <= offset <= len(self.text):
            raise ValueError(f"offset ({offset}) is outside the text (0..{len(self.text)})")
        return self.sections[bisect.bisect_right(self.sections, offset, key=lambda s: s.start) - 1]

    def term_at(self, offset: int) -> Term | None:
        """The innermost definition-list entry that ``offset`` lies inside, past its term; None when there
        is none (text at the term itself already says it)."""
        inside = [t for t in self.terms if t.start < offset < t.end]
        return max(inside, key=lambda t: t.start, default=None)


def load(path: Path, rel: str, max_bytes: int, limits: Limits | None = None) -> LoadedDocument:
    """Read one file into clean text and sections.

    Args:
        path: the file on disk.
        rel: its name for people (the path relative to the docs folder), used in error messages.
        max_bytes: larger files are refused before being read.
        limits: what parsing it may cost (`rag.limits`); .docx, .pdf, image and large .html files are parsed
            in a worker process under its memory ceiling (`rag.ingest.sandbox`), the OCR of each page in its own
            call with its own time limit. The defaults when omitted.

    Raises:
        DocumentError: with a short reason, e.g. ``"a.pdf: has 3,000 pages, more than 2,000; not read"``.
    """
    suffix = format_of(path.name)
    if suffix is None:
        raise DocumentError(rel, f"unsupported file type '{suffix_of(path.name)}'")
    limits = limits or Limits()
    data = _read_bytes(path, rel, max_bytes)
    if path.name.lower().endswith(".gz"):
        data = _gunzip(data, rel, max_bytes)
    if suffix == ".pdf" or suffix in ocr.IMAGE_SUFFIXES:
        return parse(suffix, data, rel, limits)  # these readers isolate each step: the text layer, each page's OCR
    if suffix in ZIPPED or (suffix in (".html", ".htm") and len(data) > ISOLATE_HTML_BYTES):
        return sandbox.run(
            parse, suffix, data, rel, limits, rel=rel, memory_mb=limits.memory_mb, timeout=limits.timeout
        )
    return parse(suffix, data, rel, limits)


def format_of(name: str) -> str | None:
    """The suffix of the reader rag reads a file called ``name`` with, or None when it has none.

    ``name.gz`` is read as ``name`` (Debian compresses most of /usr/share/doc). Plain text also covers the
    files Unix names without a format suffix: no suffix at all (``README``, ``copyright``), an upper-case
    first part (``README.api``, ``INSTALL.unix``) or a capitalised qualifier (``changelog.Debian``); their
    content is checked for binary bytes when they are read. ``x.rst.txt`` (Sphinx's page sources) is
    reStructuredText.

    Example:
        >>> [format_of(n) for n in ("a.PDF", "notes.md.gz", "README", "NEWS.Debian.gz", "b.rst.txt", "c.xyz")]
        ['.pdf', '.md', '.txt', '.txt', '.rst', None]
    """
    base = name.rsplit("/", 1)[-1]
    if base.lower().endswith(".gz"):
        base = base[:-3]
    if not base or base.startswith("."):
        return None
    lower = base.lower()
    suffix = Path(lower).suffix
    if lower.endswith(".rst.txt") or suffix == ".rst":
        return ".rst"
    if suffix in _READERS:
        return suffix
    if suffix == ".text":
        return ".txt"
    first, qualifier = base.split(".", 1)[0], Path(base).suffix[1:]
    if not suffix or (first.isalpha() and first.isupper()) or (qualifier[:1].isupper() and qualifier.isalpha()):
        return ".txt"
    return None


def suffix_of(name: str) -> str:
    """How a file's type shows in a message: ``'.xyz'``, or ``'.tar.gz'`` for a compressed one."""
    path = Path(name.lower())
    return "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix


def _gunzip(data: bytes, rel: str, max_bytes: int) -> bytes:
    """The file a ``.gz`` holds, refused past ``max_bytes`` (read no further: a small file can unpack to
    gigabytes)."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            out = f.read(max_bytes + 1)
    except (OSError, EOFError, zlib.error) as e:  # a bad header, a cut file, a corrupt stream
        raise DocumentError(rel, f"not a readable gzip file ({e})") from None
    limit = f"{max_bytes / 2**20:.1f} MB" if max_bytes >= 2**17 else f"{max_bytes} bytes"
    return _within(out, rel, max_bytes, f"too large once decompressed (over the limit of {limit})")


def parse(suffix: str, data: bytes, rel: str, limits: Limits) -> LoadedDocument:
    """The reader of ``suffix`` on a file's bytes, within ``limits`` (what `load` runs, maybe in a worker)."""
    return _READERS[suffix](data, rel, limits)


def _read_bytes(path: Path, rel: str, max_bytes: int) -> bytes:
    try:
        info = path.stat()
    except OSError as e:
        broken = " (a broken symlink)" if isinstance(e, FileNotFoundError) and path.is_symlink() else ""
        raise DocumentError(rel, f"cannot read: {_why(e)}{broken}") from e
    # Opening a FIFO would block until someone writes to it, so only regular files are opened at all.
    if stat.S_ISDIR(info.st_mode):
        raise DocumentError(rel, "cannot read: is a directory")
    if not stat.S_ISREG(info.st_mode):
        raise DocumentError(rel, "cannot read: not a regular file (a FIFO, socket or device)")
    if info.st_size > max_bytes:
        raise DocumentError(rel, f"too large ({_size(info.st_size, max_bytes)})")
    try:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)  # + 1: notice a file that grew after the stat
    except OSError as e:
        raise DocumentError(rel, f"cannot read: {_why(e)}") from e
    return _within(data, rel, max_bytes, f"too large ({_size(len(data), max_bytes)})")


def _within(data: bytes, rel: str, max_bytes: int, too_large: str) -> bytes:
    """``data``, unless it is over ``max_bytes`` (refused with the reason ``too_large``) or empty."""
    if len(data) > max_bytes:
        raise DocumentError(rel, too_large)
    if not data.strip():
        raise DocumentError(rel, "empty file")
    return data


# --- plain text and markdown ------------------------------------------------------------------------

_ATX_HEADING = re.compile(r" {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*")  # "## Setup ##" -> "Setup"
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")


def _read_text(data: bytes, rel: str, limits: Limits) -> LoadedDocument:
    return _underlined(_plain_text(data, rel).split("\n"))


# A title's underline (or overline): one punctuation character repeated, as reStructuredText, setext
# markdown and plain-text READMEs write them ("Installation\n============").
_ADORNMENT = re.compile(r"([=\-~^*+#\"'`:._])\1{2,}")


def _underlined(
    lines: list[str], adornments: str = "=-~^*+#\"'`:._", code: list[bool] | None = None, atx: bool = False
) -> LoadedDocument:
    """Text whose titles are underlined (and maybe overlined): each title starts a section, its adornment
    lines are dropped (they are decoration, not text). A title is one unindented line (inset is allowed
    under an overline) of at most 100 characters with a letter in it, after a blank line (or the start),
    underlined at least about as long as itself, not ending like a sentence or a lead-in (``.``, ``:``); a
    table's ruler (``----  ----``), a line of dashes under a paragraph, or a rule across the page with text
    right under it (a changelog's separator) is not one.

    For markdown, ``code`` marks the lines of fenced code blocks (never titles) and ``atx`` also takes
    ``## Title`` lines as titles (kept in the text, as written)."""
    code = code or [False] * len(lines)
    out: list[str] = []
    sections, offset, i = [Section(0)], 0, 0

    def adorned(k: int, width: int = 3) -> bool:
        line = lines[k].rstrip() if 0 <= k < len(lines) and not code[k] else ""
        return bool(_ADORNMENT.fullmatch(line)) and line[0] in adornments and len(line) >= width

    def title(k: int, inset: bool = False) -> str | None:  # inset: under an overline, it may be indented
        line = lines[k].rstrip() if k < len(lines) and not code[k] else ""
        line = line.strip() if inset else line
        ok = line[:1].strip() and len(line) <= 100 and any(ch.isalpha() for ch in line) and not adorned(k)
        ok = ok and not line.endswith((".", ",", ";", ":"))  # a sentence or a lead-in, not a title
        return line.strip() if ok and (k == 0 or not lines[k - 1].strip() or adorned(k - 1)) else None

    def separator(k: int, width: int) -> bool:  # a rule across the page with text right under it
        return len(lines[k].rstrip()) > max(60, 2 * width) and k + 1 < len(lines) and bool(lines[k + 1].strip())

    while i < len(lines):
        titled, heading, kept, used = True, None, lines[i], 1
        if atx and not code[i] and (m := _ATX_HEADING.fullmatch(lines[i])):
            heading = m[1] or None
        elif adorned(i) and (t := title(i + 1, inset=True)) and adorned(i + 2) and lines[i + 2][0] == lines[i][0]:
            heading, kept, used = t, t, 3  # overline, title, underline
        elif (t := title(i)) and adorned(i + 1, max(3, int(0.8 * len(t)))) and not separator(i + 1, len(t)):
            heading, kept, used = t, t, 2  # title, underline
        else:
            titled = False
        if titled:
            sections.append(Section(offset, None, heading))
        out.append(kept)
        offset += len(kept) + 1
        i += used
    if len(sections) > 1 and sections[1].start == 0:
        sections.pop(0)
    return LoadedDocument("\n".join(out).rstrip("\n"), sections)


_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)


def _lines(text: str) -> Iterator[tuple[str, bool]]:
    """Each line of markdown, and whether it belongs to a fenced code block (its fences included)."""
    fence = None
    for line in text.split("\n"):
        if m := _FENCE.match(line):
            fence = m[1] if fence is None else (None if m[1].startswith(fence) else fence)
            yield line, True
        else:
            yield line, fence is not None


def _without_comments(text: str) -> str:
    """Markdown without its HTML comments (``<!-- YAML added: v0.1.90 -->``, which no reader of the rendered
    page sees), except inside fenced code blocks, where a comment is part of an example."""
    runs: list[tuple[bool, list[str]]] = []  # (inside a code block, its lines), a comment may span lines
    for line, code in _lines(text):
        if runs and runs[-1][0] == code:
            runs[-1][1].append(line)
        else:
            runs.append((code, [line]))
    return _clean("\n".join("\n".join(ls) if code else _HTML_COMMENT.sub("", "\n".join(ls)) for code, ls in runs))


def _read_rst(data: bytes, rel: str, limits: Limits) -> LoadedDocument:
    if not (text := markup.rst_text(_plain_text(data, rel)).strip("\n")):  # a file of comments and targets
        raise NoTextError(rel, "only markup, no text")
    return _underlined(text.split("\n"))


def _read_markdown(data: bytes, rel: str, limits: Limits) -> LoadedDocument:
    if not (text := _without_comments(markup.myst_text(_plain_text(data, rel)))):
        raise DocumentError(rel, "empty file")
    lines, code = zip(*_lines(text), strict=True)
    return _underlined(list(lines), "=-", list(code), atx=True)  # "## Setup" and setext's "Setup\n====="


def _plain_text(data: bytes, rel: str) -> str:
    # Text never holds NUL bytes unless it is UTF-16/32, which starts with a BOM; git uses the same test.
    if b"\x00" in data[:8192] and not data.startswith(UTF16_32_BOMS):
        raise DocumentError(rel, "binary content, not text")
    text = decode_text(data)
    if control_share(text) > 0.05:
        raise DocumentError(rel, "binary content, not text")
    if not (text := _clean(text)):
        raise DocumentError(rel, "empty file")
    return text


# --- HTML -------------------------------------------------------------------------------------------

_DROP = {"script", "style", "noscript", "nav", "header", "footer", "aside", "form", "svg", "template"}
_CHROME = {"footer", "navheader", "navfooter", "banner"}
NAV_CHARS = 300  # a navigation bar is a short line of links
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_BLOCKS = {"address", "article", "blockquote", "caption", "dd", "details", "dialog", "div", "dl", "dt"}
_BLOCKS |= {"fieldset", "figcaption", "figure", "hr", "li", "main", "ol", "p", "section", "summary"}
_BLOCKS |= {"table", "ul"}
_SPACES = re.compile(r"\s+")
TERM_CHARS = 100  # a definition term (a long function signature) is cut to this many characters in headings
_VIEWCODE = re.compile(r"\bviewcode-link\b")
_CELL = "\ue000"  # end of a table cell while a paragraph is gathered (Unicode private use: not in real text)
# A table cell this short, with no heading, table, code block or definition list inside, in a row of two or
# more cells, is part of its row even where its text sits in paragraphs (Sphinx writes <td><p>200</p></td>):
# a row reads "integer | 200", not a paragraph per cell with the header's "default" far from its value. A
# longer cell is a page laid out in a table, its paragraphs read as paragraphs.
CELL_CHARS = 500
_CELL_BLOCKS = ("table", "pre", "dl", *sorted(_HEADINGS))


def _row_cell(cell) -> bool:
    """A short cell of a row of two or more cells: its paragraphs are words of the row. A row of one cell is
    layout (DocBook boxes a "Tip" as a table, its text in a row of its own), and reads as paragraphs."""
    if len(cell.get_text()) > CELL_CHARS or cell.find(_CELL_BLOCKS) or cell.parent is None:
        return False
    return len(cell.parent.find_all(["td", "th"], recursive=False)) >= 2


def _is_permalink(node) -> bool:
    """A documentation generator's "link to this section" mark (Sphinx, MkDocs: ``<a class="headerlink">¶</a>``),
    which would otherwise end every heading and signature with a stray "¶"."""
    if node.name != "a":
        return False
    classes = node.get("class") or ""
    return "headerlink" in classes or node.get_text().strip() in ("¶", "§", "#", "🔗")


def _is_source_link(node) -> bool:
    """Sphinx viewcode's "[source]" link after a signature (``<a><span class="viewcode-link">``): not text."""
    return node.name == "a" and node.find(class_=_VIEWCODE) is not None


def _is_chrome(node) -> bool:
    """A page's navigation, banner or footer drawn with a <div> rather than <nav>/<header>/<footer>: role
    "navigation", "banner" or "contentinfo" (or a search box, a menu or a toolbar: mdBook's list of colour
    themes, "Light (default) Rust Coal Navy Ayu", opened every page), or a class or id such as Sphinx's
    "footer" or DocBook's "navheader" ("© … | Powered by Sphinx", "Prev Up Next"). Not text of the document."""
    if node.get("role") in ("navigation", "banner", "contentinfo", "search", "menu", "menubar", "toolbar"):
        return True
    names = f"{node.get('class') or ''} {node.get('id') or ''}".lower().split()
    return any(name in _CHROME for name in names)


def _drop_key_bars(soup) -> None:
    """Remove the bars of links that carry keyboard shortcuts (``accesskey``: "Prev", "Up", "Next"), which
    DocBook, Texinfo, Publican and Sphinx put at the top and bottom of every page: the widest element around
    such a link that is still a short line of its own (`NAV_CHARS`), never the page's body."""
    for anchor in soup.find_all("a", accesskey=True):
        bar = None
        for parent in anchor.parents:
            if parent.name in ("body", "html", "[document]") or len(parent.get_text()) > NAV_CHARS:
                break
            bar = parent
        if bar is not None:
            bar.decompose()


LINK_TABLE = 0.8  # share of a table's letters and digits in links within the site that makes it navigation
_ALNUM = re.compile(r"[^\W_]")
_ELSEWHERE = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:|//)", re.I)  # "https://…", "mailto:…": another site


def _drop_link_tables(soup) -> None:
    """Remove tables whose text is links to pages of the same set: a bar of "[ < ] [ > ] [Up] [Contents]
    [Index]" above every section (Texinfo), an index of entries each linking to its section ("ALIASES |
    16.2.6 Input/Output"), a box of related pages. They answer no question and, as passages full of a
    manual's words, matched many (zsh's index pages took first places). A table whose words link to other
    sites (Debian Reference's packages, each linked to its page in the archive) is text, and stays."""
    for table in soup.find_all("table"):
        if table.decomposed:
            continue  # inside a table already removed
        total = len(_ALNUM.findall(table.get_text()))
        within = [a for a in table.find_all("a", href=True) if not _ELSEWHERE.match(str(a["href"]))]
        if total and sum(len(_ALNUM.findall(a.get_text())) for a in within) >= LINK_TABLE * total:
            table.decompose()


HEADER_CHARS = 60  # a column's name is short: a longer first row of <th> cells is text, not a header
# Rows under a header name their columns in a table of a few rows: a record, such as a parameter's type,
# default and range. A longer table is a listing (Debian Reference's "package | popcon | size |
# description"), whose column names, repeated on every row, made each of its chunks match "package" or
# "size" in any question (dev batches: 2 of 224 answers' passages fell out of the first five).
RECORD_ROWS = 3


def _rows(table) -> list:
    """The rows of ``table`` itself, not of the tables nested in its cells."""
    return [tr for tr in table.find_all("tr") if tr.find_parent("table") is table]


def _name_columns(soup) -> None:
    """In a table of at most `RECORD_ROWS` rows under a header row (a first row of two or more <th> cells, each
    a short name), each cell of a row starts with its column's name (an empty cell is left out) and the header
    row goes: "type: integer | default: 200", as spreadsheets are read (`rag.ingest.office.rows_text`), so a
    row quoted alone still says what its values are. Longer tables, and tables whose rows do not line up with
    the header (spanned cells), are left as they are."""
    for table in soup.find_all("table"):
        rows = _rows(table)
        if not 2 <= len(rows) <= RECORD_ROWS + 1:
            continue
        cells = rows[0].find_all(["td", "th"], recursive=False)
        names = [" ".join(c.get_text(" ").split()).rstrip(":") for c in cells]
        if (
            len(cells) < 2
            or any(c.name != "th" or c.get("colspan") or c.get("rowspan") for c in cells)
            or any(not n or len(n) > HEADER_CHARS or ":" in n or "|" in n for n in names)
        ):
            continue
        body = [r.find_all(["td", "th"], recursive=False) for r in rows[1:]]
        if any(len(r) != len(names) or any(c.get("colspan") or c.get("rowspan") for c in r) for r in body):
            continue
        for row in body:
            for name, cell in zip(names, row, strict=True):
                if cell.get_text().strip():
                    cell.insert(0, f"{name}: ")
                else:
                    cell.decompose()  # an empty cell names nothing: left out, as in a sheet's rows
        rows[0].decompose()


CONTENTS_LINKED = 0.6  # a table of contents is links (its numbers and separators aside); a page's body is not
CONTENTS_TITLE = 40  # characters (spaces left out) outside its links: a title such as "Table of Contents"


def _is_contents(node) -> bool:
    """A table of contents (class "toc", "contents" or DocBook's "list-of-tables" and the like)."""
    return any(
        name in ("toc", "contents") or name.startswith("list-of-")
        for name in str(node.get("class") or "").lower().split()
    )


def _drop_contents(soup) -> None:
    """Remove the tables of contents DocBook, Texinfo and Sphinx put at the top of a page: they repeat the
    headings of the sections below as a list of links, answer no question, and as a passage of their own (or
    the start of the first section's) they match any question that names a section's words. Only an element
    whose text is mostly links (a title such as "Table of Contents" aside), or that holds no paragraph, goes:
    Doxygen calls the body of its pages "contents" (its definition lists stay out of the terms, `_in_contents`)."""
    for node in soup.find_all(_is_contents):
        if node.decomposed:
            continue  # inside a table of contents already removed
        text = len("".join(node.get_text().split()))
        linked = sum(len("".join(a.get_text().split())) for a in node.find_all("a"))
        if linked >= CONTENTS_LINKED * text or text - linked <= CONTENTS_TITLE or node.find("p") is None:
            node.decompose()


def _in_contents(node) -> bool:
    """True inside an element named like a table of contents that was kept (`_drop_contents`): its
    definition lists list sections and tables, they define no terms."""
    return any(_is_contents(el) for el in (node, *node.parents))


REDIRECT_TEXT = 500  # characters of text at most on a page that redirects: "This page has moved to …"
_REFRESH_URL = re.compile(r"^\s*\d+(?:\.\d*)?\s*[;,]\s*url\s*=\s*['\"]?([^'\"\s]+)", re.I)


def _redirect(soup: Any) -> str | None:
    """Where a page that only redirects sends the browser (``<meta http-equiv="refresh" content="0;
    url=Shell-Grammar.html#Aliasing">`` and a line saying so), or None. Texinfo writes one such page for
    every node and anchor (144 of zsh's 186 HTML files): each read as a document, its title matched any
    question about its topic and its text answered none."""
    for meta in soup.find_all("meta"):
        if str(meta.get("http-equiv", "")).lower() == "refresh" and (
            m := _REFRESH_URL.match(str(meta.get("content", "")))
        ):
            body = soup.body or soup
            if len("".join(body.get_text().split())) <= REDIRECT_TEXT:
                return m.group(1)
    return None


def _read_html(data: bytes, rel: str, limits: Limits) -> LoadedDocument:
    from bs4 import BeautifulSoup, NavigableString, Tag, XMLParsedAsHTMLWarning
    from bs4.element import PreformattedString

    limits.check_elements(rel, data)
    # multi_valued_attributes=None: no splitting of every class="a b" into lists, ~15% faster parsing.
    # XHTML pages (DocBook output, for one) parse fine as HTML; bs4's warning about it is noise per file.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = BeautifulSoup(decode_html(data), "lxml", multi_valued_attributes=None)
    if target := _redirect(soup):
        raise NoTextError(rel, f"only redirects to {target}, with nothing of its own to read")
    for anchor in soup.find_all("a"):
        if _is_permalink(anchor) or _is_source_link(anchor):
            anchor.decompose()
    _drop_key_bars(soup)
    _drop_link_tables(soup)
    _drop_contents(soup)
    _name_columns(soup)
    doc, inline = _Builder(), list[str]()
    lists: list[list[list]] = []  # the definition lists open around this node: [start, term, its end] each
    cells = [0]  # short table cells open around this node (`CELL_CHARS`): their blocks stay in the row

    def leave_cell() -> None:
        cells[0] -= 1

    def close_term(first: int) -> None:  # the term's text is the blocks added since its <dt> opened
        flush()
        if not lists or not (term := " ".join(" ".join(doc.parts[first:]).split())):
            return
        doc.label_last()  # "timeout(delay):" reads as the lead-in of its definition, not a sentence of its own
        entries, start = lists[-1], doc.starts[first]
        if entries and start == entries[-1][2] + 2:  # right after the last term: two names of one entry
            entries[-1][1:] = [f"{entries[-1][1]}, {term}", doc.length]  # ("-n, --dry-run")
        else:
            entries.append([start, term, doc.length])

    def close_list() -> None:  # each term covers the text up to the next term of its list, the last one to its end
        flush()
        entries = lists.pop()
        ends = [e[0] for e in entries[1:]] + [doc.length]
        for (start, term, _), end in zip(entries, ends, strict=False):  # (a list may have no terms at all)
            doc.terms.append(Term(start, end, term if len(term) <= TERM_CHARS else term[:TERM_CHARS] + "…"))

    def flush() -> None:  # the inline text gathered so far becomes one paragraph
        lines = "".join(inline).split("\n")  # only <br> and rows made newlines: source whitespace became " "
        # Table cells end with a marker that becomes " | " between cells; the one after a row's last cell
        # (or after a cell that held only blocks) is dropped, so a row reads "Name | Fee".
        lines = [close_gaps(" ".join(line.split())).strip(f" {_CELL}").replace(_CELL, "|") for line in lines]
        doc.add("\n".join(lines))
        inline.clear()

    # Depth-first with a stack, not recursion: broken pages (a thousand unclosed <font>s) nest deeply.
    # Besides elements and strings, the stack holds actions to run once an element's children are done.
    # Nodes to visit, and callbacks to run once a node's children are done (end of a row or a block).
    todo: list[Any] = [soup.body or soup]  # the <head>, and so the <title>, is not body text
    while todo:
        node = todo.pop()
        if isinstance(node, NavigableString):
            if not isinstance(node, PreformattedString):  # comments, doctype, CDATA
                inline.append(_SPACES.sub(" ", node))
            continue
        if not isinstance(node, Tag):
            node()
            continue
        if node.name in _DROP or _is_chrome(node):
            continue
        if node.name in _HEADINGS:
            flush()
            heading = " ".join(node.get_text(" ").split())
            doc.add(heading, heading=heading, new_section=True)
            continue
        if node.name == "dl" and not _in_contents(node):
            flush()
            lists.append([])
            todo.append(close_list)
            todo.extend(reversed(node.contents))
            continue
        if node.name == "dt" and lists and not _in_contents(node):
            flush()
            todo.append(functools.partial(close_term, len(doc.parts)))
            todo.extend(reversed(node.contents))
            continue
        if node.name == "br":
            inline.append("\n")
        elif node.name == "pre":
            flush()
            doc.add(node.get_text())
            continue
        elif node.name in ("td", "th", "tr"):  # a table is one paragraph, a line per row: "Name | Fee"
            todo.append(functools.partial(inline.append, "\n" if node.name == "tr" else f" {_CELL} "))
            if node.name != "tr" and _row_cell(node):
                cells[0] += 1
                todo.append(leave_cell)
        elif node.name in _BLOCKS and cells[0]:  # a paragraph inside a short cell: words of its row
            inline.append(" ")
            todo.append(functools.partial(inline.append, " "))
        elif node.name in _BLOCKS:
            flush()
            todo.append(flush)
        todo.extend(reversed(node.contents))
    flush()
    loaded = doc.build(rel, "no text")
    if soup.title is not None:
        loaded.title = " ".join(soup.title.get_text(" ").split()) or None
    return loaded


# --- PDF and DOCX -----------------------------------------------------------------------------------


def _read_pdf(data: bytes, rel: str, limits: Limits) -> LoadedDocument:
    texts, marks = sandbox.run(
        _pdf_text, data, rel, limits, rel=rel, memory_mb=limits.memory_mb, timeout=limits.timeout
    )
    return _with_ocr(texts, ocr.pdf_page, data, rel, limits, numbered=True, marks=marks)


def _read_image(data: bytes, rel: str, limits: Limits) -> LoadedDocument:
    pages = sandbox.run(ocr.image_pages, data, rel, limits, rel=rel, memory_mb=limits.memory_mb, timeout=limits.timeout)
    return _with_ocr([""] * pages, ocr.image_page, data, rel, limits, numbered=pages > 1)


def _with_ocr(
    texts: list[str],
    read: Callable[[bytes, int, str, Limits], str],
    data: bytes,
    rel: str,
    limits: Limits,
    numbered: bool,
    marks: Sequence[pdf.Mark] = (),
) -> LoadedDocument:
    """The document of pages ``texts``, each page without text read by OCR: ``read(data, number, rel, limits)``
    in the worker, a call per page, so a long scan is bounded per page (`Limits.ocr_timeout`), not as a whole.
    The worker's own limit is a backstop for a render that hangs; Tesseract is stopped at the page's limit.
    Each page starts a section; so does each outline entry in ``marks`` where its title stands on its page
    (`rag.ingest.pdf`), and its title is the heading of what follows, to the next one, across pages."""
    doc, ocred, empty = _Builder(), 0, []
    titles: dict[int, list[str]] = {}
    for mark in marks:
        titles.setdefault(mark.page, []).append(mark.title)
    heading = None
    for number, text in enumerate(texts, start=1):
        if not text.strip():
            ocred += 1
            text = sandbox.run(
                read,
                data,
                number,
                rel,
                limits,
                rel=rel,
                memory_mb=limits.memory_mb,
                timeout=limits.timeout + limits.ocr_timeout,
            )
            if not _clean(text):
                empty.append(number)
        text = pdf.without_contents(text)
        new = True  # a page starts a section, its number cited
        # Cut at the headings before the lines are joined: reflowing can join a heading to the line above it.
        for piece, title in pdf.split_page(text, titles.get(number - 1, [])):
            if title is not None:
                heading, new = title, True
            added = doc.add(reflow(piece), page=number if numbered else None, heading=heading, new_section=new)
            new = new and not added
        limits.check_text(rel, doc.length)
    loaded = doc.build(rel, "no text, not even by OCR" if ocred else "no text")
    loaded.ocr_pages, loaded.empty_pages = ocred, empty
    return loaded


def _pdf_text(data: bytes, rel: str, limits: Limits) -> tuple[list[str], list[pdf.Mark]]:
    """The text layer of each page of a PDF without its running heads, lines as printed ("" for a page without
    one: a scan, a blank page), and the PDF's outline (`rag.ingest.pdf`)."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError

    if b"%PDF-" not in data[:1024]:  # pypdf would only log this and fail later with a vaguer message
        raise DocumentError(rel, "not a valid PDF (no %PDF header)")
    try:
        reader = PdfReader(io.BytesIO(data))
        # Many PDFs are encrypted only to lock editing: they open with the empty password.
        locked = reader.is_encrypted and not reader.decrypt("")
        pages = [] if locked else list(reader.pages)
    except DependencyError as e:  # AES encryption needs the optional `cryptography` package
        raise DocumentError(rel, f"encrypted PDF, cannot decrypt ({_why(e)})") from e
    except Exception as e:  # pypdf raises PdfReadError, KeyError, ValueError, ... on damaged files
        raise DocumentError(rel, f"not a valid PDF ({_why(e)})") from e
    if locked:
        raise DocumentError(rel, "encrypted PDF, a password is needed to open it")
    if len(pages) > limits.pdf_pages:
        raise DocumentError(rel, f"has {len(pages):,} pages, more than {limits.pdf_pages:,}; not read")
    layers, marks = _pdfium_text_layers(data, len(pages)) or (None, [])
    texts, length = [], 0
    for number, page in enumerate(pages, start=1):
        try:
            text = layers[number - 1] if layers is not None else page.extract_text()
        except MemoryError:
            raise
        except Exception as e:
            raise DocumentError(rel, f"cannot extract text from page {number} ({_why(e)})") from e
        texts.append(text)
        length += len(text)
        limits.check_text(rel, length)
    return pdf.running_heads(texts), marks


def _pdfium_text_layers(data: bytes, pages: int) -> tuple[list[str], list[pdf.Mark]] | None:
    """Each page's text as PDFium reads it and the outline, or None when PDFium can't open the file (pypdf
    then reads it, without an outline).

    PDFium places the spaces a PDF draws as gaps between words: pypdf ran the words of justified lines
    together in DocBook/FOP PDFs ("Hereisaquicksummaryofhow…", over a thousand times in one 63-page manual),
    which neither the keyword index nor a reader can use, and it is ~10× faster. A word PDFium finds
    hyphenated at a line's end comes marked with U+FFFE and already joined to its rest."""
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(data)
    except pdfium.PdfiumError:
        return None
    try:
        if len(doc) != pages:
            return None
        out = []
        for page in doc:
            textpage = page.get_textpage()
            out.append(textpage.get_text_range().replace("\ufffe", "").replace("\r\n", "\n").replace("\r", "\n"))
            textpage.close()
            page.close()
        return out, pdf.outline(doc)
    finally:
        doc.close()


# A PDF's text comes a printed line at a time. A line break inside a sentence is a space, and a word
# hyphenated across lines is whole again; a break after a short line (a heading, a list item, the last line
# of a paragraph) or after sentence-ending punctuation stays.
_WRAPPED = re.compile(r"(?<=[^\s.!?:;。！？；])\n(?=[^\s•◦▪\-–—*\d])")
WRAP_SHARE = 0.7  # a line this much of a page's full line width (or more) may have been wrapped at the margin
_HYPHENATED = re.compile(r"(?<=[a-z])-\n(?=[a-z])")
# A numbered heading ("3.1 Required glyphs for text encodings") is a line of its own even when it is long
# and the paragraph under it starts with a capital.
_NUMBERED_HEADING = re.compile(r"\d+(\.\d+)*\.?\s+[A-Z][^\n]{0,80}")


# Typeset ligatures as PDFs often carry them (U+FB00-FB06): "ﬁle" is "file" to a reader, to the keyword index
# and to the embedding model (which has no word piece for it).
_LIGATURES = str.maketrans(
    {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl", "\ufb05": "st", "\ufb06": "st"}
)


def unligate(text: str) -> str:
    """Ligature characters spelled out: ``"deﬁned in the ﬁrst ﬂoor"`` -> ``"defined in the first floor"``."""
    return text.translate(_LIGATURES)


def _wrap_width(lines: list[str]) -> int:
    """How long a line must be to have ended at the margin: `WRAP_SHARE` of the text's usual full line (the
    median of its lines of `WRAP_MIN_LINE` or more), at least `WRAP_MIN_LINE`. A shorter line ended where its
    text did: a line of code ("# tics at y=20 y=40 ... y=200" over "set log y") is not joined to the next one
    as wrapped prose."""
    lengths = sorted(len(line) for line in lines if len(line) >= WRAP_MIN_LINE)
    if len(lengths) < 4:  # too few lines to tell the margin
        return WRAP_MIN_LINE
    return max(WRAP_MIN_LINE, int(WRAP_SHARE * lengths[len(lengths) // 2]))


def _prose_pair(last: str, line: str) -> bool:
    """Both lines prose: ``last`` may have wrapped short of the margin (a long word came next)."""
    return is_prose_line(last) and line[:1].isalpha() and code_share(line) < CODE_LINE


def reflow(text: str) -> str:
    """Join the lines of a PDF page's paragraphs: ``"an appli-\\ncation of a\\nsimple interface"`` ->
    ``"an application of a simple interface"``; a heading's line break stays, so does the break after a line
    that ended short of the margin unless it and the next line are both prose (`_wrap_width`):
    lines of code and table rows stay lines.

    Example:
        >>> reflow("2.2 Describing types\\nTo allow each argument to be defined independently, the parser\\n"
        ...        "needs their num-\\nber.")
        '2.2 Describing types\\nTo allow each argument to be defined independently, the parser needs their number.'
    """
    lines = unligate(text).split("\n")  # "de-\nﬁned" is joined as "defined"
    wrapped_at = _wrap_width(lines)
    out = [lines[0]] if lines else []
    for last, line in zip(lines, lines[1:], strict=False):
        previous = out[-1]
        joined = previous + "\n" + line
        if len(previous) > 0 and _HYPHENATED.search(joined, len(previous) - 1, len(previous) + 2):
            out[-1] = previous[:-1] + line  # a word hyphenated at the margin
            continue
        if len(previous) > 0 and (len(last) >= wrapped_at or _prose_pair(last, line)):
            heading = _NUMBERED_HEADING.fullmatch(last) and line[:1].isupper()
            if not heading and _WRAPPED.search(joined, len(previous) - 1, len(previous) + 2):
                out[-1] = previous + " " + line
                continue
        out.append(line)
    return close_gaps("\n".join(out))  # "估 计", "那 样": a PDF's spacing between Chinese characters


def _read_docx(data: bytes, rel: str, limits: Limits) -> LoadedDocument:
    import docx
    from docx.table import Table

    limits.check_zip(rel, data)  # before python-docx inflates anything
    doc = _Builder()
    try:
        for block in docx.Document(io.BytesIO(data)).iter_inner_content():
            if isinstance(block, Table):
                doc.add("\n".join(_row_text(row) for row in block.rows))
            elif re.fullmatch(r"Heading [1-9]|Title", block.style.name if block.style else ""):
                doc.add(block.text, heading=" ".join(block.text.split()), new_section=True)
            else:
                doc.add(block.text)
    except MemoryError:
        raise
    except Exception as e:  # a bad zip, a missing part, broken XML: all mean the same to the ingest
        if "Text node too long" in str(e) or "Resource limit exceeded" in str(e):  # lxml's own 10 MB bound
            raise DocumentError(rel, "holds a run of text longer than 10 MB; not read") from None
        raise DocumentError(rel, f"not a valid .docx file ({_why(e)})") from e
    return doc.build(rel, "no text")


def _row_text(row: _Row) -> str:
    # A merged cell is returned once per grid column it spans; keep it once.
    all_cells = row.cells
    cells = [cell for i, cell in enumerate(all_cells) if i == 0 or cell._tc is not all_cells[i - 1]._tc]
    return " | ".join(" ".join(cell.text.split()) for cell in cells)


# --- shared helpers ---------------------------------------------------------------------------------

_TRAILING_SPACE = re.compile(r"[^\S\n]+$", re.MULTILINE)
_BLANK_LINES = re.compile(r"\n{3,}")


def _clean(text: str) -> str:
    """One newline style, no control characters, ligatures or trailing spaces, at most one blank line in a row.

    Example: ``"a \\r\\nb\\x07\\n\\n\\n\\nc\\n"`` -> ``"a\\nb\\n\\nc"``
    """
    # A form feed separates pages in text exported from PDFs: a line break, not nothing.
    text = CONTROL_CHARS.sub("", text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n"))
    text = unligate(text)
    return _BLANK_LINES.sub("\n\n", _TRAILING_SPACE.sub("", text)).strip("\n")


class _Builder:
    """Joins cleaned blocks with blank lines and notes where sections start, so offsets are exact."""

    def __init__(self) -> None:
        self.parts: list[str] = []  # joined once at the end: no quadratic string building
        self.starts: list[int] = []  # where each part starts in the joined text
        self.sections: list[Section] = []
        self.terms: list[Term] = []
        self.length = 0

    def add(self, text: str, *, page: int | None = None, heading: str | None = None, new_section: bool = False) -> bool:
        """Add a block (False if it had no text, and nothing was added)."""
        if not (text := _clean(text)):
            return False
        start = self.length + 2 if self.parts else 0
        if new_section or not self.sections:
            self.sections.append(Section(start, page, heading))
        self.parts.append(text)
        self.starts.append(start)
        self.length = start + len(text)
        return True

    def label_last(self) -> None:
        """End the last block with ":" (a definition's term), unless it already ends a sentence or clause."""
        if self.parts and not self.parts[-1].endswith((".", ":", ";", "!", "?", "：")):
            self.parts[-1] += ":"
            self.length += 1

    def build(self, rel: str, empty_reason: str) -> LoadedDocument:
        if not self.parts:
            raise NoTextError(rel, empty_reason)
        return LoadedDocument("\n\n".join(self.parts), self.sections, terms=self.terms)


def _why(e: BaseException) -> str:
    """An exception as a short phrase: the OS reason for OSError, else its first line."""
    text = getattr(e, "strerror", None) or str(e).strip().split("\n")[0] or type(e).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _size(size: int, limit: int) -> str:
    """``"50.0 MB > limit 20.0 MB"``; in bytes when MB would show the two as equal."""
    mb = f"{size / 2**20:.1f} MB > limit {limit / 2**20:.1f} MB"
    return mb if f"{size / 2**20:.1f}" != f"{limit / 2**20:.1f}" else f"{size} bytes > limit {limit} bytes"


def _office(name: str) -> Callable[[bytes, str, Limits], LoadedDocument]:
    """A reader of `rag.ingest.office` (which builds on this module), imported when a file of its kind comes."""

    def read(data: bytes, rel: str, limits: Limits) -> LoadedDocument:
        from rag.ingest import office

        reader: Callable[[bytes, str, Limits], LoadedDocument] = getattr(office, name)
        return reader(data, rel, limits)

    return read


# Defined last, after the functions it names; SUPPORTED_SUFFIXES above is the public list of its keys.
_READERS = {
    ".txt": _read_text,
    ".md": _read_markdown,
    ".markdown": _read_markdown,
    ".rst": _read_rst,  # reStructuredText: text whose titles are underlined, Sphinx's markup resolved
    ".html": _read_html,
    ".htm": _read_html,
    ".pdf": _read_pdf,
    ".docx": _read_docx,
    ".pptx": _office("pptx"),
    ".xlsx": _office("xlsx"),
    ".csv": _office("csv_file"),
    ".tsv": _office("csv_file"),
    ".odt": _office("odt"),
    ".epub": _office("epub"),
    **{suffix: _read_image for suffix in ocr.IMAGE_SUFFIXES},
}
