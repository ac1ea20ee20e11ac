"""rag/index/layout.py: the Chroma metadata rag writes is what llama-index itself writes for the same node."""

from __future__ import annotations

import json

import pytest
from llama_index.core.schema import MetadataMode, TextNode
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

from rag.index import layout
from rag.index.layout import embedding_text

CASES = [
    ("Type your name and press Enter.", "Login", 3),  # embedded under its heading
    ("Login\n\nType your name.", "Login", None),  # already starts with it: embedded as is
    ("No heading here, 12 % of it “quoted”.", None, 1),  # no section, no page; non-ASCII kept
]


@pytest.mark.parametrize(("text", "section", "page"), CASES)
def test_chroma_metadata_is_llama_indexs_own_serialisation(text, section, page):
    meta = layout.node_metadata("docs/guide.md", "ab12cd", 4, 100, 100 + len(text), page, section)
    ours = layout.chroma_metadata("c0ffee", text, meta)
    node = TextNode(**layout.node_fields("c0ffee", text, meta))
    theirs = node_to_metadata_dict(node, remove_text=True, flat_metadata=False)  # as ChromaVectorStore.add
    assert {k: v for k, v in ours.items() if k != "_node_content"} == {
        k: v for k, v in theirs.items() if k != "_node_content"
    }
    assert json.loads(ours["_node_content"]) == json.loads(theirs["_node_content"])
    back = metadata_dict_to_node(ours, text=text)  # what ChromaVectorStore.query does with a record
    assert back.node_id == "c0ffee" and back.ref_doc_id == "docs/guide.md"
    assert (back.start_char_idx, back.end_char_idx) == (100, 100 + len(text))
    assert back.metadata == meta
    assert back.get_content(MetadataMode.EMBED) == embedding_text(text, section)
    assert layout.has_layout(ours) and not layout.has_layout(meta)
    assert layout.rag_metadata(ours) == meta
