"""A Chinese question in a real browser (Debian's Chromium, Playwright) against `python app.py` over an
English and a Chinese document with the cross-lingual index: the answer, its citation and the highlighted
passage come back, in Chinese characters drawn with a CJK font (screenshot: bench/out/screenshots/chinese.png).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from rag.messages import say
from tests.conftest import ingested, running_app
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, SHOTS, _ask
from tests.test_crosslingual import CHINESE, ENGLISH

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def bilingual_app(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser-zh")
    rag = ingested(root, {"ferry.txt": ENGLISH, "library.txt": CHINESE}, crosslingual="auto")
    with running_app(rag.settings.docs_dir, rag.settings.store_dir, root / "app.log", RAG_CROSSLINGUAL="auto") as url:
        yield url


def test_a_cjk_font_is_installed():
    # Without one Chromium draws every Chinese character as an empty box (make test installs fonts-noto-cjk).
    fonts = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True, check=False).stdout
    assert fonts.strip(), "no font with Chinese glyphs: apt-get install fonts-noto-cjk"


def test_chinese_questions_in_the_browser(bilingual_app):
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is not installed (apt-get install chromium)"
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000}, locale="zh-CN")
        page.goto(bilingual_app)
        page.wait_for_selector("#rag-question textarea")

        # A Chinese question over the Chinese document: quoted in Chinese, the passage highlighted.
        answer = _ask(page, "图书馆每位读者最多可以借几本书？")
        text = answer.locator(".rag-answer").inner_text()
        assert "八本" in text
        n = re.search(r"\[(\d+)\]", text[text.index("八本") :]).group(1)  # the marker after the sentence
        answer.locator(f".rag-cite.rag-n-{n}").first.click()
        page.wait_for_function(f"() => document.querySelector('#rag-chat details.rag-src.rag-n-{n}').open")
        source = answer.locator(f"details.rag-src.rag-n-{n}")
        assert "library.txt" in source.locator(".rag-loc").inner_text()
        # Every sentence quoted from this passage is highlighted in it (they share one source row).
        assert any("八本" in mark for mark in source.locator(".rag-passage mark").all_inner_texts())
        page.screenshot(path=SHOTS / "chinese.png")

        # A Chinese question over the English document: the English sentence is quoted and cited.
        answer = _ask(page, "去南丫岛的夜班渡轮几点开？")
        assert "23:30" in answer.locator(".rag-answer").inner_text()
        assert "ferry.txt" in answer.locator(".rag-sources").inner_text()

        # rag's own words follow the question's script.
        question = "圖書館的館長叫什麼名字？"
        text = _ask(page, question).inner_text()
        assert say("not_found", question) in text or "library.txt" in text
        page.screenshot(path=SHOTS / "chinese-declined.png")
        browser.close()
