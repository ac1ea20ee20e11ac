"""Saved conversations: each user's chats in a SQLite file beside the vector store.

A conversation is a list of finished turns: the question, the answer's HTML as the chat showed it (so a
reopened conversation's citations open their passages exactly as before), and what an export needs (the
answer text and, per citation, its source, page, section and quoted sentence). Every query names its
owner, so one user never reads, renames, deletes or exports another's conversation, even by its id.

The page pictures of PDF citations (inline ``data:`` images of ~85 KB each) are kept once per picture, by
their hash, however many answers show them, and leave with the last conversation that shows them.

A turn is written in one transaction: a process killed mid-write (even ``kill -9``) leaves the whole turn
or none of it, never a turn without its citations or a conversation without its first turn.

Example:
    >>> from rag import Settings
    >>> store = ChatStore.of(Settings(store_dir="vectorstore"))  # doctest: +SKIP
    >>> cid = store.save_turn("user:alice", None, question, answer, html)  # doctest: +SKIP
    >>> [c.title for c in store.list("user:alice")]  # doctest: +SKIP
    ['When was the Virtual Assets Policy Statement issued?']
    >>> print(store.export_markdown("user:alice", cid))  # doctest: +SKIP
"""

from __future__ import annotations

import builtins
import hashlib
import re
import secrets
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rag.config import Settings
from rag.crashpoint import CrashPoint
from rag.errors import ChatError
from rag.types import Answer

TITLE_CHARS = 60  # a default title: the first question, cut at a word to at most this many characters
MAX_TITLE_CHARS = 200

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, title TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL);
CREATE INDEX IF NOT EXISTS conversations_by_owner ON conversations (owner, updated);
CREATE TABLE IF NOT EXISTS turns (
    conversation TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    n INTEGER NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL, html TEXT NOT NULL,
    answered INTEGER NOT NULL, cited INTEGER NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (conversation, n));
CREATE TABLE IF NOT EXISTS citations (
    conversation TEXT NOT NULL, turn INTEGER NOT NULL, n INTEGER NOT NULL,
    source TEXT NOT NULL, page INTEGER, section TEXT, quote TEXT NOT NULL,
    PRIMARY KEY (conversation, turn, n),
    FOREIGN KEY (conversation, turn) REFERENCES turns (conversation, n) ON DELETE CASCADE);
CREATE TABLE IF NOT EXISTS images (sha TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS turn_images (
    conversation TEXT NOT NULL, turn INTEGER NOT NULL, sha TEXT NOT NULL REFERENCES images (sha),
    PRIMARY KEY (conversation, turn, sha),
    FOREIGN KEY (conversation, turn) REFERENCES turns (conversation, n) ON DELETE CASCADE);
CREATE INDEX IF NOT EXISTS turn_images_by_sha ON turn_images (sha);
"""
# An answer's inline picture (a PDF page view) and the reference it is stored as.
_INLINE_IMAGE = re.compile(r"data:image/(?:png|jpeg);base64,[A-Za-z0-9+/=]+")
_IMAGE_REF = re.compile(r"rag-image:([0-9a-f]{64})")

# Test hook: tests/test_chats.py kills a process at an exact point of a turn's transaction with
# RAG_TEST_EXIT_AT_CHAT_WRITE=N: right after the Nth statement that writes (the commit counts as one), the
# process exits at once, as a SIGKILL leaves it (no rollback, no close). Unset, it does nothing.
_CRASH = CrashPoint("RAG_TEST_EXIT_AT_CHAT_WRITE")


def _wrote() -> None:
    _CRASH.wrote()


@dataclass(frozen=True)
class SavedCitation:
    """What a saved answer's ``[n]`` cites: enough to name it in an export."""

    n: int
    source: str
    quote: str
    page: int | None = None
    section: str | None = None

    @property
    def location(self) -> str:
        """``guide.pdf, p. 3`` or ``notes.md, § Setup``, as the chat names it."""
        return (
            self.source
            + (f", p. {self.page}" if self.page is not None else "")
            + (f", § {self.section}" if self.section else "")
        )


@dataclass(frozen=True)
class Turn:
    """One finished question and answer."""

    question: str
    answer: str  # the answer's text with its [n] markers
    html: str  # the answer as the chat rendered it
    answered: bool
    citations: list[SavedCitation] = field(default_factory=list)


@dataclass(frozen=True)
class Conversation:
    """A saved conversation; ``turns`` is empty in a listing (`ChatStore.list`), filled by `ChatStore.get`."""

    id: str
    title: str
    created: float
    updated: float
    turns: list[Turn] = field(default_factory=list)


def default_title(question: str) -> str:
    """The first question, shortened at a word.

    Example:
        >>> default_title("How many employees does HashKey have in Hong Kong and in Singapore today?")
        'How many employees does HashKey have in Hong Kong and in…'
    """
    text = " ".join(question.split())
    if len(text) <= TITLE_CHARS:
        return text or "Conversation"
    cut = text[: TITLE_CHARS - 1]
    if " " in cut[TITLE_CHARS // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:") + "…"


class ChatStore:
    """Conversations in one SQLite file (WAL mode), each belonging to one owner.

    Owners are opaque strings chosen by the caller (the app uses ``user:<login>`` or ``browser:<id>``);
    every method takes one, and a conversation of another owner is treated as one that does not exist.
    A connection per call: Gradio runs events on many threads, and SQLite serialises the writers.
    """

    def __init__(self, path: Path | str, timeout: float = 10.0):
        self.path = Path(path)
        self.timeout = timeout
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(self._connect()) as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise ChatError(f"cannot open the saved conversations at {self.path}: {exc}") from None

    @classmethod
    def of(cls, settings: Settings) -> ChatStore:
        """The store ``settings`` name: ``chats_db``, or ``chats.sqlite3`` in the store folder."""
        return cls(settings.chats_db or Path(settings.store_dir) / "chats.sqlite3")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)  # transactions are explicit
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA synchronous=FULL")
        return db

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        try:
            with closing(self._connect()) as db:
                yield db
        except sqlite3.Error as exc:
            raise ChatError(f"the saved conversations cannot be read ({exc})") from None

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One transaction: all of it is kept, or (on an error, or a kill before its commit) none."""
        try:
            with closing(self._connect()) as db:
                db.execute("BEGIN IMMEDIATE")  # take the write lock now: no other writer interleaves
                try:
                    yield db
                    db.execute("COMMIT")
                    _wrote()
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise ChatError(f"the conversation could not be saved ({exc})") from None

    def secret(self) -> str:
        """A random secret kept in the database (created the first time): it encrypts each browser's id in
        its local storage, and must outlive a restart for the browser's conversations to stay its own."""
        with self._writing() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'browser-secret'").fetchone()
            if row:
                return row[0]
            value = secrets.token_urlsafe(32)
            db.execute("INSERT INTO meta (key, value) VALUES ('browser-secret', ?)", (value,))
            return value

    # --- writing -------------------------------------------------------------------------------------

    def save_turn(self, owner: str, conversation: str | None, question: str, answer: Answer, html: str) -> str:
        """Append a finished turn to ``conversation`` (None: a new one, titled by ``question``); returns its id.

        Raises:
            ChatError: ``conversation`` is not one of ``owner``'s (deleted meanwhile, or someone else's).
        """
        now = time.time()
        with self._writing() as db:
            if conversation is None:
                conversation = uuid.uuid4().hex
                db.execute(
                    "INSERT INTO conversations (id, owner, title, created, updated) VALUES (?, ?, ?, ?, ?)",
                    (conversation, owner, default_title(question), now, now),
                )
                _wrote()
            else:
                self._own(db, owner, conversation)
            n = db.execute("SELECT COALESCE(MAX(n), 0) + 1 FROM turns WHERE conversation = ?", (conversation,))
            turn = n.fetchone()[0]
            images: dict[str, str] = {}  # sha256 -> the picture's data: URL

            def by_reference(m: re.Match) -> str:
                sha = hashlib.sha256(m[0].encode("ascii")).hexdigest()
                images[sha] = m[0]
                return f"rag-image:{sha}"

            html = _INLINE_IMAGE.sub(by_reference, html)
            db.execute(
                "INSERT INTO turns (conversation, n, question, answer, html, answered, cited, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (conversation, turn, question, answer.text, html, int(answer.answered), len(answer.citations), now),
            )
            _wrote()
            for sha, data in images.items():  # each picture once in the file, however many turns show it
                db.execute("INSERT OR IGNORE INTO images (sha, data) VALUES (?, ?)", (sha, data))
                db.execute(
                    "INSERT INTO turn_images (conversation, turn, sha) VALUES (?, ?, ?)", (conversation, turn, sha)
                )
                _wrote()
            for c in answer.citations:
                db.execute(
                    "INSERT INTO citations (conversation, turn, n, source, page, section, quote)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (conversation, turn, c.n, c.source, c.page, c.section, c.quote),
                )
                _wrote()
            db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (now, conversation))
            _wrote()
        return conversation

    def rename(self, owner: str, conversation: str, title: str) -> str:
        """Give ``conversation`` a new title (spaces collapsed); returns it.

        Raises:
            ChatError: an empty or too long title, or not one of ``owner``'s conversations.
        """
        title = " ".join((title or "").split())
        if not title:
            raise ChatError("a conversation's title cannot be empty")
        if len(title) > MAX_TITLE_CHARS:
            raise ChatError(f"a conversation's title has at most {MAX_TITLE_CHARS} characters (this one {len(title)})")
        with self._writing() as db:
            self._own(db, owner, conversation)
            db.execute("UPDATE conversations SET title = ? WHERE id = ? AND owner = ?", (title, conversation, owner))
        return title

    def delete(self, owner: str, conversation: str) -> None:
        """Delete ``conversation`` with its turns and citations.

        Raises:
            ChatError: not one of ``owner``'s conversations.
        """
        with self._writing() as db:
            self._own(db, owner, conversation)
            db.execute("DELETE FROM conversations WHERE id = ? AND owner = ?", (conversation, owner))
            db.execute("DELETE FROM images WHERE sha NOT IN (SELECT sha FROM turn_images)")  # shown nowhere now

    @staticmethod
    def _own(db: sqlite3.Connection, owner: str, conversation: str) -> None:
        found = db.execute("SELECT 1 FROM conversations WHERE id = ? AND owner = ?", (conversation, owner)).fetchone()
        if not found:  # the same words for "never existed" and "someone else's": an id reveals nothing
            raise ChatError(f"no saved conversation {conversation!r}")

    # --- reading -------------------------------------------------------------------------------------

    def list(self, owner: str) -> list[Conversation]:
        """``owner``'s conversations, the most recently updated first (without their turns)."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT id, title, created, updated FROM conversations WHERE owner = ?"
                " ORDER BY updated DESC, rowid DESC",
                (owner,),
            ).fetchall()
        return [Conversation(*row) for row in rows]

    def get(self, owner: str, conversation: str) -> Conversation:
        """One of ``owner``'s conversations with its turns, in order.

        Raises:
            ChatError: not one of ``owner``'s conversations.
        """
        with self._reading() as db:
            row = db.execute(
                "SELECT id, title, created, updated FROM conversations WHERE id = ? AND owner = ?",
                (conversation, owner),
            ).fetchone()
            if row is None:
                raise ChatError(f"no saved conversation {conversation!r}")
            cited: dict[int, builtins.list[SavedCitation]] = {}
            for turn, n, source, page, section, quote in db.execute(
                "SELECT turn, n, source, page, section, quote FROM citations WHERE conversation = ? ORDER BY turn, n",
                (conversation,),
            ):
                cited.setdefault(turn, []).append(SavedCitation(n, source, quote, page, section))
            images = dict(
                db.execute(
                    "SELECT DISTINCT images.sha, images.data FROM turn_images JOIN images USING (sha)"
                    " WHERE turn_images.conversation = ?",
                    (conversation,),
                ).fetchall()
            )
            turns = [
                Turn(
                    question,
                    answer,
                    _IMAGE_REF.sub(lambda m: images.get(m[1], m[0]), html),
                    bool(answered),
                    cited.get(n, []),
                )
                for n, question, answer, html, answered in db.execute(
                    "SELECT n, question, answer, html, answered FROM turns WHERE conversation = ? ORDER BY n",
                    (conversation,),
                )
            ]
        return Conversation(row[0], row[1], row[2], row[3], turns=turns)

    def export_markdown(self, owner: str, conversation: str) -> str:
        """The conversation as Markdown: each question, its answer with footnote markers, and a footnote per
        citation naming its source, page and the quoted sentence. Markers are numbered through the whole
        conversation (turn 1's ``[1] [2]``, then turn 2's ``[1]`` becomes ``[^3]``), so each is unique.

        Raises:
            ChatError: not one of ``owner``'s conversations.
        """
        chat = self.get(owner, conversation)
        lines = [f"# {chat.title}", ""]
        notes: list[str] = []
        for turn in chat.turns:
            numbers = {c.n: len(notes) + i for i, c in enumerate(turn.citations, 1)}
            notes += [f"[^{numbers[c.n]}]: {c.location}: “{' '.join(c.quote.split())}”" for c in turn.citations]
            lines += [f"**Q:** {' '.join(turn.question.split())}", "", _footnoted(turn.answer, numbers), ""]
        return "\n".join(lines + notes).rstrip() + "\n"


def _footnoted(text: str, numbers: dict[int, int]) -> str:
    """Answer markers as footnote markers: ``"In 2022 [1]. Later [2]."``, ``{1: 3, 2: 4}`` -> ``"In 2022 [^3].
    Later [^4]."``; a marker that cites nothing saved stays as it is."""
    return re.sub(r"\[(\d+)\]", lambda m: f"[^{numbers[int(m[1])]}]" if int(m[1]) in numbers else m[0], text).strip()
