"""What every backend is: the `LLM` interface the answerer needs, and `_Backend`, the shared request shape
and error wording the local and HTTP backends build on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Protocol

from rag.errors import BackendError

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": "..."}

OLLAMA_URL = "http://127.0.0.1:11434"


class LLM(Protocol):
    """What the answerer needs from a model: the reply, whole or as it is written."""

    name: str

    def complete(
        self, messages: list[Message], *, max_tokens: int = 256, temperature: float = 0.0, stop: list[str] | None = None
    ) -> str: ...

    def stream(
        self, messages: list[Message], *, max_tokens: int = 256, temperature: float = 0.0, stop: list[str] | None = None
    ) -> Iterator[str]: ...


class _Backend:
    """The public signature, once: requests become the OpenAI chat shape every backend starts from."""

    name = ""
    where = ""  # how error messages start: "openai backend at http://127.0.0.1:8080/v1"

    def complete(
        self, messages: list[Message], *, max_tokens: int = 256, temperature: float = 0.0, stop: list[str] | None = None
    ) -> str:
        """The assistant's whole reply to ``messages``. Raises BackendError."""
        return self._complete(_request(messages, max_tokens, temperature, stop, stream=False))

    def stream(
        self, messages: list[Message], *, max_tokens: int = 256, temperature: float = 0.0, stop: list[str] | None = None
    ) -> Iterator[str]:
        """The same reply as text deltas, yielded as they arrive. Raises BackendError while iterating."""
        return self._stream(_request(messages, max_tokens, temperature, stop, stream=True))

    def _complete(self, request: dict[str, Any]) -> str:
        raise NotImplementedError

    def _stream(self, request: dict[str, Any]) -> Iterator[str]:
        raise NotImplementedError

    def _fail(self, reason: str) -> BackendError:
        return BackendError(f"{self.where} {reason}")

    def _message(self, reply: Any) -> str:
        """``choices[0].message.content`` of an OpenAI-shaped reply."""
        self._raise_if_error(reply)
        try:
            return reply["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise self._fail(f"sent a malformed response (no choices[0].message): {_snippet(reply)}") from None

    def _delta(self, chunk: Any) -> str:
        """``choices[0].delta.content`` of an OpenAI-shaped stream chunk; "" for role/usage/finish chunks."""
        self._raise_if_error(chunk)
        try:
            return (chunk["choices"][0]["delta"].get("content") or "") if chunk["choices"] else ""
        except (KeyError, IndexError, TypeError, AttributeError):
            raise self._fail(f"sent a malformed stream chunk: {_snippet(chunk)}") from None

    def _raise_if_error(self, reply: Any) -> None:
        # Servers refuse a request with {"error": {"message": ..., "code": 400}} (OpenAI, llama.cpp) or
        # {"error": "..."} (Ollama), sometimes in the middle of a stream.
        if isinstance(reply, dict) and "error" in reply:
            raise self._fail(f"reported an error: {_error_text(reply)}")


def _request(
    messages: list[Message], max_tokens: int, temperature: float, stop: list[str] | None, stream: bool
) -> dict[str, Any]:
    request = dict(messages=messages, max_tokens=max_tokens, temperature=temperature, stream=stream)
    return request | {"stop": stop} if stop else request


def _error_text(body: Any) -> str:
    """The human part of an error body: OpenAI's error.message, Ollama's error, else the start of the text."""
    if isinstance(body, bytes):
        try:
            body = json.loads(body)
        except ValueError:
            return _snippet(body) or "(empty body)"
    if isinstance(body, dict) and "error" in body:
        error = body["error"]
        return _snippet(error.get("message", error) if isinstance(error, dict) else error)
    return _snippet(body)


def _snippet(value: Any, limit: int = 200) -> str:
    """One line of at most ``limit`` characters from whatever a server sent."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
