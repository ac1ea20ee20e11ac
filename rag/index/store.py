"""Chroma, embedded (files in ``store_dir``) or a server (``chroma_host``): the chunks and the ledger.

Two collections per store:

* ``<collection>``: one record per chunk (embedding, text, and metadata: source, file_hash, page, section,
  start, end, chunk_index), in the layout llama-index's ``ChromaVectorStore`` reads (`rag.index.layout`: the node as
  JSON in ``_node_content``, ``ref_doc_id`` = source), so ``VectorStoreIndex.from_vector_store`` over it
  returns nodes with text, source, page, section and offsets. A store written before that layout is brought
  to it by the next ingest, metadata only (`Store.upgrade_layout`): nothing is re-embedded.
* ``<collection>-files``: the ledger, one record per document: its content hash, its chunk count, when it
  was ingested, and ``state`` = ``pending`` while its chunks are being written or removed, ``done`` after.

A third, ``<collection>-xl``, is optional: the same chunk ids embedded by the multilingual model, for
questions in another language than the documents (see ``rag.index.crosslingual``); derived data, filled after
each ingest.

The ledger lives beside the chunks, so it is equally right in embedded and server mode, and a run killed
at any moment leaves at worst ``pending`` records that the next run finishes (see ``ingest.py``).

A document is either fully listed and searchable or absent: chunks of a ``pending`` document are never
returned by `Store.query`, `Store.get` or `Store.all_chunks` (the keyword index is built from the latter),
and the first `Store.open` of a process rolls back the pending documents a killed run left, unless an
ingest holding the store's lock is finishing them right now (`Store.recover`).

A Chroma server that stops answering (hung, stopped with SIGSTOP, a dead network) fails each request after
``store_timeout`` seconds with a `StoreError` saying the store is unreachable, instead of holding the
question that waits on it forever.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from filelock import FileLock, Timeout

from rag.config import Settings
from rag.errors import StoreError
from rag.index import layout
from rag.index.embedding import offline_environment

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

_PAGE = 2000  # records per get() page; Chroma caps one request at a few thousand
# The most chunks whose vectors a rebuild holds in memory to reuse (~460 MB of 384-d vectors); beyond it,
# a rebuild embeds everything again.
REUSE_MAX_CHUNKS = 300_000

# Embedded Chroma keeps each collection's vector index in memory, once per process and store path: what
# another process writes (`python ingest.py` while the app serves) reaches this one's metadata at once but
# not its vector index, whose queries then miss the new chunks and fail on deleted ones ("Error finding id",
# chroma-core/chroma#3792). So a process remembers the state (`Store.state`) its client reflects, and a store
# that finds the state moved on without this process's doing opens a fresh client (`Store.open`).
_seen: dict[str, str] = {}  # store path -> the state this process's Chroma client of it reflects
_seen_lock = threading.RLock()  # a state check never sees this process's own change half made
F = TypeVar("F", bound=Callable[..., Any])


def _chroma_settings():
    """rag's settings for a Chroma client, embedded or of a server: no telemetry, no reset."""
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


def _network_error(exc: BaseException) -> bool:
    """True for a failure to reach a Chroma server (timeout, refused or dropped connection)."""
    import httpx

    return isinstance(exc, httpx.TransportError)


def _reachable(method: F) -> F:
    """Turn a Chroma server that does not answer into one `StoreError` line, whatever call met it."""

    @functools.wraps(method)
    def guarded(self: Store, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            if _network_error(exc):
                raise self.unreachable(exc) from None
            raise

    return guarded  # type: ignore[return-value]


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

        self.settings = settings
        try:
            if settings.server_mode:
                self.client = _bounded(
                    lambda: chromadb.HttpClient(
                        host=settings.chroma_host or "127.0.0.1", port=settings.chroma_port, settings=_chroma_settings()
                    ),
                    settings.store_timeout,
                )
                # Chroma's HTTP client waits forever by default: a hung server would hold every question.
                self.client._server._session.timeout = settings.store_timeout
                self.client.heartbeat()
            else:
                settings.store_dir.mkdir(parents=True, exist_ok=True)
                self.client = self._embedded()
        except Exception as exc:  # chromadb raises many types here; the person needs one line
            if isinstance(exc, FutureTimeout) or _network_error(exc):
                raise self.unreachable(exc) from None
            raise StoreError(f"cannot open the Chroma store at {self.location}: {exc}") from exc
        self._chunks: Collection | None = None
        self._files: Collection | None = None
        self._xl: Collection | None = None
        self._pending: set[str] = set()  # documents whose chunks are being written or removed: never returned
        self._recovered = False

    def _embedded(self, fresh: bool = False):
        """The embedded client of ``store_dir``. Chroma shares one cached "system" (its in-memory indexes)
        between the clients of a path in a process; ``fresh`` takes it out of that cache first, so this client
        reads the store as it is on disk now. The old system is not stopped: a thread may still be reading
        through it, and it goes when nothing holds it."""
        import chromadb
        from chromadb.api.shared_system_client import SharedSystemClient

        path = str(self.settings.store_dir)
        if fresh:  # Chroma's private cache, the only way to a fresh system (chroma-core/chroma#3792)
            getattr(SharedSystemClient, "_identifier_to_system", {}).pop(path, None)
        return chromadb.PersistentClient(path=path, settings=_chroma_settings())

    def state(self) -> str:
        """What any process's write changes: the chunks' collection and version (`version`) and the
        cross-lingual index's collection and last sync."""
        xl = f"{self._xl.id}:{(self._xl.metadata or {}).get('synced', '')}" if self._xl is not None else "none"
        return f"{self.version()}|{xl}"

    def _state_lock(self) -> contextlib.AbstractContextManager:
        """The process's lock over its embedded stores' states; none for a server, which has one state for all
        its clients (and a hung one must not hold a lock)."""
        return contextlib.nullcontext() if self.settings.server_mode else _seen_lock

    @contextlib.contextmanager
    def _own_change(self) -> Iterator[None]:
        """A change of the store's state by this process: no other thread's check sees it half made, and
        afterwards this process's client is known to reflect it."""
        with self._state_lock():
            yield
            if not self.settings.server_mode:
                _seen[str(self.settings.store_dir)] = self.state()

    def _moved_on(self) -> bool:
        """True when another process changed the store since this process's client last reflected it."""
        if self.settings.server_mode:
            return False
        with self._state_lock():
            state = self.state()
            return _seen.setdefault(str(self.settings.store_dir), state) != state

    @property
    def location(self) -> str:
        s = self.settings
        return f"http://{s.chroma_host}:{s.chroma_port}" if s.server_mode else str(s.store_dir)

    def unreachable(self, exc: BaseException) -> StoreError:
        """The one line for a Chroma server that did not answer."""
        if isinstance(exc, FutureTimeout) or "timed out" in str(exc).lower() or "timeout" in type(exc).__name__.lower():
            why = f"no answer within {self.settings.store_timeout:g} s (RAG_STORE_TIMEOUT)"
        else:
            why = str(exc).strip().split("\n")[0] or type(exc).__name__
        return StoreError(f"the document store is unreachable: the Chroma server at {self.location} failed ({why})")

    def lock(self, timeout: float | None = None) -> FileLock:
        return ingest_lock(self.settings, timeout)

    # --- collections -----------------------------------------------------------------------
    def _get(self, name: str):
        try:
            return self.client.get_collection(name, embedding_function=None)
        except Exception as exc:  # NotFoundError in 1.x, ValueError in older clients
            if _network_error(exc):
                raise
            return None

    def _attach(self) -> None:
        """The store's collections as the client sees them now (None for those that do not exist)."""
        self._chunks = self._get(self.settings.collection)
        self._files = self._get(f"{self.settings.collection}-files")
        self._xl = self._get(self.xl_name)

    @_reachable
    def open(self) -> bool:
        """Attach to existing collections; False when nothing has been ingested into this store yet.

        The first open in a process also rolls back what a killed ingest left half-written (`recover`)."""
        with self._state_lock():
            self._attach()
            if self._moved_on():
                with self._own_change():
                    self.client = self._embedded(fresh=True)
                    self._attach()
        if self._files is not None:
            self._pending = {meta["source"] for _, meta, _ in self._iter(self._files, ["metadatas"], state="pending")}
        if not self._recovered:
            self._recovered = True
            self.recover()
        return self._chunks is not None and self._files is not None

    def recover(self) -> list[str]:
        """Roll back the documents a killed ingest left ``pending``: delete their chunks and forget them, so
        the next ingest adds them again whole. Skipped (returns []) while an ingest holds the store's lock:
        that ingest finishes them itself. Returns the documents rolled back.

        Example: killed after writing half of canary.txt's chunks, the ledger says ``pending``; after this,
        canary.txt is neither listed nor retrieved until an ingest (or the app's Re-scan) adds it again.
        """
        if not self._pending or self._chunks is None:
            return []
        lock = self.lock(timeout=0)
        try:
            lock.acquire()
        except Timeout:
            return []  # an ingest is writing: its pending documents are its own work in progress
        try:
            self._pending = {meta["source"] for _, meta, _ in self._iter(self.files, ["metadatas"], state="pending")}
            rolled_back = sorted(self._pending)
            if rolled_back:
                self.begin_write()
                for source in rolled_back:
                    self.delete_source(source)
                self.forget(rolled_back)
                self.end_write()
            return rolled_back
        finally:
            lock.release()

    @property
    def xl_name(self) -> str:
        return f"{self.settings.collection}-xl"

    def stored_fingerprint(self) -> str | None:
        if self._chunks is None:
            return None
        return (self._chunks.metadata or {}).get("fingerprint")

    @_reachable
    def prepare(self, fingerprint: str) -> None:
        """Create the collections if missing, stamped with the configuration fingerprint."""
        meta = {"fingerprint": fingerprint, "version": 0, "layout": layout.LAYOUT_VERSION, "hnsw:space": "cosine"}
        with self._own_change():
            self._chunks = self._chunks or self.client.get_or_create_collection(
                self.settings.collection, metadata=meta, embedding_function=None
            )
            self._files = self._files or self.client.get_or_create_collection(
                f"{self.settings.collection}-files", embedding_function=None
            )

    @_reachable
    def drop(self, keep_xl: bool = False) -> None:
        """Delete the collections (a --reset, or a configuration change). With ``keep_xl`` the cross-lingual
        index stays: each of its vectors records what it embedded (`layout.EMBEDDED`), so its next sync keeps the
        vectors of chunks whose text did not change and replaces the others."""
        names = [self.settings.collection, f"{self.settings.collection}-files"] + ([] if keep_xl else [self.xl_name])
        with self._own_change():
            for name in names:
                if self._get(name) is not None:
                    self.client.delete_collection(name)
            self._chunks = self._files = None
            if not keep_xl:
                self._xl = None

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
    @_reachable
    def ledger(self) -> dict[str, FileRecord]:
        if self._files is None:
            return {}
        out = {}
        for _, meta, _ in self._iter(self._files, include=["metadatas"]):
            out[meta["source"]] = FileRecord(
                meta["source"], meta["file_hash"], meta["chunks"], meta["state"], meta["ingested_at"]
            )
        return out

    @_reachable
    def mark(self, records: list[FileRecord]) -> None:
        for r in records:  # hidden from questions before its chunks change, shown again once they are whole
            (self._pending.add if r.state == "pending" else self._pending.discard)(r.source)
        if records:
            self.files.upsert(
                ids=[r.source for r in records],
                embeddings=np.zeros((len(records), 1), dtype=np.float32),  # the ledger is looked up, not searched
                metadatas=[r.__dict__ for r in records],
            )

    @_reachable
    def forget(self, sources: list[str]) -> None:
        if sources:
            self.files.delete(ids=sources)
        self._pending.difference_update(sources)

    # --- chunks -------------------------------------------------------------------------------
    @_reachable
    def upsert(self, ids: list[str], vectors: np.ndarray, texts: list[str], metas: list[dict]) -> None:
        step = self.client.get_max_batch_size()
        for i in range(0, len(ids), step):
            self.chunks.upsert(
                ids=ids[i : i + step],
                embeddings=vectors[i : i + step],
                documents=texts[i : i + step],
                metadatas=[
                    layout.chroma_metadata(c, t, m)
                    for c, t, m in zip(ids[i : i + step], texts[i : i + step], metas[i : i + step], strict=True)
                ],
            )

    @_reachable
    def embedded(self, sources: Iterable[str] | None = None, limit: int = REUSE_MAX_CHUNKS) -> dict[str, np.ndarray]:
        """{key of what was embedded: its vector} for the stored chunks (of ``sources`` only, when given) that
        record the key, for an ingest to reuse instead of embedding the same text again; {} when the store
        holds more than ``limit`` chunks (their vectors would not fit in memory comfortably)."""
        if self._chunks is None or (sources is None and self.count() > limit):
            return {}
        where: Any = {"source": {"$in": sorted(sources)}} if sources is not None else None
        if sources is not None and not where["source"]["$in"]:
            return {}
        found: dict[str, np.ndarray] = {}
        for page in self._pages(self._chunks, ["metadatas", "embeddings"], where):
            vectors = page["embeddings"] if page["embeddings"] is not None else []
            for meta, vector in zip(page["metadatas"] or [], vectors, strict=True):
                if isinstance(key := (meta or {}).get(layout.EMBEDDED), str):
                    found[key] = np.asarray(vector, dtype=np.float32)
        return found

    def has_layout(self) -> bool:
        """True when every chunk record carries the llama-index layout (see the module docstring)."""
        meta = (self._chunks.metadata or {}) if self._chunks is not None else {}
        return int(meta.get("layout", 0)) >= layout.LAYOUT_VERSION

    @_reachable
    def upgrade_layout(self) -> int:
        """Add the llama-index layout to the records of a store written before it: a metadata-only update
        (Chroma merges the new keys into each record; ids, texts and vectors are untouched), then mark the
        collection. Idempotent, and safe to kill: a rerun finishes what is left. Call with the store's lock
        held (the ingest does). Returns the records updated.

        Example: a 14,000-chunk evaluation store from before the layout gains ``_node_content`` & co. on its
        next (otherwise no-op) ingest, and is marked ``layout: 1``; later runs skip this at once.
        """
        if self._chunks is None or self.has_layout():
            return 0
        updated, ids, metas = 0, list[str](), list[Any]()
        step = self.client.get_max_batch_size()
        for cid, meta, text in self._iter(self._chunks, ["metadatas", "documents"]):
            if not layout.has_layout(meta):
                ids.append(cid)
                metas.append(layout.chroma_metadata(cid, text or "", meta))
        for i in range(0, len(ids), step):  # after the paging: updating while paging would shift the pages
            self._chunks.update(ids=ids[i : i + step], metadatas=metas[i : i + step])
            updated += len(ids[i : i + step])
        meta = dict(self._chunks.metadata or {})
        meta["layout"] = layout.LAYOUT_VERSION
        meta.pop("hnsw:space", None)  # fixed at creation; Chroma refuses to "change" it
        self._chunks.modify(metadata=meta)
        self._chunks = self._get(self.settings.collection)
        return updated

    @_reachable
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
        with self._own_change():
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
        with self._own_change():
            self._xl.modify(metadata=merged)
            self._xl = self._get(self.xl_name)

    def xl_ids(self) -> set[str]:
        return set(self.xl_keys())

    def xl_keys(self) -> dict[str, str | None]:
        """{chunk id: the key of what its cross-lingual vector embedded (`layout.embedded_key`), None if unknown}."""
        if self._xl is None:
            return {}
        return {cid: meta.get(layout.EMBEDDED) for cid, meta, _ in self._iter(self._xl, include=["metadatas"])}

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

    def query_xl(self, vector: np.ndarray, n: int, sources: Iterable[str] | None = None) -> list[tuple[str, float]]:
        """Nearest chunks in the cross-lingual index: (id, cosine similarity), best first; only chunks of
        ``sources`` when given."""
        if self._xl is None or self._xl.count() == 0:
            return []
        where: Any = {"source": {"$in": sorted(sources)}} if sources is not None else None

        def search() -> Any:
            xl = self._xl
            return xl.query(query_embeddings=[vector], n_results=n, where=where, include=["distances"]) if xl else None

        res = self._current(search)
        if res is None:
            return []
        distances = res["distances"] or [[]]
        return [(i, 1.0 - d) for i, d in zip(res["ids"][0], distances[0], strict=False)]

    @_reachable
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

    @_reachable
    def _set_meta(self, dirty: bool) -> None:
        meta = dict(self.chunks.metadata or {})
        meta["version"] = int(meta.get("version", 0)) + 1
        meta["dirty"] = dirty
        meta.pop("hnsw:space", None)  # fixed at creation; Chroma refuses to "change" it
        with self._own_change():
            self.chunks.modify(metadata=meta)
            self._chunks = self._get(self.settings.collection)

    def refresh(self) -> None:
        """Re-read collection metadata (another process may have ingested)."""
        self.open()

    def all_chunks(self) -> Iterator[tuple[str, dict, str]]:
        """(id, metadata, text) of every chunk of a document that is not pending, paged."""
        for cid, meta, text in self._iter(self.chunks, include=["metadatas", "documents"]):
            if meta.get("source") not in self._pending:
                yield cid, meta, text or ""

    def _iter(self, collection, include: list[str], state: str | None = None) -> Iterator[tuple[str, dict, str | None]]:
        for page in self._pages(collection, include, {"state": state} if state else None):
            docs = page.get("documents") or [None] * len(page["ids"])
            yield from zip(page["ids"], page["metadatas"], docs, strict=True)

    def _pages(self, collection, include: list[str], where: Any = None) -> Iterator[Any]:
        """``collection.get`` a page of `_PAGE` records at a time."""
        offset = 0
        while True:
            try:
                page = collection.get(include=include, limit=_PAGE, offset=offset, where=where)
            except Exception as exc:
                if _network_error(exc):
                    raise self.unreachable(exc) from None
                raise
            yield page
            if len(page["ids"]) < _PAGE:
                return
            offset += _PAGE

    @_reachable
    def query(
        self, vector: np.ndarray, n: int, sources: Iterable[str] | None = None
    ) -> list[tuple[str, float, dict, str]]:
        """Nearest chunks of documents that are not pending: (id, cosine similarity, metadata, text), best first;
        only chunks of ``sources`` when given."""
        filters: list[dict] = []
        if self._pending:
            filters.append({"source": {"$nin": sorted(self._pending)}})
        if sources is not None:
            filters.append({"source": {"$in": sorted(sources)}})
        where: Any = {"$and": filters} if len(filters) > 1 else (filters[0] if filters else None)
        res = self._current(
            lambda: self.chunks.query(
                query_embeddings=[vector], n_results=n, where=where, include=["metadatas", "documents", "distances"]
            )
        )
        distances, metas, texts = res["distances"] or [[]], res["metadatas"] or [[]], res["documents"] or [[]]
        return [  # a chunk another process deleted a moment ago may still be in this client's index: no metadata
            (i, 1.0 - d, dict(m), t)
            for i, d, m, t in zip(res["ids"][0], distances[0], metas[0], texts[0], strict=False)
            if m
        ]

    def _current(self, search: Callable[[], Any]) -> Any:
        """``search()``; when it fails because another process changed the store under this process's client
        (Chroma: "Error finding id"), once more on a fresh client."""
        try:
            return search()
        except Exception:
            client = self.client
            self.open()  # reads the state again: a fresh client if another process changed the store
            if self.client is client:
                raise
        return search()

    @_reachable
    def ids_of(self, sources: Iterable[str]) -> set[str]:
        """The ids of every chunk of ``sources``."""
        where: Any = {"source": {"$in": sorted(sources)}}
        return set(self.chunks.get(where=where, include=[])["ids"])

    @_reachable
    def vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        """The stored embeddings of ``ids`` (those that exist), for exact similarities."""
        res = self.chunks.get(ids=ids, include=["embeddings"])
        found = res["embeddings"] if res["embeddings"] is not None else []
        return {i: np.asarray(v, dtype=np.float32) for i, v in zip(res["ids"], found, strict=False)}

    @_reachable
    def get(self, ids: list[str]) -> dict[str, tuple[dict, str]]:
        """Chunks by id, those of documents that are not pending: {id: (metadata, text)}."""
        if not ids:
            return {}  # Chroma refuses an empty list of ids
        res = self.chunks.get(ids=ids, include=["metadatas", "documents"])
        metas, texts = res["metadatas"] or [], res["documents"] or []
        found = {i: (dict(m or {}), t) for i, m, t in zip(res["ids"], metas, texts, strict=False)}
        return {i: v for i, v in found.items() if v[0].get("source") not in self._pending}


def ingest_lock(settings: Settings, timeout: float | None = None) -> FileLock:
    """The single-writer lock of a store (a file in store_dir, also for a server's store)."""
    s = settings
    s.store_dir.mkdir(parents=True, exist_ok=True)
    name = f".ingest-{s.chroma_host}-{s.chroma_port}.lock" if s.server_mode else ".ingest.lock"
    return FileLock(s.store_dir / name, timeout=s.lock_timeout if timeout is None else timeout)


def now() -> float:
    return round(time.time(), 3)


def _bounded(make: Callable[[], Any], timeout: float) -> Any:
    """``make()`` in a helper thread, waited for at most ``timeout`` seconds (FutureTimeout past it): for
    the one Chroma call that cannot be given a timeout, creating the HTTP client, which talks to the server."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="rag-store-connect")
    try:
        return pool.submit(make).result(timeout)
    finally:
        pool.shutdown(wait=False)
