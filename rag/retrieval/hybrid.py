"""Question -> passages: dense (Chroma) and keyword (BM25) candidates, fused by reciprocal rank, optionally
rescored by a reranker, cut to the top k.

Reciprocal rank fusion scores a chunk by ``sum(weight / (rrf_k + rank))`` over the lists it appears in, so
with rrf_k=60 and equal weights a chunk ranked 1st by BM25 and 3rd by dense (1/61 + 1/63 = 0.0323) beats one
ranked 1st by dense alone (1/61 = 0.0164). It needs no score calibration between the two retrievers.
The defaults (rrf_k=5, dense weight 0.75) were chosen on the development batches of seven corpora; sweeps
since found no pair that answers better (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from rag.config import Settings
from rag.extras import need
from rag.index.embedding import Embedder
from rag.index.keyword import KeywordIndex
from rag.index.store import Store
from rag.language import language
from rag.retrieval.scope import Scope
from rag.text import HOWTO, tokenize
from rag.types import Passage

# An English question searches the cross-lingual index only because the store holds Chinese chunks, and
# when the store is large that index holds nothing else: its first hit is some Chinese passage whatever
# the question, and its rank alone put one into the top passages of every English question. A hit counts
# only this close to the question (EmbeddingGemma's cosine). On the dev batch of English questions over
# the Chinese Debian Reference the first passage holding the answer scored 0.47 to 0.71 (median 0.62);
# the best passage of that manual for 61 dev questions of four English corpora scored 0.24 to 0.50
# (median 0.33, nine in ten below 0.44). A Chinese question has no other dense list, and is never cut.
XL_FLOOR = 0.45
# A passage whose words are (nearly) those of one ranked above it is a copy, not a second source: a folder
# often holds a document twice (a page and its source text, a copy in another folder, a changelog included
# in two manuals). Copies are passed over so the k passages shown and read are k different ones.
SAME_WORDS = 0.9  # share of the smaller passage's distinct words found in the larger one
SAME_SIZE = 0.7  # ... when the smaller has at least this share of the larger's distinct words
# Release notes (NEWS, CHANGES, a changelog) mention every feature a manual explains, in the words of the
# change ("Fix listing of outdated packages ..."), but never say how to use it: on a question asking how to do
# something (`rag.text.HOWTO`, "如何/怎么") their passages count this share of their fused score. Only then:
# where the release notes are the one place a fact is written ("Version 2 counts starfish"), they must win.
# Dev (eight sets): answers identical but one, where sqlite-doc's "show column headers" question quoted
# three changelog lines and now declines; chosen before measuring, not tuned.
RELEASE_NOTES_WEIGHT = 0.5
# By name: GNU's NEWS and HISTORY in capitals (a company's news.html or history.pdf is no changelog), the rest
# in any case.
_RELEASE_NOTES = re.compile(
    r"(?:^|/)(?:NEWS|HISTORY|(?i:changes|change[-_]?log|release[-_]?notes?|rel[-_]?notes|whats[-_]?new))"
    r"(?:\.[^/]*)?$"
)
_HOW_TO_ZH = re.compile(r"如何|怎么|怎样|怎麼|怎樣")


def release_notes(source: str) -> bool:
    """A document of release notes, by its name.

    Example:
        >>> [release_notes(n) for n in ("NEWS", "doc/CHANGES.rst", "changelog.Debian.gz", "news.html", "history.pdf")]
        [True, True, True, False, False]
    """
    return bool(_RELEASE_NOTES.search(source.removesuffix(".gz")))


def nanoranker_scores(query: str, texts: list[str]) -> list[float]:
    """Scores from the ``nanoranker`` package, in the order of ``texts`` (it returns them sorted)."""
    nanoranker = need("nanoranker", "reranking (RAG_RERANK=true)")
    ranked = nanoranker.rank(query, texts, top_n=len(texts))
    by_text: dict[str, float] = {}
    for text, score in ranked:
        by_text.setdefault(text, float(score))
    return [by_text[t] for t in texts]


@dataclass
class Retrieval:
    """Passages plus what a curious user may want to see of how they were found."""

    query: str
    passages: list[Passage]
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds per stage
    vector: np.ndarray | None = None  # the query's embedding, when dense retrieval ran
    xl_vector: np.ndarray | None = None  # its multilingual embedding, when the cross-lingual index was searched
    scope: Scope | None = None  # the documents searched, when the question was asked within some


def to_passage(cid: str, meta: dict, text: str, score: float) -> Passage:
    page = meta.get("page")
    return Passage(
        text=text,
        source=meta["source"],
        score=score,
        page=int(page) if page is not None else None,
        section=meta.get("section"),
        start=int(meta.get("start", 0)),
        end=int(meta.get("end", 0)),
        id=cid,
    )


def distinct(ranked: list[Passage], limit: int) -> list[Passage]:
    """The first ``limit`` passages of ``ranked`` that do not copy one ranked above them (`SAME_WORDS`,
    `SAME_SIZE`): ``["Run make.", "Run make!", "Run cmake."]`` keeps the first and the last."""
    kept: list[Passage] = []
    seen: list[set[str]] = []
    for p in ranked:
        if len(kept) == limit:
            break
        words = set(tokenize(p.text))
        if not words or not any(  # a passage without words (a bare number, a symbol) can't be told a copy
            len(words & other) >= SAME_WORDS * min(len(words), len(other))
            and min(len(words), len(other)) >= SAME_SIZE * max(len(words), len(other))
            for other in seen
        ):
            kept.append(p)
            seen.append(words)
    return kept


class Retriever:
    """Dense and keyword candidates for a question, fused; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        embedder: Embedder,
        keyword: Callable[[], KeywordIndex],
        reranker=None,
        xl_embedder: Embedder | None = None,
    ):
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.keyword = keyword
        self.reranker = reranker
        self.xl_embedder = xl_embedder

    def uses_xl(self, query: str) -> bool:
        """Search the cross-lingual index (`rag.index.crosslingual`): for a question not in English, and for an
        English one when the store holds Chinese chunks; never when there is no such index."""
        if (xl := self._xl_index()) is None:
            return False
        return language(query) != "en" or int((xl.metadata or {}).get("chinese", 0)) > 0

    def chinese_share(self) -> float:
        """Share of the store's chunks written in Chinese, as the cross-lingual index counted them (0 without it)."""
        if (xl := self._xl_index()) is None or not (total := self.store.count()):
            return 0.0
        return int((xl.metadata or {}).get("chinese", 0)) / total

    def _xl_index(self):
        """The cross-lingual index, when it is switched on, its model at hand and the store has one."""
        return self.store.xl() if self.settings.crosslingual != "off" and self.xl_embedder is not None else None

    def retrieve(
        self, query: str, k: int | None = None, fusion: str | None = None, scope: Scope | None = None
    ) -> Retrieval:
        """The ``k`` best passages for ``query`` (within ``scope``'s documents when given)."""
        k = k or self.settings.top_k
        sources = scope.sources if scope is not None else None
        fusion = fusion or self.settings.fusion
        n = max(self.settings.candidates, k)
        timings: dict[str, float] = {}
        found: dict[str, Passage] = {}
        vector = xl_vector = None
        xl = self.uses_xl(query)
        # The English model cannot read a question in another language: the multilingual one stands in.
        english_dense = fusion in ("rrf", "dense") and not (xl and language(query) != "en")

        t = time.perf_counter()
        if xl and fusion in ("rrf", "dense"):
            assert self.xl_embedder is not None
            xl_vector = self.xl_embedder.embed_query(query)
            hits = self.store.query_xl(xl_vector, n, sources)
            if language(query) == "en":  # searched only because the store holds Chinese: see XL_FLOOR
                hits = [(cid, sim) for cid, sim in hits if sim >= XL_FLOOR]
            fetched = self.store.get([cid for cid, _ in hits])
            for rank, (cid, sim) in enumerate((h for h in hits if h[0] in fetched), 1):
                p = found[cid] = to_passage(cid, *fetched[cid], sim)
                p.ranks["xl"], p.scores["xl"] = rank, sim
            timings["xl_ms"] = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
        if english_dense:
            vector = self.embedder.embed_query(query)
            timings["embed_ms"] = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            for rank, (cid, sim, meta, text) in enumerate(self.store.query(vector, n, sources), 1):
                p = found.get(cid) or to_passage(cid, meta, text, sim)
                found[cid] = p
                p.ranks["dense"], p.scores["dense"] = rank, sim
            timings["dense_ms"] = (time.perf_counter() - t) * 1000
        if fusion in ("rrf", "bm25"):
            t = time.perf_counter()
            only = self.store.ids_of(sources) if sources is not None else None
            hits = self.keyword().search(query, n, only)
            missing = [cid for cid, _ in hits if cid not in found]
            fetched = self.store.get(missing) if missing else {}
            for rank, (cid, score) in enumerate(hits, 1):
                if cid not in found:
                    if cid not in fetched:  # index a moment behind the store: skip, never invent
                        continue
                    found[cid] = to_passage(cid, *fetched[cid], 0.0)
                found[cid].ranks["bm25"], found[cid].scores["bm25"] = rank, score
            timings["bm25_ms"] = (time.perf_counter() - t) * 1000
        if fusion == "rrf" and vector is not None:
            self._exact_dense(found, vector, n)

        weights = {"dense": self.settings.dense_weight, "xl": self.settings.dense_weight, "bm25": 1.0}
        # Across languages only names and commands match words: wherever the cross-lingual index is searched,
        # the keyword list counts as much as the question's words occur in the corpus at all (about all of
        # them when it is in the documents' language). That holds for every passage, the English ones of a
        # Chinese corpus too: there they are code listings and tables, whose English words an English question
        # matches by accident (English questions over the Chinese manual, dev: MRR 0.72 -> 0.77).
        if xl:
            weights["bm25"] = self.keyword().known_share(query)
        how_to = bool(HOWTO.search(query) or _HOW_TO_ZH.search(query))
        for p in found.values():
            p.score = sum(weights[name] / (self.settings.rrf_k + r) for name, r in p.ranks.items())
            if how_to and release_notes(p.source):
                p.score *= RELEASE_NOTES_WEIGHT
            p.scores["fused"] = p.score
        # Equal fused scores (they happen: dense 1 + keyword 9 = dense 2 + keyword 7 at rrf_k=5, weight 0.5)
        # go to the passage one retriever ranked higher, a stronger single signal than two middling ones.
        ranked = sorted(found.values(), key=lambda p: (-round(p.score, 12), min(p.ranks.values()), p.id))
        ranked = distinct(ranked, max(k * 4, 20))  # the reranker's pool at most
        if self.reranker is not None and self.settings.rerank and ranked:
            t = time.perf_counter()
            for p, s in zip(ranked, self.reranker(query, [p.text for p in ranked]), strict=True):
                p.scores["rerank"] = p.score = s
            ranked = sorted(ranked, key=lambda p: (-p.score, p.id))
            timings["rerank_ms"] = (time.perf_counter() - t) * 1000
        return Retrieval(query, ranked[:k], timings, vector, xl_vector, scope)

    def _exact_dense(self, found: dict[str, Passage], vector: np.ndarray, n: int) -> None:
        """Give a keyword candidate that the dense search wrongly left out its dense rank.

        Chroma's HNSW index is approximate: now and then it leaves out a chunk, even a just-added one in a
        22-chunk store (seen here about once in twelve fresh stores), and that chunk then has no dense rank.
        The keyword candidates are few, so their stored vectors are compared exactly. One that is closer to
        the question than the last of the ``n`` dense results (or any, when fewer came back) was missed and
        takes its place in the dense ranking; the others stay out of it, as an exact search would leave them.
        """
        dense = [p for p in found.values() if "dense" in p.ranks]
        missing = [cid for cid, p in found.items() if "dense" not in p.ranks]
        if not missing:
            return
        floor = min(p.scores["dense"] for p in dense) if len(dense) >= n else -np.inf
        for cid, v in self.store.vectors(missing).items():
            if (sim := float(v @ vector)) > floor:
                found[cid].scores["dense"] = sim
                dense.append(found[cid])
        for rank, p in enumerate(sorted(dense, key=lambda p: (-p.scores["dense"], p.id)), 1):
            p.ranks["dense"] = rank
