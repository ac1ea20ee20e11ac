"""Ingest a folder of documents into the vector store: `python ingest.py [--docs seeds] [--store vectorstore]`.

Re-run it after adding, changing or deleting documents: only what changed is embedded.
Exit codes: 0 all ingested, 1 some files failed (the rest ingested), 2 usage or fatal error (store untouched).
"""

from __future__ import annotations

import argparse
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from rag.cli import add_store_flags

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter)
    add_store_flags(p)
    p.add_argument("--reset", action="store_true", help="wipe the collection and rebuild it from the folder")
    p.add_argument("--dry-run", action="store_true", help="print what would change, touch nothing")
    p.add_argument("-q", "--quiet", action="store_true", help="only errors and the summary line")
    p.add_argument("-v", "--verbose", action="store_true", help="a line per batch of files written (for logs)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from pydantic import ValidationError

    from rag import RAG, RagError
    from rag.cli import ingest_progress, listing, overrides
    from rag.errors import one_line

    try:
        rag = RAG(**overrides(args, "docs_dir", "store_dir", "collection", "chroma_host", "chroma_port"))
        with ingest_progress(enabled=not args.quiet, verbose=args.verbose) as progress:
            report = rag.ingest(reset=args.reset, dry_run=args.dry_run, progress=progress)
    except (RagError, ValidationError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    if not args.quiet:
        for line in listing("skipped", report.skipped, args.verbose) + listing("no text", report.no_text, args.verbose):
            print(line, file=sys.stderr)
    for path, reason in report.failed:  # every failure, always
        print(f"failed  {path}: {reason}", file=sys.stderr)
    if report.rebuilt:
        print(f"rebuilding: {report.rebuilt}")
    if args.dry_run:
        print(f"dry run: {report.plan_line()} (nothing written)")
    else:
        print(report.summary())
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
