"""The app in a real browser: Debian's Chromium driven by Playwright against `python app.py`.

Ask about the seed document, open a citation, add a document and get an answer from it, delete it and
no longer get one. Screenshots go to docs/screenshots/ (the README shows them).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag import RAG
from tests.conftest import ROOT, SEEDS, free_port, render_page, running_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = ROOT / "bench" / "out" / "screenshots"  # ignored by git: tests leave the tree clean; docs/ holds copies
FACT = "The lighthouse keeper on Skellig Rock feeds exactly forty-two puffins every morning."
FACT_QUESTION = "How many puffins does the lighthouse keeper on Skellig Rock feed?"
SCANNED = "The apiary on Cheung Chau keeps fourteen hives of bees. Honey is collected in late summer."


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """`python app.py` on a free port over a copy of seeds/, ingested first, in a fresh store."""
    root = tmp_path_factory.mktemp("browser")
    docs, store = root / "docs", root / "store"
    shutil.copytree(SEEDS, docs)
    RAG(docs_dir=docs, store_dir=store, crosslingual="auto").ingest()  # the app's default, as it runs below
    with running_app(docs, store, root / "app.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    # A missing browser fails (make test installs it): a skip would hide the only test of the UI.
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is not installed (apt-get install chromium)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _ask(page, question: str, *, error: bool = False):
    """Type a question, send it, and wait for the final answer (its cursor gone); returns the last message.
    Unless an ``error`` is expected, a message that is an error fails the test with its text (what the app
    told the person)."""
    answers = page.locator("#rag-chat .rag-msg")
    before = answers.count()
    page.fill("#rag-question textarea", question)
    page.click("#rag-ask")
    page.wait_for_function(
        "n => document.querySelectorAll('#rag-chat .rag-msg').length > n"
        " && !document.querySelector('#rag-chat .rag-cursor')",
        arg=before,
        timeout=90_000,  # the first answer may wait for the model to load on a busy machine
    )
    failed = answers.last.locator(".rag-error")
    if not error and failed.count():
        pytest.fail(f"the app answered {question!r} with an error: {failed.inner_text()}")
    return answers.last


def _shows(page, selector: str, text: str, *, gone: bool = False, timeout: float = 30_000) -> None:
    """Wait until ``selector`` shows ``text`` (or, ``gone``, no longer does). The element may not exist yet:
    Gradio renders a tab's contents when it is first opened."""
    page.wait_for_function(
        "([sel, text, gone]) => { const el = document.querySelector(sel);"
        " return !!el && el.innerText.includes(text) !== gone; }",
        arg=[selector, text, gone],
        timeout=timeout,
    )


def _documents(page) -> str:
    return page.locator("#rag-documents").inner_text()


def test_chat_cite_upload_delete(app_url, browser, tmp_path):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(app_url)
    page.wait_for_selector("#rag-question textarea")

    # Example questions, drawn from the documents, are offered in the empty chat; one click asks one.
    example = page.locator("#rag-chat button.example").first
    example.wait_for(timeout=60_000)
    asked = example.inner_text().strip()
    assert asked.endswith("?")
    example.click()
    page.wait_for_function(  # the answer itself, not just the question, and no longer streaming
        "() => document.querySelector('#rag-chat .rag-answer') && !document.querySelector('.rag-cursor')",
        timeout=90_000,
    )
    assert asked in page.locator("#rag-chat").inner_text()
    page.click("#rag-clear")
    page.wait_for_function("() => !document.querySelector('#rag-chat .rag-msg')")  # before counting messages

    # Record whether the answer was ever shown while still streaming (the cursor), before it was final.
    page.evaluate(
        """() => { window.ragStreamed = false;
        new MutationObserver(() => { if (document.querySelector('#rag-chat .rag-cursor')) window.ragStreamed = true; })
          .observe(document.body, {subtree: true, childList: true, characterData: true}); }"""
    )
    answer = _ask(page, "When was the Virtual Assets Policy Statement issued?")
    assert page.evaluate("window.ragStreamed")
    assert "2022" in answer.locator(".rag-answer").inner_text()

    # Clicking the marker opens the passage with the quote highlighted, and says where it is.
    source = answer.locator("details.rag-src.rag-n-1")
    assert source.get_attribute("open") is None
    answer.locator(".rag-cite.rag-n-1").first.click()
    page.wait_for_function("() => document.querySelector('#rag-chat details.rag-src.rag-n-1').open")
    assert "hashkey-interview.txt" in source.locator(".rag-loc").inner_text()
    highlighted = " ".join(source.locator(".rag-passage mark").all_inner_texts())  # each quote of the passage
    assert "Virtual Assets Policy Statement" in highlighted and "2022" in highlighted
    page.screenshot(path=SHOTS / "chat.png")

    # The retrieval trace: the query searched, the passages with their dense and keyword ranks.
    page.locator("#rag-trace").get_by_text("Retrieval trace").click()
    trace = page.locator(".rag-trace")
    trace.wait_for()
    assert "When was the Virtual Assets Policy Statement issued?" in trace.inner_text()
    assert trace.locator("tbody tr").count() >= 1 and "#" in trace.locator("tbody tr").first.inner_text()
    trace.scroll_into_view_if_needed()
    page.screenshot(path=SHOTS / "trace.png", full_page=True)

    # A follow-up is read with the conversation: the trace shows the standalone question searched.
    _ask(page, "And who issued it?")
    searched = trace.locator("p").first.inner_text()
    assert "Virtual Assets Policy Statement" in searched and "who issued" in searched and " it" not in searched

    # Upload a document with a fact the seed does not hold...
    page.get_by_role("tab", name="Documents").click()
    assert "hashkey-interview.txt" in _documents(page)
    new = tmp_path / "lighthouse.txt"
    new.write_text(FACT + "\n", encoding="utf-8")
    song = tmp_path / "song.mp3"  # not a document: refused by name, while the rest of the batch is added
    song.write_bytes(b"ID3\x04\x00")
    page.set_input_files("#rag-upload input[type=file]", [str(new), str(song)])
    _shows(page, "#rag-doc-status", "Added lighthouse.txt", timeout=60_000)
    _shows(page, "#rag-doc-status", "Refused song.mp3: '.mp3' files are not supported")
    _shows(page, "#rag-documents", "lighthouse.txt")
    page.screenshot(path=SHOTS / "documents.png")

    # ...and the chat answers from it.
    page.get_by_role("tab", name="Chat").click()
    answer = _ask(page, FACT_QUESTION)
    assert "forty-two" in answer.locator(".rag-answer").inner_text()
    assert "lighthouse.txt" in answer.locator(".rag-sources").inner_text()

    # Asked within the interview only, the same question is not answered from the lighthouse document.
    page.locator("#rag-within input").click()
    page.get_by_role("option", name="hashkey-interview.txt").click()
    answer = _ask(page, FACT_QUESTION)
    assert "forty-two" not in answer.inner_text() and "lighthouse.txt" not in answer.inner_text()
    assert "Within: hashkey-interview.txt (1 document)" in page.locator(".rag-trace").inner_text()

    # Delete it (two steps: pick, confirm) and the chat no longer finds it.
    page.get_by_role("tab", name="Documents").click()
    page.locator("#rag-delete-pick input").click()
    page.get_by_role("option", name="lighthouse.txt").click()
    assert "2 documents" in page.locator("#rag-doc-totals").inner_text()
    page.locator("#rag-delete").click()
    page.locator("#rag-delete-keep").wait_for()  # asked to confirm: only the two answers are offered
    assert not page.locator("#rag-delete").is_visible()
    page.locator("#rag-delete-keep").click()
    _shows(page, "#rag-doc-status", "Nothing was deleted")
    assert "lighthouse.txt" in _documents(page)
    page.locator("#rag-delete").click()
    page.locator("#rag-confirm").click()
    _shows(page, "#rag-doc-status", "Removed lighthouse.txt", timeout=60_000)
    _shows(page, "#rag-documents", "lighthouse.txt", gone=True)
    assert "1 document · " in page.locator("#rag-doc-totals").inner_text()
    page.get_by_role("tab", name="Chat").click()
    answer = _ask(page, FACT_QUESTION)
    assert "forty-two" not in answer.inner_text() and "lighthouse.txt" not in answer.inner_text()

    # An unreachable backend is one sentence in the chat, not a traceback; Clear chat empties it.
    page.get_by_role("tab", name="Settings").click()
    page.get_by_label("OpenAI-compatible server").check()
    page.get_by_label("Server URL (OpenAI-compatible or Ollama)").fill(f"http://127.0.0.1:{free_port()}/v1")
    page.get_by_label("Model name").fill("no-such-model")
    page.get_by_role("tab", name="Chat").click()
    failed = _ask(page, "When was the Virtual Assets Policy Statement issued?", error=True)
    error = failed.locator(".rag-error").inner_text()
    assert error.startswith("The answering backend failed (") and "Traceback" not in error
    page.click("#rag-clear")
    page.wait_for_function("() => !document.querySelector('#rag-chat .rag-msg')")
    page.close()


@pytest.fixture
def recorder():
    """A local HTTP server that records every request it gets: yields (port, paths)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    paths: list[str] = []

    class Record(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the name http.server calls
            paths.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Record)
    Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], paths
    server.shutdown()
    server.server_close()


def test_no_remote_image_or_raw_html_is_rendered_from_questions_examples_or_documents(browser, recorder, tmp_path):
    """Regression: a document's question with an <img src=http://…> in it, or a heading that is a markdown
    image, became a suggested example; clicking it posted it, the chat rendered it and Chromium fetched the
    URL. A typed question with a markdown image did the same."""
    port, requested = recorder
    docs, store = tmp_path / "docs", tmp_path / "store"
    shutil.copytree(SEEDS, docs)
    (docs / "plans.md").write_text(
        "# Plans\n\n"
        f"What is the monthly price of the Gold plan <img src=http://localhost:{port}/leak-example-q>?\n\n"
        "The Gold plan costs thirty dollars per month, billed monthly.\n\n"
        f"## ![logo](http://localhost:{port}/leak-example-heading)\n\nThe Gold plan logo is a blue square.\n",
        encoding="utf-8",
    )
    RAG(docs_dir=docs, store_dir=store).ingest()
    with running_app(docs, store, tmp_path / "app.log") as url:
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("#rag-question textarea")
        examples = page.locator("#rag-chat button.example")
        examples.first.wait_for(timeout=60_000)
        offered = [examples.nth(i).inner_text() for i in range(examples.count())]
        assert offered and not any("localhost" in q or "<" in q or "](" in q for q in offered), offered
        for i in range(len(offered)):  # every example, clicked: each is posted and answered
            page.click("#rag-clear")
            page.wait_for_function("() => !document.querySelector('#rag-chat .rag-msg')")
            page.locator("#rag-chat button.example").nth(i).click()
            page.wait_for_function(
                "() => document.querySelector('#rag-chat .rag-answer') && !document.querySelector('.rag-cursor')",
                timeout=90_000,
            )
        for typed in (
            f"What is the price of the Gold plan? ![x](http://localhost:{port}/leak-typed-markdown)",
            f'What is the Gold plan logo? <img src="http://localhost:{port}/leak-typed-html">',
        ):
            assert _ask(page, typed).locator(".rag-answer").count() == 1  # answered (or declined), rendered
        page.wait_for_timeout(1000)  # time for any image request the page made to arrive
        assert f"![x](http://localhost:{port}/leak-typed-markdown)" in page.locator("#rag-chat").inner_text()
        page.close()
    assert requested == []


def _held(docs: Path, store: Path) -> tuple[list[tuple[str, str, int]], int]:
    """What the store holds: its ledger (document, state, chunks), and the number of chunks in Chroma."""
    rag = RAG(docs_dir=docs, store_dir=store)
    rag.store.open()
    ledger = sorted((r.source, r.state, r.chunks) for r in rag.store.ledger().values())
    return ledger, rag.store.count()


def test_cancel_during_a_large_upload_leaves_the_documents_as_they_were(browser, tmp_path):
    """Issue 14, item 10: a large upload showed no progress and could not be stopped. In the real app, the
    progress of the file being embedded shows, Cancel stops it, and afterwards the file is neither in the
    folder (no hidden ``.upload-*`` left either) nor listed nor searchable, the store holds what it held
    before, and questions are still answered."""
    docs, store = tmp_path / "docs", tmp_path / "store"
    shutil.copytree(SEEDS, docs)
    RAG(docs_dir=docs, store_dir=store).ingest()
    before_files = sorted(p.name for p in docs.iterdir())
    before = _held(docs, store)
    # ~600 chunks, embedded 16 at a time (RAG_EMBED_BATCH_SIZE=4): progress comes between slices, and a
    # cancel lands at the next one, long before the last.
    big = tmp_path / "upload" / "herons.txt"
    big.parent.mkdir()
    big.write_text(
        "\n\n".join(
            f"Heron log {i}: the grey heron number {i} waited {i % 7} hours by pond {i}." * 3 for i in range(1500)
        )
    )
    with running_app(docs, store, tmp_path / "app.log", RAG_EMBED_BATCH_SIZE="4") as url:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(url)
        page.wait_for_selector("#rag-question textarea")
        page.get_by_role("tab", name="Documents").click()
        _shows(page, "#rag-documents", "hashkey-interview")
        page.set_input_files("#rag-upload input[type=file]", str(big))
        # The progress bar names the file and how far its embedding is: the upload is in its ingest now.
        page.wait_for_function(
            "() => /herons\\.txt \\([\\d,]+ of [\\d,]+ chunks embedded\\)/.test(document.body.innerText)",
            timeout=120_000,
        )
        page.click("#rag-cancel")
        # The upload's own last word: cancelled or (had Cancel failed) added; not the progress, not "Cancelling…".
        page.wait_for_function(
            "() => /Cancelled\\.|Added herons\\.txt/.test(document.querySelector('#rag-doc-status')?.innerText ?? '')",
            timeout=180_000,
        )
        status = page.locator("#rag-doc-status").inner_text()
        assert "Cancelled. Not added: herons.txt." in status and "Added herons.txt" not in status, status
        assert sorted(p.name for p in docs.iterdir()) == before_files  # no herons.txt, no .upload-* file
        listing = _documents(page)
        assert "hashkey-interview.txt" in listing and "herons.txt" not in listing

        # Not searchable, and the chat still answers from what was there.
        page.get_by_role("tab", name="Chat").click()
        heron = _ask(page, "How many hours did the grey heron number 417 wait by pond 417?")
        assert "herons.txt" not in heron.inner_text() and "Heron log" not in heron.inner_text()
        answer = _ask(page, "When was the Virtual Assets Policy Statement issued?")
        assert "2022" in answer.locator(".rag-answer").inner_text()
        assert "hashkey-interview.txt" in answer.locator(".rag-sources").inner_text()
        page.get_by_role("tab", name="Documents").click()
        assert "herons.txt" not in _documents(page)
        page.close()
    assert sorted(p.name for p in docs.iterdir()) == before_files
    assert _held(docs, store) == before  # the same documents, the same chunks in Chroma: nothing half-written
    passages = RAG(docs_dir=docs, store_dir=store).retrieve("grey heron number 417 pond 417")
    assert passages and all(p.source != "herons.txt" for p in passages)


def test_a_pdf_citation_opens_its_page_as_an_image(browser, tmp_path):
    """Issue 13, page view: clicking a citation from a PDF shows the cited page, drawn from a data: URL,
    beside the passage; the browser asks nothing of any other origin (nor of the app, for the picture)."""
    from tests.test_pageview import BREAKWATER, harbour_pdf

    docs, store = tmp_path / "docs", tmp_path / "store"
    docs.mkdir()
    harbour_pdf(docs / "harbour.pdf")
    # A scanned page (a picture, no text layer): read by OCR at ingest, cited like any other document.
    render_page(SCANNED).save(docs / "beekeeping-scan.png")
    assert RAG(docs_dir=docs, store_dir=store).ingest().ocr == {"beekeeping-scan.png": (1, [])}
    with running_app(docs, store, tmp_path / "app.log") as url:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(url)
        page.wait_for_selector("#rag-question textarea")
        answer = _ask(page, "In which year was the north breakwater rebuilt, and with what stone?")
        assert "1987" in answer.locator(".rag-answer").inner_text()
        answer.locator(".rag-cite.rag-n-1").first.click()
        page.wait_for_function("() => document.querySelector('#rag-chat details.rag-src.rag-n-1').open")
        source = answer.locator("details.rag-src.rag-n-1")
        assert "harbour.pdf, p. 2" in source.locator(".rag-loc").inner_text()
        assert any(BREAKWATER in m for m in source.locator(".rag-passage mark").all_inner_texts())
        picture = source.locator("img.rag-page-img")
        picture.wait_for(state="visible")
        picture.scroll_into_view_if_needed()
        page.wait_for_function("() => document.querySelector('#rag-chat img.rag-page-img').complete")
        assert picture.evaluate("img => img.naturalWidth") > 0 and picture.bounding_box()["width"] > 100
        assert picture.get_attribute("src").startswith("data:image/png;base64,")
        page.screenshot(path=SHOTS / "pageview.png")

        # The OCRed picture answers its question, cited by its file name.
        answer = _ask(page, "How many hives does the apiary on Cheung Chau keep?")
        assert "fourteen" in answer.locator(".rag-answer").inner_text()
        assert "beekeeping-scan.png" in answer.locator(".rag-sources").inner_text()
        page.close()
    origin = url.rstrip("/")
    elsewhere = [u for u in requested if not u.startswith(origin + "/") and not u.startswith("data:")]
    assert requested and elsewhere == []
