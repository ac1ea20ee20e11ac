"""The ingest: compare the docs folder with the ledger, plan (+ added ~ changed - removed = unchanged),
then apply the plan so that a run killed at any moment is finished by the next one.

The order of writes for one document is what makes it crash-safe:

1. ledger record -> ``pending`` with the new content hash;
2. upsert the new chunks (ids are stable, so re-writing them is harmless);
3. delete the document's chunks of any other hash (the old version, or a half-written older attempt);
4. ledger record -> ``done``.

Killed after 1, 2 or 3, the record is still ``pending`` and the next run redoes 2-4, which converges to
the same chunks. A removal is ``pending`` -> delete chunks -> forget the record. Only one process writes
at a time (a file lock), because Chroma's embedded store is not safe for concurrent writers.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

from rag.config import Settings
from rag.crashpoint import CrashPoint
from rag.errors import DocumentError, NoTextError, RagError, StoreLockedError
from rag.index import layout
from rag.index.embedding import Embedder
from rag.index.store import FileRecord, Store, ingest_lock, now
from rag.ingest import sphinx
from rag.ingest.chunking import Chunk, Chunker
from rag.ingest.loaders import format_of, load, suffix_of
from rag.limits import MB, Limits
from rag.types import IngestReport

log = logging.getLogger(__name__)


class IngestCancelled(RagError):
    """Raised by a progress callback to stop an ingest (the app's Cancel button); see `Ingestor._flush`."""


Progress = Callable[[int, int, str], None]  # (files done, files to do, last file written) -> None
FLUSH_BATCHES = 4  # model batches gathered across files before one write: fewer, bigger writes are faster

# Test hook: tests/test_crash.py kills an ingest at an exact point with RAG_TEST_EXIT_AT_WRITE=N. Right after
# its Nth write to the store (the dirty flag, a ledger record, chunks, a deletion: every call followed by
# `_wrote()` below) the process exits at once, as a SIGKILL leaves it: no finally, no atexit, no flush.
# Unset, as it always is outside those tests, it does nothing.
_CRASH = CrashPoint("RAG_TEST_EXIT_AT_WRITE")


def _wrote() -> None:
    _CRASH.wrote()


@dataclass
class FileEntry:
    rel: str
    path: Path
    digest: str


OUTSIDE = "a link to outside the documents folder; not followed (RAG_FOLLOW_OUTSIDE_LINKS=true allows it)"


def scan(
    docs_dir: Path, max_bytes: int, follow_outside: bool = False
) -> tuple[list[FileEntry], list[tuple[str, str]], list[tuple[str, str]]]:
    """Walk ``docs_dir`` recursively: (documents with their content hash, skipped, failed).

    Symlinks are followed, but a folder already visited is not entered again: a symlink loop is reported
    once as a failure, another name for a folder read elsewhere is skipped with the name it was read under,
    and a link whose target is outside ``docs_dir`` (``notes.txt -> /etc/passwd``) is skipped with `OUTSIDE`
    unless ``follow_outside``: every signed-in user of the app can read what is ingested.
    Hidden files and folders (``.git``, ``.DS_Store``) are passed over silently; inside a Sphinx HTML build,
    what is not a page (its pages' sources, highlighted code, index pages: `rag.ingest.sphinx`) with a reason.
    """
    if not docs_dir.is_dir():
        raise RagError(f"docs folder {docs_dir} does not exist or is not a folder")
    entries, skipped, failed = [], [], []
    walked: list[str] = []  # every file, documents or not (a Sphinx build is known by its searchindex.js)
    seen_dirs: dict[str, str] = {}  # real path -> the name it was read under
    top = os.path.realpath(docs_dir)

    def outside(path: str) -> bool:
        real = os.path.realpath(path)
        return not follow_outside and real != top and not real.startswith(top.rstrip(os.sep) + os.sep)

    for root, dirs, files in os.walk(docs_dir, followlinks=True):
        real = os.path.realpath(root)
        if real in seen_dirs:
            here = os.path.relpath(root, docs_dir)
            parent = os.path.realpath(os.path.dirname(root))
            if parent == real or parent.startswith(real.rstrip(os.sep) + os.sep):  # it links to a folder around it
                failed.append((here, "symlink loop: folder already visited, not entered"))
            else:  # another name for a folder read elsewhere (Debian's "rst -> html/_sources")
                skipped.append((here, f"the same folder as {seen_dirs[real]} (a symlink to it), read there"))
            dirs[:] = []
            continue
        seen_dirs[real] = os.path.relpath(root, docs_dir)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for d in [d for d in dirs if outside(os.path.join(root, d))]:
            dirs.remove(d)
            skipped.append(((Path(root) / d).relative_to(docs_dir).as_posix(), OUTSIDE))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(root) / name
            rel = path.relative_to(docs_dir).as_posix()
            walked.append(rel)
            if format_of(name) is None:
                skipped.append((rel, f"unsupported file type '{suffix_of(name)}'"))
                continue
            if outside(str(path)):
                skipped.append((rel, OUTSIDE))
                continue
            try:
                size = path.stat().st_size
                if size > max_bytes:
                    raise DocumentError(rel, f"too large ({size / MB:.1f} MB > limit {max_bytes / MB:.1f} MB)")
                entries.append(FileEntry(rel, path, _digest(path)))
            except DocumentError as exc:
                failed.append((rel, exc.reason))
            except OSError as exc:
                failed.append((rel, f"cannot read: {exc.strerror or exc}"))
    if extras := sphinx.build_extras(sphinx.roots(docs_dir, walked), [e.rel for e in entries]):
        skipped += [(e.rel, extras[e.rel]) for e in entries if e.rel in extras]
        entries = [e for e in entries if e.rel not in extras]
    return entries, skipped, failed


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()[:32]


class Ingestor:
    """Runs one ingest of ``settings.docs_dir`` into the store. Use through `RAG.ingest`."""

    def __init__(
        self,
        settings: Settings,
        store: Callable[[], Store],
        embedder: Embedder,
        on_change: Callable[[], None],
        after: Callable[[Store], str | None] | None = None,
    ):
        self.settings = settings
        # The store is opened only once the lock is held: two processes creating a new embedded Chroma
        # store at once race in its schema setup ("table collections already exists").
        self._open_store = store
        self.embedder = embedder
        self.on_change = on_change  # called after the store changed (rebuilds the keyword index)
        self.after = after  # derived data to bring in line after every run, under the lock (cross-lingual)
        self.chunker = Chunker(self._count_tokens, settings.chunk_size, settings.chunk_overlap)

    def _count_tokens(self, texts: list[str]) -> list[int]:
        return self.embedder.token_counts(texts)

    def lock(self) -> FileLock:
        """The single-writer lock of this store (a file in store_dir, also for a server's store)."""
        return ingest_lock(self.settings)

    def run(self, *, reset: bool = False, dry_run: bool = False, progress: Progress | None = None) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport(dry_run=dry_run)
        s = self.settings
        entries, report.skipped, report.failed = scan(s.docs_dir, int(s.max_file_mb * MB), s.follow_outside_links)
        lock = self.lock()
        try:
            lock.acquire()
        except Timeout:
            raise StoreLockedError(
                f"another ingest is writing to this store (lock {lock.lock_file}); "
                f"waited {self.settings.lock_timeout:.0f}s — try again when it has finished"
            ) from None
        try:
            self.store = self._open_store()
            self._run(entries, report, reset, dry_run, progress)
            if self.after is not None and not dry_run:
                report.derived = self.after(self.store)
        finally:
            lock.release()
        report.seconds = time.perf_counter() - started
        return report

    def _run(self, entries, report: IngestReport, reset: bool, dry_run: bool, progress: Progress | None) -> None:
        store, fingerprint = self.store, self.settings.fingerprint()
        store.open()
        stored = store.stored_fingerprint()
        self._reuse: dict[str, np.ndarray] = {}  # what was embedded before, by `layout.embedded_key`
        if reset:
            report.rebuilt = "--reset asked for a rebuild"
        elif stored is not None and stored != fingerprint:
            report.rebuilt = (
                "the embedding model or chunking settings changed, so every document is chunked and re-embedded "
                "(a chunk embedded before by the same model keeps its vector)"
            )
            self._reuse = store.embedded()  # read before the collection goes
        ledger = {} if report.rebuilt else store.ledger()
        todo = []
        for e in entries:
            rec = ledger.get(e.rel)
            if rec is None:
                report.added.append(e.rel)
            elif rec.state != "done" or rec.file_hash != e.digest:
                report.updated.append(e.rel)
            else:
                report.unchanged.append(e.rel)
                continue
            todo.append(e)
        on_disk = {e.rel for e in entries} | {rel for rel, _ in report.failed}
        report.removed = sorted(set(ledger) - on_disk)
        if not entries and ledger and not report.failed and not reset:
            raise RagError(
                f"docs folder {self.settings.docs_dir} has no documents; refusing to remove all "
                f"{len(ledger)} stored documents (use --reset to empty the store on purpose)"
            )
        if dry_run:
            report.chunks = store.count()
            return
        if report.rebuilt:
            store.drop(keep_xl=not reset)  # its vectors record what they embedded: the next sync sorts them out
        store.prepare(fingerprint)
        store.upgrade_layout()  # a store from before the llama-index layout: metadata only, once
        if not (todo or report.removed or store.is_dirty() or any(r.state != "done" for r in ledger.values())):
            # Every file done and the store clean: the ledger's counts are the store's. Counting Chroma's
            # collection instead is its first read in a fresh process, ~0.5 s of CPU on 14,000 chunks.
            report.chunks = sum(r.chunks for r in ledger.values())
            return
        store.begin_write()
        _wrote()
        for rel in report.removed:
            store.mark([FileRecord(rel, ledger[rel].file_hash, 0, "pending", now())])
            _wrote()
            store.delete_source(rel)
            _wrote()
            store.forget([rel])
            _wrote()
        self._previous = ledger
        try:
            report.embedded = self._write(todo, report, progress)
        except IngestCancelled:  # what was written stays; the batch being embedded was rolled back
            store.end_write()
            self.on_change()
            raise
        store.end_write()
        _wrote()
        report.chunks = store.count()
        self.on_change()

    def _write(self, todo: list[FileEntry], report: IngestReport, progress: Progress | None) -> int:
        """Load, chunk, embed and store ``todo``, a few model batches of chunks at a time."""
        flush_at = FLUSH_BATCHES * self.settings.embed_batch_size
        embedded, batch = 0, []
        for i, entry in enumerate(todo):
            try:
                doc = load(entry.path, entry.rel, int(self.settings.max_file_mb * MB), Limits.of(self.settings))
                chunks = self.chunker.split(doc, entry.rel)
                if doc.ocr_pages or doc.empty_pages:
                    report.ocr[entry.rel] = (doc.ocr_pages, doc.empty_pages)
            except NoTextError as exc:  # read, and nothing to say: stored with no chunks, not read again
                report.no_text.append((entry.rel, exc.reason))
                chunks = []
            except DocumentError as exc:
                report.failed.append((entry.rel, exc.reason))
                for bucket in (report.added, report.updated):
                    if entry.rel in bucket:
                        bucket.remove(entry.rel)
                continue
            batch.append((entry, chunks))
            if sum(len(c) for _, c in batch) >= flush_at or i == len(todo) - 1:

                def tick(done: int, total: int, rel: str = entry.rel, i: int = i) -> None:
                    if progress:
                        progress(i, len(todo), f"{rel} ({done:,} of {total:,} chunks embedded)")

                embedded += self._flush(batch, report, tick)
                batch = []
                if progress:
                    progress(i + 1, len(todo), entry.rel)
        if batch:
            embedded += self._flush(batch, report)
        return embedded

    def _flush(
        self,
        batch: list[tuple[FileEntry, list[Chunk]]],
        report: IngestReport,
        tick: Callable[[int, int], None] | None = None,
    ) -> int:
        """Write ``batch``: ledger ``pending``, embed (a big file in slices, ``tick`` after each but the
        last: where progress is shown and a cancel lands), upsert, drop old versions, ledger ``done``. Returns
        how many chunks were embedded: a chunk whose text the same model embedded before (the file's previous
        version, or the store before a rebuild) takes that vector instead.

        A cancel (`IngestCancelled` from ``tick``) comes before anything of the batch is upserted, so the
        ledger is put back as it was: an added document is absent again, a changed one keeps its old version.
        """
        store = self.store
        stamp = now()
        store.mark([FileRecord(e.rel, e.digest, len(c), "pending", stamp) for e, c in batch])
        _wrote()
        chunks = [(e, c) for e, cs in batch for c in cs]
        reused = 0
        if chunks:
            # The vectors of the versions these files replace can serve again where a chunk is unchanged.
            self._reuse.update(store.embedded([e.rel for e, _ in batch if e.rel in self._previous]))
            texts, step = [c.embedding_text() for _, c in chunks], FLUSH_BATCHES * self.settings.embed_batch_size
            keys = [layout.embedded_key(self.embedder.model_name, t) for t in texts]
            reused = sum(k in self._reuse for k in keys)
            first: dict[str, int] = {}  # each text not embedded before, once (a chunk repeated in the batch)
            for i, k in enumerate(keys):
                if k not in self._reuse:
                    first.setdefault(k, i)
            todo = list(first.values())
            parts = []
            try:
                for start in range(0, len(todo), step):
                    parts.append(self.embedder.embed([texts[i] for i in todo[start : start + step]]))
                    if tick and start + step < len(todo):
                        tick(start + step, len(todo))
            except IngestCancelled:
                previous = [self._previous.get(e.rel) for e, _ in batch]
                store.mark([r for r in previous if r is not None and r.state == "done"])
                store.forget(
                    [e.rel for (e, _), r in zip(batch, previous, strict=True) if r is None or r.state != "done"]
                )
                raise
            fresh = dict(zip((keys[i] for i in todo), np.concatenate(parts) if parts else [], strict=True))
            vectors = np.stack([fresh[k] if k in fresh else self._reuse[k] for k in keys])
            store.upsert(
                [c.id for _, c in chunks],
                vectors,
                [c.text for _, c in chunks],
                [
                    {
                        "source": e.rel,
                        "file_hash": e.digest,
                        "chunk_index": c.index,
                        "start": c.start,
                        "end": c.end,
                        "page": c.page,
                        "title": c.title,
                        "section": c.section,
                        layout.EMBEDDED: key,
                    }
                    for (e, c), key in zip(chunks, keys, strict=True)
                ],
            )
            _wrote()
        for e, _ in batch:
            store.delete_source(e.rel, keep_hash=e.digest)
            _wrote()
        store.mark([FileRecord(e.rel, e.digest, len(c), "done", stamp) for e, c in batch])
        _wrote()
        report.reused += reused
        return len(chunks) - reused
