"""Each browser session's answering backend: the Settings tab picks one without touching anyone else's.

Example:
    >>> from rag import RAG
    >>> backends = Backends(RAG(docs_dir="seeds"))  # doctest: +SKIP
    >>> backends.get("ollama", "http://localhost:11434", "qwen3")  # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from rag.engine import RAG


class Backends:
    """The `RAG` to answer with for the backend chosen in a session's settings.

    The server's own settings use ``rag`` itself; another choice gets a `RAG` of its own (cached, sharing
    the embedding model), so one person's settings never change another's answers.
    """

    def __init__(self, rag: RAG, size: int = 8):
        self.rag = rag
        self.size = size
        self._cache: OrderedDict[tuple, RAG] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, llm: str, base_url: str = "", model: str = "", api_key: str = "") -> RAG:
        s = self.rag.settings
        url: str | None = (base_url or "").strip() or None
        name: str | None = (model or "").strip() or None
        # A blank key means the server's own key, but only for the server's own URL: never send it elsewhere.
        key = api_key or (s.llm_api_key if url == s.llm_base_url else None)
        want = {"llm": llm or s.llm, "llm_base_url": url, "llm_model": name, "llm_api_key": key}
        if all(getattr(s, k) == v for k, v in want.items()):
            return self.rag
        cache_key = tuple(want.values())
        with self._lock:
            if cache_key in self._cache:
                self._cache.move_to_end(cache_key)
                return self._cache[cache_key]
            variant = self.rag.with_settings(**want)  # shares the embedding model, store and keyword index
            self._cache[cache_key] = variant
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
            return variant
