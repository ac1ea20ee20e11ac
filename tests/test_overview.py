"""Whole-document questions (rag/answer/overview.py): recognised, answered from the whole document, cited.

Logic tests of the parts, then a real store (Chroma, the packaged MiniLM) of three invented documents.
"""

from __future__ import annotations

import re
from unittest import mock

import numpy as np
import pytest

from rag import RAG
from rag.answer import overview
from rag.text import tokenize
from tests.test_answer import check_citations

APIARY = [
    "The Cheung Chau apiary keeps fourteen hives of black bees on the hill above the ferry pier.",
    "Each hive is inspected every Saturday morning for queen cells, mites and signs of swarming.",
    "Honey is collected in late summer, when the lychee blossom has finished and the frames are capped.",
    "The beekeepers smoke the entrance gently before lifting the lid, because calm bees sting less.",
    "A volunteer rota keeps the water troughs full during the dry season so that foragers stay close.",
    "Wax from the cappings is melted down and sold to a candle maker in Mui Wo every winter.",
    "Visitors may watch an inspection from behind the fence but must not wear strong perfume.",
    "The apiary lost three colonies to a typhoon in 2019 and rebuilt them from local swarms.",
]
LIGHTHOUSE = [
    "The lighthouse on Skellig Rock was automated in 1987 and its keepers left the island.",
    "Its lamp flashes white twice every ten seconds and can be seen twenty-two nautical miles away.",
    "Supplies reach the rock by boat only when the swell is below two metres.",
    "The old keepers' quarters are now a small museum about life on the rock.",
    "Puffins nest in burrows on the slopes below the tower from April to August.",
    "A diesel generator and a bank of batteries keep the light burning during storms.",
]
ORCHARD = [
    "The orchard at Glenmore grows forty varieties of apple on a south-facing slope.",
    "Its cider is pressed in October and left to ferment in oak barrels over the winter.",
    "A neighbour's hives are brought into the orchard in spring so that the blossom is pollinated.",
    "Pruning is done in February, when the trees are dormant and the cuts heal cleanly.",
    "Windfalls are fed to the pigs, which also keep the grass short between the rows.",
    "The orchard sells its honey and its apple juice at the Saturday market in the village.",
]


def _doc(lines: list[str]) -> str:
    return "\n\n".join(" ".join(lines[i : i + 2]) for i in range(0, len(lines), 2)) + "\n"


@pytest.fixture(scope="module")
def rag(tmp_path_factory) -> RAG:
    root = tmp_path_factory.mktemp("overview")
    docs = root / "docs"
    docs.mkdir()
    (docs / "apiary-notes.md").write_text(_doc(APIARY), encoding="utf-8")
    (docs / "skellig-lighthouse.txt").write_text(_doc(LIGHTHOUSE), encoding="utf-8")
    (docs / "glenmore-orchard.txt").write_text(_doc(ORCHARD), encoding="utf-8")
    engine = RAG(docs_dir=docs, store_dir=root / "store", chunk_size=64, chunk_overlap=8)
    engine.ingest()
    return engine


# --- logic -------------------------------------------------------------------------------------------
TITLES = {
    "guides/usrguide.pdf": "LaTeX for authors",
    "guides/fntguide.pdf": "LaTeX font selection",
    "notes.md": "Notes",
}


def test_a_document_is_named_by_its_file_name_with_or_without_extension_or_by_its_title():
    assert overview.name_document("Summarise usrguide.pdf please", TITLES).chosen == "guides/usrguide.pdf"
    assert overview.name_document("main points of fntguide", TITLES).chosen == "guides/fntguide.pdf"
    assert overview.name_document("what does the font selection guide cover", TITLES).chosen == "guides/fntguide.pdf"
    assert overview.name_document("sum up the notse", TITLES).chosen == "notes.md"  # one typo


def test_words_every_document_shares_leave_the_name_ambiguous_and_say_which():
    named = overview.name_document("Summarise the LaTeX guide", TITLES)
    assert named.chosen is None and named.candidates == ["guides/fntguide.pdf", "guides/usrguide.pdf"]
    assert overview.name_document("Summarise the thing", TITLES) == overview.Named(None, [])


def test_mmr_prefers_central_rows_that_are_not_repeats():
    v = np.array([[0.9, 0.44], [0.9, 0.44], [0.8, -0.6], [0.0, 1.0]])
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    assert overview.mmr(v, np.array([1.0, 0.0]), 2) == [0, 2]  # the repeat of row 0 is passed over


def test_only_prose_is_quoted_in_a_summary():
    assert overview._prose("The apiary keeps fourteen hives of bees on the hill.")
    assert not overview._prose("2.2 Using docstrip and doc . . . . . . . . 5")
    assert not overview._prose("\\renewcommand{\\rmdefault}{ptm} \\renewcommand{\\sfdefault}{phv} sets fonts")
    assert not overview._prose("T1 extended text\nOML math italic\nOMS math symbols for text")


def test_a_listing_topic_is_the_question_without_its_frame_words():
    router = overview.Router(lambda texts: np.zeros((len(texts), 384), dtype=np.float32))
    assert router.topic("Which files talk about swarm control?") == "swarm control"
    assert router.topic("哪些文档提到了 lychee？") == "lychee"
    assert router.topic("Which documents mention “queen cells”?") == "queen cells"


def test_the_summary_length_grows_with_the_document_within_bounds():
    assert [overview.summary_length(n) for n in (1, 8, 20, 400)] == [3, 4, 7, 8]


def test_the_router_sends_whole_document_questions_and_leaves_ordinary_ones(rag):
    router = rag.router()
    assert router.intent("Could you summarise apiary-notes.md for me?")[0] == "summary"
    assert router.intent("请总结一下这份笔记")[0] == "summary"
    assert router.intent("Which of my files talk about pruning?")[0] == "mention"
    assert router.intent("How many hives does the apiary keep?")[0] == "question"
    assert router.intent("When is the cider pressed?")[0] == "question"


def test_the_router_reads_the_vectors_it_was_fitted_on_whatever_the_store_embeds_with():
    """The router's weights read MiniLM's 384-d vectors; a store embedded with another model (768-d
    EmbeddingGemma here, mpnet for a user who set RAG_EMBED_MODEL) leaves it on MiniLM. Regression: with a
    768-d model every question failed in the router (a shape mismatch)."""
    rag = RAG(embed_model="embeddinggemma-300m")
    assert rag.router().intent("Could you summarise apiary-notes.md for me?")[0] == "summary"
    assert rag.router().intent("When is the cider pressed?")[0] == "question"
    assert rag.embedder._model is None  # the store's model was never asked


def test_an_ordinary_chinese_question_asking_which_things_is_not_a_listing(rag):
    """ "哪些" (which ones) asks for options, tools or steps as often as for documents: only a question about
    documents (文件, 文档) is a listing. Regression: "打包之前应该设置哪些环境变量？" was answered "没有文件提到…"."""
    router = rag.router()
    assert router.intent("养蜂之前要准备哪些工具？")[0] == "question"
    assert router.intent("检查蜂箱时要注意哪些事项？")[0] == "question"
    assert router.intent("哪些文件提到了蜂王？")[0] == "mention"


# --- a real store --------------------------------------------------------------------------------------
def _body(text: str) -> str:
    return text.rsplit("\n\n", 1)[0]


def test_a_summary_quotes_the_whole_document_in_reading_order_each_sentence_cited(rag):
    answer = rag.ask("Give me a summary of apiary-notes.md")
    chunks = next(d.chunks for d in rag.documents() if d.source == "apiary-notes.md")
    assert answer.answered and answer.intent == "summary"
    assert answer.text.endswith(
        f"Covered all {chunks} passages of apiary-notes.md (summary of {len(answer.citations)} sentences)."
    )
    assert 3 <= len(answer.citations) <= 8 and {c.source for c in answer.citations} == {"apiary-notes.md"}
    check_citations(answer)
    body = _body(answer.text)
    for c in answer.citations:  # each sentence is its citation's quote, verbatim
        assert f"{c.quote} [{c.n}]" in body
    starts = [c.quote_start for c in answer.citations]
    assert starts == sorted(starts)  # reading order
    assert len({c.quote for c in answer.citations}) == len(answer.citations)


def test_a_summary_can_be_asked_within_a_scope_without_naming_the_document(rag):
    answer = rag.ask("summarize this document", documents=["skellig-lighthouse.txt"])
    assert answer.intent == "summary" and {c.source for c in answer.citations} == {"skellig-lighthouse.txt"}
    assert answer.scope.startswith("skellig-lighthouse.txt")


def test_an_unnamed_document_among_several_is_asked_for_in_one_line(rag):
    answer = rag.ask("Summarize the document")
    assert not answer.answered and answer.intent == "summary" and "\n" not in answer.text
    assert all(s in answer.text for s in ("apiary-notes.md", "glenmore-orchard.txt", "skellig-lighthouse.txt"))


def test_a_listing_names_every_file_that_mentions_the_term_with_a_cited_sentence(rag):
    answer = rag.ask("Which documents mention honey?")
    assert answer.intent == "mention" and answer.text.startswith("2 of 3 documents mention “honey”")
    assert sorted(c.source for c in answer.citations) == ["apiary-notes.md", "glenmore-orchard.txt"]
    assert all("honey" in c.quote.lower() for c in answer.citations)
    check_citations(answer)


def test_a_listing_of_a_term_no_document_has_says_so(rag):
    answer = rag.ask("Which files talk about submarines?")
    assert answer.intent == "mention" and not answer.answered and "submarines" in answer.text


def test_what_a_document_says_about_a_topic_is_answered_from_that_document_only(rag):
    answer = rag.ask("What does glenmore-orchard.txt say about the hives?")
    assert answer.intent == "about" and answer.citations
    assert {c.source for c in answer.citations} == {"glenmore-orchard.txt"}


def test_ordinary_questions_are_answered_exactly_as_without_routing(rag):
    for q in ("How often are the hives inspected?", "How far away can the light be seen?"):
        routed = rag.ask(q)
        with mock.patch.object(overview, "route", lambda *a, **k: overview.Routed("question")):
            plain = rag.ask(q)
        assert routed.intent == "question" and routed.text == plain.text and routed.answered


def test_a_model_summary_keeps_only_sentences_verified_against_their_passage(rag):
    from tests.llm_servers import ChatServer

    def reply(messages: list[dict]) -> str:
        """Restate the first sentence of passage 1 and invent one about the moon."""
        first = re.search(r"^\[1\] \(.*?\)\n(.*?[.!?])\s", messages[-1]["content"], re.S | re.M)
        assert first
        return f"{first.group(1)} [1]. The moon landing was filmed in a studio in 1962 [1]."

    with ChatServer("openai", reply=reply) as server:
        llm_rag = rag.with_settings(llm="openai", llm_base_url=server.url, llm_model="tiny")
        answer = llm_rag.ask("Summarize skellig-lighthouse.txt")
        calls = len(server.requests)
    assert answer.answered and answer.backend.endswith(", map-reduce") and calls >= 1
    assert "moon" not in answer.text and "Covered" in answer.text
    assert all(s.supported for s in answer.sentences) and answer.citations
    assert {c.source for c in answer.citations} == {"skellig-lighthouse.txt"}
    check_citations(answer)


@pytest.mark.slow
def test_a_summary_by_the_real_local_model_keeps_only_what_its_passages_support(rag):
    """The packaged SmolLM2 run in-process writes the map step: whatever it writes, the summary that comes
    back holds only sentences verified against the passage they cite, all from the document asked about."""
    answer = rag.with_settings(llm="local").ask("Summarize skellig-lighthouse.txt")
    assert answer.intent == "summary" and answer.answered
    assert answer.backend.endswith((", map-reduce", "extractive fallback"))
    assert answer.sentences and all(s.supported for s in answer.sentences)
    assert {c.source for c in answer.citations} == {"skellig-lighthouse.txt"}
    assert "Covered" in answer.text
    check_citations(answer)
    by_n = {c.n: c for c in answer.citations}
    for s in answer.sentences:  # checked here apart from rag's verifier: most of its words are in its passage
        words, passage = set(tokenize(s.text)), set(tokenize(by_n[s.citations[0]].text))
        assert len(words & passage) >= 0.6 * len(words), s.text


def test_a_model_summary_with_nothing_verified_falls_back_to_quoting(rag):
    from tests.llm_servers import ChatServer

    with ChatServer("openai", reply=lambda m: "Bananas are the capital of Peru [1].") as server:
        answer = rag.with_settings(llm="openai", llm_base_url=server.url, llm_model="tiny").ask(
            "Summarize glenmore-orchard.txt"
        )
    assert answer.answered and answer.backend.endswith("extractive fallback") and "Bananas" not in answer.text
    check_citations(answer)


def test_a_listing_of_a_phrase_needs_most_of_its_words_in_one_passage(rag):
    """Both notes say "Saturday", only the orchard's says "Saturday market": one word of two is no mention."""
    answer = rag.ask("Which of the documents refer to the Saturday market?")
    assert [c.source for c in answer.citations] == ["glenmore-orchard.txt"]
    assert "market" in answer.citations[0].quote


# --- a document named by its title; rag's lines in the question's language; contents lines --------------
HANDBOOK = """Lichens and mosses of the Atlantic coastline

Contents
1 Where lichens grow . 2
2 Sea ivory and its cousins . 4
3 Reading the splash zone . 6

1 Where lichens grow

Lichens cover the granite boulders above the high-water mark, where spray wets them twice a day.

They grow slowly, often less than a millimetre a year, so a bare rock tells how recently it was moved.

2 Sea ivory and its cousins

Sea ivory is a pale tufted lichen that prefers the north faces of rocks facing the prevailing wind.

Mosses crowd into the shaded cracks between boulders, where rainwater lingers after each shower.

3 Reading the splash zone

The splash zone is the band of rock wetted by breaking waves but never covered by the tide.

Orange lichens mark its upper edge, and black tar lichen marks its lower edge close to the barnacles.
"""
TIDES = """Tide tables and harbour pilotage for small boats

Contents
1 Reading a tide table . 2
2 The splash zone . 3
3 Entering the harbour . 5

1 Reading a tide table

High water comes about fifty minutes later each day, and springs follow the full and new moon.

Skippers should add the local correction printed under each table before planning a passage.

3 Entering the harbour

Small boats keep to the starboard side of the channel and give way to the ferry at all times.

The harbour master listens on channel twelve and answers calls from dawn until ten at night.
"""
KILNS = """Building and firing wood-fired pottery kilns

A wood-fired kiln needs dry split timber, stacked under cover for at least one year before firing.

The firebox is stoked every few minutes once the chamber passes a dull red glow.

Ash from the burning wood settles on the pots and melts into a glaze on their shoulders.

A firing lasts two days and two nights, and the kiln takes another three days to cool.
"""


@pytest.fixture(scope="module")
def shelf(tmp_path_factory) -> RAG:
    from tests.conftest import ingested

    files = {"lichens.md": HANDBOOK, "tides.txt": TIDES, "kilns.txt": KILNS}
    return ingested(tmp_path_factory.mktemp("shelf"), files, chunk_size=64, chunk_overlap=8)


def test_the_words_that_name_a_document_by_its_title_are_masked_before_routing(shelf):
    known = overview.titles(shelf.store)
    assert known["lichens.md"] == "Lichens and mosses of the Atlantic coastline"
    asked = "What is the lichens and mosses guide about?"
    assert overview.mask_named(asked, known) == "What is the file guide about?"
    # a question whose every word is the title's subject is left as asked: it asks about the subject
    assert overview.mask_named("What are tide tables?", known) == "What are tide tables?"
    answer = shelf.ask(asked)
    assert answer.intent == "summary" and answer.answered
    assert {c.source for c in answer.citations} == {"lichens.md"}
    check_citations(answer)


def test_ordinary_questions_over_documents_with_long_titles_stay_ordinary(shelf):
    for q in (
        "How long does a firing of the wood-fired kiln last?",
        "Which side of the channel do small boats keep to?",
    ):
        assert shelf.ask(q).intent == "question", q


def test_a_chinese_summary_gets_its_coverage_line_in_chinese(rag):
    chunks = next(d.chunks for d in rag.documents() if d.source == "apiary-notes.md")
    answer = rag.ask("请总结 apiary-notes.md")
    assert answer.intent == "summary" and answer.answered
    assert answer.text.endswith(f"已读完 apiary-notes.md 的全部 {chunks} 个段落（摘要共 {len(answer.citations)} 句）。")
    assert "Covered" not in answer.text
    traditional = rag.ask("請總結 apiary-notes.md")
    assert traditional.text.endswith(
        f"已讀完 apiary-notes.md 的全部 {chunks} 個段落（摘要共 {len(traditional.citations)} 句）。"
    )


def test_which_document_is_asked_in_the_language_of_the_question(rag):
    answer = rag.ask("请总结一下这份文件")
    assert answer.intent == "summary" and not answer.answered and "\n" not in answer.text
    assert answer.text.startswith("要总结哪份文件？")
    assert all(s in answer.text for s in ("apiary-notes.md", "glenmore-orchard.txt", "skellig-lighthouse.txt"))
    named = overview.Named(None, ["a.md", "b.md"])
    assert (
        overview._which(named, ["a.md", "b.md", "c.md"], "總結哪一份？")
        == "您指的是哪份文件？符合的不止一份：a.md、b.md。"
    )


def test_a_chinese_listing_over_english_documents_looks_for_its_latin_words_and_answers_in_chinese(rag):
    answer = rag.ask("哪些文档提到了 lychee 花？")
    assert answer.intent == "mention" and answer.answered
    assert [c.source for c in answer.citations] == ["apiary-notes.md"]
    assert answer.text.startswith("3 份文件中有 1 份提到“")
    missing = rag.ask("哪些文档提到了 submarines？")
    assert not missing.answered and missing.text.startswith("没有文件提到“submarines”")


def test_contents_lines_are_told_from_sentences():
    assert overview.contents_line("4 Hyphenation configuration .")
    assert overview.contents_line("2.2 Using docstrip . . . . . . 5")
    assert overview.contents_line("3 Reading the splash zone 6")
    assert not overview.contents_line("The splash zone is the band of rock wetted by breaking waves.")
    assert not overview.contents_line("2.1 Fonts The default fonts are the Computer Modern families.")


def test_a_listing_cites_a_sentence_of_the_file_before_its_contents_line(shelf):
    answer = shelf.ask("Which documents mention the splash zone?")
    assert answer.intent == "mention" and answer.answered
    by_source = {c.source: c for c in answer.citations}
    assert set(by_source) == {"lichens.md", "tides.txt"}
    # the handbook's contents line comes first in it; its sentences about the splash zone are cited instead
    assert not overview.contents_line(by_source["lichens.md"].quote)
    assert "splash zone" in by_source["lichens.md"].quote.lower()
    # the tide tables name it only in their contents: that line is all there is to cite
    assert (
        overview.contents_line(by_source["tides.txt"].quote) and "splash zone" in by_source["tides.txt"].quote.lower()
    )
    check_citations(answer)


def test_a_how_to_question_naming_a_chapters_title_words_is_no_listing(tmp_path):
    """Masking the words that name a document can show a question to be about that document, but never one
    asking which documents mention a topic: here the masked form ("如何与 the file 机器文件文件？") read as a
    listing, and the question got "no document mentions …" instead of an answer."""
    from tests.conftest import ingested

    files = {
        "windows-file-server.md": "# 用 Samba 设置 Windows 共享\n\n"
        "在 Linux 服务器上安装 samba 软件包，就可以把目录共享给 Windows 电脑。"
        "共享的目录在 /etc/samba/smb.conf 文件中逐个定义。\n\n"
        "修改配置后运行 systemctl reload smbd，新的共享立即生效。\n",
        "printer.md": "# 设置网络打印机\n\nCUPS 负责管理打印队列。打开浏览器访问 631 端口即可添加打印机。\n",
        "backup.md": "# 备份文件\n\n每天夜里用 rsync 把 /home 目录复制到备份服务器。备份保留三十天。\n",
    }
    rag = ingested(tmp_path, files)
    known = overview.titles(rag.store)
    question = "如何与 Windows 机器共享文件？"
    named = overview.mask_named(overview.masked(question), known)
    assert named != question  # the chapter's title words are masked ...
    router = rag.router()
    assert router.probabilities([named])[0].argmax() == overview.INTENTS.index("mention")  # ... and read as a listing
    assert router.intent(question, lambda: known)[0] == "question"  # as asked, it is a question
    answer = rag.ask(question)
    assert answer.intent == "question" and "没有文件提到" not in answer.text
    # a listing is still one, masked or not
    assert router.intent("哪些文件提到了 smb.conf？", lambda: known)[0] == "mention"
