"""Chroma, embedded (files in ``store_dir``) or a server (``chroma_host``): the chunks and the ledger.

Two collections per store:

* ``<collection>``: one record per chunk (embedding, text, and metadata: source, file_hash, page, section,
  start, end, chunk_index).
* ``<collection>-files``: the ledger, one record per document: its content hash, its chunk count, when it
  was ingested, and ``state`` = ``pending`` while its chunks are being written or removed, ``done`` after.

A third, ``<collection>-xl``, is optional: the same chunk ids embedded by the multilingual model, for
questions in another language than the documents (see ``rag.crosslingual``); derived data, filled after
each ingest.

The ledger lives beside the chunks, so it is equally right in embedded and server mode, and a run killed
at any moment leaves at worst ``pending`` records that the next run finishes (see ``ingest.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import Settings
from .embedding import offline_environment
from .errors import StoreError

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

_PAGE = 2000  # records per get() page; Chroma caps one request at a few thousand


@dataclass
class FileRecord:
    source: str
    file_hash: str
    chunks: int
    state: str  # "pending" | "done"
    ingested_at: float


def _clean(meta: dict[str, Any]) -> dict[str, Any]:
    """Chroma metadata values cannot be None."""
    return {k: v for k, v in meta.items() if v is not None}


class Store:
    """The Chroma side of rag. Opening it connects; nothing is created until `prepare`."""

    def __init__(self, settings: Settings):
        offline_environment()
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        self.settings = settings
        chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        try:
            if settings.server_mode:
                self.client = chromadb.HttpClient(
                    host=settings.chroma_host or "127.0.0.1", port=settings.chroma_port, settings=chroma_settings
                )
                self.client.heartbeat()
            else:
                settings.store_dir.mkdir(parents=True, exist_ok=True)
                self.client = chromadb.PersistentClient(path=str(settings.store_dir), settings=chroma_settings)
        except Exception as exc:  # chromadb raises many types here; the person needs one line
            raise StoreError(f"cannot open the Chroma store at {self.location}: {exc}") from exc
        self._chunks: Collection | None = None
        self._files: Collection | None = None
        self._xl: Collection | None = None

    @property
    def location(self) -> str:
        s = self.settings
        return f"http://{s.chroma_host}:{s.chroma_port}" if s.server_mode else str(s.store_dir)

    # --- collections -----------------------------------------------------------------------
    def _get(self, name: str):
        try:
            return self.client.get_collection(name, embedding_function=None)
        except Exception:  # NotFoundError in 1.x, ValueError in older clients
            return None

    def open(self) -> bool:
        """Attach to existing collections; False when nothing has been ingested into this store yet."""
        self._chunks = self._get(self.settings.collection)
        self._files = self._get(f"{self.settings.collection}-files")
        self._xl = self._get(self.xl_name)
        return self._chunks is not None and self._files is not None

    @property
    def xl_name(self) -> str:
        return f"{self.settings.collection}-xl"

    def stored_fingerprint(self) -> str | None:
        if self._chunks is None:
            return None
        return (self._chunks.metadata or {}).get("fingerprint")

    def prepare(self, fingerprint: str) -> None:
        """Create the collections if missing, stamped with the configuration fingerprint."""
        meta = {"fingerprint": fingerprint, "version": 0, "hnsw:space": "cosine"}
        self._chunks = self._chunks or self.client.get_or_create_collection(
            self.settings.collection, metadata=meta, embedding_function=None
        )
        self._files = self._files or self.client.get_or_create_collection(
            f"{self.settings.collection}-files", embedding_function=None
        )

    def drop(self) -> None:
        """Delete the collections (a --reset, or a configuration change)."""
        for name in (self.settings.collection, f"{self.settings.collection}-files", self.xl_name):
            if self._get(name) is not None:
                self.client.delete_collection(name)
        self._chunks = self._files = self._xl = None

    @property
    def chunks(self) -> Collection:
        return self._opened(lambda: self._chunks)

    @property
    def files(self) -> Collection:
        return self._opened(lambda: self._files)

    def _opened(self, collection: Callable[[], Collection | None]) -> Collection:
        """The collection, opening the store first if needed; a StoreError when nothing was ingested."""
        if (found := collection()) is None and self.open():
            found = collection()
        if found is None:
            raise StoreError(f"nothing ingested yet into collection {self.settings.collection!r} at {self.location}")
        return found

    # --- the ledger -------------------------------------------------------------------------
    def ledger(self) -> dict[str, FileRecord]:
        if self._files is None:
            return {}
        out = {}
        for _, meta, _ in self._iter(self._files, include=["metadatas"]):
            out[meta["source"]] = FileRecord(
                meta["source"], meta["file_hash"], meta["chunks"], meta["state"], meta["ingested_at"]
            )
        return out

    def mark(self, records: list[FileRecord]) -> None:
        if records:
            self.files.upsert(
                ids=[r.source for r in records],
                embeddings=np.zeros((len(records), 1), dtype=np.float32),  # the ledger is looked up, not searched
                metadatas=[r.__dict__ for r in records],
            )

    def forget(self, sources: list[str]) -> None:
        if sources:
            self.files.delete(ids=sources)

    # --- chunks -------------------------------------------------------------------------------
    def upsert(self, ids: list[str], vectors: np.ndarray, texts: list[str], metas: list[dict]) -> None:
        step = self.client.get_max_batch_size()
        for i in range(0, len(ids), step):
            self.chunks.upsert(
                ids=ids[i : i + step],
                embeddings=vectors[i : i + step],
                documents=texts[i : i + step],
                metadatas=[_clean(m) for m in metas[i : i + step]],
            )

    def delete_source(self, source: str, keep_hash: str | None = None) -> None:
        """Delete a document's chunks, or with ``keep_hash`` only those of other versions of it."""
        where: dict[str, Any] = {"source": source}
        if keep_hash is not None:
            where = {"$and": [{"source": source}, {"file_hash": {"$ne": keep_hash}}]}
        self.chunks.delete(where=where)
        if self._xl is not None:
            self._xl.delete(where=where)

    # --- the cross-lingual index ------------------------------------------------------------------
    def xl(self, model: str | None = None) -> Collection | None:
        """The cross-lingual collection; with ``model``, created (or re-created, if it holds another model's
        vectors) for it. None when there is none and no model was given."""
        if model is None:
            return self._xl
        if self._xl is not None and (self._xl.metadata or {}).get("model") != model:
            self.client.delete_collection(self.xl_name)
            self._xl = None
        if self._xl is None:
            self._xl = self.client.get_or_create_collection(
                self.xl_name, metadata={"model": model, "hnsw:space": "cosine"}, embedding_function=None
            )
        return self._xl

    def describe_xl(self, **meta: int | str) -> None:
        """Record facts about the cross-lingual index in its metadata (e.g. how many chunks are not English)."""
        assert self._xl is not None, "xl(model) first"
        merged = {**(self._xl.metadata or {}), **meta}
        merged.pop("hnsw:space", None)  # fixed at creation; Chroma refuses to "change" it
        self._xl.modify(metadata=merged)
        self._xl = self._get(self.xl_name)

    def xl_ids(self) -> set[str]:
        return {cid for cid, _, _ in self._iter(self._xl, include=["metadatas"])} if self._xl is not None else set()

    def upsert_xl(self, ids: list[str], vectors: np.ndarray, metas: list[dict[str, Any]]) -> None:
        assert self._xl is not None, "xl(model) first"
        step = self.client.get_max_batch_size()
        for i in range(0, len(ids), step):
            self._xl.upsert(
                ids=ids[i : i + step],
                embeddings=vectors[i : i + step],
                metadatas=[_clean(m) for m in metas[i : i + step]],
            )

    def delete_xl(self, ids: list[str]) -> None:
        if self._xl is not None and ids:
            self._xl.delete(ids=ids)

    def query_xl(self, vector: np.ndarray, n: int) -> list[tuple[str, float]]:
        """Nearest chunks in the cross-lingual index: (id, cosine similarity), best first."""
        if self._xl is None or self._xl.count() == 0:
            return []
        res = self._xl.query(query_embeddings=[vector], n_results=n, include=["distances"])
        distances = res["distances"] or [[]]
        return [(i, 1.0 - d) for i, d in zip(res["ids"][0], distances[0], strict=False)]

    def count(self) -> int:
        return self._chunks.count() if self._chunks is not None else 0

    def version(self) -> str:
        """``"<collection id>:<counter>"``: the counter is bumped around every ingest that changes something,
        and the id changes when the collection is re-created (a --reset or a new chunking), where the counter
        starts again from 0. The keyword index is rebuilt whenever this differs from the one it was built at.
        """
        if self._chunks is None:
            return "none"
        return f"{self._chunks.id}:{int((self._chunks.metadata or {}).get('version', 0))}"

    def is_dirty(self) -> bool:
        """True when a writing ingest started and did not finish (it was killed)."""
        return bool(self._chunks is not None and (self._chunks.metadata or {}).get("dirty"))

    def begin_write(self) -> None:
        """Bump the version and flag the store dirty before changing chunks: a keyword index built before
        is now stale, and one built while writing is rebuilt after `end_write`, even if this run dies."""
        self._set_meta(dirty=True)

    def end_write(self) -> None:
        self._set_meta(dirty=False)

    def _set_meta(self, dirty: bool) -> None:
        meta = dict(self.chunks.metadata or {})
        meta["version"] = int(meta.get("version", 0)) + 1
        meta["dirty"] = dirty
        meta.pop("hnsw:space", None)  # fixed at creation; Chroma refuses to "change" it
        self.chunks.modify(metadata=meta)
        self._chunks = self._get(self.settings.collection)

    def refresh(self) -> None:
        """Re-read collection metadata (another process may have ingested)."""
        self.open()

    def all_chunks(self) -> Iterator[tuple[str, dict, str]]:
        """(id, metadata, text) of every chunk, paged."""
        for cid, meta, text in self._iter(self.chunks, include=["metadatas", "documents"]):
            yield cid, meta, text or ""

    @staticmethod
    def _iter(collection, include: list[str]) -> Iterator[tuple[str, dict, str | None]]:
        offset = 0
        while True:
            page = collection.get(include=include, limit=_PAGE, offset=offset)
            docs = page.get("documents") or [None] * len(page["ids"])
            yield from zip(page["ids"], page["metadatas"], docs, strict=True)
            if len(page["ids"]) < _PAGE:
                return
            offset += _PAGE

    def query(self, vector: np.ndarray, n: int) -> list[tuple[str, float, dict, str]]:
        """Nearest chunks: (id, cosine similarity, metadata, text), best first."""
        res = self.chunks.query(query_embeddings=[vector], n_results=n, include=["metadatas", "documents", "distances"])
        distances, metas, texts = res["distances"] or [[]], res["metadatas"] or [[]], res["documents"] or [[]]
        return [
            (i, 1.0 - d, dict(m or {}), t)
            for i, d, m, t in zip(res["ids"][0], distances[0], metas[0], texts[0], strict=False)
        ]

    def vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        """The stored embeddings of ``ids`` (those that exist), for exact similarities."""
        res = self.chunks.get(ids=ids, include=["embeddings"])
        found = res["embeddings"] if res["embeddings"] is not None else []
        return {i: np.asarray(v, dtype=np.float32) for i, v in zip(res["ids"], found, strict=False)}

    def get(self, ids: list[str]) -> dict[str, tuple[dict, str]]:
        res = self.chunks.get(ids=ids, include=["metadatas", "documents"])
        metas, texts = res["metadatas"] or [], res["documents"] or []
        return {i: (dict(m or {}), t) for i, m, t in zip(res["ids"], metas, texts, strict=False)}


def now() -> float:
    return round(time.time(), 3)
