"""What the app does when a person acts: ask, pick an example, add, delete or re-scan documents.

`handlers` makes the event functions for one `RAG` (closures over it, its per-session `Backends`, its
example questions and a lock for document changes); `rag.app.ui.build` lays out the page and wires them to
its components. Every failure becomes one sentence (`friendly`), never a traceback in the chat window.
"""

from __future__ import annotations

import hmac
import html
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home (and no internet to wait on)

import gradio as gr  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from rag.app import uploads  # noqa: E402
from rag.app.chats import ChatStore  # noqa: E402
from rag.app.examples import examples_for  # noqa: E402
from rag.app.pageview import page_views  # noqa: E402
from rag.app.render import api_text, render_answer, render_partial, render_question, render_trace  # noqa: E402
from rag.app.sessions import Backends  # noqa: E402
from rag.app.sidebar import Sidebar  # noqa: E402
from rag.engine import RAG  # noqa: E402
from rag.errors import (  # noqa: E402
    BackendError,
    NotIngestedError,
    RagError,
    StoreLockedError,
    one_line,  # noqa: E402
)
from rag.ingest.pipeline import IngestCancelled  # noqa: E402
from rag.limits import Limits  # noqa: E402

log = logging.getLogger(__name__)


# --- errors as one sentence --------------------------------------------------------------------


def friendly(exc: BaseException) -> str:
    """One sentence a person can act on, never a traceback."""
    if isinstance(exc, NotIngestedError):
        return "No documents are ingested yet: add some in the Documents tab, then ask again."
    if isinstance(exc, StoreLockedError):
        return "The documents are being updated right now; please try again in a moment."
    if isinstance(exc, BackendError):
        return f"The answering backend failed ({one_line(exc)}); check the Settings tab or switch to Extractive."
    if isinstance(exc, RagError | ValidationError):
        return one_line(exc)
    log.exception("unexpected error", exc_info=exc)
    return "Something went wrong on the server; the details are in its log."


def render_error(exc: BaseException) -> str:
    """A failure as a chat message: `friendly`'s one sentence, escaped."""
    return f'<div class="rag-msg"><div class="rag-error">{html.escape(friendly(exc))}</div></div>'


# --- documents ------------------------------------------------------------------------------------


def document_rows(rag: RAG) -> list[list]:
    try:
        docs = rag.documents()
    except Exception:  # noqa: BLE001 - an empty or missing store lists nothing
        return []
    return [[d.source, d.chunks, time.strftime("%Y-%m-%d %H:%M", time.localtime(d.ingested_at))] for d in docs]


def totals(rows: list[list]) -> str:
    """The Documents tab's summary line: how many documents and chunks, and their size on disk."""
    if not rows:
        return "No documents yet: drop files below to add them."
    chunks = sum(int(r[1]) for r in rows)
    return f"**{len(rows):,}** document{'s' * (len(rows) != 1)} · **{chunks:,}** chunks"


def _deleting(asking: bool) -> tuple:
    """The delete buttons while a deletion is (or is not) waiting for confirmation."""
    return gr.Button(visible=asking), gr.Button(visible=not asking), gr.Button(visible=asking)


def _ingest(
    rag: RAG,
    progress: gr.Progress | None = None,
    desc: str = "Ingesting",
    emptied: bool = False,
    cancel: threading.Event | None = None,
) -> str:
    """Run the incremental ingest and say what it did in one line.

    ``emptied``: the person just deleted the last document. The ingest refuses to prune a folder that has
    no documents left (an unmounted folder must not wipe a store), so that one case empties it on purpose.
    ``cancel``: once set, the ingest stops at its next progress report (`IngestCancelled`).
    """

    def report_progress(done: int, total: int, last: str) -> None:
        if cancel is not None and cancel.is_set():
            raise IngestCancelled("cancelled")
        if progress is not None:
            progress((done, total), desc=f"{desc} {last}", unit="files")

    if progress is not None:
        progress(0, desc="Checking the documents folder")
    report = rag.ingest(progress=report_progress, reset=emptied)
    if emptied:
        return "The documents folder is empty now, and so is the index: add documents to chat again."
    parts = []
    for label, names in (("added", report.added), ("updated", report.updated), ("removed", report.removed)):
        if names:
            parts.append(f"{label} {', '.join(names)}")
    line = ("; ".join(parts) or "no changes") + f" ({report.chunks} chunks in the store)."
    for path, reason in report.failed:
        line += f" Could not read {path}: {reason}."
    for path, reason in report.no_text:
        line += f" Found no text in {path} ({reason})."
    for path in report.links_refused:
        line += f" Did not follow {path}: a link to outside the documents folder."
    return line[0].upper() + line[1:]


def _status(lines: list[str]) -> str:
    """Lines for the Documents tab, escaped: a file may be called ``<img onerror=…>.txt`` or ``*x*.md``."""
    return "".join(f"<p>{html.escape(line)}</p>" for line in lines)


# --- sessions bound to their sign-in -------------------------------------------------------------

OTHERS_SESSION = "this chat session belongs to another signed-in user; reload the page to start your own"


class SessionOwners:
    """Which signed-in user each browser session (Gradio's session hash) belongs to.

    Gradio keeps a session's state (the conversation history) by its session hash alone, so a signed-in
    user who sends another's hash would read that person's history. The first user to use a hash owns it;
    anyone else is refused. Without a login there is one anonymous user and nothing to bind.
    """

    def __init__(self, size: int = 10_000):
        self.size = size
        self._owners: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, request: gr.Request | None) -> bool:
        """True when ``request``'s user may use its session (claiming it if new)."""
        user = getattr(request, "username", None)
        session = getattr(request, "session_hash", None)
        if user is None or session is None:
            return True
        with self._lock:
            owner = self._owners.setdefault(session, user)
            self._owners.move_to_end(session)
            while len(self._owners) > self.size:
                self._owners.popitem(last=False)
            return hmac.compare_digest(owner, user)


# --- the event functions -------------------------------------------------------------------------


@dataclass(frozen=True)
class Handlers:
    """The app's event functions, each as Gradio calls it (its signature is what Gradio inspects)."""

    respond: Callable[..., Iterator[tuple]]  # a turn, streamed: (question, chat, history, trace, conversation, browser)
    ask: Callable[..., str]  # the ``/ask`` API endpoint
    refresh: Callable[[], tuple]  # the totals, document table, delete picker, chat's examples, "Ask within" choices
    pick_example: Callable[[gr.SelectData], str]
    on_upload: Callable[..., tuple]
    on_delete_ask: Callable[..., tuple]
    on_delete: Callable[..., tuple]
    on_delete_keep: Callable[[], tuple]
    on_rescan: Callable[..., str]
    on_cancel: Callable[[], str]
    chats: Sidebar  # the saved conversations' sidebar (`rag.app.sidebar`)


def handlers(rag: RAG) -> Handlers:
    """The event functions for ``rag``, sharing one `Backends`, one example cache and one documents lock."""
    s = rag.settings
    backends = Backends(rag)
    examples_cache = examples_for(rag)
    docs_lock = threading.Lock()  # one document change at a time in this process (the file lock covers others)
    cancel = threading.Event()  # set by the Cancel button: the running upload's ingest stops at its next step
    uploads.remove_staged(s.docs_dir)  # an upload being saved when the app was killed
    uploads.private_cache(s.store_dir)  # Gradio keeps uploads in a folder of this app's, emptied at start
    owners = SessionOwners()
    chats = Sidebar(ChatStore.of(s))

    def respond(
        message,
        chat,
        history,
        backend,
        url,
        model,
        key,
        k,
        within=None,
        conversation="",
        browser=None,
        request: gr.Request | None = None,
    ) -> Iterator[tuple]:
        """A chat turn; once answered it is saved to ``conversation`` (a new one when "") of this user's or
        browser's conversations, and the last update carries its id (and the browser's, if it had none yet)."""
        message = (message or "").strip()
        if not message:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        if not owners.claim(request):  # another signed-in user's session: nothing of it is read or written
            chat = list(chat or []) + [{"role": "assistant", "content": render_error(RagError(OTHERS_SESSION))}]
            yield gr.skip(), chat, gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        chat = list(chat or []) + [
            {"role": "user", "content": render_question(message)},
            {"role": "assistant", "content": render_partial("")},
        ]
        yield "", chat, gr.skip(), gr.skip(), gr.skip(), gr.skip()
        answer, streamed = None, ""
        try:
            engine = backends.get(backend, url, model, key)
            for item in engine.stream(message, history=list(history or []), k=int(k), documents=within or None):
                if isinstance(item, str):
                    streamed += item
                    chat[-1]["content"] = render_partial(streamed)
                    yield gr.skip(), chat, gr.skip(), gr.skip(), gr.skip(), gr.skip()
                else:
                    answer = item
            if answer is None:
                raise RagError("the answerer stopped without an answer; please ask again")
        except Exception as exc:  # noqa: BLE001 - every failure becomes one sentence in the chat
            chat[-1]["content"] = render_error(exc)
            yield gr.skip(), chat, gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        chat[-1]["content"] = render_answer(answer, page_views(answer.citations, s))  # PDF pages: final only
        history = list(history or []) + [
            {"role": "user", "content": message},
            {"role": "assistant", "content": answer.text},
        ]
        conversation, browser = chats.keep(request, browser, conversation, message, answer, chat[-1]["content"])
        yield gr.skip(), chat, history, render_trace(answer), conversation, browser

    def ask(question: str, documents: list[str] | None = None, folder: str | None = None) -> str:
        """Answer a question from the documents (only from ``documents`` and/or those inside ``folder``, as
        the Documents tab names them, when given): the answer with [n] markers, then its numbered sources."""
        question = (question or "").strip()
        if not question:
            raise gr.Error("Ask a question.")
        try:
            return api_text(rag.ask(question, documents=documents or None, folder=folder or None))
        except Exception as exc:  # noqa: BLE001
            raise gr.Error(friendly(exc)) from None

    def refresh():
        rows = document_rows(rag)
        examples = [{"text": q} for q in examples_cache.get()]
        names = [r[0] for r in rows]
        return (
            totals(rows),
            rows,
            gr.Dropdown(choices=names, value=[]),
            gr.Chatbot(examples=examples or None),
            gr.Dropdown(choices=names, value=[]),  # "Ask within": the documents changed, so all of them again
        )

    def pick_example(evt: gr.SelectData) -> str:
        return evt.value["text"] if isinstance(evt.value, dict) else str(evt.value)

    def on_upload(files, progress=gr.Progress()):  # noqa: B008 - Gradio's way to ask for a progress bar
        if not files:
            return gr.skip(), gr.skip()
        paths = [Path(f if isinstance(f, str) else f.name) for f in files]
        with docs_lock:
            cancel.clear()
            try:
                result = uploads.add_files([(p.name, p) for p in paths], s.docs_dir, s.max_file_mb, Limits.of(s))
            finally:  # saved or refused, Gradio's copy must not stay downloadable from its cache
                uploads.discard_cached(paths)
            lines = [f"Refused {name}: {reason}." for name, reason in result.refused]
            if result.saved:
                try:
                    lines.insert(0, _ingest(rag, progress, "Ingesting", cancel=cancel))
                except IngestCancelled:
                    lines.insert(0, _cancelled(result))
                except Exception as exc:  # noqa: BLE001
                    lines.insert(0, friendly(exc))
        return _status(lines), None

    def _cancelled(result: uploads.UploadResult) -> str:
        """After a cancel: a new file that did not make it into the index is taken out of the folder again
        (a replaced one stays, and keeps its old version in the index until a re-scan)."""
        done = {d.source for d in rag.documents()}
        dropped = [n for n in result.saved if n not in done and n not in result.replaced]
        for name in dropped:
            (s.docs_dir / name).unlink(missing_ok=True)
        kept = [n for n in result.saved if n in done and n not in result.replaced]
        line = "Cancelled."
        if dropped:
            line += f" Not added: {', '.join(dropped)}."
        if kept:
            line += f" Added before the cancel: {', '.join(kept)}."
        if pending := [n for n in result.replaced if n in result.saved]:
            line += f" {', '.join(pending)}: the new version is saved; Re-scan to index it."
        return line

    def on_cancel() -> str:
        cancel.set()
        return _status(["Cancelling… the upload stops at its next step."])

    def on_delete_ask(selected):
        """Outputs: status, "Yes, delete", "Delete…", "Keep them": while a deletion waits for its answer,
        only the two answers to it are offered."""
        if not selected:
            return _status(["Pick the documents to delete first."]), *_deleting(False)
        names = ", ".join(selected)
        return (
            _status([f"Delete {names} from the documents folder and the index? This removes the file(s) from disk."]),
            *_deleting(True),
        )

    def on_delete_keep():
        return _status(["Nothing was deleted."]), *_deleting(False)

    def on_delete(selected, progress=gr.Progress()):  # noqa: B008 - Gradio's way to ask for a progress bar
        lines = []
        with docs_lock:
            known = {r[0] for r in document_rows(rag)}
            deleted = []
            for source in selected or []:
                try:
                    uploads.delete_file(s.docs_dir, source, known)
                    deleted.append(source)
                except uploads.UploadError as exc:
                    lines.append(f"Not deleted: {exc}.")
            uploads.discard_cached_named(deleted)
            if deleted:
                try:
                    emptied = not uploads.has_documents(s.docs_dir)
                    lines.insert(0, _ingest(rag, progress, "Updating", emptied=emptied))
                except Exception as exc:  # noqa: BLE001
                    lines.insert(0, friendly(exc))
        return _status(lines), *_deleting(False)

    def on_rescan(progress=gr.Progress()):  # noqa: B008 - Gradio's way to ask for a progress bar
        with docs_lock:
            try:
                return _status([_ingest(rag, progress, "Ingesting")])
            except Exception as exc:  # noqa: BLE001
                return _status([friendly(exc)])

    return Handlers(
        respond,
        ask,
        refresh,
        pick_example,
        on_upload,
        on_delete_ask,
        on_delete,
        on_delete_keep,
        on_rescan,
        on_cancel,
        chats,
    )
