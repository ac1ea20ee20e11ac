"""Text cut the one way both sides need: sentences (the chunker fills windows with them, the reader quotes
them) and tokens (the keyword index searches them, the question reader and the answerer compare them).

Example:
    >>> tokenize("The Cats' hats")
    ['cat', 'hat']
"""

from __future__ import annotations

import bisect
import functools
import re
import threading

import snowballstemmer

from rag.language import HAN, language, simplified

# A sentence ends at . ! ? ; : (or their CJK forms) followed by space, or at a blank line. A closing quote
# or bracket may come between: 'He said "stop." Then' is two sentences.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?;:])|(?<=[.!?]['\"”’)]))\s+(?=\S)|(?<=[。！？；])|\n\s*\n")
_BRACKETS = [("(", ")"), ("“", "”"), ("[", "]"), ("{", "}")]
_BRACES = [("{", "}")]  # even chunking never cuts a line of code inside a dict or a block: "{'a': 1, 'b': 2}"
# Latin abbreviations inside a sentence ("for example, e.g. the mailmap"): never the end of one; "etc." is,
# unless the sentence goes on in lower case.
_ABBREVIATION = re.compile(r"(?<![\w.])(?:e\.g|i\.e|cf|vs|viz|etc)\.$", re.I)
# Nor does a title before a name, with the name's initial ("Dr. D. Richard Hipp"). A capital and a full stop
# alone may end one ("… merged into B. Then …", "see Appendix A. The …"), so "Donald E. Knuth" is cut.
_NAME_ABBREVIATION = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|Prof)\.(?:\s+[A-Z]\.)?$")
# A colon or semicolon at the end of a line with an indented line after it: code ("for line in f:",
# "int rc;") or a lead-in with its indented block, never the end of a sentence.
_INDENTED_NEXT = re.compile(r"[:;][ \t]*\n(?=[ \t]+\S)")
# A list item on a new line ("• a standard for ...", "* `timeout` {number} ...") starts a sentence of its own.
BULLET = re.compile(r"[*+•‣◦-][ \t]+\S")
_ITEM = re.compile(rf"\n(?=[ \t]*{BULLET.pattern})")
# A table row whose cells name their columns, as the loaders write a sheet's or a CSV's rows ("Product: Tea |
# Price: 12.5"): one sentence, whatever punctuation its cells hold, and its line break ends it. (Rows of
# bare cells, as HTML tables give, stay cut as prose is: measured, quoting them as rows lost answers.)
_NAMED_CELL = r"[^\n|:]{1,60}: [^\n|]*"
_TABLE_ROW = re.compile(rf"^{_NAMED_CELL}(?: \| {_NAMED_CELL})+$", re.M)
_LINE_BREAK = re.compile(r"\n\s*")
# An interactive Python session (a doctest, ``>>>`` and ``...`` prompts) is cut into its statements: a prompt
# line, its continuation lines and its output up to the next prompt or a blank line. The "..." of a
# continuation prompt or an elided traceback, and the colon of "def f(x):", end nothing inside one.
PROMPT = re.compile(r">>>(?=[ \t\n]|$)")  # where a statement starts
_PROMPT_LINE = re.compile(rf"^[ \t]*{PROMPT.pattern}", re.M)
_BLANK_LINE = re.compile(r"\n[ \t]*\n")

# A question that asks how to do something ("How do I …", "Hi, how can I …", "What command …"): its answer is
# an instruction or a command.
HOWTO = re.compile(r"^\W*(\w+[,!]\s+)*(how (do|can|could|should|would|to)\b|what (command|option|flag)s?\b)", re.I)

_TOKEN = re.compile(r"\w\w+", re.UNICODE)
# Identifiers, options, paths and versions: "functools.cache", "--leak-check", "/etc/fstab", "3.11", "a_b".
_COMPOUND = re.compile(r"\w+(?:[._/:-]+\w+)+|\w*_\w*")
# A one-letter option ("-W", "-a"), whole and with its case ("-a" and "-A" are different options): the letter
# alone is no word, so without this "What does -W do?" could not find "-W: turn warnings into errors".
_SHORT_OPTION = re.compile(r"(?<![\w-])-[A-Za-z0-9](?![\w-])")
# A capital letter standing alone names something: a language ("C", "R"), a flag ("the [L] flag"), a drive
# or a variable. Kept with its case, as `_SHORT_OPTION` keeps "-W"; "A" and "I" are words, and a letter inside
# an abbreviation ("U.S.") or a compound ("x-ray", "Type-B", "Ctrl-C", kept whole) is no name of its own.
_CAPITAL = re.compile(r"(?<![\w'’.-])[B-HJ-Z](?![\w'’-]|\.\w)")
# camelCase and PascalCase boundaries: "getElementById" -> get Element By Id; "HTTPServer" -> HTTP Server.
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
# Chinese, Japanese and Korean write words without spaces: a run of these is cut into overlapping pairs.
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]+")
_STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these "
    "they this to was will with what which who whom how when where why do does did has have had can could "
    "would should i you he she we me my your our its from than so "
    # Words of no content whose stem is another word's: "quite" -> "quit", "several" -> "sever" (as "severity"),
    # "namely" -> "name", "fairly" -> "fair": as tokens, every "several" of a corpus would match "severity".
    "quite several namely fairly".split()
)


def split_sentences(
    text: str, start: int = 0, end: int | None = None, *, brackets: bool = False
) -> list[tuple[int, int]]:
    """Spans of the sentences in ``text[start:end]``, whitespace trimmed. With ``brackets`` (how the answerer
    reads, to quote whole sentences), punctuation inside a parenthesis, a bracket or a curly quote does not end
    a sentence, and each item of a bulleted list on its own lines is a sentence even without a full stop.
    Without it, only a brace holds punctuation (a line of code's dict, as chunks are cut). Either way a table
    row whose cells name their columns ("City: Hong Kong | Staff: 420") is one sentence, never cut at a colon.

    Example:
        >>> split_sentences("One. Two!\\n\\nThree")
        [(0, 4), (5, 9), (11, 16)]
        >>> split_sentences("It offers:\\n• speed\\n• safety", brackets=True)
        [(0, 10), (11, 18), (19, 27)]
        >>> split_sentences("Tools, e.g. tar, etc. run. Fine.", brackets=True)
        [(0, 26), (27, 32)]
        >>> split_sentences("It was released by Dr. D. Richard Hipp. Mrs. Smith agreed.", brackets=True)
        [(0, 39), (40, 58)]
        >>> code = "Read it so:\\n\\nwith open(p) as f:\\n    for line in f:\\n        print(line)\\n\\nDone."
        >>> [code[s:e] for s, e in split_sentences(code, brackets=True)]
        ['Read it so:', 'with open(p) as f:\\n    for line in f:\\n        print(line)', 'Done.']
        >>> rows = "City: Hong Kong | Staff: 420\\nCity: Singapore | Staff: 85"
        >>> [rows[s:e] for s, e in split_sentences(rows, brackets=True)]
        ['City: Hong Kong | Staff: 420', 'City: Singapore | Staff: 85']
    """
    end = len(text) if end is None else end
    spans, pos = [], start
    ends = [m.span() for m in _SENTENCE_END.finditer(text, start, end)]  # (start, end) of each break
    if brackets:
        ends += (m.span() for m in _ITEM.finditer(text, start, end))
    rows = [(r.start(), r.end()) for r in _TABLE_ROW.finditer(text, start, end)] if " | " in text else []
    if rows:  # no break inside a row whose cells name their columns; one right after it
        ends = _outside(ends, rows) + [m.span() for a, b in rows if (m := _LINE_BREAK.match(text, b, end))]
    if ">>>" in text and (statements := _statements(text, start, end)):  # no break inside one; one before each
        ends = _outside(ends, statements) + [(text.rfind("\n", start, a), a) for a, _ in statements]
    ends.sort()
    for b, e in ends:
        gap = text[b:e]
        if b < pos:
            continue  # a list item's line break inside a blank line already counted
        if "\n" not in gap and _inside_brackets(text, pos, b, _BRACKETS if brackets else _BRACES):
            continue  # "(see Section 3.1.2, “Stage 2: GRUB 2”)" is one sentence; "{'a': 1, 'b': 2}" one piece
        if brackets and _INDENTED_NEXT.match(text, b - 1):
            continue  # "with open(path) as f:\n    for line in f:" is one piece of code
        if brackets and "\n" not in gap and text[b - 1] in '"”’)]' and text[e : e + 1].islower():
            continue  # 'the “Hello, world!” project': a quote or bracket ending in "!" goes on in lower case
        tail = max(pos, b - 4)  # an abbreviation is at most four characters before the break
        if brackets and "\n\n" not in gap and (a := _ABBREVIATION.search(text, tail, b)):
            if not a.group().lower().startswith("etc") or text[e].islower():
                continue  # "… a tool, e.g. git log, …" is one sentence
        if brackets and "\n" not in gap and _NAME_ABBREVIATION.search(text, max(pos, b - 10), b):
            continue  # "… by Dr. D. Richard Hipp"
        spans.append((pos, b))
        pos = e
    spans.append((pos, end))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out


def _outside(breaks: list[tuple[int, int]], pieces: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The ``breaks`` that start outside every one of ``pieces`` (sorted, not overlapping) or at its end."""
    starts = [a for a, _ in pieces]
    return [(b, e) for b, e in breaks if not (i := bisect.bisect_left(starts, b)) or b >= pieces[i - 1][1]]


def _statements(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Spans of the statements of interactive Python sessions in ``text[start:end]`` (see `_PROMPT_LINE`)."""
    prompts = [m.end() - 3 for m in _PROMPT_LINE.finditer(text, start, end)]
    out = []
    for i, a in enumerate(prompts):
        b = prompts[i + 1] if i + 1 < len(prompts) else end
        if blank := _BLANK_LINE.search(text, a, b):
            b = blank.start()
        out.append((a, a + len(text[a:b].rstrip())))
    return out


# Chinese and Japanese characters and their punctuation (not Korean, which puts spaces between words).
_IDEOGRAPHIC = "\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_IDEOGRAPHIC_GAP = re.compile(f"(?<=[{_IDEOGRAPHIC}])[^\\S\\n]+(?=[{_IDEOGRAPHIC}])")
# A line of Chinese broken at the margin inside a sentence: it ends in a character that is no punctuation
# and the next line, however indented, goes on with one (a quote may start mid-line, so indentation can't
# be compared).
_IDEOGRAPHIC_WRAP = re.compile(rf"(?<=[{HAN}])[^\S\n]*\n[^\S\n]*(?=[{HAN}])")


def close_gaps(text: str) -> str:
    """Without the spaces a PDF's text layer or OCR puts between Chinese characters: ``"记录 了"`` -> ``"记录了"``
    (Chinese is written without spaces; one between two of its characters is typesetting, not a word break)."""
    return _IDEOGRAPHIC_GAP.sub("", text)


WRAP_MIN_LINE = 40  # characters: a shorter line ended where its text did, not at the margin
CODE_LINE = 0.25  # a line with this share of code-like words (or more) is code, not a wrapped line of prose
_CODE_WORD = re.compile(r"[(){}\[\]=<>|$#;`\\¶]|\w[./:_]\w|^--?\w|^\W+$")
_WORDS = re.compile(r"\S+")
_LETTER = re.compile(r"[^\W\d_]")


def code_share(text: str) -> float:
    """Share of words that look like code: ``"run make -j4 all"`` -> 0.25; prose -> 0."""
    words = _WORDS.findall(text)
    return sum(bool(_CODE_WORD.search(w.rstrip(".,;:"))) for w in words) / len(words) if words else 0.0


def is_prose_line(line: str) -> bool:
    """A line of words long enough to have been wrapped: not code, not a row of numbers, not a short title."""
    return len(line) >= WRAP_MIN_LINE and bool(_LETTER.search(line)) and code_share(line) < CODE_LINE


def is_heading_of(piece: str, heading: str | None) -> bool:
    """``piece`` is the section's ``heading`` as printed, whitespace aside ("4.2 The function tapply() and
    ragged arrays"): the chunker keeps it with what it heads, the reader never quotes it."""
    return bool(heading) and " ".join(piece.split()) == " ".join((heading or "").split())


# A line that reads as prose: flush left, starts with a letter or an opening quote, and is long enough to
# have been wrapped (a short line, an indented one, a command or a list item keeps its line break).
_PROSE_LINE = re.compile(rf"[\"'“‘(]?[^\W\d_][^\n]{{{WRAP_MIN_LINE - 2},}}[\w,]")


_ROW = " | "  # between the cells of a table row, as the loaders write it


def unwrap(text: str) -> str:
    """``text`` with the line breaks that only wrap a paragraph made spaces, so a quote reads as a sentence:
    a break after a long prose line ending in a word or comma, before a line starting flush with a letter.
    Stricter than the PDF loader's `rag.ingest.loaders.reflow`, which rejoins a page's lines as it reads
    them: plain text and markdown carry code and commands, so their text is kept as written and only the
    quote in an answer is joined.

    Example:
        >>> unwrap("Make it clearer that grep can now output matching text before\\nreporting a match.")
        'Make it clearer that grep can now output matching text before reporting a match.'
        >>> unwrap("To install it, run:\\n  make install\\nthen restart.")
        'To install it, run:\\n  make install\\nthen restart.'
        >>> unwrap("所以打包也不\\n    是看起来那样复杂。")
        '所以打包也不是看起来那样复杂。'
        >>> unwrap("type | default\\ninteger | 200")
        'type | default\\ninteger | 200'
    """
    text = _IDEOGRAPHIC_WRAP.sub("", text)  # wrapped Chinese, even indented, joins without a space
    lines = text.split("\n")
    out = lines[:1]
    for line in lines[1:]:
        row = _ROW in out[-1] or _ROW in line  # a table's rows stay lines ("type | default" over "integer | 200")
        if _PROSE_LINE.fullmatch(out[-1]) and line[:1].isalpha() and not BULLET.match(line) and not row:
            cjk = CJK.match(out[-1][-1]) and CJK.match(line)  # wrapped Chinese joins without a space
            out[-1] += ("" if cjk else " ") + line
        else:
            out.append(line)
    return "\n".join(out)


def _inside_brackets(text: str, start: int, end: int, brackets: list[tuple[str, str]] = _BRACKETS) -> bool:
    """True when ``text[start:end]`` leaves a bracket ( [ { or a curly quote “ opened in its last 120
    characters unclosed: punctuation there belongs to the bracketed part (a dict's "'a': 1"), not to the
    sentence."""
    for opening, closing in brackets:
        if (i := text.rfind(opening, start, end)) >= 0 and end - i <= 120 and closing not in text[i:end]:
            return True
    return False


# A Snowball stemmer keeps the word it is working on in itself, so two threads stemming with one (the app's
# warm-up and the first question) corrupt each other's words: each thread has its own.
class _Stemmer(threading.local):
    def __init__(self) -> None:  # run once in each thread that uses it
        self.english = snowballstemmer.stemmer("english")


_stemmer = _Stemmer()


@functools.lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    """Snowball (Porter 2) stem, so "issued" meets "issue" and "licenses" meets "license"."""
    return _stemmer.english.stemWord(word)


# Chinese question words, Chinese's "what", "why", "how", "which", "whether": like English stop words they are not
# indexed, and a run of characters is cut where one stands ("什么是LVM" pairs no "么是"). Simplified spelling: text
# is folded to it first.
_ZH_QUESTION_WORDS = re.compile("为什么|什么|为何|如何|怎么样|怎么|怎样|哪个|哪些|哪里|哪儿|哪种|是否|请问")


def tokenize(text: str) -> list[str]:
    """Lower-cased, stemmed word tokens without English stop words: ``"The Cats' hats"`` -> ``['cat', 'hat']``.

    An identifier, option, path or version is kept whole as well as cut into its parts, so a question that
    names ``functools.cache`` or ``--leak-check`` finds the page that spells it exactly, and one that says
    "leak check" still finds it: ``"use missing_ok"`` -> ``['use', 'missing', 'ok', 'missing_ok']``. A
    one-letter option keeps its dash and case: ``"git add -A"`` -> ``['git', 'add', '-A']``, and a capital letter
    standing alone is a name too: ``"the [L] flag"`` -> ``['flag', 'L']`` ("A" and "I" are words).
    camelCase words are cut at their humps too (``getElementById`` -> ``get element by id`` + the whole).

    Runs of Chinese, Japanese or Korean characters become overlapping character pairs, the usual way to
    index text without spaces: ``"金融中心"`` -> ``['金融', '融中', '中心']`` (a lone character stays one token).
    Traditional characters are folded into Simplified ones first, so either script finds the other
    (``"軟體"`` -> ``['软体']``); Chinese question words are left out (``"什么是 LVM"`` -> ``['lvm']``).
    The English stemmer and stop words are not applied to text in another European language (``rag.language``).
    """
    cjk: list[str] = []
    runs_found = CJK.findall(text)
    for whole in runs_found:
        runs = _ZH_QUESTION_WORDS.split(simplified(whole))
        for run in runs:
            if len(run) > 1:
                cjk += [run[i : i + 2] for i in range(len(run) - 1)]
            elif run and len(runs) == 1:  # left beside a question word ("是" of "什么是"), a character is no word
                cjk.append(run)
    if runs_found:
        text = CJK.sub(" ", text)
    wholes = [w.lower().strip("_") for w in _COMPOUND.findall(text)]
    words: list[str] = []
    for word in _TOKEN.findall(text):
        parts = _CAMEL.split(word) if not word.isupper() and not word.islower() else [word]
        if len(parts) > 1:
            wholes.append(word.lower())
        for part in parts:
            words += _TOKEN.findall(part.lower().replace("_", " "))
    kept_whole = [w for w in wholes if len(w) > 2] + (_SHORT_OPTION.findall(text) if "-" in text else [])
    kept_whole += _CAPITAL.findall(text) + cjk
    if language(text) == "other":
        return words + kept_whole
    return [_stem(t) for t in words if t not in _STOPWORDS] + kept_whole


_LETTERS = "abcdefghijklmnopqrstuvwxyz"


@functools.lru_cache(maxsize=4096)
def one_edit(word: str) -> frozenset[str]:
    """Every string one letter away from ``word``: a letter deleted, changed, inserted, or two swapped
    (remembered: a word the corpus lacks is looked up in it, then in English, `rag.lexicon`).

    Example:
        >>> sorted(w for w in one_edit("tset") if w in {"test", "set", "tests"})
        ['set', 'test']
    """
    candidates = {word[:i] + word[i + 1 :] for i in range(len(word))}  # deletions
    candidates |= {word[:i] + c + word[i + 1 :] for i in range(len(word)) for c in _LETTERS}  # substitutions
    candidates |= {word[:i] + c + word[i:] for i in range(len(word) + 1) for c in _LETTERS}  # insertions
    candidates |= {word[:i] + word[i + 1] + word[i] + word[i + 2 :] for i in range(len(word) - 1)}  # swaps
    return frozenset(candidates)
