"""What the app's server refuses before Gradio sees a request: foreign Host names (DNS rebinding),
cross-origin requests that change something, and sign-ins beyond a few failures.

* **DNS rebinding.** A web page at ``http://evil.example:7860`` whose name the attacker then points at
  127.0.0.1 talks to the app on this machine as if it were its own origin: the browser sends
  ``Host: evil.example:7860``. So a request is served only when its Host is an IP address, ``localhost``,
  this machine's own name (when the app listens beyond it), or a name in ``app_allowed_hosts``.
* **Cross-origin writes.** A page elsewhere may still send a form or a POST to 127.0.0.1. A request that
  is not a GET/HEAD/OPTIONS and comes from a browser page of another origin (its ``Origin`` is not the
  Host it was sent to, or ``Sec-Fetch-Site: cross-site``) is refused. Clients that are not browsers
  (gradio_client, curl) send no Origin and are unaffected.
* **Sign-in throttle.** After ``login_max_failures`` failed sign-ins for one user name within
  ``login_window`` seconds, that name is refused until the window has passed, with one line saying how
  long; one client address gets four times as many tries (across names) before the same happens. The
  password check itself stays constant-time (`rag.app.serve.login_check`).

Both are plain ASGI middleware, given to Gradio's FastAPI app by `rag.app.serve.launch`.

Example:
    >>> HostCheck.allowed("evil.example:7860", frozenset())
    False
    >>> HostCheck.allowed("127.0.0.1:7860", frozenset()), HostCheck.allowed("[::1]:7860", frozenset())
    (True, True)
"""

from __future__ import annotations

import ipaddress
import json
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ADDRESS_FACTOR = 4  # one client address may fail this many times the per-user limit, across user names


async def _refuse(send: Send, status: int, detail: str) -> None:
    """A JSON ``{"detail": ...}`` refusal, the shape Gradio's own errors have."""
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _host_name(host: str) -> str:
    """``"[::1]:7860"`` -> ``"::1"``, ``"Example.org:80"`` -> ``"example.org"``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostCheck:
    """ASGI middleware: refuse a Host that is not this app's (DNS rebinding) and cross-origin writes.

    Args:
        app: the ASGI app it guards.
        hosts: names served besides IP addresses and ``localhost`` (``app_allowed_hosts``, and this
            machine's own name when the app listens beyond it).
    """

    def __init__(self, app: ASGIApp, hosts: Iterable[str] = ()):
        self.app = app
        self.hosts = frozenset(_host_name(h) for h in hosts if h.strip())

    @staticmethod
    def allowed(host: str, hosts: frozenset[str]) -> bool:
        name = _host_name(host)
        return _is_ip(name) or name == "localhost" or name in hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = _headers(scope)
        host = headers.get("host")
        if host is not None and not self.allowed(host, self.hosts):
            if scope["type"] == "websocket":
                return await send({"type": "websocket.close", "code": 1008})
            return await _refuse(
                send, 421, f"this app does not answer to the host name {_host_name(host)!r} (RAG_APP_ALLOWED_HOSTS)"
            )
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS and self._cross_origin(headers):
            return await _refuse(send, 403, "requests that change something must come from the app's own page")
        return await self.app(scope, receive, send)

    def _cross_origin(self, headers: dict[str, str]) -> bool:
        if headers.get("sec-fetch-site") == "cross-site":
            return True
        origin = headers.get("origin")
        if origin is None:
            return False  # not sent by a browser page (gradio_client, curl), or a same-origin GET-like form
        parts = urlsplit(origin)
        if not parts.netloc:  # "null": a sandboxed frame, a file:// page
            return True
        return parts.netloc.lower() != headers.get("host", "").lower()


class Throttle:
    """Failed sign-ins per key (a user name, a client address) within a sliding window.

    Example:
        >>> t = Throttle(limit=2, window=60.0)
        >>> t.fail("alice", now=0.0); t.fail("alice", now=1.0)
        >>> t.wait("alice", now=30.0), t.wait("alice", now=61.0)
        (30, 0)
    """

    def __init__(self, limit: int, window: float):
        self.limit, self.window = limit, window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, key: str, now: float | None = None) -> int:
        """Seconds ``key`` must wait before its next try; 0 when it may try now."""
        now = time.monotonic() if now is None else now
        with self._lock:
            failures = self._recent(key, now)
            if len(failures) < self.limit:
                return 0
            return max(1, math.ceil(failures[0] + self.window - now))

    def fail(self, key: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._recent(key, now).append(now)
            if len(self._failures) > 100_000:  # a flood of made-up names must not grow memory without end
                self._failures = {k: v for k, v in self._failures.items() if v and v[-1] > now - self.window}

    def clear(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures


class LoginThrottle:
    """ASGI middleware around Gradio's ``POST /login``: refuse a user name or a client address that failed
    too often recently (HTTP 429 with how long to wait), and count each failure Gradio answers with 400."""

    def __init__(self, app: ASGIApp, limit: int = 5, window: float = 60.0):
        self.app = app
        self.users = Throttle(limit, window)
        self.addresses = Throttle(limit * ADDRESS_FACTOR, window)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].rstrip("/").endswith("/login"):
            return await self.app(scope, receive, send)
        body, more = b"", True
        while more:  # the form is small; read it whole to see the user name
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > 65_536:
                return await _refuse(send, 413, "the sign-in form is too large")
        user = (parse_qs(body.decode("utf-8", "replace")).get("username") or [""])[0].strip()
        address = (scope.get("client") or ("?", 0))[0]
        user_key = f"user:{user}"
        if wait := self.users.wait(user_key):
            return await _refuse(send, 429, f"too many failed sign-ins for {user!r}; try again in {wait} s")
        if wait := self.addresses.wait(address):
            return await _refuse(send, 429, f"too many failed sign-ins from this address; try again in {wait} s")

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                if message["status"] == 400:  # Gradio's "Incorrect credentials."
                    self.users.fail(user_key)
                    self.addresses.fail(address)
                elif message["status"] < 300:
                    self.users.clear(user_key)
            await send(message)

        await self.app(scope, replay, watch)
