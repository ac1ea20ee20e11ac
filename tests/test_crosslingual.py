"""Chinese and English: language rules, script folding, the cross-lingual index with the real multilingual
model (EmbeddingGemma-300M, fetched once into the model cache), and answers in the question's language."""

from __future__ import annotations

import numpy as np
import pytest

from rag import RAG
from rag.answer.question import Question, correct_spelling, focus
from rag.eval.run import has_fact
from rag.index.crosslingual import wanted
from rag.index.keyword import KeywordIndex
from rag.language import language, simplified
from rag.messages import say, variant
from rag.retrieval.hybrid import XL_FLOOR
from rag.text import tokenize

# Two small documents written for this test: one English, one Chinese, about different things.
ENGLISH = (
    "Harbour Lines Ferry Company\n\n"
    "The night ferry to Lamma Island leaves the Central pier at 23:30 every day. "
    "Bicycles are carried free of charge on the lower deck. "
    "Tickets bought with a stored-value card cost HK$22, and paper tickets HK$24.\n\n"
    "Lost property is kept at the Central pier office for 30 days."
)
CHINESE = (
    "青山图书馆使用说明\n\n"
    "青山图书馆每周一闭馆，其余日子上午九点开放。"
    "每位读者最多可以同时借阅八本书，借期为二十一天。"
    "逾期归还的图书每天罚款两元。"
    "图书馆三楼设有安静自习室，需要提前在网上预约。"
)

# A Traditional Chinese notice, stored in Big5 as Hong Kong and Taiwan files often are.
NOTICE_BIG5 = "颱風警告\n\n八號風球懸掛期間，所有渡輪服務暫停，直至另行通知。"


# --- rules that read language (logic only) ------------------------------------------------------------
def test_language_of_chinese_english_and_other_latin_text():
    assert language("图书馆几点开门？") == "zh"
    assert language("圖書館幾點開門？") == "zh"
    assert language("When does the ferry leave?") == "en"
    assert language("¿Cuándo sale el ferry a Lamma?") == "other"
    assert language("Wann fährt die Fähre und wie viele Fahrräder?") == "other"
    assert language("Is the del key used by the dpkg tool?") == "en"  # a foreign-looking word is not enough


def test_traditional_and_simplified_meet_in_the_keyword_index():
    assert simplified("圖書館") == "图书馆"
    assert tokenize("圖書館") == tokenize("图书馆") == ["图书", "书馆"]
    idx = KeywordIndex.build(["zh", "en"], [CHINESE, ENGLISH], version="t:1")
    assert idx.search("圖書館借閱幾本書", 1)[0][0] == "zh"
    assert idx.known_share("圖書館借閱") > 0.9  # a Chinese question over Chinese text
    assert idx.known_share("渡轮几点开") < 0.5  # a Chinese question over English text shares no words


def test_no_english_stemming_on_other_languages():
    assert "fährt" in tokenize("Wann fährt die Fähre?")  # German left whole: no English stemmer, no stop list
    assert "ferri" in tokenize("When do the ferries leave?")  # English still stemmed


def test_english_question_rules_do_not_fire_on_chinese():
    q = Question.parse("Lamma渡轮晚上几点出发？")
    assert q.names == ["Lamma"]  # not the whole Chinese run glued to the Latin word
    assert Question.parse("图书馆每次最多借几本书？").kind == "quantity"
    assert Question.parse("谁负责图书馆？").kind == "name"
    assert Question.parse("Wie viele Bücher?").kind is None  # English kind patterns only read English
    assert focus("你好！请问图书馆几点开门？") == "请问图书馆几点开门？"
    assert correct_spelling("Wie viele Bucher darf man leihen?", {"buch"}, lambda w: 1) == (
        "Wie viele Bucher darf man leihen?"
    )


def test_every_latin_word_of_a_chinese_question_is_a_name():
    """Chinese text switches to Latin letters for names, commands and acronyms: a lower-case command the
    corpus never mentions means it is not about it, which an English question's plain word would not."""
    known = {"lamma", "ferri", "pier", "wg0.conf", "etc"}
    q = Question.parse("怎么用 ferrytrack 查看 Lamma 渡轮的位置？配置在 /etc/wg0.conf 吗？")
    assert q.names == ["ferrytrack", "Lamma", "etc", "wg0.conf"]  # a path read part by part
    assert q.unknown_names(known) == ["ferrytrack"]
    assert Question.parse("Can ferrytrack show where the Lamma ferry is?").unknown_names(known) == []
    assert Question.parse("Lamma 的 ferries 几点开？").unknown_names(known) == []  # a plural of a known word


def test_messages_follow_the_question_script():
    assert variant("How late?") == "en"
    assert variant("图书馆几点开门？") == "hans"
    assert variant("圖書館幾點開門？") == "hant"
    assert say("not_found", "圖書館幾點開門？") != say("not_found", "图书馆几点开门？") != say("not_found", "When?")


def test_facts_may_touch_chinese_characters_but_not_latin_letters():
    assert has_fact("每位读者最多可以借阅8本书", ["8"])
    assert not has_fact("最多可以借阅18本书", ["8"])
    assert has_fact("每位讀者最多", ["每位读者"])  # either script


def test_auto_mode_embeds_english_only_while_the_store_is_small():
    from rag.config import Settings

    langs = {"a": "en", "b": "zh", "c": "other"}
    assert wanted(Settings(crosslingual="auto", crosslingual_max_chunks=3), langs) == {"a", "b", "c"}
    assert wanted(Settings(crosslingual="auto", crosslingual_max_chunks=2), langs) == {"b"}
    assert wanted(Settings(crosslingual="on", crosslingual_max_chunks=0), langs) == {"a", "b", "c"}
    assert wanted(Settings(crosslingual="off"), langs) == set()


# --- the real multilingual model over a real store --------------------------------------------------------
@pytest.fixture(scope="module")
def bilingual(tmp_path_factory):
    root = tmp_path_factory.mktemp("bilingual")
    docs = root / "docs"
    docs.mkdir()
    (docs / "ferry.txt").write_text(ENGLISH, encoding="utf-8")
    (docs / "library.txt").write_text(CHINESE, encoding="utf-8")
    (docs / "notice.txt").write_bytes(NOTICE_BIG5.encode("big5"))
    rag = RAG(docs_dir=docs, store_dir=root / "store", crosslingual="auto")
    report = rag.ingest()
    return rag, report


def test_ingest_builds_the_cross_lingual_index(bilingual):
    rag, report = bilingual
    assert report.derived and "cross-lingual index" in report.derived
    xl = rag.store.xl()
    assert xl is not None and xl.count() == rag.store.count()
    assert int((xl.metadata or {})["chinese"]) == 2  # library.txt and notice.txt, one chunk each


def test_chinese_question_finds_and_quotes_the_english_passage(bilingual):
    rag, _ = bilingual
    hits = rag.search("去南丫岛的夜班渡轮几点开？")
    assert hits.passages[0].source == "ferry.txt"
    assert "xl" in hits.passages[0].ranks
    answer = rag.ask("去南丫岛的夜班渡轮几点开？")
    assert answer.answered and "23:30" in answer.text
    assert answer.citations[0].source == "ferry.txt"


def test_english_question_finds_the_chinese_passage(bilingual):
    rag, _ = bilingual
    hits = rag.search("How many books can a reader borrow at the library at once?")
    assert hits.passages[0].source == "library.txt"
    assert "xl" in hits.passages[0].ranks  # the English model alone cannot read the Chinese passage


def test_an_english_question_takes_only_chinese_passages_the_multilingual_model_finds_close(bilingual):
    """The cross-lingual index's first hit is some Chinese passage whatever an English question asks; it
    counts only above XL_FLOOR, so a question about the ferry gets no library passage by that rank alone."""
    rag, _ = bilingual
    hits = rag.search("How much does a paper ticket for the night ferry cost?").passages
    assert hits[0].source == "ferry.txt"
    assert all(p.scores["xl"] >= XL_FLOOR for p in hits if "xl" in p.ranks)
    library = [p for p in hits if p.source == "library.txt"]
    assert not library or "xl" not in library[0].ranks  # its similarity is far below the floor
    asked = rag.search("How many books can a reader borrow at the library at once?").passages[0]
    assert asked.source == "library.txt" and asked.scores["xl"] >= XL_FLOOR


def test_an_english_question_counts_keyword_hits_by_the_words_the_corpus_knows(bilingual):
    """Across languages only names and commands can match words: wherever the cross-lingual index is
    searched, every passage's keyword rank weighs the share of the question's words the corpus uses at all
    (in a Chinese corpus an English passage is a table or code whose words match by accident)."""
    rag, _ = bilingual
    s, keyword = rag.settings, set()
    library, ferry = "How many books can a reader borrow from the library at once?", "Ferry tickets for adults?"
    for question in (library, ferry):
        hits = rag.search(question)
        share = rag.keyword_index().known_share(question)
        assert 0 < share < 1
        for p in hits.passages:
            weights = {"dense": s.dense_weight, "xl": s.dense_weight, "bm25": share}
            assert p.scores["fused"] == pytest.approx(sum(weights[n] / (s.rrf_k + r) for n, r in p.ranks.items()))
        keyword |= {language(p.text) for p in hits.passages if "bm25" in p.ranks}
    assert keyword == {"en", "zh"}  # the case this test is about happened, in both languages
    assert rag.search(library).passages[0].source == "library.txt"


def test_spelling_is_not_corrected_against_a_corpus_mostly_in_another_language(bilingual):
    """Two of the three chunks are Chinese: the corpus's few English words are no dictionary, so an English
    word it lacks ("cast") is left alone, though a word one letter away ("cost") is there."""
    rag, _ = bilingual
    assert rag._retriever().chinese_share() == pytest.approx(2 / 3)
    question = "When does the nigth ferry leave?"
    index = rag.keyword_index()
    assert "night" in correct_spelling(question, index.doc_freq.keys(), lambda w: 1)  # what the rule would do
    assert rag.standalone(question) == question
    assert rag.standalone("Hi! When does the nigth ferry leave?") == question  # the greeting still goes


def test_a_chinese_question_naming_a_command_the_documents_never_mention_is_declined(bilingual):
    rag, _ = bilingual
    answer = rag.ask("怎么用 ferrytrack 查看夜班渡轮现在开到哪里了？")
    assert not answer.answered and "ferrytrack" in answer.text
    answer = rag.ask("去 Lamma 岛的夜班渡轮几点开？")  # a name the documents use: answered as before
    assert answer.answered and "23:30" in answer.text


def test_traditional_question_over_simplified_document(bilingual):
    rag, _ = bilingual
    answer = rag.ask("圖書館的借期是多少天？")
    assert answer.answered
    assert "二十一天" in answer.text and answer.citations[0].source == "library.txt"


def test_big5_traditional_document_found_by_a_simplified_question(bilingual):
    rag, _ = bilingual
    hits = rag.search("八号风球的时候渡轮还开吗？")
    assert hits.passages[0].source == "notice.txt"
    assert "八號風球" in hits.passages[0].text  # decoded from Big5, quoted in its own script
    answer = rag.ask("八号风球的时候渡轮还开吗？")
    assert answer.answered and "暫停" in answer.text


def test_chinese_sentences_are_quoted_whole():
    from rag.text import split_sentences

    text = "第一句。第二句！第三句？第四句；第五句"
    assert [text[s:e] for s, e in split_sentences(text)] == ["第一句。", "第二句！", "第三句？", "第四句；", "第五句"]


def test_unanswerable_chinese_question_is_declined_in_chinese(bilingual):
    rag, _ = bilingual
    answer = rag.ask("图书馆的馆长叫什么名字？")
    if answer.answered:  # the reader may quote a library sentence; it must then come from the library text
        assert all(c.source == "library.txt" for c in answer.citations)
    else:
        assert answer.text.startswith(say("not_found", "图书馆的馆长叫什么名字？"))


def _ferry_and_library(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ferry.txt").write_text(ENGLISH, encoding="utf-8")
    (docs / "library.txt").write_text(CHINESE, encoding="utf-8")
    return docs


def test_deleting_a_document_removes_its_cross_lingual_vectors(tmp_path):
    docs = _ferry_and_library(tmp_path)
    rag = RAG(docs_dir=docs, store_dir=tmp_path / "store", crosslingual="auto")
    rag.ingest()
    before = rag.store.xl_ids()
    (docs / "library.txt").unlink()
    rag.ingest()
    after = rag.store.xl_ids()
    assert after and after < before
    assert after == {cid for cid, _, _ in rag.store.all_chunks()}
    off = RAG(docs_dir=docs, store_dir=tmp_path / "store", crosslingual="off")
    summary = off.ingest().summary()
    assert off.store.xl_ids() == set()
    assert f"cross-lingual index: off ({len(after)} removed)" in summary and "left out" not in summary
    answer = off.ask("去南丫岛的夜班渡轮几点开？")
    assert not answer.answered and say("no_crosslingual", "去南丫岛的夜班渡轮几点开？") in answer.text


def test_a_rebuild_keeps_the_cross_lingual_vectors_of_unchanged_chunks(tmp_path, monkeypatch):
    """The multilingual model embeds ~17 times slower than the English one: a new chunking (a rag upgrade)
    used to drop the index and embed every chunk again. Each vector records what it embedded, so a rebuild
    embeds only chunks whose text changed."""
    import rag.config

    docs = _ferry_and_library(tmp_path)
    first = RAG(docs_dir=docs, store_dir=tmp_path / "store", crosslingual="on")
    first.ingest()
    before = first.store.xl_keys()
    assert before and all(before.values())
    monkeypatch.setattr(rag.config, "CHUNKER_VERSION", rag.config.CHUNKER_VERSION + 1)
    again = RAG(docs_dir=docs, store_dir=tmp_path / "store", crosslingual="on")
    report = again.ingest()
    assert report.rebuilt and report.embedded == 0 and report.reused == report.chunks
    assert f"cross-lingual index: {len(before)} chunks (0 embedded, 0 removed)" in report.summary()
    assert again.store.xl_keys() == before
    assert again.search("去南丫岛的夜班渡轮几点开？").passages[0].source == "ferry.txt"  # still searched


def test_query_vectors_use_the_models_query_prompt(bilingual):
    rag, _ = bilingual
    e = rag.xl_embedder
    q, d = e.embed(["night ferry"], role="query")[0], e.embed(["night ferry"], role="document")[0]
    assert np.isclose(np.linalg.norm(q), 1.0, atol=1e-3)
    assert float(q @ d) < 0.999  # EmbeddingGemma prefixes queries and documents differently
