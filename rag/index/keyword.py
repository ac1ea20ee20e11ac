"""The keyword (BM25) index over the same chunks as the vector store, persisted beside it.

It is derived data: rebuilt from the chunk texts in Chroma whenever the store's ``version`` (bumped by
every ingest that changed something) differs from the one it was built at. So it follows the store in
server mode too, where other machines may ingest, and a crash between the Chroma write and the index
write costs a rebuild, never a wrong answer.

Example:
    >>> idx = KeywordIndex.build(["a", "b"], ["the cat sat", "a dog barked"], version="c0ffee:1")
    >>> idx.search("dog", 1)[0][0]
    'b'
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import shutil
from collections import Counter
from collections.abc import Set as AbstractSet
from pathlib import Path

import numpy as np

from rag.text import CJK, tokenize

FORMAT = 10  # bump when tokenization or the saved layout changes: indexes saved in another format are rebuilt


def quiet_bm25s() -> None:
    """bm25s sets its own logger to DEBUG, so "Building index from tokens" reached the app's WARNING-level log
    on every upload; its messages now pass at WARNING and above, like everyone else's."""
    logging.getLogger("bm25s").setLevel(logging.WARNING)


class KeywordIndex:
    """BM25 (bm25s) over chunk texts, keyed by chunk id."""

    def __init__(self, retriever, ids: list[str], version: str, doc_freq: dict[str, int] | None = None):
        self._bm25 = retriever
        self.ids = ids
        self.version = version
        self.doc_freq = doc_freq or {}  # chunks each word appears in: how rare a word is, for the answerer

    def idf(self, word: str) -> float:
        """BM25's idf, ``log(1 + (N - df + 0.5) / (df + 0.5))``; a word never seen counts as rarest."""
        df = self.doc_freq.get(word, 0)
        return math.log(1 + (len(self.ids) - df + 0.5) / (df + 0.5))

    def known_share(self, query: str) -> float:
        """How much of ``query`` (idf-weighted tokens) the corpus uses at all: ~1 for a question in the
        documents' language, near 0 for one in another language (only names and commands can match).
        A Chinese character pair counts as known when the corpus has both characters: pairs that straddle
        two words ("馆借" in "图书馆借阅") are not in any text, yet say nothing about the language."""
        tokens = tokenize(query)
        total = sum(self.idf(t) for t in tokens)
        known = sum(
            self.idf(t)
            for t in tokens
            if t in self.doc_freq or (CJK.fullmatch(t) and all(ch in self._cjk_chars for ch in t))
        )
        return known / total if total else 0.0

    @functools.cached_property
    def _position(self) -> dict[str, int]:
        """Each chunk id's row in the index."""
        return {cid: i for i, cid in enumerate(self.ids)}

    @functools.cached_property
    def _cjk_chars(self) -> frozenset[str]:
        return frozenset(ch for word in self.doc_freq if CJK.fullmatch(word) for ch in word)

    @classmethod
    def build(cls, ids: list[str], texts: list[str], version: str) -> KeywordIndex:
        import bm25s

        quiet_bm25s()

        bm25 = bm25s.BM25()
        tokens = [tokenize(t) or ["\x00"] for t in texts]
        if ids:
            bm25.index(tokens, show_progress=False)
        return cls(bm25, list(ids), version, dict(Counter(w for ts in tokens for w in set(ts))))

    def search(self, query: str, k: int, only: AbstractSet[str] | None = None) -> list[tuple[str, float]]:
        """The ``k`` best chunks for ``query``: (id, BM25 score), best first, zero scores left out; only the
        chunks whose ids are in ``only`` when given (a scope: the best within it, not its share of the best)."""
        tokens = [t for t in tokenize(query) if t in self._bm25.vocab_dict] if self.ids else []
        if not tokens:
            return []
        scores = self._bm25.get_scores(tokens)
        if only is not None:  # keep the scope's scores: its chunks are few, the index's may be tens of thousands
            kept = np.zeros_like(scores)
            at = [self._position[cid] for cid in only if cid in self._position]
            kept[at] = scores[at]
            scores = kept
        k = min(k, len(self.ids))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]

    # --- persistence ------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write to a temporary folder, then swap it in, so a reader never sees half an index."""
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if self.ids:
            self._bm25.save(str(tmp), show_progress=False)
        meta = {"format": FORMAT, "version": self.version, "ids": self.ids, "doc_freq": self.doc_freq}
        (tmp / "ids.json").write_text(json.dumps(meta))
        old = folder.with_name(folder.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path) -> KeywordIndex | None:
        """The saved index, or None when there is none or it cannot be read (it is then rebuilt)."""
        import bm25s

        quiet_bm25s()

        try:
            meta = json.loads((folder / "ids.json").read_text())
            if meta.get("format") != FORMAT:
                return None
            bm25 = bm25s.BM25.load(str(folder), show_progress=False) if meta["ids"] else bm25s.BM25()
        except (OSError, ValueError, KeyError):
            return None
        return cls(bm25, meta["ids"], str(meta["version"]), meta.get("doc_freq"))
