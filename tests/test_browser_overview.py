"""A summary in the browser and over the `/ask` API: `python app.py` over three invented documents.

In the chat, asking for a summary of one document gets its central sentences, each with a citation that
opens its passage, and a line saying how much of the document was covered; `/ask` returns the same text
with its sources.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import ingested, running_app
from tests.test_browser import _ask, _shows, browser  # noqa: F401 - a fixture, used by name
from tests.test_overview import APIARY, LIGHTHOUSE, ORCHARD, _doc

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser-overview")
    files = {"apiary-notes.md": APIARY, "skellig-lighthouse.txt": LIGHTHOUSE, "glenmore-orchard.txt": ORCHARD}
    rag = ingested(root, {name: _doc(lines) for name, lines in files.items()}, crosslingual="off")
    with running_app(rag.settings.docs_dir, rag.settings.store_dir, root / "app.log", RAG_CROSSLINGUAL="off") as url:
        yield url


def test_a_summary_in_the_chat_is_cited_and_its_citation_opens_the_passage(app_url, browser, tmp_path):  # noqa: F811
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(app_url)
    page.wait_for_selector("#rag-question textarea")
    answer = _ask(page, "Could you sum up apiary-notes.md for me?")
    text = answer.locator(".rag-answer").inner_text()
    assert "Covered " in text and "of apiary-notes.md (summary of" in text
    markers = answer.locator(".rag-answer .rag-cite")
    assert markers.count() >= 3

    source = answer.locator("details.rag-src.rag-n-2")
    assert source.get_attribute("open") is None
    answer.locator(".rag-cite.rag-n-2").first.click()
    page.wait_for_function("() => document.querySelector('#rag-chat details.rag-src.rag-n-2').open")
    assert "apiary-notes.md" in source.locator(".rag-loc").inner_text()
    second = re.search(r"\[1\]\s*(.+?)\s*\[2\]", text, re.S)
    assert second  # the summary's second sentence is highlighted in the passage [2] opens
    assert second.group(1) in [" ".join(m.split()) for m in source.locator(".rag-passage mark").all_inner_texts()]
    _shows(page, "#rag-chat", "apiary-notes.md")
    page.screenshot(path=tmp_path / "summary.png")


def test_a_summary_and_a_listing_over_the_ask_api(app_url):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    summary = client.predict("Summarise glenmore-orchard.txt", api_name="/ask")
    assert "Covered " in summary and "Sources:" in summary
    assert summary.count("glenmore-orchard.txt") >= 3 and "apiary-notes.md" not in summary
    listing = client.predict("Which files talk about honey?", api_name="/ask")
    assert listing.startswith("2 of 3 documents mention “honey”")
    assert "apiary-notes.md" in listing and "glenmore-orchard.txt" in listing and "skellig" not in listing
