"""Sphinx's markup in reStructuredText and MyST sources (rag/ingest/markup.py): what a reader of the built page
sees, and a documentation folder of such sources read, cited and answered without markup in its quotes."""

from __future__ import annotations

from rag import RAG
from rag.ingest.loaders import load
from rag.ingest.markup import myst_text, rst_text

RST = """\
.. _backups:

Backups
=======

.. note::
   Stop the service before you copy its folder.

.. versionadded:: 2.4
   Incremental backups.

To copy the data folder, run::

    rsync -a /srv/orchard/ ``/backup``::

.. tab:: Unix/macOS

   .. code-block:: shell
      :caption: copy

      orchard-backup --full

.. toctree::
   :maxdepth: 2

   restore
   schedule

.. py:function:: orchard.backup(path, full=False)

   Write a backup of the orchard's data to *path*; see :ref:`the restore guide <restore>`
   and :func:`~orchard.restore`, or `the wiki <https://example.org/wiki>`_.

.. |logo| image:: logo.png
.. This comment is for editors
   and goes on here.
"""


def test_rst_directives_roles_comments_and_targets_read_as_the_built_page():
    text = rst_text(RST)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines[:3] == ["Backups", "=======", "Note:"]
    assert "Stop the service before you copy its folder." in lines
    assert "New in version 2.4." in lines
    assert "To copy the data folder, run:" in lines
    assert "rsync -a /srv/orchard/ ``/backup``::" in lines  # a literal block is code: kept as written
    assert "orchard-backup --full" in lines
    assert "orchard.backup(path, full=False)" in lines  # what a description describes
    assert "Write a backup of the orchard's data to *path*; see the restore guide" in lines
    assert "and restore, or the wiki." in lines
    for gone in (
        "..",
        "::",
        ":caption:",
        "toctree",
        "restore\n",
        "schedule",
        "Unix/macOS",
        "logo",
        "editors",
        "and goes",
    ):
        assert gone not in text.replace("To copy the data folder, run:", "").replace("``/backup``::", ""), gone


def test_myst_fences_roles_targets_and_comments_read_as_the_built_page():
    text = myst_text(
        "(install)=\n# Install\n\n% a note for editors\n\n```{note}\n:class: tight\nUse a virtual environment.\n```\n\n"
        "See {ref}`the guide <guide>` and {doc}`usage`.\n\n```{code-block} shell\n$ pip install orchard\n```\n\n"
        "```{toctree}\nusage\n```\n\n```python\n% not a comment in code\nx = {ref}`kept`\n```\n"
    )
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines == [
        "# Install",
        "Note:",
        "Use a virtual environment.",
        "See the guide and usage.",
        "```shell",
        "$ pip install orchard",
        "```",
        "```python",
        "% not a comment in code",
        "x = {ref}`kept`",
        "```",
    ]
    # a directive fence alone, on any line, marks MyST (it was seen only at the file's very start)
    assert myst_text("# Install\n\n```{warning}\nNeeds 2 GB.\n```\n").split() == [
        "#",
        "Install",
        "Warning:",
        "Needs",
        "2",
        "GB.",
    ]
    plain = "# Notes\n\n% of the staff agreed: {this} is `code`.\n"
    assert myst_text(plain) == plain  # no MyST mark: plain markdown is left as it is


def test_a_folder_of_sphinx_sources_is_cited_without_markup(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "backups.rst").write_text(RST)
    (docs / "install.md").write_text(
        "# Install\n\n```{tab} Linux\nOrchard runs on any Linux with Python 3.10 or newer.\n```\n\n"
        "```{warning}\nThe installer needs about 2 GB of free disk space.\n```\n"
    )
    doc = load(docs / "backups.rst", "backups.rst", 2**20)
    assert [s.heading for s in doc.sections] == ["Backups"]
    rag = RAG(docs_dir=docs, store_dir=tmp_path / "store")
    assert rag.ingest().ok
    answer = rag.ask("How much free disk space does the installer need?")
    assert answer.citations and answer.citations[0].source == "install.md"
    assert "2 GB" in answer.citations[0].quote and "{warning}" not in answer.text and "```" not in answer.text
    quotes = " ".join(c.quote for c in rag.ask("What should I do before copying the service folder?").citations)
    assert "Stop the service before you copy its folder." in quotes and ".." not in quotes
