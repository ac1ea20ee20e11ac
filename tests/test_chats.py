"""Saved conversations (rag/app/chats.py, rag/app/sidebar.py): saved, listed, reopened, renamed, deleted and
exported per owner; never another owner's; whole turns only after a kill; kept across a restart.

A kill lands at an exact point: RAG_TEST_EXIT_AT_CHAT_WRITE=N makes the process exit at once, as SIGKILL
leaves it, right after the Nth write of its transactions (rag/app/chats.py `_wrote`; a commit counts as one)."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap

import gradio as gr
import pytest

from rag import RAG
from rag.app.chats import ChatStore, default_title
from rag.app.render import render_answer
from rag.app.sidebar import owner_of
from rag.errors import ChatError
from rag.types import Answer, Citation
from tests.conftest import ROOT, ingested

ISSUED = "When was the Virtual Assets Policy Statement issued?"
EMPLOYEES = "How many employees does HashKey have?"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> RAG:
    return ingested(tmp_path_factory.mktemp("chats"))


@pytest.fixture(scope="module")
def answers(seeded):
    """Two real answers over the seed document, each citing it."""
    out = {q: seeded.ask(q) for q in (ISSUED, EMPLOYEES)}
    assert all(a.answered and a.citations for a in out.values())
    return out


@pytest.fixture
def store(tmp_path) -> ChatStore:
    return ChatStore(tmp_path / "chats.sqlite3")


def _save(store, owner, conversation, question, answer) -> str:
    return store.save_turn(owner, conversation, question, answer, render_answer(answer))


def test_a_conversation_is_saved_listed_reopened_renamed_and_deleted(store, answers):
    first = _save(store, "user:alice", None, ISSUED, answers[ISSUED])
    assert _save(store, "user:alice", first, EMPLOYEES, answers[EMPLOYEES]) == first  # the same conversation
    second = _save(store, "user:alice", None, EMPLOYEES, answers[EMPLOYEES])
    assert [c.id for c in store.list("user:alice")] == [second, first]  # the most recently updated first
    chat = store.get("user:alice", first)
    assert chat.title == ISSUED
    assert [t.question for t in chat.turns] == [ISSUED, EMPLOYEES]
    turn = chat.turns[0]
    assert turn.html == render_answer(answers[ISSUED]) and 'class="rag-cite rag-n-1"' in turn.html
    assert turn.answer == answers[ISSUED].text and turn.answered
    assert [(c.n, c.source, c.page, c.quote) for c in turn.citations] == [
        (c.n, c.source, c.page, c.quote) for c in answers[ISSUED].citations
    ]

    _save(store, "user:alice", first, ISSUED, answers[ISSUED])  # a new turn makes it the newest again
    assert [c.id for c in store.list("user:alice")] == [first, second]

    assert store.rename("user:alice", first, "  Policy   dates ") == "Policy dates"
    assert store.get("user:alice", first).title == "Policy dates"
    with pytest.raises(ChatError, match="^a conversation's title cannot be empty$"):
        store.rename("user:alice", first, "   ")
    with pytest.raises(ChatError, match=r"^a conversation's title has at most 200 characters \(this one 201\)$"):
        store.rename("user:alice", first, "x" * 201)

    store.delete("user:alice", first)
    assert [c.id for c in store.list("user:alice")] == [second]
    with pytest.raises(ChatError, match=f"^no saved conversation '{first}'$"):
        store.get("user:alice", first)
    with sqlite3.connect(store.path) as db:  # its turns and citations went with it
        assert db.execute("SELECT COUNT(*) FROM turns WHERE conversation = ?", (first,)).fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM citations WHERE conversation = ?", (first,)).fetchone()[0] == 0
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_one_owner_never_reaches_anothers_conversation(store, answers):
    """Bob, even knowing the id of Alice's conversation, can neither list, read, export, rename, delete nor
    add to it, and is told exactly what he is told of an id that does not exist."""
    alice = _save(store, "user:alice", None, ISSUED, answers[ISSUED])
    before = store.get("user:alice", alice)
    assert store.list("user:bob") == [] and store.list("browser:" + "0" * 32) == []
    for attempt in (
        lambda cid: store.get("user:bob", cid),
        lambda cid: store.export_markdown("user:bob", cid),
        lambda cid: store.rename("user:bob", cid, "mine now"),
        lambda cid: store.delete("user:bob", cid),
        lambda cid: _save(store, "user:bob", cid, EMPLOYEES, answers[EMPLOYEES]),
    ):
        with pytest.raises(ChatError) as theirs:
            attempt(alice)
        with pytest.raises(ChatError) as unknown:
            attempt("f" * 32)
        assert str(theirs.value) == f"no saved conversation '{alice}'"
        assert str(unknown.value) == f"no saved conversation '{'f' * 32}'"
    assert store.get("user:alice", alice) == before  # untouched: same title, same single turn
    assert store.list("user:bob") == []


def test_the_export_footnotes_each_citation_with_its_source_page_and_quote(store, answers):
    cid = _save(store, "user:alice", None, ISSUED, answers[ISSUED])
    _save(store, "user:alice", cid, EMPLOYEES, answers[EMPLOYEES])
    md = store.export_markdown("user:alice", cid)
    assert md.startswith(f"# {ISSUED}\n") and f"**Q:** {ISSUED}" in md and f"**Q:** {EMPLOYEES}" in md
    body, _, notes = md.partition("\n[^1]: ")
    notes = "[^1]: " + notes
    cited = [c for q in (ISSUED, EMPLOYEES) for c in answers[q].citations]  # in the order they were saved
    # Every citation is one footnote, numbered through the conversation, naming where it is and its quote.
    definitions = re.findall(r"^\[\^(\d+)\]: (.*)$", notes, re.MULTILINE)
    assert [int(n) for n, _ in definitions] == list(range(1, len(cited) + 1))
    for (_, text), c in zip(definitions, cited, strict=True):
        assert text == f"{c.location}: “{' '.join(c.quote.split())}”"
    # Each marker in the answers points at one of them, in order, and no [n] marker is left.
    markers = [int(n) for n in re.findall(r"\[\^(\d+)\]", body)]
    assert sorted(set(markers)) == list(range(1, len(cited) + 1))
    assert not re.search(r"(?<!\^)\[\d+\]", body)
    second = answers[EMPLOYEES].text
    first_marker = int(re.search(r"\[(\d+)\]", second)[1])
    offset = len(answers[ISSUED].citations)
    assert f"[^{first_marker + offset}]" in body.split(f"**Q:** {EMPLOYEES}")[1]


def test_an_exported_footnote_names_the_page_and_section(store):
    cites = [
        Citation(1, "guide.pdf", "passage", "The  north breakwater\nwas rebuilt in 1987.", 0.9, page=3),
        Citation(2, "notes.md", "passage", "Granite came from Kowloon.", 0.8, section="Stone"),
    ]
    answer = Answer("When?", "Rebuilt in 1987 [1] with granite [2]. See [3].", cites, True)
    cid = store.save_turn("user:alice", None, "When was the breakwater rebuilt?", answer, "<p>x</p>")
    assert store.export_markdown("user:alice", cid) == (
        "# When was the breakwater rebuilt?\n\n**Q:** When was the breakwater rebuilt?\n\n"
        "Rebuilt in 1987 [^1] with granite [^2]. See [3].\n\n"  # [3] cites nothing: left as written
        "[^1]: guide.pdf, p. 3: “The north breakwater was rebuilt in 1987.”\n"
        "[^2]: notes.md, § Stone: “Granite came from Kowloon.”\n"
    )


def test_a_default_title_is_the_first_question_shortened_at_a_word():
    assert default_title("  When was it\nissued? ") == "When was it issued?"
    long = "How many employees does HashKey have in Hong Kong and in Singapore and in Bermuda today?"
    title = default_title(long)
    assert title == "How many employees does HashKey have in Hong Kong and in…"
    assert len(title) <= 60


def test_an_owner_is_the_login_else_a_well_formed_browser_id():
    class Request:
        username: str | None = None

    signed_in = Request()
    signed_in.username = "alice"
    browser = "0123456789abcdef" * 2
    assert owner_of(signed_in, browser) == "user:alice"  # a login wins over whatever the browser sends
    assert owner_of(Request(), browser) == f"browser:{browser}"
    assert owner_of(None, browser) == f"browser:{browser}"
    for forged in ("", None, "user:alice", browser + "0", browser.upper(), "../" + browser[3:]):
        assert owner_of(Request(), forged) is None  # nothing saved, nothing listed


# --- kill -9 in the middle of a write -----------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from rag.app.chats import ChatStore
    from rag.types import Answer, Citation

    def answer(i):
        cites = [Citation(n, "notes.md", f"passage {i}.{n}", f"Quote {i}.{n}.", 1.0, page=n) for n in (1, 2)]
        return Answer(f"Question {i}?", f"Fact {i} [1]. More {i} [2].", cites, True)

    store = ChatStore(sys.argv[1])
    first = None
    for i in range(3):
        first = store.save_turn("user:alice", first, f"Question {i}?", answer(i), f"<p>answer {i}</p>")
    store.save_turn("user:alice", None, "Question 3?", answer(3), "<p>answer 3</p>")
    """
)
# The writes of WRITER: turn 0 (a new conversation) 1 conversation, 2 turn, 3-4 citations, 5 updated,
# 6 commit; turn 1: 7 turn, 8-9 citations, 10 updated, 11 commit; turn 2: 12-16; turn 3 (a second
# conversation): 17 conversation, 18 turn, 19-20 citations, 21 updated, 22 commit.
COMMITS = (6, 11, 16, 22)
KILL_POINTS = {
    1: "new-conversation-row-only",
    3: "turn-with-one-of-two-citations",
    6: "first-turn-committed",
    9: "second-turn-all-citations-uncommitted",
    10: "second-turn-all-but-commit",
    17: "second-conversation-row-only",
    21: "second-conversation-all-but-commit",
}


def _write_turns(path, at_write: int) -> int:
    env = {**os.environ, "RAG_TEST_EXIT_AT_CHAT_WRITE": str(at_write), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", WRITER, str(path)], env=env, cwd=ROOT, timeout=120).returncode


@pytest.mark.slow
@pytest.mark.parametrize("at_write", KILL_POINTS, ids=KILL_POINTS.values())
def test_a_write_killed_midway_leaves_only_whole_turns(tmp_path, at_write):
    path = tmp_path / "chats.sqlite3"
    assert _write_turns(path, at_write) == 137  # killed there, not finished
    store = ChatStore(path)  # reopened as a restarted app opens it
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # No conversation without a turn; every turn with exactly the citations it had.
        assert (
            db.execute(
                "SELECT COUNT(*) FROM conversations WHERE id NOT IN (SELECT conversation FROM turns)"
            ).fetchone()[0]
            == 0
        )
        torn = (
            "SELECT COUNT(*) FROM turns t WHERE cited !="
            " (SELECT COUNT(*) FROM citations c WHERE c.conversation = t.conversation AND c.turn = t.n)"
        )
        assert db.execute(torn).fetchone()[0] == 0
    chats = store.list("user:alice")
    turns = [t for c in reversed(chats) for t in store.get("user:alice", c.id).turns]
    whole = sum(commit <= at_write for commit in COMMITS)
    assert [t.question for t in turns] == [f"Question {i}?" for i in range(whole)]
    for i, t in enumerate(turns):
        assert t.answer == f"Fact {i} [1]. More {i} [2]." and t.html == f"<p>answer {i}</p>"
        assert [(c.n, c.quote, c.page) for c in t.citations] == [(1, f"Quote {i}.1.", 1), (2, f"Quote {i}.2.", 2)]
    # And the store takes new turns after the crash.
    after = Answer("After?", "The documents do not contain an answer to this question.", [], False)
    cid = store.save_turn("user:alice", chats[0].id if chats else None, "After?", after, "<p>after</p>")
    assert store.get("user:alice", cid).turns[-1].question == "After?"


def test_the_kill_points_are_where_they_say(tmp_path):
    """Without a kill, WRITER makes exactly the writes COMMITS and KILL_POINTS count on: a kill just past
    the last one is never reached."""
    assert _write_turns(tmp_path / "chats.sqlite3", COMMITS[-1] + 1) == 0
    assert _write_turns(tmp_path / "again.sqlite3", COMMITS[-1]) == 137


# --- a restart of the app -------------------------------------------------------------------------------

FIRST_APP = textwrap.dedent(
    """
    import json, sys
    from rag import RAG
    from rag.app.handlers import handlers

    on = handlers(RAG(docs_dir=sys.argv[1], store_dir=sys.argv[2]))
    browser = sys.argv[3]
    *_, last = on.respond(sys.argv[4], [], [], "extractive", "", "", "", 3, [], "", browser)
    print(json.dumps({"chat": last[1], "history": last[2], "conversation": last[4]}))
    """
)


@pytest.mark.slow
def test_a_conversation_saved_by_one_app_process_is_reopened_by_the_next(seeded, tmp_path):
    """The chat of one process saves its turn; a new process lists it for the same browser and reopens it
    exactly as it was shown, with its history for follow-ups; another browser sees nothing of it."""
    from rag.app.handlers import handlers

    browser, stranger = "a" * 32, "b" * 32
    s = seeded.settings
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-c", FIRST_APP, str(s.docs_dir), str(s.store_dir), browser, ISSUED],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    first = json.loads(run.stdout.strip().splitlines()[-1])
    assert first["conversation"] and "rag-cite rag-n-1" in first["chat"][-1]["content"]

    Request = _Request
    on = handlers(seeded)  # this process: the app started again over the same store
    listed = on.chats.start(browser, Request())
    assert listed.choices == [(ISSUED, first["conversation"])]
    chat, history, current, title, export, status, _trace = on.chats.open(first["conversation"], browser, Request())
    assert chat == first["chat"] and history == first["history"] and current == first["conversation"]
    assert (
        title == ISSUED
        and status == ""
        and 'download="When was the Virtual Assets Policy Statement issued.md"' in export
    )
    # Another browser lists nothing and cannot open it.
    assert on.chats.start(stranger, Request()).choices == []
    assert "no saved conversation" in on.chats.open(first["conversation"], stranger, Request())[5]
    # A follow-up in the reopened conversation is read with its history and saved into it.
    *_, last = on.respond("And who issued it?", chat, history, "extractive", "", "", "", 3, [], current, browser)
    assert last[4] == current
    reopened = on.chats.store.get(f"browser:{browser}", current)
    assert [t.question for t in reopened.turns] == [ISSUED, "And who issued it?"]
    # The list refreshed after that turn fills an empty title box, and leaves alone a title being typed.
    listed, title, export = on.chats.listing(browser, current, "", Request())
    assert title == ISSUED and listed.value == current and export
    listed, title, export = on.chats.listing(browser, current, "A new name, half typed", Request())
    assert title == gr.skip() and listed.value == current and export


class _Request:
    """What the sidebar reads of a `gr.Request`: the signed-in user, if any."""

    def __init__(self, username: str | None = None):
        self.username = username


@pytest.mark.slow
def test_with_a_login_conversations_are_the_users_whatever_browser_they_use(seeded):
    """Signed in, a conversation belongs to the user: another browser of Alice's lists and opens it, and
    Bob, even sending Alice's browser id and her conversation's id, lists, opens, renames and deletes
    nothing of hers."""
    from rag.app.handlers import handlers

    on = handlers(seeded)
    alice, bob = _Request("alice"), _Request("bob")
    *_, last = on.respond(ISSUED, [], [], "extractive", "", "", "", 3, [], "", "c" * 32, alice)
    theirs = last[4]
    assert theirs and on.chats.store.get("user:alice", theirs).turns[0].question == ISSUED
    assert on.chats.start(None, alice).choices == [(ISSUED, theirs)]  # a browser with no id of its own
    assert on.chats.start("c" * 32, bob).choices == []
    assert "no saved conversation" in on.chats.open(theirs, "c" * 32, bob)[5]
    assert "Not renamed: no saved conversation" in on.chats.rename(theirs, "Bob's now", "c" * 32, bob)[3]
    assert "Not deleted: no saved conversation" in on.chats.delete(theirs, "c" * 32, bob)[7]
    assert on.chats.store.get("user:alice", theirs).title == ISSUED  # still hers, as it was


@pytest.mark.slow
def test_a_browser_without_an_id_yet_gets_one_with_its_first_answer(seeded):
    """A question sent before the page's load event listed anything is saved all the same: the answer brings
    the page a new id, under which the conversation is listed; the load event arriving after it with the
    value it read before (no id) neither makes another id nor empties the list (it did, and the restarted
    app then listed nothing for that browser)."""
    from rag.app.handlers import handlers

    on = handlers(seeded)
    *_, last = on.respond(ISSUED, [], [], "extractive", "", "", "", 3, [], "", None, _Request())
    conversation, browser = last[4], last[5]
    assert conversation and re.fullmatch(r"[0-9a-f]{32}", browser)
    assert on.chats.start(browser, _Request()).choices == [(ISSUED, conversation)]
    assert on.chats.start(None, _Request()) == gr.skip()  # late, without the id: changes nothing


@pytest.mark.slow
def test_the_app_killed_while_saving_an_answer_keeps_no_torn_turn(seeded, tmp_path):
    """`python app.py` killed (as SIGKILL leaves it) in the middle of saving an answered turn: after a
    restart the browser lists no half-saved conversation, and its next answer is saved whole."""
    import httpx

    from tests.conftest import running_app
    from tests.gradio_events import run_event

    docs, store = tmp_path / "docs", tmp_path / "store"
    shutil.copytree(seeded.settings.docs_dir, docs)
    shutil.copytree(seeded.settings.store_dir, store)
    (store / "chats.sqlite3").unlink(missing_ok=True)
    browser = "d" * 32

    def ask(http, question):
        data = [question, [], None, "extractive", "", "", "", 3, [], None, browser]
        return run_event(http, "rag-question", "submit", data, session_hash="tab")

    # Write 1 is the page's secret (when the app builds its page), 2 the new conversation, 3 its first
    # turn: the kill comes after the turn, before its citations and the commit.
    with running_app(docs, store, tmp_path / "killed.log", RAG_TEST_EXIT_AT_CHAT_WRITE="3") as url:
        with httpx.Client(base_url=url, timeout=120) as http, pytest.raises((RuntimeError, httpx.HTTPError)):
            ask(http, ISSUED)  # the answer never arrives: the app is gone
        with pytest.raises(httpx.HTTPError):
            httpx.get(url, timeout=5)
    with sqlite3.connect(store / "chats.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM turns").fetchone()[0] == 0

    with running_app(docs, store, tmp_path / "restarted.log") as url, httpx.Client(base_url=url, timeout=120) as http:
        answered = json.dumps(ask(http, ISSUED), ensure_ascii=False)
        assert "2022" in answered
    chats = ChatStore(store / "chats.sqlite3")
    [chat] = chats.list(f"browser:{browser}")
    [turn] = chats.get(f"browser:{browser}", chat.id).turns
    assert turn.question == ISSUED and turn.citations and "rag-cite rag-n-1" in turn.html


def test_a_pdf_page_picture_is_stored_once_however_many_answers_show_it(tmp_path):
    """The page view of a PDF citation is an inline picture of ~tens of KB: saved with every answer it would
    grow the file by that much each time; it is kept once, reopened in place, and goes with the last
    conversation that shows it."""
    from rag.app import pageview
    from tests.test_pageview import harbour_pdf

    docs = tmp_path / "docs"
    docs.mkdir()
    harbour_pdf(docs / "harbour.pdf")
    rag = RAG(docs_dir=docs, store_dir=tmp_path / "store")
    rag.ingest()
    answer = rag.ask("In which year was the north breakwater rebuilt, and with what stone?")
    html = render_answer(answer, pageview.page_views(answer.citations, rag.settings))
    picture = re.search(r'src="(data:image/png;base64,[^"]+)"', html)
    assert picture and len(picture[1]) > 10_000  # a real rendered page

    path = tmp_path / "chats.sqlite3"
    store = ChatStore(path)
    first = store.save_turn("user:alice", None, answer.question, answer, html)
    store.save_turn("user:alice", first, answer.question, answer, html)
    second = store.save_turn("user:alice", None, answer.question, answer, html)
    with sqlite3.connect(path) as db:  # three answers showing it, one copy of it
        assert db.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 1
        stored = db.execute("SELECT SUM(LENGTH(html)) FROM turns").fetchone()[0]
        stored += db.execute("SELECT SUM(LENGTH(data)) FROM images").fetchone()[0]
        assert stored < 3 * (len(html) - len(picture[1]) + 100) + len(picture[1])
    assert [t.html for t in store.get("user:alice", first).turns] == [html, html]  # reopened as shown
    store.delete("user:alice", first)
    assert store.get("user:alice", second).turns[0].html == html  # still shown by the other conversation
    store.delete("user:alice", second)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 0
