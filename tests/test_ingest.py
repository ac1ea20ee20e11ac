"""Ingest against the real Chroma (embedded and a real `chroma run` server) and the real packaged model."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytesseract
import pytest
from filelock import FileLock

from rag import RAG, RagError
from rag.ingest.loaders import load

from .conftest import ROOT, blank_page, handbook_pdf, image_pdf, join_pdfs, manual_pdf, render_page, text_pdf


def snapshot(rag: RAG) -> dict[str, tuple]:
    """Everything stored, by chunk id: (source, file_hash, start, end, text)."""
    rag.store.open()
    return {cid: (m["source"], m["file_hash"], m["start"], m["end"], text) for cid, m, text in rag.store.all_chunks()}


def write_corpus(docs: Path, n: int = 12) -> None:
    docs.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        body = "\n\n".join(
            f"Document {i} paragraph {j}: the {['red', 'green', 'blue'][j % 3]} fox number {i * 100 + j} "
            f"jumps over lazy dog {j}. It then rests under tree {i}-{j} until evening." * 2
            for j in range(12)
        )
        (docs / f"doc{i:02d}.md").write_text(f"# Title {i}\n\n{body}\n\n## Details\n\nDetail line for {i}.\n")


def test_ingest_then_rerun_embeds_nothing(seed_docs, mode):
    rag = RAG()
    first = rag.ingest()
    assert first.added == ["hashkey-interview.txt"] and first.ok
    assert first.chunks == first.embedded > 5
    second = RAG().ingest()
    assert second.unchanged == ["hashkey-interview.txt"]
    assert second.embedded == 0 and second.added == second.updated == second.removed == []
    assert second.chunks == first.chunks  # total in the store, not just this run's


def test_changed_and_deleted_files_replace_and_remove_chunks(tmp_path, mode):
    docs = tmp_path / "docs"
    write_corpus(docs, 3)
    rag = RAG()
    rag.ingest()
    before = snapshot(rag)
    (docs / "doc00.md").write_text("# New\n\nCompletely new text about penguins in Antarctica.\n")
    (docs / "doc01.md").unlink()
    (docs / "sub").mkdir()
    (docs / "sub" / "extra.txt").write_text("An extra file about volcanoes.")
    report = rag.ingest()
    assert (report.added, report.updated, report.removed, report.unchanged) == (
        ["sub/extra.txt"],
        ["doc00.md"],
        ["doc01.md"],
        ["doc02.md"],
    )
    after = snapshot(rag)
    assert {s for s, *_ in after.values()} == {"doc00.md", "doc02.md", "sub/extra.txt"}
    assert not any("fox" in text for s, *_, text in after.values() if s == "doc00.md")
    assert {k: v for k, v in before.items() if v[0] == "doc02.md"} == {
        k: v for k, v in after.items() if v[0] == "doc02.md"
    }
    assert report.chunks == len(after)
    assert rag.retrieve("penguins Antarctica", k=1)[0].source == "doc00.md"
    assert "doc01.md" not in {p.source for p in rag.retrieve("fox jumps", k=20)}


def test_chunk_metadata_points_at_exact_text(seed_docs, mode):
    rag = RAG()
    rag.ingest()
    doc = load(seed_docs / "hashkey-interview.txt", "hashkey-interview.txt", 10**8)
    stored = snapshot(rag)
    assert stored
    for source, _, start, end, text in stored.values():
        assert source == "hashkey-interview.txt"
        assert doc.text[start:end] == text
    p = rag.retrieve("marathon not a sprint", k=1)[0]
    assert "marathon" in p.text and doc.text[p.start : p.end] == p.text


def test_pdf_pages_and_markdown_sections_are_kept(tmp_path, mode):
    from fpdf import FPDF

    docs = tmp_path / "docs"
    docs.mkdir()
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for page in ("Apples grow in orchards.", "Glaciers carve valleys slowly."):
        pdf.add_page()
        pdf.multi_cell(0, 10, page)
    pdf.output(str(docs / "book.pdf"))
    (docs / "guide.md").write_text("# Intro\n\nHello there.\n\n## Setup\n\nRun the installer twice.\n")
    rag = RAG()
    rag.ingest()
    glacier = rag.retrieve("glaciers carve valleys", k=1)[0]
    assert (glacier.source, glacier.page) == ("book.pdf", 2)
    setup = rag.retrieve("run the installer", k=1)[0]
    assert (setup.source, setup.section, setup.page) == ("guide.md", "Setup", None)


def test_readmes_compressed_files_and_rst_are_ingested_with_their_titles(tmp_path, mode):
    """A folder as Debian's /usr/share/doc holds it: README without a suffix, gzip-compressed files, a
    capitalised qualifier, reStructuredText; an unknown type is skipped with its suffix named."""
    import gzip

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "README").write_text("Tidepool\n========\n\nTidepool keeps a log of every crab it counts.\n")
    (docs / "NEWS.Debian.gz").write_bytes(gzip.compress(b"Version 2 counts starfish as well as crabs.\n"))
    (docs / "guide.rst").write_text("Setup\n=====\n\nPour seawater into the basin before counting.\n")
    (docs / "data.bin").write_bytes(b"\x00\x01")
    report = RAG().ingest()
    assert "data.bin" in {rel for rel, _ in report.skipped} and not report.failed, report
    rag = RAG()
    assert [(p.source, p.section) for p in (rag.retrieve(q, k=1)[0] for q in ("log of crabs", "count starfish"))] == [
        ("README", "Tidepool"),
        ("NEWS.Debian.gz", None),
    ]
    basin = rag.retrieve("seawater basin", k=1)[0]
    assert (basin.source, basin.section) == ("guide.rst", "Setup")
    assert basin.text.startswith("Setup\n\nPour seawater")  # the underline is gone from the stored text


def test_a_chunk_deep_in_a_section_is_embedded_under_its_heading(tmp_path, mode):
    """Two sections end with the same paragraph; only the heading above tells the two chunks apart."""
    import numpy as np

    docs = tmp_path / "docs"
    docs.mkdir()
    filler = "Lay out the tools on the bench first. Read each step before doing it. Work in good light. "
    tail = "Wait twenty minutes, then check the result."
    (docs / "howto.md").write_text(
        f"# Baking sourdough bread\n\n{filler * 3}\n\n{tail}\n\n# Patching a bicycle tyre\n\n{filler * 3}\n\n{tail}\n"
    )
    rag = RAG(chunk_size=32, chunk_overlap=0)
    rag.ingest()
    got = rag.store.chunks.get(where={"source": "howto.md"}, include=["embeddings", "documents", "metadatas"])
    deep = [i for i, text in enumerate(got["documents"]) if text.endswith(tail)]
    assert [got["metadatas"][i]["section"] for i in deep] == ["Baking sourdough bread", "Patching a bicycle tyre"]
    assert got["documents"][deep[0]] == got["documents"][deep[1]]  # the same text under both headings
    for i in deep:  # the stored vector is the heading plus the text; the stored text is the text alone
        text, meta, vector = got["documents"][i], got["metadatas"][i], np.asarray(got["embeddings"][i])
        section, title = meta["section"], meta["title"]
        assert section not in text and title == "Baking sourdough bread"  # the document's first heading
        under = f"{section}\n\n{text}" if section == title else f"{title}\n{section}\n\n{text}"
        assert float(vector @ rag.embedder.embed([under])[0]) > 0.999
        assert float(vector @ rag.embedder.embed([text])[0]) < 0.99
    hits = rag.retrieve("bicycle tyre: how long to wait before checking?", k=10)
    assert next(p for p in hits if p.text.endswith(tail)).section == "Patching a bicycle tyre"


def test_no_stored_chunk_only_repeats_the_tail_of_another(tmp_path, mode):
    """A short paragraph above a sentence too long to share a chunk with it: stepping back over the paragraph
    for the overlap made a chunk of each remaining sentence, each already inside the chunk before."""
    docs = tmp_path / "docs"
    docs.mkdir()
    long = (
        "The route command takes a prefix, a gateway, an optional distance, an optional table number, "
        "an optional interface and an optional VRF name, in that order, and each of them may be left out."
    )
    (docs / "routes.md").write_text(
        "# Static routes\n\nA static route names a prefix. It stays until removed. It survives a restart.\n\n"
        f"{long}\n\nEach line adds one route.\n"
    )
    rag = RAG(chunk_size=48, chunk_overlap=24)
    rag.ingest()
    stored = [(m["start"], m["end"], text) for _, m, text in rag.store.all_chunks() if m["source"] == "routes.md"]
    spans = [(s, e) for s, e, _ in stored]
    assert not [a for a in spans for b in spans if a != b and b[0] <= a[0] and a[1] <= b[1]]
    texts = " ".join(text for _, _, text in stored)
    assert "It survives a restart." in texts and long in texts and "Each line adds one route." in texts


def test_chinese_question_words_match_no_heading_in_a_real_store(tmp_path, mode):
    """The keyword index of a real store leaves out Chinese question words: "什么是 X？" finds X, not the
    heading that asks what something else is."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "debian.md").write_text("# 什么是 Debian？\n\nDebian 是一个自由的操作系统，由志愿者维护。\n")
    (docs / "lvm.md").write_text("# 逻辑卷\n\nLVM 把多块磁盘合成一个卷组，再从卷组中划分逻辑卷。\n")
    (docs / "raid.md").write_text("# 磁盘阵列\n\nmdadm 把几块磁盘组成一个 RAID 阵列，坏一块也不丢数据。\n")
    rag = RAG()
    rag.ingest()
    by_keyword = {p.source: p.ranks.get("bm25") for p in rag.search("什么是 LVM？").passages}
    assert by_keyword["lvm.md"] == 1
    assert by_keyword.get("debian.md") is None  # "什么是" is no word to match


def test_configuration_change_reembeds_everything(seed_docs, mode, monkeypatch):
    first = RAG().ingest()
    monkeypatch.setenv("RAG_CHUNK_SIZE", "120")
    monkeypatch.setenv("RAG_CHUNK_OVERLAP", "20")
    report = RAG().ingest()
    assert report.rebuilt and "re-embedded" in report.rebuilt
    assert report.added == ["hashkey-interview.txt"]
    assert report.embedded == report.chunks > first.chunks  # smaller chunks, all new, none left from before


def test_a_new_chunking_keeps_the_vectors_of_chunks_whose_text_is_unchanged(seed_docs, mode, monkeypatch):
    """A rag upgrade that changes how documents are read (`CHUNKER_VERSION`) rebuilds the store; before, it
    embedded every chunk again although most read the same. The same model's vector of the same text is
    reused: nothing is embedded, and the vectors stored are the ones the first run computed."""
    import rag.config

    first = RAG()
    first.ingest()
    first.store.open()
    ids = sorted(cid for cid, _, _ in first.store.all_chunks())
    vectors = first.store.vectors(ids)
    monkeypatch.setattr(rag.config, "CHUNKER_VERSION", rag.config.CHUNKER_VERSION + 1)
    again = RAG()
    report = again.ingest()
    assert report.rebuilt and report.added == ["hashkey-interview.txt"]
    assert report.embedded == 0 and report.reused == report.chunks == len(ids)
    assert f"0 embedded ({len(ids)} kept the vectors they had)" in report.summary()
    again.store.open()
    assert all(np.allclose(again.store.vectors(ids)[cid], vectors[cid]) for cid in ids)
    assert again.ask("When did Hong Kong issue its virtual asset policy statement?").answered
    assert RAG().ingest(reset=True).reused == 0  # a reset asks for everything anew


def test_a_changed_document_embeds_only_the_chunks_it_changed(tmp_path, mode):
    docs = tmp_path / "docs"
    docs.mkdir()
    line = "Ferries from pier {n} leave every {m} minutes on route {n}{m}."
    sections = [f"## Pier {n}\n\n" + " ".join(line.format(n=n, m=m) for m in range(12)) for n in range(1, 7)]
    (docs / "piers.md").write_text("# Piers\n\n" + "\n\n".join(sections))
    rag = RAG()
    first = rag.ingest()
    assert first.chunks >= 6
    sections[-1] = "## Pier 6\n\nPier 6 is closed for repairs until the spring; its ferries leave from pier 5."
    (docs / "piers.md").write_text("# Piers\n\n" + "\n\n".join(sections))
    report = rag.ingest()
    assert report.updated == ["piers.md"]
    assert 0 < report.embedded < first.chunks / 2 and report.reused == report.chunks - report.embedded
    found = rag.retrieve("Which pier is closed for repairs?", k=1)[0]
    assert "closed for repairs" in found.text


def test_dry_run_plans_and_touches_nothing(tmp_path, mode):
    docs = tmp_path / "docs"
    write_corpus(docs, 3)
    rag = RAG()
    rag.ingest()
    before = snapshot(rag)
    (docs / "doc00.md").write_text("changed")
    (docs / "doc02.md").unlink()
    (docs / "new.txt").write_text("brand new")
    report = rag.ingest(dry_run=True)
    assert report.plan_line() == "+1 added ~1 changed -1 removed =1 unchanged"
    assert snapshot(rag) == before


def test_reset_rebuilds(seed_docs, mode):
    rag = RAG()
    rag.ingest()
    report = rag.ingest(reset=True)
    assert report.added == ["hashkey-interview.txt"] and report.embedded == report.chunks


def test_empty_folder_does_not_wipe_the_store(tmp_path, mode):
    """Pins: pointing ingest at an empty (e.g. unmounted) folder must not delete every stored document."""
    docs = tmp_path / "docs"
    write_corpus(docs, 2)
    rag = RAG()
    rag.ingest()
    for f in docs.iterdir():
        f.unlink()
    with pytest.raises(RagError, match="refusing to remove all 2 stored documents"):
        rag.ingest()
    assert len(snapshot(rag)) > 0


def run_cli(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "ingest.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )


def test_bad_inputs_each_get_one_line_and_the_rest_is_ingested(tmp_path, mode):
    docs = tmp_path / "docs"
    write_corpus(docs, 2)
    assert run_cli().returncode == 0
    (docs / "doc00.md").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 50)  # was fine, now binary
    (docs / "empty.txt").write_text("")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (docs / "image.txt").write_bytes(bytes(range(256)) * 100)
    with open(docs / "huge.txt", "wb") as f:  # 50 MB of real text, written 1 MB at a time
        line = b"All work and no play makes a dull corpus.\n"
        block = line * (2**20 // len(line))
        for _ in range(50 * 2**20 // len(block) + 1):
            f.write(block)
    (docs / "dangling.txt").symlink_to(docs / "missing-target.txt")
    (docs / "loop").mkdir()
    (docs / "loop" / "again").symlink_to(docs / "loop")
    (docs / "Größe der Datei 香港.txt").write_text("Unicode names work: the harbour is deep.")
    (docs / "picture.png").write_bytes(b"\x89PNG")  # an image is read by OCR; this one is cut short
    (docs / "song.mp3").write_bytes(b"ID3")
    result = run_cli()
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    expect = {
        "doc00.md": "binary",
        "empty.txt": "empty",
        "broken.pdf": "PDF",
        "image.txt": "binary",
        "huge.txt": "too large",
        "dangling.txt": "cannot read",
        "loop/again": "symlink loop",
        "picture.png": "not a valid image",
    }
    for name, reason in expect.items():
        hits = [line for line in lines if name in line]
        assert len(hits) == 1 and reason in hits[0], (name, lines)
    assert any("song.mp3" in line and "skipped" in line for line in lines)
    rag = RAG()
    sources = {s for s, *_ in snapshot(rag).values()}
    # the good new file is in; doc00.md, now unreadable, keeps its previous chunks: nothing stored is lost
    assert sources == {"doc00.md", "doc01.md", "Größe der Datei 香港.txt"}
    assert rag.retrieve("how deep is the harbour", k=1)[0].source == "Größe der Datei 香港.txt"


def test_cli_usage_and_fatal_errors_exit_2_and_leave_the_store(seed_docs, tmp_path):
    assert RAG().ingest().ok  # in-process: the store the failing CLI runs below must leave as it is
    before = snapshot(RAG())
    missing = run_cli("--docs", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "nope" in missing.stderr and "does not exist" in missing.stderr
    bad = run_cli(env={"RAG_CHUNK_SIZE": "5"})
    assert bad.returncode == 2 and "chunk_size" in bad.stderr
    assert run_cli("--no-such-flag").returncode == 2
    assert snapshot(RAG()) == before


def test_dry_run_cli_prints_the_plan(seed_docs):
    result = run_cli("--dry-run")
    assert result.returncode == 0
    assert "+1 added ~0 changed -0 removed =0 unchanged" in result.stdout
    assert RAG().store.open() is False  # nothing was created


def test_second_writer_waits_then_gives_up_with_a_clear_message(seed_docs, tmp_path):
    rag = RAG()
    with FileLock(tmp_path / "store" / ".ingest.lock"):
        result = run_cli(env={"RAG_LOCK_TIMEOUT": "1"})
    assert result.returncode == 2
    assert "another ingest is writing" in result.stderr
    assert rag.store.open() is False


def test_two_concurrent_ingests_leave_one_consistent_store(tmp_path):
    docs = tmp_path / "docs"
    write_corpus(docs, 10)
    procs = [
        subprocess.Popen([sys.executable, str(ROOT / "ingest.py")], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sorted("+10 added" in o for o in outs) == [False, True]  # one did the work, the other found it done
    stored = snapshot(RAG())
    assert {s for s, *_ in stored.values()} == {f"doc{i:02d}.md" for i in range(10)}


def test_links_to_outside_the_documents_folder_are_not_followed_unless_allowed(seed_docs, tmp_path):
    """Regression: a link to /etc/passwd placed in the documents folder was ingested and served to every
    signed-in user. A link an administrator made inside the folder is still followed."""
    from rag.app.ui import _ingest

    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("The vault combination is 31-41-59.\n")
    (tmp_path / "outside" / "more.md").write_text("# More\n\nThe vault is under the stairs.\n")
    (seed_docs / "passwd.txt").symlink_to(secret)
    (seed_docs / "shared").symlink_to(tmp_path / "outside")
    (seed_docs / "alias.txt").symlink_to(seed_docs / "hashkey-interview.txt")  # inside: followed
    rag = RAG(docs_dir=seed_docs, store_dir=tmp_path / "store")
    report = rag.ingest()
    assert sorted(d.source for d in rag.documents()) == ["alias.txt", "hashkey-interview.txt"]
    assert sorted(report.links_refused) == ["passwd.txt", "shared"]
    assert ", 2 link(s) to outside the documents folder not followed;" in report.summary()
    assert all("31-41-59" not in p.text for p in rag.retrieve("What is the vault combination?", k=10))
    assert "Did not follow passwd.txt: a link to outside the documents folder." in _ingest(rag)

    allowed = RAG(docs_dir=seed_docs, store_dir=tmp_path / "store", follow_outside_links=True)
    assert sorted(allowed.ingest().added) == ["passwd.txt", "shared/more.md", "shared/secret.txt"]
    assert rag.ingest().removed == ["passwd.txt", "shared/more.md", "shared/secret.txt"]  # and back again


def test_a_pdf_passage_is_stored_and_retrieved_under_its_outline_heading_without_running_heads(tmp_path):
    """The real store and embedding model: a passage of a PDF carries the heading of the outline entry it
    falls under, even on a page where that heading is not printed, and no running head is in its text."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "handbook.pdf").write_bytes(handbook_pdf())
    rag = RAG(docs_dir=docs, store_dir=tmp_path / "store")
    assert rag.ingest().ok
    top = rag.retrieve("Do pensioners travel at a reduced fare?", k=1)[0]
    assert (top.source, top.page, top.section) == ("handbook.pdf", 3, "2 Fares")
    assert "Handbook" not in top.text and "Pensioners travel at half fare" in top.text


def test_a_manuals_contents_and_index_are_never_retrieved_and_no_heading_is_a_chunk_alone(tmp_path):
    """The real store and embedding model over a manual (see `manual_pdf`): before, its contents page and
    its index were chunks that a question about any topic found, and a chapter's heading was one too."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "manual.pdf").write_bytes(manual_pdf())
    rag = RAG(docs_dir=docs, store_dir=tmp_path / "store")
    assert rag.ingest().ok
    found = rag.retrieve("Where does the first ferry leave from in the morning?", k=5)
    assert found[0].section == "1.1 Timetables" and "north pier at six" in found[0].text
    assert not [p.text for p in found if ". ." in p.text]
    rag.store.open()
    stored = list(rag.store.all_chunks())
    alone = [text for _, m, text in stored if text.strip() == (m.get("section") or "")]
    assert len(stored) == 3 and not alone  # the chapter's heading starts its first section's chunk


def test_an_html_pages_table_of_contents_is_never_a_passage(tmp_path, mode):
    """DocBook and Sphinx pages start with a list of their sections' titles: as a passage it matched any
    question naming a section, answered none, and took a place in the top five (or opened the first
    section's chunk). The real store and model over such a page: the contents are not stored at all."""
    docs = tmp_path / "docs"
    docs.mkdir()
    sections = [
        ("Adding a Column", "To add a column, use a command like ALTER TABLE products ADD COLUMN description text."),
        ("Removing a Column", "To remove a column, use a command like ALTER TABLE products DROP COLUMN description."),
        ("Renaming a Table", "To rename a table, use ALTER TABLE products RENAME TO items."),
    ]
    toc = "".join(f'<dt><a href="#s{i}">5.{i}. {title}</a></dt>' for i, (title, _) in enumerate(sections, 1))
    body = "".join(f'<h2 id="s{i}">5.{i}. {t}</h2><p>{text}</p>' for i, (t, text) in enumerate(sections, 1))
    (docs / "alter.html").write_text(
        f'<html><body><h1>5. Modifying Tables</h1><div class="toc"><dl class="toc">{toc}</dl></div>{body}</body></html>'
    )
    rag = RAG()
    assert rag.ingest().ok
    found = rag.retrieve("How do I add a column to a table?", k=3)
    assert found[0].section == "5.1. Adding a Column" and "ADD COLUMN" in found[0].text
    rag.store.open()
    texts = [text for _, _, text in rag.store.all_chunks()]
    assert sum(text.count("Removing a Column") for text in texts) == 1  # its heading, not a line of contents


def test_pages_that_only_redirect_are_listed_without_text_and_an_index_is_never_retrieved(tmp_path, mode):
    """Texinfo writes a page for every node that only redirects to where the node is (144 of zsh's 186 HTML
    files). Each was a document: its title matched questions about its topic and took the top places with
    "The node you are looking for is at …". The real store and model: they are listed as without text. Its
    index pages, tables of links to the sections, are not read either."""
    docs = tmp_path / "docs"
    docs.mkdir()
    topics = {
        "Aliasing": "Every word is checked for an alias before the command runs; an alias is replaced by its text.",
        "Globbing": "A word with a star or a question mark is replaced by the names of the files it matches.",
        "Quoting": "A backslash or a pair of single quotes keeps the next characters from being expanded.",
    }
    body = "".join(f'<h2 id="{t}">{t}</h2><p>{text}</p>' for t, text in topics.items())
    (docs / "Grammar.html").write_text(f"<html><head><title>Grammar</title></head><body>{body}</body></html>")
    for t in topics:
        (docs / f"{t}.html").write_text(
            f'<html><head><meta http-equiv="Refresh" content="0; url=Grammar.html#{t}"><title>{t} (tsh)</title>'
            f"</head><body><p>The node you are looking for is at {t}.</p></body></html>"
        )
    rows = "".join(
        f'<tr><td><a href="Grammar.html#{t}">{t}</a></td><td><a href="Grammar.html">Grammar</a></td></tr>'
        for t in topics
    )
    (docs / "Index.html").write_text(f"<html><body><h1>Concept Index</h1><table>{rows}</table></body></html>")
    rag = RAG()
    report = rag.ingest()
    added = ["Aliasing.html", "Globbing.html", "Grammar.html", "Index.html", "Quoting.html"]
    assert report.ok and sorted(report.added) == added
    assert sorted(report.no_text) == [
        (f"{t}.html", f"only redirects to Grammar.html#{t}, with nothing of its own to read") for t in sorted(topics)
    ]
    found = rag.retrieve("What is aliasing?", k=3)
    assert "checked for an alias" in found[0].text
    assert all(p.source == "Grammar.html" or "Aliasing" not in p.text for p in found)  # nor the index's line
    assert rag.ingest().unchanged == added


def test_the_cli_lists_a_few_files_without_text_and_counts_the_rest(tmp_path):
    """A Texinfo manual holds a page that only redirects for every node: 144 lines of "no text" hid the summary.
    Past ten, the CLI lists five and counts the others; -v lists every one."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "manual.html").write_text("<html><body><h1>Nodes</h1><p>Every node is described here.</p></body></html>")
    for n in range(12):
        (docs / f"node{n:02}.html").write_text(
            f'<html><head><meta http-equiv="Refresh" content="0; url=manual.html#n{n}"></head><body></body></html>'
        )
    where = ["--docs", str(docs), "--store", str(tmp_path / "store")]
    short = run_cli(*where)
    assert short.returncode == 0, short.stderr
    lines = [line for line in short.stderr.splitlines() if line.startswith("no text ")]
    assert lines[:5] == [
        f"no text node{n:02}.html: only redirects to manual.html#n{n}, with nothing of its own to read"
        for n in range(5)
    ]
    assert lines[5:] == ["no text … and 7 more (-v lists every one)"]
    assert "; 12 without text" in short.stdout
    every = run_cli(*where, "--reset", "-v")
    assert len([line for line in every.stderr.splitlines() if line.startswith("no text node")]) == 12


def test_a_folder_linked_under_a_second_name_is_read_once_and_a_loop_is_a_failure(tmp_path):
    """Debian's python-*-doc packages link ``rst -> html/_sources``: the second name is skipped, saying
    where the folder was read, not reported as a failed symlink loop."""
    from rag.ingest.pipeline import scan

    (tmp_path / "html" / "_sources").mkdir(parents=True)
    (tmp_path / "html" / "_sources" / "guide.rst.txt").write_text("Guide\n=====\n\nRun it.\n")
    (tmp_path / "rst").symlink_to(tmp_path / "html" / "_sources")
    (tmp_path / "html" / "up").symlink_to(tmp_path / "html")  # a loop
    entries, skipped, failed = scan(tmp_path, 10**6)
    assert [e.rel for e in entries] == ["html/_sources/guide.rst.txt"]
    assert ("rst", "the same folder as html/_sources (a symlink to it), read there") in skipped
    assert failed == [("html/up", "symlink loop: folder already visited, not entered")]


def _big(n: int = 60) -> str:
    return "\n\n".join(
        f"Heron log {i}: the grey heron number {i} waited {i % 7} hours by pond {i}." * 3 for i in range(n)
    )


def test_a_cancelled_ingest_shows_progress_inside_a_big_file_and_rolls_it_back(seed_docs, tmp_path):
    """A big upload showed no progress and could not be stopped. Progress now comes inside a file, a slice
    of chunks at a time, and a cancel there leaves an added document absent and a changed one as it was."""
    from rag.ingest.pipeline import IngestCancelled

    rag = RAG(docs_dir=seed_docs, store_dir=tmp_path / "store", embed_batch_size=4)  # 16 chunks a slice
    rag.ingest()
    before = snapshot(rag)
    (seed_docs / "big.txt").write_text(_big())
    (seed_docs / "hashkey-interview.txt").write_text(_big(40))  # a changed document, cancelled too
    ticks: list[str] = []

    def cancel_inside_a_file(done: int, total: int, what: str) -> None:
        ticks.append(what)
        if "chunks embedded" in what:
            raise IngestCancelled("cancelled")

    with pytest.raises(IngestCancelled):
        rag.ingest(progress=cancel_inside_a_file)
    assert re.fullmatch(r"\S+ \(16 of \d+ chunks embedded\)", ticks[-1]), ticks
    assert snapshot(rag) == before  # nothing half-written: the old version of the changed one, no big.txt
    assert {r.state for r in rag.store.ledger().values()} == {"done"}
    assert [d.source for d in rag.documents()] == ["hashkey-interview.txt"]
    report = rag.ingest()
    assert report.added == ["big.txt"] and report.updated == ["hashkey-interview.txt"]


# --- scanned pages and images (OCR) -------------------------------------------------------------------

KEEPER = "Harbour log, winter 1893. The keeper counted seventeen storms and lit the lamp at dusk."
FERRY = "The island ferry leaves the north pier at seven and returns before the tide turns."


def scanned_docs(docs: Path) -> None:
    """A PDF whose page 1 has a text layer, page 2 is a scan and page 3 a blank scan; a photo of a page;
    a text file."""
    docs.mkdir()
    scans = image_pdf([render_page(KEEPER), blank_page()])
    (docs / "ledger.pdf").write_bytes(join_pdfs(text_pdf("Lighthouse ledger, kept by the harbour office."), scans))
    render_page(FERRY).save(docs / "timetable.png")
    (docs / "notes.txt").write_text("The lamp room was painted white in the spring.\n")


def test_scanned_pages_and_images_are_read_once_and_cited_by_page(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_PARSE_MEMORY_MB", "0")  # in-process, so the second run can take Tesseract away
    scanned_docs(tmp_path / "docs")
    rag = RAG()
    report = rag.ingest()
    assert sorted(report.added) == ["ledger.pdf", "notes.txt", "timetable.png"] and report.failed == []
    assert report.ocr == {"ledger.pdf": (2, [3]), "timetable.png": (1, [])}  # page 1 has text: not OCRed
    assert report.summary().endswith("; 3 pages read by OCR; no text found on ledger.pdf p. 3")
    answer = rag.ask("How many storms did the keeper count in the winter of 1893?")
    assert answer.answered and "seventeen storms" in answer.text
    assert {(c.source, c.page) for c in answer.citations} == {("ledger.pdf", 2)}
    ferry = rag.retrieve("When does the island ferry leave the north pier?", k=1)[0]
    assert (ferry.source, ferry.page) == ("timetable.png", None) and "leaves the north pier at seven" in ferry.text

    # Cached by content hash like every file: a re-run reads nothing (no page counted as OCRed), so without
    # Tesseract nothing fails.
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(tmp_path / "no-tesseract"))
    again = RAG().ingest()
    assert sorted(again.unchanged) == ["ledger.pdf", "notes.txt", "timetable.png"] and again.failed == []
    assert again.ocr == {} and "OCR" not in again.summary()


def test_a_picture_without_text_is_recorded_once_not_failed_on_every_run(tmp_path, monkeypatch):
    """An icon, a blank scan, a page of scripts: read, no text in them. They are listed apart, not as failures
    (the CLI exits 0), recorded with no chunks, and not read again by the next run; a document that loses its
    text keeps none of its old passages."""
    monkeypatch.setenv("RAG_PARSE_MEMORY_MB", "0")  # in-process, so the second run can take Tesseract away
    docs = tmp_path / "docs"
    docs.mkdir()
    blank_page().save(docs / "icon.png")
    (docs / "menu.html").write_text("<html><script>let x = 1;</script><nav></nav></html>")
    (docs / "notes.txt").write_text(KEEPER + "\n")
    render_page(FERRY).save(docs / "timetable.png")
    report = RAG().ingest()
    assert report.failed == [] and report.ok
    assert sorted(report.no_text) == [("icon.png", "no text, not even by OCR"), ("menu.html", "no text")]
    assert sorted(report.added) == ["icon.png", "menu.html", "notes.txt", "timetable.png"]
    assert "; 2 without text" in report.summary()
    assert {d.source: d.chunks for d in RAG().documents()}["icon.png"] == 0

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(tmp_path / "no-tesseract"))
    again = RAG().ingest()  # nothing is read again: without Tesseract a re-read of the icon would fail
    assert again.failed == [] and again.no_text == [] and again.ocr == {}
    assert sorted(again.unchanged) == ["icon.png", "menu.html", "notes.txt", "timetable.png"]

    blank_page().save(docs / "timetable.png")  # the timetable's picture replaced by a blank one
    result = run_cli()  # the CLI (its own process, Tesseract found): a file without text is no failure
    assert result.returncode == 0, result.stderr
    assert "no text timetable.png: no text, not even by OCR" in result.stderr.splitlines()
    assert "~1 changed" in result.stdout and "; 1 without text" in result.stdout
    assert all(p.source != "timetable.png" for p in RAG().retrieve("When does the island ferry leave?", k=5))


def test_a_rag_open_in_this_process_sees_what_an_ingest_in_another_process_changed(tmp_path):
    """The app serves while `python ingest.py` runs in another terminal. Embedded Chroma caches each vector
    index per process: without reopening, a question met the deleted chunks ("Error finding id", or a passage
    with no source) and never found the new ones by meaning."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ferry.txt").write_text(FERRY + "\n")
    (docs / "notes.txt").write_text(KEEPER + "\n")
    rag = RAG()
    rag.ingest()
    question = "When does the island ferry leave the north pier?"
    assert rag.retrieve(question, k=1)[0].source == "ferry.txt"
    client = rag.store.client
    (docs / "notes.txt").write_text(KEEPER + " The lamp was painted white.\n")
    rag.ingest()  # this process's own change: its client is current, nothing is reopened
    assert rag.retrieve(question, k=1)[0].source == "ferry.txt" and rag.store.client is client
    (docs / "ferry.txt").unlink()
    (docs / "bus.txt").write_text("The airport bus leaves the harbour terminal every twenty minutes.\n")
    result = run_cli()
    assert result.returncode == 0 and "+1 added" in result.stdout and "-1 removed" in result.stdout, result.stdout
    for fusion in ("dense", "rrf", "dense"):
        passages = rag.search("When does the airport bus leave the harbour?", k=5, fusion=fusion).passages
        assert [p.source for p in passages] == ["bus.txt", "notes.txt"], fusion
        assert "dense" in passages[0].ranks
    assert rag.store.client is not client  # reopened once, for the other process's change
    assert "ferry.txt" not in {p.source for p in rag.retrieve(question, k=5)}
    assert "ferry.txt" not in {d.source for d in rag.documents()}


def test_without_tesseract_a_scan_fails_in_one_line_and_the_rest_is_ingested(tmp_path, monkeypatch):
    """The scan is not stored as empty: once Tesseract is installed, the next ingest reads it."""
    monkeypatch.setenv("RAG_PARSE_MEMORY_MB", "0")  # in-process: the patched path holds there
    scanned_docs(tmp_path / "docs")
    installed = pytesseract.pytesseract.tesseract_cmd
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(tmp_path / "no-tesseract"))
    report = RAG().ingest()
    assert report.added == ["notes.txt"]
    missing = (
        "needs OCR, but Tesseract is not installed (apt-get install tesseract-ocr tesseract-ocr-eng "
        "tesseract-ocr-chi-sim tesseract-ocr-chi-tra); not read"
    )
    assert sorted(report.failed) == [("ledger.pdf", missing), ("timetable.png", missing)]
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", installed)
    report = RAG().ingest()
    assert sorted(report.added) == ["ledger.pdf", "timetable.png"] and report.failed == []
    assert report.ocr == {"ledger.pdf": (2, [3]), "timetable.png": (1, [])}
