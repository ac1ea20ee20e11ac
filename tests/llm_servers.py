"""Small real HTTP servers speaking the OpenAI and Ollama chat protocols, for testing rag.llms.base's clients.

They answer deterministically, so tests can check the exact text a client reassembles: the reply to a
user message is ``"echo: " + message``, streamed one word per chunk. A message starting with ``!`` asks
for a misbehaviour instead:

- ``!sleep 2``: wait 2 s before answering (a server slower than the client's timeout);
- ``!stall 2``: stream one chunk, then go silent for 2 s;
  (both wait less if the server is closed first: a test need not wait for a client that gave up)
- ``!garbage``: answer 200 with a body that is not the protocol;
- ``!fail``: answer HTTP 500 with the protocol's error body;
- ``!error-midstream``: stream one chunk, then the protocol's in-stream error;
- ``!truncate``: stream everything but the closing event.

Example:
    with ChatServer("openai", api_key="k") as server:
        OpenAICompatibleLLM("m", base_url=server.url, api_key="k").complete(msgs)
        server.requests[-1]["headers"]["authorization"]  # 'Bearer k'

Each request is recorded as it arrives, and records its reply as it goes: ``"frames"``, how many parts of
the reply were written, and ``"replied"``, True once the whole reply was sent. A client that gave up on
its own timeout did so while ``"replied"`` was still False.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ChatServer:
    """A threaded HTTP server on 127.0.0.1 at a free port; use as a context manager.

    Args:
        protocol: ``"openai"`` (POST /v1/chat/completions, SSE) or ``"ollama"`` (POST /api/chat, NDJSON).
        api_key: when set, requests without ``Authorization: Bearer <api_key>`` get HTTP 401.
        models: for ollama, the models it "has"; others get Ollama's 404 "model not found".
    """

    def __init__(
        self,
        protocol: str,
        *,
        api_key: str | None = None,
        models: tuple[str, ...] = ("tiny",),
        reply: Callable[[list[dict]], str] | None = None,
    ):
        self.protocol = protocol
        self.reply = reply  # when set, the answer is reply(messages) instead of the echo
        self.api_key = api_key
        self.models = models
        self.requests: list[dict[str, Any]] = []  # {"path", "headers" (lower-case), "body", "frames", "replied"}
        self.closing = threading.Event()  # set on exit: a sleeping or stalled reply goes on at once
        handler = type("Handler", (_Handler,), {"chat": self})
        self._httpd = _QuietServer(("127.0.0.1", 0), handler)
        host, port = self._httpd.server_address[:2]
        root = f"http://{host}:{port}"
        self.url = root + "/v1" if protocol == "openai" else root

    def __enter__(self) -> ChatServer:
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True  # a handler still sleeping for a timeout test must not block exit

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout tests) or closed its keep-alive connection is expected here.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    chat: ChatServer
    record: dict[str, Any]  # this request's entry in chat.requests
    protocol_version = "HTTP/1.1"  # as real servers: keep-alive, chunked streams

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.record = {"path": self.path, "headers": headers, "body": body, "frames": 0, "replied": False}
        self.chat.requests.append(self.record)
        openai = self.chat.protocol == "openai"
        if self.path != ("/v1/chat/completions" if openai else "/api/chat"):
            return self._send(404, {"error": f"no route {self.path}"})
        if self.chat.api_key and headers.get("authorization") != f"Bearer {self.chat.api_key}":
            error = {"message": "Incorrect API key provided", "type": "invalid_request_error"}
            return self._send(401, {"error": error if openai else "unauthorized"})
        if not openai and body.get("model") not in self.chat.models:
            return self._send(404, {"error": f'model "{body.get("model")}" not found, try pulling it first'})

        prompt = body["messages"][-1]["content"]
        command, _, arg = prompt.partition(" ")
        if command == "!sleep":
            self.chat.closing.wait(float(arg))
        if command == "!fail":
            return self._send(500, {"error": {"message": "the model crashed", "type": "server_error"}})
        text = self.chat.reply(body["messages"]) if self.chat.reply else f"echo: {prompt}"
        words = text.split(" ")
        deltas = [w if i == 0 else " " + w for i, w in enumerate(words)]  # joined, they give the text back
        streaming = body.get("stream", not openai)  # Ollama streams unless told not to
        if command == "!garbage":
            return self._send(200, b"<html>Bad gateway</html>")
        if not streaming:
            text = "".join(deltas)
            return self._send(200, _openai_whole(text) if openai else _ollama_line(text, done=True))
        self._stream(deltas, command, arg, openai)

    def _stream(self, deltas: list[str], command: str, arg: str, openai: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream" if openai else "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if openai:
            # OpenAI's framing: a role-only first chunk, one chunk per delta, a finish chunk, then [DONE];
            # each event is "data: <json>" plus a blank line. The ": ping" comment is a keep-alive.
            events = [_openai_chunk({"role": "assistant", "content": ""}), ": ping"]
            events += [_openai_chunk({"content": d}) for d in deltas]
            events += [_openai_chunk({}, finish="stop"), "data: [DONE]"]
            lines = [e if e.startswith((":", "data:")) else "data: " + e for e in events]
            frames = [line + "\n\n" for line in lines]
        else:
            frames = [json.dumps(_ollama_line(d, done=False)) + "\n" for d in deltas]
            frames.append(json.dumps(_ollama_line("", done=True)) + "\n")
        if command == "!truncate":
            frames.pop()  # OpenAI's "data: [DONE]", Ollama's "done": true line
        for i, frame in enumerate(frames):
            if i == 2 and command == "!stall":
                self.chat.closing.wait(float(arg))
            if i == 2 and command == "!error-midstream":
                error = {"error": {"message": "out of memory"}} if openai else {"error": "out of memory"}
                frame = ("data: " + json.dumps(error) + "\n\n") if openai else json.dumps(error) + "\n"
            data = frame.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
            self.record["frames"] += 1
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        self.record["replied"] = True

    def _send(self, status: int, payload: dict[str, Any] | bytes) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()
        self.record["frames"], self.record["replied"] = 1, True


def _openai_whole(text: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": text}
    return {"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"index": 0, "message": message}]}


def _openai_chunk(delta: dict[str, str], finish: str | None = None) -> str:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return json.dumps({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [choice]})


def _ollama_line(text: str, *, done: bool) -> dict[str, Any]:
    line = {"model": "tiny", "message": {"role": "assistant", "content": text}, "done": done}
    return line | ({"done_reason": "stop", "eval_count": 3} if done else {})
