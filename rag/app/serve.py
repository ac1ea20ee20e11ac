"""Serving the app safely: 127.0.0.1 by default, no share link, an optional login, a queue of answers.

`load_users` reads the logins, `warm_up` loads what the first question would otherwise wait for, and
`launch` serves the page `rag.app.ui.build` made.

Example:
    >>> from rag import RAG
    >>> from rag.app.ui import build
    >>> rag = RAG(docs_dir="seeds")  # doctest: +SKIP
    >>> warm_up(rag, background=True)  # doctest: +SKIP
    >>> launch(build(rag), rag, users=load_users("alice:pw"))  # doctest: +SKIP
"""

from __future__ import annotations

import hmac
import importlib
import logging
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.middleware import Middleware

from rag import lexicon, messages
from rag.app.examples import examples_for
from rag.app.guard import HostCheck, LoginThrottle
from rag.app.render import CSS, HEAD
from rag.config import Settings
from rag.engine import RAG
from rag.errors import RagError
from rag.limits import MB

if TYPE_CHECKING:
    import gradio as gr

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")
CONCURRENCY = 4  # answers computed at once; more wait in the queue (2 CPU cores answer ~4 at a time well)


def load_users(spec: str | None = None, users_file: Path | None = None) -> list[tuple[str, str]]:
    """``"alice:pw,bob:pw2"`` and/or a file of ``user:password`` lines -> [(user, password)].

    Raises:
        RagError: for an entry without ``user:password`` (the message never repeats a password).
    """
    entries: list[tuple[str, str]] = []
    if spec:
        entries += [("RAG_APP_USERS", e) for e in spec.split(",") if e.strip()]
    if users_file:
        try:
            lines = Path(users_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise RagError(f"cannot read the users file {users_file}: {exc.strerror or exc}") from None
        entries += [(str(users_file), line) for line in lines if line.strip() and not line.lstrip().startswith("#")]
    users = []
    for i, (where, entry) in enumerate(entries, 1):
        user, sep, password = entry.strip().partition(":")
        if not sep or not user.strip() or not password:
            raise RagError(f"{where}: entry {i} is not 'user:password'")
        users.append((user.strip(), password))
    return users


def login_check(users: list[tuple[str, str]]) -> Callable[[str, str], bool]:
    """A constant-time check of a username and password against ``users``."""
    table = {u: p.encode() for u, p in users}

    def check(username: str, password: str) -> bool:
        given = (password or "").encode()
        expected = table.get(username)
        if expected is None:
            hmac.compare_digest(given, given)  # same work for an unknown user: no timing hint of who exists
            return False
        return hmac.compare_digest(expected, given)

    return check


def guards(settings: Settings, host: str) -> list[Middleware]:
    """The middleware that refuses foreign Host names, cross-origin writes and repeated failed sign-ins
    (`rag.app.guard`), for an app listening on ``host``."""
    hosts = list(settings.app_allowed_hosts)
    if host not in LOOPBACK:  # listening beyond this machine: its own names are how people reach it
        hosts += [host, socket.gethostname(), socket.getfqdn()]
    return [
        Middleware(HostCheck, hosts=hosts),
        Middleware(LoginThrottle, limit=settings.login_max_failures, window=settings.login_window),
    ]


def warm_up(rag: RAG, background: bool = False) -> threading.Thread | None:
    """Load the embedding model, the keyword index and English word frequencies (and an HTTP model backend's
    client libraries), then find the example questions, before the first person arrives: most of a cold
    start. ``background``: in a daemon thread, returned."""
    if background:
        try:  # open the store here, once: two threads creating Chroma's client at once can break it
            _ = rag.store
        except RagError:
            pass  # the first question will say what is wrong
        thread = threading.Thread(target=warm_up, args=(rag,), daemon=True, name="rag-warm-up")
        thread.start()
        return thread
    try:
        rag.search("warm up", k=1)
        examples_for(rag).get()
        lexicon.zipf("warm")  # English word frequencies (~0.2 s), read when a question names an unknown word
    except Exception:  # noqa: BLE001 - nothing ingested yet is fine; the first question will say so
        log.debug("warm-up skipped", exc_info=True)
    if rag.settings.llm in ("openai", "ollama"):
        try:  # their clients run on llama-index (~3 s to import on 2 cores): loaded now, not on the first question
            importlib.import_module("rag.llamaindex.llms")
        except ImportError:  # the first question will say what is missing
            log.debug("model backend warm-up skipped", exc_info=True)
    return None


def launch(
    demo: gr.Blocks,
    rag: RAG,
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    share: bool = False,
    users: list[tuple[str, str]] | None = None,
    block: bool = True,
    quiet: bool = False,
):
    """Serve ``demo`` on ``host:port``: a queue of `CONCURRENCY` answers at a time, no share link unless
    asked, a login page when ``users`` are given, and no file served from outside Gradio's own cache.
    (Start `warm_up` in the background first, so that the first question does not load the model.)"""
    if host not in LOOPBACK and not users:
        print(
            f"warning: serving on {host} without a login: anyone who reaches port {port} can read, add and delete "
            "documents; set RAG_APP_USERS or --users-file",
            file=sys.stderr,
        )
    s = rag.settings
    _, local_url, share_url = demo.queue(default_concurrency_limit=CONCURRENCY, max_size=256).launch(
        app_kwargs={"middleware": guards(rag.settings, host)},
        server_name=host,
        server_port=port,
        share=share,
        auth=login_check(users) if users else None,
        auth_message="Sign in to chat with the documents." if users else None,
        max_file_size=int(s.max_file_mb * MB),  # the browser says "20.0 Mb" for 20 MB: one unit
        blocked_paths=[str(Path(s.docs_dir).resolve()), str(Path(s.store_dir).resolve())],
        show_error=False,
        ssr_mode=False,
        footer_links=["api"],
        prevent_thread_lock=True,
        quiet=True,
        css=CSS,
        head=HEAD,
        i18n=messages.i18n(),
    )
    if not quiet:
        where = "this machine only" if host in LOOPBACK else f"listening on {host}"
        print(f"rag app: {local_url} ({where}{', login required' if users else ''}); Ctrl+C stops it", flush=True)
        if share_url:
            print(f"public link: {share_url}", flush=True)
    if block:
        demo.block_thread()
    return local_url
