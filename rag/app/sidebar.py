"""The conversations sidebar: whose conversations a request may see, and what the sidebar's controls do.

A conversation belongs to the signed-in user (``user:alice``) or, without a login, to the browser: a
random id kept in its local storage (``browser:3f2a…``, a `gr.BrowserState` encrypted with a secret kept in
the database, so it survives a restart of the app). `Sidebar` holds the event functions `rag.app.ui.build`
wires to the sidebar, over one `rag.app.chats.ChatStore`; `Sidebar.keep` is what the chat calls after each
finished answer.
"""

from __future__ import annotations

import base64
import html
import logging
import re
import uuid

import gradio as gr

from rag.app.chats import ChatStore
from rag.app.render import TRACE_HINT, render_question
from rag.errors import ChatError, RagError
from rag.types import Answer

log = logging.getLogger(__name__)

_BROWSER_ID = re.compile(r"[0-9a-f]{32}")
NO_OWNER = "this browser has no id for its conversations yet; reload the page"


def owner_of(request: gr.Request | None, browser: str | None) -> str | None:
    """``user:<login>`` when the app has a login, else ``browser:<id>`` for a well-formed browser id; None
    when neither is known (then nothing is saved)."""
    user = getattr(request, "username", None)
    if user:
        return f"user:{user}"
    if _browser_id(browser):
        return f"browser:{browser}"
    return None


def _browser_id(browser: object) -> bool:
    """Whether ``browser`` is an id this app gives a browser: 32 hex digits."""
    return isinstance(browser, str) and _BROWSER_ID.fullmatch(browser) is not None


def _status(text: str) -> str:
    return f"<p>{html.escape(text)}</p>" if text else ""


def _file_name(title: str) -> str:
    """``'When was it issued? (draft)'`` -> ``'When was it issued draft.md'``"""
    name = " ".join(re.sub(r"[^\w\- ]+", " ", title).split())[:60]
    return (name or "conversation") + ".md"


def _deleting(asking: bool) -> tuple:
    """ "Yes, delete", "Delete…", "Keep it" while a deletion is (or is not) waiting for its answer."""
    return gr.Button(visible=asking), gr.Button(visible=not asking), gr.Button(visible=asking)


class Sidebar:
    """The sidebar's event functions (each as Gradio calls it) over ``store``."""

    def __init__(self, store: ChatStore):
        self.store = store

    # --- saving, from the chat ---------------------------------------------------------------------

    def keep(
        self,
        request: gr.Request | None,
        browser: str | None,
        conversation: str | None,
        question: str,
        answer: Answer,
        rendered: str,
    ) -> tuple[str, str | None]:
        """Save a finished turn. Returns the conversation's id ("" when it could not be saved: the chat goes
        on, unsaved) and the browser's id: a new one for a browser without one yet (a question sent before
        the page's load event gave it one), which the page then keeps. A conversation deleted meanwhile (in
        another tab) continues as a new one."""
        if not getattr(request, "username", None) and not _browser_id(browser):
            browser = uuid.uuid4().hex
        owner = owner_of(request, browser)
        if owner is None:
            return "", browser
        try:
            try:
                return self.store.save_turn(owner, conversation or None, question, answer, rendered), browser
            except ChatError:
                if not conversation:
                    raise
                return self.store.save_turn(owner, None, question, answer, rendered), browser
        except RagError:
            log.exception("a turn was not saved")
            return "", browser

    # --- what the sidebar shows ---------------------------------------------------------------------

    def start(self, browser: str | None, request: gr.Request):
        """On page load: list the browser's (or the signed-in user's) conversations. Output: the list.

        A browser without an id has nothing to list, and gets its id with its first answer (`keep`), the one
        place ids are made: the load event may run after that first answer (the page's first refresh waits
        for a cold app's models), with the id it read before the answer brought one, and an id made here
        then replaced the one the conversation was saved under.
        """
        owner = owner_of(request, browser)
        return gr.skip() if owner is None else self._choices(owner, "")

    def listing(self, browser: str | None, current: str, shown: str, request: gr.Request):
        """After a turn: the list (the open conversation selected), its title and its export link.

        The title box is filled only while it is empty (the turn that created the conversation): after a
        follow-up it already shows the title, or a new one the person is typing, which must not be
        overwritten when the answer's bookkeeping lands a moment later.
        """
        owner = owner_of(request, browser)
        if not owner or not current:
            return self._choices(owner, ""), gr.skip(), ""
        try:
            title = self.store.get(owner, current).title
        except ChatError:
            return self._choices(owner, ""), "", ""
        return self._choices(owner, current), title if not shown.strip() else gr.skip(), self._export(owner, current)

    def _choices(self, owner: str | None, current: str) -> gr.Radio:
        chats = self.store.list(owner) if owner else []
        return gr.Radio(choices=[(c.title, c.id) for c in chats], value=current or None)

    def _export(self, owner: str | None, conversation: str) -> str:
        """A link that downloads the conversation as Markdown, from a data: URL (no file left on the server)."""
        if not owner or not conversation:
            return ""
        try:
            text = self.store.export_markdown(owner, conversation)
            name = _file_name(self.store.get(owner, conversation).title)
        except ChatError:
            return ""
        data = base64.b64encode(text.encode("utf-8")).decode("ascii")
        return (
            f'<a class="rag-chats-download" download="{html.escape(name)}" '
            f'href="data:text/markdown;charset=utf-8;base64,{data}">Export as Markdown</a>'
        )

    # --- the controls -------------------------------------------------------------------------------

    def open(self, chosen: str | None, browser: str | None, request: gr.Request):
        """Reopen a saved conversation: its messages as first shown, its history for follow-ups.
        Outputs: chat, history, current, title, export, status, trace."""
        owner = owner_of(request, browser)
        if not chosen:
            return (gr.skip(),) * 7
        try:
            if owner is None:
                raise ChatError(NO_OWNER)
            chat = self.store.get(owner, chosen)
        except ChatError as exc:
            return (*(gr.skip(),) * 5, _status(str(exc)), gr.skip())
        messages, history = [], []
        for t in chat.turns:
            messages += [
                {"role": "user", "content": render_question(t.question)},
                {"role": "assistant", "content": t.html},
            ]
            history += [{"role": "user", "content": t.question}, {"role": "assistant", "content": t.answer}]
        return messages, history, chat.id, chat.title, self._export(owner, chat.id), "", TRACE_HINT

    def new(self):
        """A new, empty conversation (saved with its first answer). Outputs: chat, history, current, title,
        export, status, trace, list (nothing selected), question."""
        return [], [], "", "", "", "", TRACE_HINT, gr.Radio(value=None), ""

    def rename(self, current: str, title: str, browser: str | None, request: gr.Request):
        """Outputs: list, title, export, status."""
        owner = owner_of(request, browser)
        if not current or owner is None:
            return gr.skip(), gr.skip(), gr.skip(), _status("Open a saved conversation to rename it.")
        try:
            title = self.store.rename(owner, current, title)
        except ChatError as exc:
            return gr.skip(), gr.skip(), gr.skip(), _status(f"Not renamed: {exc}.")
        return self._choices(owner, current), title, self._export(owner, current), _status(f"Renamed to “{title}”.")

    def delete_ask(self, current: str, title: str):
        """Outputs: status, "Yes, delete", "Delete…", "Keep it"."""
        if not current:
            return _status("Open a saved conversation to delete it."), *_deleting(False)
        return _status(f"Delete “{title}”? This cannot be undone."), *_deleting(True)

    def delete_keep(self):
        return _status("Nothing was deleted."), *_deleting(False)

    def delete(self, current: str, browser: str | None, request: gr.Request):
        """Delete the open conversation and show an empty chat. Outputs: chat, history, current, title,
        export, trace, list, status, then the three delete buttons."""
        owner = owner_of(request, browser)
        try:
            if owner is None:
                raise ChatError(NO_OWNER)
            self.store.delete(owner, current)
        except ChatError as exc:
            return *(gr.skip(),) * 7, _status(f"Not deleted: {exc}."), *_deleting(False)
        listed = self._choices(owner, "")
        return [], [], "", "", "", TRACE_HINT, listed, _status("Deleted."), *_deleting(False)
