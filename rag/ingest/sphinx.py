"""What in a Sphinx HTML build is not a page to read.

Most documentation of Python software ships as a Sphinx HTML build (Debian's ``python-*-doc`` packages, a
project's ``docs/_build/html``). Beside its pages such a folder holds four things that are not pages:

* ``_sources/``: each page's source (``_sources/user/quickstart.rst.txt`` for ``user/quickstart.html``). Read
  as well, every passage comes twice, one copy in markup, and the two fill the passages an answer is chosen
  from (python-requests-doc: 200 of 1,102 chunks).
* ``_modules/``: the library's code, highlighted (the ``viewcode`` extension); its docstrings are already on
  the API pages, and its code lines were quoted as answers to how-to questions (python-requests-doc: 306
  chunks, 28% of the store).
* the generated index, module index and search pages (``genindex.html``, ``py-modindex.html``,
  ``search.html``): lists of links.
* the pictures in ``_images/`` and ``_static/``: the figures its pages show, the theme's icons and logos. Read
  by OCR they were pages of their own, a screenshot of a page repeating that page's text in pieces, an icon a
  word or two (sphinx-doc: 37 of its 54 pictures had text, 31 s of OCR, and four of the six passages found
  for "How do I change the HTML theme?" were screenshots).

A build is known by the files Sphinx writes at its root, ``searchindex.js`` (``Search.setIndex(``) or
``objects.inv`` (``# Sphinx inventory``). Only there, a source whose built page is in the folder is passed
over (a source without its page is the only copy, and is read: `rag.ingest.markup`), as are the code,
index pages and pictures. Nothing else in the folder is touched.

Example:
    >>> found = ["html/guide.html", "html/_sources/guide.rst.txt", "html/_sources/draft.rst.txt", "html/genindex.html"]
    >>> for rel, why in sorted(build_extras({"html"}, found).items()):
    ...     print(rel, "|", why)
    html/_sources/guide.rst.txt | the source of Sphinx's page html/guide.html, which is read instead
    html/genindex.html | Sphinx's generated index or search page (links only)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from rag.ingest.ocr import IMAGE_SUFFIXES

MARKS = {"searchindex.js": b"Search.setIndex(", "objects.inv": b"# Sphinx inventory"}
CODE = "the library's highlighted code (Sphinx's viewcode pages); the API pages document it"
INDEX = "Sphinx's generated index or search page (links only)"
PICTURE = "a picture Sphinx's pages show (a figure, an icon, a theme's screenshot); the pages are read"
_INDEX_PAGE = re.compile(r"(?:genindex(?:-[^/]*)?|[a-z]+-modindex|search)\.html")


def roots(docs_dir: Path, rels: Iterable[str]) -> set[str]:
    """Folders (relative, ``""`` for the top) that hold a Sphinx HTML build: a root file with Sphinx's mark."""
    found = set()
    for rel in rels:
        path = PurePosixPath(rel)
        mark = MARKS.get(path.name)
        if mark is None:
            continue
        try:
            with open(docs_dir / rel, "rb") as f:
                if f.read(len(mark)) == mark:
                    found.add("" if str(path.parent) == "." else str(path.parent))
        except OSError:
            continue
    return found


def build_extras(build_roots: set[str], rels: Iterable[str]) -> dict[str, str]:
    """Documents (relative paths) under a build root (`roots`) that are not its pages -> why each is passed
    over. ``rels``: every document found in the folder."""
    present = set(rels)
    reasons = {}
    for root in build_roots:
        prefix = f"{root}/" if root else ""
        for rel in present:
            if not rel.startswith(prefix):
                continue
            inner = rel[len(prefix) :]
            if inner.startswith("_sources/"):
                page = _built_page(prefix, inner.removeprefix("_sources/"), present)
                if page:
                    reasons[rel] = f"the source of Sphinx's page {page}, which is read instead"
            elif inner.startswith("_modules/") and inner.endswith(".html"):
                reasons[rel] = CODE
            elif _INDEX_PAGE.fullmatch(inner):
                reasons[rel] = INDEX
            elif inner.startswith(("_images/", "_static/")) and PurePosixPath(inner).suffix.lower() in IMAGE_SUFFIXES:
                reasons[rel] = PICTURE
    return reasons


def _built_page(prefix: str, source: str, present: set[str]) -> str | None:
    """The built page of ``_sources/<source>`` when it is in the folder: ``guide.rst.txt`` -> ``guide.html``
    (or ``guide/index.html``, the dirhtml builder's), old Sphinx's ``guide.txt`` too."""
    stem = source.removesuffix(".txt")
    stems = [stem]
    if (suffix := PurePosixPath(stem).suffix) and "/" not in suffix:
        stems.insert(0, stem[: -len(suffix)])
    for s in stems:
        for page in (f"{prefix}{s}.html", f"{prefix}{s}/index.html"):
            if page in present:
                return page
    return None
