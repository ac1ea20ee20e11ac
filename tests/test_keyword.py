"""The keyword (BM25) tokenizer and index: stemming, stop words, and text written without spaces (logic only;
the index beside a real store is covered by the ingest tests)."""

from __future__ import annotations

from rag.index.keyword import KeywordIndex
from rag.text import tokenize


def test_english_is_stemmed_without_stop_words():
    assert tokenize("The licenses are issued") == ["licens", "issu"]
    assert tokenize("license issue") == ["licens", "issu"]  # so "issued licenses" meets "license issue"


def test_chinese_runs_become_overlapping_pairs():
    assert tokenize("金融中心") == ["金融", "融中", "中心"]
    assert tokenize("港") == ["港"]
    assert tokenize("HashKey 在香港") == ["hash", "key", "hashkey", "在香", "香港"]


def test_bm25_finds_chinese_text_by_a_phrase_inside_it():
    """Before pairs, a whole Chinese sentence was one token, so no query short of the sentence matched."""
    index = KeywordIndex.build(
        ["hk", "tokyo", "apt"], ["香港是一个国际金融中心", "东京的天气很好", "Debian installs packages with APT"], "v1"
    )
    assert index.search("国际金融中心在哪里?", 1)[0][0] == "hk"
    assert index.search("东京天气", 1)[0][0] == "tokyo"
    assert index.search("How are packages installed?", 1)[0][0] == "apt"


def test_building_an_index_logs_nothing_below_warning():
    """bm25s sets its logger to DEBUG on import; after rag builds an index it no longer logs at DEBUG/INFO."""
    import logging

    import bm25s  # noqa: F401 - its import is what sets the level

    logging.getLogger("bm25s").setLevel(logging.DEBUG)
    KeywordIndex.build(["a"], ["some text to index"], "v1")
    assert not logging.getLogger("bm25s").isEnabledFor(logging.INFO)
