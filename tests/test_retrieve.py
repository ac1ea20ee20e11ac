"""Fusion logic on hand-built candidate lists (a stand-in store and keyword index; the real ones are used by
the engine, ingest and upload tests), and copies passed over, on hand-built passages and over a real store."""

from __future__ import annotations

import numpy as np

from rag.config import Settings
from rag.retrieval.hybrid import Retriever, distinct
from rag.types import Passage

from .conftest import ingested


class _Store:
    """Three unit vectors; the "approximate" dense search leaves out chunk c, as HNSW now and then does."""

    vecs = {"a": np.array([1.0, 0.0]), "b": np.array([0.6, 0.8]), "c": np.array([0.95, 0.3122])}

    def query(self, vector, n, sources=None):
        return [(cid, float(self.vecs[cid] @ vector), {"source": f"{cid}.txt"}, cid) for cid in ("a", "b")][:n]

    def get(self, ids):
        return {cid: ({"source": f"{cid}.txt"}, cid) for cid in ids}

    def vectors(self, ids):
        return {cid: self.vecs[cid] for cid in ids}


class _Embedder:
    def embed_query(self, text):
        return np.array([1.0, 0.0])


class _Keyword:
    def search(self, query, n, only=None):
        return [("c", 3.0), ("b", 1.0)]


def test_a_keyword_candidate_the_dense_search_missed_gets_its_exact_dense_rank():
    retriever = Retriever(Settings(candidates=30), _Store(), _Embedder(), lambda: _Keyword())
    passages = retriever.retrieve("q", k=3).passages
    ranks = {p.id: p.ranks for p in passages}
    assert ranks["c"] == {"bm25": 1, "dense": 2}  # closer than b: it takes b's dense place
    assert ranks["b"] == {"dense": 3, "bm25": 2}
    assert passages[0].id == "c"


def test_a_full_dense_list_leaves_farther_keyword_candidates_without_a_dense_rank():
    retriever = Retriever(Settings(candidates=2), _Store(), _Embedder(), lambda: _Keyword())
    _Store.vecs["c"] = np.array([0.0, 1.0])  # farther than both dense results: an exact search would miss it too
    try:
        found = retriever.retrieve("q", k=2)
        ranks = {p.id: p.ranks for p in found.passages}
    finally:
        _Store.vecs["c"] = np.array([0.95, 0.3122])
    assert ranks["c"] == {"bm25": 1} and [p.id for p in found.passages] == ["b", "c"]


def _passages(*texts: str) -> list[Passage]:
    return [Passage(t, f"{i}.txt", 0.0, id=str(i)) for i, t in enumerate(texts)]


def test_a_passage_that_copies_one_ranked_above_it_is_passed_over():
    page = "To renew the certificate, stop the proxy, run certbot renew and start the proxy again."
    source = "To renew the certificate: stop the proxy, run ``certbot renew``, and start the proxy again!"
    other = "The proxy reads its certificate from /etc/proxy/cert.pem when it starts."
    longer = page + " Renewal fails when port 80 is taken by another server, web cache or load balancer."
    got = distinct(_passages(page, source, other, longer), limit=10)
    assert [p.id for p in got] == ["0", "2", "3"]  # the copy in other markup goes; a longer passage holding it stays
    assert [p.id for p in distinct(_passages(page, other, longer), limit=2)] == ["0", "1"]


def test_a_document_kept_twice_in_the_folder_fills_the_top_passages_once(tmp_path):
    """Over the real store: a page and its source text in the same folder (as Sphinx output ships them)."""
    manual = (
        "Rotating the logs. The daemon writes its log to /var/log/tidepool.log. Send it SIGHUP to make it "
        "reopen the file after logrotate has moved it away. Without the signal it keeps writing to the old file."
    )
    rag = ingested(
        tmp_path,
        {
            "logs.html": f"<html><body><h1>Logs</h1><p>{manual}</p></body></html>",
            "logs.txt": f"Logs\n====\n\n{manual}\n",
            "tuning.txt": "Tuning the daemon. Raise the worker count when the queue grows; each worker takes 40 MB.",
        },
        crosslingual="off",
    )
    passages = rag.search("How do I make the daemon reopen its log file?", k=3).passages
    assert "SIGHUP" in passages[0].text
    assert sum("SIGHUP" in p.text for p in passages) == 1  # the copy does not take a second place
    assert any(p.source == "tuning.txt" for p in passages)


def test_asking_the_real_store_for_no_chunks_gives_none(tmp_path):
    """Chroma refuses an empty list of ids; an English question whose cross-lingual hits all fall below the
    floor asks for none."""
    rag = ingested(tmp_path, {"tuning.txt": "Raise the worker count when the queue grows."}, crosslingual="off")
    rag.store.open()
    assert rag.store.get([]) == {}
    assert len(rag.store.get([cid for cid, _, _ in rag.store.all_chunks()])) == 1


def test_release_notes_give_way_to_the_manual_unless_the_question_asks_about_changes(tmp_path):
    """A changelog names every feature in the words of its change; on a how-to question the page that explains
    the feature comes first, and a question about versions still finds the changelog's entry."""
    rag = ingested(
        tmp_path,
        {
            "guide.md": "# Saving the season\n\nTo keep the season's harvest log in a spreadsheet file, open the "
            "Records menu and choose Save as table. The file is written to your Documents folder.",
            "NEWS": "Orchard 2.3\n\n- Export harvest records as a spreadsheet.\n"
            "- Fix exporting harvest records with empty dates.\n\nOrchard 2.2\n\n- Faster start.",
        },
    )
    assert rag.retrieve("How do I export harvest records as a spreadsheet?", k=2)[0].source == "guide.md"
    assert rag.retrieve("Which version added exporting harvest records?", k=2)[0].source == "NEWS"


def test_a_flag_named_by_one_capital_letter_finds_its_own_section(tmp_path):
    """Over the real store: a page of one-letter flags, asked about one of them. The letter used to be dropped
    as no word, so every flag's section matched the question alike."""
    flags = {
        "F": "refuses the request: the client gets 403 Forbidden and nothing else runs.",
        "R": "sends the client a redirect, status 302 unless another status is named.",
        "N": "runs the whole set of rules again from the first one, with the rewritten path.",
        "S": "skips the given number of rules that follow when this one matches.",
    }
    page = "".join(f"<h2>{f} flag</h2><p>The [{f}] flag {text}</p>" for f, text in flags.items())
    rag = ingested(tmp_path, {"flags.html": f"<html><body><h1>Rule flags</h1>{page}</body></html>"}, crosslingual="off")
    for letter in ("R", "N"):
        answer = rag.ask(f"What does the {letter} flag do?")
        assert answer.answered and answer.citations[0].quote.startswith(f"The [{letter}] flag"), answer.text
