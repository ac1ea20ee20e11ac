"""How an answer looks: pure functions from `Answer` / `Citation` to HTML (the chat, the sources under
it, the retrieval trace) or plain text (the ``/ask`` endpoint), and the page's CSS and script for them.

The answer is one line of escaped HTML, because the chat renders markdown and a blank line inside a
passage would end the HTML block and let the document's text be read as markdown::

    "Issued in 2022 [1]."  ->  <div class="rag-msg"><div class="rag-answer">Issued in 2022
                               <a class="rag-cite rag-n-1" ...>[1]</a>.</div><div class="rag-sources">
                               <details class="rag-src rag-n-1"><summary>[1] policy.pdf, p. 3 ...

Clicking a marker opens its source under the answer (`HEAD`, a small script for the page's head): the
passage, with the supporting sentence highlighted, and the file and page/section it is in.
"""

from __future__ import annotations

import html
import re
from collections.abc import Collection, Mapping

from rag.types import Answer, Citation

TRACE_HINT = "<p>Ask a question to see how its passages were found.</p>"

# --- the answer ------------------------------------------------------------------------------------
_MARKER = re.compile(r"\[(\d+)\]")
_UNVERIFIED = re.compile(r"\s*\[unverified\]", re.IGNORECASE)
_OPEN, _CLOSE = "\x01", "\x02"  # placeholders that survive html.escape, for spans around whole sentences


def _one_line(escaped: str) -> str:
    return escaped.replace("\r", "").replace("\n", "<br>")


def _inline(text: str, numbers: set[int] | None = None, unverified: Collection[str] = ()) -> str:
    """Answer text -> escaped HTML: ``[n]`` -> a clickable marker (only cited ``n`` when given), sentences
    in ``unverified`` and ``[unverified]`` tags marked visibly."""
    text = text.replace(_OPEN, "").replace(_CLOSE, "")
    pos = 0
    for sentence in unverified:  # wrap each unverified sentence, in order, before escaping shifts offsets
        at = text.find(sentence, pos)
        if sentence and at >= 0:
            text = text[:at] + _OPEN + sentence + _CLOSE + text[at + len(sentence) :]
            pos = at + len(sentence) + 2
    out = html.escape(text)

    def marker(m: re.Match) -> str:
        n = int(m[1])
        if numbers is not None and n not in numbers:
            return m[0]
        return f'<a class="rag-cite rag-n-{n}" href="#" title="Show the passage behind [{n}]">[{n}]</a>'

    out = _MARKER.sub(marker, out)
    out = _UNVERIFIED.sub(
        ' <span class="rag-badge" title="No retrieved passage supports this sentence">unverified</span>', out
    )
    out = out.replace(_OPEN, '<span class="rag-unverified" title="Not supported by the documents">')
    return _one_line(out.replace(_CLOSE, "</span>"))


def _quote_span(c: Citation) -> tuple[int, int] | None:
    """Where the citation's quote sits in its passage text (local offsets), or None."""
    text, quote = c.text, (c.quote or "").strip()
    at = text.find(quote) if quote else -1
    if at >= 0:
        return at, at + len(quote)
    if c.quote_end > c.quote_start >= c.start:  # offsets are in the document; make them local
        at, end = c.quote_start - c.start, min(c.quote_end - c.start, len(text))
        if 0 <= at < end:
            return at, end
    return None


# Markdown emphasis in a document's text: ``**bold**``, ``__bold__``, ``*em*``, on one line. The closing
# ``**`` may follow a space (``**HashKey: **Recently``, as interview transcripts write it); ``2 * 3 * 4``
# and ``snake_case_name`` are no emphasis. A ``**`` left without a partner is not shown either.
_EMPHASIS = re.compile(
    r"\*\*(?=[^\s*])(?P<b1>[^\n]+?)\*\*"
    r"|(?<!\w)__(?=[^\s_])(?P<b2>[^\n]+?)__(?!\w)"
    r"|(?<![*\w])\*(?=[^\s*])(?P<i>[^\n*]*?[^\s*])\*(?![*\w])"
)
_STRAY = re.compile(r"\*{2,}")


def _emphasis(text: str) -> list[str]:
    """Per character of ``text``: "" (plain), "b" or "i" (inside emphasis), or "x" (a mark, not shown).

    ``"a **b** c"`` -> ``["", "", "x", "x", "b", "x", "x", "", ""]``
    """
    style = [""] * len(text)
    for m in _EMPHASIS.finditer(text):
        body = next(name for name in ("b1", "b2", "i") if m[name] is not None)
        start, end = m.span(body)
        style[m.start() : start] = ["x"] * (start - m.start())
        style[end : m.end()] = ["x"] * (m.end() - end)
        style[start:end] = [body[0]] * (end - start)
    for m in _STRAY.finditer(text):
        style[m.start() : m.end()] = ["x"] * (m.end() - m.start())
    return style


def _styled(text: str, style: list[str]) -> str:
    """``text`` escaped, its emphasis as ``<b>``/``<i>`` and its marks left out: the document's own HTML
    is never let through (it is escaped before any tag is added)."""
    out, i = [], 0
    while i < len(text):
        j = i
        while j < len(text) and style[j] == style[i]:
            j += 1
        if style[i] != "x":
            part = html.escape(text[i:j])
            out.append(f"<{style[i]}>{part}</{style[i]}>" if style[i] else part)
        i = j
    return "".join(out)


def plain(text: str) -> str:
    """``text`` without its emphasis marks: ``"**HashKey:** yes"`` -> ``"HashKey: yes"``."""
    style = _emphasis(text)
    return "".join(ch for ch, st in zip(text, style, strict=True) if st != "x")


def _passage_html(group: list[Citation]) -> str:
    """The cited passage with every supporting sentence of ``group`` (citations of it) highlighted, and
    its markdown emphasis shown as emphasis. A ``<mark>`` spans its whole quote; emphasis that crosses its
    edge is closed and reopened inside it, so the tags always nest."""
    text = group[0].text
    style = _emphasis(text)
    spans = sorted(span for c in group if (span := _quote_span(c)))
    out, pos = [], 0
    for start, end in spans:
        start = max(start, pos)  # overlapping quotes: highlight the union once
        if end <= start:
            continue
        out += [
            _styled(text[pos:start], style[pos:start]),
            f"<mark>{_styled(text[start:end], style[start:end])}</mark>",
        ]
        pos = end
    out.append(_styled(text[pos:], style[pos:]))
    return _one_line("".join(out))


def _shorten(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def render_sources(citations: list[Citation], pages: Mapping[int, str] | None = None) -> str:
    """One row per cited passage: several sentences quoted from the same passage share it (``[1] [3]``).

    ``pages``: marker number -> the HTML of the PDF page it cites (`rag.app.pageview.page_views`), shown beside
    the passage; a citation without one shows the passage alone.
    """
    pages = pages or {}
    if not citations:
        return ""
    groups: dict[str, list[Citation]] = {}
    for c in citations:
        groups.setdefault(c.passage_id or f"{c.source}\x00{c.start}\x00{c.n}", []).append(c)
    items = "".join(
        f'<details class="rag-src {" ".join(f"rag-n-{c.n}" for c in group)}"><summary><b>'
        f"{' '.join(f'[{c.n}]' for c in group)}</b> "
        f'<span class="rag-loc">{html.escape(group[0].location)}</span> '
        f'<span class="rag-quote">“{html.escape(_shorten(plain(" … ".join(c.quote for c in group))))}”</span>'
        f"</summary>{_body(group, pages)}</details>"
        for group in groups.values()
    )
    return f'<div class="rag-sources"><div class="rag-sources-title">Sources</div>{items}</div>'


def _body(group: list[Citation], pages: Mapping[int, str]) -> str:
    passage = f'<div class="rag-passage">{_passage_html(group)}</div>'
    page = next((pages[c.n] for c in group if c.n in pages), "")
    return f'<div class="rag-src-body">{passage}{page}</div>' if page else passage


def render_answer(answer: Answer, pages: Mapping[int, str] | None = None) -> str:
    """The final answer as one line of HTML: text with markers, then the sources to open (with the PDF
    pages in ``pages``, see `render_sources`)."""
    if not answer.answered:
        return f'<div class="rag-msg"><div class="rag-answer rag-abstain">{_inline(answer.text, set())}</div></div>'
    unverified = [s.text for s in answer.sentences if not s.supported]
    numbers = {c.n for c in answer.citations}
    body = _inline(answer.text, numbers, unverified)
    return f'<div class="rag-msg"><div class="rag-answer">{body}</div>{render_sources(answer.citations, pages)}</div>'


def render_question(text: str) -> str:
    """A person's question as the chat shows it: escaped text in an HTML block, so neither raw HTML
    (``<img src=…>``) nor markdown (``![x](http://…)``) in it is ever rendered, or fetched by the browser."""
    return f'<div class="rag-question">{_one_line(html.escape(text))}</div>'


def render_partial(text: str) -> str:
    """Text still streaming in: markers shown but not clickable yet (their sources are not checked yet)."""
    body = _one_line(html.escape(text))
    cursor = '<span class="rag-cursor">▍</span>'
    return f'<div class="rag-msg"><div class="rag-answer rag-streaming">{body}{cursor}</div></div>'


def render_trace(answer: Answer) -> str:
    """The retrieval behind an answer: the standalone query, every passage's ranks and scores, timings."""
    cited: dict[str, list[int]] = {}
    for c in answer.citations:
        cited.setdefault(c.passage_id, []).append(c.n)

    def rank(p, name: str) -> str:
        if name not in p.ranks:
            return "—"
        return f"#{p.ranks[name]} ({p.scores.get(name, 0.0):.3f})"

    def rerank(p) -> str:
        return f"{p.scores['rerank']:.3f}" if "rerank" in p.scores else "—"

    rows = "".join(
        f"<tr><td>{i}</td><td>{html.escape(p.location)}"
        f"<div class='rag-snippet'>{html.escape(_shorten(p.text, 140))}</div></td>"
        f"<td>{rank(p, 'dense')}</td><td>{rank(p, 'bm25')}</td><td>{p.scores.get('fused', p.score):.4f}</td>"
        f"<td>{rerank(p)}</td>"
        f"<td>{' '.join(f'[{n}]' for n in cited.get(p.id, []))}</td></tr>"
        for i, p in enumerate(answer.passages, 1)
    )
    timings = " · ".join(f"{k.removesuffix('_ms')} {v:.0f} ms" for k, v in answer.timings.items())
    return (
        f'<div class="rag-trace"><p><b>Searched for:</b> {html.escape(answer.query or answer.question)}</p>'
        + (f"<p><b>Within:</b> {html.escape(answer.scope)}</p>" if answer.scope else "")
        + f"<p><b>Backend:</b> {html.escape(answer.backend)}{' · ' + timings if timings else ''}</p>"
        "<table><thead><tr><th>#</th><th>passage</th><th>dense rank (cosine)</th><th>keyword rank (BM25)</th>"
        f"<th>fused</th><th>rerank</th><th>cited as</th></tr></thead><tbody>{rows}</tbody></table></div>"
    )


def api_text(answer: Answer) -> str:
    """Plain text for the ``/ask`` endpoint: the answer, then its numbered sources with their quotes."""
    lines = [answer.text]
    if answer.citations:
        lines += ["", "Sources:"] + [f"[{c.n}] {c.location} — “{c.quote}”" for c in answer.citations]
    return "\n".join(lines)


# --- the page's CSS and script ------------------------------------------------------------------
CSS = """
.rag-answer { line-height: 1.55; }
.rag-cite { font-size: 0.8em; vertical-align: super; text-decoration: none; font-weight: 600; padding: 0 1px;
  color: var(--color-accent); cursor: pointer; }
.rag-unverified { text-decoration: underline dotted #b45309; text-underline-offset: 3px; color: #92400e; }
.rag-badge { font-size: 0.72em; border: 1px solid #d97706; color: #92400e; background: #fffbeb;
  border-radius: 4px; padding: 0 4px; margin-left: 2px; }
.rag-abstain { color: var(--body-text-color-subdued); }
.rag-error { color: #b91c1c; }
.rag-sources { margin-top: 10px; border-top: 1px solid var(--border-color-primary); padding-top: 6px;
  font-size: 0.92em; }
.rag-sources-title { font-weight: 600; margin-bottom: 2px; }
.rag-src summary { cursor: pointer; }
.rag-loc { font-weight: 600; }
.rag-quote { color: var(--body-text-color-subdued); }
.rag-passage { white-space: normal; margin: 6px 0 8px 14px; padding: 6px 10px; border-left: 3px solid
  var(--color-accent); background: var(--background-fill-secondary); }
.rag-passage mark { background: #fde68a; color: inherit; padding: 0 1px; }
.rag-src-body { display: flex; flex-wrap: wrap; gap: 8px; align-items: flex-start; }
.rag-src-body .rag-passage { flex: 1 1 260px; }
.rag-page { flex: 1 1 320px; max-width: 520px; margin: 6px 0 8px; }
.rag-page-img { width: 100%; height: auto; border: 1px solid var(--border-color-primary); }
.rag-flash { outline: 2px solid var(--color-accent); border-radius: 4px; }
.rag-cursor { animation: rag-blink 1s steps(2) infinite; }
@keyframes rag-blink { 50% { opacity: 0; } }
.rag-trace table { font-size: 0.85em; width: 100%; }
.rag-trace td, .rag-trace th { padding: 3px 6px; vertical-align: top; }
.rag-snippet { color: var(--body-text-color-subdued); font-size: 0.9em; }
"""

# Clicking a marker opens the source it names, in the same message, and brings it into view.
HEAD = """
<script>
document.addEventListener("click", function (event) {
  var marker = event.target.closest && event.target.closest(".rag-cite");
  if (!marker) return;
  event.preventDefault();
  var n = (marker.className.match(/rag-n-(\\d+)/) || [])[1];
  var message = marker.closest(".rag-msg");
  var source = message && n && message.querySelector("details.rag-src.rag-n-" + n);
  if (!source) return;
  source.open = true;
  source.scrollIntoView({block: "nearest", behavior: "smooth"});
  source.classList.add("rag-flash");
  setTimeout(function () { source.classList.remove("rag-flash"); }, 1200);
});
</script>
"""
