"""The cross-lingual index: the store's chunks embedded by a multilingual model, so that a question in
Chinese finds English passages and an English question finds Chinese ones.

The default embedder (all-MiniLM-L6-v2) reads English only: a Chinese question finds the right English
passage in its top 5 about once in ten (MODELS.md). EmbeddingGemma-300M maps both languages, and both
Chinese scripts, into one space, but embeds ~17 times slower on two CPU cores. So it is a second index
beside the first, never a replacement, and how much of the store it covers is a setting
(``Settings.crosslingual``):

- ``on``: every chunk;
- ``auto`` (default): every chunk while the store holds at most ``crosslingual_max_chunks`` chunks, and
  above that only the Chinese chunks (which the English model cannot read at all);
- ``off``: none.

Like the keyword index it is derived data: after every ingest ``sync`` embeds the chunks it should hold and
does not yet, and drops those it should not, so a killed run or a changed setting is put right by the next.
Each vector records what it embedded (`rag.index.layout.embedded_key`): a rebuild of the store keeps the
index, and only chunks whose text changed are embedded again (the slow model's work is not redone).

Retrieval uses it for a question that is not in English, and for an English question when the store holds
Chinese chunks (`Retriever`). (Searching it for every English question raised hit@5 and MRR a little on the
English dev batches but not the facts answered, and doubled the English answer's p50 latency: dropped, see
docs/BENCHMARKS.md.)
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from rag.config import Settings
from rag.index.embedding import Embedder
from rag.index.layout import EMBEDDED, embedded_key, embedding_text
from rag.index.store import Store
from rag.language import language

BATCH = 64  # chunks embedded and written at a time (a killed run keeps what it wrote); >= 32 uses every core


@dataclass
class XlReport:
    """What one sync did: chunks embedded, removed, held, and English chunks left out by ``auto``."""

    embedded: int = 0
    removed: int = 0
    held: int = 0
    left_out: int = 0
    off: bool = False  # RAG_CROSSLINGUAL=off: the index is not kept

    def line(self) -> str:
        if self.off:
            return f"cross-lingual index: off ({self.removed} removed)" if self.removed else "cross-lingual index: off"
        text = f"cross-lingual index: {self.held} chunks ({self.embedded} embedded, {self.removed} removed)"
        if self.left_out:
            text += (
                f"; {self.left_out} English chunks left out (the store is larger than crosslingual_max_chunks: "
                "set RAG_CROSSLINGUAL=on to include them)"
            )
        return text


def wanted(settings: Settings, languages: Mapping[str, str]) -> set[str]:
    """The chunk ids the index should hold, given each chunk's language."""
    if settings.crosslingual == "off":
        return set()
    if settings.crosslingual == "on" or len(languages) <= settings.crosslingual_max_chunks:
        return set(languages)
    return {cid for cid, lang in languages.items() if lang == "zh"}


def sync(
    settings: Settings, store: Store, embedder: Callable[[], Embedder], progress: Callable[[str], None] | None = None
) -> XlReport:
    """Bring the index in line with the store's chunks (see the module docstring)."""
    report = XlReport(off=settings.crosslingual == "off")
    if report.off and store.xl() is None:
        return report
    # Nothing to do when neither the chunks nor the settings changed since the last sync: reading every
    # chunk again would cost each no-op ingest ~1 s per 10,000 chunks.
    state = (
        f"{store.version()}|{settings.crosslingual}|{settings.crosslingual_max_chunks}|{settings.crosslingual_model}"
    )
    existing = store.xl()
    meta = (existing.metadata or {}) if existing is not None else {}
    if meta.get("synced") == state:
        report.held, report.left_out = int(meta.get("held", 0)), int(meta.get("left_out", 0))
        return report
    chunks = {cid: (meta, text) for cid, meta, text in store.all_chunks()}
    languages = {cid: language(text) for cid, (_, text) in chunks.items()}
    want = wanted(settings, languages)
    if settings.crosslingual == "auto":  # what the size limit left out, not what the user switched off
        report.left_out = sum(lang != "zh" for cid, lang in languages.items() if cid not in want)
    if not want and store.xl() is None:
        return report
    xl = store.xl(settings.crosslingual_model)
    assert xl is not None
    have = store.xl_keys()
    stale = sorted(set(have) - want)
    store.delete_xl(stale)
    report.removed = len(stale)
    # under the section heading only: the document's title above it, which helps the English index
    # (docs/BENCHMARKS.md, session 9), cost the Chinese questions over the seed interview some precision
    texts = {c: embedding_text(chunks[c][1], chunks[c][0].get("section")) for c in want}
    keys = {c: embedded_key(settings.crosslingual_model, text) for c, text in texts.items()}
    todo = sorted(c for c in want if have.get(c) != keys[c])  # new, or its section heading changed
    if todo:
        model = embedder()
        say = progress or (lambda line: print(line, file=sys.stderr, flush=True))
        say(f"cross-lingual index: embedding {len(todo)} chunks with {settings.crosslingual_model}")
        for i in range(0, len(todo), BATCH):
            ids = todo[i : i + BATCH]
            vectors = model.embed([texts[c] for c in ids], role="document")
            metas = [
                {"source": chunks[c][0]["source"], "file_hash": chunks[c][0].get("file_hash", ""), EMBEDDED: keys[c]}
                for c in ids
            ]
            store.upsert_xl(ids, vectors, metas)
            report.embedded += len(ids)
    report.held = len(want)
    # Chinese chunks: the English model cannot read them at all, so English questions need this index too.
    # (A table or code block that reads as "other" is no reason to change how English questions search.)
    chinese = sum(lang == "zh" for lang in languages.values())
    store.describe_xl(chinese=chinese, held=report.held, left_out=report.left_out, synced=state)
    return report
