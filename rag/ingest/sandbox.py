"""Running a parser on an untrusted file in a worker process with a memory ceiling and a time limit.

A document that defeats the loaders' own bounds (`rag.limits`) must cost at most a failed file, never the
app or the ingest that reads it. So .docx, .pdf and large .html files are parsed in a worker process whose
address space is capped with ``RLIMIT_AS``: past the ceiling its allocations fail (a ``MemoryError``, or
the worker dies), and the caller gets one line saying so. The worker is started once (about a second, on
the first such file) and reused; one that died or ran past the time limit is replaced.

Example:
    >>> run(len, b"abc", rel="a.docx", memory_mb=0, timeout=1)  # memory_mb=0: in-process
    3
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import sys
import threading
import types
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from rag.errors import DocumentError

T = TypeVar("T")
MB = 2**20
STARTUP_SECONDS = 60.0  # a busy 2-core machine starts the worker in about a second

_pools: dict[int, ProcessPoolExecutor] = {}
_lock = threading.Lock()


def run(fn: Callable[..., T], *args: Any, rel: str, memory_mb: int, timeout: float) -> T:
    """``fn(*args)`` in the worker capped at ``memory_mb`` (in-process when 0); ``fn`` must be importable.

    Raises:
        DocumentError: ``"a.docx: needs more than 2048 MB of memory to read; not read"``, or took longer
            than ``timeout`` seconds; or whatever ``fn`` raised.
    """
    if memory_mb <= 0:
        return fn(*args)
    pool = _pool(memory_mb, rel)
    try:
        future = pool.submit(_call, fn, args, memory_mb)
        return future.result(timeout)
    except FutureTimeout:
        _discard(memory_mb, pool, kill=True)
        raise DocumentError(rel, f"took longer than {timeout:g} s to read (RAG_PARSE_TIMEOUT); not read") from None
    except (BrokenProcessPool, MemoryError):
        _discard(memory_mb, pool, kill=True)
        raise DocumentError(
            rel, f"needs more than {memory_mb} MB of memory to read (RAG_PARSE_MEMORY_MB); not read"
        ) from None


def _call(fn: Callable[..., T], args: tuple, memory_mb: int) -> T:
    """``fn(*args)`` in the worker. A library that cannot allocate does not always say so: lxml reports
    "unknown error" when its parser runs out of memory. So a failure after the worker's address space
    came close to its ceiling is reported as what it is, a MemoryError."""
    try:
        return fn(*args)
    except Exception:
        if _peak_bytes() > 0.9 * memory_mb * MB:
            raise MemoryError from None
        raise


def _peak_bytes() -> int:
    """The most address space this process has used (Linux's VmPeak); 0 where unknown."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmPeak:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _ceiling(memory_mb: int) -> None:
    """The worker's initializer: cap its address space."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * MB, memory_mb * MB))


def _pool(memory_mb: int, rel: str) -> ProcessPoolExecutor:
    with _lock:
        if memory_mb not in _pools:
            # spawn, not fork: the app's process has threads (the server's, Chroma's, the model's), and a
            # forked child of a threaded process can deadlock on a lock some thread held at the fork.
            context = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(1, context, initializer=_ceiling, initargs=(memory_mb,))
            try:  # a worker that cannot even start must not read as "this file needs too much memory"
                with _main_left_behind():
                    started = pool.submit(int)  # the worker process is started here, synchronously
                started.result(STARTUP_SECONDS)
            except Exception as exc:  # noqa: BLE001 - BrokenProcessPool, a timeout: the reason is the same
                pool.shutdown(wait=False, cancel_futures=True)
                raise DocumentError(
                    rel,
                    f"the worker process that parses it did not start ({type(exc).__name__}); "
                    "RAG_PARSE_MEMORY_MB=0 parses in-process",
                ) from None
            _pools[memory_mb] = pool
        return _pools[memory_mb]


@contextlib.contextmanager
def _main_left_behind():
    """Start a spawned worker without the caller's main module. A spawned process imports the parent's
    ``__main__`` again, so a user's script that calls ``RAG(...).ingest()`` without an ``if __name__ ==
    "__main__":`` guard would run again inside the worker, and wait there for the store its parent holds
    locked. The worker only runs rag's own parsers, which it imports by name."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def _discard(memory_mb: int, pool: ProcessPoolExecutor, kill: bool) -> None:
    """Forget a broken or stuck pool; its worker is killed, so a stuck parse stops using the CPU."""
    with _lock:
        if _pools.get(memory_mb) is pool:
            del _pools[memory_mb]
    if kill:
        for process in list(getattr(pool, "_processes", {}).values()):  # no public way to stop a running task
            process.kill()
    pool.shutdown(wait=False, cancel_futures=True)


@atexit.register
def _shutdown() -> None:
    with _lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.shutdown(wait=False, cancel_futures=True)
