"""The HTTP backends: any OpenAI-compatible server (llama.cpp, vLLM, LM Studio, OpenAI) and Ollama, through
llama-index's ``OpenAILike`` and ``Ollama`` integrations (`rag.llamaindex.llms`). What rag adds is the
translation of every failure into one `BackendError` line that says which backend, where, and why, and the
key rules: a key goes only to the server it was given for (never ``OPENAI_API_KEY`` from the environment),
and no key means no ``Authorization`` header.

llama-index (~2.7 s to import) and the protocol clients load on the first request, not at import or
construction: ``import rag`` and the app's start stay fast.

Example:
    >>> OllamaLLM("llama3.2").name
    'ollama llama3.2 at http://127.0.0.1:11434'
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Iterator
from typing import Any

from rag.errors import BackendError
from rag.llms.base import OLLAMA_URL, _Backend, _error_text, _snippet


class _HTTPBackend(_Backend):
    """What both HTTP servers share: a llama-index client made on first use, and failures translated."""

    kind = ""

    def __init__(self, model: str, *, base_url: str, api_key: str | None = None, timeout: float = 120.0):
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.name = f"{self.kind} {model} at {self.base_url}"
        self.where = f"{self.kind} backend at {self.base_url}"
        self._lock = threading.Lock()

    def _complete(self, request: dict[str, Any]) -> str:
        from rag.llamaindex.llms import chat_messages

        with self._translated():
            return (
                self._client(request).chat(chat_messages(request["messages"]), **self._kwargs(request)).message.content
                or ""
            )

    def _stream(self, request: dict[str, Any]) -> Iterator[str]:
        from rag.llamaindex.llms import chat_messages

        with self._translated():
            last = None
            for last in self._client(request).stream_chat(chat_messages(request["messages"]), **self._kwargs(request)):
                if last.delta:
                    yield last.delta
            self._check_end(last)

    def _client(self, request: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _kwargs(self, request: dict[str, Any]) -> dict[str, Any]:
        return {}

    def _check_end(self, last: Any) -> None:
        """Raise if a stream ended in a way its protocol does not allow (``last``: its last ChatResponse)."""

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        """Every way a request can fail, as one `BackendError` line."""
        import httpx

        try:
            yield
        except BackendError:
            raise
        except json.JSONDecodeError as exc:  # the body, or a line of the stream, is not JSON
            raise self._fail(f"sent a malformed response (not JSON): {_snippet(exc.doc)}") from None
        except httpx.TimeoutException:  # raised as is while a stream is read
            raise self._fail(f"timed out after {self.timeout:g} s (RAG_LLM_TIMEOUT)") from None
        except Exception as exc:
            if (translated := self._translate(exc)) is not None:
                raise translated from None
            if (cause := _transport_error(exc)) is not None:
                raise self._transport(cause) from None
            raise self._fail(f"failed: {_snippet(exc) or type(exc).__name__}") from None

    def _translate(self, exc: Exception) -> BackendError | None:
        return None

    def _transport(self, exc: Exception) -> BackendError:
        """A connection that failed: ``[Errno 111] Connection refused`` -> ``unreachable: connection refused``."""
        import httpx

        if isinstance(exc, httpx.TimeoutException):
            return self._fail(f"timed out after {self.timeout:g} s (RAG_LLM_TIMEOUT)")
        reason = re.sub(r"^\[Errno -?\d+\]\s*", "", str(exc)).strip() or type(exc).__name__
        reason = reason[:1].lower() + reason[1:]
        problem = "unreachable" if isinstance(exc, httpx.ConnectError) else "failed"
        return self._fail(f"{problem}: {reason}")


def _transport_error(exc: BaseException) -> Exception | None:
    """The httpx error behind a client library's own (openai's APIConnectionError, ollama's ConnectionError)."""
    import httpx

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, httpx.TransportError | httpx.InvalidURL):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class OpenAICompatibleLLM(_HTTPBackend):
    """A server speaking OpenAI's chat completions API at ``{base_url}/chat/completions``.

    Args:
        model: the model name the server knows (llama.cpp's own server accepts any).
        base_url: up to and including the API version, e.g. ``http://127.0.0.1:8080/v1``.
        api_key: sent as ``Authorization: Bearer <key>`` when set.
        timeout: seconds to wait for the connection and for each piece of the reply.
    """

    kind = "openai"
    _llm: Any = None

    def _client(self, request: dict[str, Any]) -> Any:
        if self._llm is None:
            with self._lock:
                if self._llm is None:
                    from rag.llamaindex.llms import openai_like

                    self._llm = openai_like(self.model, self.base_url, self.api_key, self.timeout)
        return self._llm

    def _kwargs(self, request: dict[str, Any]) -> dict[str, Any]:
        kwargs = {"max_tokens": request["max_tokens"], "temperature": request["temperature"]}
        return kwargs | ({"stop": request["stop"]} if "stop" in request else {})

    def _check_end(self, last: Any) -> None:
        # Some servers never send "data: [DONE]": the deltas stand. A body without a single event (a web page
        # answering any path with 200) is not a reply.
        if last is None:
            raise self._fail("sent a malformed response (no server-sent events)")

    def _translate(self, exc: Exception) -> BackendError | None:
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return self._fail(f"timed out after {self.timeout:g} s (RAG_LLM_TIMEOUT)")
        if isinstance(exc, openai.APIStatusError):
            return self._fail(f"returned HTTP {exc.status_code}: {_error_text(exc.response.content)}")
        if isinstance(exc, openai.APIConnectionError):
            return None  # the transport error behind it says more
        if isinstance(exc, openai.APIError):  # {"error": ...} inside a stream
            return self._fail(f"reported an error: {_snippet(exc.message)}")
        if isinstance(exc, AttributeError | TypeError | KeyError | IndexError | ValueError):
            return self._fail(f"sent a malformed response: {_snippet(exc)}")
        return None


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

    def _client(self, request: dict[str, Any]) -> Any:
        from rag.llamaindex.llms import RagOllama

        # Ollama takes generation settings per client ("options", with its own names): one client per call.
        options = {"num_predict": request["max_tokens"]} | ({"stop": request["stop"]} if "stop" in request else {})
        return RagOllama(
            model=self.model,
            base_url=self.base_url,
            request_timeout=self.timeout,
            context_window=4096,  # any: not sent (RagOllama); unset, llama-index asks the server (/api/show)
            temperature=request["temperature"],
            additional_kwargs=options,
            headers={"Authorization": f"Bearer {self.api_key}"} if self.api_key else {},
        )

    def _check_end(self, last: Any) -> None:
        # One JSON object per line, the last with "done": true; without it the reply may be cut short.
        if last is None or not (last.raw or {}).get("done"):
            raise self._fail('ended the stream before its last line (no "done": true)')

    def _translate(self, exc: Exception) -> BackendError | None:
        import ollama

        if isinstance(exc, ollama.ResponseError):
            if exc.status_code == -1:  # {"error": ...} inside a stream
                return self._fail(f"reported an error: {_error_text({'error': exc.error})}")
            return self._fail(f"returned HTTP {exc.status_code}: {_error_text({'error': exc.error})}")
        return None
