"""Helpers shared by the thin entry points (`ingest.py`, `app.py`): the store flags, flags -> settings,
a progress bar, long listings cut short, and errors as one line for a person."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator

from rag.ingest.pipeline import Progress


def add_store_flags(p: argparse.ArgumentParser) -> None:
    """The flags that say where the documents and the vector store are (``--docs``, ``--store``,
    ``--collection``, ``--chroma-host``, ``--chroma-port``); `overrides` turns them into settings."""
    p.add_argument("--docs", dest="docs_dir", help="documents folder (default: seeds, or RAG_DOCS_DIR)")
    p.add_argument("--store", dest="store_dir", help="vector store folder (default: vectorstore, or RAG_STORE_DIR)")
    p.add_argument("--collection", help="Chroma collection name (default: rag)")
    p.add_argument("--chroma-host", help="use a Chroma server at this host instead of --store")
    p.add_argument("--chroma-port", type=int, help="Chroma server port (default: 8000)")


def overrides(args: argparse.Namespace, *names: str) -> dict:
    """The flags a person actually gave, as `Settings` keyword arguments (the rest come from env/defaults)."""
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


LISTED = 10  # lines of one kind (skipped, without text) listed before the rest are counted


def listing(kind: str, items: list[tuple[str, str]], everything: bool = False) -> list[str]:
    """``"<kind> <path>: <reason>"`` for each item; past `LISTED`, the first few and how many more, unless
    ``everything`` (a Texinfo manual's 144 pages that only redirect are not 144 lines a person reads).

    Example:
        >>> listing("no text", [(f"p{i}.html", "only redirects") for i in range(12)])[-1]
        'no text … and 7 more (-v lists every one)'
    """
    lines = [f"{kind} {path}: {reason}" for path, reason in items]
    if everything or len(lines) <= LISTED:
        return lines
    return lines[: LISTED // 2] + [f"{kind} … and {len(lines) - LISTED // 2} more (-v lists every one)"]


@contextlib.contextmanager
def ingest_progress(enabled: bool = True, verbose: bool = False) -> Iterator[Progress | None]:
    """A tqdm bar over files when stderr is a terminal; nothing when it is a pipe or a log, unless
    ``verbose``, which prints a line per batch written: ``written 12/40 files (last: guide/intro.md)``."""
    if verbose:
        yield lambda done, total, what: print(f"written {done}/{total} files (last: {what})", flush=True)
        return
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    bar = tqdm(total=0, unit="file", desc="ingest", leave=False, file=sys.stderr)

    def update(done: int, total: int, what: str) -> None:
        bar.total = total
        bar.n = done
        bar.set_postfix_str(what[-40:], refresh=True)

    try:
        yield update
    finally:
        bar.close()
