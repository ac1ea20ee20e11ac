"""Saved conversations in a real browser: Debian's Chromium driven by Playwright against `python app.py`.

Ask a question, stop the app and start it again on the same store and port, reopen the conversation from
the sidebar and click its citation; rename, export and delete it; another browser sees none of it.
Screenshots go to the test's tmp_path (outside the tracked tree).
"""

from __future__ import annotations

import shutil

import pytest

from rag import RAG
from tests.conftest import SEEDS, free_port, running_app
from tests.test_browser import _ask, _shows, browser  # noqa: F401 - `browser` is a fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]

QUESTION = "When was the Virtual Assets Policy Statement issued?"
EMPLOYEES = "How many employees does HashKey have?"


def _conversations(page) -> list[str]:
    return [t.strip() for t in page.locator("#rag-chats-list label").all_inner_texts()]


def test_a_saved_conversation_is_reopened_after_a_restart_with_its_citations(browser, tmp_path):  # noqa: F811
    docs, store = tmp_path / "docs", tmp_path / "store"
    shutil.copytree(SEEDS, docs)
    RAG(docs_dir=docs, store_dir=store).ingest()
    port = free_port()  # the same origin after the restart: the browser's id lives in its local storage
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True)

    with running_app(docs, store, tmp_path / "first.log", port=port) as url:
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("#rag-question textarea")
        answer = _ask(page, QUESTION)
        assert "2022" in answer.locator(".rag-answer").inner_text()
        _shows(page, "#rag-chats-list", QUESTION)  # saved once answered, listed in the sidebar
        page.close()

    with running_app(docs, store, tmp_path / "second.log", port=port) as url:  # the app, started again
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("#rag-question textarea")
        # Listed after the page's first refresh, which waits for the restarted app's models as a first answer does
        _shows(page, "#rag-chats-list", QUESTION, timeout=90_000)
        assert _conversations(page) == [QUESTION]
        assert page.locator("#rag-chat .rag-msg").count() == 0  # a fresh chat until one is opened
        page.locator("#rag-chats-list label").filter(has_text=QUESTION).click()
        page.wait_for_selector("#rag-chat .rag-msg .rag-answer")
        answer = page.locator("#rag-chat .rag-msg").last
        assert "2022" in answer.locator(".rag-answer").inner_text()
        assert QUESTION in page.locator("#rag-chat").inner_text()

        # Its citation opens the passage, the quote highlighted, exactly as when it was first answered.
        source = answer.locator("details.rag-src.rag-n-1")
        assert source.get_attribute("open") is None
        answer.locator(".rag-cite.rag-n-1").first.click()
        page.wait_for_function("() => document.querySelector('#rag-chat details.rag-src.rag-n-1').open")
        assert "hashkey-interview.txt" in source.locator(".rag-loc").inner_text()
        highlighted = " ".join(source.locator(".rag-passage mark").all_inner_texts())
        assert "Virtual Assets Policy Statement" in highlighted and "2022" in highlighted
        page.screenshot(path=tmp_path / "reopened.png")

        # A follow-up continues it: read with its history, saved into the same conversation.
        _ask(page, "And who issued it?")
        assert "HKSAR Government" in page.locator("#rag-chat .rag-msg").last.inner_text()
        assert _conversations(page) == [QUESTION]

        # Rename it. Markup in a title is shown as text, never rendered.
        title = page.locator("#rag-chats-title textarea, #rag-chats-title input").first
        title.fill("<img src=x onerror=window.ragPwned=1> <b>policy</b>")
        page.click("#rag-chats-rename")
        _shows(page, "#rag-chats-list", "<b>policy</b>")
        assert _conversations(page) == ["<img src=x onerror=window.ragPwned=1> <b>policy</b>"]
        assert page.evaluate("window.ragPwned === undefined") and page.locator("#rag-chats-list img").count() == 0
        title.fill("Virtual assets policy")
        page.click("#rag-chats-rename")
        _shows(page, "#rag-chats-status", "Renamed to “Virtual assets policy”.")
        _shows(page, "#rag-chats-list", "Virtual assets policy")
        assert _conversations(page) == ["Virtual assets policy"]

        # Export it: a Markdown file with the answers' citations as footnotes.
        with page.expect_download() as download:
            page.click("#rag-chats-export a")
        assert download.value.suggested_filename == "Virtual assets policy.md"
        text = download.value.path().read_text(encoding="utf-8")
        assert text.startswith("# Virtual assets policy\n") and f"**Q:** {QUESTION}" in text
        assert "[^1]" in text and "\n[^1]: hashkey-interview.txt: “" in text and "2022" in text

        # Another browser (its own local storage) lists only its own conversation, none of this one's.
        other = browser.new_page()
        other.goto(url)
        other.wait_for_selector("#rag-question textarea")
        _ask(other, EMPLOYEES)
        _shows(other, "#rag-chats-list", EMPLOYEES)
        assert _conversations(other) == [EMPLOYEES]
        other.close()

        # Delete it: asked first; "Keep it" keeps it, "Yes, delete" deletes it and empties the chat.
        page.click("#rag-chats-delete")
        page.locator("#rag-chats-keep").wait_for()
        page.screenshot(path=tmp_path / "delete-asked.png")
        page.click("#rag-chats-keep")
        _shows(page, "#rag-chats-status", "Nothing was deleted.")
        assert _conversations(page) == ["Virtual assets policy"]
        page.click("#rag-chats-delete")
        page.click("#rag-chats-confirm")
        _shows(page, "#rag-chats-status", "Deleted.")
        page.wait_for_function("() => !document.querySelector('#rag-chat .rag-msg')")
        assert _conversations(page) == []

        # Reloaded, the page lists what this browser has: the deleted one is gone, the other's never shown.
        page.reload()
        page.wait_for_selector("#rag-question textarea")
        _ask(page, "Who is the interviewee?")
        _shows(page, "#rag-chats-list", "Who is the interviewee?")
        assert _conversations(page) == ["Who is the interviewee?"]
        page.screenshot(path=tmp_path / "sidebar.png")
        page.close()
    context.close()
