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
