"""Question -> passages: dense and keyword candidates fused by reciprocal rank (`hybrid`), within an optional
scope of documents or folders (`scope`)."""
