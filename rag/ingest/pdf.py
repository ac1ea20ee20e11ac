"""A PDF's structure beyond its words: the running heads printed on every page, and the outline that names
its sections.

A page's text layer starts and ends with what the typesetter repeats on every page ("gnuplot 5.4  77",
"210  gnuplot 5.4", "Page 3 of 40", a bare number). Left in, it stands in the middle of a paragraph that
goes on from the page before, and is quoted with it. A short line found among the first or last lines of
many pages, its numbers aside, is such a line and is dropped (`running_heads`).

Most manuals made with LaTeX, Texinfo, DocBook or a word processor carry an outline: the bookmarks a viewer
shows beside the pages, each a title and the page it starts on. Those titles are the document's headings.
A section starts where its title stands as a line on its page (`split_page`), so a passage is cited and
embedded under its heading ("gnuplot.pdf, p. 152, § Xlabel"), as an HTML page's is.

A manual's table of contents and its index are pages of entries led to page numbers: they name every topic and
say nothing about any, so their entries are dropped (`without_contents`).

Example:
    >>> heads = ["Manual 1.0", "Manual 1.0", "Chapter 1: Intro", "Chapter 2: Use", "Chapter 2: Use"]
    >>> pages = [f"{head}   {n}\\nText about item {n}.\\nMore text.\\n{n}" for n, head in enumerate(heads, 1)]
    >>> running_heads(pages)[3]
    'Text about item 4.\\nMore text.'
    >>> split_page("the end of a section.\\n2.1 Options\\nThe options are these.", ["Options"])
    [('the end of a section.', None), ('2.1 Options', '2.1 Options'), ('The options are these.', None)]
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

EDGE_LINES = 2  # lines at the top and at the bottom of a page where a running head may stand
RUNNING_SHARE = 0.2  # ... on at least this share of the pages (and on 3): a running head
RUNNING_CHARS = 80  # a running head is short
_NUMBERS = re.compile(r"\d+|\b[ivxlc]+\s*$|^\s*[ivxlc]+\b", re.I)  # arabic, or roman at a line's end or start
_NOT_LETTERS = re.compile(r"[\W\d_]+")
_ARABIC = re.compile(r"(?<![\w.])\d+(?![\w.])")  # a number standing alone ("4", not "5.4" or "v2")
_ENDS_IN_NUMBER = re.compile(r"\d\s*$")
_STOPS = (".", "!", "?", ":", ";", "。", "！", "？", "：", "；")
ENTRY_CHARS = 80  # an entry of a table of contents is a short line
CONTENTS_RUN = 3  # lines led to page numbers in a row (entries without a leader between them): contents, an index
# A leader (". . . . .", "......", "……") and the page number it points to ("27", "xii").
_LEADER = re.compile(r"(?:(?:[.·．]\s?){4,}|…{2,})\s*(?:\d+|[ivxlc]+)\b", re.I)
# An entry without a leader ("1 Introduction 3", "Preface vii"), or what an index sets between its entries
# (a group's letter, a page number run onto its own line).
_ENTRY = re.compile(rf"[^\n]{{0,{ENTRY_CHARS}}}\s(?:\d+|[ivxlc]+)|\S{{1,3}}", re.I)


@dataclass(frozen=True)
class Mark:
    """An outline entry: its title and the 0-based index of the page it points to."""

    page: int
    title: str


def outline(pdf) -> list[Mark]:
    """The entries of a ``pypdfium2.PdfDocument``'s outline that point to one of its pages, in order."""
    marks = []
    for item in pdf.get_toc():
        dest = item.get_dest()
        index = dest.get_index() if dest is not None else None
        title = " ".join((item.get_title() or "").split())
        if index is not None and 0 <= index < len(pdf) and title:
            marks.append(Mark(index, title))
    return marks


def _key(line: str) -> str:
    return " ".join(_NUMBERS.sub("#", line).split()).casefold()


def _edges(lines: list[str]) -> list[int]:
    filled = [i for i, line in enumerate(lines) if line.strip()]
    return sorted(set(filled[:EDGE_LINES] + filled[-EDGE_LINES:]))


def _head_like(line: str) -> bool:
    """Short, and not a sentence (a running head ends in no full stop: "Chapter 2: Installation  4")."""
    line = line.strip()
    return 0 < len(line) <= RUNNING_CHARS and not line.endswith((".", "!", "?", ":", ";", "。"))


def running_heads(pages: list[str]) -> list[str]:
    """``pages`` without their running heads (see the module's docstring): a short line at a page's edge that
    is the same on many pages, numbers aside, or that holds the page's printed number (the page's index plus
    the offset most pages agree on: "Chapter 2: Installation 4" on the 9th page, where the 7th says "2")."""
    if len(pages) < 3:
        return pages
    split = [text.split("\n") for text in pages]
    edges = [[i for i in _edges(lines) if _head_like(lines[i])] for lines in split]
    keys: Counter[str] = Counter()
    offsets: Counter[int] = Counter()
    for index, (lines, edge) in enumerate(zip(split, edges, strict=True)):
        keys.update({_key(lines[i]) for i in edge})
        offsets.update({int(n) - index for i in edge for n in _ARABIC.findall(lines[i]) if len(n) < 6})
    floor = max(3, RUNNING_SHARE * len(pages))
    running = {key for key, n in keys.items() if n >= floor}
    offset = next((o for o, n in offsets.most_common(1) if n >= floor), None)
    out = []
    for index, (lines, edge) in enumerate(zip(split, edges, strict=True)):
        number = None if offset is None else str(index + offset)
        drop = {i for i in edge if _key(lines[i]) in running or number in _ARABIC.findall(lines[i])}
        out.append("\n".join(line for i, line in enumerate(lines) if i not in drop).strip("\n"))
    return out


def without_contents(text: str) -> str:
    """A page without the entries of a table of contents or an index it holds: runs of lines led to a page
    number (``"2.3 Generating regular sequences . . . . . 8"``), at least `CONTENTS_RUN` of them, with the
    entries between and around them that have no leader (``"1 Introduction 2"``, an index's letter "B").
    Those entries name every topic of the manual and say nothing about any: left in, they are what a keyword
    search finds first, and what gets quoted. A title or an abstract above them, and text after them, stay.

    Example:
        >>> page = "A guide\\nThis guide shows how.\\nContents\\n1 Basics 3\\n1.1 Use . . . . 3\\n2 More 5"
        >>> without_contents(page + "\\n2.1 Tips that run\\nlong . . . . 5\\nA . . . . 9\\nThe guide starts here.")
        'A guide\\nThis guide shows how.\\nContents\\nThe guide starts here.'
    """
    lines = text.split("\n")
    led = [bool(_LEADER.search(line)) for line in lines]
    if sum(led) < CONTENTS_RUN:
        return text
    entry = [
        lead or not line.strip() or bool(_ENTRY.fullmatch(line.strip())) for line, lead in zip(lines, led, strict=True)
    ]
    for k in range(len(lines) - 1):  # an entry broken over two lines: its first has no number
        entry[k] = entry[k] or (led[k + 1] and len(lines[k]) <= ENTRY_CHARS and not lines[k].rstrip().endswith(_STOPS))
    drop, i = set[int](), 0
    while i < len(lines):  # a run: entries only, from one entry to the next that is not one
        j = i
        while j < len(lines) and entry[j]:
            j += 1
        if sum(led[i:j]) >= CONTENTS_RUN:
            drop.update(range(i, j))
        i = j + 1
    return "\n".join(line for k, line in enumerate(lines) if k not in drop).strip("\n")


def _letters(text: str) -> str:
    return _NOT_LETTERS.sub("", text.casefold())


def _title_line(lines: list[str], at: int, title: str) -> tuple[int, int, str] | None:
    """Where ``title`` stands from ``lines[at]`` on, on one line or else broken over two: (first line, lines,
    title as printed)."""
    want, numbered = _letters(title), bool(_ENDS_IN_NUMBER.search(title))
    if not want:
        return None
    for n in (1, 2):
        for i in range(at, len(lines) - n + 1):
            printed = " ".join(" ".join(lines[i : i + n]).split())
            if len(printed) > 2 * len(title) + 12 or _letters(printed) != want:
                continue
            if _ENDS_IN_NUMBER.search(printed) and not numbered:
                continue  # "Introduction 1": a line of the table of contents, with its page number
            return i, n, printed
    return None


def split_page(text: str, titles: list[str]) -> list[tuple[str, str | None]]:
    """``text`` cut where each of ``titles`` (the outline entries of its page, in order) stands as a line,
    letters compared (a numbered "2.1 Options" is the entry "Options"): pieces ``(text, heading)``, the
    heading line itself a piece of its own with its heading as printed; the others None (they go on in the
    section before). A title found nowhere on the page starts a section at the page's top if no title was
    found before it there (a chapter starts a page; its printed title may be broken over two lines)."""
    lines = text.split("\n")
    found: list[tuple[int, int, str]] = []  # (first line, lines, title as printed)
    at = 0
    for title in titles:
        if hit := _title_line(lines, at, title):
            found.append(hit)
            at = hit[0] + hit[1]
        elif not found:
            found.append((0, 0, title))
    pieces: list[tuple[str, str | None]] = []
    pos = 0
    for first, n, printed in found:
        if first > pos:
            pieces.append(("\n".join(lines[pos:first]), None))
        if n:
            pieces.append((printed, printed))
        else:
            pieces.append(("", printed))  # a section at the page's top, its title not printed as a line
        pos = first + n
    if pos < len(lines):
        pieces.append(("\n".join(lines[pos:]), None))
    return [(piece.strip("\n"), heading) for piece, heading in pieces if piece.strip() or heading]
