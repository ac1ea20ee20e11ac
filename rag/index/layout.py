"""A chunk as llama-index sees it: the fields of its ``TextNode`` and the Chroma metadata layout that
llama-index's ``ChromaVectorStore`` reads, computed here without importing llama-index (~2.7 s).

rag stores each chunk with flat metadata (source, file_hash, chunk_index, start, end, page, title, section). On top
of that, every record carries what `llama_index.core.vector_stores.utils.metadata_dict_to_node` looks for:

* ``_node_content``: the node as JSON (``TextNode.model_dump(mode="json")``, its text left empty because
  Chroma holds it in the record's document, as ``ChromaVectorStore.add`` does);
* ``_node_type``: ``"TextNode"``;
* ``document_id``, ``doc_id``, ``ref_doc_id``: the source path, so ``ChromaVectorStore.delete(source)`` and
  metadata filters work.

The node's embed and LLM views read the document's title and the section heading only, so
``node.get_content("embed")`` is exactly what rag embedded (`embedding_text`):

    >>> meta = node_metadata("guide.md", "ab12", 0, 10, 25, None, "Setup")
    >>> sorted(excluded_keys(meta, "Run pip install."))
    ['chunk_index', 'end', 'file_hash', 'source', 'start']

tests/test_layout.py checks the JSON against llama-index's own serialisation of the same node.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

NODE_TYPE = "TextNode"
LAYOUT_VERSION = 1  # recorded in the collection's metadata once every record carries the layout
# rag's own key beside the layout: what a record's vector is the embedding of (`embedded_key`), so that an
# ingest can reuse the vector wherever the same model would embed the same text again. (A leading "_" keeps
# it out of the node's metadata, as llama-index's own keys are.)
EMBEDDED = "_embedded"


def embedded_key(model: str, text: str) -> str:
    """What identifies a vector: the model and the exact text it embedded.

    Example:
        >>> embedded_key("all-MiniLM-L6-v2", "Login") == embedded_key("all-MiniLM-L6-v2", "Login")
        True
        >>> embedded_key("all-MiniLM-L6-v2", "Login") == embedded_key("embeddinggemma-300m", "Login")
        False
    """
    return hashlib.sha256(f"{model}\0{text}".encode()).hexdigest()[:32]


def node_metadata(
    source: str,
    file_hash: str | None,
    index: int | None,
    start: int,
    end: int,
    page: int | None,
    section: str | None,
    title: str | None = None,
) -> dict[str, Any]:
    """The node's (and the Chroma record's) metadata; keys whose value is None are left out."""
    meta = {
        "source": source,
        "file_hash": file_hash,
        "chunk_index": index,
        "start": start,
        "end": end,
        "page": page,
        "title": title,
        "section": section,
    }
    return {k: v for k, v in meta.items() if v is not None}


def headings(text: str, section: str | None, title: str | None) -> list[str]:
    """The lines a chunk is embedded under: its document's title, then its section heading; one that the
    chunk already starts with, or the title when it is the section heading too, is not repeated.

    Example:
        >>> headings("-u, --include-untracked ...", "OPTIONS", "git-stash(1)")
        ['git-stash(1)', 'OPTIONS']
        >>> headings("Login Type your name.", "Login", "Login")
        []
    """
    out = [h for h in (title, section) if h and not text.startswith(h)]
    return out[1:] if len(out) == 2 and out[0] == out[1] else out


def excluded_keys(meta: dict[str, Any], text: str) -> list[str]:
    """Metadata keys left out of what is embedded: all but ``title`` and ``section``, and those too where
    `headings` leaves them out (as `embedding_text` does)."""
    keep = headings(text, meta.get("section"), meta.get("title"))
    kept = {k for k in ("title", "section") if meta.get(k) in keep}
    if len(kept) == 2 and len(keep) == 1:
        kept = {"section"}
    return [k for k in meta if k not in kept]


def node_fields(cid: str, text: str, meta: dict[str, Any], ref_doc_id: str | None = None) -> dict[str, Any]:
    """Keyword arguments of ``TextNode(**...)`` for a chunk (relationships in their JSON form).

    ``ref_doc_id`` is the id of the document the chunk comes from (its SOURCE relationship); the source
    path by default.
    """
    excluded = excluded_keys(meta, text)
    return {
        "id_": cid,
        "embedding": None,
        "metadata": dict(meta),
        "excluded_embed_metadata_keys": excluded,
        "excluded_llm_metadata_keys": list(excluded),
        "relationships": {
            "1": {  # NodeRelationship.SOURCE
                "node_id": ref_doc_id or meta["source"],
                "node_type": "4",  # ObjectType.DOCUMENT
                "metadata": {},
                "hash": meta.get("file_hash"),
                "class_name": "RelatedNodeInfo",
            }
        },
        "metadata_template": "{value}",  # the heading alone, not "section: <heading>"
        "metadata_separator": "\n",
        "text": text,
        "mimetype": "text/plain",
        "start_char_idx": meta.get("start"),
        "end_char_idx": meta.get("end"),
        "text_template": "{metadata_str}\n\n{content}",
    }


def chroma_metadata(cid: str, text: str, meta: dict[str, Any]) -> dict[str, Any]:
    """A chunk's Chroma metadata in the layout ``ChromaVectorStore`` reads (see the module docstring), with
    rag's `EMBEDDED` key beside it when ``meta`` has one."""
    flat = {k: v for k, v in meta.items() if v is not None and not k.startswith("_") and k not in _REFS}
    node = {**node_fields(cid, text, flat), "text": "", "class_name": NODE_TYPE}
    return {
        **flat,
        "_node_content": json.dumps(node, ensure_ascii=False),
        "_node_type": NODE_TYPE,
        **dict.fromkeys(_REFS, flat["source"]),
        **{k: meta[k] for k in (EMBEDDED,) if k in meta},
    }


_REFS = ("document_id", "doc_id", "ref_doc_id")


def has_layout(meta: dict[str, Any]) -> bool:
    """True when a stored record already carries the llama-index layout."""
    return "_node_content" in meta and "ref_doc_id" in meta


def rag_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """A stored record's metadata without the layout's extra keys (what rag itself reads)."""
    return {k: v for k, v in meta.items() if not k.startswith("_") and k not in _REFS}


def embedding_text(text: str, section: str | None, title: str | None = None) -> str:
    """A chunk as the embedding model reads it: under its document's title and its section heading, so a
    passage deep inside "1.1.1. The shell prompt", or an option listed under "OPTIONS" of one manual page
    among hundreds, is still found by what its document and section are about.

    Example:
        >>> embedding_text("Type your name.", "Login")
        'Login\\n\\nType your name.'
        >>> embedding_text("Type your name.", "Login", "User guide")
        'User guide\\nLogin\\n\\nType your name.'
    """
    if lines := headings(text, section, title):
        return "\n".join(lines) + "\n\n" + text
    return text
