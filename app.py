"""Chat with a folder of documents in the browser: `python app.py [--docs seeds] [--store vectorstore]`.

Serves on http://127.0.0.1:7860 by default, for this machine only; `--host 0.0.0.0` opens it to the
network (then set users: `RAG_APP_USERS="alice:pw,bob:pw2"` or `--users-file`). No public share link
unless `--share`. The same answers are an API endpoint, `/ask` (see the README).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from rag.cli import add_store_flags

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter)
    add_store_flags(p)
    p.add_argument("--llm", choices=["extractive", "local", "openai", "ollama"], help="answer backend")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine)")
    p.add_argument("--port", type=int, default=7860, help="port to listen on (default: 7860)")
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    p.add_argument("--users-file", type=Path, help="file of user:password lines; a login is then required")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from pydantic import ValidationError

    from rag import RAG, RagError
    from rag.cli import overrides
    from rag.errors import one_line

    try:
        rag = RAG(**overrides(args, "docs_dir", "store_dir", "collection", "chroma_host", "chroma_port", "llm"))
        from rag.app import ui

        users = ui.load_users(os.environ.get("RAG_APP_USERS"), args.users_file)
        demo = ui.build(rag)
        ui.warm_up(rag, background=True)
        ui.launch(demo, rag, host=args.host, port=args.port, share=args.share, users=users)
    except (RagError, ValidationError, OSError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
