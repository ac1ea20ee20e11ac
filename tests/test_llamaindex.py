"""rag behind llama-index's interfaces (rag/llamaindex/): the retriever, the query and chat engines, and the
answer check over any response's source nodes, against a real store ingested from seeds/."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys

import numpy as np
import pytest
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.response.schema import Response
from llama_index.core.chat_engine.types import BaseChatEngine
from llama_index.core.schema import NodeWithScore, TextNode

from rag import RAG
from rag.answer.answerer import NOT_FOUND, UNVERIFIED
from rag.index import layout
from rag.index.embedding import Embedder
from rag.ingest.loaders import load
from rag.llamaindex import verify

from .conftest import ROOT, SEEDS

SEED = "hashkey-interview.txt"
# Two headings, the second section long enough for several chunks: every chunk is embedded under its heading.
GARDEN = "# Tomatoes\n\nTomatoes want six hours of sun and deep watering twice a week.\n\n## Pruning\n\n" + " ".join(
    f"Side shoot {i} is pinched out when it is {i} centimetres long." for i in range(60)
)
EMPLOYEES = "How many employees does HashKey have around the world?"
UNKNOWN = "What is the boiling point of liquid nitrogen?"


@pytest.fixture(scope="module")
def rag(tmp_path_factory) -> RAG:
    """One store ingested from seeds/ for the whole module (settings passed explicitly: the module outlives
    each test's environment)."""
    root = tmp_path_factory.mktemp("llamaindex")
    shutil.copytree(SEEDS, root / "docs")
    (root / "docs" / "garden.md").write_text(GARDEN)
    engine = RAG(docs_dir=root / "docs", store_dir=root / "store", crosslingual="off")
    assert engine.ingest().ok
    return engine


@pytest.fixture(scope="module")
def seed_text() -> str:
    return load(SEEDS / SEED, SEED, 2**24).text


def test_retriever_returns_rags_passages_as_nodes(rag, seed_text):
    retriever = rag.as_retriever(k=3)
    nodes = retriever.retrieve("insurance coverage")
    passages = rag.retrieve("insurance coverage", k=3)
    assert isinstance(retriever, BaseRetriever) and len(nodes) == 3
    assert [n.node.node_id for n in nodes] == [p.id for p in passages]
    assert [n.score for n in nodes] == [p.score for p in passages]
    for n in nodes:
        node = n.node
        assert isinstance(node, TextNode) and node.ref_doc_id == SEED
        assert node.metadata["source"] == SEED
        assert node.text == seed_text[node.start_char_idx : node.end_char_idx]  # exact offsets


def test_the_entry_points_answer_within_chosen_documents(rag):
    question = "How large is the insurance coverage?"  # answered by the interview, asked within the garden
    assert {n.node.metadata["source"] for n in rag.as_retriever(k=3).retrieve(question)} == {SEED}
    nodes = rag.as_retriever(k=3, documents=["garden.md"]).retrieve(question)
    assert nodes and {n.node.metadata["source"] for n in nodes} == {"garden.md"}
    response = rag.as_query_engine(documents=["garden.md"]).query("How much sun do tomatoes want?")
    assert "six hours" in str(response) and {n.node.metadata["source"] for n in response.source_nodes} == {"garden.md"}
    assert response.metadata["answer"].scope == "garden.md (1 document)"
    chat = rag.as_chat_engine(documents=["garden.md"]).chat(question)
    assert all(n.node.metadata["source"] == "garden.md" for n in chat.source_nodes)
    assert chat.metadata["answer"].scope == "garden.md (1 document)"


def test_query_engine_answers_with_rags_checked_citations(rag):
    response = rag.as_query_engine().query(EMPLOYEES)
    answer = rag.ask(EMPLOYEES)
    assert isinstance(response, Response) and response.response == answer.text
    assert response.metadata["answer"].answered
    # [n] in the text is source_nodes[n - 1], whose metadata holds the checked quote inside the passage.
    assert len(response.source_nodes) == len(answer.citations) > 0
    for n, (node, citation) in enumerate(zip(response.source_nodes, answer.citations, strict=True), 1):
        assert f"[{n}]" in response.response
        assert node.node.node_id == citation.passage_id
        assert node.node.metadata["quote"] == citation.quote and citation.quote in node.node.text
    assert [n.node.node_id for n in response.metadata["retrieved"]] == [p.id for p in answer.passages]


def test_query_engine_abstains_without_sources(rag):
    response = rag.as_query_engine().query(UNKNOWN)
    assert response.response.startswith(NOT_FOUND) and response.source_nodes == []
    assert not response.metadata["answer"].answered


def test_streaming_query_engine_yields_the_answer_then_its_sources(rag):
    response = rag.as_query_engine(streaming=True).query(EMPLOYEES)
    assert response.source_nodes == []  # nothing is known before the stream runs
    deltas = list(response.response_gen)
    answer = response.metadata["answer"]
    assert len(deltas) > 1 and "".join(deltas) == answer.text
    assert [n.node.node_id for n in response.source_nodes] == [c.passage_id for c in answer.citations]


def test_chat_engine_makes_follow_ups_standalone_and_keeps_checked_answers(rag):
    chat = rag.as_chat_engine()
    assert isinstance(chat, BaseChatEngine)
    first = chat.chat("How large was HashKey's insurance coverage when it started?")
    assert first.metadata["answer"].answered and first.source_nodes
    stream = chat.stream_chat("and what is it today?")
    streamed = "".join(stream.response_gen)
    follow = chat.last_answer
    assert follow is not None and streamed == follow.text
    assert follow.query != "and what is it today?" and "insurance" in follow.query.lower()  # condensed
    assert [n.node.node_id for n in stream.source_nodes] == [c.passage_id for c in follow.citations]
    history = chat.chat_history
    assert [m.role.value for m in history] == ["user", "assistant", "user", "assistant"]
    assert history[-1].content == follow.text
    again = asyncio.run(chat.achat(UNKNOWN))
    assert again.response.startswith(NOT_FOUND) and len(chat.chat_history) == 6
    chat.reset()
    assert chat.chat_history == [] and chat.last_answer is None


def test_verify_checks_any_responses_sentences_against_its_source_nodes(rag):
    """rag's answer check reused over a response it did not write: a sentence its cited node supports keeps
    its citation, an invented one is marked unverified."""
    nodes = rag.as_retriever(k=3).retrieve(EMPLOYEES)
    fact = next(n for n in nodes if "over 600 today" in n.node.text)
    position = nodes.index(fact) + 1
    claim = "The global employee count of HashKey Group has grown from over 500 to over 600 today"
    invented = "HashKey Group moved its headquarters to Reykjavik in 1850"
    response = Response(f"{claim} [{position}]. {invented} [{position}].", source_nodes=nodes)
    checked = verify(rag, EMPLOYEES, response)
    assert checked.answered
    assert [s.supported for s in checked.sentences] == [True, False]
    assert UNVERIFIED in checked.text and len(checked.citations) == 1
    assert checked.citations[0].passage_id == fact.node.node_id and "over 600 today" in checked.citations[0].quote


def test_verify_reads_nodes_from_other_pipelines(rag):
    """A plain llama-index node (no rag metadata, file_name and page_label as SimpleDirectoryReader sets them)."""
    node = TextNode(
        text="The annual employee turnover rate remains below 15%.",
        metadata={"file_name": "hr.pdf", "page_label": "4"},
    )
    checked = verify(rag, "What is the annual employee turnover rate?", "It remains below 15% [1].", [node])
    assert checked.answered and checked.citations[0].source == "hr.pdf" and checked.citations[0].page == 4
    refuted = verify(
        rag, "What is the annual employee turnover rate?", "It is above 40% [1].", [NodeWithScore(node=node)]
    )
    assert not refuted.answered and refuted.citations == []


def test_import_rag_does_not_import_llama_index():
    """``import rag`` (and what ingest and the store need) stays fast: llama-index loads only for the as_*
    entry points."""
    code = (
        "import sys, rag, rag.ingest.pipeline, rag.index.store, rag.index.layout, rag.llms, rag.llms.http, "
        "rag.llms.local; "
        "print(sorted(m for m in sys.modules if m.startswith('llama_index')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- the data model: documents, the node parser, the embedding ------------------------------------------
def stored(rag: RAG) -> dict[str, tuple[dict, str]]:
    return {cid: (meta, text) for cid, meta, text in rag.store.all_chunks()}


def test_node_parser_in_an_ingestion_pipeline_makes_rags_chunks(rag):
    """rag's parser and embedding in a plain llama-index IngestionPipeline give the chunks `RAG.ingest` stored:
    same ids, offsets, page, section, and the same vectors, because the node's embed view is the chunk under
    its heading."""
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.schema import MetadataMode, NodeRelationship

    from rag.index.layout import embedding_text
    from rag.llamaindex import RagEmbedding, RagNodeParser, read_documents

    documents = read_documents(rag.settings.docs_dir)
    assert [d.id_ for d in documents] == ["garden.md", SEED]
    pipeline = IngestionPipeline(
        transformations=[RagNodeParser.from_settings(rag.settings), RagEmbedding(rag.embedder)]
    )
    nodes = pipeline.run(documents=documents)
    chunks = stored(rag)
    assert sorted(n.node_id for n in nodes) == sorted(chunks)
    vectors = rag.store.vectors(list(chunks))
    headed = 0
    for node in nodes:
        meta, text = chunks[node.node_id]
        assert node.get_content(MetadataMode.NONE) == text
        assert (node.start_char_idx, node.end_char_idx) == (meta["start"], meta["end"])
        assert node.metadata.get("section") == meta.get("section") and node.metadata["source"] == meta["source"]
        assert node.metadata["file_hash"] == meta["file_hash"]
        assert node.relationships[NodeRelationship.SOURCE].node_id == meta["source"]
        assert node.get_content(MetadataMode.EMBED) == embedding_text(text, meta.get("section"), meta.get("title"))
        headed += node.get_content(MetadataMode.EMBED) != text
        assert np.allclose(node.embedding, vectors[node.node_id], atol=1e-4)
    assert headed >= 3  # the Pruning chunks are embedded under their heading, the text itself is not changed


def test_node_parser_reads_documents_of_other_readers(rag):
    """A Document from another reader (no rag sections; a page_label as SimpleDirectoryReader gives a PDF
    page) is chunked too, its offsets exact and its metadata kept out of the embedded text."""
    from llama_index.core.schema import Document, MetadataMode

    from rag.llamaindex import RagNodeParser

    text = " ".join(f"Sentence number {i} talks about tomatoes and their leaves." for i in range(80))
    doc = Document(text=text, metadata={"file_name": "notes.pdf", "page_label": "7"})
    nodes = RagNodeParser(chunk_size=64, chunk_overlap=8)([doc])
    assert len(nodes) > 3
    for node in nodes:
        assert text[node.start_char_idx : node.end_char_idx] == node.text
        assert node.metadata["page"] == 7 and node.metadata["source"] == "notes.pdf"
        # no heading: under the file's name; file_name, page_label etc. are not embedded
        assert node.get_content(MetadataMode.EMBED) == f"notes\n\n{node.text}"
        assert node.ref_doc_id == doc.id_
    assert len({n.node_id for n in nodes}) == len(nodes)
    assert [n.node_id for n in RagNodeParser(chunk_size=64, chunk_overlap=8)([doc])] == [n.node_id for n in nodes]


class RecordingEmbedder(Embedder):
    """The real packaged model, recording the role of each call (the test is about which role is asked)."""

    def __init__(self) -> None:
        super().__init__("all-MiniLM-L6-v2")
        self.roles: list[str] = []

    def embed(self, texts: list[str], role: str = "document") -> np.ndarray:
        self.roles.append(role)
        return super().embed(texts, role)


def test_embedding_keeps_query_and_document_roles(rag):
    from rag.llamaindex import RagEmbedding

    embedder = RecordingEmbedder()
    embedding = RagEmbedding(embedder)
    query = embedding.get_query_embedding("insurance coverage")
    texts = embedding.get_text_embedding_batch(["Tomatoes want sun.", "Side shoots are pinched out."])
    assert embedder.roles == ["query", "document"]
    assert np.allclose(query, rag.embedder.embed_query("insurance coverage"), atol=1e-5)
    assert np.allclose(texts, rag.embedder.embed(["Tomatoes want sun.", "Side shoots are pinched out."]), atol=1e-5)
    assert abs(np.linalg.norm(query) - 1) < 1e-5 and embedding.model_name == "all-MiniLM-L6-v2"


# --- the store: rag's collection read by llama-index's ChromaVectorStore -----------------------------------
LAYOUT_KEYS = ("_node_content", "_node_type", "document_id", "doc_id", "ref_doc_id")


def llama_read(rag: RAG, query: str, k: int = 20) -> list[NodeWithScore]:
    """Dense search through llama-index's own ChromaVectorStore, on a client rag did not make."""
    import chromadb
    from llama_index.core import VectorStoreIndex
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from rag.llamaindex import RagEmbedding

    client = chromadb.PersistentClient(path=str(rag.settings.store_dir))
    vector_store = ChromaVectorStore(chroma_collection=client.get_collection(rag.settings.collection))
    index = VectorStoreIndex.from_vector_store(vector_store, embed_model=RagEmbedding(rag.embedder))
    return index.as_retriever(similarity_top_k=k).retrieve(query)


def test_chroma_vector_store_reads_rags_store(rag):
    from llama_index.core.schema import MetadataMode

    from rag.index.layout import embedding_text

    nodes = llama_read(rag, "pinching out side shoots")
    chunks = stored(rag)
    assert len(nodes) == 20 and nodes[0].node.metadata["source"] == "garden.md"
    for hit in nodes:
        node = hit.node
        meta, text = chunks[node.node_id]
        assert node.get_content(MetadataMode.NONE) == text and node.ref_doc_id == meta["source"]
        assert (node.start_char_idx, node.end_char_idx) == (meta["start"], meta["end"])
        assert node.metadata == layout.rag_metadata(meta)  # source, file_hash, chunk_index, start, end, section
        assert node.get_content(MetadataMode.EMBED) == embedding_text(text, meta.get("section"), meta.get("title"))
    assert {n.node.metadata.get("section") for n in nodes} >= {"Pruning"}


def test_a_store_from_before_the_layout_gains_it_on_ingest_without_re_embedding(seed_docs):
    """Pins: stores ingested before the llama-index layout (hours of embedded evaluation stores) keep
    working, and the next ingest adds the layout by a metadata-only update: same ids, same vectors."""
    (seed_docs / "garden.md").write_text(GARDEN)
    engine = RAG()
    engine.ingest()
    chunks = engine.store.chunks
    # Make it a store as rag wrote it before: no layout keys in any record, no layout mark on the collection.
    ids = chunks.get(include=[])["ids"]
    chunks.update(ids=ids, metadatas=[dict.fromkeys((*LAYOUT_KEYS, layout.EMBEDDED)) for _ in ids])
    meta = {k: v for k, v in (chunks.metadata or {}).items() if k not in ("layout", "hnsw:space")}
    chunks.modify(metadata=meta)
    old = RAG()
    assert old.store.open() and not old.store.has_layout()
    records = old.store.chunks.get(include=["metadatas", "embeddings", "documents"])
    assert not any(layout.has_layout(m) for m in records["metadatas"])
    before = old.retrieve("pinching out side shoots", k=3)
    assert before[0].source == "garden.md"  # an old store answers as it did
    legacy = llama_read(old, "pinching out side shoots", k=3)  # llama-index's legacy fallback: no offsets
    assert legacy[0].node.start_char_idx is None

    report = old.ingest()
    assert report.embedded == 0 and report.added == [] and sorted(report.unchanged) == ["garden.md", SEED]
    after = old.store.chunks.get(include=["metadatas", "embeddings", "documents"])
    assert after["ids"] == records["ids"] and after["documents"] == records["documents"]
    assert np.array_equal(after["embeddings"], records["embeddings"])
    assert all(layout.has_layout(m) for m in after["metadatas"]) and old.store.has_layout()
    assert [layout.rag_metadata(m) for m in after["metadatas"]] == records["metadatas"]
    assert [p.id for p in old.retrieve("pinching out side shoots", k=3)] == [p.id for p in before]
    node = llama_read(old, "pinching out side shoots", k=1)[0].node
    same = next(p for p in old.retrieve("pinching out side shoots", k=10) if p.id == node.node_id)
    assert (node.start_char_idx, node.end_char_idx) == (same.start, same.end)
    assert old.ingest().embedded == 0 and old.store.upgrade_layout() == 0  # once only


def test_vector_index_opens_rags_store(rag):
    from rag.llamaindex import vector_index

    hit = vector_index(rag).as_retriever(similarity_top_k=1).retrieve("six hours of sun")[0]
    assert hit.node.metadata["source"] == "garden.md" and hit.node.metadata["section"] == "Tomatoes"


@pytest.mark.parametrize(("llm", "loaded"), [("extractive", False), ("openai", True)])
def test_app_warm_up_loads_llama_index_only_for_an_http_backend(llm, loaded):
    """The openai/ollama backends run on llama-index: the app's warm-up imports it before the first question
    (it would otherwise add seconds to that answer); the extractive app never imports it."""
    code = (
        "import sys; from rag import RAG; from rag.app.serve import warm_up; "
        "warm_up(RAG(llm=sys.argv[1], llm_model='m', llm_base_url='http://127.0.0.1:9/v1')); "
        "print('llama_index.llms.openai_like' in sys.modules, any(m.startswith('llama_index') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code, llm], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(loaded), str(loaded)]
