"""Chunking logic with a one-token-per-word counter (no model needed), and the text the embedder reads."""

from __future__ import annotations

from rag.ingest.chunking import Chunker
from rag.ingest.loaders import LoadedDocument, Section, Term, load
from rag.limits import Limits
from rag.text import split_sentences


def words(texts: list[str]) -> list[int]:
    return [len(t.split()) for t in texts]


def chunks_of(text: str, size: int, overlap: int = 0, sections: list[Section] | None = None) -> list:
    doc = LoadedDocument(text=text, sections=sections or [Section(0, None, None)])
    return Chunker(words, size, overlap).split(doc, "doc.txt")


def test_a_chunk_starting_inside_a_definition_is_headed_by_its_term():
    """An option's description continued in a second chunk no longer says which option it describes; its
    heading does (and so the text the embedder reads, and the citation's location)."""
    entry = "--keep\n\nKeep the old copy. It is renamed with a suffix. The suffix is set in the config."
    text = "Options of the tool.\n\n" + entry + "\n\nAfter the list."
    start = text.index("--keep")
    term = Term(start, start + len(entry), "--keep")
    doc = LoadedDocument(text=text, sections=[Section(0, None, "OPTIONS")], terms=[term])
    chunks = Chunker(words, 8, 0).split(doc, "tool.html")
    headings = {c.text: c.section for c in chunks}
    assert headings["The suffix is set in the config."] == "OPTIONS › --keep"
    assert headings["After the list."] == "OPTIONS"
    assert all(c.section == "OPTIONS" for c in chunks if c.text.startswith(("Options", "--keep")))
    deep = next(c for c in chunks if c.text == "The suffix is set in the config.")
    assert "OPTIONS › --keep" in deep.embedding_text().split("\n\n")[0].split("\n")  # read above the chunk


def test_every_chunk_is_an_exact_slice_within_the_size():
    text = "One two three. Four five six.\n\nSeven eight. Nine ten eleven twelve. Thirteen."
    chunks = chunks_of(text, 6, 2)
    assert chunks and all(text[c.start : c.end] == c.text for c in chunks)
    assert all(len(c.text.split()) <= 6 for c in chunks)
    assert "".join(c.text for c in chunks).replace(" ", "").count("Thirteen") >= 1


def test_a_full_window_ends_at_the_paragraph_break_when_that_keeps_it_half_full():
    # Greedy packing would end the first window after "H i." (9 words), splitting the second paragraph.
    text = "A b c d e. F g.\n\nH i. J k l m n."
    first = chunks_of(text, 10)[0]
    assert first.text == "A b c d e. F g."


def test_a_paragraph_break_that_would_leave_the_window_under_half_full_is_ignored():
    text = "A b.\n\nC d e f g. H i j k l. M n."
    first = chunks_of(text, 10)[0]
    assert first.text == "A b.\n\nC d e f g."  # 7 words: the break after "A b." (2 words) was too early


def test_a_window_does_not_end_on_a_lead_in_colon():
    text = "A b c d. He said: Never give up now. Then e f g."
    first = chunks_of(text, 7)[0]
    assert not first.text.endswith(":")
    assert first.text == "A b c d."


def test_a_window_does_not_end_on_a_title_line_such_as_note():
    # The break after "Note" is the last one that keeps the window half full, but "Note" belongs to its tip.
    text = "A b c d e f.\n\nG h i j.\n\nNote\n\nK l m n o p q r."
    chunks = chunks_of(text, 12)
    assert chunks[0].text == "A b c d e f.\n\nG h i j."
    assert chunks[1].text.startswith("Note\n\nK l m")
    numbered = "A b c d e f.\n\nG h i j.\n\n1.2.3. Filesystem permissions\n\nK l m n o p q r."
    assert chunks_of(numbered, 13)[0].text == "A b c d e f.\n\nG h i j."
    # A short line that ends like a sentence, or a command, is not a title: the window may end on it.
    assert chunks_of("A b c d e f.\n\nG h i j.\n\nSee below.\n\nK l m n o p q r.", 13)[0].text.endswith("See below.")
    assert chunks_of("A b c d e f.\n\nG h i j.\n\n$ ls -l\n\nK l m n o p q r.", 13)[0].text.endswith("$ ls -l")


def test_overlap_repeats_whole_sentences_from_the_previous_window():
    text = "A b c. D e f. G h. I j k l."
    chunks = chunks_of(text, 6, 2)
    assert [c.text for c in chunks] == ["A b c. D e f.", "G h. I j k l."]
    chunks = chunks_of(text, 6, 3)
    assert chunks[1].text.startswith("D e f.")


def test_no_chunk_only_repeats_the_tail_of_the_one_before():
    """A short paragraph above a block too long to share a window with it: the overlap cannot reach the
    block, so windows stepping back over the paragraph's sentences would hold nothing new."""
    block = " ".join(f"w{n}" for n in range(9)) + "."
    text = "Intro. A b c. D e f.\n\n" + block + "\n\nAfter it."
    chunks = chunks_of(text, 10, 6)
    spans = [(c.start, c.end) for c in chunks]
    assert not any(a != b and b[0] <= a[0] and a[1] <= b[1] for a in spans for b in spans)
    assert [c.text for c in chunks][:2] == ["Intro. A b c. D e f.", block]
    assert chunks[-1].text.endswith("After it.")


def test_embedding_text_puts_the_section_heading_above_a_chunk_that_lacks_it():
    text = "Read this first.\n\nThe prompt shows your name. It ends with a dollar sign.\n\nMore on the prompt here."
    body = text.index("The prompt")
    sections = [Section(0, None, None), Section(body, None, "Shell basics")]
    chunks = chunks_of(text, 50, sections=sections)
    under = next(c for c in chunks if c.section == "Shell basics")
    assert under.embedding_text() == f"Shell basics\n\n{under.text}"
    assert "Shell basics" not in under.text  # the stored text (what citations point at) is unchanged
    plain = chunks_of("No heading here. Just text.", 50)[0]  # no heading at all: under its file's name
    assert plain.embedding_text() == f"doc\n\n{plain.text}"


def test_a_heading_is_never_a_chunk_of_its_own():
    """A chapter's heading right above its first section's, a heading above a sentence too long to share a
    chunk with it, and a heading at the end with nothing under it: none is a chunk alone (a chunk of one
    heading is found by its words and says nothing)."""
    long = "The ferry leaves the north pier at six and calls at every island on the way out to sea."
    moor = "4.2 The moor() call and how it ties the lines"  # no title line by its form: the section's heading
    text = f"4 Sailing\n\n4.1 Timetables\n\n{long}\n\n{moor}\n\n{long}\n\nIndex"
    sections = [Section(0, None, "4 Sailing")]
    sections += [Section(text.index(h), None, h) for h in ("4.1 Timetables", moor, "Index")]
    chunks = chunks_of(text, 19, sections=sections)
    assert [(c.section, c.text.split("\n")[0]) for c in chunks] == [
        ("4.1 Timetables", "4 Sailing"),  # the empty chapter's heading starts its first section's chunk
        (moor, moor),  # 10 + 19 words: over the size, but the heading goes with its text
    ]
    assert all(long in c.text for c in chunks)
    only = chunks_of("Appendix", 18, sections=[Section(0, None, "Appendix")])
    assert [c.text for c in only] == ["Appendix"]  # a document that is one heading keeps it


def test_a_chunk_is_embedded_under_its_documents_title_and_its_section():
    """An option deep in one manual page among many is found by the page's name, not only by "OPTIONS"."""
    text = "git-stash(1)\n\nStash the changes.\n\nOPTIONS\n\n-u, --include-untracked: untracked files too."
    sections = [Section(0, None, "git-stash(1)"), Section(text.index("OPTIONS"), None, "OPTIONS")]
    option = next(c for c in chunks_of(text, 8, sections=sections) if "--include-untracked" in c.text)
    assert option.title == "git-stash(1)" and option.section == "OPTIONS"
    if option.text.startswith("OPTIONS"):  # the chunk opens with its heading: only the title is added
        assert option.embedding_text() == f"git-stash(1)\n\n{option.text}"
    else:
        assert option.embedding_text() == f"git-stash(1)\nOPTIONS\n\n{option.text}"


def test_an_html_page_is_titled_by_its_title_element_unless_its_first_heading_names_it(tmp_path):
    """A page whose headings are all numbered sections ("1. Overview") is found by what its <title> says; a
    page whose <title> adds the site's name to its first heading keeps the heading."""
    pages = {
        "wal.html": "<title>Write-Ahead Logging</title><h1>1. Overview</h1><p>The default is a rollback journal.</p>"
        "<h1>3. Activating WAL Mode</h1><p>To convert to WAL mode, use the following pragma:</p>"
        "<pre>PRAGMA journal_mode=WAL;</pre>",
        "templates.html": "<title>Templates — Flask Documentation (2.2.x)</title><h1>Templates</h1>"
        "<p>Jinja2 renders.</p>",
        "plain.html": "<h2>Getting started</h2><p>Install it first.</p>",
    }
    titles = {}
    for name, html in pages.items():
        (tmp_path / name).write_text(html)
        doc = load(tmp_path / name, name, 2**20, Limits(memory_mb=0))
        chunks = Chunker(words, 12, 0).split(doc, name)
        titles[name] = {c.title for c in chunks}
        if name == "wal.html":
            pragma = next(c for c in chunks if "journal_mode=WAL" in c.text)
            assert pragma.section == "3. Activating WAL Mode"
            assert pragma.embedding_text().startswith("Write-Ahead Logging\n3. Activating WAL Mode\n\n")
    assert titles == {
        "wal.html": {"Write-Ahead Logging"},
        "templates.html": {"Templates"},
        "plain.html": {"Getting started"},
    }


def test_sentences_end_at_punctuation_and_blank_lines():
    text = "One. Two!\n\nThree: four"
    assert [text[s:e] for s, e in split_sentences(text)] == ["One.", "Two!", "Three:", "four"]


def test_a_closing_quote_or_bracket_after_the_full_stop_still_ends_the_sentence():
    text = 'Quoting a saying: "Denigration is a form of admiration." We agree. He said “stop.” Then (see 2.) go'
    assert [text[s:e] for s, e in split_sentences(text)] == [
        "Quoting a saying:",
        '"Denigration is a form of admiration."',
        "We agree.",
        "He said “stop.”",
        "Then (see 2.)",
        "go",
    ]


def test_with_brackets_punctuation_inside_parentheses_braces_and_quotes_does_not_end_a_sentence():
    text = "Edit the entry (see Section 3.1.2, “Stage 2: the boot loader”) first. Install it (e.g. foo-dbgsym) now."
    assert [text[s:e] for s, e in split_sentences(text, brackets=True)] == [
        "Edit the entry (see Section 3.1.2, “Stage 2: the boot loader”) first.",
        "Install it (e.g. foo-dbgsym) now.",
    ]
    assert len(split_sentences(text)) == 4  # chunking keeps the plain rule: "Stage 2:" and "e.g." end units
    text = "Compare it with the first “Hello, world!” program. He said “Stop.” Then he left."
    assert [text[s:e] for s, e in split_sentences(text, brackets=True)] == [
        "Compare it with the first “Hello, world!” program.",  # it goes on in lower case after the quote
        "He said “Stop.”",
        "Then he left.",
    ]
    code = "r = get(url, params={'key': 'value', 'page': 2}) gets a page"
    assert split_sentences(code, brackets=True) == [(0, len(code))]  # a dict's colons end no sentence
    assert split_sentences(code) == [(0, len(code))]  # nor as chunks are cut: a chunk never starts inside it
    unclosed = "A stray ( bracket. " + "Then a long sentence goes on and on. " * 4
    spans = split_sentences(unclosed, brackets=True)  # a bracket holds punctuation for 120 characters only
    assert len(spans) == 2 and unclosed[slice(*spans[-1])] == "Then a long sentence goes on and on."


def test_an_interactive_python_session_is_cut_at_its_statements_and_nowhere_else():
    text = (
        "Validators run last. For example:\n\n"
        ">>> def positive(instance, attribute, value):\n"
        "...     if value < 0:\n"
        "...         raise ValueError('too small: ' + str(value))\n"
        ">>> Point(-1)\n"
        "Traceback (most recent call last):\n"
        "   ...\n"
        "ValueError: too small: -1\n\n"
        "Done. Then go on."
    )
    want = [
        "Validators run last.",
        "For example:",
        ">>> def positive(instance, attribute, value):\n...     if value < 0:\n"
        "...         raise ValueError('too small: ' + str(value))",
        ">>> Point(-1)\nTraceback (most recent call last):\n   ...\nValueError: too small: -1",
        "Done.",
        "Then go on.",
    ]
    for brackets in (True, False):  # the reader's sentences and the chunker's units alike
        assert [text[s:e] for s, e in split_sentences(text, brackets=brackets)] == want
    # Git's conflict markers are no prompt
    conflict = "<<<<<<< ours\na: 1\n=======\na: 2\n>>>>>>> theirs: the file. Then merge."
    assert [conflict[s:e] for s, e in split_sentences(conflict)][-1] == "Then merge."


def test_a_chunk_never_starts_or_ends_inside_a_table_row_that_names_its_columns():
    """ "package: firejail | popcon: V:1, I:5 | …": a chunk cut at the colon after "package" started with
    "firejail | popcon: …", a row without the name of its first column."""
    rows = [
        f"package: tool{i} | popcon: V:{i}, I:{i + 4} | size: {100 + i} | description: a tool number {i}"
        for i in range(6)
    ]
    text = "Table 4.1. List of tools\n\n" + "\n".join(rows) + "\n\nAfter the table."
    chunks = chunks_of(text, 40, 20)
    assert len(chunks) > 2
    for c in chunks:
        assert c.text.startswith(("Table", "package: ", "After")), c.text
        assert c.text.endswith((".", "List of tools")) or c.text.split("\n")[-1] in rows, c.text
