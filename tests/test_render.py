"""The passage view of a .txt document written in markdown: emphasis shown as emphasis, never its asterisks,
never the document's own HTML, and the quote still highlighted on the right sentence."""

from __future__ import annotations

import re

from rag import RAG
from rag.app.render import plain, render_answer
from rag.types import Citation


def test_markdown_emphasis_in_a_txt_passage_is_shown_as_emphasis(tmp_path):
    """Issue 13, rough edges: ``**HashKey: **`` in an interview transcript was shown with its asterisks."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ferry-interview.txt").write_text(
        "**Reporter: **And the timetable?\n\n"
        "**Captain Mora: **The island ferry runs *twice a day* in winter, at __seven__ and at five. "
        'Tickets are sold on board <img src="http://localhost:9/leak" onerror="alert(1)">, cash only.\n',
        encoding="utf-8",
    )
    rag = RAG(docs_dir=docs, store_dir=tmp_path / "store")
    rag.ingest()
    answer = rag.ask("How often does the island ferry run in winter?")
    assert answer.answered and answer.citations[0].source == "ferry-interview.txt"
    html = render_answer(answer)
    passage = re.search(r'<div class="rag-passage">(.*?)</div>', html)
    assert passage, html
    shown = passage[1]
    assert "*" not in shown and "__" not in shown  # no mark of emphasis shown literally
    assert "<b>Captain Mora: </b>" in shown and "<i>twice a day</i>" in shown and "<b>seven</b>" in shown
    assert "<img" not in html and "onerror=" not in html.replace("onerror=&quot;", "")  # escaped, not HTML
    assert "&lt;img src=&quot;http://localhost:9/leak&quot;" in shown
    # The quote is highlighted where it is, with its emphasis inside its one <mark> (any other quote of the
    # same passage has a <mark> of its own).
    marked = re.findall(r"<mark>(.*?)</mark>", shown)
    assert marked[0] == "The island ferry runs <i>twice a day</i> in winter, at <b>seven</b> and at five."
    assert len(marked) == len({c.quote for c in answer.citations if c.passage_id == answer.citations[0].passage_id})
    assert "*" not in html.split('<span class="rag-quote">')[1].split("</span>")[0]  # nor in the summary line


def test_emphasis_crossing_a_quote_edge_keeps_tags_nested():
    text = "**Host: The fee is low.** It rose in 2021. Nothing **else."
    c = Citation(1, "a.txt", text, "The fee is low.", 0.9, passage_id="p")
    html = render_answer_for(c)
    assert "<b>Host: </b><mark><b>The fee is low.</b></mark><b></b>" not in html  # no empty tags either
    assert "<b>Host: </b><mark><b>The fee is low.</b></mark> It rose in 2021. Nothing else." in html  # a lone ** hidden
    assert plain("2 * 3 * 4 and a*b*c") == "2 * 3 * 4 and a*b*c"  # arithmetic and words are not emphasis


def render_answer_for(c: Citation) -> str:
    from rag.types import Answer, Sentence

    return render_answer(Answer("q", "A [1].", [c], True, [Sentence("A [1].", [1], True)]))
