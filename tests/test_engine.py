"""The facade: first use from several threads, and derived engines that share the heavy parts."""

from __future__ import annotations

import threading

from rag import RAG


def test_first_use_from_several_threads(seed_docs, tmp_path):
    """Pins: three threads' first `search` on a new RAG raced to create Chroma clients ("no attribute
    'bindings'", "Could not connect to tenant")."""
    RAG().ingest()
    rag, errors, results = RAG(), [], []

    def ask():
        try:
            results.append(rag.search("insurance coverage", k=3).passages[0].source)
        except Exception as exc:  # noqa: BLE001 - the test reports whatever a thread raised
            errors.append(repr(exc))

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and results == ["hashkey-interview.txt"] * 3


def test_with_settings_shares_model_and_store(seed_docs):
    rag = RAG()
    rag.ingest()
    other = rag.with_settings(top_k=2)
    assert other.embedder is rag.embedder and other.store is rag.store
    assert len(other.retrieve("insurance coverage")) == 2 and rag.settings.top_k == 5
    elsewhere = rag.with_settings(collection="another")
    assert elsewhere.store is not rag.store and elsewhere.embedder is rag.embedder


def test_chinese_documents_are_found_by_keyword_in_a_real_store(tmp_path):
    """Text without spaces, ingested into embedded Chroma: BM25 alone finds it by a phrase inside it."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "hk.txt").write_text("香港是一个国际金融中心，监管机构要求所有交易平台持牌经营。\n", encoding="utf-8")
    (docs / "weather.txt").write_text("东京今天的天气很好，气温适中。\n", encoding="utf-8")
    (docs / "apt.txt").write_text("Debian installs packages with APT.\n")
    rag = RAG(docs_dir=docs, store_dir=tmp_path / "store")
    rag.ingest()
    hits = rag.search("交易平台持牌", k=3, fusion="bm25").passages
    assert hits and hits[0].source == "hk.txt"
    assert rag.search("东京天气", k=3, fusion="bm25").passages[0].source == "weather.txt"


def test_keyword_index_follows_a_rebuilt_store(tmp_path):
    """A rebuild re-creates the collection, whose ingest counter starts again: the saved BM25 index of the
    old collection had the same counter and was taken as current (stale ids, words of deleted text)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "fruit.txt").write_text("Apples grow in the orchard behind the house.\n")
    (docs / "other.txt").write_text("Debian installs packages with APT.\n")
    RAG(docs_dir=docs, store_dir=tmp_path / "store", chunk_size=100).ingest()
    (docs / "fruit.txt").write_text("Bananas ripen slowly in the warm kitchen.\n")
    report = RAG(docs_dir=docs, store_dir=tmp_path / "store", chunk_size=120).ingest()  # new chunking: rebuild
    assert report.rebuilt
    rag = RAG(docs_dir=docs, store_dir=tmp_path / "store", chunk_size=120)  # a fresh process would do the same
    hits = rag.search("bananas", k=2, fusion="bm25").passages
    assert [p.source for p in hits] == ["fruit.txt"]
    assert set(rag.keyword_index().ids) == {cid for cid, _, _ in rag.store.all_chunks()}


def test_a_section_shared_by_many_documents_is_found_by_its_documents_title(tmp_path):
    """Two manual pages whose OPTIONS sections read the same word for word: a question naming one page ranks
    that page's OPTIONS above the other's, in the dense list and in the keyword list alike (each chunk is
    embedded and indexed under its document's title and its section heading)."""
    from .conftest import ingested

    page = "# {name}(1)\n\n{what}\n\n## OPTIONS\n\n--keep: leave every file where it is and report what would move.\n"
    rag = ingested(
        tmp_path,
        {
            "frobnicate.md": page.format(name="frobnicate", what="Frobnicate tidies a directory tree."),
            "defrost.md": page.format(name="defrost", what="Defrost warms a frozen directory tree."),
        },
    )
    for name in ("frobnicate", "defrost"):
        for fusion in ("dense", "bm25"):
            found = rag.search(f"What does the --keep option of {name} do?", k=4, fusion=fusion).passages
            options = [p.source for p in found if p.section == "OPTIONS"]
            assert options[:1] == [f"{name}.md"], (name, fusion, options)


def test_a_chunk_deep_in_an_options_entry_is_found_by_the_option_it_describes(tmp_path):
    """Two options of one HTML manual page whose long descriptions end alike: the chunk holding each one's
    last paragraph no longer contains the option's name, but is headed by it (`rag.ingest.loaders.Term`),
    so a question naming one option finds that option's paragraph first, in both lists, and cites it there."""
    from .conftest import ingested

    shared = "".join(
        f"<p>Step {n}: the tool compares the file with the copy it made before, checks its size and its "
        f"modification time, and writes a line about it to the log before it moves on to the next file.</p>"
        for n in range(1, 9)
    )
    last = "<p>The renamed copy gets the suffix that is set in the configuration file.</p>"
    lists = "".join(
        f"<h2>{heading}</h2><dl><dt>{option}</dt><dd><p>{what}</p>{shared}{last}</dd></dl>"
        for heading, option, what in (
            ("OPTIONS", "--keep-local", "Keeps the local copy."),
            ("MORE OPTIONS", "--keep-remote", "Keeps the remote copy."),
        )
    )
    page = f"<html><body><h1>tool(1)</h1>{lists}</body></html>"
    rag = ingested(tmp_path, {"tool.html": page}, crosslingual="off")
    for option in ("--keep-local", "--keep-remote"):
        for fusion in ("dense", "bm25"):
            found = rag.search(f"With {option}, where does the suffix of the renamed copy come from?", fusion=fusion)
            ends = [p for p in found.passages if "suffix that is set" in p.text]
            assert ends and option not in ends[0].text  # the case: the paragraph does not name its option
            assert ends[0].section.endswith(f"OPTIONS › {option}"), (option, fusion, [p.section for p in ends])
    answer = rag.ask("With --keep-remote, where does the suffix of the renamed copy come from?")
    assert answer.answered and "suffix that is set" in answer.text
    assert answer.citations[0].location == "tool.html, § MORE OPTIONS › --keep-remote"


def test_a_quote_from_wrapped_text_reads_as_one_line_and_its_citation_stays_exact(tmp_path):
    """A README wrapped at 72 columns: the answer quotes the sentence on one line (no break mid-sentence);
    the citation's quote is the document's own text, line breaks and all, at its offsets."""
    docs = tmp_path / "docs"
    docs.mkdir()
    wrapped = (
        "Tidepool counts the crabs of a rock pool every morning at low tide and\n"
        "writes the count to a log file that the harbour office reads at noon.\n"
    )
    (docs / "README").write_text("Tidepool\n========\n\n" + wrapped + "\n    tidepool --count\n")
    rag = RAG(docs_dir=docs, store_dir=tmp_path / "store", crosslingual="off")
    rag.ingest()
    answer = rag.ask("When does the harbour office read the crab count log?")
    assert answer.answered, answer.text
    assert " ".join(wrapped.split()) + " [1]" in answer.text and "\n" not in answer.text
    quote = answer.citations[0]
    assert quote.quote == wrapped.rstrip("\n")  # two lines, as written
