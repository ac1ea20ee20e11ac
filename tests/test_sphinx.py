"""A Sphinx HTML build as a documents folder (rag/ingest/sphinx.py): built by the real Sphinx, its pages are
read and cited; its pages' sources, the highlighted code and the index pages are passed over, each with a
reason, and only where Sphinx's own mark says the folder is a build."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from PIL import Image, ImageDraw

from rag import RAG
from rag.ingest.sphinx import CODE, INDEX, PICTURE

CONF = 'import os, sys\nsys.path.insert(0, os.path.abspath("."))\nproject = "Tide"\n'
CONF += 'extensions = ["sphinx.ext.autodoc", "sphinx.ext.viewcode"]\n'
MODULE = '''"""Tide tables."""


def high_water(port, day):
    """Return the local time of high water at ``port`` on ``day``, as ``HH:MM``."""
    table = {"Dover": "06:12"}
    return table.get(port)
'''
PAGES = {
    "index.rst": "Tide\n====\n\n.. toctree::\n\n   guide\n   api\n",
    "guide.rst": "Guide\n=====\n\nTo print the tide table for a port, run ``tide --port Dover``.\n"
    "The tables are refreshed every Sunday at noon.\n\n.. image:: chart.png\n   :alt: Tide chart\n",
    "api.rst": "API\n===\n\n.. automodule:: tide\n   :members:\n",
}


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    src = tmp_path_factory.mktemp("sphinx-src")
    (src / "conf.py").write_text(CONF)
    (src / "tide.py").write_text(MODULE)
    chart = Image.new("RGB", (640, 120), "white")  # a figure with words on it, which OCR would read
    ImageDraw.Draw(chart).text((20, 40), "HIGH WATER AT DOVER EVERY DAY", fill="black", font_size=36)
    chart.save(src / "chart.png")
    for name, text in PAGES.items():
        (src / name).write_text(text)
    out = tmp_path_factory.mktemp("sphinx") / "html"
    subprocess.run([sys.executable, "-m", "sphinx", "-q", "-b", "html", str(src), str(out)], check=True)
    return out


def test_a_sphinx_build_is_read_as_its_pages(build, tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(build, docs / "html")
    rag = RAG(docs_dir=docs, store_dir=tmp_path / "store")
    report = rag.ingest()
    assert report.ok
    skipped = dict(report.skipped)
    for page in ("index", "guide", "api"):
        assert skipped[f"html/_sources/{page}.rst.txt"] == (
            f"the source of Sphinx's page html/{page}.html, which is read instead"
        )
    assert skipped["html/_modules/tide.html"] == CODE
    assert skipped["html/genindex.html"] == skipped["html/search.html"] == skipped["html/py-modindex.html"] == INDEX
    assert skipped["html/_images/chart.png"] == PICTURE  # the figure the guide shows
    pictures = [p for p in (docs / "html" / "_static").rglob("*") if p.suffix in (".png", ".jpg")]
    assert all(skipped[p.relative_to(docs).as_posix()] == PICTURE for p in pictures)  # the theme's icons
    read = [d.source for d in rag.documents()]
    assert {s for s in read if s.endswith(".html")} == {"html/index.html", "html/guide.html", "html/api.html"}
    assert not [s for s in read if s.endswith(".png")]

    answer = rag.ask("How do I print the tide table for a port?")
    assert answer.citations and answer.citations[0].source == "html/guide.html"
    assert "tide --port Dover" in answer.text
    answer = rag.ask("In which time zone is the time of high water given?")
    assert answer.citations and {c.source for c in answer.citations} == {"html/api.html"}
    assert "Powered by" not in answer.citations[0].text  # the theme's footer is not the page's text
    # A signature is quoted as the lead-in of its definition (never alone), without viewcode's "[source]".
    answer = rag.ask("What does tide.high_water do?")
    assert "tide.high_water(port, day): Return the local time of high water" in " ".join(answer.text.split())
    assert "[source]" not in answer.citations[0].text


def test_only_a_folder_sphinx_marked_as_its_build_is_passed_over_in_part(build, tmp_path):
    """Without searchindex.js and objects.inv, ``_sources`` and ``_modules`` are ordinary folders and are read;
    once the build's marks are back, the next ingest removes what it now passes over, and keeps a source
    whose page is not in the folder."""
    docs = tmp_path / "docs"
    shutil.copytree(build, docs)
    marks = {name: (docs / name).read_bytes() for name in ("searchindex.js", "objects.inv")}
    for name in marks:
        (docs / name).unlink()
    (docs / "guide.html").unlink()
    rag = RAG(docs_dir=docs, store_dir=tmp_path / "store")
    assert rag.ingest().ok
    before = set([d.source for d in rag.documents()])
    assert {"_sources/api.rst.txt", "_sources/guide.rst.txt", "_modules/tide.html", "genindex.html"} <= before
    for name, data in marks.items():
        (docs / name).write_bytes(data)
    report = rag.ingest()
    assert report.ok
    assert set(report.removed) == {
        "_sources/api.rst.txt",
        "_sources/index.rst.txt",
        "_modules/tide.html",
        "_modules/index.html",
        "genindex.html",
        "py-modindex.html",
        "search.html",
        *(p.relative_to(docs).as_posix() for p in docs.rglob("*.png")),  # the figure and the theme's icons
    }
    assert "_images/chart.png" in report.removed
    after = set([d.source for d in rag.documents()])
    assert "_sources/guide.rst.txt" in after  # its page is gone: the source is the only copy
    answer = rag.ask("When are the tide tables refreshed?")
    assert answer.citations and answer.citations[0].source == "_sources/guide.rst.txt"
    assert "Sunday at noon" in answer.text and "``" not in answer.text
