"""Fusion logic on hand-built candidate lists (a stand-in store and keyword index; the real ones are used by
the engine, ingest and upload tests)."""

from __future__ import annotations

import numpy as np

from rag.config import Settings
from rag.retrieval.hybrid import Retriever


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
