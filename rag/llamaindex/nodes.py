"""rag's `Passage` <-> llama-index's ``NodeWithScore``, and `verify`: rag's answer check over any response's
source nodes.

A node made from a passage carries what rag stores for a chunk (`rag.index.layout`): its text, the stable chunk id
as ``node_id``, ``start_char_idx``/``end_char_idx`` (offsets in the document's extracted text), ``source``,
``page`` and ``section`` in its metadata, and a SOURCE relationship to the document (its path).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llama_index.core.base.response.schema import Response, StreamingResponse
from llama_index.core.schema import BaseNode, MetadataMode, NodeWithScore, TextNode

from rag.index import layout
from rag.types import Answer, Citation, Passage

if TYPE_CHECKING:
    from rag.engine import RAG


def to_node(passage: Passage, score: float | None = None, **extra: Any) -> NodeWithScore:
    """A retrieved passage as a scored llama-index node. ``extra`` metadata (e.g. a citation's quote) is kept
    out of what an embedding model or an LLM reads.

    Example:
        >>> n = to_node(Passage("Type your name.", "guide.md", 0.5, None, "Login", 10, 25, id="c1"))
        >>> n.node.node_id, n.node.start_char_idx, n.node.ref_doc_id, n.node.get_content("embed")
        ('c1', 10, 'guide.md', 'Login\\n\\nType your name.')
    """
    p = passage
    meta = layout.node_metadata(p.source, None, None, p.start, p.end, p.page, p.section)
    node = TextNode(**layout.node_fields(p.id, p.text, meta))
    if extra:
        node.metadata.update(extra)
        node.excluded_embed_metadata_keys += list(extra)
        node.excluded_llm_metadata_keys += list(extra)
    return NodeWithScore(node=node, score=p.score if score is None else score)


def to_passage(item: NodeWithScore | BaseNode) -> Passage:
    """Any llama-index node (rag's, or one from another retriever) as a `Passage`.

    Where it is comes from rag's metadata when present, else from llama-index's usual keys: the node's
    offsets, ``file_name``/``file_path``, a numeric ``page_label``, the SOURCE document's id.
    """
    node = item.node if isinstance(item, NodeWithScore) else item
    score = item.score if isinstance(item, NodeWithScore) and item.score is not None else 0.0
    meta = node.metadata or {}
    text = node.get_content(metadata_mode=MetadataMode.NONE)
    source = meta.get("source") or meta.get("file_path") or meta.get("file_name") or node.ref_doc_id or node.node_id
    page = meta.get("page")
    if page is None and str(meta.get("page_label", "")).isdigit():
        page = int(meta["page_label"])
    start = getattr(node, "start_char_idx", None)
    start = int(meta.get("start", 0)) if start is None else start
    end = getattr(node, "end_char_idx", None)
    end = int(meta.get("end", start + len(text))) if end is None else end
    section = meta.get("section")
    return Passage(
        text, str(source), float(score), int(page) if page is not None else None, section, start, end, id=node.node_id
    )


def cited_nodes(answer: Answer) -> list[NodeWithScore]:
    """One node per citation, in marker order: ``[n]`` in the answer's text is ``source_nodes[n - 1]``. Each
    node's metadata adds the supporting ``quote`` and its offsets ``quote_start``/``quote_end``."""
    by_id = {p.id: p for p in answer.passages}
    return [
        to_node(
            by_id.get(c.passage_id) or _passage_of(c),
            c.score,
            quote=c.quote,
            quote_start=c.quote_start,
            quote_end=c.quote_end,
        )
        for c in answer.citations
    ]


def _passage_of(c: Citation) -> Passage:
    return Passage(c.text, c.source, c.score, c.page, c.section, c.start, c.end, id=c.passage_id)


def verify(
    rag: RAG,
    question: str,
    response: str | Response | StreamingResponse,
    source_nodes: Sequence[NodeWithScore | BaseNode] | None = None,
) -> Answer:
    """rag's citation check over any llama-index answer: each sentence of the response is checked against the
    source node its ``[n]`` marker points at (1-based, in ``source_nodes`` order; an unmarked sentence against
    any of them). Sentences without support are marked ``[unverified]``; the `Answer` lists the checked
    citations. Word rarity comes from ``rag``'s corpus (its keyword index), so ``rag`` must have ingested.

    Args:
        rag: the `RAG` whose corpus statistics weigh the words.
        question: what was asked (an answer must state the kind of thing it asks for to count as answered).
        response: the answer's text, or a llama-index ``Response`` (its ``source_nodes`` are used when
            ``source_nodes`` is not given).
        source_nodes: the passages the answer cites.

    Example:
        >>> response = my_query_engine.query(question)  # doctest: +SKIP
        >>> checked = verify(rag, question, response)  # doctest: +SKIP
        >>> [s.text for s in checked.sentences if not s.supported]  # doctest: +SKIP
    """
    if isinstance(response, StreamingResponse):
        response = response.get_response()
    if isinstance(response, Response):
        text = response.response or ""
        nodes = response.source_nodes if source_nodes is None else source_nodes
    else:
        text, nodes = response, source_nodes or []
    passages = [to_passage(n) for n in nodes]
    answer = rag.answerer().verify(question, text, passages)
    answer.backend = "llama-index response, verified"
    return answer
