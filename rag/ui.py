"""The Gradio app: a chat whose every citation opens the passage it came from, the retrieval trace,
the documents (add, delete, re-scan) and the answering settings.

`build` makes the `gr.Blocks`; `launch` serves it safely (127.0.0.1, no share link, optional login, a
queue). How an answer looks (its HTML, the sources, the trace, the page's CSS and script) is `rag.render`.

Example:
    >>> from rag import RAG
    >>> from rag.ui import build, launch
    >>> rag = RAG(docs_dir="seeds")  # doctest: +SKIP
    >>> launch(build(rag), rag)  # doctest: +SKIP
"""

from __future__ import annotations

import hmac
import html
import logging
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home (and no internet to wait on)

import gradio as gr  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from . import uploads  # noqa: E402
from .cli import one_line  # noqa: E402
from .engine import RAG  # noqa: E402
from .errors import BackendError, NotIngestedError, RagError, StoreLockedError  # noqa: E402
from .examples import examples_for  # noqa: E402
from .render import CSS, HEAD, TRACE_HINT, api_text, render_answer, render_partial, render_trace  # noqa: E402

log = logging.getLogger(__name__)

CONCURRENCY = 4  # answers computed at once; more wait in the queue (2 CPU cores answer ~4 at a time well)
BACKENDS = [
    ("Extractive (no model, instant)", "extractive"),
    ("Local model (SmolLM2, in-process)", "local"),
    ("OpenAI-compatible server", "openai"),
    ("Ollama", "ollama"),
]
REMOTE = ("openai", "ollama")  # the backends that need a URL and a model name


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


# --- per-session answering backends ---------------------------------------------------------------


class Backends:
    """The `RAG` to answer with for the backend chosen in a session's settings.

    The server's own settings use ``rag`` itself; another choice gets a `RAG` of its own (cached, sharing
    the embedding model), so one person's settings never change another's answers.
    """

    def __init__(self, rag: RAG, size: int = 8):
        self.rag = rag
        self.size = size
        self._cache: OrderedDict[tuple, RAG] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, llm: str, base_url: str = "", model: str = "", api_key: str = "") -> RAG:
        s = self.rag.settings
        url: str | None = (base_url or "").strip() or None
        name: str | None = (model or "").strip() or None
        # A blank key means the server's own key, but only for the server's own URL: never send it elsewhere.
        key = api_key or (s.llm_api_key if url == s.llm_base_url else None)
        want = {"llm": llm or s.llm, "llm_base_url": url, "llm_model": name, "llm_api_key": key}
        if all(getattr(s, k) == v for k, v in want.items()):
            return self.rag
        cache_key = tuple(want.values())
        with self._lock:
            if cache_key in self._cache:
                self._cache.move_to_end(cache_key)
                return self._cache[cache_key]
            variant = RAG(settings=s, **want)
            variant.embedder = self.rag.embedder
            _ = variant.store  # created under the lock: Chroma's client is not safe to create concurrently
            self._cache[cache_key] = variant
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
            return variant


# --- documents ------------------------------------------------------------------------------------


def document_rows(rag: RAG) -> list[list]:
    try:
        docs = rag.documents()
    except Exception:  # noqa: BLE001 - an empty or missing store lists nothing
        return []
    return [[d.source, d.chunks, time.strftime("%Y-%m-%d %H:%M", time.localtime(d.ingested_at))] for d in docs]


def _ingest(rag: RAG, progress: gr.Progress | None = None, desc: str = "Ingesting", emptied: bool = False) -> str:
    """Run the incremental ingest and say what it did in one line.

    ``emptied``: the person just deleted the last document. The ingest refuses to prune a folder that has
    no documents left (an unmounted folder must not wipe a store), so that one case empties it on purpose.
    """

    def report_progress(done: int, total: int, last: str) -> None:
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
    return line[0].upper() + line[1:]


def _status(lines: list[str]) -> str:
    """Lines for the Documents tab, escaped: a file may be called ``<img onerror=…>.txt`` or ``*x*.md``."""
    return "".join(f"<p>{html.escape(line)}</p>" for line in lines)


# --- the page ------------------------------------------------------------------------------------


def build(rag: RAG) -> gr.Blocks:
    """The app for ``rag``: Chat, Documents and Settings tabs, and the ``/ask`` API endpoint."""
    s = rag.settings
    backends = Backends(rag)
    examples_cache = examples_for(rag)
    docs_lock = threading.Lock()  # one document change at a time in this process (the file lock covers others)

    def respond(message, chat, history, backend, url, model, key, k) -> Iterator[tuple]:
        message = (message or "").strip()
        if not message:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        chat = list(chat or []) + [
            {"role": "user", "content": message},
            {"role": "assistant", "content": render_partial("")},
        ]
        yield "", chat, gr.skip(), gr.skip()
        answer, streamed = None, ""
        try:
            engine = backends.get(backend, url, model, key)
            for item in engine.stream(message, history=list(history or []), k=int(k)):
                if isinstance(item, str):
                    streamed += item
                    chat[-1]["content"] = render_partial(streamed)
                    yield gr.skip(), chat, gr.skip(), gr.skip()
                else:
                    answer = item
            if answer is None:
                raise RagError("the answerer stopped without an answer; please ask again")
        except Exception as exc:  # noqa: BLE001 - every failure becomes one sentence in the chat
            chat[-1]["content"] = render_error(exc)
            yield gr.skip(), chat, gr.skip(), gr.skip()
            return
        chat[-1]["content"] = render_answer(answer)
        history = list(history or []) + [
            {"role": "user", "content": message},
            {"role": "assistant", "content": answer.text},
        ]
        yield gr.skip(), chat, history, render_trace(answer)

    def ask(question: str) -> str:
        """Answer a question from the documents: the answer with [n] markers, then its numbered sources."""
        question = (question or "").strip()
        if not question:
            raise gr.Error("Ask a question.")
        try:
            return api_text(rag.ask(question))
        except Exception as exc:  # noqa: BLE001
            raise gr.Error(friendly(exc)) from None

    def refresh():
        rows = document_rows(rag)
        examples = [{"text": q} for q in examples_cache.get()]
        return rows, gr.Dropdown(choices=[r[0] for r in rows], value=[]), gr.Chatbot(examples=examples or None)

    def pick_example(evt: gr.SelectData) -> str:
        return evt.value["text"] if isinstance(evt.value, dict) else str(evt.value)

    def on_upload(files, progress=gr.Progress()):  # noqa: B008 - Gradio's way to ask for a progress bar
        if not files:
            return gr.skip(), gr.skip()
        paths = [Path(f if isinstance(f, str) else f.name) for f in files]
        with docs_lock:
            result = uploads.add_files([(p.name, p) for p in paths], s.docs_dir, s.max_file_mb)
            lines = [f"Refused {name}: {reason}." for name, reason in result.refused]
            if result.saved:
                try:
                    lines.insert(0, _ingest(rag, progress, "Ingesting"))
                except Exception as exc:  # noqa: BLE001
                    lines.insert(0, friendly(exc))
        return _status(lines), None

    def on_delete_ask(selected):
        if not selected:
            return _status(["Pick the documents to delete first."]), gr.Button(visible=False)
        names = ", ".join(selected)
        return (
            _status([f"Delete {names} from the documents folder and the index? This removes the file(s) from disk."]),
            gr.Button(visible=True),
        )

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
            if deleted:
                try:
                    emptied = not uploads.has_documents(s.docs_dir)
                    lines.insert(0, _ingest(rag, progress, "Updating", emptied=emptied))
                except Exception as exc:  # noqa: BLE001
                    lines.insert(0, friendly(exc))
        return _status(lines), gr.Button(visible=False)

    def on_rescan(progress=gr.Progress()):  # noqa: B008 - Gradio's way to ask for a progress bar
        with docs_lock:
            try:
                return _status([_ingest(rag, progress, "Ingesting")])
            except Exception as exc:  # noqa: BLE001
                return _status([friendly(exc)])

    with gr.Blocks(title="rag — chat with your documents", analytics_enabled=False) as demo:
        gr.Markdown(
            "## rag — chat with your documents\nEvery answer cites its sources: click a **[n]** to read the passage."
        )
        history = gr.State([])
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                chatbot = gr.Chatbot(
                    label="Chat",
                    height=520,
                    latex_delimiters=[],
                    feedback_options=None,
                    placeholder="Ask anything about the documents — or pick an example below.",
                    elem_id="rag-chat",
                    buttons=[],  # a copy button would copy the HTML the answer is rendered as
                )
                with gr.Row():
                    question = gr.Textbox(
                        placeholder="Ask a question about your documents…",
                        show_label=False,
                        scale=6,
                        autofocus=True,
                        elem_id="rag-question",
                        submit_btn=False,
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="rag-ask")
                clear = gr.Button("Clear chat", size="sm", elem_id="rag-clear")
                with gr.Accordion("Retrieval trace", open=False, visible=True, elem_id="rag-trace") as trace_box:
                    trace = gr.HTML(TRACE_HINT)
            with gr.Tab("Documents", id="documents"):
                doc_status = gr.HTML(elem_id="rag-doc-status")
                table = gr.Dataframe(
                    headers=["Document", "Chunks", "Ingested"],
                    datatype=["str", "number", "str"],
                    interactive=False,
                    elem_id="rag-documents",
                )
                upload = gr.File(
                    label=f"Add documents (drop files here; {', '.join(sorted(uploads.SUPPORTED_SUFFIXES))}; "
                    f"up to {s.max_file_mb:g} MB each)",
                    file_count="multiple",
                    file_types=sorted(uploads.SUPPORTED_SUFFIXES),
                    type="filepath",
                    elem_id="rag-upload",
                )
                with gr.Row():
                    to_delete = gr.Dropdown(
                        label="Documents to delete", multiselect=True, choices=[], scale=4, elem_id="rag-delete-pick"
                    )
                    delete = gr.Button("Delete…", variant="stop", scale=1, elem_id="rag-delete")
                    confirm = gr.Button("Yes, delete", variant="stop", visible=False, scale=1, elem_id="rag-confirm")
                rescan = gr.Button("Re-scan folder", elem_id="rag-rescan")
            with gr.Tab("Settings", id="settings"):
                gr.Markdown("These settings apply to this browser tab only; the server's defaults are preselected.")
                backend = gr.Radio(BACKENDS, value=s.llm, label="Answer backend", elem_id="rag-backend")
                remote = s.llm in REMOTE
                url = gr.Textbox(
                    s.llm_base_url or "",
                    label="Server URL (OpenAI-compatible or Ollama)",
                    placeholder="http://localhost:11434 or https://api.example.com/v1",
                    visible=remote,
                )
                model = gr.Textbox(s.llm_model or "", label="Model name", visible=remote)
                key = gr.Textbox(
                    "",
                    label="API key",
                    type="password",
                    placeholder="(the server's own key)" if s.llm_api_key else "(none)",
                    visible=remote,
                )
                k = gr.Slider(1, 20, value=min(s.top_k, 20), step=1, label="Passages per answer (k)")
                show_trace = gr.Checkbox(True, label="Show the retrieval trace under the chat")

        ask_inputs = [question, chatbot, history, backend, url, model, key, k]
        ask_outputs = [question, chatbot, history, trace]
        private: dict[str, Any] = {"api_visibility": "private"}
        # Chat and API share one limit of CONCURRENCY answers at a time; the rest wait in the queue.
        answering: dict[str, Any] = {"concurrency_id": "answer", "show_progress": "hidden", **private}
        question.submit(respond, ask_inputs, ask_outputs, **answering)
        send.click(respond, ask_inputs, ask_outputs, **answering)
        chatbot.example_select(pick_example, None, question, **private).then(
            respond, ask_inputs, ask_outputs, **answering
        )
        clear.click(
            lambda: ([], [], "", TRACE_HINT),
            None,
            [chatbot, history, question, trace],
            **private,
        )
        chatbot.clear(lambda: ([], TRACE_HINT), None, [history, trace], **private)
        backend.change(lambda b: [gr.Textbox(visible=b in REMOTE)] * 3, backend, [url, model, key], **private)
        show_trace.change(lambda v: gr.Accordion(visible=v), show_trace, trace_box, **private)

        docs: dict[str, Any] = {"concurrency_limit": 1, "concurrency_id": "documents", **private}
        listing = [table, to_delete, chatbot]
        upload.upload(on_upload, upload, [doc_status, upload], **docs).then(refresh, None, listing, **private)
        delete.click(on_delete_ask, to_delete, [doc_status, confirm], **private)
        confirm.click(on_delete, to_delete, [doc_status, confirm], **docs).then(refresh, None, listing, **private)
        rescan.click(on_rescan, None, doc_status, **docs).then(refresh, None, listing, **private)
        demo.load(refresh, None, listing, **private)
        gr.api(ask, api_name="ask", concurrency_id="answer")
    return demo


# --- serving -------------------------------------------------------------------------------------


def load_users(spec: str | None = None, users_file: Path | None = None) -> list[tuple[str, str]]:
    """``"alice:pw,bob:pw2"`` and/or a file of ``user:password`` lines -> [(user, password)].

    Raises:
        RagError: for an entry without ``user:password`` (the message never repeats a password).
    """
    entries: list[tuple[str, str]] = []
    if spec:
        entries += [("RAG_APP_USERS", e) for e in spec.split(",") if e.strip()]
    if users_file:
        try:
            lines = Path(users_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise RagError(f"cannot read the users file {users_file}: {exc.strerror or exc}") from None
        entries += [(str(users_file), line) for line in lines if line.strip() and not line.lstrip().startswith("#")]
    users = []
    for i, (where, entry) in enumerate(entries, 1):
        user, sep, password = entry.strip().partition(":")
        if not sep or not user.strip() or not password:
            raise RagError(f"{where}: entry {i} is not 'user:password'")
        users.append((user.strip(), password))
    return users


def login_check(users: list[tuple[str, str]]) -> Callable[[str, str], bool]:
    """A constant-time check of a username and password against ``users``."""
    table = {u: p.encode() for u, p in users}

    def check(username: str, password: str) -> bool:
        given = (password or "").encode()
        expected = table.get(username)
        if expected is None:
            hmac.compare_digest(given, given)  # same work for an unknown user: no timing hint of who exists
            return False
        return hmac.compare_digest(expected, given)

    return check


def warm_up(rag: RAG, background: bool = False) -> threading.Thread | None:
    """Load the embedding model and the keyword index, then find the example questions, before the first
    person arrives: most of a cold start. ``background``: in a daemon thread, returned."""
    if background:
        try:  # open the store here, once: two threads creating Chroma's client at once can break it
            _ = rag.store
        except RagError:
            pass  # the first question will say what is wrong
        thread = threading.Thread(target=warm_up, args=(rag,), daemon=True, name="rag-warm-up")
        thread.start()
        return thread
    try:
        rag.search("warm up", k=1)
        examples_for(rag).get()
    except Exception:  # noqa: BLE001 - nothing ingested yet is fine; the first question will say so
        log.debug("warm-up skipped", exc_info=True)
    return None


def launch(
    demo: gr.Blocks,
    rag: RAG,
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    share: bool = False,
    users: list[tuple[str, str]] | None = None,
    block: bool = True,
    quiet: bool = False,
):
    """Serve ``demo`` on ``host:port``: a queue of `CONCURRENCY` answers at a time, no share link unless
    asked, a login page when ``users`` are given, and no file served from outside Gradio's own cache.
    (Start `warm_up` in the background first, so that the first question does not load the model.)"""
    if host not in ("127.0.0.1", "localhost", "::1") and not users:
        print(
            f"warning: serving on {host} without a login: anyone who reaches port {port} can read, add and delete "
            "documents; set RAG_APP_USERS or --users-file",
            file=sys.stderr,
        )
    s = rag.settings
    _, local_url, share_url = demo.queue(default_concurrency_limit=CONCURRENCY, max_size=256).launch(
        server_name=host,
        server_port=port,
        share=share,
        auth=login_check(users) if users else None,
        auth_message="Sign in to chat with the documents." if users else None,
        max_file_size=int(s.max_file_mb * 1e6),
        blocked_paths=[str(Path(s.docs_dir).resolve()), str(Path(s.store_dir).resolve())],
        show_error=False,
        ssr_mode=False,
        footer_links=["api"],
        prevent_thread_lock=True,
        quiet=True,
        css=CSS,
        head=HEAD,
    )
    if not quiet:
        where = "this machine only" if host in ("127.0.0.1", "localhost", "::1") else f"listening on {host}"
        print(f"rag app: {local_url} ({where}{', login required' if users else ''}); Ctrl+C stops it", flush=True)
        if share_url:
            print(f"public link: {share_url}", flush=True)
    if block:
        demo.block_thread()
    return local_url
