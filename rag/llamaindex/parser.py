"""rag's ingest front half on llama-index's data model: `read_documents` (a folder -> ``Document``s, through
rag's loaders) and `RagNodeParser` (rag's chunker as a ``NodeParser``), for anyone's ``IngestionPipeline``.

Example:
    >>> from llama_index.core.ingestion import IngestionPipeline  # doctest: +SKIP
    >>> pipeline = IngestionPipeline(transformations=[RagNodeParser(), RagEmbedding()])  # doctest: +SKIP
    >>> nodes = pipeline.run(documents=read_documents("seeds"))  # doctest: +SKIP
    >>> nodes[0].id_, nodes[0].start_char_idx, nodes[0].metadata["source"]  # doctest: +SKIP

The nodes are the chunks `RAG.ingest` stores for the same files and settings: the same ids
(`rag.ingest.chunking.chunk_id`), offsets, page and section, and ``node.get_content("embed")`` is the text rag
embeds (the chunk under its section heading; `rag.index.layout`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llama_index.core.node_parser import NodeParser
from llama_index.core.schema import BaseNode, Document, TextNode
from pydantic import Field, PrivateAttr

from rag.config import Settings
from rag.index import layout
from rag.index.embedding import Embedder
from rag.ingest.chunking import Chunker
from rag.ingest.loaders import LoadedDocument, Section, Term, load
from rag.ingest.pipeline import scan
from rag.limits import MB, Limits

SECTIONS = "sections"  # Document metadata: rag's sections as JSON, [[start, page, heading], ...]
TERMS = "terms"  # ... and its definition-list entries, [[start, end, term], ...]
_RAG_KEYS = {"source", "file_hash", SECTIONS, TERMS}


def to_document(loaded: LoadedDocument, source: str, file_hash: str | None = None) -> Document:
    """A loaded file as a llama-index ``Document`` whose id is its path; its sections (pages, headings) ride
    in its metadata, which neither an embedding model nor an LLM reads."""
    sections = json.dumps([[s.start, s.page, s.heading] for s in loaded.sections], ensure_ascii=False)
    meta = {"source": source, SECTIONS: sections, **({"file_hash": file_hash} if file_hash else {})}
    if loaded.terms:
        meta[TERMS] = json.dumps([[t.start, t.end, t.text] for t in loaded.terms], ensure_ascii=False)
    return Document(
        id_=source,
        text=loaded.text,
        metadata=meta,
        excluded_embed_metadata_keys=list(meta),
        excluded_llm_metadata_keys=list(meta),
    )


def read_documents(docs_dir: str | Path, settings: Settings | None = None) -> list[Document]:
    """Every document under ``docs_dir`` read by rag's loaders (the formats, limits and link rules of
    `RAG.ingest`), one ``Document`` per file, sorted by path. Files that cannot be read are left out, as
    the ingest leaves them out (it reports them; here `rag.ingest.scan` and `rag.ingest.loaders.load` say why)."""
    settings = settings or Settings(docs_dir=Path(docs_dir))
    max_bytes = int(settings.max_file_mb * MB)
    entries, _, _ = scan(Path(docs_dir), max_bytes, settings.follow_outside_links)
    docs = []
    for e in sorted(entries, key=lambda e: e.rel):
        try:
            docs.append(to_document(load(e.path, e.rel, max_bytes, Limits.of(settings)), e.rel, e.digest))
        except Exception:  # noqa: BLE001 - a file rag cannot read is skipped, as the ingest skips it
            continue
    return docs


def _loaded(doc: BaseNode) -> LoadedDocument:
    """rag's view of a llama-index document: its sections from rag's metadata, or one section whose page is a
    numeric ``page_label`` (one Document per PDF page, as SimpleDirectoryReader reads PDFs)."""
    text = doc.get_content()
    if raw := doc.metadata.get(SECTIONS):
        terms = [Term(s, e, t) for s, e, t in json.loads(doc.metadata.get(TERMS) or "[]")]
        return LoadedDocument(text, [Section(s, p, h) for s, p, h in json.loads(raw)], terms=terms)
    label = str(doc.metadata.get("page_label", ""))
    return LoadedDocument(text, [Section(0, int(label) if label.isdigit() else None, None)])


class RagNodeParser(NodeParser):
    """rag's chunker as a llama-index ``NodeParser``: sentence-aligned windows of at most ``chunk_size``
    embedding-model tokens, never across a page or heading, each an exact slice of the document.

    Each ``TextNode`` has rag's stable chunk id, ``start_char_idx``/``end_char_idx``, ``source``, ``page``,
    ``section``, ``chunk_index`` (and ``file_hash`` when known) in its metadata, and a SOURCE relationship
    to its document; the document's other metadata is kept (out of the embedded text). The embed view is
    the chunk under its section heading.

    Args:
        chunk_size, chunk_overlap: as `Settings` (tokens of ``embed_model``'s tokenizer).
        embed_model: the model whose tokenizer counts tokens: a name or folder, as ``RAG_EMBED_MODEL``.
    """

    chunk_size: int = Field(200, description="The most embedding-model tokens in one chunk.", ge=32, le=512)
    chunk_overlap: int = Field(40, description="The most tokens a chunk repeats from the previous one.", ge=0)
    embed_model: str = Field("all-MiniLM-L6-v2", description="Model whose tokenizer counts the tokens.")
    _embedder: Embedder | None = PrivateAttr(None)

    @classmethod
    def from_settings(cls, settings: Settings, embedder: Embedder | None = None) -> RagNodeParser:
        """The parser `RAG.ingest` uses for ``settings`` (sharing ``embedder``'s tokenizer, if given)."""
        parser = cls(
            chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap, embed_model=settings.embed_model
        )
        parser._embedder = embedder
        return parser

    @classmethod
    def class_name(cls) -> str:
        return "RagNodeParser"

    def _chunker(self) -> Chunker:
        if self._embedder is None:
            self._embedder = Embedder(self.embed_model)
        return Chunker(self._embedder.token_counts, self.chunk_size, self.chunk_overlap)

    def _parse_nodes(self, nodes: Sequence[BaseNode], show_progress: bool = False, **kwargs: Any) -> list[BaseNode]:
        chunker, out = self._chunker(), list[BaseNode]()
        for doc in nodes:
            meta = doc.metadata
            source = str(meta.get("source") or meta.get("file_path") or meta.get("file_name") or doc.node_id)
            extra = {k: v for k, v in meta.items() if k not in _RAG_KEYS} if self.include_metadata else {}
            for c in chunker.split(_loaded(doc), source):
                chunk_meta = layout.node_metadata(
                    source, meta.get("file_hash"), c.index, c.start, c.end, c.page, c.section, c.title
                )
                out.append(TextNode(**layout.node_fields(c.id, c.text, {**extra, **chunk_meta}, doc.node_id)))
        return out

    def _postprocess_parsed_nodes(self, nodes: list[BaseNode], parent_doc_map: dict[str, Document]) -> list[BaseNode]:
        # The base class re-finds each node's text in its document to set offsets (the first match: wrong for
        # a repeated passage) and merges the document's metadata (rag's sections too). The chunker's offsets
        # are exact and the metadata is set above.
        return nodes
