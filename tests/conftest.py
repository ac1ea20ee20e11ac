"""Shared fixtures: every test gets its own store under tmp_path, offline, and optionally a real Chroma server."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import subprocess
import sys
import time
from collections import OrderedDict
from pathlib import Path

import pytest
from PIL import Image

from rag.ingest import ocr

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def _isolate(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Point every store at ``folder`` and clear RAG_* settings from the caller's shell: tests never touch
    the real vectorstore/."""
    for key in list(os.environ):
        if key.startswith("RAG_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RAG_STORE_DIR", str(folder / "store"))
    monkeypatch.setenv("RAG_DOCS_DIR", str(folder / "docs"))
    # The cross-lingual index embeds with a 300M-parameter model (~5x MiniLM's cost); tests of it turn it
    # on themselves (tests/test_crosslingual.py), every other test stores English text and goes without.
    monkeypatch.setenv("RAG_CROSSLINGUAL", "off")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")
    monkeypatch.setattr(ocr, "_cache", OrderedDict())  # no page read by OCR in an earlier test is remembered


CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")  # Debian's fonts-noto-cjk


def render_page(text: str, dpi: int = 200) -> Image.Image:
    """A picture of a printed page, as a scanner makes one: ``text`` typeset into a real PDF (fpdf2, an
    A6 page so OCR has few pixels to read), then that page rendered to a grayscale image (pypdfium2)."""
    import pypdfium2 as pdfium

    return pdfium.PdfDocument(text_pdf(text))[0].render(scale=dpi / 72, grayscale=True).to_pil()


def render_chinese(lines: list[str], dpi: int = 200) -> Image.Image:
    """A picture of an A6 page printed in Chinese: each line drawn in Noto Sans CJK at about 12 pt."""
    from PIL import ImageDraw, ImageFont

    page = Image.new("L", (round(4.13 * dpi), round(5.83 * dpi)), 255)
    font = ImageFont.truetype(str(CJK_FONT), round(12 * dpi / 72))
    draw = ImageDraw.Draw(page)
    for i, line in enumerate(lines):
        draw.text((dpi // 3, dpi // 3 + i * round(24 * dpi / 72)), line, font=font, fill=0)
    return page


def image_pdf(pages: list[Image.Image], dpi: int = 200) -> bytes:
    """A PDF whose pages are only these pictures, no text layer: what a scanner writes (Pillow's PDF writer)."""
    out = io.BytesIO()
    pages[0].save(out, "PDF", resolution=dpi, save_all=True, append_images=pages[1:])
    return out.getvalue()


def text_pdf(text: str) -> bytes:
    """A one-page A6 PDF with ``text`` in its text layer."""
    from fpdf import FPDF

    pdf = FPDF(format=(105, 148))
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


def join_pdfs(*parts: bytes) -> bytes:
    """The pages of these PDFs, in order, as one PDF."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for part in parts:
        writer.append(PdfReader(io.BytesIO(part)))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def handbook_pdf() -> bytes:
    """A three-page PDF as LaTeX or a word processor makes one: a running head and a page number on every
    page, an outline whose entries ("Fares") are printed as numbered headings ("2 Fares"), one mid-page, and
    a table of contents whose lines name them too ("Fares 2")."""
    from fpdf import FPDF

    class Handbook(FPDF):
        def header(self):
            self.set_font("Helvetica", size=8)
            self.cell(0, 5, "Harbour Ferry Handbook 2.1", new_x="LMARGIN", new_y="NEXT")

        def footer(self):
            self.set_y(-12)
            self.set_font("Helvetica", size=8)
            self.cell(0, 5, str(self.page_no()), align="C")

    pdf = Handbook(format=(105, 148))

    def heading(number: str, title: str) -> None:
        pdf.set_font("Helvetica", "B", 11)
        pdf.start_section(title)  # the outline entry
        pdf.multi_cell(0, 6, f"{number} {title}", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=9)

    def para(text: str) -> None:
        pdf.multi_cell(0, 4.5, text, new_x="LMARGIN", new_y="NEXT")

    pdf.add_page()
    pdf.set_font("Helvetica", size=9)
    para("Contents\nTimetables 1\nFares 2")
    heading("1", "Timetables")
    para("The first ferry leaves the north pier at six in the morning. " * 3)
    pdf.add_page()
    para("Night sailings run on Fridays only and stop at both islands. " * 5)
    heading("2", "Fares")
    para("A single ticket costs four dollars; a monthly pass costs ninety. " * 3)
    pdf.add_page()
    para("Pensioners travel at half fare on weekdays. " * 10)
    return bytes(pdf.output())


def manual_pdf() -> bytes:
    """A manual as LaTeX or Texinfo makes one: a first page with the title, a line about the
    manual and a table of contents whose entries lead with dots to their page numbers; a chapter whose heading
    stands alone above its first section's; an index at the end. Its outline's first entry is "Contents"."""
    from fpdf import FPDF

    pdf = FPDF(format=(105, 148))

    def line(text: str, size: int = 9, style: str = "") -> None:
        pdf.set_font("Helvetica", style, size)
        pdf.multi_cell(0, 5, text, new_x="LMARGIN", new_y="NEXT")

    pdf.add_page()
    line("Harbour Ferry Manual", 12, "B")
    line("This manual tells the crews of the harbour ferries how their boats are run.")
    pdf.start_section("Contents")
    line("Contents", 11, "B")
    for entry, page in (("1 Sailing", 2), ("1.1 Timetables", 2), ("1.2 Moorings", 2), ("Index", 3)):
        line(f"{entry} {'. ' * (30 - len(entry) // 2)}{page}")
    pdf.add_page()
    pdf.start_section("Sailing")
    line("1 Sailing", 11, "B")
    pdf.start_section("Timetables", level=1)
    line("1.1 Timetables", 10, "B")
    line("The first ferry leaves the north pier at six in the morning and the last one at midnight. " * 2)
    pdf.start_section("Moorings", level=1)
    line("1.2 Moorings", 10, "B")
    line("A ferry is moored with two bow lines and one stern line, checked each hour by the deckhand. " * 2)
    pdf.add_page()
    pdf.start_section("Index")
    line("Index", 11, "B")
    for entry in ("bow lines", "deckhand", "ferry, first", "midnight", "moorings", "north pier", "timetables"):
        line(f"{entry} {'. ' * (30 - len(entry) // 2)}2")
    return bytes(pdf.output())


def plotting_pdf() -> bytes:
    """A page of a plotting program's manual: a paragraph wrapped at the margin, a lead-in, four lines of
    code in a fixed-width font (the first one long), and the sentence after them."""
    from fpdf import FPDF

    pdf = FPDF(format=(148, 210))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 11)
    pdf.multi_cell(0, 6, "Log scales", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.multi_cell(
        0,
        5,
        "Log scaling may be set on the x, y and z axes of a plot, with any base you like; the tic marks of a "
        "log-scaled axis are not spaced evenly, and their labels follow the base that was chosen for the axis. "
        "For example:",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_font("Courier", "", 8)
    for code in ("# tics at y=20 y=40 y=60 and so on up to y=200", "set log y", "set yrange [20:200]", "set ytics 20"):
        pdf.cell(0, 4, code, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.multi_cell(
        0,
        5,
        "The logscale attribute of the tics is set automatically by the set log command, so it is rarely needed.",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    return bytes(pdf.output())


def blank_page(dpi: int = 200) -> Image.Image:
    """A scanned A6 page with nothing printed on it."""
    return Image.new("L", (round(4.13 * dpi), round(5.83 * dpi)), 255)


@pytest.fixture(autouse=True, scope="session")
def isolated_session(tmp_path_factory):
    """The same isolation for the whole session. Module- and session-scoped fixtures are set up before any
    test's own fixtures, so without it they ran with the caller's RAG_* settings and the cross-lingual index
    on (tests/test_injection.py's store took 45 s to build instead of 6 on 2 busy cores)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        _isolate(monkeypatch, tmp_path_factory.mktemp("session"))
        yield


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Each test's own store under its tmp_path."""
    _isolate(monkeypatch, tmp_path)


@pytest.fixture
def seed_docs(tmp_path) -> Path:
    """A copy of seeds/ in tmp_path (tests change and delete files in it)."""
    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs)
    return docs


def ingested(root: Path, files: dict[str, str | bytes] | None = None, **settings):
    """A `RAG` over ``root/docs`` (the seeds, or ``files``: name -> text, or bytes such as a PDF's) with its
    store in ``root/store``, ingested."""
    from rag import RAG

    docs = root / "docs"
    if files is None:
        shutil.copytree(SEEDS, docs)
    else:
        docs.mkdir()
        for name, content in files.items():
            if isinstance(content, bytes):
                (docs / name).write_bytes(content)
            else:
                (docs / name).write_text(content, encoding="utf-8")
    rag = RAG(docs_dir=docs, store_dir=root / "store", **settings)
    rag.ingest()
    return rag


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, proc: subprocess.Popen, timeout: float = 60) -> bool:
    """Wait until ``host:port`` accepts connections: True; False if ``proc`` exits first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return True
        except OSError:
            if proc.poll() is not None:
                return False
            time.sleep(0.2)
    return False


def start_chroma(folder: Path) -> tuple[subprocess.Popen, int]:
    """A real `chroma run` on 127.0.0.1 over ``folder/data`` (log: ``folder/server.log``), listening."""
    exe = Path(sys.executable).with_name("chroma")
    port = free_port()
    with open(folder / "server.log", "wb") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [str(exe), "run", "--path", str(folder / "data"), "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    if not wait_for_port("127.0.0.1", port, proc, timeout=60):
        proc.kill()
        log = (folder / "server.log").read_text()[-2000:]
        raise RuntimeError(f"chroma run did not start listening within 60s: {log}")
    return proc, port


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """A real `chroma run` on 127.0.0.1, for the whole session: yields (host, port)."""
    proc, port = start_chroma(tmp_path_factory.mktemp("chroma-server"))
    yield "127.0.0.1", port
    stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """Terminate a server started by a fixture; kill it if it does not exit within 10 s."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@contextlib.contextmanager
def running_app(docs: Path, store: Path, log: Path, port: int | None = None, **env: str):
    """`python app.py` on ``port`` (a free one if None) over ``docs``/``store`` (no other RAG_* setting but
    ``env``), its output in ``log``; yields its URL once it answers, fails the test with the log's tail if it
    does not start."""
    import httpx

    environ = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    environ.update(
        RAG_DOCS_DIR=str(docs), RAG_STORE_DIR=str(store), HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", **env
    )
    port = port or free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--port", str(port)], cwd=ROOT, env=environ, stdout=out, stderr=out
        )
        try:
            url = f"http://127.0.0.1:{port}/"
            if not wait_for_port("127.0.0.1", port, proc, timeout=60) or httpx.get(url, timeout=10).status_code != 200:
                pytest.fail(f"app.py did not start: {log.read_text()[-2000:]}")
            yield url
        finally:
            stop(proc)


_collections = iter(range(10**6))


@pytest.fixture(params=["embedded", "server"])
def mode(request, monkeypatch) -> str:
    """Run a test against the embedded store and against a real Chroma server (own collection per test)."""
    if request.param == "server":
        host, port = request.getfixturevalue("chroma_server")
        monkeypatch.setenv("RAG_CHROMA_HOST", host)
        monkeypatch.setenv("RAG_CHROMA_PORT", str(port))
        monkeypatch.setenv("RAG_COLLECTION", f"test-{os.getpid()}-{next(_collections)}")
    return request.param
