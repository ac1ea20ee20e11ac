"""The embedding model: the packaged MiniLM, run by rag's plain-torch encoder, must give what
sentence-transformers gives; other model shapes go through sentence-transformers itself."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from rag import RagError
from rag.index.bert import BertEncoder
from rag.index.embedding import Embedder, resolve_model_path

from .conftest import SEEDS

TEXTS = [
    *[p for p in (SEEDS / "hashkey-interview.txt").read_text().split("\n\n") if p.strip()][:12],
    "short",
    "香港是一个国际金融中心",
    "word " * 400,  # longer than the model's 256-token window: truncated the same way
]


@pytest.fixture(scope="module")
def reference():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(resolve_model_path("all-MiniLM-L6-v2")), device="cpu")


def test_packaged_model_runs_on_the_plain_torch_encoder_with_the_same_vectors(reference):
    embedder = Embedder()
    assert isinstance(embedder.model, BertEncoder)
    ours = embedder.embed(TEXTS)
    theirs = reference.encode(TEXTS, normalize_embeddings=True)
    assert ours.shape == (len(TEXTS), 384) and ours.dtype == np.float32
    assert np.min(np.sum(ours * theirs, axis=1)) > 0.9999
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    query = embedder.embed_query("When was the policy statement issued?")
    assert (
        float(query @ reference.encode(["When was the policy statement issued?"], normalize_embeddings=True)[0])
        > 0.9999
    )


def test_token_counts_match_the_models_tokenizer(reference):
    ours = Embedder().tokenizer(TEXTS, add_special_tokens=False)["input_ids"]
    assert ours == reference.tokenizer(TEXTS, add_special_tokens=False, truncation=False)["input_ids"]


def test_other_model_shapes_load_with_sentence_transformers(tmp_path, reference):
    """A model without the mean-pooling shape (here: CLS pooling) is not run by the plain-torch encoder."""
    folder = tmp_path / "cls-model"
    shutil.copytree(resolve_model_path("all-MiniLM-L6-v2"), folder)
    pooling = folder / "1_Pooling" / "config.json"
    pooling.write_text(pooling.read_text().replace('"pooling_mode_cls_token": false', '"pooling_mode_cls_token": true'))
    pooling.write_text(
        pooling.read_text().replace('"pooling_mode_mean_tokens": true', '"pooling_mode_mean_tokens": false')
    )
    embedder = Embedder(str(folder))
    assert type(embedder.model).__name__ == "SentenceTransformer"
    assert embedder.embed(["hello"]).shape == (1, 384)


def test_the_fast_path_can_be_switched_off(reference):
    """RAG_EMBED_FAST_PATH=false: the packaged MiniLM through sentence-transformers itself, same vectors."""
    from rag import RAG

    plain = RAG(embed_fast_path=False).embedder
    assert type(plain.model).__name__ == "SentenceTransformer"
    assert isinstance(RAG().embedder.model, BertEncoder)
    assert np.min(np.sum(plain.embed(TEXTS[:3]) * Embedder().embed(TEXTS[:3]), axis=1)) > 0.9999


def test_a_sentence_transformers_model_gives_the_same_vectors_in_small_passes(reference):
    """Such models run ``ST_PASS`` texts per forward pass (faster on CPU): every text keeps its own vector, in
    order, as one pass over all of them gives it."""
    from rag.index.embedding import ST_PASS

    embedder = Embedder("all-MiniLM-L6-v2", batch_size=64, fast_path=False)
    assert type(embedder.model).__name__ == "SentenceTransformer"
    assert len(TEXTS) > ST_PASS
    ours = embedder.embed(TEXTS)
    theirs = reference.encode(TEXTS, batch_size=len(TEXTS), normalize_embeddings=True)
    assert np.min(np.sum(ours * theirs, axis=1)) > 0.9999


def test_unknown_model_is_a_clear_error(tmp_path):
    with pytest.raises(RagError, match="neither a packaged model"):
        Embedder(str(tmp_path / "nowhere")).embed(["x"])


def test_float32_and_the_fast_dtype_give_the_same_vectors():
    """Where the CPU has native bfloat16 the encoder runs in it; vectors must match a float32 run, so a store
    embedded on one machine answers queries embedded on another."""
    import torch

    from rag.index.bert import compute_dtype

    path = resolve_model_path("all-MiniLM-L6-v2")
    fast, exact = BertEncoder(path), BertEncoder(path, dtype=torch.float32)
    assert fast.dtype == compute_dtype() and exact.dtype == torch.float32
    a, b = fast.encode(TEXTS), exact.encode(TEXTS)
    assert a.dtype == b.dtype == np.float32
    assert np.min(np.sum(a * b, axis=1)) > 0.9999
