"""Reading a question: its content words, the kind of answer it wants, the names it mentions (logic only)."""

from __future__ import annotations

import pytest

from rag.keyword import tokenize
from rag.question import Question


def test_phrasing_words_are_not_terms():
    q = Question.parse("According to the interview, roughly how many people does HashKey employ?")
    assert q.terms == {"peopl", "hashkey", "employ"}


@pytest.mark.parametrize(
    "question, kind",
    [
        ("When did the Middle East station open?", "date"),
        ("In what year was the group established?", "year"),
        ("When finding the MTU with ping, how many bytes are added?", "quantity"),  # "how many" beats "when"
        ("What share of staff is affected?", "quantity"),
        ("What is the current market price of the token?", "money"),
        ("Who started writing the Debian Reference?", "name"),
        ("Which insurance company underwrites the coverage?", "name"),
        ("Why were insurers willing to raise the limit?", None),
        ("Which package installs security updates?", None),
        ("What famous saying did the founder quote?", "quote"),
        ("Which image does the firm use to say rules are not a limit?", "figure"),
        ("Which installation image should I download?", None),  # a disk image, not a figure of speech
    ],
)
def test_kind_of_answer(question, kind):
    assert Question.parse(question).kind == kind


@pytest.mark.parametrize(
    "question, sentence, fits",
    [
        ("When did it open?", "It opened in May this year.", True),
        ("When did it open?", "It opened after a long wait.", False),
        ("In what year was it founded?", "It has grown since last year.", False),
        ("In what year was it founded?", "It was founded in 2018.", True),
        ("How many people work there?", "Over six hundred people work there.", True),
        ("How many people work there?", "People like working there.", False),
        ("What is the price of HSK?", "HSK trades at $2.10.", True),
        ("What is the price of HSK?", "HSK rose 400% this year.", False),
        ("Which insurance company covers HashKey Exchange?", "HashKeyExchange's cover exceeds $1 billion.", False),
        ("Which insurance company covers HashKey Exchange?", "The cover is written by Lloyd's of London.", True),
        ("In which city is the exchange based?", "It has opened, and licences in Europe are underway.", False),
        ("In which city is the exchange based?", "It has opened in Dubai.", True),
        ("Who opened the exchange?", "It opened in May.", False),
        ("Why did it rise?", "Anything at all.", True),  # a "why" question rules no sentence out
        ("What saying did he quote?", 'He quoted: "Denigration is a form of admiration."', True),
        ("What saying did he quote?", "He replied to the article at length.", False),  # no quotation in it
        ("Which image does it use to say rules are no limit?", "Compliance is a bridge, not a ceiling.", True),
        ("Which image does it use to say rules are no limit?", "Insurers raised the limit tenfold.", False),
    ],
)
def test_a_sentence_fits_the_kind_of_answer(question, sentence, fits):
    assert Question.parse(question).fits(sentence) is fits


def test_names_and_words_the_corpus_never_mentions():
    known = set(tokenize("Debian uses GRUB and Postgres; packets are fragmented; clocks are synchronized."))
    pieces = lambda w: {"nginx": 3, "unfragmented": 4, "synchronised": 4, "garbled": 3}.get(w, 1)  # noqa: E731
    q = Question.parse(
        "How do I set up WireGuard and nginx with GRUB and PostgreSQL for unfragmented, synchronised Q1?"
    )
    assert Question.parse("Why is my terminal garbled?").unknown_names(known, pieces) == []  # an English word
    assert q.unknown_names(known) == ["WireGuard"]  # GRUB is known, PostgreSQL begins like Postgres; Q1 is short
    assert q.unknown_names(known, pieces) == ["WireGuard", "nginx"]  # affixes and spellings of known words pass
