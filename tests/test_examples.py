"""Example questions (rag/app/examples.py): plain, well-formed questions, each answered by rag from the document
it came from, over seeds/ and a few Markdown documents ingested into a real store."""

from __future__ import annotations

import shutil

import pytest

from rag import RAG
from rag.app.examples import Examples, _candidates, candidate_questions, unmark

from .conftest import SEEDS

MARKS = ("[", "](", "**", "`", "<")

# A library's README: its title is a Markdown link, its headings carry emphasis and code marks.
LIBRARY = """# [libcbor](https://github.com/PJK/libcbor)

libcbor is a C library for parsing and generating CBOR, the binary data format of RFC 8949.
libcbor has no runtime dependencies and runs on embedded systems with a few kilobytes of memory.
The streaming decoder of libcbor reads one item at a time, so large documents never sit in memory.

## **Building** with `cmake`

Building needs CMake 3.5 and a C99 compiler. Run cmake in a build folder, then make and make install.
After building, the folder holds a static and a shared library, and the test suite runs with ctest.

## The Founding Years

The project was started in 2014 by Pavel Kalvoda as a student project in Prague.
Its founding goal was a decoder small enough for sensor nodes, and ten years on the founding design is still used.
"""

# A file whose only heading is its own name: nothing in it makes a question.
README = """# fonts-dejavu-core README

The package ships the four core faces of the type family, in regular and bold weights.
The glyph outlines are kept unchanged from the upstream release and installed system-wide.
"""

# Prose that asks itself a rhetorical question and answers it in the same paragraph.
ESSAY = """Notes on the orchard

Our apple harvest grew from 40 tonnes to 55 tonnes this autumn. Where does the extra apples come from? The new
rows planted in 2019 bore fruit for the first time, and the old trees were pruned harder in spring.
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> RAG:
    root = tmp_path_factory.mktemp("examples")
    shutil.copytree(SEEDS, root / "docs")
    (root / "docs" / "libcbor.md").write_text(LIBRARY)
    (root / "docs" / "fonts-dejavu-core-README.md").write_text(README)
    (root / "docs" / "orchard.txt").write_text(ESSAY)
    rag = RAG(docs_dir=root / "docs", store_dir=root / "store")
    rag.ingest()
    return rag


@pytest.mark.slow
def test_offered_examples_are_plain_questions_answered_from_their_document(store):
    origin = dict(_candidates(store, 2000))
    questions = Examples(store, n=8, budget=120).get()
    assert len(questions) >= 3
    assert any(origin[q] == "libcbor.md" for q in questions)  # the Markdown document gives one too
    for q in questions:
        assert q.endswith("?") and not any(mark in q for mark in MARKS), q
        answer = store.ask(q)
        assert answer.answered, q
        assert origin[q] in {c.source for c in answer.citations}, q
        assert not any(c.quote.rstrip().endswith("?") for c in answer.citations), q


@pytest.mark.slow
def test_headings_become_well_formed_questions(store):
    candidates = candidate_questions(store)
    # The link keeps its text; emphasis and code marks go; a word is cased as the corpus writes it.
    assert "What does the document say about libcbor?" in candidates
    assert "What does the document say about building with cmake?" in candidates
    assert "What does the document say about the founding years?" in candidates
    for q in candidates:
        assert q.endswith("?") and not any(mark in q for mark in MARKS), q
    # The interview's own question is kept; the essay's rhetorical one, which its paragraph goes on to
    # answer (and whose verb disagrees with its subject), is not.
    assert "How does Hash Key view the recent discussions?" in candidates
    assert not any("extra apples" in q for q in candidates)


@pytest.mark.slow
def test_a_document_with_only_a_malformed_candidate_gives_no_example(store):
    """Regression (issue 13): "What is fonts dejavu core README about?" was offered, a file's name as subject."""
    sources = {source for _, source in _candidates(store, 2000)}
    assert "libcbor.md" in sources
    assert "fonts-dejavu-core-README.md" not in sources
    assert "orchard.txt" not in sources
    origin = dict(_candidates(store, 2000))
    assert all(origin[q] != "fonts-dejavu-core-README.md" for q in Examples(store, n=20, budget=120).get())


@pytest.mark.slow
def test_no_candidate_is_offered_unchecked(store):
    """With no time to ask any candidate, none is offered (they used to be, unasked, as a fallback)."""
    assert candidate_questions(store)
    assert Examples(store, budget=-1).get() == []


def test_unmark_keeps_the_words():
    assert unmark("[libcbor](https://github.com/PJK/libcbor) *fast* `cbor_load` <b>x</b> &amp; ![logo](a.png)") == (
        "libcbor fast cbor_load x &"
    )
