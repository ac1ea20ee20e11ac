"""Reading a question: its content words, the kind of answer it wants, the names it mentions (logic only)."""

from __future__ import annotations

import pytest

from rag.answer.question import Question, correct_spelling, focus
from rag.text import tokenize


def test_phrasing_words_are_not_terms():
    q = Question.parse("According to the interview, roughly how many people does HashKey employ?")
    assert q.terms == {"interview", "peopl", "hashkey", "hash", "key", "employ"}


@pytest.mark.parametrize(
    "question, kept, dropped",
    [
        ("How can I quit the editor quite quickly?", "quit", None),  # "quite" stems to "quit"
        ("What is the current log level, currently?", "current", None),  # "currently" stems to "current"
        ("Is the match exact?", "exact", None),  # "exactly" stems to "exact"
        ("How are the results sorted?", "sort", None),  # a verb, not "what sort of"
        ("What sort of file is the log?", "log", "sort"),
        ("What kinds of plugins ship with it?", "plugin", "kind"),
        ("Roughly how big does the cache get?", "cach", "rough"),
    ],
)
def test_phrasing_words_are_matched_as_written_not_as_stems(question, kept, dropped):
    """Phrasing words were removed after stemming, so a question lost every word sharing a stem with one."""
    terms = Question.parse(question).terms
    assert kept in terms
    assert dropped is None or dropped not in terms


@pytest.mark.parametrize(
    "question, kind",
    [
        ("When did the Middle East station open?", "date"),
        ("In what year was the group established?", "year"),
        ("When finding the MTU with ping, how many bytes are added?", "quantity"),  # "how many" beats "when"
        ("What share of staff is affected?", "quantity"),
        ("What is the current market price of the token?", "money"),
        ("How much did the second office cost?", "money"),
        ("What is the cost of one seat?", "money"),
        ("What does a yearly licence cost?", "money"),
        ("Which hashing cost does the tool pick when none is given?", None),  # a setting named "cost"
        ("Who began writing this reference manual?", "name"),
        ("Which company underwrites the coverage?", "name"),
        ("Why were insurers willing to raise the limit?", None),
        ("Which package installs security updates?", None),
        ("Which installation image should I download?", None),
        ("Since which release does the tool sign its packages?", "version"),
        ("What is the minimum compiler version it needs?", "version"),
        ("What is the maximum length of a field name?", "quantity"),
        ("Which buffer size does the reader use?", "quantity"),
        ("What is the default port of the debugger?", "quantity"),
        ("In what year did the second version come out?", "year"),  # the year asked for, not the version
        ("这个工具从哪个版本开始支持签名？", "version"),
    ],
)
def test_kind_of_answer(question, kind):
    assert Question.parse(question).kind == kind


@pytest.mark.parametrize(
    "question, sentence, fits",
    [
        ("When did the shop open?", "It opened in May this year.", True),
        ("When did the shop open?", "It opened after a long wait.", False),
        ("In what year was it founded?", "It has grown since last year.", False),
        ("In what year was it founded?", "It was founded in 2018.", True),
        ("How many people work there?", "Over six hundred people work there.", True),
        ("How many people work there?", "People like working there.", False),
        ("What is the price of HSK?", "HSK trades at $2.10.", True),
        ("What is the price of HSK?", "HSK rose 400% this year.", False),
        ("Which company covers HashKey Exchange?", "HashKeyExchange's cover exceeds $1 billion.", False),
        ("Which company covers HashKey Exchange?", "The cover is written by Lloyd's of London.", True),
        ("In which city is the exchange based?", "It has opened in Dubai.", True),
        ("Who opened the exchange?", "It opened in May.", False),
        ("Who opened the exchange?", "Then I opened it, and its I/O was fast.", False),  # "I" is no name
        ("Who opened the exchange?", "Then Ada opened it.", True),
        ("Why did it rise?", "Anything at all.", True),  # a "why" question rules no sentence out
        ("Which release added signing?", "Signing was added in 2.4.1.", True),
        ("Which release added signing?", "New in version 3: signing.", True),
        ("Which release added signing?", "See Section 4.2.1 on signing.", False),  # a section number
        ("Which release added signing?", "Signing is on by default.", False),
    ],
)
def test_a_sentence_fits_the_kind_of_answer(question, sentence, fits):
    assert Question.parse(question).fits(sentence) is fits


def test_only_names_the_corpus_never_mentions_count():
    known = set(tokenize("Debian uses GRUB and Postgres with subprocess.run and ext4; clocks are synchronized."))
    q = Question.parse("How do I set up WireGuard and nginx with GRUB and PostgreSQL on ext4 and btrfs3?")
    # GRUB is known, PostgreSQL begins like Postgres; nginx is a word English does not know either
    assert q.unknown_names(known) == ["WireGuard", "btrfs3", "nginx"]
    assert Question.parse("Can I call subprocess.run or subprocess.spawn?").unknown_names(known) == ["subprocess.spawn"]
    # a greeting, a synonym, a word in another language: capitalised but not a name of anything
    assert Question.parse("Hello! Wie viele Mitarbeiter hat Debian?").unknown_names(known) == []
    # an English compound, a short code, a path's folders or a fraction: not names either
    q = Question.parse("Which fast-growing lines grew in Q1, and why does out/data give 7/2?")
    assert q.unknown_names(known) == []
    names = Question.parse("Does Flask-Migrate or TikZ/PGF work?").unknown_names(known)
    assert names == ["Flask-Migrate", "TikZ", "PGF"]


def test_a_plain_word_is_a_name_only_when_english_does_not_know_it_either():
    known = set(tokenize("Mount the disk, then copy the files to the server with rsync."))
    # words the corpus never uses but English does: a synonym, a compound, a derived word, a typo, a greeting
    for question in (
        "Hello! What is the team's headcount?",
        "Can I log in passwordless to the server?",
        "Is the overclocked disk faster?",
        "How do I chaneg the server?",
        "Are the deduplicated files copied?",
    ):
        assert Question.parse(question).unknown_names(known) == [], question
    # words no dictionary lists: names of tools
    assert Question.parse("Can rsync or kopia copy the disk?").unknown_names(known) == ["kopia"]
    assert Question.parse("Does rsync compress with zstd?").unknown_names(known) == ["zstd"]
    # only English questions: Chinese ones take every Latin word for a name already, others none
    assert Question.parse("Wie viele Dateien kopiert rsync?").unknown_names(known) == []


def test_two_words_run_together_are_a_name_only_when_written_with_a_capital():
    corpus = {"app", "box", "includ"}
    assert Question.parse("Does the box include a Nextcloud app?").unknown_names(corpus) == ["Nextcloud"]
    assert Question.parse("Does the box include a nextcloud app?").unknown_names(corpus) == []
    assert Question.parse("Nextcloud or not: does the box include an app?").unknown_names(corpus) == []  # first word


def test_a_string_value_in_the_askers_own_code_is_data_not_a_name():
    known = set(tokenize("Mount the disk, then copy the files to the server with rsync."))
    assert Question.parse('Why does copy("backup/week.tar") stop at once?').unknown_names(known) == []
    assert Question.parse("Can I mount with label='Photos2024' set?").unknown_names(known) == []
    # the same name asked about, not passed as a value, is still one the corpus never mentions
    assert Question.parse("Can I copy week.tar with Photos2024?").unknown_names(known) == ["week.tar", "Photos2024"]


def test_a_name_one_letter_from_a_corpus_word_is_a_typo_or_plural_not_a_new_name():
    known = set(tokenize("Install SnapStore packages with the UTF-encodings tool on ext4 and Python3.12."))
    # letters swapped, a letter missing, a plural: the corpus does mention them
    assert Question.parse("Is SnapStroe safe, and does SnapStor or UTF-encoding work?").unknown_names(known) == []
    # a name with digits is known only whole (a newer version is exactly what the corpus may not cover)
    assert Question.parse("Does ext5 or Python3.13 work?").unknown_names(known) == ["ext5", "Python3.13"]
    # two letters away is another name
    assert Question.parse("What about SnapTrove?").unknown_names(known) == ["SnapTrove"]


def test_identifiers_are_kept_whole_and_in_parts():
    assert {"functools.cache", "functool", "cach"} <= set(tokenize("Use functools.cache here"))
    assert {"leak-check", "leak", "check"} <= set(tokenize("valgrind --leak-check=yes"))
    assert {"missing_ok", "miss", "ok"} <= set(tokenize("unlink(missing_ok=True)"))
    assert {"getelementbyid", "element"} <= set(tokenize("getElementById"))


def test_a_short_exclamation_before_the_question_is_dropped():
    assert focus("Hi! How do I delete a branch?") == "How do I delete a branch?"
    assert focus("Hello there! Briefly, what is X in Y?") == "Briefly, what is X in Y?"
    assert focus("In Python, how do I sort a list?") == "In Python, how do I sort a list?"  # context stays
    assert focus("Great! Thanks.") == "Great! Thanks."  # no question after it


def test_a_greeting_before_a_comma_is_dropped_but_other_openings_stay():
    assert focus("hi there, how do i rename a branch?") == "how do i rename a branch?"
    assert focus("Good morning, which port is the default?") == "which port is the default?"
    assert focus("您好，如何添加新用户？") == "如何添加新用户？"
    assert focus("In Rust, how do I sort a list?") == "In Rust, how do I sort a list?"  # context, not a greeting
    assert focus("Highlights, how are they drawn?") == "Highlights, how are they drawn?"  # "hi" inside a word
    assert focus("Hi, thanks!") == "Hi, thanks!"  # no question after it


def test_a_typo_is_corrected_to_a_corpus_word_one_edit_away():
    known = set(tokenize("remote branches fetch prune delete the command"))
    freq = {"branch": 9}.get
    assert correct_spelling("delete remote braches with a comand", known, lambda w: freq(w, 1)) == (
        "delete remote branches with a command"
    )
    assert correct_spelling("WireGurd and zzzzzz", known, lambda w: 1) == "WireGurd and zzzzzz"  # nothing near


def test_a_british_spelling_finds_the_american_one_the_corpus_uses_and_the_reverse():
    american = set(tokenize("Set the color of the center line, then initialize the catalog."))
    question = "How do I set the colour of the centre line and initialise the catalogue?"
    assert correct_spelling(question, american, lambda w: 1) == (
        "How do I set the color of the center line and initialize the catalog?"
    )
    british = set(tokenize("Set the colour of the centre line."))
    assert correct_spelling("Colors of center lines", british, lambda w: 1) == "Colours of centre lines"
    # a word with no other spelling the corpus uses is left as it is ("motor" is no "motour")
    assert correct_spelling("the motor color", american, lambda w: 1) == "the motor color"


def test_a_word_english_knows_is_not_a_typo_of_a_corpus_word():
    # The corpus lacking "grazing" is no sign it was mistyped: "grading" one letter away is another word.
    known = set(tokenize("grading rules mortgage receive"))
    assert correct_spelling("are grazing rules listed", known, lambda w: 1) == "are grazing rules listed"
    # A spelling English has seen, but far less often than a corpus word one letter away, is a typo of it.
    assert correct_spelling("did they recieve it", known, lambda w: 1) == "did they receive it"
    # A word English does not know at all is corrected as before.
    assert correct_spelling("a morgage rule", known, lambda w: 1) == "a mortgage rule"


@pytest.mark.parametrize(
    ("question", "term"),
    [
        ("What is Zephyrscript?", "Zephyrscript"),
        ("What are hard links?", "hard links"),
        ("What does fsync mean?", "fsync"),
    ],
)
def test_a_question_asking_what_something_is_wants_a_definition_that_starts_with_it(question, term):
    asked = Question.parse(question)
    assert (asked.kind, asked.term) == ("definition", term)
    word = term.split()[-1]
    assert asked.fits(f"The {term} is a way to name a file.") or asked.fits(f"{term} means flushing.")
    assert not asked.fits(f"Control structures in {term} are similar to C.")  # about it, not what it is
    assert not asked.fits(f"Use {word} with care.")


def test_what_is_with_a_quantity_or_a_clause_is_no_definition():
    assert Question.parse("What is the maximum message size?").kind == "quantity"
    assert Question.parse("What is it that makes the parser so slow on big files?").kind is None
    # a value of something, a summary, a purpose: no term to define
    for question in ("What is the annual turnover rate?", "What is Zephyr's coverage?", "What is Zephyr about?"):
        assert Question.parse(question).kind is None, question
    assert Question.parse("Was ist Zephyrscript?").kind is None  # not English


def test_a_word_one_letter_from_english_is_a_name_when_written_with_a_capital_but_a_typo_when_not():
    """ "Bazel" is one letter from "basel" and "hazel": inside a question, with its capital, it names a build
    tool the corpus never mentions; written in lower case it may be a slip of the keyboard."""
    known = set(tokenize("Build the project with make, then install the rules."))
    assert Question.parse("How do I build with Bazel rules?").unknown_names(known) == ["Bazel"]
    assert Question.parse("How do I build with bazel rules?").unknown_names(known) == []
    assert Question.parse("How do I build with Make rules?").unknown_names(known) == []  # English, and known
