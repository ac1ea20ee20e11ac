"""The HTTP backends: any OpenAI-compatible server (llama.cpp, vLLM, LM Studio, OpenAI) and Ollama.

Example:
    >>> OllamaLLM("llama3.2").name
    'ollama llama3.2 at http://127.0.0.1:11434'
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .llm import OLLAMA_URL, _Backend, _error_text, _snippet

if TYPE_CHECKING:  # imported where used, so importing rag stays fast
    import httpx


class _HTTPBackend(_Backend):
    """What both HTTP servers share: POST JSON, read the reply whole or line by line, translate failures."""

    kind = ""

    def __init__(self, model: str, *, base_url: str, api_key: str | None = None, timeout: float = 120.0):
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.name = f"{self.kind} {model} at {self.base_url}"
        self.where = f"{self.kind} backend at {self.base_url}"

    @contextlib.contextmanager
    def _response(self, path: str, payload: dict[str, Any]) -> Iterator[httpx.Response]:
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        # httpx's timeout bounds each wait (connect, every read), so a long streamed reply that keeps
        # arriving is fine, and a server silent for `timeout` seconds is an error.
        try:
            with (
                httpx.Client(timeout=self.timeout, headers=headers) as client,
                client.stream("POST", self.base_url + path, json=payload) as response,
            ):
                if response.status_code >= 400:
                    raise self._fail(f"returned HTTP {response.status_code}: {_error_text(response.read())}")
                yield response  # errors while the caller reads the body land in the except below too
        except httpx.TimeoutException:
            raise self._fail(f"timed out after {self.timeout:g} s (RAG_LLM_TIMEOUT)") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            # "[Errno 111] Connection refused" -> "connection refused"
            reason = re.sub(r"^\[Errno -?\d+\]\s*", "", str(exc)).strip() or type(exc).__name__
            reason = reason[:1].lower() + reason[1:]
            problem = "unreachable" if isinstance(exc, httpx.ConnectError) else "failed"
            raise self._fail(f"{problem}: {reason}") from None

    def _json(self, path: str, payload: dict[str, Any]) -> Any:
        with self._response(path, payload) as response:
            return self._parse(response.read())

    def _lines(self, path: str, payload: dict[str, Any]) -> Iterator[str]:
        with self._response(path, payload) as response:
            yield from response.iter_lines()

    def _parse(self, text: str | bytes) -> Any:
        try:
            return json.loads(text)
        except ValueError:
            raise self._fail(f"sent a malformed response (not JSON): {_snippet(text)}") from None


class OpenAICompatibleLLM(_HTTPBackend):
    """A server speaking OpenAI's chat completions API at ``{base_url}/chat/completions``.

    Args:
        model: the model name the server knows (llama.cpp's own server accepts any).
        base_url: up to and including the API version, e.g. ``http://127.0.0.1:8080/v1``.
        api_key: sent as ``Authorization: Bearer <key>`` when set.
        timeout: seconds to wait for the connection and for each piece of the reply.
    """

    kind = "openai"

    def _complete(self, request: dict[str, Any]) -> str:
        return self._message(self._json("/chat/completions", {"model": self.model, **request}))

    def _stream(self, request: dict[str, Any]) -> Iterator[str]:
        # Server-sent events: "data: {json}" lines between blank lines, ending with "data: [DONE]".
        # ":" lines are keep-alive comments; "event:" and "id:" lines carry nothing a chat reply needs.
        events = 0
        for line in self._lines("/chat/completions", {"model": self.model, **request}):
            if line.startswith("data:"):
                events += 1
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                if delta := self._delta(self._parse(data)):
                    yield delta
        if not events:  # e.g. a web page: some servers answer any path with 200 and HTML
            raise self._fail("sent a malformed response (no server-sent events)")


class OllamaLLM(_HTTPBackend):
    """An Ollama server's native chat API at ``{base_url}/api/chat``.

    Args:
        model: a model the server has pulled, e.g. ``llama3.2``.
        base_url: the server's root, ``http://127.0.0.1:11434`` by default.
        api_key: sent as ``Authorization: Bearer <key>`` when set (for a proxy in front of Ollama).
        timeout: seconds to wait for the connection and for each piece of the reply.
    """

    kind = "ollama"

    def __init__(self, model: str, *, base_url: str = OLLAMA_URL, api_key: str | None = None, timeout: float = 120.0):
        super().__init__(model, base_url=base_url, api_key=api_key, timeout=timeout)

    def _complete(self, request: dict[str, Any]) -> str:
        return self._content(self._json("/api/chat", self._payload(request)))

    def _stream(self, request: dict[str, Any]) -> Iterator[str]:
        # One JSON object per line: {"message": {"content": "Hel"}, "done": false} ... {"done": true, ...}
        for line in self._lines("/api/chat", self._payload(request)):
            if line.strip():
                chunk = self._parse(line)
                if delta := self._content(chunk):
                    yield delta
                if chunk.get("done"):
                    return
        raise self._fail('ended the stream before its last line (no "done": true)')

    def _payload(self, request: dict[str, Any]) -> dict[str, Any]:
        # Ollama takes generation settings under "options", with its own names.
        options = {"num_predict": request["max_tokens"], "temperature": request["temperature"]}
        if "stop" in request:
            options["stop"] = request["stop"]
        payload = {"model": self.model, "messages": request["messages"], "stream": request["stream"]}
        return payload | {"options": options}

    def _content(self, reply: Any) -> str:
        self._raise_if_error(reply)
        try:
            return reply["message"]["content"] or ""
        except (KeyError, TypeError):
            if isinstance(reply, dict) and reply.get("done"):  # a last line may carry only statistics
                return ""
            raise self._fail(f"sent a malformed response (no message.content): {_snippet(reply)}") from None
