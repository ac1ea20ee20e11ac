"""The Gradio app: a chat whose every citation opens the passage it came from, the retrieval trace,
the documents (add, delete, re-scan) and the answering settings.

`build` makes the `gr.Blocks`: this module lays out the page and wires its events to the functions in
`rag.app.handlers` (what each event does; each session's backend is `rag.app.sessions`). `launch` serves it
safely (127.0.0.1, no share link, optional login, a queue) and is `rag.app.serve`. How an answer looks (its
HTML, the sources, the trace, the page's CSS and script) is `rag.app.render`. Every name the app and the
tests use is importable from here.

Example:
    >>> from rag import RAG
    >>> from rag.app.ui import build, launch
    >>> rag = RAG(docs_dir="seeds")  # doctest: +SKIP
    >>> launch(build(rag), rag)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home (and no internet to wait on)

import gradio as gr  # noqa: E402

from rag import messages  # noqa: E402
from rag.app import uploads  # noqa: E402
from rag.app.handlers import _ingest as _ingest  # noqa: E402 - re-exported: tests call it as rag.app.ui._ingest
from rag.app.handlers import document_rows, friendly, handlers, render_error  # noqa: E402
from rag.app.render import TRACE_HINT  # noqa: E402
from rag.app.serve import CONCURRENCY, launch, load_users, login_check, warm_up  # noqa: E402
from rag.app.sessions import Backends  # noqa: E402
from rag.engine import RAG  # noqa: E402

__all__ = [
    "BACKENDS",
    "CONCURRENCY",
    "REMOTE",
    "Backends",
    "build",
    "document_rows",
    "friendly",
    "launch",
    "load_users",
    "login_check",
    "render_error",
    "warm_up",
]

BACKENDS = [
    ("Extractive (no model, instant)", "extractive"),
    ("Local model (SmolLM2, in-process)", "local"),
    ("OpenAI-compatible server", "openai"),
    ("Ollama", "ollama"),
]
REMOTE = ("openai", "ollama")  # the backends that need a URL and a model name


# --- the page ------------------------------------------------------------------------------------


def build(rag: RAG) -> gr.Blocks:
    """The app for ``rag``: Chat, Documents and Settings tabs, and the ``/ask`` API endpoint."""
    s = rag.settings
    T = messages.i18n()  # labels in the browser's language (serve.launch passes the same table to Gradio)
    on = handlers(rag)

    with gr.Blocks(title="rag — chat with your documents", analytics_enabled=False) as demo:
        gr.Markdown(
            "## rag — chat with your documents\nEvery answer cites its sources: click a **[n]** to read the passage."
        )
        history = gr.State([])
        current = gr.State("")  # the id of the saved conversation the chat continues ("" for a new one)
        browser = gr.BrowserState("", storage_key="rag-chats-owner", secret=on.chats.store.secret())
        with gr.Sidebar(open=True, elem_id="rag-chats"):
            gr.Markdown("### Conversations")
            new_chat = gr.Button("New chat", variant="primary", size="sm", elem_id="rag-chats-new")
            saved = gr.Radio(choices=[], label="Saved", show_label=False, elem_id="rag-chats-list")
            title = gr.Textbox(label="Title", placeholder="Open a conversation to rename it", elem_id="rag-chats-title")
            with gr.Row():
                rename = gr.Button("Rename", size="sm", elem_id="rag-chats-rename")
                delete_chat = gr.Button("Delete…", variant="stop", size="sm", elem_id="rag-chats-delete")
                confirm_chat = gr.Button(
                    "Yes, delete", variant="stop", size="sm", visible=False, elem_id="rag-chats-confirm"
                )
                keep_chat = gr.Button("Keep it", size="sm", visible=False, elem_id="rag-chats-keep")
            export = gr.HTML("", elem_id="rag-chats-export")
            chats_status = gr.HTML("", elem_id="rag-chats-status")
        with gr.Tabs():
            with gr.Tab(T("tab_chat"), id="chat"):
                chatbot = gr.Chatbot(
                    label=T("tab_chat"),
                    show_label=False,  # the tab names it; the label's badge covered the first line once scrolled
                    height=520,
                    latex_delimiters=[],
                    feedback_options=None,
                    placeholder=T("chat_placeholder"),
                    elem_id="rag-chat",
                    buttons=[],  # a copy button would copy the HTML the answer is rendered as
                )
                with gr.Row():
                    question = gr.Textbox(
                        placeholder=T("question_placeholder"),
                        show_label=False,
                        scale=6,
                        autofocus=True,
                        elem_id="rag-question",
                        submit_btn=False,
                    )
                    send = gr.Button(T("ask"), variant="primary", scale=1, elem_id="rag-ask")
                with gr.Row():
                    within = gr.Dropdown(
                        label=T("within"),
                        multiselect=True,
                        filterable=True,
                        choices=[],
                        value=[],
                        scale=6,
                        elem_id="rag-within",
                    )
                    clear = gr.Button(T("clear"), size="sm", scale=1, elem_id="rag-clear")
                with gr.Accordion(T("trace"), open=False, visible=True, elem_id="rag-trace") as trace_box:
                    trace = gr.HTML(TRACE_HINT)
            with gr.Tab(T("tab_documents"), id="documents"):
                doc_totals = gr.Markdown(elem_id="rag-doc-totals")
                doc_status = gr.HTML(
                    "<p>Drop files below to add them, or pick documents to delete.</p>", elem_id="rag-doc-status"
                )
                table = gr.Dataframe(
                    headers=["Document", "Chunks", "Ingested"],
                    datatype=["str", "number", "str"],
                    interactive=False,
                    elem_id="rag-documents",
                )
                upload = gr.File(
                    label=f"Add documents (drop files here; {', '.join(sorted(uploads.SUPPORTED_SUFFIXES))}, "
                    f"text files such as README; up to {s.max_file_mb:g} MB each)",
                    file_count="multiple",
                    # Any file: rag checks each one itself (`uploads.check_type`) and refuses the others by
                    # name, where Gradio's own filter refused the whole batch and could not admit a README.
                    file_types=None,
                    type="filepath",
                    elem_id="rag-upload",
                )
                with gr.Row():
                    to_delete = gr.Dropdown(
                        label="Documents to delete", multiselect=True, choices=[], scale=4, elem_id="rag-delete-pick"
                    )
                    delete = gr.Button("Delete…", variant="stop", scale=1, elem_id="rag-delete")
                    confirm = gr.Button("Yes, delete", variant="stop", visible=False, scale=1, elem_id="rag-confirm")
                    keep = gr.Button("Keep them", visible=False, scale=1, elem_id="rag-delete-keep")
                with gr.Row():
                    rescan = gr.Button("Re-scan folder", elem_id="rag-rescan")
                    cancel = gr.Button("Cancel upload", size="sm", elem_id="rag-cancel")
            with gr.Tab(T("tab_settings"), id="settings"):
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

        ask_inputs = [question, chatbot, history, backend, url, model, key, k, within, current, browser]
        ask_outputs = [question, chatbot, history, trace, current, browser]
        private: dict[str, Any] = {"api_visibility": "private"}
        # Chat and API share one limit of CONCURRENCY answers at a time; the rest wait in the queue.
        answering: dict[str, Any] = {"concurrency_id": "answer", "show_progress": "hidden", **private}
        # After each turn (saved by on.respond), the sidebar lists it, selected, with its export link.
        listed: dict[str, Any] = {
            "fn": on.chats.listing,
            "inputs": [browser, current, title],
            "outputs": [saved, title, export],
        }
        question.submit(on.respond, ask_inputs, ask_outputs, **answering).then(**listed, **private)
        send.click(on.respond, ask_inputs, ask_outputs, **answering).then(**listed, **private)
        chatbot.example_select(on.pick_example, None, question, **private).then(
            on.respond, ask_inputs, ask_outputs, **answering
        ).then(**listed, **private)
        fresh = [chatbot, history, current, title, export, chats_status, trace, saved, question]
        clear.click(on.chats.new, None, fresh, **private)  # the saved conversation stays; the next turn starts anew
        new_chat.click(on.chats.new, None, fresh, **private)
        chatbot.clear(on.chats.new, None, fresh, **private)
        opened = [chatbot, history, current, title, export, chats_status, trace]
        saved.input(on.chats.open, [saved, browser], opened, **private)
        rename.click(on.chats.rename, [current, title, browser], [saved, title, export, chats_status], **private)
        chat_deleting = [chats_status, confirm_chat, delete_chat, keep_chat]
        delete_chat.click(on.chats.delete_ask, [current, title], chat_deleting, **private)
        keep_chat.click(on.chats.delete_keep, None, chat_deleting, **private)
        confirm_chat.click(
            on.chats.delete,
            [current, browser],
            [chatbot, history, current, title, export, trace, saved, *chat_deleting],
            **private,
        )
        backend.change(lambda b: [gr.Textbox(visible=b in REMOTE)] * 3, backend, [url, model, key], **private)
        show_trace.change(lambda v: gr.Accordion(visible=v), show_trace, trace_box, **private)

        docs: dict[str, Any] = {"concurrency_limit": 1, "concurrency_id": "documents", **private}
        listing = [doc_totals, table, to_delete, chatbot, within]
        deleting = [doc_status, confirm, delete, keep]
        upload.upload(on.on_upload, upload, [doc_status, upload], **docs).then(on.refresh, None, listing, **private)
        cancel.click(on.on_cancel, None, doc_status, **private)  # not queued behind the upload it stops
        delete.click(on.on_delete_ask, to_delete, deleting, **private)
        keep.click(on.on_delete_keep, None, deleting, **private)
        confirm.click(on.on_delete, to_delete, deleting, **docs).then(on.refresh, None, listing, **private)
        rescan.click(on.on_rescan, None, doc_status, **docs).then(on.refresh, None, listing, **private)
        # The saved conversations are listed once the page's first refresh has redrawn the chat (its examples):
        # a conversation opened before that redraw had its opened citations closed again by it.
        demo.load(on.refresh, None, listing, **private).then(on.chats.start, browser, saved, **private)
        gr.api(on.ask, api_name="ask", concurrency_id="answer")
    return demo
