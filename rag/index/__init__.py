"""What retrieval searches: the embedder, the Chroma store (and the layout llama-index reads), the keyword
(BM25) index and the cross-lingual index."""
