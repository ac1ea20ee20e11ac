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


def test_a_one_letter_option_is_a_word_of_its_own_with_its_case():
    """A letter alone is no word, so before, "-W" vanished from a question and from the page that explains it."""
    assert tokenize("sphinx-build -W -b html") == ["sphinx", "build", "html", "sphinx-build", "-W", "-b"]
    assert "-a" not in tokenize("e-mail, x-a, 3-5 and a - b")  # a dash inside a word or between spaces is no option
    pages = [
        "-w file: write warnings and errors to the given file.",
        "-W: turn warnings into errors, so the build stops at the first warning.",
        "-a: write all output files; warnings are errors only with another option.",
    ]
    index = KeywordIndex.build(["lower", "upper", "all"], pages, "v1")
    assert index.search("What does -W do to warnings?", 1)[0][0] == "upper"
    assert index.search("What does -w do with warnings?", 1)[0][0] == "lower"


def test_a_capital_letter_standing_alone_is_a_word_with_its_case():
    """A flag, language or drive named by one letter was no word: "the [R] flag" matched every flag alike."""
    assert tokenize("the [R] flag of the C library") == ["flag", "librari", "R", "C"]
    # "A" and "I" are words; an initial's dot, an abbreviation, a letter inside a word or compound are no name.
    assert tokenize("A dog, I said: the U.S. map, an x-ray, Ctrl-C, Type-B") == [
        "dog",
        "said",
        "map",
        "ray",
        "ctrl",
        "type",
        "u.s",
        "x-ray",
        "ctrl-c",
        "type-b",
    ]
    pages = [
        "The [F] flag makes the server answer 403 Forbidden.",
        "The [R] flag makes the server send a redirect to the browser.",
        "The [N] flag makes the rules run again from the top.",
    ]
    index = KeywordIndex.build(["forbidden", "redirect", "again"], pages, "v1")
    assert index.search("What is the R flag for?", 1)[0][0] == "redirect"
    assert index.search("and the N flag?", 1)[0][0] == "again"


def test_building_an_index_logs_nothing_below_warning():
    """bm25s sets its logger to DEBUG on import; after rag builds an index it no longer logs at DEBUG/INFO."""
    import logging

    import bm25s  # noqa: F401 - its import is what sets the level

    logging.getLogger("bm25s").setLevel(logging.DEBUG)
    KeywordIndex.build(["a"], ["some text to index"], "v1")
    assert not logging.getLogger("bm25s").isEnabledFor(logging.INFO)


def test_threads_stemming_at_once_get_the_words_they_asked_for():
    """The app's warm-up and the first question tokenize at the same moment; a stemmer shared between
    threads mixed up their words ("string index out of range" on the first question, seen under load)."""
    import sys
    import threading

    import snowballstemmer

    from rag import text

    words = [
        f"{root}{suffix}{'x' * i}"
        for root in ("nation", "relate", "hope", "condition", "effective", "general")
        for suffix in ("alization", "ational", "fulness", "iveness", "ically", "ments", "ings", "ed")
        for i in range(40)
    ]
    alone = snowballstemmer.stemmer("english")
    expected = {w: alone.stemWord(w) for w in words}
    stem = text._stem.__wrapped__  # uncached: every call stems
    got: dict[str, set[str]] = {w: set() for w in words}
    errors: list[BaseException] = []

    def work(part: list[str]) -> None:
        try:
            for w in part:
                got[w].add(stem(w))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=work, args=(words[i::4] * 3,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert {w: stems for w, stems in got.items() if stems != {expected[w]}} == {}


def test_a_word_of_no_content_never_matches_the_word_sharing_its_stem():
    """ "quite" stems to "quit" and "several" to "sever": every "quite" of a corpus matched "quit"."""
    assert tokenize("quite several") == []
    pages = [
        "The window is quite small, quite plain and quite enough for several files; several panes fit.",
        "To quit, press Ctrl-Q. Every message has a severity.",
    ]
    index = KeywordIndex.build(["window", "keys"], pages, "v1")
    assert [hit[0] for hit in index.search("How do I quit?", 2)] == ["keys"]
    assert [hit[0] for hit in index.search("Which severity?", 2)] == ["keys"]


def test_chinese_question_words_are_not_indexed_and_cut_the_run_they_stand_in():
    """ "什么是 X？" is Chinese's "What is X?": its pairs (什么, 么是) would match every heading that asks what
    something is, as English "what" and "is" would if they were not stop words."""
    assert tokenize("什么是 LVM？") == ["lvm"]
    assert tokenize("如何添加用户") == ["添加", "加用", "用户"]  # no "何添" straddling the question word
    assert tokenize("為什麼要備份") == tokenize("为什么要备份") == ["要备", "备份"]  # Traditional folded first
    index = KeywordIndex.build(
        ["what", "lvm"],
        ["什么是 Debian？Debian 是一个自由的操作系统。", "LVM 把多块磁盘合成一个卷组，再从中划分逻辑卷。"],
        "v1",
    )
    assert index.search("什么是 LVM？", 2)[0][0] == "lvm"
