"""Optional parts of rag and the extra that installs each.

``pip install rag`` gives the whole extractive product (ingest, retrieval, checked answers, the app). A
model backend, the experimental reranker and evaluation plots need more; `need` turns the missing import
into one line that names the extra to install, instead of a ModuleNotFoundError from deep inside a call.

Example:
    >>> need("json", "reading JSON").__name__
    'json'
    >>> need("not_a_module", "plots")
    Traceback (most recent call last):
    ...
    rag.extras.MissingExtraError: plots needs not_a_module, which is not installed: pip install 'rag[all]'
"""

from __future__ import annotations

import importlib
from types import ModuleType

from rag.errors import RagError

# module -> the extra that installs it (pyproject.toml [project.optional-dependencies])
EXTRAS = {
    "xllamacpp": "local",  # the in-process GGUF backend
    "llama_index.llms.openai_like": "remote",  # the openai-compatible backend
    "llama_index.llms.ollama": "remote",  # the ollama backend
    "nanoranker": "rerank",  # RAG_RERANK=true
    "matplotlib": "eval",  # the evaluation report's plots
}


class MissingExtraError(RagError):
    """An optional part was asked for and its package is not installed."""


def need(module: str, feature: str) -> ModuleType:
    """Import ``module`` for ``feature``, or raise `MissingExtraError` naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        extra = EXTRAS.get(module, EXTRAS.get(module.split(".")[0], "all"))
        raise MissingExtraError(
            f"{feature} needs {module}, which is not installed: pip install 'rag[{extra}]'"
        ) from None
